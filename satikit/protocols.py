"""What a GAN family provides so the SATI hooks can wrap it without knowing it (paper Alg. 1).

An *adapter* is one trainable instance of a GAN family (CycleGAN, UNIT, MUNIT, ...). The SATI
trainer (:mod:`satikit.training`) only talks to the members of :class:`Adapter`:

* ``generator_xy`` is reused for ``ŷ_z = G_XY(z)`` (paper Alg. 1) and ``discriminator_y`` for the
  SATI adversarial terms, scored with the host's own ``criterion``;
* ``generator_step`` returns the host's complete generator loss *and* ``ŷ_x`` with its graph,
  so SATI never recomputes the forward pass;
* ``discriminator_step`` returns the host's discriminator loss (SATI adds its own term).

All tensors are ``(B, C, *spatial)`` with ``len(spatial) == adapter.dims``. X tensors hold
encoded X values, Y tensors encoded Y values (:mod:`satikit.encoding`): with domain encoding
X lies in [-1, 0] and Y in [0, 1], without it both lie in [-1, 1]. An adapter maps each
generator's tanh output to its target domain with :func:`satikit.encoding.to_domain`, so
``generator_xy`` outputs encoded Y values.

Plugins register a factory (see :class:`AdapterFactory`) plus its declared :class:`Option` s
through the ``register_adapters`` hook (:mod:`satikit.hookspecs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from torch import Tensor, nn

__all__ = [
    "Adapter",
    "AdapterFactory",
    "AdapterInfo",
    "DeclaresNormLayers",
    "NormWithStatistics",
    "Option",
    "Optimizers",
    "parse_bool",
]

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def parse_bool(value: str | bool | int) -> bool:
    """Parse ``true/false/yes/no/on/off/1/0`` (any case) or a bool into a bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


@dataclass(frozen=True)
class Option:
    """One declared hyperparameter of an adapter.

    Attributes:
        default: default value; its type (bool, int, float, str) is the option's type unless
            ``type`` is given.
        help: one-line description shown by ``satikit adapters --options NAME``.
        choices: allowed values, if restricted.
        type: converter from a CLI string; defaults to the type of ``default``.
        flag: a ``satikit train --FLAG VALUE`` shorthand for ``-o NAME VALUE`` (e.g. the timm
            adapter's ``--backbone``); None: only ``-o``.
    """

    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    type: Callable[[Any], Any] | None = None
    flag: str | None = None

    def parse(self, value: Any, *, name: str = "option") -> Any:
        """Convert ``value`` (often a CLI string) to the option's type and check ``choices``.

        Raises:
            ValueError: naming the option when the value does not convert or is not allowed.
        """
        convert = self.type or _converter(self.default)
        try:
            parsed = convert(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid value {value!r} for option {name!r}: {exc}") from None
        if self.choices is not None and parsed not in self.choices:
            raise ValueError(
                f"invalid value {value!r} for option {name!r}; choose from {list(self.choices)}"
            )
        return parsed


def _converter(default: Any) -> Callable[[Any], Any]:
    if isinstance(default, bool):
        return parse_bool
    if isinstance(default, int):
        return _parse_int
    if isinstance(default, float):
        return float
    if default is None:
        return lambda value: value
    return type(default)


def _parse_int(value: Any) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("expected an integer")
        return int(value)
    return int(str(value).strip())


class Optimizers(NamedTuple):
    """The host's optimizers and learning-rate schedulers.

    Attributes:
        generator: optimizer over all generator parameters (it steps on the host loss plus the
            SATI terms, paper Alg. 1 ``optimizer_Gen``).
        discriminator: optimizer over all discriminator parameters (``optimizer_D``).
        schedulers: stepped once after every training step.
    """

    generator: torch.optim.Optimizer
    discriminator: torch.optim.Optimizer
    schedulers: Sequence[Any] = ()


@runtime_checkable
class Adapter(Protocol):
    """One GAN family, wrapped so SATI can train and run it (paper Alg. 1, III-A).

    Attributes:
        name: registry name of the adapter (``"cyclegan"``).
        dims: number of spatial dimensions of this instance (2 or 3).
        options: the resolved hyperparameters it was built with (JSON-serialisable; saved in
            checkpoints so the run can be rebuilt).
        generator_xy: ``(B, C_x, *spatial)`` encoded X or merged Z -> ``(B, C_y, *spatial)``
            encoded Y. SATI calls it on ``z`` (paper Alg. 1).
        discriminator_y: ``(B, C_y, *spatial)`` encoded Y -> patch scores for ``criterion``.
        loss_terms: detached named terms of the latest host steps (e.g. ``adv_xy``,
            ``cycle_x``, ``d_y``), for logging only.

    Optional members (not part of the runtime check; the engine looks for them with
    ``getattr``):

    * ``size_multiple: int``: every spatial size ``generator_xy`` accepts is a multiple of it
      (whole-image and thumbnail passes are sized or padded to it).
    * ``encode_style(y) -> style``: adapters with styles (MUNIT).
    * ``norm_layers() -> Sequence[nn.Module]``: see :class:`DeclaresNormLayers`; the
      normalisation layers whose statistics ``norm="thumbnail"`` / ``"kernel"`` tiling
      (:func:`satikit.stitching.stitch`) shares between tiles. Without it the engine walks
      ``generator_xy`` for ``torch.nn.InstanceNorm1d/2d/3d`` layers (and layers implementing
      :class:`NormWithStatistics`).
    """

    name: str
    dims: int
    options: Mapping[str, Any]
    generator_xy: nn.Module
    discriminator_y: nn.Module
    loss_terms: Mapping[str, Tensor]

    def criterion(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        """The host's adversarial criterion (LSGAN: MSE to 1 / 0) as a scalar tensor."""
        ...

    def generator_step(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Host generator losses for one batch.

        Args:
            x: ``(B, C_x, *spatial)`` encoded X.
            y: ``(B, C_y, *spatial)`` encoded Y (unpaired).

        Returns:
            ``(loss, y_hat_x)``: the host's total generator loss (scalar, with graph) and
            ``ŷ_x = G_XY(x)`` in encoded Y, with graph (SATI reuses it, never recomputes it).
        """
        ...

    def discriminator_step(self, x: Tensor, y: Tensor, y_hat_x: Tensor) -> Tensor:
        """Host discriminator loss for the batch of the preceding :meth:`generator_step`.

        ``y_hat_x`` is given detached. Returns a scalar tensor with graph into the
        discriminators only.
        """
        ...

    def configure_optimizers(self, total_steps: int) -> Optimizers:
        """Create the host's optimizers and schedulers for a run of ``total_steps`` steps."""
        ...

    def translate(self, x: Tensor, *, seed: int | None = None) -> Tensor:
        """Inference on a batch of tiles: encoded X (or Z) -> encoded Y, no graph.

        ``seed`` fixes image-level randomness (e.g. MUNIT's style) so all tiles of one large
        image agree; deterministic adapters ignore it.
        """
        ...

    def state_dict(self) -> dict[str, Tensor]:
        """All network weights as a flat ``name -> tensor`` mapping (stored as safetensors)."""
        ...

    def load_state_dict(self, state_dict: Mapping[str, Tensor], strict: bool = True) -> Any:
        """Load weights written by :meth:`state_dict`."""
        ...

    def training_state(self) -> dict[str, Tensor]:
        """Host state beyond weights needed for an exact ``--resume`` (e.g. an image pool)."""
        ...

    def load_training_state(self, state: Mapping[str, Tensor]) -> None:
        """Restore what :meth:`training_state` returned."""
        ...

    def to(self, device: Any) -> Any:
        """Move all modules to ``device``."""
        ...

    def train(self, mode: bool = True) -> Any:
        """Switch all modules between training and evaluation mode."""
        ...


@runtime_checkable
class NormWithStatistics(Protocol):
    """A normalisation layer other than ``torch.nn.InstanceNorm*d`` whose statistics can be
    recorded and replaced by the tiling engine (TIN / KIN, :mod:`satikit.stitching.norm`).

    The layer normalises its first forward argument ``x`` ``(B, C, *spatial)`` with statistics
    computed from ``x`` itself (e.g. a layer norm: one mean and variance per sample). Both
    methods work on that same ``x``.
    """

    def norm_statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The ``(mean, var)`` the layer's forward would compute from ``x``, each ``(B, *K)``
        (instance norm: ``(B, C)``; layer norm: ``(B, 1)``); var >= 0, biased."""
        ...

    def normalize_with(self, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        """The layer's forward output for ``x``, normalised with the given ``(B, *K)``
        statistics instead of its own (its affine map, if any, still applied).

        A layer whose ``K`` is one axis and that sets the class attribute
        ``dense_statistics = True`` also takes per-position statistics ``(B, K, *spatial)``
        (``norm="dense"``), broadcast against ``x``."""
        ...


@runtime_checkable
class DeclaresNormLayers(Protocol):
    """An adapter (or any object handed to the engine as ``norm_layers``) that names its
    normalisation layers itself, instead of the engine walking ``generator_xy``."""

    def norm_layers(self) -> Sequence[nn.Module]:
        """The layers, each a ``torch.nn.InstanceNorm1d/2d/3d`` or a
        :class:`NormWithStatistics`; every one the translation runs."""
        ...


@runtime_checkable
class AdapterFactory(Protocol):
    """Builds an adapter; what a plugin passes to ``register(name, factory, ...)``.

    The data fixes ``dims`` and the channel counts; ``domain_encoding`` tells the adapter which
    encoded ranges its generators map to; ``options`` are the declared hyperparameters, already
    parsed and validated against the registered :class:`Option` s.
    """

    def __call__(
        self,
        *,
        dims: int,
        in_channels: int,
        out_channels: int,
        domain_encoding: bool = True,
        **options: Any,
    ) -> Adapter: ...


@dataclass(frozen=True)
class AdapterInfo:
    """A registered adapter, as listed by ``satikit adapters``.

    Attributes:
        name: registry name.
        factory: see :class:`AdapterFactory`.
        dims: supported numbers of spatial dimensions.
        options: declared hyperparameters with defaults.
        test_options: the smallest configuration, for fast tests (overrides of ``options``).
        plugin: name of the plugin that registered it.
        version: version of the plugin's distribution (``""`` if unknown).
        importer: ``importer(adapter, path) -> list[str]`` loads a checkpoint in the adapter
            family's own reference format into a built adapter (``satikit train --init``) and
            returns what it loaded; raises ``ValueError`` for files it cannot read. None: only
            satikit weights can initialise this adapter.
        importer_help: what ``importer`` reads, for ``satikit train --help``.
    """

    name: str
    factory: Callable[..., Adapter]
    dims: tuple[int, ...] = (2, 3)
    options: Mapping[str, Option] = field(default_factory=dict)
    test_options: Mapping[str, Any] = field(default_factory=dict)
    plugin: str = ""
    version: str = ""
    importer: Callable[[Adapter, Path], Iterable[str]] | None = None
    importer_help: str = ""

    def resolve_options(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults updated with parsed ``overrides``.

        Raises:
            ValueError: for an unknown option name (listing the known ones) or a bad value.
        """
        resolved = {key: option.default for key, option in self.options.items()}
        for key, value in (overrides or {}).items():
            if key not in self.options:
                known = ", ".join(sorted(self.options)) or "none"
                raise ValueError(
                    f"adapter {self.name!r} has no option {key!r}; known options: {known}"
                )
            resolved[key] = self.options[key].parse(value, name=key)
        return resolved
