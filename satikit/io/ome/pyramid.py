"""Multiscale pyramids built out of core: each level from the one before, band by band.

Level 0 is the full-resolution image, already on disk (a memory map or a zarr array). Level
``k`` halves level ``k - 1`` along y and x (the last two spatial axes; z and channels keep their
size, as OME-TIFF pyramids and ome-zarr-py's default scaler do), rounding sizes up, by the mean
of each 2 x 2 block (:func:`downsample_yx`). :func:`build_level` reads level ``k - 1`` in bands
of ``2 * rows`` rows per plane and writes bands of ``rows`` rows, dropping memory-mapped pages
after each band, so resident memory stays at a few bands whatever the image size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from satikit.io.arrays import release_pages

__all__ = ["build_level", "downsample_yx", "level_shapes"]


def level_shapes(shape: Sequence[int], y_axis: int, tile: int) -> list[tuple[int, ...]]:
    """Shapes of the pyramid levels of an array of ``shape``, level 0 first.

    Args:
        shape: level 0's shape; its y and x axes are ``y_axis`` and ``y_axis + 1``.
        y_axis: index of the y axis.
        tile: the levels stop at the first one whose y and x both fit in one ``tile``.

    Returns:
        one shape per level (at least level 0), y and x of level ``k`` being
        ``ceil(size / 2**k)``.
    """
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    shapes = [tuple(int(s) for s in shape)]
    while max(shapes[-1][y_axis : y_axis + 2]) > tile:
        last = list(shapes[-1])
        last[y_axis] = -(-last[y_axis] // 2)
        last[y_axis + 1] = -(-last[y_axis + 1] // 2)
        shapes.append(tuple(last))
    return shapes


def _accumulator(dtype: np.dtype) -> np.dtype:
    """A dtype that holds the sum of four ``dtype`` values."""
    if np.issubdtype(dtype, np.integer) and dtype.itemsize <= 4:
        return np.dtype(f"{dtype.kind}{2 * dtype.itemsize}")
    if np.issubdtype(dtype, np.floating) and dtype.itemsize >= 4:
        return dtype
    return np.dtype(np.float64)  # 64-bit integers, float16, bool


def downsample_yx(block: np.ndarray, y_axis: int = 0) -> np.ndarray:
    """Halve ``block`` along ``y_axis`` and ``y_axis + 1`` by the mean of each 2 x 2 block.

    An odd size repeats its last row / column, so the last output row / column averages what
    there is. Integers are rounded half up; the result has ``block``'s dtype.

    Args:
        block: any array with at least ``y_axis + 2`` axes, any numeric dtype.
        y_axis: index of the y axis (x follows it).

    Returns:
        the block with y and x sizes ``ceil(size / 2)``, values in ``block``'s range.
    """
    block = np.asarray(block)
    for axis in (y_axis, y_axis + 1):
        if block.shape[axis] % 2:
            block = np.concatenate([block, np.take(block, [-1], axis=axis)], axis=axis)

    def part(dy: int, dx: int) -> np.ndarray:
        index: list[Any] = [slice(None)] * block.ndim
        index[y_axis], index[y_axis + 1] = slice(dy, None, 2), slice(dx, None, 2)
        return block[tuple(index)]

    total = part(0, 0).astype(_accumulator(block.dtype))
    total += part(0, 1)
    total += part(1, 0)
    total += part(1, 1)
    if np.issubdtype(total.dtype, np.integer):
        return ((total + 2) // 4).astype(block.dtype)
    if np.issubdtype(block.dtype, np.integer):  # 64-bit integers summed in float64
        return np.floor(total / 4 + 0.5).astype(block.dtype)
    return (total * 0.25).astype(block.dtype)


def build_level(src: Any, dst: Any, y_axis: int, rows: int) -> None:
    """Fill ``dst`` with ``src`` halved along y and x (:func:`downsample_yx`), band by band.

    Args:
        src: level ``k - 1``, any sliceable array (memmap, zarr, ...).
        dst: level ``k``, writable, of ``src``'s shape with y and x ``ceil(size / 2)``.
        y_axis: index of the y axis in both (x follows it; axes before it are walked one entry at
            a time, axes after x are read whole).
        rows: ``dst`` rows per band (``2 * rows`` rows of ``src`` are read at once); a multiple
            of the chunk height keeps zarr writes whole chunks.
    """
    height, source_height = int(dst.shape[y_axis]), int(src.shape[y_axis])
    for lead in np.ndindex(*(int(s) for s in dst.shape[:y_axis])):
        for first in range(0, height, rows):
            last = min(first + rows, height)
            block = np.asarray(src[(*lead, slice(2 * first, min(2 * last, source_height)))])
            dst[(*lead, slice(first, last))] = downsample_yx(block, 0)
            release_pages(src)
            release_pages(dst)
