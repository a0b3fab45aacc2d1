"""The four stitching strategies. Each takes the image, a :class:`TileFn`, a grid and a schedule.

Memory each strategy holds besides the tiles in flight (``batch_size`` tiles in and out):

- ``none``: the whole image and its output (one call).
- ``simple``: nothing; each tile's owned region goes straight to ``out``.
- ``weighted``: two float64 accumulators over the padded grid (``C_out + 1`` planes; float64
  so an identity ``fn`` is reproduced exactly after the division).
- ``sati``: one float32 canvas over the padded grid (``C`` planes): the stitched output so
  far, which later tiles read their leading strips from.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from satikit.grid import Index, TileGrid, read_tile
from satikit.stitching.runner import TileFn, batched, write_region
from satikit.weights import blend_window, strip_mask

__all__ = ["run_none", "run_sati", "run_simple", "run_weighted"]

Allocate = Callable[[int], np.ndarray]
Tick = Callable[[int], object]


def _read_batch(image, grid: TileGrid, indices: list[Index]) -> np.ndarray:
    return np.stack([read_tile(image, grid.window(i), grid.shape) for i in indices])


def run_none(image, tile_fn: TileFn, allocate: Allocate, tick: Tick) -> np.ndarray:
    """The whole image in one call (the "no tiling" reference)."""
    result = tile_fn(np.asarray(image[...], dtype=np.float32)[None])[0]
    out = allocate(result.shape[0])
    out[...] = result
    tick(1)
    return out


def run_simple(
    image, tile_fn: TileFn, grid: TileGrid, batch_size: int, allocate: Allocate, tick: Tick
) -> np.ndarray:
    """Independent tiles, each cropped at the middle of its overlaps."""
    out = None
    for chunk in batched(grid.raster(), batch_size):
        results = tile_fn(_read_batch(image, grid, chunk))
        if out is None:
            out = allocate(results.shape[1])
        for index, result in zip(chunk, results):
            write_region(out, result, grid.owned(index), grid.start(index))
        tick(len(chunk))
    return out


def run_weighted(
    image,
    tile_fn: TileFn,
    grid: TileGrid,
    batch_size: int,
    window: str,
    allocate: Allocate,
    tick: Tick,
) -> np.ndarray:
    """Overlapping tiles blended with ``window``, normalised by the summed weights.

    Tile edges that lie on the image border keep full weight (nothing else covers them).
    """
    numerator: np.ndarray | None = None
    denominator = np.zeros(grid.padded_shape, dtype=np.float64)
    for chunk in batched(grid.raster(), batch_size):
        results = tile_fn(_read_batch(image, grid, chunk))
        if numerator is None:
            numerator = np.zeros((results.shape[1], *grid.padded_shape), dtype=np.float64)
        for index, result in zip(chunk, results):
            w = blend_window(
                grid.tile,
                window,  # type: ignore[arg-type]
                flat_before=[i == 0 for i in index],
                flat_after=[i == n - 1 for i, n in zip(index, grid.counts)],
            ).astype(np.float64)  # float32 x float32 products are exact in float64
            win = grid.window(index)
            numerator[(slice(None), *win)] += w * result
            denominator[win] += w
        tick(len(chunk))
    assert numerator is not None
    crop = tuple(slice(0, s) for s in grid.shape)
    out = allocate(numerator.shape[0])
    out[...] = numerator[(slice(None), *crop)] / denominator[crop]
    return out


def run_sati(
    image,
    tile_fn: TileFn,
    grid: TileGrid,
    schedule: list[list[Index]],
    batch_size: int,
    allocate: Allocate,
    tick: Tick,
) -> np.ndarray:
    """Stitching aware inference (paper III-A, III-E).

    Every tile's leading overlap strips are replaced by what is already in the canvas (its
    predecessors' outputs) before ``fn`` sees it; the tile then writes its output from the middle
    of each leading overlap to its end. ``schedule`` is a list of waves: raster order is one
    tile per wave; tiles in one wave never overlap, so each wave runs in batches.
    """
    channels = image.shape[0]
    canvas = np.zeros((channels, *grid.padded_shape), dtype=np.float32)
    for wave in schedule:
        for chunk in batched(wave, batch_size):
            tiles = _read_batch(image, grid, chunk)
            for tile, index in zip(tiles, chunk):
                leading = grid.leading(index)
                if any(leading):
                    mask = strip_mask(grid.tile, grid.overlap, leading)
                    np.copyto(tile, canvas[(slice(None), *grid.window(index))], where=mask)
            results = tile_fn(tiles)
            for index, result in zip(chunk, results):
                write_region(
                    canvas, result, grid.written(index), grid.start(index), grid.padded_shape
                )
            tick(len(chunk))
    out = allocate(channels)
    out[...] = canvas[(slice(None), *(slice(0, s) for s in grid.shape))]
    return out
