"""The inference engine: translate an N-D image larger than one forward pass, tile by tile.

Entry point: :func:`stitch`. Strategies: ``none``, ``simple``, ``weighted``, ``sati``; each tiled
one combines with a normalisation mode (:mod:`satikit.stitching.norm`): ``tile`` (per-tile
instance-norm statistics), ``thumbnail`` (TIN), ``kernel`` (KIN) or ``dense`` (dense
normalisation).

Several processes share one image through :func:`stitch_on_grid`: ``simple``/``weighted`` each
compute a range of output rows (``rows``), ``sati`` runs pipelined over a ring of processes
(``pipeline``, :mod:`satikit.stitching.pipeline`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from satikit.devices import resolve_device
from satikit.grid import TileGrid, sati_overlap_message
from satikit.stitching.norm import (
    NORMS,
    Norm,
    NormKernel,
    find_norm_layers,
    norm_roots,
    size_multiple_of,
)
from satikit.stitching.pipeline import Pipeline
from satikit.stitching.resume import Resumer
from satikit.stitching.runner import TileFn
from satikit.stitching.statistics import CACHING_NORMS, NormSettings, run_with_statistics
from satikit.stitching.strategies import (
    count_tiles,
    run_none,
    run_sati,
    run_simple,
    run_weighted,
)

__all__ = [
    "NORMS",
    "ORDERS",
    "STRATEGIES",
    "NormKernel",
    "Pipeline",
    "resolve_order",
    "stitch",
    "stitch_on_grid",
]

STRATEGIES = ("none", "simple", "weighted", "sati")
ORDERS = ("auto", "raster", "wavefront")
Order = Literal["auto", "raster", "wavefront"]
Strategy = Literal["none", "simple", "weighted", "sati"]


def _allocator(out, spatial: tuple[int, ...]) -> Callable[[int], np.ndarray]:
    def allocate(channels: int) -> np.ndarray:
        expected = (channels, *spatial)
        if out is None:
            return np.empty(expected, dtype=np.float32)
        if tuple(out.shape) != expected:
            raise ValueError(
                f"out has shape {tuple(out.shape)}, expected {expected} (C_out, *spatial)"
            )
        return out

    return allocate


def stitch(
    image,
    fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    tile: int | Sequence[int],
    overlap: int | Sequence[int],
    strategy: Strategy,
    batch_size: int = 1,
    order: Order = "auto",
    window: Literal["pyramid", "gaussian"] = "gaussian",
    margin: int | Sequence[int] = 0,
    norm: Norm = "tile",
    norm_kernel: NormKernel | int | Sequence[Any] | str = 3,
    thumbnail_scale: float = 0.25,
    norm_layers: Any = None,
    out=None,
    device: str | torch.device | None = None,
    progress: bool = False,
    read_ahead: int = 1,
) -> np.ndarray:
    """Translate ``image`` tile by tile with ``fn`` and stitch the tiles with ``strategy``.

    Args:
        image: ``(C, *spatial)`` float array-like, already encoded (numpy, memmap, zarr, ...);
            N = ``image.ndim - 1`` >= 1 spatial dims. Tiles are read one batch at a time.
        fn: torch callable ``(B, C, *tile) -> (B, C_out, *tile)``; run under ``inference_mode``.
        tile: tile size ``T``, int or one per spatial dim (ignored by ``none``).
        overlap: overlap ``O`` per dim, ``0 <= O < T``; ``sati`` needs ``T > 2 O``. Paper
            default: 25 % of the tile (IV-A: 128 px for 512 px tiles).
        strategy: ``"none"`` (whole image in one call), ``"simple"`` (independent tiles cut at the
            middle of the overlap), ``"weighted"`` (tiles blended with ``window``, normalised by
            the summed weights), ``"sati"`` (each tile's leading strips replaced by the stitched
            output before ``fn``, cut at the middle of the overlap; needs ``C_out == C``).
        batch_size: tiles per ``fn`` call (``sati``: per wave; raster order runs one at a time).
        order: ``sati`` only: ``"raster"`` (the paper's sequential walk), ``"wavefront"``
            (independent tiles batched; same output) or ``"auto"``: wavefront with
            ``batch_size > 1`` on a GPU or for a volume, else raster (:func:`resolve_order`).
        window: ``weighted`` only: ``"gaussian"`` (MONAI-style) or ``"pyramid"`` (the paper's).
        margin: ``sati`` only, beyond the paper: tiles overlap by ``overlap + margin`` while
            the strip each takes from its predecessors stays ``overlap`` wide, so the strip
            ends ``margin`` px inside the predecessor rather than at its border (needs
            ``T > 2 (O + margin)``; 0: the paper's grid). See :class:`TileGrid`.
        norm: where ``fn``'s instance-norm layers take their statistics from (tiled
            strategies; see :mod:`satikit.stitching.norm`): ``"tile"`` (each tile's own, the
            default; nothing is hooked), ``"thumbnail"`` (TIN, Chen et al. AAAI 2022: one extra
            ``fn`` call on the whole image box-downscaled by ``thumbnail_scale`` records them
            for every tile), ``"kernel"`` (KIN, URUST, Ho et al. ECCV 2022: a caching pass of
            the strategy records every tile's; each tile then uses the ``norm_kernel``-weighted
            average of its neighbours'; twice the ``fn`` calls) or ``"dense"`` (Dense
            Normalization, Ho et al. ECCV 2024: the same caching pass, then every pixel takes
            statistics interpolated between the tile centres around it; no settings).
        norm_kernel: ``kernel`` only: a :class:`NormKernel` or what :meth:`NormKernel.parse`
            reads: an odd size in tiles (``3``), one per dim, ``(size, "gaussian")``, or text
            such as ``"5:gaussian"``. Constant weights by default.
        thumbnail_scale: ``thumbnail`` only: thumbnail size over image size per dim, in
            ``(0, 1]`` (1.0: full resolution, one whole-image pass); sizes are rounded to the
            ``size_multiple`` the norm layers' owner declares (adapters do).
        norm_layers: where the normalisation layers are (see
            :func:`~satikit.stitching.norm.find_norm_layers`): an adapter, a module, or the
            layers; default: ``fn`` itself (a module or a bound method of one).
        out: optional ``(C_out, *spatial)`` array to fill (e.g. a memmap); float32 expected.
        device: where tiles run; default: ``fn``'s parameters' device, else CPU.
        progress: show a tqdm progress bar.
        read_ahead: batches of tiles read (and checked) ahead on a worker thread while ``fn``
            runs (0: off); same output. See :mod:`satikit.stitching.readahead`.

    Returns:
        ``(C_out, *spatial)`` float32 array (``out`` if given). Tiles start every
        ``T - O (- margin)`` px; the last one along a dim is shifted back to end at the image
        border (its overlap grows), so no tile sees made-up pixels. An image smaller than a tile
        is fine: it is reflect-padded.

    Raises:
        ValueError: bad ``strategy``/``order``/``window``/``batch_size``, image with fewer than
            2 dims, invalid tile/overlap, ``fn`` changing the spatial size or the channel count
            (``sati``), non-finite output, ``out`` of the wrong shape; unknown ``norm``, bad
            ``norm_kernel`` or ``thumbnail_scale``, ``norm`` other than ``tile`` with
            ``strategy="none"`` or without instance-norm layers to find.
    """
    spatial = _spatial_shape(image)
    grid = (
        TileGrid.create(spatial, tile, overlap, sati=strategy == "sati", margin=margin)
        if strategy != "none"
        else None
    )
    return stitch_on_grid(
        image,
        fn,
        grid,
        strategy=strategy,
        batch_size=batch_size,
        order=order,
        window=window,
        norm=norm,
        norm_kernel=norm_kernel,
        thumbnail_scale=thumbnail_scale,
        norm_layers=norm_layers,
        out=out,
        device=device,
        progress=progress,
        read_ahead=read_ahead,
    )


def resolve_order(order: str, device: torch.device, batch_size: int, ndim: int = 2) -> str:
    """The SATI tile order ``"auto"`` stands for, given ``ndim`` spatial dims: ``"wavefront"``
    with ``batch_size > 1`` on a GPU (a wave fills the device with several tiles at once) or for
    volumes (``ndim >= 3``), else ``"raster"``. Both orders give the same output.

    Measured on CPU (``python -m benchmarks.engine_speed``, 2 cores, batch 4): a batch of 2D
    tiles costs more than its tiles one by one (forward time 1.06x for 512² tiles, 1.32x for a
    UNet) and wavefront / raster is 0.98 at 2048²; for 64³ tiles batching pays (0.89x) and
    wavefront / raster is 0.78 at 128³ and 0.82 at 256³.
    """
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose one of {ORDERS}")
    if order != "auto":
        return order
    batched = int(batch_size) > 1
    return "wavefront" if batched and (device.type == "cuda" or ndim >= 3) else "raster"


def _spatial_shape(image) -> tuple[int, ...]:
    """The spatial shape of a ``(C, *spatial)`` image; refuses one without a spatial dim."""
    ndim = getattr(image, "ndim", None)
    if ndim is None or ndim < 2:
        raise ValueError(
            f"image must be (C, *spatial) with at least one spatial dim, got shape {getattr(image, 'shape', None)}"
        )
    return tuple(int(s) for s in image.shape[1:])


def stitch_on_grid(
    image,
    fn: Callable[[torch.Tensor], torch.Tensor],
    grid: TileGrid | None,
    *,
    strategy: Strategy,
    batch_size: int = 1,
    order: Order = "auto",
    window: Literal["pyramid", "gaussian"] = "gaussian",
    norm: Norm = "tile",
    norm_kernel: NormKernel | int | Sequence[Any] | str = 3,
    thumbnail_scale: float = 0.25,
    norm_layers: Any = None,
    out=None,
    device: str | torch.device | None = None,
    progress: bool = False,
    state_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    rows: tuple[int, int] | None = None,
    pipeline: Pipeline | None = None,
    read_ahead: int = 1,
) -> np.ndarray:
    """:func:`stitch` on a prepared :class:`TileGrid` (e.g. one with ``seam="start"``).

    ``grid`` is ignored (may be None) for ``strategy="none"``; otherwise its shape must match
    the image (and ``sati`` needs ``T > 2 O``). Other arguments as in :func:`stitch`, plus:

    Args:
        read_ahead: as :func:`stitch`.
        state_path: where to save the resume state (a ``.safetensors`` file, replaced
            atomically) each time a band of tile rows is final in ``out``; see
            :mod:`satikit.stitching.resume`. Needs an ``out`` that outlives the call (e.g. a
            memmap); ``out.flush()`` (if any) runs before each save. Left in place at the end
            (the caller removes it once ``out`` is safe).
        resume: continue from the state in ``state_path``: finished bands are skipped (``fn`` is
            not called for their tiles), the carried band rows restored, and ``out`` must still
            hold the rows written before the interruption. No state file yet: start from the
            beginning. ``none`` always restarts. With a ``norm`` other than ``"tile"`` the
            statistics table is part of the state; the caching pass of ``kernel`` / ``dense`` resumes from
            its own state beside ``state_path`` (see :mod:`satikit.stitching.statistics`).
        rows: ``simple``/``weighted`` only: ``(start, stop)``, compute and write only these
            output rows along the first spatial dim, ``0 <= start < stop <= S_0``; the tiles
            that do not reach them are skipped (every tile of a batch that does is run, so the
            rows are bit-identical to a whole run's). The other rows of ``out`` are untouched;
            the returned array is ``out`` (uninitialised there if ``out`` is None). A resume
            state records ``rows``. For several processes sharing one output.
        pipeline: ``sati`` only: run this process's bands of a SATI run pipelined over
            several processes (:class:`~satikit.stitching.pipeline.Pipeline`, which keeps its
            own resume state: ``state_path`` must be None). Needs >= 2 spatial dims.

    Raises:
        ValueError: as :func:`stitch`; also a state that is unreadable or belongs to a different
            strategy, grid, order, batch size, window, image shape or normalisation; ``rows``
            or ``pipeline`` with another strategy, with ``norm="kernel"`` or ``"dense"`` (their
            caching pass needs every tile), ``rows`` outside the image.
    """
    spatial = _spatial_shape(image)
    _check_arguments(strategy, order, window, batch_size, read_ahead, grid, spatial)
    settings = NormSettings.create(norm, norm_kernel, thumbnail_scale)
    _check_sharing(strategy, settings.norm, spatial, rows, pipeline, state_path)
    source = fn if norm_layers is None else norm_layers
    layers = _norm_layers(settings, strategy, spatial, source)
    target = resolve_device(device, fn)
    order = resolve_order(order, target, batch_size, len(spatial))  # type: ignore[assignment]
    out_channels = image.shape[0] if strategy == "sati" else None
    allocate = _allocator(out, spatial)
    identity = _identity(image, grid, strategy, batch_size, order, window)
    if rows is not None:
        identity["rows"] = [int(rows[0]), int(rows[1])]
    identity.update(settings.identity())
    resumer = Resumer(state_path, identity, resume)
    total = _total_tiles(grid, strategy, batch_size, order, rows, pipeline, settings.norm)
    desc = f"stitch[{strategy}{'' if settings.norm == 'tile' else '+' + settings.norm}]"
    with tqdm(total=total, disable=not progress, desc=desc, unit="tile") as bar:
        if strategy == "none":
            resumer.load()  # refuses a state of another setup; `none` itself restarts
            return run_none(image, TileFn(fn, target), allocate, bar.update)
        assert grid is not None
        job_args = (image, grid, strategy, batch_size, order, window, bar.update, identity)
        job = _Job(*job_args, rows=rows, pipeline=pipeline, depth=int(read_ahead))
        if settings.norm == "tile":
            return job.run(TileFn(fn, target, out_channels), allocate, resumer)
        return run_with_statistics(
            settings,
            image,
            fn,
            grid,
            layers,
            job.run,
            allocate,
            resumer,
            device=target,
            out_channels=out_channels,
            size_multiple=size_multiple_of(source),
            state_path=state_path,
            resume=resume,
            roots=norm_roots(source),
        )


def _check_arguments(
    strategy: str,
    order: str,
    window: str,
    batch_size: int,
    read_ahead: int,
    grid: TileGrid | None,
    spatial: tuple[int, ...],
) -> None:
    """Refuse unknown names, bad counts and a grid that does not fit the image or strategy."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose one of {ORDERS}")
    if window not in ("pyramid", "gaussian"):
        raise ValueError(f"unknown window {window!r}; choose 'pyramid' or 'gaussian'")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if int(read_ahead) < 0:
        raise ValueError(f"read_ahead must be >= 0 batches, got {read_ahead}")
    if strategy == "none":
        return
    if grid is None or grid.shape != spatial:
        raise ValueError(
            f"grid shape {None if grid is None else grid.shape} does not match the image {spatial}"
        )
    if strategy == "sati" and any(2 * o >= t for o, t in zip(grid.window_overlap, grid.tile)):
        raise ValueError(sati_overlap_message(grid.tile, grid.overlap, grid.margin))
    if strategy != "sati" and grid.margin is not None:
        raise ValueError(f"margin is a SATI setting; the {strategy} strategy got {grid.margin}")


def _norm_layers(
    settings: NormSettings, strategy: str, spatial: tuple[int, ...], owner: Any
) -> list:
    """The instance-norm layers shared statistics go to (none for ``norm="tile"``)."""
    if settings.norm == "tile":
        return []
    if strategy == "none":
        raise ValueError(
            f"norm={settings.norm!r} shares statistics between tiles; strategy 'none' "
            "runs the whole image in one call (use norm='tile')"
        )
    settings.kernel.sizes(len(spatial))  # a per-dim kernel must fit the image
    return find_norm_layers(owner)


def _total_tiles(
    grid: TileGrid | None,
    strategy: str,
    batch_size: int,
    order: str,
    rows: tuple[int, int] | None,
    pipeline: Pipeline | None,
    norm: str,
) -> int:
    """Tiles this call hands to ``fn`` (the progress bar's total)."""
    total = 1 if strategy == "none" or grid is None else grid.n_tiles
    if grid is not None and rows is not None:
        total = count_tiles(grid, strategy, batch_size, rows)
    if grid is not None and pipeline is not None:
        total = pipeline.tiles(grid, order, batch_size)
    return total * (2 if norm in CACHING_NORMS else 1)  # the caching pass


@dataclass
class _Job:
    """One tiled strategy on one image: :meth:`run` is what a statistics pass re-runs with its
    own ``fn`` wrapper, allocator and resume state."""

    image: Any
    grid: TileGrid
    strategy: str
    batch_size: int
    order: str
    window: str
    tick: Callable[[int], object]
    identity: dict[str, Any]
    rows: tuple[int, int] | None = None
    pipeline: Pipeline | None = None
    depth: int = 1

    def run(self, tile_fn: TileFn, allocate: Callable[[int], Any], resumer: Any) -> np.ndarray:
        image, grid, batch = self.image, self.grid, self.batch_size
        if self.strategy == "simple":
            return run_simple(
                image, tile_fn, grid, batch, allocate, self.tick, resumer, self.rows, self.depth
            )
        if self.strategy == "weighted":
            args = (self.window, allocate, self.tick, resumer, self.rows, self.depth)
            return run_weighted(image, tile_fn, grid, batch, *args)
        if self.pipeline is not None:
            return self.pipeline.run(
                image, tile_fn, grid, self.order, batch, allocate, self.tick, self.identity
            )
        args = (allocate, self.tick, resumer, self.depth)
        return run_sati(image, tile_fn, grid, self.order, batch, *args)


def _check_sharing(
    strategy: str,
    norm: str,
    spatial: tuple[int, ...],
    rows: tuple[int, int] | None,
    pipeline: Pipeline | None,
    state_path: str | os.PathLike[str] | None,
) -> None:
    """Refuse ``rows`` / ``pipeline`` where they do not apply."""
    if rows is not None:
        if strategy not in ("simple", "weighted"):
            raise ValueError(f"rows apply to the simple and weighted strategies, not {strategy!r}")
        start, stop = (int(r) for r in rows)
        if not 0 <= start < stop <= spatial[0]:
            raise ValueError(f"rows must satisfy 0 <= start < stop <= {spatial[0]}, got {rows}")
    if pipeline is not None:
        if strategy != "sati":
            raise ValueError(f"a pipeline runs the sati strategy, not {strategy!r}")
        if state_path is not None:
            raise ValueError("a pipeline keeps its own resume state; pass state_path=None")
    if norm in CACHING_NORMS and (rows is not None or pipeline is not None):
        raise ValueError(
            f"norm={norm!r} records every tile's statistics in a caching pass first; it cannot "
            "be shared out by rows or pipelined (use norm='tile' or 'thumbnail')"
        )


def _identity(
    image, grid: TileGrid | None, strategy: str, batch_size: int, order: str, window: str
) -> dict[str, Any]:
    """What a resume state must match: everything that decides the bands and their contents."""
    return {
        "strategy": strategy,
        "image_shape": list(image.shape),
        "tile": None if grid is None else list(grid.tile),
        "overlap": None if grid is None else list(grid.overlap),
        "seam": None if grid is None else grid.seam,
        "margin": None if grid is None or grid.margin is None else list(grid.margin),
        "batch_size": int(batch_size),
        "order": order,
        "window": window,
    }
