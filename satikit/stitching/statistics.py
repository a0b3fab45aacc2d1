"""The extra passes of normalisation-aware tiling (TIN / KIN) and how they resume.

``norm="thumbnail"`` (TIN, Chen et al., AAAI 2022) runs ``fn`` once on a box-downscaled copy
of the whole image (:mod:`satikit.stitching.thumbnail`) and records every normalisation slot's
statistics; ``norm="kernel"`` (KIN, URUST, Ho et al., ECCV 2022) runs a *caching pass*: the
chosen strategy itself over every tile with plain per-tile statistics, its output discarded,
recording each tile's statistics into a :class:`~satikit.stitching.norm.NormTable` over the
grid; ``norm="dense"`` (Ho et al., ECCV 2024) runs the same caching pass. (For ``sati`` that pass is a whole SATI run, so the recorded statistics are those of the
tiles SATI really feeds ``fn``, strips included.) The inference pass then runs the strategy
with the recorded statistics (TIN), their kernel averages (KIN) or, per pixel, their
interpolation between tile centres (dense) in place of each tile's own.

Cost: TIN adds one ``fn`` call on the thumbnail; KIN and dense double the tile calls. The table holds two
float64 arrays of ``n_tiles x K`` per slot (``K`` = channels of an instance norm).

Resume: the table travels in the engine's state file (:class:`StatisticsResumer`), so an
interrupted inference pass resumes without recomputing it. An interrupted caching pass resumes
from its own state file beside it (:func:`statistics_state_path`), which holds the partly
filled table and the caching pass's progress; it is deleted once the finished table is in the
main state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from satikit.stitching.grid import TileGrid
from satikit.stitching.norm import NORMS, DenseTable, Norm, NormKernel, NormTable, norm_hooks
from satikit.stitching.resume import Progress, Resumer
from satikit.stitching.runner import TileFn
from satikit.stitching.thumbnail import check_scale, thumbnail, thumbnail_shape

__all__ = [
    "CACHING_NORMS",
    "NormSettings",
    "StatisticsResumer",
    "run_with_statistics",
    "statistics_state_path",
]

#: the modes whose statistics come from a caching pass over every tile first
CACHING_NORMS = ("kernel", "dense")

#: ``run(tile_fn, allocate, resumer) -> output``: one pass of the chosen strategy.
RunPass = Callable[[TileFn, Callable[[int], Any], Any], np.ndarray]


@dataclass(frozen=True)
class NormSettings:
    """Validated ``norm``, ``norm_kernel`` and ``thumbnail_scale`` of one engine call."""

    norm: Norm
    kernel: NormKernel
    scale: float

    @classmethod
    def create(cls, norm: str, norm_kernel: Any, thumbnail_scale: float) -> NormSettings:
        """Check the three settings (all of them, whichever ``norm`` is).

        Raises:
            ValueError: unknown ``norm``, a bad kernel (:meth:`NormKernel.parse`), or a scale
                outside ``(0, 1]``.
        """
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")
        return cls(norm, NormKernel.parse(norm_kernel), check_scale(thumbnail_scale))  # type: ignore[arg-type]

    def identity(self) -> dict[str, Any]:
        """What a resume state must match beyond the grid (nothing for ``tile``, so states of
        per-tile runs stay as they were)."""
        if self.norm == "tile":
            return {}
        if self.norm == "thumbnail":
            return {"norm": "thumbnail", "thumbnail_scale": self.scale}
        if self.norm == "dense":
            return {"norm": "dense"}
        return {"norm": "kernel", "norm_kernel": str(self.kernel)}

    @property
    def per_tile(self) -> bool:
        """Whether the statistics come from a caching pass over every tile (KIN, dense)."""
        return self.norm in CACHING_NORMS


def statistics_state_path(state_path: str | os.PathLike[str] | None) -> Path | None:
    """Where the caching pass of ``kernel`` keeps its state: ``NAME.norm.SUFFIX`` beside the
    engine's ``NAME.SUFFIX``; None without a state path."""
    if state_path is None:
        return None
    path = Path(state_path)
    return path.with_name(f"{path.stem}.norm{path.suffix}")


class StatisticsResumer:
    """A :class:`Resumer` whose states also carry a :class:`NormTable`.

    :meth:`save` adds the table's arrays to every state; :meth:`load` puts them back into the
    table. A state saved by :meth:`save_table` holds the table only (no unit finished): loading
    it restores the table and returns None, so the pass starts from the beginning.

    Args:
        inner: the plain resumer (path, identity, whether to resume).
        table: the table to save and to restore into.
    """

    def __init__(self, inner: Resumer, table: NormTable):
        self.inner = inner
        self.table = table

    def load(self) -> Progress | None:
        """The saved progress without the table's arrays (the table is restored), or None."""
        saved = self.inner.load()
        if saved is None:
            return None
        arrays = {k: v for k, v in saved.arrays.items() if not k.startswith("norm.")}
        table = {k: v for k, v in saved.arrays.items() if k.startswith("norm.")}
        if not self.table.restore(table):
            raise ValueError(f"{self.inner.path}: the resume state holds no statistics table")
        if saved.next == 0:  # the strategies never save before a unit is finished
            return None
        return Progress(saved.next, saved.done, saved.origin, saved.channels, arrays)

    def save(self, out: Any, progress: Progress) -> None:
        """Save ``progress`` with the table."""
        arrays = {**progress.arrays, **self.table.arrays()}
        self.inner.save(
            out, Progress(progress.next, progress.done, progress.origin, progress.channels, arrays)
        )

    def save_table(self) -> None:
        """Save a state that holds only the table (nothing of the output is final yet)."""
        self.inner.save(None, Progress(0, 0, 0, 0, self.table.arrays()))


class _Discard:
    """An output that drops whatever is written to it (the caching pass's)."""

    write_behind = False  # nothing to hand to a writer thread

    def __init__(self, shape: Sequence[int]):
        self.shape = tuple(shape)
        self.ndim = len(self.shape)

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def _thumbnail_pass(
    image,
    fn: Callable[[torch.Tensor], torch.Tensor],
    layers: Sequence[nn.Module],
    table: NormTable,
    scale: float,
    multiple: int,
    device: torch.device,
    roots: Sequence[nn.Module],
) -> None:
    """TIN: record every slot's statistics from one call on the thumbnail."""
    shape = thumbnail_shape(image.shape[1:], scale, multiple)
    small = thumbnail(image, shape)
    with norm_hooks(layers, table, "record", roots) as context:
        try:
            TileFn(fn, device, context=context)(small[None], None)
        except ValueError as exc:  # e.g. a thumbnail too small for the network
            raise ValueError(f"the {shape} thumbnail (scale {scale:g}): {exc}") from None


def _caching_pass(
    run: RunPass,
    fn: Callable[[torch.Tensor], torch.Tensor],
    layers: Sequence[nn.Module],
    table: NormTable,
    spatial: Sequence[int],
    device: torch.device,
    out_channels: int | None,
    resumer: StatisticsResumer,
    roots: Sequence[nn.Module],
) -> None:
    """KIN / dense: the strategy over every tile with per-tile statistics, recording them."""
    with norm_hooks(layers, table, "record", roots) as context:
        tile_fn = TileFn(fn, device, out_channels, context)
        run(tile_fn, lambda channels: _Discard((channels, *spatial)), resumer)
    if not table.complete():
        raise RuntimeError("the caching pass left tiles without statistics")  # a bug


def run_with_statistics(
    settings: NormSettings,
    image,
    fn: Callable[[torch.Tensor], torch.Tensor],
    grid: TileGrid,
    layers: Sequence[nn.Module],
    run: RunPass,
    allocate: Callable[[int], Any],
    resumer: Resumer,
    *,
    device: torch.device,
    out_channels: int | None,
    size_multiple: int = 1,
    state_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    roots: Sequence[nn.Module] = (),
) -> np.ndarray:
    """Run the strategy (``run``) with shared statistics: ``thumbnail``, ``kernel`` or
    ``dense``.

    Args:
        settings: from :meth:`NormSettings.create`; ``norm`` is not ``"tile"``.
        image: ``(C, *S)`` encoded image, as for :func:`satikit.stitching.stitch`.
        fn: the tile function.
        grid: the tile grid.
        layers: from :func:`~satikit.stitching.norm.find_norm_layers`.
        run: one pass of the strategy.
        allocate: the output allocator of the inference pass.
        resumer: the engine's resumer (its identity includes ``settings``).
        device: where ``fn`` runs.
        out_channels: ``C_out`` if known (``sati``).
        size_multiple: thumbnail sizes are rounded to a multiple of it.
        state_path / resume: the engine's; the caching pass keeps its own state beside it.
        roots: the modules ``fn`` runs (:func:`~satikit.stitching.norm.norm_roots`); each
            pass's first call refuses normalisations outside ``layers``.

    Returns:
        the output of the inference pass.
    """
    kernel = settings.per_tile
    raw = NormTable(grid.counts if kernel else ())
    main = StatisticsResumer(resumer, raw)
    cache_path = statistics_state_path(state_path) if kernel else None
    main.load()  # a state of the inference pass holds the finished table
    if not raw.complete():
        if kernel:
            identity = {**resumer.identity, "pass": f"{settings.norm} statistics"}
            cache = StatisticsResumer(Resumer(cache_path, identity, resume), raw)
            _caching_pass(run, fn, layers, raw, grid.shape, device, out_channels, cache, roots)
        else:
            _thumbnail_pass(image, fn, layers, raw, settings.scale, size_multiple, device, roots)
        main.save_table()
    if cache_path is not None:  # the finished table is in the main state now
        cache_path.unlink(missing_ok=True)
    table: NormTable | DenseTable = raw
    if settings.norm == "kernel":
        table = raw.smoothed(settings.kernel)
    elif settings.norm == "dense":
        table = DenseTable(raw, grid, layers)
    with norm_hooks(layers, table, "apply", roots) as context:
        return run(TileFn(fn, device, out_channels, context), allocate, main)
