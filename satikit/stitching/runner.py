"""Shared pieces of the inference engine: calling ``fn`` on tile batches, and writing regions.

Everything here works on numpy arrays on the host; only the batch handed to ``fn`` lives on the
target device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

__all__ = ["BatchContext", "TileFn", "batched", "write_region"]

#: ``context(indices)``: a context manager entered around each ``fn`` call, given the grid
#: indices of the tiles in the batch (None for a call that is not on the grid, e.g. a thumbnail).
BatchContext = Callable[[Sequence[tuple[int, ...]] | None], AbstractContextManager]


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive chunks of at most ``size`` items."""
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class TileFn:
    """Calls a torch callable on a batch of tiles and checks what comes back.

    Args:
        fn: ``(B, C, *T) -> (B, C_out, *T)`` torch callable.
        device: where the batch is sent (pinned, non-blocking copies on CUDA).
        out_channels: expected ``C_out`` if known; otherwise fixed by the first call.
        context: optional :data:`BatchContext` entered around every ``fn`` call (the
            normalisation statistics of :mod:`satikit.stitching.norm` use it).
    """

    def __init__(
        self,
        fn: Callable,
        device: torch.device,
        out_channels: int | None = None,
        context: BatchContext | None = None,
    ):
        self.fn = fn
        self.device = device
        self.out_channels = out_channels
        self.context = context
        self.calls = 0

    def __call__(
        self, tiles: np.ndarray, indices: Sequence[tuple[int, ...]] | None = None
    ) -> np.ndarray:
        """Run ``fn`` on ``tiles`` ``(B, C, *T)`` float32; returns ``(B, C_out, *T)`` float32.

        ``indices``: the grid index of each tile (handed to ``context``), if on the grid.
        """
        batch = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32))
        if self.device.type == "cuda":
            batch = batch.pin_memory()
        batch = batch.to(self.device, non_blocking=True)
        around = nullcontext() if self.context is None else self.context(indices)
        with torch.inference_mode(), around:
            result = self.fn(batch)
        self.calls += 1
        if not isinstance(result, torch.Tensor):
            raise TypeError(f"fn must return a torch.Tensor, got {type(result).__name__}")
        self._check(tuple(tiles.shape), tuple(result.shape))
        array = result.detach().to("cpu", torch.float32).numpy()
        if not np.isfinite(array).all():
            raise ValueError("fn returned non-finite values (NaN or inf) for a tile")
        return array

    def _check(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        if len(out_shape) != len(in_shape) or out_shape[0] != in_shape[0]:
            raise ValueError(
                f"fn turned a batch of shape {tuple(in_shape)} into {tuple(out_shape)}; expected (B, C_out, *tile)"
            )
        if tuple(out_shape[2:]) != tuple(in_shape[2:]):
            raise ValueError(
                f"fn changed the spatial size: input {tuple(in_shape[2:])}, output {tuple(out_shape[2:])}; "
                "the engine needs a size-preserving fn (pick a tile size the network accepts)"
            )
        if self.out_channels is None:
            self.out_channels = out_shape[1]
        elif out_shape[1] != self.out_channels:
            raise ValueError(f"fn returned {out_shape[1]} channels, expected {self.out_channels}")


def write_region(
    dest: np.ndarray,
    src: np.ndarray,
    region: Sequence[slice],
    origin: Sequence[int],
    limit: Sequence[int] | None = None,
) -> None:
    """Copy ``src[:, region - origin]`` to ``dest[:, region]``, clipped to spatial ``limit``.

    Args:
        dest: ``(C, *S)`` destination (numpy or any array supporting slice assignment).
        src: ``(C, *T)`` tile output.
        region: slices in the destination's (padded) coordinates.
        origin: the tile's start in the same coordinates.
        limit: spatial shape to clip to (defaults to ``dest``'s).
    """
    limit = dest.shape[1:] if limit is None else limit
    stops = [min(r.stop, s) for r, s in zip(region, limit)]
    if any(stop <= r.start for stop, r in zip(stops, region)):
        return
    dst = tuple(slice(r.start, stop) for r, stop in zip(region, stops))
    loc = tuple(slice(r.start - o, stop - o) for r, stop, o in zip(region, stops, origin))
    dest[(slice(None), *dst)] = src[(slice(None), *loc)]
