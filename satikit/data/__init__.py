"""Benchmark data: circle / sphere images (paper section II), ellipsoid volumes (IV-C), I/O.

The array I/O helpers (:func:`read_image`, :func:`write_image`, :func:`list_images`) are the ones
every command uses; the generators are vectorised and seeded, reproducible byte for byte.
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
    image_rng,
    make_circle_dataset,
    make_ellipsoid_dataset,
)
from satikit.data.ellipsoids import (
    EllipsoidParams,
    make_ellipsoid_volume,
    place_ellipsoids,
    render_ellipsoids,
)
from satikit.data.io import list_images, read_image, write_image
from satikit.data.presets import CIRCLE_PRESETS, CirclePreset, get_preset

__all__ = [
    "CIRCLE_PRESETS",
    "LAYOUT",
    "MANIFEST",
    "CirclePreset",
    "EllipsoidParams",
    "ball_footprint",
    "get_preset",
    "image_rng",
    "list_images",
    "make_circle_dataset",
    "make_circle_image",
    "make_ellipsoid_dataset",
    "make_ellipsoid_volume",
    "place_circles",
    "place_ellipsoids",
    "read_image",
    "render_ellipsoids",
    "render_x",
    "render_y",
    "write_image",
]
