"""Named parameter sets for the circle benchmark (paper section II) and its 3D variant.

``paper`` is the paper's 2D geometry; ``small`` keeps its ratios (circle diameter vs training
crop / inference tile, ~30 % coverage) at a quarter of the size for CPU work, tests and the
README demo. ``large-objects`` (beyond the paper) keeps ``small``'s images but is meant for
tiles of 64 px (the training crop) with circles as wide as their 25 % overlap, so that
overlapping tiles cut objects no tile sees whole: the regime where seams cost errors for a
CPU-size model. ``density-gradient`` (beyond the paper)
is ``small``'s geometry with the circle density varying smoothly down the image, so tiles
differ in their instance-norm statistics (the case for TIN / KIN tiling). The paper has no 3D
colour benchmark; the 3D presets are our choice and say why.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from satikit.data.circles import ball_footprint

__all__ = ["CIRCLE_PRESETS", "CirclePreset", "get_preset"]


@dataclass(frozen=True)
class CirclePreset:
    """Geometry, noise and counts of one circle-benchmark dataset.

    Attributes:
        size: Edge length of the square / cubic images in px.
        count: Circles (spheres) per image.
        diameter: Circle diameter in px.
        noise_sigma: Gaussian noise sigma on the 8-bit scale (X grey, Y per channel), >= 0.
        n_images: Training images per domain (X and Y are independent draws).
        n_test: Held-out X test images (with instance labels), drawn apart from training.
        dims: Number of spatial dimensions (2: circles, 3: spheres).
        density_gradient: Beyond the paper, in [0, 1): the object density falls linearly
            along the first spatial dim from ``1 + g`` to ``1 - g`` times the mean (see
            :func:`satikit.data.circles.place_circles`), so per-tile instance-norm statistics
            differ across the image. 0: uniform (the paper's); left out of :meth:`as_dict`
            then, so existing manifests stay as they were.
    """

    size: int
    count: int
    diameter: int
    noise_sigma: float
    n_images: int
    n_test: int
    dims: int = 2
    density_gradient: float = 0.0

    def __post_init__(self) -> None:
        for name in ("size", "count", "diameter", "n_images", "n_test", "dims"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value:
                raise ValueError(f"{name} must be an integer, got {value!r}")
        positive = {"size": 1, "diameter": 1, "dims": 1, "count": 0, "n_images": 0, "n_test": 0}
        for name, low in positive.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)!r}")
        if self.diameter > self.size:
            raise ValueError(f"diameter {self.diameter} exceeds the image size {self.size}")
        if not self.noise_sigma >= 0:
            raise ValueError(f"noise_sigma must be >= 0, got {self.noise_sigma!r}")
        if not 0 <= self.density_gradient < 1:
            raise ValueError(f"density_gradient must be in [0, 1), got {self.density_gradient!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape ``(size,) * dims``."""
        return (self.size,) * self.dims

    @property
    def coverage(self) -> float:
        """Expected share of object pixels, ignoring clipping at the border (0..1+)."""
        area = int(ball_footprint(self.diameter, self.dims).sum())
        return self.count * area / math.prod(self.shape)

    def replace(self, **changes: Any) -> CirclePreset:
        """A copy with ``changes`` applied; ``None`` values are ignored (CLI defaults)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (``density_gradient`` only when not 0)."""
        fields = dataclasses.asdict(self)
        if not self.density_gradient:
            del fields["density_gradient"]
        return fields


#: ``(name, dims) -> preset``.
CIRCLE_PRESETS: dict[tuple[str, int], CirclePreset] = {
    # Section II / IV-A: 2048^2, 1000 circles of 40 px (~30 % coverage), 512 images per domain,
    # 50 test images (50 000 objects); noise sigma 58 on the 8-bit scale (paper II adds Gaussian
    # noise; its sigma is not stated there).
    ("paper", 2): CirclePreset(2048, 1000, 40, 58.0, 512, 50, 2),
    # The paper divided by 4: 512^2, 10 px circles, still 1000 per image (~30 %), so a 64 px
    # training crop / 128 px tile sees what a 256 / 512 one sees in the paper.
    ("small", 2): CirclePreset(512, 1000, 10, 58.0, 48, 8, 2),
    # Beyond the paper: small's 512^2 images for tiles of 64 px (= the training crop, as in
    # paper IV-C) with circles as wide as their 25 % overlap (16 px; paper IV-A: the overlap
    # only has to cover the spatial extent of the information needed, so here it does not).
    # 378 circles keep ~30 % cover; 14 test images hold > 5000 circles for a stable median.
    # (32 px circles for 128 px tiles were tried first: the small CycleGAN did not learn them
    # in 2400 steps of 64 px crops; see docs/benchmarks.md.)
    ("large-objects", 2): CirclePreset(512, 378, 16, 58.0, 48, 14, 2),
    # Beyond the paper, for normalisation-aware tiling (TIN / KIN): small's geometry with the
    # circle density falling from 1.8x to 0.2x the mean down the image, so tiles differ in
    # their instance-norm statistics. 600 circles (~18 % mean cover) keep the dense end at
    # ~32 %, well below jamming.
    ("density-gradient", 2): CirclePreset(512, 600, 10, 58.0, 48, 8, 2, density_gradient=0.8),
    # 3D (our choice, the paper has none): the 256^3 volumes and 64^3 crops of section IV-C,
    # spheres of 10 px so diameter / crop = 40 / 256 as in 2D, ~30 % of the volume;
    # 5 test volumes hold 50 000 spheres like the paper's 50 test images.
    ("paper", 3): CirclePreset(256, 10_000, 10, 58.0, 64, 5, 3),
    # 64^3 volumes (a quarter per axis), 8 px spheres (smallest the metric still resolves
    # under sigma-58 noise), ~30 % of the volume.
    ("small", 3): CirclePreset(64, 300, 8, 58.0, 16, 4, 3),
}


def get_preset(name: str | CirclePreset, dims: int = 2) -> CirclePreset:
    """Look up a preset by name and number of spatial dimensions.

    Args:
        name: ``"paper"``, ``"small"`` or (2D) ``"large-objects"`` / ``"density-gradient"`` (or a
            :class:`CirclePreset`, returned as is).
        dims: 2 (circles) or 3 (spheres).

    Returns:
        The preset.

    Raises:
        ValueError: If no preset has that name and dimension; the message lists those that do.
    """
    if isinstance(name, CirclePreset):
        return name
    try:
        return CIRCLE_PRESETS[(name, int(dims))]
    except KeyError:
        known = ", ".join(f"{n!r} ({d}D)" for n, d in CIRCLE_PRESETS)
        raise ValueError(f"no circle preset {name!r} for dims={dims!r}; known: {known}") from None
