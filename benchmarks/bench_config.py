"""The benchmark configs (``benchmarks/configs/*.toml``) as typed, frozen dataclasses.

:meth:`BenchConfig.from_dict` checks a parsed TOML file once: an unknown key or a value of the
wrong type is refused with one error naming the file and the key. :meth:`Section.as_dict` gives
the tables back as written (same keys, same order, lists as lists), so hashes of a config and
the settings recorded in result files stay what they were. Modified configs are made with
:func:`dataclasses.replace` on the sections (e.g. ``replace(config, train=replace(config.train,
steps=4800))``); a key set that way that differs from its default joins :meth:`as_dict`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

__all__ = [
    "BenchConfig",
    "ConfigError",
    "DataConfig",
    "FinetuneConfig",
    "FrontierConfig",
    "InferenceConfig",
    "PlanOverrides",
    "Section",
    "ShipConfig",
    "TrainConfig",
]

S = TypeVar("S", bound="Section")


class ConfigError(ValueError):
    """A benchmark config with an unknown key or a value of the wrong type."""


@dataclass(frozen=True, kw_only=True)
class Section:
    """A table of a config. ``_given``: its keys as the file wrote them, in order (what
    :meth:`as_dict` gives back besides keys changed from their defaults)."""

    _given: tuple[str, ...] = field(default=(), repr=False, compare=False)

    #: a field whose mapping holds the table's remaining keys (flattened by :meth:`as_dict`)
    REST: ClassVar[str | None] = None

    @classmethod
    def from_dict(cls: type[S], table: Mapping[str, Any], where: str, source: str) -> S:
        """Check and convert a TOML table (at key path ``where`` of the file ``source``)."""
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: {_key(where)} must be a table, got {table!r}")
        hints = typing.get_type_hints(cls)
        known = [f.name for f in _fields(cls) if f.name != cls.REST]
        rest = {k: v for k, v in table.items() if k not in known}
        if unknown := cls.unknown_keys(table, rest):
            raise ConfigError(
                f"{source}: {_table(where)} has unknown key(s) {sorted(unknown)}; "
                f"known: {', '.join(cls.known_keys(table))}"
            )
        values: dict[str, Any] = {}
        for f in _fields(cls):
            path = f"{where}.{f.name}" if where else f.name
            if f.name == cls.REST:
                values[f.name] = _convert(rest, hints[f.name], where, source)
            elif f.name in table:
                values[f.name] = _convert(table[f.name], hints[f.name], path, source)
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{source}: missing {_key(path)}")
        return cls(**values, _given=tuple(table))

    @classmethod
    def known_keys(cls, table: Mapping[str, Any]) -> list[str]:
        """The keys the table may have (``table``: for sections whose keys depend on it)."""
        return [f.name for f in _fields(cls) if f.name != cls.REST]

    @classmethod
    def unknown_keys(cls, table: Mapping[str, Any], rest: Mapping[str, Any]) -> set[str]:
        """The keys of ``table`` that are not known (``rest``: those no field is named after)."""
        return set(rest) if cls.REST is None else set()

    def as_dict(self) -> dict[str, Any]:
        """The table as the TOML file wrote it: its given keys in their order, then keys changed
        from their defaults (tuples as lists, sections as dicts)."""
        values: dict[str, Any] = {}
        changed: list[str] = []
        for f in _fields(type(self)):
            value = getattr(self, f.name)
            if f.name == type(self).REST:
                values.update(value)
                changed += [k for k in value if k not in self._given]
            else:
                values[f.name] = value
                if f.name not in self._given and value != _default(f):
                    changed.append(f.name)
        return {k: _plain(values[k]) for k in [*self._given, *changed] if k in values}


@dataclass(frozen=True, kw_only=True)
class PlanOverrides(Section):
    """``[per_adapter.<adapter>]``: plan keys for one adapter (None: the top-level value), the
    training steps of its runs trained from scratch (``steps``, instead of ``[train] steps``)
    and of its fine-tunes and controls (``finetune_steps``, instead of ``[finetune] steps``),
    and SATISettings its SATI fine-tunes take on top of ``[finetune.sati]``
    (``finetune_sati``)."""

    models: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None
    ablation_seeds: tuple[int, ...] | None = None
    ablations: tuple[str, ...] | None = None
    steps: int | None = None
    finetune_steps: int | None = None
    finetune_sati: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], where: str, source: str) -> PlanOverrides:
        config = super().from_dict(table, where, source)
        for key in ("steps", "finetune_steps"):
            if (value := getattr(config, key)) is not None and value < 1:
                raise ConfigError(f"{source}: {_key(f'{where}.{key}')} must be >= 1, got {value}")
        _check_sati(config.finetune_sati, f"{where}.finetune_sati", source)
        return config


# the keys of [data] every kind takes besides its generator's: the validation set's
VALIDATION_KEYS = ("validation_seed", "n_validation", "validation_source", "validation_box")
DATA_KINDS = ("circles", "textured", "restain")


def generator_keys(kind: str) -> list[str]:
    """The ``[data]`` keys a kind's generator takes: :class:`satikit.data.presets.CirclePreset`
    fields and ``preset`` (circles), :class:`satikit.data.textured.TexturedParams` fields, or
    :func:`satikit.data.datasets.make_restain_dataset`'s parameters."""
    import inspect

    from satikit.data.datasets import make_restain_dataset
    from satikit.data.presets import CirclePreset
    from satikit.data.textured import TexturedParams

    if kind == "circles":
        return ["preset", *(f.name for f in fields(CirclePreset))]
    if kind == "textured":
        return [f.name for f in fields(TexturedParams)]
    parameters = inspect.signature(make_restain_dataset).parameters
    return [k for k in parameters if k not in ("out_dir", "seed", "progress", "force")]


@dataclass(frozen=True, kw_only=True)
class DataConfig(Section):
    """``[data]``: the dataset of a kind (circles, textured, restain), its seed, the validation
    set's keys, and the kind's generator parameters (``params``)."""

    kind: str = "circles"
    seed: int = 0
    dims: int = 2
    preset: str | None = None  # circles: a preset of satikit.data.presets (default "small")
    n_images: int | None = None
    n_test: int | None = None
    validation_seed: int = 777
    n_validation: int | None = None
    validation_source: str = "retina"  # restain: the bundled image of the validation set
    # restain: (top, left, height, width) of the source part the validation set is made from
    # (its bottom half is the validation part, as the test part is the slide's); None: all
    validation_box: tuple[int, int, int, int] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # the generator's other keys

    REST: ClassVar[str | None] = "params"

    @classmethod
    def known_keys(cls, table: Mapping[str, Any]) -> list[str]:
        kind = table.get("kind", "circles")
        common = ["kind", "seed", "dims", *VALIDATION_KEYS]
        return [*common, *(k for k in generator_keys(kind) if k not in common)]

    @classmethod
    def unknown_keys(cls, table: Mapping[str, Any], rest: Mapping[str, Any]) -> set[str]:
        return set(table) - set(cls.known_keys(table))

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], where: str, source: str) -> DataConfig:
        kind = table.get("kind", "circles") if isinstance(table, Mapping) else "circles"
        if kind not in DATA_KINDS:
            raise _wrong(kind, "circles, textured or restain", f"{where}.kind", source)
        return super().from_dict(table, where, source)

    def generator_options(self) -> dict[str, Any]:
        """Keyword arguments of the kind's generator besides ``seed``: the generator keys as
        :meth:`as_dict` gives them (``preset`` included; ``dims`` for the circles only: the
        other kinds make 2D images, ``dims`` tells the runs)."""
        ignored = {"kind", "seed", *VALIDATION_KEYS, *(() if self.kind == "circles" else ("dims",))}
        return {k: v for k, v in self.as_dict().items() if k not in ignored}


@dataclass(frozen=True, kw_only=True)
class TrainConfig(Section):
    """``[train]``: what every run trains with; per-run tables of SATISettings overrides
    (``sati``: SATI models, ``standard``: the others) and adapter options (``options``)."""

    crop: int
    batch_size: int
    steps: int
    device: str = "auto"
    ema: float = 0.0  # > 0: every run keeps its generator's moving average (scored too)
    init: str | None = None  # "standard": start from the standard run (benchmarks.variants)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sati: Mapping[str, Any] = field(default_factory=dict)
    standard: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], where: str, source: str) -> TrainConfig:
        config = super().from_dict(table, where, source)
        for name in ("sati", "standard"):
            _check_sati(getattr(config, name), f"{where}.{name}", source)
        return config


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig(Section):
    """``[finetune]``: SATI fine-tunes (and their controls) of each standard model."""

    steps: int
    sati: Mapping[str, Any] = field(default_factory=dict)  # SATISettings on top of [train.sati]

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], where: str, source: str) -> FinetuneConfig:
        config = super().from_dict(table, where, source)
        _check_sati(config.sati, f"{where}.sati", source)
        return config


@dataclass(frozen=True, kw_only=True)
class InferenceConfig(Section):
    """``[inference]``: the tile grid and the settings of the named methods
    (:mod:`benchmarks.methods`; None: the method's default)."""

    tile: int
    overlap: int
    simple_overlap: int | None = None  # default: overlap
    weighted_shift: int | None = None  # default: tile // 4
    gaussian_overlap: int | None = None  # default: tile // 2
    margin: int = 0
    batch_size: int = 4
    order: str = "auto"


@dataclass(frozen=True, kw_only=True)
class FrontierConfig(Section):
    """``[frontier]``: method lists per model (``standard``, ``sati``, or a model's own name such
    as ``control``) in ``lists``; ``averaged``: the methods kept for averaged weights; ``best``:
    the methods kept for each run's snapshot chosen on the validation images (``+best``
    models, with ``snapshots = true``; None: no such models)."""

    averaged: tuple[str, ...] | None = None
    best: tuple[str, ...] | None = None
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    REST: ClassVar[str | None] = "lists"

    @classmethod
    def unknown_keys(cls, table: Mapping[str, Any], rest: Mapping[str, Any]) -> set[str]:
        from benchmarks.planning import MODELS

        return {k for k in rest if k not in MODELS and not k.startswith("sati-wo-")}

    @classmethod
    def known_keys(cls, table: Mapping[str, Any]) -> list[str]:
        from benchmarks.planning import MODELS

        return ["averaged", *MODELS, "sati-wo-<adaptation>"]


@dataclass(frozen=True, kw_only=True)
class ShipConfig(Section):
    """``[ship]``: what :mod:`benchmarks.ship_demo` ships: folder names, the models and the
    methods scoring them."""

    standard: str = "demo-standard"
    standard_method: str = "weighted"
    sati: str = "demo-sati"
    sati_model: str = "sati"
    sati_method: str = "sati"
    control: str = "demo-control"


@dataclass(frozen=True, kw_only=True)
class BenchConfig(Section):
    """A benchmark config: the plan (adapters, seeds, models, ablations, how many trainings at
    a time) and its tables."""

    name: str
    adapters: tuple[str, ...]
    seeds: tuple[int, ...]
    models: tuple[str, ...] | None = None  # default: standard, sati (+ sati-finetune)
    ablation_seeds: tuple[int, ...] = ()
    ablations: tuple[str, ...] = ()
    jobs: int = 1  # trainings side by side
    threads_per_job: int = 1
    snapshots: bool = False  # keep the weights at every checkpoint
    per_adapter: Mapping[str, PlanOverrides] = field(default_factory=dict)
    data: DataConfig
    train: TrainConfig
    inference: InferenceConfig
    finetune: FinetuneConfig | None = None
    frontier: FrontierConfig = field(default_factory=FrontierConfig)
    ship: ShipConfig = field(default_factory=ShipConfig)

    @classmethod
    def from_dict(  # type: ignore[override]
        cls, table: Mapping[str, Any], where: str = "", source: str = "config"
    ) -> BenchConfig:
        """Check and convert a parsed config file (``source``: its path, for errors)."""
        return super().from_dict(table, where, source)


# -- checking and converting values ----------------------------------------------------------
def _fields(cls: type) -> list[Field]:
    return [f for f in fields(cls) if f.name != "_given"]


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else MISSING


def _key(path: str) -> str:
    return f"key {path!r}"


def _table(where: str) -> str:
    return f"[{where}]" if where else "the top level"


def _plain(value: Any) -> Any:
    """A value as TOML gave it: sections as dicts, tuples as lists."""
    if isinstance(value, Section):
        return value.as_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _convert(value: Any, kind: Any, path: str, source: str) -> Any:
    """``value`` checked against the type ``kind`` (lists become tuples, tables sections)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], path, source)
    if isinstance(kind, type) and issubclass(kind, Section):
        return kind.from_dict(value, path, source)
    if origin is tuple:
        if not isinstance(value, list):
            raise _wrong(value, "a list", path, source)
        return tuple(_convert(v, args[0], f"{path}[{i}]", source) for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise _wrong(value, "a table", path, source)
        return {k: _convert(v, args[1], f"{path}.{k}", source) for k, v in value.items()}
    if kind is Any:
        return value
    expected = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    allowed = (int, float) if kind is float else kind
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, allowed):
        raise _wrong(value, expected[kind], path, source)
    return value


def _wrong(value: Any, expected: str, path: str, source: str) -> ConfigError:
    return ConfigError(f"{source}: {_key(path)} must be {expected}, got {value!r}")


def _check_sati(overrides: Mapping[str, Any], where: str, source: str) -> None:
    """Refuse keys of a SATISettings table that are not SATISettings fields."""
    from satikit.checkpoint import SATISettings

    known = [f.name for f in fields(SATISettings) if f.name != "enabled"]
    if unknown := set(overrides) - set(known):
        raise ConfigError(
            f"{source}: {_table(where)} has unknown key(s) {sorted(unknown)}; "
            f"known: {', '.join(known)}"
        )
