"""Textured synthetic slides whose statistics vary from tile to tile (beyond the paper).

On the circle benchmark the seams come from objects cut by tile borders; per-tile instance-norm
statistics hardly differ there (every tile holds about the same share of circles). The complaint
users of tiled inference raise most is another one: brightness and colour jumps between tiles
of textured slides whose content varies across the slide. These images are made for that case.

Domain X, an 8-bit RGB image of ``size`` px (made for inference tiles of ``tile`` px):

* a light background (0.72 of full scale) with dark discs (0.30-0.55, radius ``radius`` px) in
  clusters: cluster centres are uniform random (``clusters_per_tile`` per tile area on average),
  each holds a Poisson number of discs (mean ``objects_per_cluster``) at Gaussian offsets
  (``cluster_spread`` tiles), so some tiles are crowded and others nearly empty; slightly
  blurred (sigma 0.8 px);
* fine texture: Gaussian noise smoothed with sigma 1 px, ``texture`` of full scale;
* a smooth brightness field ``1 + brightness * w(r)`` and, per channel, a colour field
  ``1 + tint * w_c(r)``: each ``w`` the mean of two plane waves with random direction and phase
  and a wavelength drawn from ``wavelength`` (in tiles, at least 4: the statistics drift
  across the slide, not inside one tile);
* per-channel pixel noise of sigma ``noise_sigma`` (8-bit scale), rounded and clipped.

Domain Y is a deterministic colour map of X's local intensity: the pixel's mean over its three
channels, rounded, looked up in :data:`INTENSITY_COLOURS` (dark purple through pink to near
white; every channel rises with the intensity, and in each stretch between anchors one of them
by more than a level per level, so no two intensities share a colour: the map is invertible).
X's colour field does not reach Y, its brightness field does: a model's output colour must
follow the input intensity. For every X image the true Y is exactly
:func:`colour_by_intensity` of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "INTENSITY_COLOURS",
    "TexturedParams",
    "colour_by_intensity",
    "intensity_lut",
    "make_textured_image",
]

#: Anchors ``(intensity, (r, g, b))`` of the Y colour map; linear in between, rounded.
INTENSITY_COLOURS: tuple[tuple[int, tuple[int, int, int]], ...] = (
    (0, (20, 8, 40)),
    (96, (120, 48, 150)),
    (176, (222, 120, 178)),
    (255, (255, 242, 236)),
)

_BACKGROUND = 0.72
_OBJECT_LEVELS = (0.30, 0.55)
_BLUR_SIGMA = 0.8


@dataclass(frozen=True)
class TexturedParams:
    """Size, fields, clusters, noise and counts of a ``textured`` dataset.

    Attributes:
        size: Edge length of the square images in px.
        tile: Inference tile (px) the fields and clusters are scaled to.
        wavelength: ``(low, high)`` wavelength range of the brightness / colour fields, in tiles.
        brightness: Amplitude of the brightness field (0.25: 0.75x to 1.25x).
        tint: Amplitude of each channel's colour field.
        clusters_per_tile: Mean number of disc clusters per tile area.
        objects_per_cluster: Mean number of discs per cluster (Poisson).
        cluster_spread: Standard deviation of a disc's offset from its cluster centre, in tiles.
        radius: ``(low, high)`` disc radius range in px (uniform).
        texture: Amplitude of the fine texture (share of full scale).
        noise_sigma: Per-channel pixel noise sigma on the 8-bit scale.
        n_images: Training images per domain (X and Y are independent draws).
        n_test: Held-out X test images, each with its true Y.
    """

    size: int = 512
    tile: int = 128
    wavelength: tuple[float, float] = (4.0, 8.0)
    brightness: float = 0.25
    tint: float = 0.08
    clusters_per_tile: float = 0.6
    objects_per_cluster: float = 40.0
    cluster_spread: float = 0.25
    radius: tuple[float, float] = (3.0, 7.0)
    texture: float = 0.05
    noise_sigma: float = 8.0
    n_images: int = 48
    n_test: int = 8

    def __post_init__(self) -> None:
        for name in ("size", "tile", "n_images", "n_test"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value:
                raise ValueError(f"{name} must be an integer, got {value!r}")
        for name, low in {"size": 1, "tile": 1, "n_images": 0, "n_test": 0}.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)!r}")
        low, high = self.wavelength
        if not 4 <= low <= high:
            raise ValueError(
                f"wavelength must be (low, high) tiles with 4 <= low <= high, "
                f"got {self.wavelength!r}"
            )
        r_low, r_high = self.radius
        if not 0 < r_low <= r_high:
            raise ValueError(
                f"radius must be (low, high) px with 0 < low <= high, got {self.radius!r}"
            )
        for name in ("brightness", "tint"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in (
            "clusters_per_tile",
            "objects_per_cluster",
            "cluster_spread",
            "texture",
            "noise_sigma",
        ):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    def replace(self, **changes: Any) -> TexturedParams:
        """A copy with ``changes`` applied; ``None`` values are ignored (CLI defaults)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (ranges as lists)."""
        fields = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}


def intensity_lut() -> np.ndarray:
    """The Y colour of every intensity: ``(256, 3)`` uint8, :data:`INTENSITY_COLOURS`
    interpolated linearly and rounded."""
    at = [v for v, _ in INTENSITY_COLOURS]
    colours = np.array([c for _, c in INTENSITY_COLOURS], dtype=np.float64)
    levels = np.arange(256)
    lut = np.stack([np.interp(levels, at, colours[:, c]) for c in range(3)], axis=-1)
    return np.rint(lut).astype(np.uint8)


def colour_by_intensity(image: np.ndarray) -> np.ndarray:
    """The true Y of an X image: each pixel's intensity through :func:`intensity_lut`.

    Args:
        image: ``(*spatial, 3)`` uint8 RGB.

    Returns:
        ``(*spatial, 3)`` uint8; the intensity is the channel mean rounded half up,
        ``(r + g + b + 1) // 3``, in exact integers.

    Raises:
        ValueError: If ``image`` is not uint8 with three channels last.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim < 2 or image.shape[-1] != 3:
        raise ValueError(f"needs an 8-bit RGB image (*spatial, 3), got {image.dtype} {image.shape}")
    intensity = (image.sum(axis=-1, dtype=np.uint16) + 1) // 3
    return intensity_lut()[intensity]


def _wave(shape: tuple[int, int], wavelength: tuple[float, float], rng: np.random.Generator):
    """Mean of two plane waves ``sin(2 pi (r . u) / lambda + phase)``, ``(H, W)`` in [-1, 1]."""
    rows = np.arange(shape[0], dtype=np.float64)[:, None]
    cols = np.arange(shape[1], dtype=np.float64)[None, :]
    field = np.zeros(shape)
    for _ in range(2):
        length = rng.uniform(*wavelength)
        angle, phase = rng.uniform(0, 2 * np.pi, size=2)
        field += np.sin(2 * np.pi * (rows * np.sin(angle) + cols * np.cos(angle)) / length + phase)
    return field / 2


def _discs(params: TexturedParams, rng: np.random.Generator) -> np.ndarray:
    """Background with clustered dark discs (a disc darkens, overlaps keep the darkest)."""
    from scipy import ndimage  # a slow import, only paid when generating

    size, tile = params.size, params.tile
    n_clusters = rng.poisson(params.clusters_per_tile * (size / tile) ** 2)
    centres = rng.uniform(0, size, size=(n_clusters, 2))
    per_cluster = rng.poisson(params.objects_per_cluster, size=n_clusters)
    offsets = rng.normal(0, params.cluster_spread * tile, size=(int(per_cluster.sum()), 2))
    points = np.repeat(centres, per_cluster, axis=0) + offsets
    radii = rng.uniform(*params.radius, size=len(points))
    levels = rng.uniform(*_OBJECT_LEVELS, size=len(points))
    scene = np.full((size, size), _BACKGROUND)
    for (row, col), radius, level in zip(points, radii, levels):
        top, left = max(0, int(row - radius)), max(0, int(col - radius))
        bottom, right = min(size, int(row + radius) + 2), min(size, int(col + radius) + 2)
        if top >= bottom or left >= right:
            continue  # the disc lies outside the image
        rr = np.arange(top, bottom)[:, None] + 0.5 - row
        cc = np.arange(left, right)[None, :] + 0.5 - col
        box = scene[top:bottom, left:right]
        np.minimum(box, np.where(rr**2 + cc**2 <= radius**2, level, 1.0), out=box)
    return ndimage.gaussian_filter(scene, _BLUR_SIGMA)


def make_textured_image(params: TexturedParams, rng: np.random.Generator) -> np.ndarray:
    """One X image of the ``textured`` data (see the module docstring).

    Args:
        params: The dataset parameters.
        rng: Random generator; clusters, discs, texture, fields and noise are drawn from it in
            that order.

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    from scipy import ndimage

    shape = (params.size, params.size)
    wavelength = tuple(w * params.tile for w in params.wavelength)
    scene = _discs(params, rng)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0)
    scene += params.texture * texture / max(float(texture.std()), 1e-12)
    scene *= 1 + params.brightness * _wave(shape, wavelength, rng)
    image = np.empty(shape + (3,), dtype=np.float64)
    for channel in range(3):
        image[..., channel] = scene * (1 + params.tint * _wave(shape, wavelength, rng))
    image *= 255
    image += rng.normal(0, params.noise_sigma, size=image.shape) if params.noise_sigma else 0
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
