"""Weight maps: blending windows for weighted tiling and the SATI pixel-overlap weight map.

All functions are pure, N-D, cached, and return read-only float32 numpy arrays of the tile's
spatial shape ``T`` (no channel axis).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np

__all__ = ["Window", "blend_window", "overlap_weight", "strip_mask"]

Window = Literal["pyramid", "gaussian"]

# MONAI's default sigma_scale for its gaussian importance map; sigma = scale * tile size.
DEFAULT_SIGMA_SCALE = 0.125


def _profile(
    length: int, mode: str, sigma_scale: float, flat_before: bool, flat_after: bool
) -> np.ndarray:
    """1-D window profile, 1 at the centre, > 0 everywhere; flat towards a flagged side."""
    pos = np.arange(length, dtype=np.float64)
    centre = (length - 1) / 2.0
    if mode == "pyramid":
        # Distance to the nearest tile edge, in pixels, counted from 1 at the edge pixel:
        # small but non-zero at the edge, 1 at the centre (the authors' weighted baseline).
        half = (length + 1) // 2
        prof = np.minimum(pos + 1, length - pos) / half
    elif mode == "gaussian":
        sigma = max(sigma_scale * length, 1e-3)
        prof = np.exp(-0.5 * ((pos - centre) / sigma) ** 2)
    else:
        raise ValueError(f"unknown window {mode!r}; choose 'pyramid' or 'gaussian'")
    if flat_before:
        prof[pos < centre] = prof.max()
    if flat_after:
        prof[pos > centre] = prof.max()
    prof = prof / prof.max()
    # never exactly zero inside the tile: the normalisation divides by the summed weights
    return np.maximum(prof, 1e-6)


@lru_cache(maxsize=256)
def _blend_window_cached(
    tile: tuple[int, ...],
    mode: str,
    sigma_scale: float,
    flat_before: tuple[bool, ...],
    flat_after: tuple[bool, ...],
) -> np.ndarray:
    profiles = [
        _profile(t, mode, sigma_scale, b, a) for t, b, a in zip(tile, flat_before, flat_after)
    ]
    if mode == "pyramid":  # chessboard distance transform of the centre: min over dims
        window = np.full(tile, np.inf)
        for k, prof in enumerate(profiles):
            shape = [1] * len(tile)
            shape[k] = tile[k]
            window = np.minimum(window, prof.reshape(shape))
    else:  # separable gaussian: product over dims
        window = np.ones(tile)
        for k, prof in enumerate(profiles):
            shape = [1] * len(tile)
            shape[k] = tile[k]
            window = window * prof.reshape(shape)
    window = np.maximum(window, 1e-6).astype(np.float32)
    window.setflags(write=False)
    return window


def blend_window(
    tile: Sequence[int],
    mode: Window = "gaussian",
    *,
    sigma_scale: float = DEFAULT_SIGMA_SCALE,
    flat_before: Sequence[bool] | None = None,
    flat_after: Sequence[bool] | None = None,
) -> np.ndarray:
    """Blending window for weighted tiling.

    Args:
        tile: spatial tile shape ``T`` (N entries).
        mode: ``"pyramid"`` (linear ramp from the centre, the paper's weighted baseline) or
            ``"gaussian"`` (MONAI-style, ``sigma = sigma_scale * T``).
        sigma_scale: gaussian width as a fraction of the tile.
        flat_before / flat_after: per dimension, keep full weight up to the tile's leading /
            trailing edge (used where that edge lies on the image border).

    Returns:
        read-only float32 array of shape ``T``, values in (0, 1], maximum 1.
    """
    tile = tuple(int(t) for t in tile)
    n = len(tile)
    before = tuple(bool(b) for b in flat_before) if flat_before is not None else (False,) * n
    after = tuple(bool(a) for a in flat_after) if flat_after is not None else (False,) * n
    return _blend_window_cached(tile, str(mode), float(sigma_scale), before, after)


@lru_cache(maxsize=512)
def strip_mask(
    tile: tuple[int, ...], overlap: tuple[int, ...], case: tuple[bool, ...]
) -> np.ndarray:
    """Mask of the leading border strips ``case`` (one flag per dim) of a tile.

    Returns:
        read-only bool array of shape ``tile``: True where ``p_k < overlap_k`` for a flagged k.
    """
    mask = np.zeros(tile, dtype=bool)
    for k, flagged in enumerate(case):
        if flagged:
            index = [slice(None)] * len(tile)
            index[k] = slice(0, overlap[k])
            mask[tuple(index)] = True
    mask.setflags(write=False)
    return mask


@lru_cache(maxsize=512)
def overlap_weight(
    tile: tuple[int, ...], overlap: tuple[int, ...], case: tuple[bool, ...]
) -> np.ndarray:
    """SATI pixel-overlap weight map (paper III-F, Fig. 6) for one border case.

    Weights fall linearly with the euclidean distance from the leading corner of the flagged
    dimensions (weight 1: the pixel farthest from the X region) to the opposite corner (weight
    0: the pixel farthest from the Y region); distances are measured in the flagged dimensions
    only, so for a single strip the weight is linear along that strip's axis. Pixels outside the
    strips (domain X) weigh 0.

    Args:
        tile: spatial tile shape ``T``.
        overlap: strip width ``O`` per dimension.
        case: per dimension, whether its leading strip came from ``y_hat`` (at least one True).

    Returns:
        read-only float32 array of shape ``T``, values in [0, 1], maximum 1 at the corner.
    """
    if not any(case):
        raise ValueError("case must flag at least one leading strip")
    dist_sq = np.zeros(tile, dtype=np.float64)
    span_sq = 0.0
    for k, flagged in enumerate(case):
        if flagged:
            shape = [1] * len(tile)
            shape[k] = tile[k]
            dist_sq = dist_sq + (np.arange(tile[k], dtype=np.float64) ** 2).reshape(shape)
            span_sq += float(tile[k] - 1) ** 2
    span = np.sqrt(span_sq) if span_sq > 0 else 1.0
    weight = np.clip(1.0 - np.sqrt(dist_sq) / span, 0.0, 1.0)
    weight = np.where(strip_mask(tile, overlap, case), weight, 0.0).astype(np.float32)
    weight.setflags(write=False)
    return weight
