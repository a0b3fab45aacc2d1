"""The inference engine: translate an N-D image larger than one forward pass, tile by tile.

Entry point: :func:`stitch`, with one :class:`~satikit.settings.InferenceSettings` (or its
fields as keywords). Strategies (:mod:`satikit.stitching.registry`): ``none``, ``simple``,
``weighted``, ``sati``; each tiled one combines with a normalisation mode
(:mod:`satikit.stitching.norm`): ``tile`` (per-tile instance-norm statistics), ``thumbnail``
(TIN), ``kernel`` (KIN) or ``dense`` (dense normalisation).

Several processes share one image through :class:`StitchCall`: ``simple``/``weighted`` each
compute a range of output rows (``rows``), ``sati`` runs pipelined over a ring of processes
(``pipeline``, :mod:`satikit.stitching.pipeline`).

Building blocks: the N-D tile grid (:mod:`satikit.stitching.grid`) and the blending windows and
weight maps (:mod:`satikit.stitching.windows`), both pure numpy.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from satikit.choices import NORMS, ORDERS, STRATEGIES, check_choice
from satikit.devices import resolve_device
from satikit.settings import InferenceSettings
from satikit.stitching.grid import TileGrid
from satikit.stitching.norm import (
    NormKernel,
    find_norm_layers,
    norm_roots,
    size_multiple_of,
)
from satikit.stitching.pipeline import Pipeline
from satikit.stitching.registry import REGISTRY, Strategy, TileJob, get_strategy
from satikit.stitching.resume import Resumer
from satikit.stitching.runner import TileFn
from satikit.stitching.statistics import CACHING_NORMS, NormSettings, run_with_statistics

__all__ = [
    "NORMS",
    "ORDERS",
    "REGISTRY",
    "STRATEGIES",
    "InferenceSettings",
    "NormKernel",
    "Pipeline",
    "StitchCall",
    "get_strategy",
    "resolve_order",
    "stitch",
    "stitch_on_grid",
]

Order = Literal["auto", "raster", "wavefront"]


@dataclass(frozen=True)
class StitchCall:
    """What one engine call needs besides the settings.

    Attributes:
        norm_layers: where the normalisation layers are (see
            :func:`~satikit.stitching.norm.find_norm_layers`): an adapter, a module, or the
            layers; default: ``fn`` itself (a module or a bound method of one).
        read_ahead: batches of tiles read (and checked) ahead on a worker thread while ``fn``
            runs (0: off); same output. See :mod:`satikit.stitching.readahead`.
        state_path: where to save the resume state (a ``.safetensors`` file, replaced
            atomically) each time a band of tile rows is final in ``out``; see
            :mod:`satikit.stitching.resume`. Needs an ``out`` that outlives the call (e.g. a
            memmap); ``out.flush()`` (if any) runs before each save. Left in place at the end
            (the caller removes it once ``out`` is safe).
        resume: continue from the state in ``state_path``: finished bands are skipped (``fn`` is
            not called for their tiles), the carried band rows restored, and ``out`` must still
            hold the rows written before the interruption. No state file yet: start from the
            beginning. ``none`` always restarts. With a ``norm`` other than ``"tile"`` the
            statistics table is part of the state; the caching pass of ``kernel`` / ``dense``
            resumes from its own state beside ``state_path`` (see
            :mod:`satikit.stitching.statistics`).
        rows: ``simple``/``weighted`` only: ``(start, stop)``, compute and write only these
            output rows along the first spatial dim, ``0 <= start < stop <= S_0``; the tiles
            that do not reach them are skipped (every tile of a batch that does is run, so the
            rows are bit-identical to a whole run's). The other rows of ``out`` are untouched;
            the returned array is ``out`` (uninitialised there if ``out`` is None). A resume
            state records ``rows``. For several processes sharing one output.
        pipeline: ``sati`` only: run this process's bands of a SATI run pipelined over
            several processes (:class:`~satikit.stitching.pipeline.Pipeline`, which keeps its
            own resume state: ``state_path`` must be None). Needs >= 2 spatial dims.
    """

    norm_layers: Any = None
    read_ahead: int = 1
    state_path: str | os.PathLike[str] | None = None
    resume: bool = False
    rows: tuple[int, int] | None = None
    pipeline: Pipeline | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


def _settings_and_call(
    settings: InferenceSettings | None, call: StitchCall | None, given: dict[str, Any]
) -> tuple[InferenceSettings, StitchCall]:
    """``settings`` and ``call`` with the keyword conveniences ``given`` applied (each one an
    :class:`InferenceSettings` or a :class:`StitchCall` field)."""
    call_fields = {k: given.pop(k) for k in list(given) if k in StitchCall.names()}
    unknown = sorted(set(given) - set(InferenceSettings.names()))
    if unknown:
        raise TypeError(
            f"unknown argument(s) {unknown}; the engine takes the InferenceSettings fields "
            f"{InferenceSettings.names()} and the StitchCall fields {StitchCall.names()}"
        )
    settings = dataclasses.replace(settings or InferenceSettings(), **given)
    if settings.strategy is None:
        raise ValueError(f"no strategy given; choose one of {STRATEGIES}")
    return settings, dataclasses.replace(call or StitchCall(), **call_fields)


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
    settings: InferenceSettings | None = None,
    *,
    out=None,
    device: str | torch.device | None = None,
    progress: bool = False,
    call: StitchCall | None = None,
    **given: Any,
) -> np.ndarray:
    """Translate ``image`` tile by tile with ``fn`` and stitch the tiles as ``settings`` say.

    ``stitch(image, fn, settings)`` or, for short, ``stitch(image, fn, tile=128, overlap=32,
    strategy="sati")``: keywords ``given`` are :class:`~satikit.settings.InferenceSettings`
    fields (applied over ``settings``) or :class:`StitchCall` fields (over ``call``).

    Args:
        image: ``(C, *spatial)`` float array-like, already encoded (numpy, memmap, zarr, ...);
            N = ``image.ndim - 1`` >= 1 spatial dims. Tiles are read one batch at a time.
        fn: torch callable ``(B, C, *tile) -> (B, C_out, *tile)``; run under ``inference_mode``.
        settings: what decides the output. The engine reads ``strategy`` (``"none"``: whole
            image in one call; ``"simple"``: independent tiles cut at the middle of the
            overlap; ``"weighted"``: tiles blended with ``window``, normalised by the summed
            weights; ``"sati"``: each tile's leading strips replaced by the stitched output
            before ``fn``, needs ``C_out == C``), ``tile`` and ``overlap`` (``0 <= O < T``;
            ``sati`` needs ``T > 2 (O + margin)``; paper default: 25 % of the tile, IV-A),
            ``seam``, ``margin`` (``sati`` only, beyond the paper: tiles overlap by ``overlap +
            margin`` while the strip each takes from its predecessors stays ``overlap`` wide),
            ``batch_size`` (tiles per ``fn`` call; ``sati``: per wave), ``order`` (``sati``:
            ``raster``, the paper's walk, or ``wavefront``, independent tiles batched, same
            output; ``auto``: :func:`resolve_order`), ``window`` (``gaussian``, MONAI-style, or
            ``pyramid``, the paper's) and the statistics: ``norm`` (``tile``: each tile's own;
            ``thumbnail``: TIN, Chen et al. AAAI 2022, one extra ``fn`` call on the whole image
            downscaled by ``thumbnail_scale``; ``kernel``: KIN, Ho et al. ECCV 2022, a caching
            pass then each tile the ``norm_kernel``-weighted average of its neighbours';
            ``dense``: Dense Normalization, Ho et al. ECCV 2024, the same caching pass then
            per-pixel statistics interpolated between the tile centres). Style and input range
            are the caller's business (:func:`satikit.translation.translate.translate_array`).
        out: optional ``(C_out, *spatial)`` array to fill (e.g. a memmap); float32 expected.
        device: where tiles run; default: ``fn``'s parameters' device, else CPU.
        progress: show a tqdm progress bar.
        call: what this call needs besides the settings (normalisation layers, read-ahead,
            resume state, shared rows, pipeline): :class:`StitchCall`.

    Returns:
        ``(C_out, *spatial)`` float32 array (``out`` if given). Tiles start every
        ``T - O (- margin)`` px; the last one along a dim is shifted back to end at the image
        border (its overlap grows), so no tile sees made-up pixels. An image smaller than a tile
        is fine: it is reflect-padded.

    Raises:
        ValueError: a bad setting (see :class:`~satikit.settings.InferenceSettings`), an image
            with fewer than 2 dims, an invalid tile/overlap, ``fn`` changing the spatial size
            or the channel count (``sati``), non-finite output, ``out`` of the wrong shape; a
            bad ``norm_kernel``, ``norm`` other than ``tile`` with ``strategy="none"`` or
            without instance-norm layers to find; a resume state of another setup; ``rows`` or
            ``pipeline`` where they do not apply.
        TypeError: a keyword that is no setting and no :class:`StitchCall` field.
    """
    settings, call = _settings_and_call(settings, call, given)
    strategy = get_strategy(settings.strategy)
    grid = strategy.grid(_spatial_shape(image), settings)
    return _run(image, fn, strategy, grid, settings, call, out, device, progress)


def resolve_order(order: str, device: torch.device, batch_size: int, ndim: int = 2) -> str:
    """The SATI tile order ``"auto"`` stands for, given ``ndim`` spatial dims: ``"wavefront"``
    with ``batch_size > 1`` on a GPU (a wave fills the device with several tiles at once) or for
    volumes (``ndim >= 3``), else ``"raster"``. Both orders give the same output.

    Measured on CPU (``python -m benchmarks.engine_speed``, 2 cores, batch 4): a batch of 2D
    tiles costs more than its tiles one by one (forward time 1.06x for 512² tiles, 1.32x for a
    UNet) and wavefront / raster is 0.98 at 2048²; for 64³ tiles batching pays (0.89x) and
    wavefront / raster is 0.78 at 128³ and 0.82 at 256³.
    """
    check_choice("order", order, ORDERS)
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
    settings: InferenceSettings | None = None,
    *,
    out=None,
    device: str | torch.device | None = None,
    progress: bool = False,
    call: StitchCall | None = None,
    **given: Any,
) -> np.ndarray:
    """:func:`stitch` on a prepared :class:`TileGrid` (its tile, overlap, seam and margin
    stand in for the settings'). ``grid`` is ignored (may be None) for ``strategy="none"``;
    otherwise its shape must match the image. Other arguments as in :func:`stitch`.
    """
    settings, call = _settings_and_call(settings, call, given)
    strategy = get_strategy(settings.strategy)
    return _run(image, fn, strategy, grid, settings, call, out, device, progress)


def _run(
    image,
    fn: Callable[[torch.Tensor], torch.Tensor],
    strategy: Strategy,
    grid: TileGrid | None,
    settings: InferenceSettings,
    call: StitchCall,
    out: Any,
    device: str | torch.device | None,
    progress: bool,
) -> np.ndarray:
    """Run ``strategy`` on ``grid`` (checked here) with the validated ``settings``."""
    spatial = _spatial_shape(image)
    if int(call.read_ahead) < 0:
        raise ValueError(f"read_ahead must be >= 0 batches, got {call.read_ahead}")
    strategy.check(grid, spatial)
    norm = NormSettings.create(settings.norm, settings.norm_kernel, settings.thumbnail_scale)
    _check_sharing(strategy, norm.norm, spatial, call)
    source = fn if call.norm_layers is None else call.norm_layers
    layers = _norm_layers(norm, strategy, spatial, source)
    target = resolve_device(device, fn)
    batch_size = int(settings.batch_size)
    order = resolve_order(settings.order, target, batch_size, len(spatial))
    out_channels = image.shape[0] if strategy.continues else None
    allocate = _allocator(out, spatial)
    identity = _identity(image, grid, strategy.name, batch_size, order, settings.window)
    if call.rows is not None:
        identity["rows"] = [int(call.rows[0]), int(call.rows[1])]
    identity.update(norm.identity())
    resumer = Resumer(call.state_path, identity, call.resume)
    job = TileJob(
        strategy, image, grid, batch_size, order, settings.window, lambda n: None, identity,
        rows=call.rows, pipeline=call.pipeline, depth=int(call.read_ahead),
    )  # fmt: skip
    total = strategy.tiles(job) * (2 if norm.norm in CACHING_NORMS else 1)  # the caching pass
    desc = f"stitch[{strategy.name}{'' if norm.norm == 'tile' else '+' + norm.norm}]"
    with tqdm(total=total, disable=not progress, desc=desc, unit="tile") as bar:
        job.tick = bar.update
        if norm.norm == "tile":
            return job.run(TileFn(fn, target, out_channels), allocate, resumer)
        assert grid is not None
        return run_with_statistics(
            norm,
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
            state_path=call.state_path,
            resume=call.resume,
            roots=norm_roots(source),
        )


def _norm_layers(
    settings: NormSettings, strategy: Strategy, spatial: tuple[int, ...], owner: Any
) -> list:
    """The instance-norm layers shared statistics go to (none for ``norm="tile"``)."""
    if settings.norm == "tile":
        return []
    if not strategy.tiled:
        raise ValueError(
            f"norm={settings.norm!r} shares statistics between tiles; strategy "
            f"{strategy.name!r} runs the whole image in one call (use norm='tile')"
        )
    settings.kernel.sizes(len(spatial))  # a per-dim kernel must fit the image
    return find_norm_layers(owner)


def _check_sharing(
    strategy: Strategy, norm: str, spatial: tuple[int, ...], call: StitchCall
) -> None:
    """Refuse ``rows`` / ``pipeline`` where they do not apply."""
    if call.rows is not None:
        if not strategy.shares_rows:
            raise ValueError(
                f"rows apply to the simple and weighted strategies, not {strategy.name!r}"
            )
        start, stop = (int(r) for r in call.rows)
        if not 0 <= start < stop <= spatial[0]:
            raise ValueError(
                f"rows must satisfy 0 <= start < stop <= {spatial[0]}, got {call.rows}"
            )
    if call.pipeline is not None:
        if not strategy.continues:
            raise ValueError(f"a pipeline runs the sati strategy, not {strategy.name!r}")
        if call.state_path is not None:
            raise ValueError("a pipeline keeps its own resume state; pass state_path=None")
    if norm in CACHING_NORMS and (call.rows is not None or call.pipeline is not None):
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
