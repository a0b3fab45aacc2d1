"""The stitching strategies as objects, one per name: the only place a strategy's name decides
anything.

Each :class:`Strategy` says what it needs (a tile grid, SATI's cut, rows shared between
processes, ...) and runs a :class:`TileJob` with one :meth:`Strategy.run`; the algorithms are in
:mod:`satikit.stitching.strategies`. Look one up with :func:`get_strategy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from satikit.choices import STRATEGIES, check_choice
from satikit.stitching.grid import Index, TileGrid, sati_overlap_message
from satikit.stitching.pipeline import Pipeline
from satikit.stitching.runner import TileFn, batched
from satikit.stitching.strategies import (
    Rows,
    owned_rows,
    reaches_rows,
    run_none,
    run_sati,
    run_simple,
    run_weighted,
    window_rows,
)

if TYPE_CHECKING:
    from satikit.settings import InferenceSettings

__all__ = [
    "REGISTRY",
    "NoTiling",
    "SATITiling",
    "SimpleTiling",
    "Strategy",
    "TileJob",
    "WeightedTiling",
    "count_tiles",
    "get_strategy",
]

Allocate = Callable[[int], np.ndarray]


@dataclass
class TileJob:
    """One strategy on one image: :meth:`run` is what a statistics pass re-runs with its own
    ``fn`` wrapper, allocator and resume state.

    Attributes:
        strategy: the :class:`Strategy` that runs it.
        image: ``(C, *spatial)`` encoded image (array-like, read one batch at a time).
        grid: the tile grid (None for :class:`NoTiling`).
        batch_size / order / window: as :class:`~satikit.settings.InferenceSettings`
            (``order`` resolved: ``raster`` or ``wavefront``).
        tick: called with the number of tiles each step finishes (a progress bar).
        identity: what a resume state must match (:mod:`satikit.stitching.resume`).
        rows: compute and write only these output rows (simple / weighted), or None.
        pipeline: run SATI's bands pipelined over several processes, or None.
        depth: batches of tiles read ahead (:mod:`satikit.stitching.readahead`).
    """

    strategy: Strategy
    image: Any
    grid: TileGrid | None
    batch_size: int
    order: str
    window: str
    tick: Callable[[int], object]
    identity: dict[str, Any]
    rows: Rows | None = None
    pipeline: Pipeline | None = None
    depth: int = 1

    def run(self, tile_fn: TileFn, allocate: Allocate, resumer: Any) -> np.ndarray:
        """Run the job; returns ``(C_out, *spatial)`` (``allocate``'s array)."""
        return self.strategy.run(self, tile_fn, allocate, resumer)


class Strategy:
    """A stitching strategy. Class attributes say what it needs:

    Attributes:
        name: its name in :data:`~satikit.choices.STRATEGIES`.
        tiled: runs on a tile grid (False: the whole image in one call).
        continues: each tile continues its predecessors' output (SATI): the grid is cut for
            it, the generator must keep the channel count, and a margin is allowed.
        shares_rows: several processes can each compute a range of output rows.
        blends: overlapping tiles are averaged (False: every output pixel comes from one
            tile's output).
        overlaps_by_default: without a given overlap, tiles overlap as the run recorded
            (False: side by side, the paper's simple tiling).
    """

    name: ClassVar[str]
    tiled: ClassVar[bool] = True
    continues: ClassVar[bool] = False
    shares_rows: ClassVar[bool] = False
    blends: ClassVar[bool] = False
    overlaps_by_default: ClassVar[bool] = True

    def grid(self, spatial: tuple[int, ...], settings: InferenceSettings) -> TileGrid | None:
        """The tile grid of resolved ``settings`` over an image of ``spatial`` shape.

        Raises:
            ValueError: no tile or overlap given, or an invalid one (:meth:`TileGrid.create`).
        """
        if settings.tile is None or settings.overlap is None:
            raise ValueError(f"the {self.name} strategy needs a tile size and an overlap")
        margin = 0 if settings.margin is None else settings.margin
        return TileGrid.create(
            spatial,
            settings.tile,
            settings.overlap,
            sati=self.continues,
            seam=settings.seam,
            margin=margin,
        )

    def check(self, grid: TileGrid | None, spatial: tuple[int, ...]) -> None:
        """Refuse a grid that does not fit the image or this strategy."""
        if grid is None or grid.shape != spatial:
            raise ValueError(
                f"grid shape {None if grid is None else grid.shape} does not match the "
                f"image {spatial}"
            )
        if self.continues:
            if any(2 * o >= t for o, t in zip(grid.window_overlap, grid.tile)):
                raise ValueError(sati_overlap_message(grid.tile, grid.overlap, grid.margin))
        elif grid.margin is not None:
            raise ValueError(
                f"margin is a SATI setting; the {self.name} strategy got {grid.margin}"
            )

    def reach(self, grid: TileGrid) -> Callable[[Index], slice]:
        """The output rows a tile contributes to (its window by default)."""
        return window_rows(grid)

    def tiles(self, job: TileJob) -> int:
        """How many tiles ``job`` hands to ``fn`` (the progress bar's total)."""
        assert job.grid is not None
        if job.rows is not None:
            return count_tiles(job.grid, self.name, job.batch_size, job.rows)
        return job.grid.n_tiles

    def relevant(self, settings: InferenceSettings) -> tuple[str, ...]:
        """The settings besides tile and overlap that change this strategy's output."""
        return ()

    def run(self, job: TileJob, tile_fn: TileFn, allocate: Allocate, resumer: Any) -> np.ndarray:
        raise NotImplementedError


class NoTiling(Strategy):
    """The whole image in one ``fn`` call (the reference without seams)."""

    name = "none"
    tiled = False

    def grid(self, spatial: tuple[int, ...], settings: InferenceSettings) -> None:
        return None

    def check(self, grid: TileGrid | None, spatial: tuple[int, ...]) -> None:
        return None

    def tiles(self, job: TileJob) -> int:
        return 1

    def run(self, job: TileJob, tile_fn: TileFn, allocate: Allocate, resumer: Any) -> np.ndarray:
        resumer.load()  # refuses a state of another setup; `none` itself restarts
        return run_none(job.image, tile_fn, allocate, job.tick)


class SimpleTiling(Strategy):
    """Independent tiles cut at the middle of their overlaps (the paper's simple tiling)."""

    name = "simple"
    shares_rows = True
    overlaps_by_default = False

    def reach(self, grid: TileGrid) -> Callable[[Index], slice]:
        return owned_rows(grid)

    def relevant(self, settings: InferenceSettings) -> tuple[str, ...]:
        overlap = settings.overlap
        return ("seam",) if any(overlap if isinstance(overlap, tuple) else (overlap,)) else ()

    def run(self, job: TileJob, tile_fn: TileFn, allocate: Allocate, resumer: Any) -> np.ndarray:
        assert job.grid is not None
        args = (allocate, job.tick, resumer, job.rows, job.depth)
        return run_simple(job.image, tile_fn, job.grid, job.batch_size, *args)


class WeightedTiling(Strategy):
    """Overlapping tiles blended with a window, normalised by the summed weights."""

    name = "weighted"
    shares_rows = True
    blends = True

    def relevant(self, settings: InferenceSettings) -> tuple[str, ...]:
        return ("window",)

    def run(self, job: TileJob, tile_fn: TileFn, allocate: Allocate, resumer: Any) -> np.ndarray:
        assert job.grid is not None
        args = (job.window, allocate, job.tick, resumer, job.rows, job.depth)
        return run_weighted(job.image, tile_fn, job.grid, job.batch_size, *args)


class SATITiling(Strategy):
    """Stitching aware inference (paper III-A, III-E): each tile continues the output already
    stitched in its leading overlap strips."""

    name = "sati"
    continues = True

    def tiles(self, job: TileJob) -> int:
        assert job.grid is not None
        if job.pipeline is not None:
            return job.pipeline.tiles(job.grid, job.order, job.batch_size)
        return job.grid.n_tiles

    def relevant(self, settings: InferenceSettings) -> tuple[str, ...]:
        return ("margin", "seam", "order")

    def run(self, job: TileJob, tile_fn: TileFn, allocate: Allocate, resumer: Any) -> np.ndarray:
        assert job.grid is not None
        if job.pipeline is not None:
            return job.pipeline.run(
                job.image, tile_fn, job.grid, job.order, job.batch_size, allocate, job.tick,
                job.identity,
            )  # fmt: skip
        args = (allocate, job.tick, resumer, job.depth)
        return run_sati(job.image, tile_fn, job.grid, job.order, job.batch_size, *args)


#: Every strategy by name.
REGISTRY: dict[str, Strategy] = {
    s.name: s for s in (NoTiling(), SimpleTiling(), WeightedTiling(), SATITiling())
}


def get_strategy(name: str | None) -> Strategy:
    """The strategy called ``name``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    check_choice("strategy", name, STRATEGIES)
    return REGISTRY[name]  # type: ignore[index]


def count_tiles(grid: TileGrid, strategy: str, batch_size: int, rows: Rows | None = None) -> int:
    """How many tiles a row-sharing strategy (``simple``/``weighted``) hands to ``fn`` when
    restricted to ``rows`` (every tile of a batch that is run counts; both run ``batch_size``
    tiles in raster order)."""
    needed = reaches_rows(get_strategy(strategy).reach(grid), rows)
    return sum(len(chunk) for chunk in batched(grid.raster(), batch_size) if needed(chunk))
