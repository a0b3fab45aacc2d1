"""The SATI merge of a training step (the paper's merger; III-A, III-B, Alg. 1): build
``z, M, W`` from ``x`` and ``y_hat_x``.

Each sample's leading border strips (width ``overlap``; top/left in 2D, up to ``2^N - 1``
subsets in N-D) are replaced by the generator's own translation, which is exactly what a tile
sees at inference when its predecessors have been translated already.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import torch

from satikit.stitching.grid import as_tuple
from satikit.stitching.windows import overlap_weight, strip_mask

__all__ = ["border_cases", "draw_cases", "merge"]

Cases = Literal["all", "leading"]


@lru_cache(maxsize=8)
def border_cases(ndim: int) -> tuple[tuple[bool, ...], ...]:
    """All ``2^N - 1`` non-empty subsets of leading borders, as per-dimension flags."""
    return tuple(c for c in itertools.product((False, True), repeat=ndim) if any(c))


def draw_cases(count: int, ndim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``count`` uniform draws of a border case (overlap sampling, paper III-B).

    Returns:
        ``(count,)`` long indices into :func:`border_cases` ``(ndim)``.
    """
    return torch.randint(len(border_cases(ndim)), (count,), generator=generator)


def _case_maps(
    tile: tuple[int, ...], overlap: tuple[int, ...], weighting: bool
) -> tuple[np.ndarray, np.ndarray]:
    cases = border_cases(len(tile))
    masks = np.stack([strip_mask(tile, overlap, c) for c in cases])
    if weighting:
        weights = np.stack([overlap_weight(tile, overlap, c) for c in cases])
    else:
        weights = masks.astype(np.float32)
    return masks, weights


def merge(
    x: torch.Tensor,
    y_hat: torch.Tensor,
    overlap: int | Sequence[int],
    *,
    generator: torch.Generator | None = None,
    cases: Cases = "all",
    weighting: bool = True,
    case_index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Merge ``y_hat`` into the leading border strips of ``x``.

    Args:
        x: ``(B, C, *spatial)`` tiles from domain X (encoded).
        y_hat: ``(B, C, *spatial)`` their translation ``G_XY(x)``; pass it detached when it is a
            constant target (the stitch loss treats it so).
        overlap: strip width per spatial dimension (int or sequence), ``0 < O < size``.
        generator: CPU ``torch.Generator`` for reproducible case sampling.
        cases: ``"all"``: each sample draws one of the ``2^N - 1`` non-empty strip subsets
            uniformly (overlap sampling, paper III-B); ``"leading"``: always all leading strips
            (the "w/o overlap sampling" ablation).
        weighting: ``W`` is the pixel-overlap weight map (paper III-F) if True, else ``M``.
        case_index: ``(B,)`` cases drawn beforehand with :func:`draw_cases` (e.g. a rank's
            share of a global batch's draw); with ``cases="all"`` it replaces the draw from
            ``generator``.

    Returns:
        ``z`` (same shape and dtype as ``x``: ``y_hat`` inside ``M``, ``x`` outside),
        ``mask`` bool ``(B, 1, *spatial)``, ``weight`` float ``(B, 1, *spatial)`` in [0, 1],
        0 outside ``mask``.
    """
    if x.shape != y_hat.shape:
        raise ValueError(
            f"x and y_hat must have the same shape, got {tuple(x.shape)} and {tuple(y_hat.shape)}"
        )
    if x.ndim < 3:
        raise ValueError(
            f"expected (B, C, *spatial) with >= 1 spatial dim, got shape {tuple(x.shape)}"
        )
    if cases not in ("all", "leading"):
        raise ValueError(f"cases must be 'all' or 'leading', got {cases!r}")
    tile = tuple(int(s) for s in x.shape[2:])
    overlap_t = as_tuple(overlap, len(tile), "overlap")
    if any(not 0 < o < t for o, t in zip(overlap_t, tile)):
        raise ValueError(
            f"overlap must satisfy 0 < overlap < tile size, got {overlap_t} for tile {tile}"
        )

    masks, weights = _case_maps(tile, overlap_t, weighting)
    batch = x.shape[0]
    if cases == "all":
        chosen = draw_cases(batch, len(tile), generator) if case_index is None else case_index
        if chosen.shape != (batch,):
            raise ValueError(f"case_index must have shape ({batch},), got {tuple(chosen.shape)}")
    else:  # the last case flags every dimension
        chosen = torch.full((batch,), len(masks) - 1, dtype=torch.long)
    index = chosen.cpu().numpy()
    mask = torch.from_numpy(masks[index]).unsqueeze(1).to(x.device)
    weight = torch.from_numpy(weights[index]).unsqueeze(1).to(device=x.device, dtype=x.dtype)
    z = torch.where(mask, y_hat.to(x.dtype), x)
    return z, mask, weight
