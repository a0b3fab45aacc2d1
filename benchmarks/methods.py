"""Inference methods of the benchmarks, by name: how each one tiles and what it costs.

Names the quality report has always used keep their meaning (settings from the config's
``[inference]`` table):

- ``none``: the whole image in one pass (the quality reference);
- ``simple``: independent tiles with ``simple_overlap`` (paper Fig. 2d: 0);
- ``weighted``: the paper's baseline, pyramid window, shift ``weighted_shift``;
- ``weighted-gaussian``: gaussian window at ``gaussian_overlap``;
- ``sati``: SATI at ``overlap`` (and the config's ``margin``, beyond the paper);
- ``sati-wo-stitching-strategy``: SATI with the cut at the start of the overlap (III-E off).

The error-versus-cost frontier adds names with the overlap as a percentage of the tile:
``simple@P``, ``gaussian@P``, ``pyramid@P``, ``sati@P`` and ``sati@P+mM`` (a SATI margin of
``M`` px), e.g. ``gaussian@12.5`` or ``sati@25+m8``. Any tiled method takes a normalisation suffix
(:mod:`satikit.stitching.norm`): ``/thumbnail`` (TIN, statistics from a thumbnail at 1/4
scale), ``/kernel`` (KIN, a 3-tile constant kernel over the tiles' statistics), optionally
with a value, ``/thumbnail:0.5`` or ``/kernel:5:gaussian``, or ``/dense`` (dense
normalisation, no value); the extra pass counts in the cost.

For adapters with random style codes (MUNIT), ``+tile-styles`` after a tiled method's name (before
or after a normalisation suffix) draws a style per tile instead of one per image, e.g.
``gaussian@25+tile-styles``: what tiling does to a multimodal model that is not told to keep its
tiles in one style.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from benchmarks.bench_config import InferenceConfig

__all__ = ["Method", "parse_method"]

_NORM_SUFFIX = re.compile(r"(?P<base>.+?)/(?P<norm>thumbnail|kernel|dense)(?::(?P<value>.+))?")
TILE_STYLES = "+tile-styles"
_PARAMETRISED = re.compile(
    r"(?P<kind>simple|gaussian|pyramid|sati)@(?P<percent>\d+(?:\.\d+)?)(?:\+m(?P<margin>\d+))?"
)


@dataclass(frozen=True)
class Method:
    """One way to translate an image: a strategy on a tile grid.

    Attributes:
        name: the name it was parsed from.
        strategy: ``none``, ``simple``, ``weighted`` or ``sati`` (:func:`satikit.stitching.stitch`).
        tile: tile edge in px (unused for ``none``).
        overlap: overlap in px.
        window: blending window of ``weighted`` (``pyramid`` or ``gaussian``), else None.
        margin: SATI margin in px (beyond the paper; 0 on the paper's grid).
        seam: where SATI cuts inside the overlap: ``middle`` (paper III-E) or ``start``.
        norm: instance-norm statistics: ``tile`` (per tile), ``thumbnail`` (TIN), ``kernel``
            (KIN) or ``dense``.
        norm_value: the ``thumbnail_scale`` or ``norm_kernel`` given after the suffix, or None
            (the engine's defaults).
        styles: ``image`` (one style code per image, the engine's way) or ``tile`` (a random
            style per tile, ``+tile-styles``; adapters with style codes only).
    """

    name: str
    strategy: str
    tile: int
    overlap: int = 0
    window: str | None = None
    margin: int = 0
    seam: str = "middle"
    norm: str = "tile"
    norm_value: str | None = None
    # not in the repr: cached scores are keyed by it (benchmarks.scoring), and the default must
    # keep the keys of every score made before this field existed
    styles: str = field(default="image", repr=False)

    def settings(self, batch_size: int = 1):
        """The :class:`satikit.settings.InferenceSettings` of this method (tiles per
        generator call: ``batch_size``), for :func:`satikit.translation.translate.translate_array`."""
        from satikit.settings import InferenceSettings

        options: dict[str, Any] = {}
        if self.window is not None:
            options["window"] = self.window
        if self.norm_value is not None:
            if self.norm == "thumbnail":
                options["thumbnail_scale"] = float(self.norm_value)
            else:
                options["norm_kernel"] = self.norm_value
        return InferenceSettings(
            strategy=self.strategy,
            tile=self.tile,
            overlap=self.overlap,
            seam=self.seam,
            margin=self.margin,
            batch_size=batch_size,
            norm=self.norm,
            **options,
        )

    def grid(self, shape: tuple[int, ...]):
        """The :class:`satikit.stitching.grid.TileGrid` over an image of spatial ``shape`` (None for
        ``none``): the grid :func:`satikit.translation.translate.tile_grid` makes of :meth:`settings`."""
        from satikit.translation.translate import tile_grid

        return tile_grid(self.settings(), shape)

    def tiles(self, shape: tuple[int, ...]) -> int:
        """Forward passes per image (1 for ``none``)."""
        grid = self.grid(shape)
        return 1 if grid is None else grid.n_tiles

    def cost(self, shape: tuple[int, ...]) -> float:
        """Forward-pass pixels per image pixel: tiles x tile size / image size (1 for ``none``),
        plus the statistics pass of ``thumbnail`` (the thumbnail's pixels) or ``kernel`` /
        ``dense`` (a second pass over every tile)."""
        grid = self.grid(shape)
        if grid is None:
            return 1.0
        tiled = grid.n_tiles * math.prod(grid.tile) / math.prod(shape)
        if self.norm in ("kernel", "dense"):
            return 2 * tiled
        if self.norm == "thumbnail":
            scale = float(self.norm_value) if self.norm_value is not None else 0.25
            return tiled + scale ** len(shape)
        return tiled

    def seam_grid(self, inference: InferenceConfig) -> tuple[int, int]:
        """``(overlap, margin)`` of the grid whose cut lines split objects into "seam" and
        "interior": the method's own for the parametrised names and ``simple``; the SATI grid of
        the config for the others (the quality report's common reference)."""
        if "@" in self.name or self.strategy == "simple":
            return self.overlap, self.margin
        return inference.overlap, inference.margin


def parse_method(name: str, inference: InferenceConfig) -> Method:
    """The :class:`Method` called ``name`` under a config's ``[inference]`` settings.

    Raises:
        ValueError: an unknown name, naming the known forms.
    """
    if name.endswith(TILE_STYLES):
        base = parse_method(name[: -len(TILE_STYLES)], inference)
        if base.strategy == "none":
            raise ValueError(f"{name!r}: a style per tile needs a tiled method")
        return replace(base, name=name, styles="tile")
    if suffix := _NORM_SUFFIX.fullmatch(name):
        base = parse_method(suffix["base"], inference)
        if base.strategy == "none":
            raise ValueError(f"{name!r}: a normalisation mode needs a tiled method")
        if suffix["norm"] == "dense" and suffix["value"] is not None:
            raise ValueError(f"{name!r}: /dense takes no value")
        return replace(base, name=name, norm=suffix["norm"], norm_value=suffix["value"])
    tile, overlap = inference.tile, inference.overlap
    simple = overlap if inference.simple_overlap is None else inference.simple_overlap
    shift = tile // 4 if inference.weighted_shift is None else inference.weighted_shift
    gaussian = tile // 2 if inference.gaussian_overlap is None else inference.gaussian_overlap
    fixed = {
        "none": Method(name, "none", tile),
        "simple": Method(name, "simple", tile, simple),
        "weighted": Method(name, "weighted", tile, tile - shift, "pyramid"),
        "weighted-gaussian": Method(name, "weighted", tile, gaussian, "gaussian"),
        "sati-wo-stitching-strategy": Method(name, "sati", tile, overlap, seam="start"),
    }
    if name in fixed:
        return fixed[name]
    if name.startswith("sati") and "@" not in name:  # "sati" and model-named SATI variants
        return Method(name, "sati", tile, overlap, margin=inference.margin)
    match = _PARAMETRISED.fullmatch(name)
    if match is None:
        raise ValueError(
            f"unknown method {name!r}; known: {', '.join(fixed)}, sati, or simple@P / "
            "gaussian@P / pyramid@P / sati@P[+mM] with P the overlap in % of the tile"
        )
    kind, margin = match["kind"], int(match["margin"] or 0)
    px = round(tile * float(match["percent"]) / 100)
    if margin and kind != "sati":
        raise ValueError(f"a margin is a SATI setting, got {name!r}")
    if kind in ("gaussian", "pyramid"):
        return Method(name, "weighted", tile, px, kind)
    return Method(name, kind, tile, px, margin=margin)
