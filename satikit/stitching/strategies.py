"""The four stitching strategies. Each takes the image, a :class:`TileFn` and a grid.

Memory each strategy holds besides the ``batch_size`` tiles in flight (see :class:`Band`, with
``R`` tile rows along the first spatial dim and ``P`` the padded shape):

- ``none``: the whole image and its output (one call).
- ``simple``: nothing; each tile's owned region goes straight to ``out``.
- ``weighted``: float64 accumulators for ``C_out + 1`` planes of a band of
  ``R = ceil(batch_size / tiles per row)`` tile rows (float64 so an identity ``fn`` is
  reproduced exactly after the division), and up to ``batch_size - 1`` tile outputs of the
  next band.
- ``sati``: a float32 canvas of ``C`` planes over a band of tile rows (raster order: 1 row;
  wavefront: ``R = min(batch_size, rows)``): the stitched output so far, which later tiles read
  their leading strips from.

``simple``, ``weighted`` and ``sati`` save their progress through a :class:`Resumer` (a no-op
without a state path) and can continue from it; see :mod:`satikit.stitching.resume`.

``simple`` and ``weighted`` can compute a range of output rows only (``rows``, along the first
spatial dim): the batches that hold no tile reaching those rows are skipped and ``out`` is
written only there. Batches are the same as in a whole run and contributions are summed in
the same order, so the rows come out bit-identical; several processes can so share one output
(:mod:`satikit.translation.distributed`). ``sati`` shares its work through
:mod:`satikit.stitching.pipeline`, which reuses the band, wave and tile steps below.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable

import numpy as np
import torch

from satikit.stitching.band import Band
from satikit.stitching.grid import Index, TileGrid
from satikit.stitching.readahead import check_finite, read_batch, reader
from satikit.stitching.resume import Progress, Resumer
from satikit.stitching.runner import TileFn, batched, write_region
from satikit.stitching.windows import blend_window, strip_mask
from satikit.stitching.writebehind import WriteBehind

__all__ = [
    "Rows",
    "flush_rows",
    "owned_rows",
    "reaches_rows",
    "run_none",
    "run_sati",
    "run_simple",
    "run_weighted",
    "sati_bands",
    "sati_chunks",
    "sati_tiles",
    "window_rows",
]

Allocate = Callable[[int], np.ndarray]
Tick = Callable[[int], object]
#: ``(start, stop)``: a range of output rows along the first spatial dim (padded coordinates).
Rows = tuple[int, int]


def _meets(region: slice, rows: Rows | None) -> bool:
    """Whether ``region`` (along the first spatial dim) reaches into ``rows`` (None: all)."""
    return rows is None or (region.start < rows[1] and region.stop > rows[0])


def _clip(region: tuple[slice, ...], rows: Rows | None) -> tuple[slice, ...]:
    """``region`` cut to ``rows`` along the first spatial dim (possibly empty)."""
    if rows is None:
        return region
    first = region[0]
    return (slice(max(first.start, rows[0]), min(first.stop, rows[1])), *region[1:])


def owned_rows(grid: TileGrid) -> Callable[[Index], slice]:
    """The rows of ``out`` a ``simple`` tile writes: its owned region's."""
    return lambda index: grid.owned(index)[0]


def window_rows(grid: TileGrid) -> Callable[[Index], slice]:
    """The rows of ``out`` a blended tile contributes to: its window's."""
    return lambda index: grid.window(index)[0]


def reaches_rows(
    reach: Callable[[Index], slice], rows: Rows | None
) -> Callable[[list[Index]], bool]:
    """``needed(chunk)``: whether a batch holds a tile whose ``reach`` meets ``rows``."""
    return lambda chunk: rows is None or any(_meets(reach(index), rows) for index in chunk)


def _weighted_bands(grid: TileGrid, batch_size: int) -> tuple[int, list[list[Index]]]:
    """``(R, bands)``: ``weighted`` accumulates bands of ``R`` tile rows."""
    per_row = grid.n_tiles // grid.counts[0]
    rows = min(grid.counts[0], math.ceil(batch_size / per_row))
    return rows, _row_bands(grid, rows)


def _row_bands(grid: TileGrid, rows: int) -> list[list[Index]]:
    """Tile indices grouped into bands of ``rows`` consecutive tile rows, raster order inside."""
    bands: dict[int, list[Index]] = {}
    for index in grid.raster():
        bands.setdefault(index[0] // rows, []).append(index)
    return [bands[b] for b in sorted(bands)]


#: Rows written to ``out`` per step when a band is flushed: bounds the temporaries (the
#: division of ``weighted``, the decode of an on-disk sink) to a thin slab of the band.
FLUSH_ROWS = 64


def flush_rows(
    out: np.ndarray,
    read: Callable[[slice], np.ndarray],
    origin: int,
    done: int,
    stop: int,
    rows: Rows | None = None,
    writer: WriteBehind | None = None,
) -> None:
    """Write padded rows ``[done, stop)`` (within ``rows``, if given) into ``out``,
    ``FLUSH_ROWS`` at a time.

    ``read(rows)`` returns the ``(C, n, *rest)`` values of band-local ``rows`` (the band starts at
    padded row ``origin``). ``writer``: hand the writes to a :class:`WriteBehind` (it waits for
    the previous band's writes first, so one band at most is in flight).
    """
    if writer is not None:
        writer.barrier()
    if rows is not None:
        done, stop = max(done, rows[0]), min(stop, rows[1])
    stop = min(stop, out.shape[1])
    rest = tuple(slice(0, s) for s in out.shape[2:])
    for first in range(done, stop, FLUSH_ROWS):
        last = min(first + FLUSH_ROWS, stop)
        values = read(slice(first - origin, last - origin))[(slice(None), slice(None), *rest)]
        key = (slice(None), slice(first, last), *rest)
        if writer is None:
            out[key] = values
        else:
            writer.write(out, key, values)


def run_none(image, tile_fn: TileFn, allocate: Allocate, tick: Tick) -> np.ndarray:
    """The whole image in one call (the "no tiling" reference)."""
    whole = np.asarray(image[...], dtype=np.float32)
    check_finite(whole, "the image")
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
    rows: Rows | None = None,
    depth: int = 1,
) -> np.ndarray:
    """Independent tiles, each cropped at the middle of its overlaps.

    Saves its progress (tiles finished) after every batch that completes a tile row.
    ``rows``: compute and write only these output rows (see the module docstring). ``depth``:
    batches read ahead (:mod:`satikit.stitching.readahead`).
    """
    needed = reaches_rows(owned_rows(grid), rows)
    saved = resumer.load()
    out = None if saved is None else allocate(saved.channels)
    finished = 0 if saved is None else saved.next
    before_resume = batched(itertools.islice(grid.raster(), finished), batch_size)
    tick(sum(len(chunk) for chunk in before_resume if needed(chunk)))
    per_row = grid.n_tiles // grid.counts[0]
    steps = []  # (chunk, tiles finished after it) of every batch to run
    for chunk in batched(itertools.islice(grid.raster(), finished, None), batch_size):
        finished += len(chunk)
        if needed(chunk):
            steps.append((chunk, finished))
    with reader(image, grid, (chunk for chunk, _ in steps), depth) as tiles:
        for chunk, finished in steps:
            results = tile_fn(tiles.read(chunk), chunk)
            if out is None:
                out = allocate(results.shape[1])
            for index, result in zip(chunk, results):
                write_region(out, result, _clip(grid.owned(index), rows), grid.start(index))
            tick(len(chunk))
            if finished < grid.n_tiles and finished // per_row > (finished - len(chunk)) // per_row:
                resumer.save(out, Progress(finished, 0, 0, results.shape[1]))
    return out


def _start_bands(saved: Progress | None, carried: dict[str, Band]) -> int:
    """Restore ``carried`` from ``saved``; returns the first band to run (0 without a state)."""
    if saved is None:
        return 0
    for name, band in carried.items():
        band.restore(saved.origin, saved.arrays[name])
    return saved.next


def _next_band(
    bands: list[list[Index]],
    finished: int,
    grid: TileGrid,
    carried: dict[str, Band],
    progress: Progress,
    resumer: Resumer,
    out,
    writer: WriteBehind | None = None,
) -> None:
    """After ``finished`` bands (their rows flushed to ``out``): move ``carried`` to the next
    band's first row and save the progress. Nothing to do after the last band. With an active
    ``writer`` the save runs on its worker after the band's writes (from a copy of the carried
    rows)."""
    if finished == len(bands):
        return
    origin = grid.start(bands[finished][0])[0]
    for band in carried.values():
        band.advance(origin)
    progress.origin = origin
    behind = writer is not None and writer.active
    progress.arrays = {
        name: band.carried().copy() if behind else band.carried() for name, band in carried.items()
    }
    if behind:
        writer.submit(resumer.save, out, progress)
    else:
        resumer.save(out, progress)


def _window(grid: TileGrid, index: Index, window: str) -> torch.Tensor:
    """Blend window of one tile (float64 tensor, not to be written); edges on the image border
    keep full weight."""
    flat_before = tuple(i == 0 for i in index)
    flat_after = tuple(i == n - 1 for i, n in zip(index, grid.counts))
    return _window64(tuple(grid.tile), window, flat_before, flat_after)


@functools.lru_cache(maxsize=64)
def _window64(
    tile: tuple[int, ...], window: str, flat_before: tuple[bool, ...], flat_after: tuple[bool, ...]
) -> torch.Tensor:
    w = blend_window(tile, window, flat_before=flat_before, flat_after=flat_after)  # type: ignore[arg-type]
    return torch.tensor(w, dtype=torch.float64)  # float32 x float32 products are exact in float64


def _accumulate(
    numerator: Band,
    denominator: Band,
    grid: TileGrid,
    index: Index,
    result: torch.Tensor,
    window: str,
) -> None:
    """Add ``w * result`` and ``w`` of one tile (``result``: ``(C_out, *T)`` float32) to the
    float64 band accumulators, in place. The products of float32 values are exact in float64,
    so torch's (multithreaded, possibly fused) multiply-add sums exactly what numpy's would."""
    w = _window(grid, index, window)
    region = grid.window(index)
    torch.from_numpy(numerator.data[numerator.local(region)]).addcmul_(w, result)
    torch.from_numpy(denominator.data[denominator.local(region)]).add_(w)


def _band_stop(grid: TileGrid, band: list[Index]) -> int:
    """Padded row where the tile row after ``band`` starts: the rows before it receive no more
    contributions once ``band`` is summed (the padded height after the last band)."""
    last = band[-1]
    if last[0] + 1 < grid.counts[0]:
        return grid.start((last[0] + 1,) + last[1:])[0]
    return grid.padded_shape[0]


def run_weighted(
    image,
    tile_fn: TileFn,
    grid: TileGrid,
    batch_size: int,
    window: str,
    allocate: Allocate,
    tick: Tick,
    resumer: Resumer,
    rows: Rows | None = None,
    depth: int = 1,
) -> np.ndarray:
    """Overlapping tiles blended with ``window``, normalised by the summed weights.

    Batches are ``simple``'s (``batch_size`` tiles in raster order, across band borders, so
    every batch but the last is full); a batch's tiles past the current band wait (at most
    ``batch_size - 1`` tile outputs) until the band is flushed. A resumed run recomputes the
    batch that held the saved band's first tile and drops its earlier tiles, so every tile is
    computed in the same batch as in an uninterrupted run.

    ``rows``: compute and write only these output rows (see the module docstring); the bands
    before the first one reaching them are skipped, the accumulators start there at zero.
    ``depth``: batches read ahead (:mod:`satikit.stitching.readahead`).
    """
    band_rows, bands = _weighted_bands(grid, batch_size)
    band_of = {index: b for b, band in enumerate(bands) for index in band}
    needed = reaches_rows(window_rows(grid), rows)
    chunks = [chunk for chunk in batched(grid.raster(), batch_size) if needed(chunk)]
    saved = resumer.load()
    carried = {"denominator": Band(1, grid, band_rows, np.float64)}
    out = None
    if saved is not None:
        carried["numerator"] = Band(saved.channels, grid, band_rows, np.float64)
        out = allocate(saved.channels)
    current = _start_bands(saved, carried)
    denominator = carried["denominator"]
    if saved is None and band_of[chunks[0][0]] > 0:  # no earlier tile reaches `rows`
        current = band_of[chunks[0][0]]
        denominator.advance(grid.start(bands[current][0])[0])
    stop_band = band_of[chunks[-1][-1]] + 1
    # the first batch holding a tile of the band to run (none left when the state was saved
    # after the last band of a `rows` run)
    start = next(
        (c for c, chunk in enumerate(chunks) if band_of[chunk[-1]] >= current), len(chunks)
    )
    tick(sum(map(len, chunks[:start])))
    done = 0 if saved is None else saved.done

    def finish(b: int, done: int) -> int:
        """Flush band ``b``'s final rows, move the accumulators on; returns the rows done."""
        stop = _band_stop(grid, bands[b])
        numerator = carried["numerator"]

        def ratio(rows: slice, columns=out.shape[2:]) -> np.ndarray:
            # only the image's own columns: the grid's coordinates past it get no tile
            region = (slice(None), rows, *(slice(0, n) for n in columns))
            return numerator.data[region] / denominator.data[region]

        flush_rows(out, ratio, denominator.origin, done, stop, rows, writer)
        progress = Progress(b + 1, stop, 0, out.shape[0])
        _next_band(bands, b + 1, grid, carried, progress, resumer, out, writer)
        return stop

    with reader(image, grid, chunks[start:], depth) as tiles, WriteBehind() as writer:
        for chunk in chunks[start:]:
            results = tile_fn(tiles.read(chunk), chunk)
            if out is None:
                carried["numerator"] = Band(results.shape[1], grid, band_rows, np.float64)
                if denominator.origin:
                    carried["numerator"].advance(denominator.origin)
                out = allocate(results.shape[1])
            for index, result in zip(chunk, torch.from_numpy(results)):
                if band_of[index] < current:  # summed before the saved state
                    continue
                while band_of[index] > current:
                    done = finish(current, done)
                    current += 1
                _accumulate(carried["numerator"], denominator, grid, index, result, window)
            tick(len(chunk))
        for b in range(current, stop_band):
            done = finish(b, done)
    return out


def sati_bands(grid: TileGrid, order: str, batch_size: int) -> tuple[int, list[list[Index]]]:
    """``(R, bands)``: ``sati`` keeps a canvas over bands of ``R`` tile rows (raster order: 1;
    wavefront: ``min(batch_size, rows)``). ``order`` is resolved already (not ``"auto"``)."""
    if order not in ("raster", "wavefront"):
        raise ValueError(f"order must be 'raster' or 'wavefront' here, got {order!r}")
    rows = 1 if order == "raster" else min(batch_size, grid.counts[0])
    return rows, _row_bands(grid, rows)


def sati_chunks(
    grid: TileGrid, band: list[Index], order: str, batch_size: int
) -> list[list[Index]]:
    """The ``fn`` batches of one band, in the order ``sati`` runs them: one tile at a time in
    raster order; else the band's waves (equal ``sum_k 2^(N-1-k) i_k``), each in batches."""
    if order == "raster":
        return [[index] for index in band]
    waves: dict[int, list[Index]] = {}
    for index in band:
        waves.setdefault(grid.wave_of(index), []).append(index)
    return [chunk for t in sorted(waves) for chunk in batched(waves[t], batch_size)]


def sati_tiles(
    image,
    tile_fn: TileFn,
    grid: TileGrid,
    canvas: Band,
    chunk: list[Index],
    tiles: np.ndarray | None = None,
) -> None:
    """Run one batch of SATI tiles: read them (unless ``tiles``, the batch already read, is
    given), replace their leading strips by the canvas (their predecessors' outputs), call
    ``fn`` and write each output into the canvas from its leading seams to its end. The canvas
    must hold the batch's windows."""
    if tiles is None:
        tiles = read_batch(image, grid, chunk)
    for tile, index in zip(tiles, chunk):
        leading = grid.leading(index)
        if any(leading):
            mask = strip_mask(grid.tile, grid.overlap, leading)
            np.copyto(tile, canvas.data[canvas.local(grid.window(index))], where=mask)
    results = tile_fn(tiles, chunk)
    for index, result in zip(chunk, results):
        local = canvas.local(grid.written(index))[1:]
        start = grid.start(index)
        write_region(
            canvas.data,
            result,
            local,
            (start[0] - canvas.origin, *start[1:]),
            canvas.data.shape[1:],
        )


def sati_final(grid: TileGrid, band: list[Index]) -> int:
    """The padded row up to which ``out`` is final once ``band`` is done: the next tile row
    writes from its leading seam on (the padded end after the last band)."""
    last_row = band[-1][0]
    if last_row + 1 < grid.counts[0]:
        return grid.start((last_row + 1,) + band[-1][1:])[0] + grid.cut[0]
    return grid.padded_shape[0]


def run_sati(
    image,
    tile_fn: TileFn,
    grid: TileGrid,
    order: str,
    batch_size: int,
    allocate: Allocate,
    tick: Tick,
    resumer: Resumer,
    depth: int = 1,
) -> np.ndarray:
    """Stitching aware inference (paper III-A, III-E).

    Every tile's leading overlap strips are replaced by what is already in the canvas (its
    predecessors' outputs) before ``fn`` sees it; the tile then writes its output from the middle
    of each leading overlap to its end. Raster order runs one tile at a time; wavefront order
    groups the tiles of a band of tile rows into waves (equal ``sum_k 2^(N-1-k) i_k``) that never
    overlap and runs each wave in batches. Both give the same canvas. ``depth``: batches of raw
    tiles read ahead (the strips are put in once the predecessors are done).
    """
    out = allocate(image.shape[0])
    rows, bands = sati_bands(grid, order, batch_size)
    canvas = Band(image.shape[0], grid, rows)
    saved = resumer.load()
    first = _start_bands(saved, {"canvas": canvas})
    tick(sum(map(len, bands[:first])))
    done = 0 if saved is None else saved.done
    chunks = [sati_chunks(grid, band, order, batch_size) for band in bands]
    plan = (chunk for band_chunks in chunks[first:] for chunk in band_chunks)
    with reader(image, grid, plan, depth) as tiles, WriteBehind() as writer:
        for b in range(first, len(bands)):
            for chunk in chunks[b]:
                sati_tiles(image, tile_fn, grid, canvas, chunk, tiles.read(chunk))
                tick(len(chunk))
            stop = sati_final(grid, bands[b])
            flush_rows(
                out, lambda rows: canvas.data[:, rows], canvas.origin, done, stop, None, writer
            )
            done = stop
            progress = Progress(b + 1, done, 0, out.shape[0])
            _next_band(bands, b + 1, grid, {"canvas": canvas}, progress, resumer, out, writer)
    return out
