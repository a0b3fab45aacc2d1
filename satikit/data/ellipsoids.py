"""Synthetic nucleus label volumes: random ellipsoids (paper section IV-C).

The paper places ellipsoids at random in 256^3 volumes, sets background 10 and foreground 130,
adds Gaussian noise (mu 0, sigma 3.33), rounds and clips to [0, 255]. It does not give the
number, size or overlap rule of the ellipsoids; our defaults (:class:`EllipsoidParams`) are
semi-axes of 4 to 8 px (nuclei of roughly 10 to 15 um at the paper's 1.1 um voxels), random
orientation, 2000 per volume (about 10 % of the volume), and the circle benchmark's rule: two
ellipsoids never share a voxel (touching allowed) and are clipped at the border.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from satikit.data.circles import label_dtype

__all__ = [
    "EllipsoidParams",
    "make_ellipsoid_volume",
    "place_ellipsoids",
    "random_rotation",
    "render_ellipsoids",
]


@dataclass(frozen=True)
class EllipsoidParams:
    """Parameters of the synthetic ellipsoid label volumes (section IV-C).

    Attributes:
        size: Edge length of the cubic volumes in px (paper: 256).
        count: Ellipsoids per volume (paper: not given).
        semi_axes: ``(low, high)`` range the three semi-axes are drawn from, px (not given).
        background: Background intensity (paper: 10).
        foreground: Ellipsoid intensity (paper: 130).
        noise_sigma: Gaussian noise sigma (paper: 3.33).
        n_images: Training volumes (paper: four synthetic label images).
        n_test: Held-out volumes, drawn apart from the training volumes.
        dims: Number of spatial dimensions (paper: 3).
    """

    size: int = 256
    count: int = 2000
    semi_axes: tuple[float, float] = (4.0, 8.0)
    background: int = 10
    foreground: int = 130
    noise_sigma: float = 3.33
    n_images: int = 4
    n_test: int = 1
    dims: int = 3

    def __post_init__(self) -> None:
        for name in ("size", "count", "n_images", "n_test", "dims"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or int(value) != value
                or value < (1 if name in ("size", "dims") else 0)
            ):
                raise ValueError(
                    f"{name} must be a non-negative integer (size, dims >= 1), got {value!r}"
                )
        low, high = self.semi_axes
        if not 0 < low <= high or 2 * high > self.size:
            raise ValueError(
                f"semi_axes must satisfy 0 < low <= high <= size / 2, got {self.semi_axes!r}"
            )
        for name in ("background", "foreground"):
            if not 0 <= getattr(self, name) <= 255:
                raise ValueError(f"{name} must be in [0, 255], got {getattr(self, name)!r}")
        if not self.noise_sigma >= 0:
            raise ValueError(f"noise_sigma must be >= 0, got {self.noise_sigma!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape ``(size,) * dims``."""
        return (self.size,) * self.dims

    def replace(self, **changes: Any) -> EllipsoidParams:
        """A copy with ``changes`` applied; ``None`` values are ignored (CLI defaults)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["semi_axes"] = list(self.semi_axes)
        return out


def random_rotation(ndim: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix ``(ndim, ndim)`` (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.standard_normal((ndim, ndim)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _ellipsoid_box(
    centre: np.ndarray, axes: np.ndarray, rotation: np.ndarray, shape: Sequence[int]
) -> tuple[tuple[slice, ...], np.ndarray] | None:
    """Image slices of the clipped bounding box and the ellipsoid mask inside it."""
    half = np.sqrt(((rotation * axes) ** 2).sum(axis=1))  # extent along each image axis
    low = np.maximum(np.floor(centre - half).astype(int), 0)
    high = np.minimum(np.ceil(centre + half).astype(int) + 1, np.asarray(shape))
    if (high <= low).any():
        return None
    grids = np.meshgrid(
        *[np.arange(a, b) - c for a, b, c in zip(low, high, centre, strict=True)],
        indexing="ij",
        sparse=True,
    )
    # body coordinates q = R^T (p - c); inside when sum (q_j / a_j)^2 <= 1
    inside = (
        sum(
            (sum(g * rotation[i, j] for i, g in enumerate(grids)) / axes[j]) ** 2
            for j in range(len(axes))
        )
        <= 1.0
    )
    return tuple(slice(a, b) for a, b in zip(low, high, strict=True)), inside


def place_ellipsoids(
    shape: Sequence[int],
    count: int,
    semi_axes: tuple[float, float],
    rng: np.random.Generator,
    *,
    max_candidates: int | None = None,
) -> np.ndarray:
    """Place ``count`` randomly sized and oriented ellipsoids; return their instance labels.

    Centres are uniform in the volume, semi-axes uniform in ``semi_axes``, orientations uniform.
    A candidate is accepted when it shares no voxel with an accepted ellipsoid (touching
    allowed); ellipsoids are clipped at the border. Each candidate touches only its bounding box.

    Args:
        shape: Spatial shape ``(*spatial)``.
        count: Number of ellipsoids, >= 0.
        semi_axes: ``(low, high)`` semi-axis range in px.
        rng: Random generator.
        max_candidates: Give up after this many candidates (default ``200 * count + 10000``).

    Returns:
        ``(*spatial)`` uint16 / uint32 labels, ids ``1..count`` in order of acceptance.

    Raises:
        ValueError: If the ellipsoids do not fit (the message names how many were placed).
    """
    shape = tuple(int(n) for n in shape)
    if int(count) != count or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    low, high = semi_axes
    if not 0 < low <= high:
        raise ValueError(f"semi_axes must satisfy 0 < low <= high, got {semi_axes!r}")
    budget = 200 * count + 10_000 if max_candidates is None else int(max_candidates)
    labels = np.zeros(shape, dtype=label_dtype(int(count)))
    placed = 0
    for _ in range(budget):
        if placed == count:
            return labels
        centre = rng.uniform(0, shape)
        axes = rng.uniform(low, high, size=len(shape))
        rotation = random_rotation(len(shape), rng)
        if labels[tuple(np.minimum(centre.astype(int), np.asarray(shape) - 1))]:
            continue  # cheap early reject: the centre voxel is taken
        box = _ellipsoid_box(centre, axes, rotation, shape)
        if box is None:
            continue
        region = labels[box[0]]
        if not box[1].any() or region[box[1]].any():
            continue
        placed += 1
        region[box[1]] = placed
    if placed < count:
        raise ValueError(
            f"could place only {placed} of {count} ellipsoids (semi-axes {semi_axes}) in a "
            f"volume of shape {shape} after {budget} candidates; lower the count or the size"
        )
    return labels


def render_ellipsoids(
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    background: int = 10,
    foreground: int = 130,
    noise_sigma: float = 3.33,
) -> np.ndarray:
    """The synthetic nucleus image of a label volume (section IV-C).

    Args:
        labels: ``(*spatial)`` instance labels, 0 = background.
        rng: Random generator for the noise.
        background: Background value (paper: 10).
        foreground: Object value (paper: 130).
        noise_sigma: Gaussian noise sigma, mu 0 (paper: 3.33).

    Returns:
        ``(*spatial)`` uint8, ``clip(round(value + noise), 0, 255)``.
    """
    if not noise_sigma >= 0:
        raise ValueError(f"noise_sigma must be >= 0, got {noise_sigma!r}")
    out = np.where(labels > 0, np.float32(foreground), np.float32(background))
    if noise_sigma > 0:
        noise = rng.standard_normal(labels.shape, dtype=np.float32)
        noise *= np.float32(noise_sigma)
        out += noise
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def make_ellipsoid_volume(
    params: EllipsoidParams | None = None, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic nucleus volume and its instance labels.

    Args:
        params: Parameters (default :class:`EllipsoidParams`, the paper's 256^3 setting).
        rng: Random generator; placement first, then noise.

    Returns:
        ``(volume, labels)``: ``(*shape)`` uint8 image and ``(*shape)`` uint16/uint32 labels.
    """
    params = EllipsoidParams() if params is None else params
    labels = place_ellipsoids(params.shape, params.count, params.semi_axes, rng)
    volume = render_ellipsoids(
        labels,
        rng,
        background=params.background,
        foreground=params.foreground,
        noise_sigma=params.noise_sigma,
    )
    return volume, labels
