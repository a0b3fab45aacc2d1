"""The downscaled whole image TIN takes its statistics from, read out of core.

Box downscaling: along each spatial dim of size ``S`` the thumbnail of size ``S'`` has pixel
``i`` = the mean of input pixels ``[floor(i S / S'), floor((i + 1) S / S'))`` (at least one
pixel), so every input pixel counts once when ``S' <= S`` and ``S' == S`` is the image itself.
The image is read in slabs along the first spatial dim; only the thumbnail and one slab are
held in memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["check_scale", "thumbnail", "thumbnail_shape"]

#: Input rows (first spatial dim) read per slab, unless one thumbnail row needs more.
SLAB_ROWS = 64


def thumbnail_shape(shape: Sequence[int], scale: float, multiple: int = 1) -> tuple[int, ...]:
    """Spatial size of the thumbnail of an image of spatial ``shape`` at ``scale``.

    Each size is ``round(S * scale)``, at least 1; with ``multiple > 1`` it is rounded to the
    nearest multiple instead (at least ``multiple``), for networks that only accept such sizes.

    Raises:
        ValueError: ``scale`` outside ``(0, 1]`` or ``multiple < 1``.
    """
    check_scale(scale)
    if int(multiple) < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple!r}")
    m = int(multiple)
    return tuple(max(m, m * round(int(s) * scale / m)) for s in shape)


def check_scale(scale: float) -> float:
    """``scale`` as a float in ``(0, 1]``.

    Raises:
        ValueError: anything else (quoting it).
    """
    try:
        value = float(scale)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(scale, bool) or not 0 < value <= 1:
        raise ValueError(f"thumbnail_scale must be a number in (0, 1], got {scale!r}")
    return value


def _bins(size: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop of each of the ``target`` box bins over ``size`` pixels."""
    i = np.arange(target)
    starts = (i * size) // target
    stops = np.maximum(((i + 1) * size) // target, starts + 1)
    return starts, stops


def _box_mean(block: np.ndarray, axis: int, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Mean of ``block`` over ``[starts[i], stops[i])`` along ``axis``, float64."""
    if len(starts) == block.shape[axis] and (stops - starts == 1).all():
        return block  # identity bins: no rounding from the cumulative sum
    cumulative = np.cumsum(block, axis=axis, dtype=np.float64)
    zero = np.zeros_like(np.take(cumulative, [0], axis=axis))
    cumulative = np.concatenate([zero, cumulative], axis=axis)
    sums = np.take(cumulative, stops, axis=axis) - np.take(cumulative, starts, axis=axis)
    view = [1] * block.ndim
    view[axis] = -1
    return sums / (stops - starts).reshape(view)


def thumbnail(image, shape: Sequence[int]) -> np.ndarray:
    """Box-downscale ``image`` ``(C, *S)`` to ``(C, *shape)`` float32, slab by slab.

    Args:
        image: any sliceable ``(C, *S)`` array (numpy, memmap, zarr, ...).
        shape: the thumbnail's spatial size, e.g. from :func:`thumbnail_shape`.

    Raises:
        ValueError: ``shape`` of another length than the image's spatial dims, or the image
            holds non-finite values.
    """
    spatial = tuple(int(s) for s in image.shape[1:])
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(spatial) or min(shape, default=1) < 1:
        raise ValueError(f"thumbnail shape {shape} does not fit an image of spatial {spatial}")
    bins = [_bins(s, t) for s, t in zip(spatial, shape)]
    result = np.empty((image.shape[0], *shape), dtype=np.float32)
    starts0, stops0 = bins[0]
    per_row = math.ceil(spatial[0] / shape[0])
    rows = max(1, SLAB_ROWS // per_row)
    for first in range(0, shape[0], rows):
        last = min(first + rows, shape[0])
        lo, hi = int(starts0[first]), int(stops0[last - 1])
        block = np.asarray(image[(slice(None), slice(lo, hi))], dtype=np.float64)
        if not np.isfinite(block).all():
            raise ValueError(
                f"image contains non-finite values (NaN or inf) in rows {lo}:{hi} of dim 1"
            )
        block = _box_mean(block, 1, starts0[first:last] - lo, stops0[first:last] - lo)
        for axis, (starts, stops) in enumerate(bins[1:], start=2):
            block = _box_mean(block, axis, starts, stops)
        result[:, first:last] = block
    return result
