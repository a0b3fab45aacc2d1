"""Normalisation statistics of a wider region for a training forward pass (beyond the paper).

At inference with whole-image (TIN) or kernel-averaged (KIN) statistics
(:mod:`satikit.stitching.norm`), every tile is normalised with statistics of much more than the
tile. :func:`region_statistics` lets training see the same: a no-grad pass of the generator over
a region around the crop records each normalisation call's ``(mean, var)``; inside the block
the generator's calls are normalised with them instead of their own (gradients flow through the
normalised input; the statistics are constants, as at inference).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from satikit.stitching.norm import find_norm_layers, layer_statistics, normalize_with

__all__ = ["region_statistics"]


def _hooked(layers: list[nn.Module], hook: Callable[..., Any]) -> list[Any]:
    return [layer.register_forward_hook(hook) for layer in layers]


@contextmanager
def region_statistics(
    source: Any, generator: Callable[[Tensor], Tensor], region: Tensor
) -> Iterator[None]:
    """Inside the block, ``generator``'s normalisation layers use the statistics they had on
    ``region``.

    Args:
        source: where the normalisation layers are (an adapter, a module; as for
            :func:`~satikit.stitching.norm.find_norm_layers`).
        generator: the function run on ``region`` now and on the crops inside the block, e.g.
            ``adapter.generator_xy``.
        region: ``(B, C, *region)`` input whose statistics replace the crops'; batch item ``b``
            of every call inside the block is normalised with item ``b``'s statistics.

    Raises:
        ValueError: a call inside the block runs other normalisation layers than the pass
            over the region did (the generator must run the same layers on every call).
    """
    layers = find_norm_layers(source)
    recorded: list[tuple[nn.Module, Tensor, Tensor]] = []

    def record(module: nn.Module, args: tuple, output: Any) -> None:
        mean, var = layer_statistics(module, args[0])
        recorded.append((module, mean.detach(), var.detach()))

    handles = _hooked(layers, record)
    try:
        with torch.no_grad():
            generator(region)
    finally:
        for handle in handles:
            handle.remove()
    used = 0

    def apply(module: nn.Module, args: tuple, output: Any) -> Tensor:
        nonlocal used
        if used >= len(recorded) or recorded[used][0] is not module:
            raise ValueError(
                "the generator ran other normalisation layers on the crop than on its region; "
                "shared statistics in training need the same layers on every call"
            )
        _, mean, var = recorded[used]
        used += 1
        return normalize_with(module, args[0], mean, var)

    handles = _hooked(layers, apply)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
    if used not in (0, len(recorded)):
        raise ValueError(
            f"the generator ran {used} normalisation calls on the crop, {len(recorded)} on its "
            "region: shared statistics in training need the same layers on every call"
        )
