"""SATI pipelined over a ring of processes: N processes stitch N bands of tile rows at once.

SATI tiles depend on their predecessors, so the image cannot be cut into independent parts.
It can be cut into *bands* of tile rows (along the first spatial dim; the bands of
:func:`~satikit.stitching.strategies.sati_bands`, one tile row each in raster order or with
``batch_size`` 1) dealt out round robin: process ``r`` of ``N`` runs bands ``r, r + N, ...``.
A band depends on the band before it only through the strip where the two overlap, the
``O + m`` rows (``m``: margin) that the band's first tile row takes from the previous band's
last tile row. That strip becomes final from its start along the second spatial dim as the
previous band's last tile row advances: once the tiles of its *line* ``k`` (2D: tile
``(i, k)``; 3D: tiles ``(i, k, *)``) are done, the strip is final up to where line ``k + 1``'s
seam starts. So each process sends the strip line by line to the next process as it goes
(:class:`Ring`, e.g. ``torch.distributed`` ``isend``), and the next process starts a batch as
soon as the strip above its tiles has arrived: N bands move down the image together along the
wavefront, a few tiles apart.

Every band runs the same batches, in the same order, on the same canvas values as in one
process (:func:`~satikit.stitching.strategies.run_sati`), so the output is bit-identical.

Output rows: band ``b`` finalises rows ``[lo_b, hi_b)``. Processes write their rows into one
shared ``out``; with a chunked ``out`` (zarr: ``align`` rows per chunk) two processes must never
write into one chunk, so each band writes only whole chunks and hands the rows of its last,
unfinished chunk (the *tail*, fewer than ``align`` rows) on to the next band along with its
strip. The tail message also tells the next band that every row before it is written.

Resume: after writing its rows, a band saves its strip and tail (``band{b}.safetensors`` in
``state_dir``, replaced atomically; older bands' states are then deleted). A saved band ``b``
means rows ``[0, w_b)`` of ``out`` are final, where ``w_b`` is the start of its tail; a resumed
run continues from the band after the latest saved one (:func:`saved_band`), with any number of
processes. All processes must start from the same band, so one process reads
:func:`saved_band` before any starts and hands the result to all (``resume_after``): a process
that looked later could find a band saved meanwhile and skip messages the others send.

Memory per process: a canvas of ``C`` float32 planes over one band (as :func:`run_sati`), plus
the strip lines and tails in flight (``O + m`` rows and fewer than ``align`` rows of the image
width).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from satikit.io.atomic import atomic_path
from satikit.stitching.band import Band
from satikit.stitching.grid import Index, TileGrid
from satikit.stitching.runner import TileFn
from satikit.stitching.strategies import flush_rows, sati_bands, sati_chunks, sati_final, sati_tiles

__all__ = ["BandPlan", "Pipeline", "Ring", "saved_band"]

VERSION = 1
_KEY = "satikit.pipeline"
_STATE = re.compile(r"band(\d+)\.safetensors")


@runtime_checkable
class Ring(Protocol):
    """Point-to-point links of process ``rank`` in a ring of ``size`` processes: messages go to
    ``(rank + 1) % size`` and come from ``(rank - 1) % size``, in the order they were sent.

    Attributes:
        rank: this process, ``0 .. size - 1``.
        size: number of processes.
    """

    rank: int
    size: int

    def send(self, array: np.ndarray) -> None:
        """Send a float32 copy of ``array`` to the next process without waiting for it."""
        ...

    def recv(self, shape: Sequence[int]) -> np.ndarray:
        """The next float32 array of ``shape`` from the previous process (waits for it)."""
        ...

    def flush(self) -> None:
        """Wait until every array sent has been received."""
        ...


@dataclass(frozen=True)
class BandPlan:
    """Which process runs which band, and what each band writes and hands on.

    Every process derives the same plan from the grid and the settings.

    Attributes:
        grid: the SATI tile grid.
        order: ``"raster"`` or ``"wavefront"``.
        batch_size: tiles per ``fn`` call.
        align: rows per chunk of ``out`` along the first spatial dim (1: any row range can be
            written by any process, e.g. a memory map).
    """

    grid: TileGrid
    order: str
    batch_size: int
    align: int = 1

    @cached_property
    def bands(self) -> list[list[Index]]:
        """The tile indices of each band, raster order inside."""
        return sati_bands(self.grid, self.order, self.batch_size)[1]

    @cached_property
    def band_rows(self) -> int:
        """Tile rows ``R`` per band."""
        return sati_bands(self.grid, self.order, self.batch_size)[0]

    def strip(self, b: int) -> int:
        """Rows band ``b`` shares with band ``b - 1`` (0 for the first band and past the
        last): ``O_0 + m_0``, more when ``b`` starts with the last tile row shifted back to
        the border (:meth:`TileGrid.start`)."""
        if not 0 < b < len(self.bands):
            return 0
        grid = self.grid
        previous_end = grid.start(self.bands[b - 1][0])[0] + Band.height_of(grid, self.band_rows)
        return previous_end - grid.start(self.bands[b][0])[0]

    def rows(self, b: int) -> tuple[int, int]:
        """``(lo, hi)``: the output rows band ``b`` finalises (clipped to the image)."""
        height = self.grid.shape[0]
        lo = 0 if b == 0 else sati_final(self.grid, self.bands[b - 1])
        return min(lo, height), min(sati_final(self.grid, self.bands[b]), height)

    def written(self, b: int) -> int:
        """Rows ``[0, w)`` of ``out`` that are final once band ``b`` has written its chunks (the
        rest of its rows, from ``w`` on, is its tail); 0 before the first band."""
        if b < 0:
            return 0
        hi = self.rows(b)[1]
        return hi if hi == self.grid.shape[0] else hi // self.align * self.align

    def line_ends(self) -> list[int]:
        """Along the second spatial dim: how far the strip is final once lines ``0 .. k`` of
        the last tile row above it are done (the padded end after the last line)."""
        grid = self.grid
        starts = [grid.start((0, k, *(0,) * (grid.ndim - 2)))[1] for k in range(grid.counts[1])]
        return [start + grid.cut[1] for start in starts[1:]] + [grid.padded_shape[1]]

    def tiles(self, rank: int, size: int, first: int = 0) -> int:
        """How many tiles process ``rank`` of ``size`` runs from band ``first`` on."""
        return sum(
            len(band) for b, band in enumerate(self.bands) if b >= first and b % size == rank
        )


@dataclass(frozen=True)
class _Saved:
    band: int
    strip: np.ndarray
    tail: np.ndarray


def _saved_bands(folder: Path | None) -> list[int]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _STATE.fullmatch(p.name)))


def saved_band(state_dir: str | os.PathLike[str] | None) -> int | None:
    """The latest band whose state a pipelined run saved in ``state_dir`` (None: none)."""
    bands = _saved_bands(None if state_dir is None else Path(state_dir))
    return bands[-1] if bands else None


class _States:
    """The pipeline's resume states: one file per band, the latest one counts."""

    def __init__(self, folder: Path | None, identity: dict[str, Any]):
        self.folder = folder
        self.identity = json.loads(json.dumps(identity))

    def load(self, band: int, arrays: bool = True) -> _Saved | None:
        """The state saved after band ``band`` (``arrays=False``: only check that it belongs
        to this setup, if it still exists; returns None).

        Raises:
            ValueError: missing (with ``arrays``), unreadable, or of another setup.
        """
        if self.folder is None:
            raise ValueError(f"no state folder to resume after band {band} from")
        path = self.folder / f"band{band}.safetensors"
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="np") as handle:
                meta = json.loads((handle.metadata() or {})[_KEY])
                strip = handle.get_tensor("strip") if arrays else None
                tail = handle.get_tensor("tail") if arrays else None
        except FileNotFoundError:
            if not arrays:  # the band after it is saved already: its rank has checked it
                return None
            raise ValueError(f"{path}: the resume state is missing") from None
        except (SafetensorError, KeyError, json.JSONDecodeError, OSError) as exc:
            raise ValueError(f"{path}: not a readable resume state ({exc})") from None
        saved = meta.get("identity") or {}
        if meta.get("version") != VERSION or saved != self.identity or meta.get("band") != band:
            keys = sorted(set(self.identity) | set(saved))
            diffs = [
                f"{k} {saved.get(k)!r} (now {self.identity.get(k)!r})"
                for k in keys
                if saved.get(k) != self.identity.get(k)
            ]
            raise ValueError(
                f"{path}: the interrupted translation used a different setup: "
                + (", ".join(diffs) or f"version {meta.get('version')!r}")
            )
        return None if strip is None or tail is None else _Saved(band, strip, tail)

    def save(self, band: int, strip: np.ndarray, tail: np.ndarray) -> None:
        """Save band ``band``'s strip and tail, then delete the states of earlier bands."""
        if self.folder is None:
            return
        from safetensors.numpy import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {"version": VERSION, "identity": self.identity, "band": band}
        arrays = {"strip": np.ascontiguousarray(strip), "tail": np.ascontiguousarray(tail)}
        with atomic_path(self.folder / f"band{band}.safetensors") as tmp:
            save_file(arrays, str(tmp), metadata={_KEY: json.dumps(meta)})
        for older in _saved_bands(self.folder):
            if older < band:
                (self.folder / f"band{older}.safetensors").unlink(missing_ok=True)


@dataclass(frozen=True)
class Pipeline:
    """This process's part in a SATI run pipelined over a :class:`Ring` (see the module
    docstring); hand it to :func:`satikit.stitching.stitch_on_grid` as ``pipeline``.

    Attributes:
        ring: the links to the neighbouring processes.
        align: rows per chunk of ``out`` along the first spatial dim (1 for memory maps).
        state_dir: where band states are saved for resuming (None: not saved); shared by all
            processes.
        resume_after: continue after this band, whose state is in ``state_dir`` (None: from
            the start); the same for every process, e.g. :func:`saved_band` read by one
            process before any starts.
    """

    ring: Ring
    align: int = 1
    state_dir: str | os.PathLike[str] | None = None
    resume_after: int | None = None

    def plan(self, grid: TileGrid, order: str, batch_size: int) -> BandPlan:
        """The band plan every process shares."""
        return BandPlan(grid, order, batch_size, self.align)

    def tiles(self, grid: TileGrid, order: str, batch_size: int) -> int:
        """How many tiles this process runs in a whole run."""
        return self.plan(grid, order, batch_size).tiles(self.ring.rank, self.ring.size)

    def run(
        self,
        image,
        tile_fn: TileFn,
        grid: TileGrid,
        order: str,
        batch_size: int,
        allocate: Callable[[int], Any],
        tick: Callable[[int], object],
        identity: dict[str, Any],
    ) -> Any:
        """Run this process's bands into ``out`` (``allocate``'s); returns ``out``.

        ``identity``: what a resume state must match (the engine's description of the call).

        Raises:
            ValueError: fewer than 2 spatial dims, ``align < 1``, or a missing, unreadable or
                foreign resume state.
        """
        if grid.ndim < 2:
            raise ValueError("a pipelined SATI run needs at least 2 spatial dims")
        if self.align < 1:
            raise ValueError(f"align must be >= 1, got {self.align}")
        out = allocate(image.shape[0])
        plan = self.plan(grid, order, batch_size)
        folder = None if self.state_dir is None else Path(self.state_dir)
        states = _States(folder, {**identity, "align": self.align})
        rank, size = self.ring.rank, self.ring.size
        first = 0 if self.resume_after is None else self.resume_after + 1
        saved = None  # what the first band takes instead of messages; only its rank reads it
        if self.resume_after is not None:
            mine = first % size == rank and first < len(plan.bands)
            saved = states.load(self.resume_after, arrays=mine)
        tick(plan.tiles(rank, size) - plan.tiles(rank, size, first))
        canvas = Band(image.shape[0], grid, plan.band_rows)
        for b in range(first, len(plan.bands)):
            if b % size == rank:
                loaded = saved if b == first and saved is not None else None
                _run_band(image, tile_fn, plan, b, canvas, self.ring, loaded, out, states, tick)
        self.ring.flush()
        return out


def _run_band(
    image,
    tile_fn: TileFn,
    plan: BandPlan,
    b: int,
    canvas: Band,
    ring: Ring,
    loaded: _Saved | None,
    out,
    states: _States,
    tick: Callable[[int], object],
) -> None:
    """Run band ``b``: take the strip above it (``loaded`` or from ``ring``), run its batches
    handing its own last strip on line by line, write its rows, hand on its tail, save."""
    grid, band = plan.grid, plan.bands[b]
    last = b == len(plan.bands) - 1
    rest = grid.padded_shape[1:]
    canvas.restore(grid.start(band[0])[0], np.zeros((canvas.data.shape[0], 0, *rest), np.float32))
    ends = plan.line_ends()
    incoming = _Incoming(ring, canvas, plan.strip(b), ends)
    if loaded is not None:
        canvas.data[:, : plan.strip(b)] = loaded.strip
        incoming.received = len(ends)
    elif b == 0:
        incoming.received = len(ends)
    outgoing = None if last else _Outgoing(ring, canvas, plan, band, ends, plan.strip(b + 1))
    first_row = band[0][0]
    for chunk in sati_chunks(grid, band, plan.order, plan.batch_size):
        above = [min(grid.start(i)[1] + grid.tile[1], rest[0]) for i in chunk if i[0] == first_row]
        incoming.until(max(above, default=0))
        sati_tiles(image, tile_fn, grid, canvas, chunk)
        tick(len(chunk))
        if outgoing is not None:
            outgoing.done(chunk)
    incoming.until(rest[0])  # the whole strip is in by now; keeps the messages in step
    tail = _previous_tail(plan, b, ring, loaded, out.shape[0])
    new_tail = _write_rows(plan, b, canvas, tail, out)
    if not last:
        ring.send(new_tail if new_tail.shape[1] else np.zeros(1, np.float32))
    height = canvas.data.shape[1]
    states.save(b, canvas.data[:, height - plan.strip(b + 1) :], new_tail)


class _Incoming:
    """The strip above a band, arriving line by line into the canvas's first rows."""

    def __init__(self, ring: Ring, canvas: Band, strip: int, ends: list[int]):
        self.ring, self.canvas, self.strip, self.ends = ring, canvas, strip, ends
        self.received = 0

    def until(self, extent: int) -> None:
        """Receive lines until the strip is there up to ``extent`` along the second dim."""
        while self.received < len(self.ends) and self._covered() < extent:
            lo, hi = self._covered(), self.ends[self.received]
            data = self.canvas.data
            shape = (data.shape[0], self.strip, hi - lo, *data.shape[3:])
            data[:, : self.strip, lo:hi] = self.ring.recv(shape)
            self.received += 1

    def _covered(self) -> int:
        return self.ends[self.received - 1] if self.received else 0


class _Outgoing:
    """A band's last strip, sent line by line as the lines of its last tile row finish."""

    def __init__(
        self,
        ring: Ring,
        canvas: Band,
        plan: BandPlan,
        band: list[Index],
        ends: list[int],
        strip: int,
    ):
        self.ring, self.canvas, self.plan, self.ends, self.strip = ring, canvas, plan, ends, strip
        self.last_row = band[-1][0]
        self.per_line = math.prod(plan.grid.counts[2:])
        self.finished = [0] * len(ends)
        self.sent = 0

    def done(self, chunk: list[Index]) -> None:
        """Count ``chunk``'s tiles of the last row; send every line that is now complete."""
        for index in chunk:
            if index[0] == self.last_row:
                self.finished[index[1]] += 1
        height = self.canvas.data.shape[1]
        while self.sent < len(self.ends) and self.finished[self.sent] == self.per_line:
            lo = self.ends[self.sent - 1] if self.sent else 0
            self.ring.send(self.canvas.data[:, height - self.strip :, lo : self.ends[self.sent]])
            self.sent += 1


def _previous_tail(
    plan: BandPlan, b: int, ring: Ring, loaded: _Saved | None, channels: int
) -> np.ndarray:
    """Rows ``[w_{b-1}, lo_b)`` that earlier bands left for band ``b`` to write."""
    if loaded is not None:
        return loaded.tail
    rest = plan.grid.shape[1:]
    if b == 0:
        return np.zeros((channels, 0, *rest), np.float32)
    rows = plan.rows(b - 1)[1] - plan.written(b - 1)
    if rows == 0:
        ring.recv((1,))  # the previous band's rows are written
        return np.zeros((channels, 0, *rest), np.float32)
    return ring.recv((channels, rows, *rest))


def _write_rows(plan: BandPlan, b: int, canvas: Band, tail: np.ndarray, out) -> np.ndarray:
    """Write ``tail`` and band ``b``'s rows up to its last whole chunk; returns its own tail
    ``(C, hi_b - w_b, *S[1:])``."""
    lo, hi = plan.rows(b)
    start, stop = plan.written(b - 1), plan.written(b)
    if stop > start:
        flush_rows(out, lambda rows: tail[:, rows], start, start, min(lo, stop))
        flush_rows(out, lambda rows: canvas.data[:, rows], canvas.origin, max(lo, start), stop)
        flush = getattr(out, "flush", None)
        if callable(flush):
            flush()
    crop = (slice(None), *(slice(0, n) for n in plan.grid.shape[1:]))
    kept = tail[:, max(0, stop - start) :]
    own = canvas.data[:, max(lo, stop) - canvas.origin : hi - canvas.origin]
    return np.concatenate([kept, own[(slice(None), slice(None), *crop[1:])]], axis=1)
