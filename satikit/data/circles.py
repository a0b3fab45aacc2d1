"""The tiling strategy benchmark images (paper section II): circles (2D) or spheres (N-D).

Domain X: white objects on black plus grey Gaussian noise, the grey copied to RGB.
Domain Y: every object pure red, green or blue (uniformly drawn) plus channel-wise Gaussian
noise. Both are 8-bit; noise is added to the clean 0/255 image, rounded and clipped to
[0, 255]. Every image comes with its instance label image (object ids 1..count, 0 background).

Placement rule (paper II: 1000 circles of 40 px on 2048^2 images): object centres are uniform random; two objects never share
a pixel (touching is allowed); objects are clipped at the image border. All objects are the same
digital ball of ``diameter`` pixels (see :func:`ball_footprint`), so "sharing a pixel" is exact
on the raster, not an approximation in continuous space.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "CHANNEL_NAMES",
    "ball_footprint",
    "label_dtype",
    "make_circle_image",
    "place_circles",
    "render_x",
    "render_y",
]

#: Channel order of the Y domain colours (index 0, 1, 2).
CHANNEL_NAMES: tuple[str, str, str] = ("red", "green", "blue")

# at most this many (candidate, footprint pixel) pairs are gathered at once when pre-checking
_GATHER_CHUNK = 2_000_000


def label_dtype(count: int) -> np.dtype:
    """Smallest unsigned dtype for ids ``0..count``: uint16 up to 65535 objects, else uint32."""
    return np.dtype(np.uint16) if count <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


def ball_footprint(diameter: int, ndim: int) -> np.ndarray:
    """The digital ball (disc in 2D, sphere in 3D) every object is painted with.

    Pixel ``k`` (0-based) of the ``diameter``-wide box has the coordinate
    ``k + 0.5 - diameter / 2`` along each axis, relative to the ball centre (a pixel corner for
    even, a pixel centre for odd diameters); the pixel belongs to the ball when its squared
    distance is at most ``(diameter / 2) ** 2``. So the ball spans exactly ``diameter`` pixels
    along each axis through its centre and is symmetric under flips.

    Args:
        diameter: Ball diameter in pixels, >= 1.
        ndim: Number of spatial dimensions, >= 1.

    Returns:
        ``(diameter,) * ndim`` bool array.

    Raises:
        ValueError: If ``diameter`` or ``ndim`` is below 1.
    """
    if int(diameter) != diameter or diameter < 1:
        raise ValueError(f"diameter must be an integer >= 1, got {diameter!r}")
    if int(ndim) != ndim or ndim < 1:
        raise ValueError(f"ndim must be an integer >= 1, got {ndim!r}")
    coord = np.arange(diameter) + 0.5 - diameter / 2
    grids = np.meshgrid(*([coord] * int(ndim)), indexing="ij", sparse=True)
    return sum(g**2 for g in grids) <= (diameter / 2) ** 2


class _Canvas:
    """Label image with a zero margin of one diameter, addressed by flat indices.

    The margin lets whole footprints be gathered / painted with plain integer offsets, without
    clipping; it is never painted (only in-image pixels are), so it always reads as free.
    """

    def __init__(self, shape: tuple[int, ...], diameter: int, offsets: np.ndarray, dtype) -> None:
        self.shape, self.pad = np.asarray(shape), diameter
        self.data = np.zeros(tuple(n + 2 * diameter for n in shape), dtype=dtype)
        self.flat = self.data.reshape(-1)
        self.steps = np.asarray(self.data.strides) // self.data.itemsize
        self.offsets = offsets
        self.offset_index = offsets @ self.steps  # (K,)
        self.coarse_index = self.offset_index[(offsets % 2 == 0).all(axis=1)]
        self.diameter = diameter

    def index(self, starts: np.ndarray) -> np.ndarray:
        """Flat index of each box start ``(B, N)`` (may lie in the margin)."""
        return (starts + self.pad) @ self.steps

    def _hits(self, base: np.ndarray, offset_index: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(base), dtype=bool)
        step = max(1, _GATHER_CHUNK // max(1, len(offset_index)))
        for lo in range(0, len(base), step):
            pixels = base[lo : lo + step, None] + offset_index[None, :]
            hit[lo : lo + step] = self.flat[pixels].any(axis=1)
        return hit

    def any_occupied(self, starts: np.ndarray) -> np.ndarray:
        """For each box start ``(B, N)``, whether its footprint hits an accepted object.

        A coarse pass over every second pixel per axis rejects most colliding candidates
        cheaply; the exact pass over the whole footprint runs on the rest only.
        """
        base = self.index(starts)
        hit = self._hits(base, self.coarse_index)
        rest = np.flatnonzero(~hit)
        hit[rest] = self._hits(base[rest], self.offset_index)
        return hit

    def footprint_index(self, start: np.ndarray) -> np.ndarray:
        """Flat indices of the in-image pixels of the footprint at ``start``."""
        index = self.index(start) + self.offset_index
        if (start >= 0).all() and (start + self.diameter <= self.shape).all():
            return index
        coords = self.offsets + start
        return index[((coords >= 0) & (coords < self.shape)).all(axis=1)]

    def labels(self) -> np.ndarray:
        """The label image without the margin (a contiguous copy)."""
        return self.data[(slice(self.pad, -self.pad),) * self.data.ndim].copy()


def _check_gradient(density_gradient: float) -> float:
    try:
        value = float(density_gradient)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(density_gradient, bool) or not 0 <= value < 1:
        raise ValueError(f"density_gradient must be in [0, 1), got {density_gradient!r}")
    return value


def _ramped_starts(
    low: int, high: int, gradient: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Integer starts in ``[low, high)`` whose density falls linearly from ``1 + g`` to
    ``1 - g`` (times the mean): inverse CDF of ``f(t) = 1 + g (1 - 2 t)`` on ``t`` in [0, 1)."""
    u = rng.random(size)
    t = ((1 + gradient) - np.sqrt((1 + gradient) ** 2 - 4 * gradient * u)) / (2 * gradient)
    return np.minimum(low + np.floor(t * (high - low)).astype(np.int64), high - 1)


def place_circles(
    shape: Sequence[int],
    count: int,
    diameter: int,
    rng: np.random.Generator,
    *,
    max_candidates: int | None = None,
    density_gradient: float = 0.0,
) -> np.ndarray:
    """Place ``count`` equal balls at uniform random centres; return their instance labels.

    Random sequential placement: candidate centres are drawn uniformly so that every centre lies
    inside the image (objects near the border are clipped); a candidate is accepted when its
    footprint shares no pixel with an accepted object (touching is allowed). Candidates come in
    vectorised batches that are pre-checked against the label image at once; only survivors are
    re-checked and painted one by one, touching just their own pixels.

    Args:
        shape: Spatial shape ``(*spatial)`` of the image, any number of dimensions.
        count: Number of objects, >= 0.
        diameter: Object diameter in pixels, 1..min(shape).
        rng: Random generator (the only source of randomness).
        max_candidates: Give up after this many candidates (default ``200 * count + 10000``).
        density_gradient: ``g`` in [0, 1), beyond the paper: candidate centres are no longer
            uniform along the first spatial dim but drawn with a density that falls linearly
            from ``1 + g`` times the mean at index 0 to ``1 - g`` times it at the far end (the
            other dims stay uniform), so the object density, and with it every tile's
            instance-norm statistics, varies smoothly across the image. 0 (default): the
            paper's uniform placement, drawing exactly the same random numbers as before.

    Returns:
        ``(*spatial)`` uint16 (uint32 beyond 65535 objects) array; object ``i`` (1-based, in the
        order of acceptance) is painted with id ``i``, background is 0.

    Raises:
        ValueError: On bad arguments, or when the objects do not fit (too dense: the message
            names how many could be placed).
    """
    shape = tuple(int(n) for n in shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"shape must be a non-empty sequence of positive sizes, got {shape!r}")
    if int(count) != count or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    footprint = ball_footprint(diameter, len(shape))
    if diameter > min(shape):
        raise ValueError(f"diameter {diameter} exceeds the smallest image size {min(shape)}")
    count, diameter = int(count), int(diameter)
    gradient = _check_gradient(density_gradient)
    budget = 200 * count + 10_000 if max_candidates is None else int(max_candidates)
    canvas = _Canvas(shape, diameter, np.argwhere(footprint), label_dtype(count))
    # box start s: centre s + diameter / 2 uniform over [0, n) on the pixel grid
    low = -(diameter // 2)
    high = np.asarray(shape) - diameter // 2
    placed = tried = 0
    while placed < count:
        if tried >= budget:
            raise ValueError(
                f"could place only {placed} of {count} objects of diameter {diameter} in an "
                f"image of shape {shape} after {tried} candidates; lower the count or the "
                "diameter, or enlarge the image"
            )
        batch = min(budget - tried, max(256, 2 * (count - placed)))
        starts = rng.integers(low, high, size=(batch, len(shape)))
        if gradient:
            starts[:, 0] = _ramped_starts(low, int(high[0]), gradient, batch, rng)
        tried += batch
        for start in starts[~canvas.any_occupied(starts)]:
            pixels = canvas.footprint_index(start)
            if canvas.flat[pixels].any():  # collides with an object accepted from this batch
                continue
            placed += 1
            canvas.flat[pixels] = placed
            if placed == count:
                break
    return canvas.labels()


def _add_noise(clean: np.ndarray, noise_sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``clip(round(clean + N(0, noise_sigma)), 0, 255)`` as uint8, elementwise noise.

    ``clean`` is uint8; the sum is formed in float32.
    """
    if noise_sigma < 0:
        raise ValueError(f"noise_sigma must be >= 0, got {noise_sigma!r}")
    if noise_sigma == 0:
        return clean.astype(np.uint8)
    out = rng.standard_normal(clean.shape, dtype=np.float32)
    out *= np.float32(noise_sigma)
    out += clean
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def render_x(labels: np.ndarray, noise_sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Render a domain X image: white objects on black, grey noise, copied to RGB.

    Args:
        labels: ``(*spatial)`` instance labels, 0 = background.
        noise_sigma: Standard deviation of the grey Gaussian noise on the 8-bit scale, >= 0.
        rng: Random generator.

    Returns:
        ``(*spatial, 3)`` uint8 with three identical channels, values in [0, 255].
    """
    clean = np.where(labels > 0, np.uint8(255), np.uint8(0))
    grey = _add_noise(clean, noise_sigma, rng)
    return np.repeat(grey[..., None], 3, axis=-1)


def render_y(
    labels: np.ndarray,
    noise_sigma: float,
    rng: np.random.Generator,
    colours: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render a domain Y image: every object pure red, green or blue, channel-wise noise.

    Args:
        labels: ``(*spatial)`` instance labels with ids ``1..n`` (0 = background).
        noise_sigma: Standard deviation of the per-channel Gaussian noise (8-bit scale), >= 0.
        rng: Random generator.
        colours: Optional ``(n,)`` channel index (0 red, 1 green, 2 blue) per object id
            ``1..n``; drawn uniformly from ``rng`` when omitted.

    Returns:
        ``(image, colours)``: ``(*spatial, 3)`` uint8 image in [0, 255] and the ``(n,)`` int64
        colour index of object id ``i`` at position ``i - 1``.

    Raises:
        ValueError: If ``colours`` has the wrong length or values outside {0, 1, 2}.
    """
    n = int(labels.max(initial=0))
    if colours is None:
        colours = rng.integers(0, 3, size=n)
    colours = np.asarray(colours, dtype=np.int64)
    if colours.shape != (n,) or (n and (colours.min() < 0 or colours.max() > 2)):
        raise ValueError(f"colours must be {n} values in {{0, 1, 2}}, got shape {colours.shape}")
    palette = np.zeros((n + 1, 3), dtype=np.uint8)
    palette[np.arange(1, n + 1), colours] = 255
    return _add_noise(palette[labels], noise_sigma, rng), colours


def make_circle_image(
    domain: str,
    *,
    shape: Sequence[int],
    count: int,
    diameter: int,
    noise_sigma: float,
    rng: np.random.Generator,
    density_gradient: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One benchmark image of domain ``"x"`` or ``"y"`` with its instance labels.

    Args:
        domain: ``"x"`` (white objects, grey noise) or ``"y"`` (red/green/blue objects).
        shape: Spatial shape, e.g. ``(2048, 2048)`` (paper, section II) or ``(256,) * 3``.
        count: Number of objects.
        diameter: Object diameter in pixels.
        noise_sigma: Gaussian noise sigma on the 8-bit scale (the presets use 58; paper II
            does not state it).
        rng: Random generator; placement, colours and noise are drawn from it in that order.
        density_gradient: Object density falling linearly along the first spatial dim, see
            :func:`place_circles` (0: uniform, the paper's).

    Returns:
        ``(image, labels)``: ``(*shape, 3)`` uint8 image and ``(*shape)`` uint16/uint32 labels.

    Raises:
        ValueError: If ``domain`` is neither ``"x"`` nor ``"y"``, or on bad geometry.
    """
    if domain not in ("x", "y"):
        raise ValueError(f"domain must be 'x' or 'y', got {domain!r}")
    labels = place_circles(shape, count, diameter, rng, density_gradient=density_gradient)
    if domain == "x":
        return render_x(labels, noise_sigma, rng), labels
    return render_y(labels, noise_sigma, rng)[0], labels
