"""Normalisation-aware tiling: instance-norm statistics shared between tiles.

A generator with instance normalisation computes each layer's mean and variance over the
tile it sees, so neighbouring tiles of one image are normalised differently and disagree in
brightness or colour at their seams. Two training-free fixes replace those statistics while
the tiles run (``norm`` of :func:`satikit.stitching.stitch`):

- ``"thumbnail"``: **TIN**, thumbnail instance normalisation (Chen et al., "Towards
  Ultra-Resolution Neural Style Transfer via Thumbnail Instance Normalization", AAAI 2022).
  One pass over a downscaled copy of the whole image records every layer's statistics; every
  tile is normalised with them.
- ``"kernel"``: **KIN**, kernelized instance normalisation (URUST, Ho et al., "Ultra-High-
  Resolution Unpaired Stain Transformation via Kernelized Instance Normalization", ECCV 2022).
  A caching pass over all tiles records each tile's per-layer mean and variance in a table over
  the tile grid; the inference pass normalises each tile with a kernel-weighted average
  (:class:`NormKernel`) of its neighbours' entries.
- ``"dense"``: **Dense normalisation** (Ho et al., "Every Pixel Has its Moments: Ultra-High-
  Resolution Unpaired Image-to-Image Translation via Dense Normalization", ECCV 2024). The same
  caching pass as KIN; then every pixel of every layer is normalised with statistics
  interpolated (linearly per dim: bilinear in 2D, trilinear in 3D) between the entries of the
  tiles whose centres surround it (:class:`DenseTable`), so the statistics change smoothly
  across the image instead of jumping at tile borders. No hyperparameters.
- ``"tile"`` (default): each tile's own statistics, nothing replaced.

This module holds the mechanism: which layers take part (:func:`find_norm_layers`), the table
of statistics (:class:`NormTable`), the kernel average and the forward hooks that record or
replace the statistics (:func:`norm_hooks`). The passes themselves live in
:mod:`satikit.stitching.statistics`.

A layer's statistics are ``(mean, var)`` of its input, each ``(B, *K)`` per call: ``(B, C)``
for ``torch.nn.InstanceNorm1d/2d/3d`` (biased variance over the spatial dims, as the layer
computes it), whatever a :class:`~satikit.protocols.NormWithStatistics` layer reports
otherwise. Tables and averages are float64; the replaced normalisation runs in the
activation's dtype. Layers are identified by *slot*: the ``k``-th normalisation call within one
``fn`` call, so a layer run twice per forward takes two slots.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from satikit.choices import NORMS
from satikit.protocols import NormWithStatistics
from satikit.stitching.runner import BatchContext

__all__ = [
    "KERNEL_WEIGHTS",
    "DenseTable",
    "NORMS",
    "Norm",
    "NormKernel",
    "NormTable",
    "find_norm_layers",
    "norm_roots",
    "norm_hooks",
    "size_multiple_of",
]

Norm = Literal["tile", "thumbnail", "kernel", "dense"]
KERNEL_WEIGHTS = ("constant", "gaussian")
Index = tuple[int, ...]
_INSTANCE_NORMS = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


# -- the kernel ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class NormKernel:
    """The neighbourhood KIN averages a tile's statistics over, in tiles.

    Attributes:
        size: odd kernel size in tiles, one int for every spatial dim or one per dim. 1: each
            tile keeps its own statistics (equals ``norm="tile"``); ``2 n - 1`` for ``n`` tiles
            along a dim covers that whole dim from every tile.
        weights: ``"constant"`` (every tile in the kernel counts the same) or ``"gaussian"``
            (weight ``exp(-d^2 / (2 sigma^2))`` at ``d`` tiles from the centre, per dim).
        sigma: gaussian only: standard deviation in tiles; default half the kernel radius
            (``(size // 2) / 2``), so the kernel ends at two sigma.

    At the border of the grid the kernel is cut to the tiles that exist and its weights are
    renormalised to sum to 1 (so a constant kernel covering the whole grid gives every tile
    the plain mean over all tiles).

    Text form (CLI, recorded settings): ``SIZE[,SIZE...][:WEIGHTS[:SIGMA]]``, e.g. ``3``,
    ``5:gaussian``, ``3,5:gaussian:1.5``; :meth:`parse` reads it, ``str()`` writes it.
    """

    size: int | tuple[int, ...] = 3
    weights: Literal["constant", "gaussian"] = "constant"
    sigma: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.size, (int, np.integer)):
            sizes: tuple = (self.size,)
        else:
            sizes = tuple(self.size) if isinstance(self.size, Sequence) else (self.size,)
        if not sizes or any(
            isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 or k % 2 == 0
            for k in sizes
        ):
            raise ValueError(
                f"norm kernel size must be an odd integer >= 1 (or one per spatial dim), "
                f"got {self.size!r}"
            )
        object.__setattr__(self, "size", int(sizes[0]) if len(sizes) == 1 else sizes)
        if self.weights not in KERNEL_WEIGHTS:
            raise ValueError(
                f"norm kernel weights must be one of {KERNEL_WEIGHTS}, got {self.weights!r}"
            )
        if self.sigma is not None:
            if self.weights != "gaussian":
                raise ValueError("norm kernel sigma is a setting of gaussian weights")
            try:
                sigma = float(self.sigma)
            except (TypeError, ValueError):
                sigma = float("nan")
            if not (sigma > 0 and np.isfinite(sigma)):
                raise ValueError(f"norm kernel sigma must be a number > 0, got {self.sigma!r}")
            object.__setattr__(self, "sigma", sigma)

    @classmethod
    def parse(cls, value: Any) -> NormKernel:
        """A kernel from any accepted form.

        Args:
            value: a :class:`NormKernel`; an int size; a sequence of int sizes (one per dim);
                a ``(size, weights)`` or ``(size, weights, sigma)`` tuple with ``size`` an int
                or a sequence; or the text form (see the class docstring).

        Raises:
            ValueError: anything else, an even or non-positive size, unknown weights, or a bad
                sigma; the message quotes the value.
        """
        if isinstance(value, NormKernel):
            return value
        if isinstance(value, str):
            return cls._parse_text(value)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return cls(int(value))
        if isinstance(value, Sequence) and value:
            if any(isinstance(v, str) for v in value):  # (size, weights[, sigma])
                if not 2 <= len(value) <= 3 or not isinstance(value[1], str):
                    raise ValueError(
                        f"norm kernel {value!r}: expected (size, weights) or (size, weights, sigma)"
                    )
                size = value[0]
                size = size if isinstance(size, (int, np.integer)) else tuple(size)
                return cls(size, value[1], value[2] if len(value) == 3 else None)  # type: ignore[arg-type]
            if all(isinstance(k, (int, np.integer)) for k in value):
                return cls(tuple(int(k) for k in value))
        raise ValueError(
            f"norm kernel {value!r} is not an odd size, a sequence of sizes, a "
            "(size, 'constant'|'gaussian') pair or text such as '3' or '5:gaussian'"
        )

    @classmethod
    def _parse_text(cls, text: str) -> NormKernel:
        parts = text.strip().split(":")
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"norm kernel {text!r}: expected SIZE[,SIZE...][:WEIGHTS[:SIGMA]]")
        try:
            sizes = tuple(int(k) for k in parts[0].split(","))
            sigma = float(parts[2]) if len(parts) == 3 else None
        except ValueError:
            raise ValueError(
                f"norm kernel {text!r}: expected SIZE[,SIZE...][:WEIGHTS[:SIGMA]] with integer "
                "sizes and a numeric sigma"
            ) from None
        weights = parts[1].strip() if len(parts) > 1 else "constant"
        return cls(sizes[0] if len(sizes) == 1 else sizes, weights, sigma)  # type: ignore[arg-type]

    def __str__(self) -> str:
        sizes = self.size if isinstance(self.size, int) else ",".join(map(str, self.size))
        text = f"{sizes}" if self.weights == "constant" else f"{sizes}:{self.weights}"
        return text if self.sigma is None else f"{text}:{float(self.sigma)!r}"

    def sizes(self, ndim: int) -> tuple[int, ...]:
        """The kernel size per spatial dim.

        Raises:
            ValueError: a per-dim size of another length than ``ndim``.
        """
        if isinstance(self.size, int):
            return (self.size,) * ndim
        if len(self.size) != ndim:
            raise ValueError(
                f"norm kernel size {self.size} has {len(self.size)} entries but the image has "
                f"{ndim} spatial dims"
            )
        return self.size

    def array(self, ndim: int) -> np.ndarray:
        """Unnormalised float64 weights, shape ``sizes(ndim)``, centre at ``size // 2``."""
        axes = []
        for k in self.sizes(ndim):
            radius = k // 2
            d = np.arange(k, dtype=np.float64) - radius
            if self.weights == "constant" or radius == 0:
                axes.append(np.ones(k))
            else:
                sigma = float(self.sigma) if self.sigma is not None else radius / 2
                axes.append(np.exp(-0.5 * (d / sigma) ** 2))
        weights = np.ones((), dtype=np.float64)
        for axis in axes:
            weights = np.multiply.outer(weights, axis)
        return weights


# -- which layers ---------------------------------------------------------------------------------
def _uses_own_statistics(module: nn.Module) -> bool:
    """An instance norm that normalises with its input's statistics (not running averages)."""
    return module.training or not getattr(module, "track_running_stats", False)


def _walk(module: nn.Module) -> list[nn.Module]:
    found = []
    for layer in module.modules():
        if isinstance(layer, _INSTANCE_NORMS):
            if _uses_own_statistics(layer):
                found.append(layer)
        elif isinstance(layer, NormWithStatistics):
            found.append(layer)
    return found


def _owner(source: Any) -> Any:
    """A bound method's object (``adapter.translate`` -> ``adapter``), else ``source``."""
    owner = getattr(source, "__self__", None)
    return owner if owner is not None and not isinstance(source, nn.Module) else source


def find_norm_layers(source: Any) -> list[nn.Module]:
    """The normalisation layers whose statistics ``thumbnail`` / ``kernel`` tiling replaces.

    Args:
        source: where to look, in this order: an object with a ``norm_layers()`` method (an
            adapter declaring its layers, :class:`~satikit.protocols.DeclaresNormLayers`);
            an object with a ``generator_xy`` module (an adapter: that module is walked); an
            ``nn.Module`` (walked); a bound method of one of these (``adapter.translate``:
            its object); or an iterable of modules (each walked). Walking collects every
            ``torch.nn.InstanceNorm1d/2d/3d``, affine or not, that normalises with its input's
            statistics (one tracking running statistics in eval mode is tile-independent
            already and left alone), and every
            :class:`~satikit.protocols.NormWithStatistics` layer.

    Returns:
        the layers, each once, in module order.

    Raises:
        ValueError: ``source`` is none of the above (e.g. a plain function), a declared layer
            is neither kind, or no layer was found.
    """
    owner = _owner(source)
    declared = getattr(owner, "norm_layers", None)
    if callable(declared):
        layers = list(declared())
        for layer in layers:
            if not isinstance(layer, (*_INSTANCE_NORMS, NormWithStatistics)):
                raise ValueError(
                    f"norm_layers() returned a {type(layer).__name__}, which is neither a "
                    "torch.nn.InstanceNorm1d/2d/3d nor a NormWithStatistics layer"
                )
    elif isinstance(getattr(owner, "generator_xy", None), nn.Module):
        layers = _walk(owner.generator_xy)
    elif isinstance(owner, nn.Module):
        layers = _walk(owner)
    elif isinstance(owner, Iterable) and not isinstance(owner, (str, bytes)):
        modules = list(owner)
        if not all(isinstance(m, nn.Module) for m in modules):
            raise ValueError("norm_layers must be modules (or one module, or an adapter)")
        layers = [layer for m in modules for layer in _walk(m)]
    else:
        raise ValueError(
            f"cannot find the normalisation layers of {type(source).__name__} {source!r}: "
            "norm='thumbnail' / 'kernel' needs fn to be an nn.Module (or a bound method of "
            "one, or of an adapter), or the layers passed as norm_layers="
        )
    unique = list({id(layer): layer for layer in layers}.values())
    if not unique:
        raise ValueError(
            f"no instance-norm layers in {type(owner).__name__}: norm='thumbnail' / 'kernel' "
            "replace the statistics of torch.nn.InstanceNorm1d/2d/3d layers (or layers an "
            "adapter declares through norm_layers()); this model has none, use norm='tile'"
        )
    return unique


def norm_roots(source: Any) -> list[nn.Module]:
    """The modules a translation with ``source`` runs (``source`` as for
    :func:`find_norm_layers`): an adapter's ``generator_xy``, a module, the modules of an
    iterable; none when that cannot be told (e.g. only declared layers). The statistics pass
    watches them for normalisations outside the layers found (:class:`UncoveredNorms`)."""
    owner = _owner(source)
    generator = getattr(owner, "generator_xy", None)
    if isinstance(generator, nn.Module):
        return [generator]
    if isinstance(owner, nn.Module):
        return [owner]
    if isinstance(owner, Iterable) and not isinstance(owner, (str, bytes)):
        return [m for m in owner if isinstance(m, nn.Module)]
    return []


class UncoveredNorms(TorchFunctionMode):
    """Records the normalisations with per-call statistics that run outside ``layers``.

    While active (around one ``fn`` call), every ``torch.nn.functional`` normalisation whose
    statistics depend on the tile (instance norm with input statistics, batch norm in training
    mode or without running statistics, group norm, layer norm over more than the last dim) is
    noted with the innermost module of ``roots`` that made it, unless that module is one of
    ``layers`` (whose statistics the engine replaces). :meth:`check` then refuses them: their
    statistics would stay per tile, silently.

    Args:
        roots: from :func:`norm_roots`.
        layers: from :func:`find_norm_layers`.
    """

    def __init__(self, roots: Sequence[nn.Module], layers: Sequence[nn.Module]):
        super().__init__()
        self.names = {
            id(m): name or type(m).__name__ for r in roots for name, m in r.named_modules()
        }
        self.covered = {id(layer) for layer in layers}
        self.stack: list[nn.Module] = []
        self.found: dict[str, str] = {}
        self._handles = [
            handle
            for root in roots
            for module in root.modules()
            for handle in (
                module.register_forward_pre_hook(self._enter),
                module.register_forward_hook(self._leave),
            )
        ]

    def _enter(self, module: nn.Module, args: Any) -> None:
        self.stack.append(module)

    def _leave(self, module: nn.Module, args: Any, output: Any) -> None:
        self.stack.pop()  # returns None: the module's output stays as it is

    def __exit__(self, *exc: Any) -> Any:
        for handle in self._handles:
            handle.remove()
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func in _PER_CALL and _PER_CALL[func](_bound(func, args, kwargs)):
            inside = self.stack[-1] if self.stack else None
            if inside is None or id(inside) not in self.covered:
                where = self.names.get(id(inside), "fn") if inside is not None else "fn"
                self.found.setdefault(where, f"torch.nn.functional.{func.__name__}")
        return func(*args, **kwargs)

    def check(self) -> None:
        """Raises ValueError naming every uncovered normalisation found."""
        if self.found:
            listed = ", ".join(f"{where} ({call})" for where, call in self.found.items())
            raise ValueError(
                f"shared statistics cannot reach every normalisation of this generator: {listed} "
                "normalise with each tile's own statistics outside the layers found (instance "
                "norms and NormWithStatistics layers). Make them such layers (or declare them "
                "through the adapter's norm_layers()), or use norm='tile'"
            )


def _bound(func: Callable, args: tuple, kwargs: dict) -> dict[str, Any]:
    try:
        return dict(inspect.signature(func).bind(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return {}


#: the functional normalisations and when their statistics come from the call's own input
_PER_CALL: dict[Callable, Callable[[dict[str, Any]], bool]] = {
    F.instance_norm: lambda a: bool(a.get("use_input_stats", True)),
    F.batch_norm: lambda a: bool(a.get("training", False)) or a.get("running_mean") is None,
    F.group_norm: lambda a: True,
    F.layer_norm: lambda a: len(tuple(a.get("normalized_shape", ()))) > 1,
}


def size_multiple_of(source: Any) -> int:
    """The ``size_multiple`` an adapter (or a bound method's object) declares; 1 without one."""
    value = getattr(_owner(source), "size_multiple", 1)
    return max(1, int(value)) if isinstance(value, (int, np.integer)) else 1


# -- one layer's statistics -----------------------------------------------------------------------
def layer_statistics(layer: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """``(mean, var)`` of the layer's input ``x`` as the layer computes them, each ``(B, *K)``."""
    if isinstance(layer, _INSTANCE_NORMS):
        var, mean = torch.var_mean(x, dim=tuple(range(2, x.ndim)), correction=0)
        return mean, var
    return layer.norm_statistics(x)  # type: ignore[operator]


def normalize_with(layer: nn.Module, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """The layer's output for ``x`` with the statistics ``(mean, var)``, each ``(B, *K)``, or
    per position ``(B, C, *spatial)`` like ``x`` (``dense``)."""
    if isinstance(layer, _INSTANCE_NORMS):
        view = mean.shape if mean.ndim == x.ndim else (*mean.shape, *(1,) * (x.ndim - 2))
        y = (x - mean.reshape(view)) * torch.rsqrt(var.reshape(view) + layer.eps)
        if layer.affine:
            shape = (1, -1, *(1,) * (x.ndim - 2))
            y = y * layer.weight.reshape(shape) + layer.bias.reshape(shape)
        return y
    return layer.normalize_with(x, mean, var)  # type: ignore[operator]


# -- the table -----------------------------------------------------------------------------------
class NormTable:
    """Statistics of every normalisation slot, per tile of a grid (KIN) or once (TIN).

    Args:
        counts: tiles per spatial dim of the grid, or ``()`` for one entry that every tile
            shares (the thumbnail's).

    Attributes:
        layers: per slot, the position of its layer in the layer list.
        means / variances: per slot, float64 ``(*counts, *K)``; NaN where not recorded yet.
    """

    def __init__(self, counts: Sequence[int] = ()):
        self.counts = tuple(int(n) for n in counts)
        self.layers: list[int] = []
        self.means: list[np.ndarray] = []
        self.variances: list[np.ndarray] = []

    @property
    def nbytes(self) -> int:
        """Memory of the table in bytes."""
        return sum(m.nbytes + v.nbytes for m, v in zip(self.means, self.variances))

    def complete(self) -> bool:
        """Whether there is at least one slot and every entry is recorded."""
        return bool(self.layers) and all(
            np.isfinite(m).all() and np.isfinite(v).all()
            for m, v in zip(self.means, self.variances)
        )

    def _entries(self, indices: Sequence[Index] | None, batch: int) -> tuple[np.ndarray, ...]:
        """Fancy index of the batch's tiles into a per-tile table."""
        if indices is None or len(indices) != batch:
            raise ValueError(
                f"a batch of {batch} tiles came without its {batch} grid indices; the "
                "statistics table is per tile"
            )
        return tuple(np.asarray(axis, dtype=np.intp) for axis in zip(*indices))

    def record(
        self,
        slot: int,
        layer: int,
        indices: Sequence[Index] | None,
        mean: np.ndarray,
        var: np.ndarray,
    ) -> None:
        """Store slot ``slot``'s ``(B, *K)`` statistics for the tiles at ``indices``.

        Raises:
            ValueError: the slot belongs to another layer or has another shape than before
                (``fn`` ran its layers in another order), or indices do not fit the table.
        """
        batch = mean.shape[0]
        if slot == len(self.layers):
            self.layers.append(layer)
            self.means.append(np.full((*self.counts, *mean.shape[1:]), np.nan))
            self.variances.append(np.full((*self.counts, *var.shape[1:]), np.nan))
        self._check_slot(slot, layer, mean.shape[1:])
        if self.counts:
            entries = self._entries(indices, batch)
            self.means[slot][entries] = mean
            self.variances[slot][entries] = var
        else:
            if batch != 1:
                raise ValueError(f"a shared statistics entry needs a batch of 1, got {batch}")
            self.means[slot][...] = mean[0]
            self.variances[slot][...] = var[0]

    def lookup(
        self, slot: int, layer: int, indices: Sequence[Index] | None, batch: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slot ``slot``'s statistics for a batch: two float64 ``(batch, *K)`` arrays.

        Raises:
            ValueError: the slot is unknown or belongs to another layer.
        """
        self._check_slot(slot, layer, None)
        if not self.counts:
            return (
                np.repeat(self.means[slot][None], batch, axis=0),
                np.repeat(self.variances[slot][None], batch, axis=0),
            )
        entries = self._entries(indices, batch)
        return self.means[slot][entries], self.variances[slot][entries]

    def statistics_for(
        self, slot: int, layer: int, indices: Sequence[Index] | None, x: Tensor
    ) -> tuple[np.ndarray, np.ndarray]:
        """What the ``apply`` hook normalises a batch ``x`` with: :meth:`lookup`'s
        ``(batch, *K)`` arrays."""
        return self.lookup(slot, layer, indices, x.shape[0])

    def _check_slot(self, slot: int, layer: int, shape: tuple[int, ...] | None) -> None:
        if slot >= len(self.layers):
            raise ValueError(
                f"fn ran more normalisation layers ({slot + 1}) than in the statistics pass "
                f"({len(self.layers)})"
            )
        own = self.means[slot].shape[len(self.counts) :]
        if self.layers[slot] != layer or (shape is not None and tuple(shape) != own):
            raise ValueError(
                f"normalisation call {slot} of fn ran layer {layer} with statistics of shape "
                f"{shape}, but layer {self.layers[slot]} with {own} before: fn must run its "
                "normalisation layers in the same order on every call"
            )

    def smoothed(self, kernel: NormKernel) -> NormTable:
        """KIN: every entry replaced by the kernel-weighted average of its neighbours'.

        Means and variances are averaged separately with the same weights; the kernel is cut
        at the border of the grid and renormalised there.
        """
        if not self.counts:
            raise ValueError("a shared (thumbnail) table has no grid to average over")
        weights = kernel.array(len(self.counts))
        table = NormTable(self.counts)
        table.layers = list(self.layers)
        table.means = [_kernel_average(m, weights) for m in self.means]
        table.variances = [_kernel_average(v, weights) for v in self.variances]
        return table

    def arrays(self, prefix: str = "norm.") -> dict[str, np.ndarray]:
        """The table as named arrays (for a resume state)."""
        arrays = {f"{prefix}layers": np.asarray(self.layers, dtype=np.int64)}
        for slot, (mean, var) in enumerate(zip(self.means, self.variances)):
            arrays[f"{prefix}{slot}.mean"] = mean
            arrays[f"{prefix}{slot}.var"] = var
        return arrays

    def restore(self, arrays: dict[str, np.ndarray], prefix: str = "norm.") -> bool:
        """Take the table back from :meth:`arrays`; False (and unchanged) if none is there."""
        if f"{prefix}layers" not in arrays:
            return False
        layers = [int(k) for k in arrays[f"{prefix}layers"]]
        means = [np.asarray(arrays[f"{prefix}{s}.mean"], np.float64) for s in range(len(layers))]
        variances = [np.asarray(arrays[f"{prefix}{s}.var"], np.float64) for s in range(len(layers))]
        if any(m.shape[: len(self.counts)] != self.counts for m in means):
            raise ValueError(f"saved statistics do not fit a grid of {self.counts} tiles")
        self.layers, self.means, self.variances = layers, means, variances
        return True


class DenseTable:
    """Dense normalisation: per-pixel statistics interpolated from a per-tile table.

    Each tile's entry stands at the tile's centre (in image px). A pixel of a layer's input,
    at position ``j`` of ``S_l`` along a dim of a tile starting at ``s`` with size ``T``, sits
    at ``s + (j + 0.5) T / S_l`` in the image; its mean and variance are interpolated linearly
    along every dim between the two tile centres around it (separably: bilinear in 2D,
    trilinear in 3D), and held constant beyond the first and last centres. With one tile along a
    dim that dim is constant; with one tile in all, ``dense`` equals ``tile``.

    Args:
        table: a complete per-tile table (the caching pass's).
        grid: the grid it was recorded on (tile starts, shifted last tiles included).
        layers: the layers of the table's slots (to refuse statistics that are not per channel).
    """

    def __init__(self, table: NormTable, grid: Any, layers: Sequence[nn.Module]):
        if not table.counts:
            raise ValueError("dense statistics need a per-tile table, not a shared one")
        self.table, self.grid = table, grid
        for slot, layer in enumerate(table.layers):
            module = layers[layer]
            shape = table.means[slot].shape[len(table.counts) :]
            if len(shape) != 1 or (
                not isinstance(module, _INSTANCE_NORMS)
                and not getattr(module, "dense_statistics", False)
            ):
                raise ValueError(
                    f"norm='dense' interpolates per-channel statistics across the image, but "
                    f"layer {layer} ({type(module).__name__}) reports statistics of shape "
                    f"{tuple(shape)}"
                    + (
                        ""
                        if isinstance(module, _INSTANCE_NORMS)
                        else " and does not declare dense_statistics = True (its normalize_with "
                        "must take per-position statistics)"
                    )
                    + "; use norm='kernel' or 'thumbnail'"
                )
        self.centres = [
            np.array(
                [grid.start((0,) * d + (i,) + (0,) * (grid.ndim - d - 1))[d] for i in range(n)],
                dtype=np.float64,
            )
            + grid.tile[d] / 2
            for d, n in enumerate(grid.counts)
        ]

    @property
    def layers(self) -> list[int]:
        """Per slot, the position of its layer in the layer list (the table's)."""
        return self.table.layers

    def _axis(self, d: int, start: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Along dim ``d`` for ``size`` positions of a tile starting at ``start``: the lower and
        upper tile index and the upper's weight, each ``(size,)``."""
        centres = self.centres[d]
        u = start + (np.arange(size, dtype=np.float64) + 0.5) * self.grid.tile[d] / size
        if len(centres) == 1:
            zero = np.zeros(size, dtype=np.intp)
            return zero, zero, np.zeros(size)
        lower = np.clip(np.searchsorted(centres, u, side="right") - 1, 0, len(centres) - 2)
        span = centres[lower + 1] - centres[lower]
        weight = np.clip((u - centres[lower]) / span, 0.0, 1.0)
        return lower, lower + 1, weight

    def _interpolate(self, values: np.ndarray, index: Index, spatial: Sequence[int]) -> np.ndarray:
        """``values`` ``(*counts, C)`` at every position of tile ``index``'s layer input of
        ``spatial`` size: ``(C, *spatial)``."""
        start = self.grid.start(index)
        out = values
        for d, size in enumerate(spatial):  # dim d of ``out`` becomes the tile's positions
            lower, upper, weight = self._axis(d, start[d], size)
            shape = (1,) * d + (size,) + (1,) * (out.ndim - d - 1)
            w = weight.reshape(shape)
            out = (1 - w) * np.take(out, lower, axis=d) + w * np.take(out, upper, axis=d)
        return np.moveaxis(out, -1, 0)

    def statistics_for(
        self, slot: int, layer: int, indices: Sequence[Index] | None, x: Tensor
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-position ``(B, C, *spatial)`` means and variances for a batch ``x``."""
        self.table._check_slot(slot, layer, None)
        if indices is None or len(indices) != x.shape[0]:
            raise ValueError("dense statistics need the grid index of every tile in a batch")
        spatial = x.shape[2:]
        means = [self._interpolate(self.table.means[slot], i, spatial) for i in indices]
        variances = [self._interpolate(self.table.variances[slot], i, spatial) for i in indices]
        return np.stack(means), np.stack(variances)


def _kernel_average(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted average of ``values`` ``(*counts, *K)`` over the ``weights.ndim`` leading axes,
    cut at the border and renormalised (one vectorised slice-add per kernel offset)."""
    n = weights.ndim
    counts = values.shape[:n]
    total = np.zeros(values.shape, dtype=np.float64)
    norm = np.zeros(counts, dtype=np.float64)
    radius = [k // 2 for k in weights.shape]
    for offset in itertools.product(*(range(k) for k in weights.shape)):
        d = [o - r for o, r in zip(offset, radius)]
        if any(abs(dk) >= c for dk, c in zip(d, counts)):
            continue
        target = tuple(slice(max(0, -dk), c - max(0, dk)) for dk, c in zip(d, counts))
        source = tuple(slice(max(0, dk), c + min(0, dk)) for dk, c in zip(d, counts))
        w = weights[offset]
        total[target] += w * values[source]
        norm[target] += w
    return total / norm.reshape(counts + (1,) * (values.ndim - n))


# -- the hooks -----------------------------------------------------------------------------------
@contextmanager
def norm_hooks(
    layers: Sequence[nn.Module],
    table: NormTable | DenseTable,
    mode: Literal["record", "apply"],
    roots: Sequence[nn.Module] = (),
) -> Iterator[BatchContext]:
    """Forward hooks on ``layers`` that record their statistics into ``table`` or replace them.

    Yields the :data:`~satikit.stitching.runner.BatchContext` to enter around every ``fn`` call
    (:class:`~satikit.stitching.runner.TileFn` ``context=``): it tells the hooks which tiles
    the batch holds and checks that the call ran the normalisation layers as recorded. The
    hooks are removed on exit.

    Args:
        layers: from :func:`find_norm_layers`.
        table: ``"record"``: filled with each call's statistics (the layer's own output is kept,
            so the call is a plain per-tile pass); ``"apply"``: each layer's output is replaced
            by :func:`normalize_with` the table's entries for the batch's tiles.
        mode: ``"record"`` or ``"apply"``.
        roots: the modules ``fn`` runs (:func:`norm_roots`): the first call is watched for
            normalisations outside ``layers`` (:class:`UncoveredNorms`), which are refused.
    """
    state: dict[str, Any] = {"slot": 0, "indices": None, "active": False, "watched": not roots}
    position = {id(layer): k for k, layer in enumerate(layers)}

    def hook(module: nn.Module, args: tuple, output: Any) -> Any:
        if not state["active"]:
            return None  # a call outside the engine's passes
        slot, state["slot"] = state["slot"], state["slot"] + 1
        x = args[0]
        layer = position[id(module)]
        if mode == "record":
            mean, var = layer_statistics(module, x)
            table.record(slot, layer, state["indices"], _numpy(mean), _numpy(var))
            return None
        mean, var = table.statistics_for(slot, layer, state["indices"], x)
        as_tensor = _to_tensor(x)
        return normalize_with(module, x, as_tensor(mean), as_tensor(var))

    @contextmanager
    def batch(indices: Sequence[Index] | None) -> Iterator[None]:
        state.update(slot=0, indices=indices, active=True)
        watch = None if state["watched"] else UncoveredNorms(roots, layers)
        try:
            if watch is None:
                yield
            else:
                with watch:
                    yield
        finally:
            state["active"] = False
        ran, expected = state["slot"], len(table.layers)
        if ran == 0:
            raise ValueError(
                "fn never ran the normalisation layers found for it: pass the modules fn "
                "really runs as norm_layers="
            )
        if ran != expected:
            raise ValueError(
                f"fn ran {ran} normalisation layers, the statistics table has {expected}: fn "
                "must run the same layers on every call"
            )
        if watch is not None:
            state["watched"] = True
            watch.check()

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        yield batch
    finally:
        for handle in handles:
            handle.remove()


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _to_tensor(like: Tensor) -> Callable[[np.ndarray], Tensor]:
    def convert(values: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(values)).to(like.device, like.dtype)

    return convert
