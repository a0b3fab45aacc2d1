"""The typed run configuration (a run's ``config.json``) and the inference settings.

:class:`RunConfig` is the one object every command, benchmark, importer and the demo build and
read: the adapter and its options, the data layout, the domain encoding (paper III-C), the SATI
switches (:class:`SATISettings`, paper III and IV-B1), the training settings and the inference
defaults. :meth:`RunConfig.to_dict` / :meth:`RunConfig.from_dict` map it to and from the JSON a
run folder stores (format ``satikit-run/<version>``; older versions are read, newer refused).

:class:`InferenceSettings` (defined in :mod:`satikit.settings`, re-exported here) are the
settings of one translation; :func:`resolve_inference` is the one place their values
are decided: the library defaults, overridden by what the run recorded (strategy, tile,
overlap, margin), then by what the caller gave.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from satikit.settings import InferenceSettings, Sizes
from satikit.settings import sizes as as_sizes

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "AdapterSpec",
    "DataSpec",
    "InferenceSettings",
    "RunConfig",
    "SATISettings",
    "TrainingSettings",
    "default_crop",
    "resolve_inference",
]

FORMAT_VERSION = 1
FORMAT = f"satikit-run/{FORMAT_VERSION}"
_FORMAT_PREFIX = "satikit-run/"
STRIP_SOURCES = ("crop", "neighbour")


@dataclass(frozen=True)
class SATISettings:
    """SATI switches (each one is an ablation of paper IV-B1).

    Attributes:
        enabled: add the SATI terms (False: plain host GAN, the "standard" baseline).
        overlap: width of the merged strips in training crops, px, below half the crop;
            None: 25 % of the crop (paper IV: 64 px for 256 px crops, 16 px for 64^3 crops).
        overlap_sampling: all ``2^N - 1`` border cases, uniformly (III-B); off: always all
            leading borders.
        domain_encoding: X in [-1, 0], Y in [0, 1] (III-C); off: both in [-1, 1], as the
            host GAN was published. None (default): on with SATI, off for the standard
            baseline (the paper's "Standard" models are plain CycleGAN, IV-B).
        loss_ramping: λ_stitch grows linearly from 0 (III-D); off: constant.
        pixel_weighting: weight the stitch loss by the pixel overlap map (III-F); off: W = M.
        lambda_stitch: final λ_stitch; None: 10 in 2D, 20 in 3D (paper IV-A, IV-C).
        ramp_end: fraction of the training steps at which the ramp reaches λ_stitch (paper
            III-D ramps "throughout the training": 1.0).
        lambda_d_sati: weight of ``L_D^SATI`` in the discriminator loss (Alg. 1 adds it
            unweighted: 1.0; 0.5 gives ``y_hat_z`` the weight of the host's own fake term).
        strip_source: where the merged strips come from. ``"crop"`` (paper Alg. 1): the
            crop's own translation ``ŷ_x``, which saw the strip's objects whole. ``"neighbour"``
            (beyond the paper): the translation of the crop's neighbour along each merged
            border, shifted by ``crop - overlap`` so the strip is its trailing edge, as the
            predecessor tile is at inference. It samples crops ``2 * crop - overlap`` wide and
            costs one no-grad generator pass per spatial dim and step. On the ``cpu-small``
            benchmark it did not lower the error (docs/benchmarks.md).
        lambda_consistency: final weight of the continuation term ``L_cons`` (beyond the
            paper): ``y_hat_z`` should reproduce ``y_hat_x`` (detached) outside the merged
            strips, which it can only do by reading the colours in the strip, since ``z`` hides
            the strip's X pixels. Ramped like ``λ_stitch``; 0 (default): the paper's loss.
        start: fraction of the training steps before the SATI terms (and the ramps) begin,
            in [0, 1); 0: from the first step (paper Alg. 1).
        statistics_context: side of the region, in crops, whose normalisation statistics
            ``ŷ_z = G_XY(z)`` uses (beyond the paper): 1 (default, paper Alg. 1): each crop's
            own; ``k > 1``: X is sampled ``k * crop`` wide, the crop is its centre window, and
            every normalisation layer of ``G_XY(z)`` takes its mean and variance from a
            no-grad pass of ``G_XY`` over the whole region, as tiling with whole-image (TIN)
            or kernel-averaged (KIN) statistics does at inference. Costs that pass, ``k^N``
            crops large, per step. Not combinable with ``strip_source="neighbour"``. On the
            ``large-objects`` benchmark (``k`` 3) it made every CycleGAN fine-tune much worse
            (docs/benchmarks.md).
    """

    enabled: bool = True
    overlap: int | None = None
    overlap_sampling: bool = True
    domain_encoding: bool | None = None  # None -> enabled (__post_init__)
    loss_ramping: bool = True
    pixel_weighting: bool = True
    lambda_stitch: float | None = None
    ramp_end: float = 1.0
    lambda_d_sati: float = 1.0
    strip_source: str = "crop"
    lambda_consistency: float = 0.0
    start: float = 0.0
    statistics_context: int = 1

    def __post_init__(self) -> None:
        if self.domain_encoding is None:
            object.__setattr__(self, "domain_encoding", bool(self.enabled))
        if not 0.0 <= self.start < 1.0:
            raise ValueError(f"start must be a fraction of the steps in [0, 1), got {self.start!r}")
        if not self.lambda_consistency >= 0:
            raise ValueError(f"lambda_consistency must be >= 0, got {self.lambda_consistency!r}")
        if not 0.0 < self.ramp_end <= 1.0:
            raise ValueError(f"ramp_end must be in (0, 1], got {self.ramp_end!r}")
        if self.strip_source not in STRIP_SOURCES:
            raise ValueError(
                f"strip_source must be one of {', '.join(STRIP_SOURCES)}, got {self.strip_source!r}"
            )
        context = self.statistics_context
        if isinstance(context, bool) or not isinstance(context, int) or context < 1:
            raise ValueError(f"statistics_context must be an integer >= 1 (crops), got {context!r}")
        if context > 1 and self.strip_source == "neighbour":
            raise ValueError(
                "statistics_context > 1 and strip_source='neighbour' both widen the X crops "
                "and cannot be combined; choose one"
            )

    def sample_crop(self, crop: Sequence[int]) -> tuple[int, ...]:
        """Size of the X crops to sample for training crops ``crop``: ``crop`` itself; with
        ``strip_source="neighbour"`` ``2 * crop - overlap`` (the crop is the trailing
        window, its neighbours are shifted by ``crop - overlap``); with ``statistics_context``
        ``k > 1`` ``k * crop`` (the crop is the centre window)."""
        crop = tuple(int(c) for c in crop)
        if not self.enabled:
            return crop
        if self.statistics_context > 1:
            return tuple(self.statistics_context * c for c in crop)
        if self.strip_source != "neighbour":
            return crop
        overlap = int(self.resolve(crop).overlap or 0)
        return tuple(2 * c - overlap for c in crop)

    def to_dict(self) -> dict[str, Any]:
        """The JSON section, in its stored key order (``statistics_context`` only when set:
        runs without it keep their stored form)."""
        section = asdict(self)
        if self.statistics_context == 1:
            del section["statistics_context"]
        return section

    def resolve(self, crop: Sequence[int]) -> SATISettings:
        """Fill the ``None`` defaults for a crop size."""
        overlap = self.overlap if self.overlap is not None else max(1, min(crop) // 4)
        lam = self.lambda_stitch
        if lam is None:
            lam = 10.0 if len(crop) == 2 else 20.0  # paper IV-A (2D) / IV-C (3D)
        if not 0 < 2 * overlap < min(crop):
            raise ValueError(
                f"SATI overlap must be in 1..{(min(crop) - 1) // 2} (below half the crop) for "
                f"crop {tuple(crop)}, got {overlap}"
            )
        return replace(self, overlap=int(overlap), lambda_stitch=float(lam))


def default_crop(dims: int) -> int:
    """Training crop size: 256 px in 2D (paper IV-A), 64 px in 3D (paper IV-C)."""
    return 256 if dims == 2 else 64


@dataclass(frozen=True)
class AdapterSpec:
    """The adapter of a run (``config.json`` section ``adapter``).

    Attributes:
        name: registry name (``satikit adapters``).
        options: hyperparameters; a trained run records all of them, defaults included.
        plugin / plugin_version: the plugin that registered the adapter (set when training).
    """

    name: str = "cyclegan"
    options: Mapping[str, Any] = field(default_factory=dict)
    plugin: str = ""
    plugin_version: str = ""


@dataclass(frozen=True)
class DataSpec:
    """The images of a run (section ``data``).

    Attributes:
        dims: spatial dimensions.
        in_channels / out_channels: channels of X / Y images (None until the data is read).
        x / y: the training folders or files (None: not recorded, e.g. a shipped model).
        input_dtype: dtype of the X training images (None: not recorded, a run older than
            this field; :attr:`trained_dtype` infers it).
        input_range: the X values read as black and white, ``(low, high)``: 0..255 for
            uint8, 0..65535 for uint16, 0..1 for floats (None: from the dtype).
        output_dtype: dtype of translated images (that of the Y training images).
    """

    dims: int = 2
    in_channels: int | None = None
    out_channels: int | None = None
    x: tuple[str, ...] | None = None
    y: tuple[str, ...] | None = None
    input_dtype: str | None = None
    input_range: tuple[float, float] | None = None
    output_dtype: str = "uint8"

    def __post_init__(self) -> None:
        if self.input_range is not None:
            low, high = (float(v) for v in self.input_range)
            object.__setattr__(self, "input_range", (low, high))

    @property
    def trained_dtype(self) -> str:
        """The dtype of the X images the run was trained on; a run that predates
        :attr:`input_dtype` trained on X images of its output dtype (the shipped runs and
        the circle benchmarks: uint8)."""
        return self.input_dtype if self.input_dtype is not None else self.output_dtype

    @property
    def trained_range(self) -> tuple[float, float]:
        """The X values the run read as black and white (:attr:`input_range`, else those of
        :attr:`trained_dtype`, see :func:`satikit.encoding.dtype_range`)."""
        from satikit.encoding import dtype_range

        return self.input_range or dtype_range(self.trained_dtype)


#: Batches of training crops the BatchNorm statistics of a generator are recomputed over before
#: each checkpoint (:mod:`satikit.training.batch_norm`).
BN_RECALIBRATION = 100


@dataclass(frozen=True)
class TrainingSettings:
    """How a run trains (section ``training``).

    Attributes:
        steps: total optimizer steps (the learning-rate schedule spans them).
        crop: training crop size, int or per dim; None: :func:`default_crop`.
        batch_size: crops per domain and step (per process in distributed training).
        seed: seeds weights, crops, the merger and the host's randomness.
        amp: mixed precision (float16 autocast + grad scaling); only on CUDA.
        compile: ``torch.compile`` the adapter's modules.
        log_every: JSONL log interval in steps.
        sample_every: write a sample PNG every N steps (0: never).
        checkpoint_every: write a checkpoint every N steps (0: only at the end).
        ema: decay of an exponential moving average of ``generator_xy``'s weights, written
            beside the run as ``RUN/ema/`` (:mod:`satikit.training.ema`); 0: none.
        bn_recalibration: before each checkpoint, the generators' BatchNorm running statistics
            are recomputed over this many batches of source-domain training crops with the
            current weights (:mod:`satikit.training.batch_norm`); 0: keep the running averages.
            Generators without BatchNorm layers are not affected.
        step: steps done (the checkpoint's).
        world_size: processes that trained it.
    """

    steps: int = 1000
    crop: Sizes | None = None
    batch_size: int = 1
    seed: int = 0
    amp: bool = True
    compile: bool = False
    log_every: int = 1
    sample_every: int = 0
    checkpoint_every: int = 0
    ema: float = 0.0
    bn_recalibration: int = BN_RECALIBRATION
    step: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop", as_sizes(self.crop))
        if not 0.0 <= float(self.ema) < 1.0:
            raise ValueError(f"training.ema (an EMA decay) must be in [0, 1), got {self.ema}")
        if int(self.bn_recalibration) < 0:
            raise ValueError(
                f"training.bn_recalibration (batches) must be >= 0, got {self.bn_recalibration}"
            )

    def crop_size(self, dims: int) -> tuple[int, ...]:
        """The crop as one size per spatial dim.

        Raises:
            ValueError: not ``dims`` sizes, or one below 4 px.
        """
        crop = self.crop if self.crop is not None else default_crop(dims)
        sizes = (crop,) * dims if isinstance(crop, int) else tuple(crop)
        if len(sizes) != dims or any(int(s) < 4 for s in sizes):
            raise ValueError(f"crop must be >= 4 px in each of {dims} dims, got {crop!r}")
        return tuple(int(s) for s in sizes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON section, in its stored key order."""
        keys = ("step", "steps", "crop", "batch_size", "seed", "world_size", "amp", "compile")
        keys += ("log_every", "sample_every", "checkpoint_every")
        keys += ("ema",) if self.ema else ()  # runs without one keep their stored form
        keys += ("bn_recalibration",) if self.bn_recalibration != BN_RECALIBRATION else ()
        crop = self.crop if not isinstance(self.crop, tuple) else list(self.crop)
        return {key: crop if key == "crop" else getattr(self, key) for key in keys}


def resolve_inference(
    run: InferenceSettings, given: Mapping[str, Any] | None = None
) -> InferenceSettings:
    """The settings of one translation: the defaults, then what the ``run`` recorded
    (strategy, tile, overlap; a margin only for ``sati``, else 0; window and statistics only
    for the run's own strategy), then ``given`` (a ``None`` value counts as not given).
    ``simple`` tiling without a given overlap has none (tiles side by side, the paper's simple
    tiling): the run's overlap is that of its weighted or SATI tiling. ``norm_kernel`` takes
    its canonical spelling.

    Raises:
        TypeError: a name in ``given`` that is no setting.
        ValueError: a bad value (see :class:`InferenceSettings`), a bad ``norm_kernel``.
    """
    from satikit.stitching.norm import NormKernel
    from satikit.stitching.registry import get_strategy

    given = given or {}
    names = InferenceSettings.names()
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise TypeError(f"unknown inference setting(s) {unknown}; known: {names}")
    chosen = {k: v for k, v in given.items() if v is not None}
    settings = InferenceSettings(**{k: getattr(run, k) for k in ("strategy", "tile", "overlap")})
    settings = replace(settings, **chosen)
    strategy = get_strategy(settings.strategy)
    if not strategy.overlaps_by_default and "overlap" not in chosen:
        settings = replace(settings, overlap=0)
    if settings.margin is None:
        recorded = run.margin if run.margin is not None else 0
        settings = replace(settings, margin=recorded if strategy.continues else 0)
    if strategy is get_strategy(run.strategy):
        fields = InferenceSettings.RUN_METHOD_FIELDS
        settings = replace(settings, **{k: getattr(run, k) for k in fields if k not in chosen})
    return replace(settings, norm_kernel=str(NormKernel.parse(settings.norm_kernel)))


@dataclass(frozen=True)
class RunConfig:
    """Everything a run records (its ``config.json``): what to build, what it trained on, how
    it trained and how it translates by default.

    A config for a new run leaves the derived fields open (``training.crop``,
    ``sati.overlap`` / ``lambda_stitch``, channels, ``inference``: None); the trainer resolves
    them (:meth:`resolved`), so a stored config is complete.

    Attributes:
        adapter: the adapter and its options.
        data: dims, channels, training folders, output dtype.
        sati: the SATI switches.
        training: steps, crop, batch size, seed, ...
        inference: the inference defaults (:attr:`InferenceSettings.RUN_FIELDS`); None: derived
            from the crop and ``sati.enabled`` (:meth:`InferenceSettings.for_run`).
        domain_encoding: section ``encoding``: the generators' encoded ranges (paper III-C);
            None: ``sati.domain_encoding``.
        satikit_version: the version that wrote the run ("" for a new one).
        files: SHA-256 per checkpoint file (written by :func:`satikit.checkpoint.save_checkpoint`).
        extra: other top-level sections, kept as they are (e.g. a shipped model's provenance).
    """

    adapter: AdapterSpec = field(default_factory=AdapterSpec)
    data: DataSpec = field(default_factory=DataSpec)
    sati: SATISettings = field(default_factory=SATISettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    inference: InferenceSettings | None = None
    domain_encoding: bool | None = None
    satikit_version: str = ""
    files: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    #: Fields a stored config must have (``section.key``).
    REQUIRED = (
        ("adapter", "name"),
        ("adapter", "options"),
        ("data", "dims"),
        ("data", "in_channels"),
        ("data", "out_channels"),
        ("encoding", "domain_encoding"),
        ("inference", "strategy"),
        ("inference", "tile"),
        ("inference", "overlap"),
    )
    _SECTIONS = ("format", "satikit_version", "adapter", "data", "encoding", "sati", "training")
    _SECTIONS += ("inference", "checkpoint")

    # -- derived values -------------------------------------------------------------------
    @property
    def encoding(self) -> bool:
        """Whether images are domain-encoded (paper III-C)."""
        if self.domain_encoding is not None:
            return bool(self.domain_encoding)
        return bool(self.sati.domain_encoding)

    @property
    def crop(self) -> tuple[int, ...]:
        """The training crop, one size per spatial dim."""
        return self.training.crop_size(self.data.dims)

    @property
    def run_inference(self) -> InferenceSettings:
        """The run's inference defaults (recorded, or derived for a new run)."""
        if self.inference is not None:
            return self.inference
        return InferenceSettings.for_run(self.crop, self.sati.enabled)

    def inference_settings(self, given: Mapping[str, Any] | None = None) -> InferenceSettings:
        """The settings of one translation with this run (:func:`resolve_inference`)."""
        return resolve_inference(self.run_inference, given)

    def resolved(
        self,
        *,
        options: Mapping[str, Any],
        plugin: str,
        plugin_version: str,
        channels: tuple[int | None, int | None],
        output_dtype: str,
        world_size: int,
        version: str,
        input_dtype: str | None = None,
    ) -> RunConfig:
        """This config with every derived field filled in, as a trainer stores it.

        Args:
            options: the built adapter's options (defaults included).
            plugin / plugin_version: who registered the adapter.
            channels: X and Y channels of the data (None: no data yet).
            output_dtype: dtype of the Y images.
            input_dtype: dtype of the X images (None: the config's, if any; see
                :attr:`DataSpec.trained_dtype`); the run records it with its range.
            world_size: training processes.
            version: the satikit version.

        Raises:
            ValueError: a bad crop or SATI overlap for it.
        """
        from satikit.encoding import dtype_range

        input_dtype = input_dtype if input_dtype is not None else self.data.input_dtype
        crop = self.crop
        sati = self.sati.resolve(crop)
        return replace(
            self,
            adapter=replace(
                self.adapter, options=dict(options), plugin=plugin, plugin_version=plugin_version
            ),
            data=replace(
                self.data,
                in_channels=channels[0],
                out_channels=channels[1],
                x=self.data.x if self.data.x is not None else (),
                y=self.data.y if self.data.y is not None else (),
                input_dtype=input_dtype,
                input_range=None if input_dtype is None else dtype_range(input_dtype),
                output_dtype=output_dtype,
            ),
            sati=sati,
            training=replace(self.training, crop=crop, world_size=world_size),
            inference=(
                self.inference
                if self.inference is not None
                else InferenceSettings.for_run(crop, sati.enabled)
            ),
            domain_encoding=self.encoding,
            satikit_version=version,
        )

    def with_training(self, **changes: Any) -> RunConfig:
        """A copy with some :class:`TrainingSettings` changed (e.g. ``steps``, ``step``)."""
        return replace(self, training=replace(self.training, **changes))

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content (keys in their stored order; ``checkpoint`` only when
        :attr:`files` are known; :attr:`extra` last)."""
        data: dict[str, Any] = {
            "dims": self.data.dims,
            "in_channels": self.data.in_channels,
            "out_channels": self.data.out_channels,
        }
        for key in ("x", "y"):
            if getattr(self.data, key) is not None:
                data[key] = list(getattr(self.data, key))
        if self.data.input_dtype is not None:  # runs without one keep their stored form
            data["input_dtype"] = self.data.input_dtype
        if self.data.input_range is not None:
            data["input_range"] = list(self.data.input_range)
        data["output_dtype"] = self.data.output_dtype
        out: dict[str, Any] = {
            "format": FORMAT,
            "satikit_version": self.satikit_version,
            "adapter": {
                "name": self.adapter.name,
                "plugin": self.adapter.plugin,
                "plugin_version": self.adapter.plugin_version,
                "options": dict(self.adapter.options),
            },
            "data": data,
            "encoding": {"domain_encoding": self.encoding},
            "sati": self.sati.to_dict(),
            "training": self.training.to_dict(),
            "inference": self.run_inference.run_dict(),
        }
        if self.files:
            out["checkpoint"] = {"files": dict(self.files)}
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], *, source: str = "config") -> RunConfig:
        """Read a stored config (any known format version); fields a run predates take their
        defaults.

        Raises:
            ValueError: an unknown or newer format, a missing required field
                (:attr:`REQUIRED`), or a bad value; the message names ``source``.
        """
        _check_format(config, source)
        for section, key in cls.REQUIRED:
            if not isinstance(config.get(section), Mapping) or key not in config[section]:
                raise ValueError(f"{source}: missing field {section}.{key}")
        try:
            return cls._parse(config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None

    @classmethod
    def _parse(cls, config: Mapping[str, Any]) -> RunConfig:
        adapter, data = config.get("adapter", {}), dict(config.get("data", {}))
        for key in ("x", "y"):
            if key in data:
                data[key] = tuple(str(d) for d in data[key])
        known = {f.name for f in dataclasses.fields(TrainingSettings)}
        training = {k: v for k, v in config.get("training", {}).items() if k in known}
        inference = config.get("inference")
        return cls(
            adapter=AdapterSpec(
                name=adapter.get("name", AdapterSpec.name),
                options=dict(adapter.get("options", {})),
                plugin=adapter.get("plugin", ""),
                plugin_version=adapter.get("plugin_version", ""),
            ),
            data=DataSpec(**{k: v for k, v in data.items() if k in DataSpec.__annotations__}),
            sati=SATISettings(**config.get("sati", {})),
            training=TrainingSettings(**training),
            inference=None if inference is None else InferenceSettings.from_dict(inference),
            domain_encoding=config.get("encoding", {}).get("domain_encoding"),
            satikit_version=config.get("satikit_version", ""),
            files=dict(config.get("checkpoint", {}).get("files", {})),
            extra={k: v for k, v in config.items() if k not in cls._SECTIONS},
        )


def _check_format(config: Any, source: str) -> None:
    """Refuse anything but a ``satikit-run/<n>`` config with ``n <= FORMAT_VERSION``."""
    found = config.get("format") if isinstance(config, Mapping) else None
    version = found.removeprefix(_FORMAT_PREFIX) if isinstance(found, str) else ""
    if not (found != version and version.isdigit() and 1 <= int(version) <= FORMAT_VERSION):
        raise ValueError(f"{source}: unknown checkpoint format {found!r}")
