"""The settings of one translation, as one object from the command line to the engine.

:class:`InferenceSettings` holds every setting that decides a translation's output (strategy,
tile, overlap, seam, margin, batch, order, window, statistics, style, input range). Each field
carries its help text and kind in its metadata; ``satikit translate``'s options are generated
from them (:func:`satikit.commands.options.inference_options`), so the list is written once.
The names each choice setting takes are those of :mod:`satikit.choices` (re-exported here).

This module imports neither torch nor numpy, so the command line starts fast.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from satikit.choices import NORMS, ORDERS, SEAMS, STRATEGIES, WINDOWS, check_choice

__all__ = [
    "NORMS",
    "ORDERS",
    "SEAMS",
    "STRATEGIES",
    "WINDOWS",
    "InferenceSettings",
    "Sizes",
    "check_choice",
]

Sizes = int | tuple[int, ...]


def sizes(value: Any) -> Any:
    """An int stays an int; a sequence of sizes becomes a tuple of ints; None stays None."""
    if value is None or isinstance(value, int):
        return value
    return tuple(int(v) for v in value)


def as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def _setting(default: Any, kind: str, help: str, **extra: Any) -> Any:
    """A dataclass field with its command-line kind (``choice``, ``sizes``, ``count``,
    ``fraction``, ``int``, ``text``, ``path``, ``range``) and help text as metadata."""
    return field(default=default, metadata={"kind": kind, "help": help, **extra})


@dataclass(frozen=True)
class InferenceSettings:
    """The settings that decide a translation's output. Validated on construction: a name
    outside its choice list or a batch size below 1 raises ``ValueError``.

    ``None`` for ``strategy``, ``tile``, ``overlap`` and ``margin`` means "the run's";
    :func:`satikit.checkpoint.config.resolve_inference` fills them (the engine needs them
    filled). Sizes are an int (every dim) or a tuple per dim. Each field's meaning is its
    ``help`` metadata (``satikit translate --help`` shows them).
    """

    strategy: str | None = _setting(
        None,
        "choice",
        "Tiling strategy [default: the run's: sati for SATI runs, else weighted].",
        choices=STRATEGIES,
    )
    tile: Sizes | None = _setting(None, "sizes", "Tile size [default: the run's].")
    overlap: Sizes | None = _setting(
        None,
        "sizes",
        "Tile overlap [default: 0 for simple (tiles side by side); the run's for weighted "
        "and sati, 25% of the tile].",
    )
    seam: str = _setting(
        "middle",
        "choice",
        "Cut tiles in the middle of the overlap (paper III-E) or at its start "
        "(the 'w/o stitching strategy' ablation).",
        choices=SEAMS,
    )
    margin: Sizes | None = _setting(
        None,
        "sizes",
        "SATI only (beyond the paper): tiles overlap by --overlap plus this many px, so the "
        "strip each tile takes from its predecessors ends inside them, not at their border "
        "[default: the run's, else 0].",
    )
    batch_size: int = _setting(1, "count", "Tiles per generator call.")
    order: str = _setting(
        "auto",
        "choice",
        "SATI tile order (same output): auto = wavefront with --batch-size > 1 on a GPU or "
        "for a volume, else raster.",
        choices=ORDERS,
    )
    window: str = _setting(
        "gaussian", "choice", "Blending window of the weighted strategy.", choices=WINDOWS
    )
    style_seed: int | None = _setting(
        None, "int", "Image-level seed for adapters with styles (every tile the same style)."
    )
    style_ref: str | None = _setting(
        None,
        "path",
        "Reference Y image whose style every tile uses (adapters with styles, e.g. MUNIT); "
        "overrides --style-seed.",
    )
    norm: str = _setting(
        "tile",
        "choice",
        "Where the generator's instance norms take their statistics from: each tile's own "
        "(tile), one pass over a downscaled whole image (thumbnail: TIN, Chen et al. AAAI "
        "2022), a kernel average over neighbouring tiles' (kernel: KIN, Ho et al. ECCV 2022; a "
        "second pass over all tiles), or per pixel, interpolated between the tile centres "
        "around it (dense: Dense Normalization, Ho et al. ECCV 2024; the same second pass). "
        "Tiled strategies only.",
        choices=NORMS,
    )
    norm_kernel: Any = _setting(
        3,
        "text",
        "--norm kernel: odd kernel size in tiles (per dim if several) and its weights.",
        metavar="SIZE[,SIZE...][:constant|gaussian[:SIGMA]]",
    )
    thumbnail_scale: float = _setting(
        0.25,
        "fraction",
        "--norm thumbnail: thumbnail size / image size per dim (1: full resolution).",
    )
    input_range: Any = _setting(
        None,
        "range",
        "Map input values LO..HI onto the range the run was trained on (clipping beyond), "
        "e.g. 0,4095 for 12-bit data; auto: each image's own min and max (from a sample). "
        "Needed for integer images of another dtype than the run's and float images outside "
        "[0, 1] [default: integers of the run's dtype at their full range, floats on [0, 1]].",
        metavar="LO,HI|auto",
    )

    #: What a run's ``config.json`` records (the rest always start from the defaults).
    RUN_FIELDS = ("strategy", "tile", "overlap", "margin")
    #: How the run's own strategy is best run (e.g. a shipped model's statistics): recorded
    #: only where they differ from the defaults, and used only with the run's strategy.
    RUN_METHOD_FIELDS = ("window", "norm", "norm_kernel", "thumbnail_scale")

    def __post_init__(self) -> None:
        for key in ("tile", "overlap", "margin"):
            object.__setattr__(self, key, sizes(getattr(self, key)))
        if self.strategy is not None:
            check_choice("strategy", self.strategy, STRATEGIES)
        for key, choices in (("seam", SEAMS), ("order", ORDERS), ("window", WINDOWS)):
            check_choice(key, getattr(self, key), choices)
        check_choice("norm", self.norm, NORMS)
        if isinstance(self.batch_size, bool) or int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        try:
            scale_ok = 0 < float(self.thumbnail_scale) <= 1
        except (TypeError, ValueError):
            scale_ok = False
        if not scale_ok:
            raise ValueError(f"thumbnail_scale must be in (0, 1], got {self.thumbnail_scale!r}")
        if self.style_ref is not None:
            object.__setattr__(self, "style_ref", str(self.style_ref))
        from satikit.io.input_range import parse_input_range

        object.__setattr__(self, "input_range", parse_input_range(self.input_range))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting's name, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def for_run(cls, crop: Sequence[int], sati: bool) -> InferenceSettings:
        """The inference defaults a newly trained run records.

        2D: tile = 2 x crop, overlap = 25 % of the tile (paper IV-A: 512 / 128 for 256 crops);
        3D: tile = crop, overlap 25 % (paper IV-C: 64 / 16). Runs without SATI default to the
        weighted strategy, SATI runs to ``sati``.
        """
        tile = tuple(2 * c for c in crop) if len(crop) == 2 else tuple(crop)
        return cls(
            strategy="sati" if sati else "weighted",
            tile=tile,
            overlap=tuple(t // 4 for t in tile),
        )

    def to_dict(self, names: Sequence[str] | None = None) -> dict[str, Any]:
        """The settings (or the ``names`` ones) as JSON values (tuples become lists)."""
        return {k: as_json(getattr(self, k)) for k in names or self.names()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InferenceSettings:
        """Read :meth:`to_dict`'s output (other keys are ignored)."""
        return cls(**{k: data[k] for k in cls.names() if k in data})

    def run_dict(self) -> dict[str, Any]:
        """The run's section: strategy, tile, overlap, the margin if it has one, and the
        window and statistics where they are not the defaults."""
        names = [k for k in self.RUN_FIELDS if k != "margin" or self.margin is not None]
        default = type(self)()
        names += self.differences(default, self.RUN_METHOD_FIELDS)
        return self.to_dict(names)

    def differences(self, other: InferenceSettings, names: Sequence[str]) -> list[str]:
        """The ``names`` whose values differ from ``other``'s."""
        return [k for k in names if as_json(getattr(self, k)) != as_json(getattr(other, k))]
