"""Benchmark data: circle / sphere images (paper section II), ellipsoid volumes (IV-C);
beyond the paper, textured slides and a re-stained real image with a known true Y.

The generators are vectorised and seeded, reproducible byte for byte. The image I/O helpers
every command uses (:func:`read_image`, :func:`write_image`, :func:`list_images`) live in
:mod:`satikit.io.images` and are re-exported here.
"""

from __future__ import annotations

from satikit.data.circles import (
    ball_footprint,
    make_circle_image,
    place_circles,
    render_x,
    render_y,
)
from satikit.data.datasets import (
    LAYOUT,
    MANIFEST,
    TRUTH_KINDS,
    image_rng,
    make_circle_dataset,
    make_ellipsoid_dataset,
    make_restain_dataset,
    make_textured_dataset,
)
from satikit.data.ellipsoids import (
    EllipsoidParams,
    make_ellipsoid_volume,
    place_ellipsoids,
    render_ellipsoids,
)
from satikit.data.presets import CIRCLE_PRESETS, CirclePreset, get_preset
from satikit.data.restain import BUNDLED, STAIN_MAPS, load_source, mirror_mosaic, restain
from satikit.data.textured import TexturedParams, colour_by_intensity, make_textured_image
from satikit.io.images import list_images, read_image, write_image

__all__ = [
    "BUNDLED",
    "CIRCLE_PRESETS",
    "LAYOUT",
    "MANIFEST",
    "STAIN_MAPS",
    "TRUTH_KINDS",
    "CirclePreset",
    "EllipsoidParams",
    "TexturedParams",
    "ball_footprint",
    "colour_by_intensity",
    "get_preset",
    "image_rng",
    "list_images",
    "load_source",
    "make_circle_dataset",
    "make_circle_image",
    "make_ellipsoid_dataset",
    "make_ellipsoid_volume",
    "make_restain_dataset",
    "make_textured_dataset",
    "make_textured_image",
    "mirror_mosaic",
    "place_circles",
    "place_ellipsoids",
    "read_image",
    "render_ellipsoids",
    "render_x",
    "render_y",
    "restain",
    "write_image",
]
