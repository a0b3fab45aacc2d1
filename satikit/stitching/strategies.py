"""The four stitching strategies. Each takes the image, a :class:`TileFn` and a grid.

Memory each strategy holds besides the ``batch_size`` tiles in flight (see :class:`Band`, with
``R`` tile rows along the first spatial dim and ``P`` the padded shape):

- ``none``: the whole image and its output (one call).
- ``simple``: nothing; each tile's owned region goes straight to ``out``.
- ``weighted``: float64 accumulators for ``C_out + 1`` planes of a band of
  ``R = ceil(batch_size / tiles per row)`` tile rows (float64 so an identity ``fn`` is
  reproduced exactly after the division).
- ``sati``: a float32 canvas of ``C`` planes over a band of tile rows (raster order: 1 row;
  wavefront: ``R = min(batch_size, rows)``): the stitched output so far, which later tiles read
  their leading strips from.

``simple``, ``weighted`` and ``sati`` save their progress through a :class:`Resumer` (a no-op
without a state path) and can continue from it; see :mod:`satikit.stitching.resume`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from satikit.grid import Index, TileGrid, read_tile
from satikit.stitching.band import Band
from satikit.stitching.resume import Progress, Resumer
from satikit.stitching.runner import TileFn, batched, write_region
from satikit.weights import blend_window, strip_mask

__all__ = ["run_none", "run_sati", "run_simple", "run_weighted"]

Allocate = Callable[[int], np.ndarray]
Tick = Callable[[int], object]


def _read_batch(image, grid: TileGrid, indices: list[Index]) -> np.ndarray:
    batch = np.stack([read_tile(image, grid.window(i), grid.shape) for i in indices])
    _check_finite(batch, f"the tile at {grid.start(indices[0])}")
    return batch


def _check_finite(block: np.ndarray, where: str) -> None:
    if not np.isfinite(block).all():
        raise ValueError(f"image contains non-finite values (NaN or inf) in {where}")


def _row_bands(grid: TileGrid, rows: int) -> list[list[Index]]:
    """Tile indices grouped into bands of ``rows`` consecutive tile rows, raster order inside."""
    bands: dict[int, list[Index]] = {}
    for index in grid.raster():
        bands.setdefault(index[0] // rows, []).append(index)
    return [bands[b] for b in sorted(bands)]


#: Rows written to ``out`` per step when a band is flushed: bounds the temporaries (the
#: division of ``weighted``, the decode of an on-disk sink) to a thin slab of the band.
FLUSH_ROWS = 64


def _flush(
    out: np.ndarray, read: Callable[[slice], np.ndarray], origin: int, done: int, stop: int
) -> None:
    """Write padded rows ``[done, stop)`` into ``out``, ``FLUSH_ROWS`` at a time.

    ``read(rows)`` returns the ``(C, n, *rest)`` values of band-local ``rows`` (the band starts at
    padded row ``origin``).
    """
    stop = min(stop, out.shape[1])
    rest = tuple(slice(0, s) for s in out.shape[2:])
    for first in range(done, stop, FLUSH_ROWS):
        last = min(first + FLUSH_ROWS, stop)
        values = read(slice(first - origin, last - origin))
        out[(slice(None), slice(first, last), *rest)] = values[(slice(None), slice(None), *rest)]


def run_none(image, tile_fn: TileFn, allocate: Allocate, tick: Tick) -> np.ndarray:
    """The whole image in one call (the "no tiling" reference)."""
    whole = np.asarray(image[...], dtype=np.float32)
    _check_finite(whole, "the image")
    result = tile_fn(whole[None])[0]
    out = allocate(result.shape[0])
    out[...] = result
    tick(1)
    return out


def run_simple(
    image,
    tile_fn: TileFn,
    grid: TileGrid,
    batch_size: int,
    allocate: Allocate,
    tick: Tick,
    resumer: Resumer,
) -> np.ndarray:
    """Independent tiles, each cropped at the middle of its overlaps.

    Saves its progress (tiles finished) after every batch that completes a tile row.
    """
    saved = resumer.load()
    out = None if saved is None else allocate(saved.channels)
    finished = 0 if saved is None else saved.next
    tick(finished)
    per_row = grid.n_tiles // grid.counts[0]
    for chunk in batched(itertools.islice(grid.raster(), finished, None), batch_size):
        results = tile_fn(_read_batch(image, grid, chunk), chunk)
        if out is None:
            out = allocate(results.shape[1])
        for index, result in zip(chunk, results):
            write_region(out, result, grid.owned(index), grid.start(index))
        tick(len(chunk))
        before, finished = finished, finished + len(chunk)
        if finished < grid.n_tiles and finished // per_row > before // per_row:
            resumer.save(out, Progress(finished, 0, 0, results.shape[1]))
    return out


def _start_bands(
    bands: list[list[Index]], saved: Progress | None, carried: dict[str, Band], tick: Tick
) -> int:
    """Restore ``carried`` from ``saved``; returns the first band to run (0 without a state)."""
    if saved is None:
        return 0
    for name, band in carried.items():
        band.restore(saved.origin, saved.arrays[name])
    tick(sum(len(band) for band in bands[: saved.next]))
    return saved.next


def _next_band(
    bands: list[list[Index]],
    finished: int,
    grid: TileGrid,
    carried: dict[str, Band],
    progress: Progress,
    resumer: Resumer,
    out,
) -> None:
    """After ``finished`` bands (their rows flushed to ``out``): move ``carried`` to the next
    band's first row and save the progress. Nothing to do after the last band."""
    if finished == len(bands):
        return
    origin = grid.start(bands[finished][0])[0]
    for band in carried.values():
        band.advance(origin)
    progress.origin = origin
    progress.arrays = {name: band.carried() for name, band in carried.items()}
    resumer.save(out, progress)


def _window(grid: TileGrid, index: Index, window: str) -> np.ndarray:
    """Blend window of one tile; edges on the image border keep full weight."""
    return blend_window(
        grid.tile,
        window,  # type: ignore[arg-type]
        flat_before=[i == 0 for i in index],
        flat_after=[i == n - 1 for i, n in zip(index, grid.counts)],
    ).astype(np.float64)  # float32 x float32 products are exact in float64


def run_weighted(
    image,
    tile_fn: TileFn,
    grid: TileGrid,
    batch_size: int,
    window: str,
    allocate: Allocate,
    tick: Tick,
    resumer: Resumer,
) -> np.ndarray:
    """Overlapping tiles blended with ``window``, normalised by the summed weights."""
    per_row = grid.n_tiles // grid.counts[0]
    rows = min(grid.counts[0], math.ceil(batch_size / per_row))
    bands = _row_bands(grid, rows)
    saved = resumer.load()
    carried = {"denominator": Band(1, grid, rows, np.float64)}
    out = None
    if saved is not None:
        carried["numerator"] = Band(saved.channels, grid, rows, np.float64)
        out = allocate(saved.channels)
    first = _start_bands(bands, saved, carried, tick)
    done = 0 if saved is None else saved.done
    denominator = carried["denominator"]
    for b in range(first, len(bands)):
        band = bands[b]
        for chunk in batched(band, batch_size):
            results = tile_fn(_read_batch(image, grid, chunk), chunk)
            if out is None:
                carried["numerator"] = Band(results.shape[1], grid, rows, np.float64)
                out = allocate(results.shape[1])
            numerator = carried["numerator"]
            for index, result in zip(chunk, results):
                w = _window(grid, index, window)
                numerator.data[numerator.local(grid.window(index))] += w * result
                denominator.data[denominator.local(grid.window(index))] += w
            tick(len(chunk))
        last_row = band[-1][0]
        # rows before the next tile row's start receive no more contributions
        stop = (
            grid.start((last_row + 1,) + band[-1][1:])[0]
            if last_row + 1 < grid.counts[0]
            else grid.padded_shape[0]
        )
        numerator = carried["numerator"]

        def ratio(rows: slice, numerator: Band = numerator, columns=out.shape[2:]) -> np.ndarray:
            # only the image's own columns: the grid's coordinates past it get no tile
            region = (slice(None), rows, *(slice(0, n) for n in columns))
            return numerator.data[region] / denominator.data[region]

        _flush(out, ratio, denominator.origin, done, stop)
        done = stop
        progress = Progress(b + 1, done, 0, out.shape[0])
        _next_band(bands, b + 1, grid, carried, progress, resumer, out)
    return out


def run_sati(
    image,
    tile_fn: TileFn,
    grid: TileGrid,
    order: str,
    batch_size: int,
    allocate: Allocate,
    tick: Tick,
    resumer: Resumer,
) -> np.ndarray:
    """Stitching aware inference (paper III-A, III-E).

    Every tile's leading overlap strips are replaced by what is already in the canvas (its
    predecessors' outputs) before ``fn`` sees it; the tile then writes its output from the middle
    of each leading overlap to its end. Raster order runs one tile at a time; wavefront order
    groups the tiles of a band of tile rows into waves (equal ``sum_k 2^(N-1-k) i_k``) that never
    overlap and runs each wave in batches. Both give the same canvas.
    """
    out = allocate(image.shape[0])
    rows = 1 if order == "raster" else min(batch_size, grid.counts[0])
    bands = _row_bands(grid, rows)
    canvas = Band(image.shape[0], grid, rows)
    saved = resumer.load()
    first = _start_bands(bands, saved, {"canvas": canvas}, tick)
    done = 0 if saved is None else saved.done
    for b in range(first, len(bands)):
        band = bands[b]
        if order == "raster":
            schedule = [[index] for index in band]
        else:
            waves: dict[int, list[Index]] = {}
            for index in band:
                waves.setdefault(grid.wave_of(index), []).append(index)
            schedule = [waves[t] for t in sorted(waves)]
        for wave in schedule:
            for chunk in batched(wave, batch_size):
                tiles = _read_batch(image, grid, chunk)
                for tile, index in zip(tiles, chunk):
                    leading = grid.leading(index)
                    if any(leading):
                        mask = strip_mask(grid.tile, grid.overlap, leading)
                        np.copyto(tile, canvas.data[canvas.local(grid.window(index))], where=mask)
                results = tile_fn(tiles, chunk)
                for index, result in zip(chunk, results):
                    written = grid.written(index)
                    local = canvas.local(written)[1:]
                    write_region(
                        canvas.data,
                        result,
                        local,
                        (grid.start(index)[0] - canvas.origin, *grid.start(index)[1:]),
                        canvas.data.shape[1:],
                    )
                tick(len(chunk))
        last_row = band[-1][0]
        # the next tile row writes from its leading seam on; everything before it is final
        if last_row + 1 < grid.counts[0]:
            stop = grid.start((last_row + 1,) + band[-1][1:])[0] + grid.cut[0]
        else:
            stop = grid.padded_shape[0]
        _flush(out, lambda rows: canvas.data[:, rows], canvas.origin, done, stop)
        done = stop
        progress = Progress(b + 1, done, 0, out.shape[0])
        _next_band(bands, b + 1, grid, {"canvas": canvas}, progress, resumer, out)
    return out
