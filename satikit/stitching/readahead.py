"""Read-ahead: read (and check) the next batch of tiles on a worker thread while ``fn`` runs
the current one.

The strategies know every batch they will read before they start (their *plan*), so reading
can run one or more batches ahead without changing what is read or in which order: the output
is bit-identical with and without it. Memory: ``depth`` extra batches of tiles. Reading from
numpy, a memmap, zarr or tifffile releases the GIL for the copy and decode, so it overlaps with
the forward pass (which releases it too).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from satikit.stitching.grid import Index, TileGrid, read_tile

__all__ = ["TileReader", "read_batch", "reader"]


def read_batch(image, grid: TileGrid, indices: list[Index]) -> np.ndarray:
    """``(B, C, *T)`` float32 tiles of ``indices``, reflect-padded past the border.

    Raises:
        ValueError: a tile holds NaN or inf.
    """
    batch = np.stack([read_tile(image, grid.window(i), grid.shape) for i in indices])
    check_finite(batch, f"the tile at {grid.start(indices[0])}")
    return batch


def check_finite(block: np.ndarray, where: str) -> None:
    """Refuse an image block with NaN or inf (``where`` names it in the error)."""
    if not np.isfinite(block).all():
        raise ValueError(f"image contains non-finite values (NaN or inf) in {where}")


class TileReader:
    """Hands out the batches of ``plan`` in order; reads up to ``depth`` batches ahead.

    Args:
        image: ``(C, *S)`` sliceable array.
        grid: the tile grid.
        plan: the batches (lists of tile indices) in the order :meth:`read` will ask for them.
        depth: batches read ahead on a worker thread (0: read when asked, on this thread).
    """

    def __init__(self, image, grid: TileGrid, plan: Iterable[list[Index]], depth: int = 1):
        if depth < 0:
            raise ValueError(f"read-ahead depth must be >= 0, got {depth}")
        self.image, self.grid, self.depth = image, grid, depth
        self._plan: Iterator[list[Index]] = iter(plan)
        self._pending: deque[tuple[list[Index], Future]] = deque()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="satikit-read") if depth else None
        for _ in range(depth):
            self._submit()

    def _submit(self) -> None:
        chunk = next(self._plan, None)
        if chunk is not None and self._pool is not None:
            future = self._pool.submit(read_batch, self.image, self.grid, chunk)
            self._pending.append((chunk, future))

    def read(self, chunk: list[Index]) -> np.ndarray:
        """The tiles of ``chunk``, which must be the plan's next batch."""
        if self._pool is None:
            expected = next(self._plan, None)
        else:
            expected, future = self._pending.popleft() if self._pending else (None, None)
        if expected != chunk:
            raise RuntimeError(
                f"read-ahead plan out of step: asked for {chunk}, planned {expected}"
            )
        if self._pool is None:
            return read_batch(self.image, self.grid, chunk)
        self._submit()  # start the next read before waiting for this one
        return future.result()

    def close(self) -> None:
        """Stop reading ahead (pending reads are cancelled or awaited)."""
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)


@contextmanager
def reader(image, grid: TileGrid, plan: Iterable[list[Index]], depth: int = 1):
    """:class:`TileReader` as a context manager (the worker thread ends on exit, errors too)."""
    tiles = TileReader(image, grid, plan, depth)
    try:
        yield tiles
    finally:
        tiles.close()
