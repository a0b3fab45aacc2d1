"""The paper's colour-consistency error on the tiling strategy benchmark (section II).

A circle is correct when exactly one of red, green and blue is *present* in it. A channel is
present in a circle when a connected region of more than 30 px^2 whose values exceed 60 lies in
the circle (section II). The error is the fraction of circles with zero, two or three colours.

Recipe per channel (the paper's evaluation of section II / IV-A), with two refinements so that small objects and
touching objects are judged on their own pixels only:

1. *Smooth* (rank-mean, disk of radius 2 for 40 px circles): each pixel becomes the sum of the
   **same object's** pixels within the disk divided by the number of disk pixels inside the
   image. That is the paper's rank-mean on the channel with the background zeroed, except that
   every other object is zeroed too, so a neighbour's colour cannot bleed in.
2. *Threshold*: mean > 60 (section II), computed exactly in integers (sum > 60 * count).
3. *Fill dark holes* smaller than the area threshold that lie inside one object and do not touch
   its outline.
4. *Components* are labelled on the instance ids (two pixels connect only when they belong to
   the same object), which replaces cutting the circle outlines: touching circles separate and
   no pixel is lost. Components not larger than the area threshold (specks) are dropped.
5. A channel is present in the object that owns one of its remaining components.

Scaling: the paper's numbers are for 40 px circles. For other sizes the filter radius
is ``2 * d / 40`` rounded and the area threshold keeps the paper's share of the object,
``30 / 1257`` (1257 px^2 = pi * 20^2, the area of a 40 px circle) times the nominal size of a
ball of diameter ``d``: its area in 2D, its volume in 3D / N-D. **3D choice**: the voxel
threshold is ``30 / 1257`` of the sphere volume (800 voxels for 40 px spheres, 13.2 for 10 px
spheres) and the filter is a ball of the same radius. The value threshold 60 does not scale: it
is about the 8-bit noise, not the geometry.

Noise floors: the noise (sigma 58) does not shrink with the circles, so below the paper's size
the scaled numbers stop suppressing it (measured on 10 px circles: radius 1 and 1.9 px^2 call
27 % of all ground-truth circles wrong). The radius therefore never drops below the paper's 2
(safe now that the filter only sees the object's own pixels) and the area threshold never below
:data:`MIN_AREA_THRESHOLD`: 10 px in 2D, 4 voxels in 3D, the smallest floors that scored 0
errors on 200 000 ground-truth 10 px circles / 12 000 ground-truth 6 px spheres with sigma 58
(8 px in 2D still gives 2 false errors in 200 000). The floors do not bind at the paper's size;
with other noise levels, pass ``filter_radius`` / ``area_threshold`` explicitly.

Everything is vectorised over objects (numpy shifts, :func:`skimage.measure.label`,
:func:`numpy.bincount`), so 50 000 circles cost the same as one.

Beside the colour error, :func:`seam_score` measures how visible tile borders are in a stitched
image (beyond the paper; for normalisation-aware tiling, where seams are brightness jumps rather
than wrong colours). For datasets with a known true Y (the ``textured`` and ``restain`` data),
:func:`mean_absolute_error`, :func:`tile_deviation` and :func:`tile_stat_spread` score a
translation against it on the tiles it was stitched from, and :func:`tile_norm_jump` measures,
before any training, how much an image's per-tile statistics differ (how large the seams of
per-tile instance norm can get on it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from skimage import measure

from satikit.stitching.grid import TileGrid

__all__ = [
    "PAPER_AREA_FRACTION",
    "PAPER_AREA_THRESHOLD",
    "PAPER_DIAMETER",
    "PAPER_FILTER_RADIUS",
    "PAPER_VALUE_THRESHOLD",
    "MIN_AREA_THRESHOLD",
    "MIN_FILTER_RADIUS",
    "ColourErrorResult",
    "area_threshold_for",
    "ball_volume",
    "colour_error",
    "estimate_diameter",
    "filter_radius_for",
    "mean_absolute_error",
    "seam_positions",
    "seam_score",
    "tile_cells",
    "tile_deviation",
    "tile_errors",
    "tile_norm_jump",
    "tile_stat_spread",
]

#: Circle diameter (px) the paper's thresholds were chosen for (section II).
PAPER_DIAMETER: int = 40
#: Area threshold (px^2) of a colour region (section II: "more than 30 px^2").
PAPER_AREA_THRESHOLD: float = 30.0
#: Value threshold on the 8-bit scale (section II: "color values above the threshold of 60").
PAPER_VALUE_THRESHOLD: int = 60
#: Radius of the smoothing disk for the 40 px circles of section II (rank-mean filter).
PAPER_FILTER_RADIUS: int = 2
#: Share of a circle's area the area threshold stands for: 30 px^2 of pi * 20^2 = 1257 px^2.
PAPER_AREA_FRACTION: float = PAPER_AREA_THRESHOLD / 1257.0
#: Smallest smoothing radius (px): the paper's radius; see the module docstring.
MIN_FILTER_RADIUS: int = PAPER_FILTER_RADIUS
#: Smallest area threshold by number of spatial dimensions (2D value for 1D / 2D, 3D value
#: beyond), measured for sigma-58 noise with the radius-2 own-object filter (module docstring).
MIN_AREA_THRESHOLD: dict[int, float] = {2: 10.0, 3: 4.0}


def ball_volume(diameter: float, ndim: int) -> float:
    """Area (2D) / volume (3D) / N-D measure of a ball of ``diameter``, in pixels."""
    return math.pi ** (ndim / 2) / math.gamma(ndim / 2 + 1) * (diameter / 2) ** ndim


def filter_radius_for(diameter: float) -> int:
    """Smoothing radius for ``diameter`` px objects: 2 scaled by ``d / 40``, rounded, >= 2."""
    return max(MIN_FILTER_RADIUS, math.floor(PAPER_FILTER_RADIUS * diameter / PAPER_DIAMETER + 0.5))


def area_threshold_for(diameter: float, ndim: int) -> float:
    """Area (voxel) threshold for ``diameter`` px objects: ``30 / 1257`` of the ball's size.

    Gives the paper's 30 px^2 for 40 px circles (section II) and the same share of the sphere
    volume in 3D, but never less than the noise floor :data:`MIN_AREA_THRESHOLD`.
    """
    floor = MIN_AREA_THRESHOLD[min(max(ndim, 2), 3)]
    return max(floor, PAPER_AREA_FRACTION * ball_volume(diameter, ndim))


def estimate_diameter(labels: np.ndarray) -> float:
    """Diameter of a ball with the median object size of ``labels`` (0 = background).

    The median rather than the mean keeps objects clipped at the image border from biasing it.

    Args:
        labels: ``(*spatial)`` non-negative integer instance labels.

    Returns:
        The diameter in pixels, or ``nan`` when there is no object.
    """
    labels = _check_labels(labels)
    return _diameter_of(_object_sizes(labels)[1], labels.ndim)


def _diameter_of(sizes: np.ndarray, ndim: int) -> float:
    if len(sizes) == 0:
        return float("nan")
    size = float(np.median(sizes))
    return 2.0 * (size * math.gamma(ndim / 2 + 1) / math.pi ** (ndim / 2)) ** (1.0 / ndim)


@dataclass(frozen=True)
class ColourErrorResult:
    """Per-object verdicts of :func:`colour_error`.

    Attributes:
        ids: ``(n,)`` int64 object ids found in the labels, ascending.
        present: ``(n, 3)`` bool, whether red, green, blue is present in each object.
        diameter: Object diameter (px) the thresholds were scaled to.
        filter_radius: Radius (px) of the smoothing disk / ball.
        area_threshold: A colour region must be larger than this many pixels (voxels).
        value_threshold: A smoothed value must exceed this (8-bit scale).
    """

    ids: np.ndarray
    present: np.ndarray
    diameter: float
    filter_radius: int
    area_threshold: float
    value_threshold: int = field(default=PAPER_VALUE_THRESHOLD)

    @property
    def n_colours(self) -> np.ndarray:
        """``(n,)`` number of colours (0..3) present in each object."""
        return self.present.sum(axis=1)

    @property
    def errors(self) -> np.ndarray:
        """``(n,)`` bool, True where an object has 0, 2 or 3 colours."""
        return self.n_colours != 1

    @property
    def error_ids(self) -> np.ndarray:
        """Ids of the erroneous objects, ascending."""
        return self.ids[self.errors]

    @property
    def n_objects(self) -> int:
        """Number of objects evaluated."""
        return len(self.ids)

    @property
    def n_errors(self) -> int:
        """Number of objects with 0, 2 or 3 colours."""
        return int(self.errors.sum())

    @property
    def n_no_colour(self) -> int:
        """Number of objects with no colour present."""
        return int((self.n_colours == 0).sum())

    @property
    def n_multi_colour(self) -> int:
        """Number of objects with two or three colours present."""
        return int((self.n_colours >= 2).sum())

    @property
    def error_rate(self) -> float:
        """Fraction of erroneous objects in [0, 1] (0.0 when there is no object)."""
        return self.n_errors / self.n_objects if self.n_objects else 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts, rate, thresholds and the erroneous ids."""
        return {
            "n_objects": self.n_objects,
            "n_errors": self.n_errors,
            "error_rate": self.error_rate,
            "n_no_colour": self.n_no_colour,
            "n_multi_colour": self.n_multi_colour,
            "diameter": self.diameter,
            "filter_radius": self.filter_radius,
            "area_threshold": self.area_threshold,
            "value_threshold": self.value_threshold,
            "error_ids": self.error_ids.tolist(),
        }


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an integer array, got dtype {labels.dtype}")
    if labels.ndim < 1:
        raise ValueError("labels must have at least one spatial dimension")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, found {labels.min()}")
    return labels


def _object_sizes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, sizes)`` of the non-zero labels, ids ascending (int64)."""
    if labels.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if int(labels.max()) <= 4 * labels.size:
        sizes = np.bincount(labels.reshape(-1))
        ids = np.flatnonzero(sizes)
        ids = ids[ids > 0]
        return ids.astype(np.int64), sizes[ids]
    ids, sizes = np.unique(labels, return_counts=True)  # sparse huge ids: sort instead
    keep = ids > 0
    return ids[keep].astype(np.int64), sizes[keep]


def _ball_offsets(radius: int, ndim: int) -> np.ndarray:
    """``(K, ndim)`` integer offsets with squared length <= radius^2 (skimage disk / ball)."""
    axes = np.meshgrid(*([np.arange(-radius, radius + 1)] * ndim), indexing="ij")
    grid = np.stack([a.reshape(-1) for a in axes], axis=1)
    return grid[(grid**2).sum(axis=1) <= radius**2]


def _shift_slices(offset: np.ndarray) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices ``dst, src`` such that ``a[dst]`` pairs each pixel with ``a[src]`` at +offset."""
    dst, src = [], []
    for o in offset.tolist():
        dst.append(slice(0, -o) if o > 0 else slice(-o, None))
        src.append(slice(o, None) if o > 0 else slice(0, o if o < 0 else None))
    return tuple(dst), tuple(src)


def _in_image_counts(shape: tuple[int, ...], offsets: np.ndarray) -> np.ndarray:
    """``(*shape)`` number of ball ``offsets`` that land inside the image, per pixel.

    Starts from ``K`` and subtracts, per offset, the pixels whose neighbour falls outside: the
    complement of a box, split into disjoint slabs (only thin border slabs are touched).
    """
    count = np.full(shape, len(offsets), dtype=np.uint8 if len(offsets) <= 255 else np.uint16)
    for offset in offsets.tolist():
        inside: list[slice] = []
        for axis, (o, n) in enumerate(zip(offset, shape, strict=True)):
            rest = (slice(None),) * (len(shape) - axis - 1)
            for outside in (slice(0, max(0, -o)), slice(min(n, n - o), n)):
                if outside.stop > outside.start:
                    count[(*inside, outside, *rest)] -= 1
            inside.append(slice(max(0, -o), min(n, n - o)))
    return count


def _bright_mask(
    image: np.ndarray, labels: np.ndarray, radius: int, value_threshold: int
) -> np.ndarray:
    """``(3, *spatial)`` bool: the zero-padded own-object mean within ``radius`` > threshold.

    The mean at a pixel is the sum of the same object's pixels within the ball over the number
    of ball pixels inside the image: background and other objects count as 0 (the paper's
    "zero the background", extended to neighbours). Background pixels come out False.
    Channels are processed as contiguous planes, one shifted slice per ball offset.
    """
    offsets = _ball_offsets(radius, labels.ndim)
    planes = np.ascontiguousarray(np.moveaxis(image, -1, 0))  # (3, *spatial) uint8
    acc = planes.astype(np.uint16 if 255 * len(offsets) <= 65535 else np.uint32)
    scratch = np.empty_like(planes)
    every = (slice(None),)  # keep the channel axis
    for offset in offsets:
        if not offset.any():
            continue  # the centre is in acc already
        dst, src = _shift_slices(offset)
        same = labels[dst] == labels[src]
        term = scratch[every + dst]
        np.multiply(planes[every + src], same, out=term)
        acc[every + dst] += term
    limit = _in_image_counts(labels.shape, offsets).astype(acc.dtype)
    limit *= acc.dtype.type(value_threshold)
    bright = acc > limit
    bright &= labels > 0
    return bright


def _outline(labels: np.ndarray) -> np.ndarray:
    """``(*spatial)`` bool: object pixels with a face neighbour of another label (or background)."""
    rim = np.zeros(labels.shape, dtype=bool)
    for axis in range(labels.ndim):
        lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(labels.ndim))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(labels.ndim))
        differ = labels[lo] != labels[hi]
        rim[lo] |= differ
        rim[hi] |= differ
    return rim & (labels > 0)


def _fill_small_holes(
    bright: np.ndarray, labels: np.ndarray, outline: np.ndarray, max_area: float
) -> np.ndarray:
    """Set dark regions inside one object, off its outline, smaller than ``max_area`` bright."""
    dark_key = np.where(bright | (labels == 0), 0, labels)
    holes = measure.label(dark_key, background=0, connectivity=1)
    area = np.bincount(holes.reshape(-1))
    touches = np.bincount(holes[outline], minlength=len(area)) > 0
    fill = (area < max_area) & ~touches
    fill[0] = False
    return bright | fill[holes]


def _present_ids(bright: np.ndarray, labels: np.ndarray, min_area: float) -> np.ndarray:
    """Ids of the objects that hold a same-object component of ``bright`` larger than min_area."""
    key = np.where(bright, labels, 0)
    components = measure.label(key, background=0, connectivity=1)
    flat = components.reshape(-1)
    inside = np.flatnonzero(flat)
    owner = np.zeros(int(flat.max(initial=0)) + 1, dtype=np.int64)
    owner[flat[inside]] = key.reshape(-1)[inside]
    area = np.bincount(flat, minlength=len(owner))
    keep = area > min_area
    keep[0] = False
    return np.unique(owner[keep])


def _check_image(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (8-bit RGB), got dtype {image.dtype}")
    if image.ndim != labels.ndim + 1 or image.shape[-1] != 3:
        raise ValueError(
            f"image must have shape (*spatial, 3) for labels of shape {labels.shape}, "
            f"got {image.shape}"
        )
    if image.shape[:-1] != labels.shape:
        raise ValueError(
            f"image spatial shape {image.shape[:-1]} differs from labels shape {labels.shape}"
        )
    return image


def colour_error(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    diameter: float | None = None,
    value_threshold: int = PAPER_VALUE_THRESHOLD,
    filter_radius: int | None = None,
    area_threshold: float | None = None,
) -> ColourErrorResult:
    """The colour-consistency error of a translated benchmark image (paper, section II).

    Args:
        image: ``(*spatial, 3)`` uint8 RGB prediction (2D, 3D or N-D).
        labels: ``(*spatial)`` non-negative integer instance labels of the X image that was
            translated; 0 is background, every other id one object.
        diameter: Object diameter in px the thresholds are scaled to; default: estimated from
            the median object size (:func:`estimate_diameter`).
        value_threshold: A smoothed channel value must exceed this (section II: 60).
        filter_radius: Override the smoothing radius (default :func:`filter_radius_for`).
        area_threshold: Override the area / voxel threshold (default
            :func:`area_threshold_for`; 30 px^2 for 40 px circles).

    Returns:
        A :class:`ColourErrorResult` with per-object ``present`` channels and the error rate.

    Raises:
        ValueError: On a dtype / shape mismatch, negative labels or non-positive sizes.
    """
    labels = _check_labels(labels)
    image = _check_image(image, labels)
    ids, sizes = _object_sizes(labels)
    if diameter is None:
        diameter = _diameter_of(sizes, labels.ndim) if len(ids) else float(PAPER_DIAMETER)
    if not diameter > 0:
        raise ValueError(f"diameter must be > 0, got {diameter!r}")
    radius = filter_radius_for(diameter) if filter_radius is None else int(filter_radius)
    if radius < 0:
        raise ValueError(f"filter_radius must be >= 0, got {filter_radius!r}")
    min_area = (
        area_threshold_for(diameter, labels.ndim) if area_threshold is None else area_threshold
    )
    if min_area < 0:
        raise ValueError(f"area_threshold must be >= 0, got {area_threshold!r}")
    if not 0 <= value_threshold <= 255:
        raise ValueError(f"value_threshold must be in [0, 255], got {value_threshold!r}")

    present = np.zeros((len(ids), 3), dtype=bool)
    if len(ids):
        bright = _bright_mask(image, labels, radius, int(value_threshold))
        outline = _outline(labels)
        for channel in range(3):
            filled = _fill_small_holes(bright[channel], labels, outline, min_area)
            present[np.searchsorted(ids, _present_ids(filled, labels, min_area)), channel] = True
    return ColourErrorResult(
        ids=ids,
        present=present,
        diameter=float(diameter),
        filter_radius=radius,
        area_threshold=float(min_area),
        value_threshold=int(value_threshold),
    )


def seam_positions(grid: TileGrid) -> tuple[tuple[int, ...], ...]:
    """Where the tiles of ``grid`` meet in the stitched image, per spatial dim.

    Position ``p`` means a border between pixels ``p - 1`` and ``p``: the first pixel a later
    tile owns (:meth:`TileGrid.owned`: ``start + cut`` for tile ``i >= 1``). Positions at or
    past the image end (an image smaller than a tile is reflect-padded) are left out.
    """
    first = (0,) * grid.ndim
    return tuple(
        tuple(
            p
            for i in range(1, n)
            if (p := grid.owned(first[:k] + (i,) + first[k + 1 :])[k].start) < size
        )
        for k, (n, size) in enumerate(zip(grid.counts, grid.shape))
    )


def seam_score(
    image: np.ndarray,
    seams: TileGrid | Sequence[Sequence[int]],
    *,
    channel_axis: int | None = None,
) -> float:
    """How much tile borders stand out: mean jump across them over the mean jump elsewhere.

    For every spatial dim ``k`` and every pair of neighbouring pixels along it, the jump is
    ``|I[..., p, ...] - I[..., p - 1, ...]|`` (every channel). The score is the mean jump over
    the pairs that straddle a tile border divided by the mean jump over all other pairs (the
    neighbouring pixel columns / rows inside tiles), pooled over dims and channels. About 1: the
    borders look like any other column; 2: they jump twice as much as the image does anyway.

    Args:
        image: a stitched image, ``(*spatial)`` or with channels at ``channel_axis``; any real
            dtype (differences are taken in float64, so uint8 does not wrap).
        seams: the grid the image was stitched on (see :func:`seam_positions`), or per spatial
            dim the border positions ``p`` (``1 <= p < S``; a border between ``p - 1`` and
            ``p``).
        channel_axis: the channel axis (e.g. ``-1`` for the on-disk ``(*spatial, C)``, ``0``
            for the engine's ``(C, *spatial)``); None: no channel axis.

    Returns:
        the ratio, >= 0; ``inf`` when the image is constant except at the borders, 1.0 when it
        is constant everywhere.

    Raises:
        ValueError: seams for another number of dims, a position outside ``[1, S)``, or no
            border / no other pair of neighbours in the image.
    """
    values = np.asarray(image, dtype=np.float64)
    if channel_axis is not None:
        values = np.moveaxis(values, channel_axis, 0)
    else:
        values = values[None]
    spatial = values.shape[1:]
    positions = seam_positions(seams) if isinstance(seams, TileGrid) else seams
    if isinstance(seams, TileGrid) and seams.shape != spatial:
        raise ValueError(f"the grid covers {seams.shape}, the image is {spatial}")
    if len(positions) != len(spatial):
        raise ValueError(
            f"seams given for {len(positions)} dims, the image has {len(spatial)} spatial dims"
        )
    sums = np.zeros(2)  # border, inside
    counts = np.zeros(2)
    for axis, (size, where) in enumerate(zip(spatial, positions), start=1):
        where = np.unique(np.asarray(where, dtype=np.int64))
        if where.size and (where.min() < 1 or where.max() >= size):
            raise ValueError(f"seam positions {where.tolist()} outside [1, {size}) in dim {axis}")
        if size < 2:
            continue
        jumps = np.abs(np.diff(values, axis=axis))
        per_pair = jumps.sum(axis=tuple(a for a in range(jumps.ndim) if a != axis))
        border = np.zeros(size - 1, dtype=bool)
        border[where - 1] = True
        pair_size = jumps.size // (size - 1)
        sums += per_pair[border].sum(), per_pair[~border].sum()
        counts += border.sum() * pair_size, (~border).sum() * pair_size
    if counts[0] == 0 or counts[1] == 0:
        raise ValueError(
            "seam_score needs tile borders and other neighbouring pixels in the image; got "
            f"{int(counts[0])} border and {int(counts[1])} other pairs"
        )
    border_mean, inside_mean = sums / counts
    if inside_mean == 0:
        return float("inf") if border_mean > 0 else 1.0
    return float(border_mean / inside_mean)


def _channels_first(image: np.ndarray, channel_axis: int | None) -> np.ndarray:
    """``image`` as float64 ``(C, *spatial)`` (``C = 1`` without a channel axis)."""
    values = np.asarray(image, dtype=np.float64)
    return values[None] if channel_axis is None else np.moveaxis(values, channel_axis, 0)


def _pair(pred: np.ndarray, truth: np.ndarray, channel_axis: int | None):
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from the truth's {truth.shape}")
    if pred.size == 0:
        raise ValueError(f"empty images of shape {pred.shape}")
    return _channels_first(pred, channel_axis), _channels_first(truth, channel_axis)


def _cell_edges(
    shape: Sequence[int], seams: TileGrid | Sequence[Sequence[int]]
) -> list[list[slice]]:
    """Per spatial dim, the slices between consecutive borders (see :func:`tile_cells`)."""
    shape = tuple(int(s) for s in shape)
    if isinstance(seams, TileGrid):
        if seams.shape != shape:
            raise ValueError(f"the grid covers {seams.shape}, the image is {shape}")
        seams = seam_positions(seams)
    if len(seams) != len(shape):
        raise ValueError(f"seams given for {len(seams)} dims, the image has {len(shape)}")
    edges = []
    for axis, (size, where) in enumerate(zip(shape, seams)):
        where = np.unique(np.asarray(where, dtype=np.int64))
        if where.size and (where.min() < 1 or where.max() >= size):
            raise ValueError(f"seam positions {where.tolist()} outside [1, {size}) in dim {axis}")
        cuts = [0, *where.tolist(), size]
        edges.append([slice(a, b) for a, b in zip(cuts[:-1], cuts[1:])])
    return edges


def tile_cells(
    shape: Sequence[int], seams: TileGrid | Sequence[Sequence[int]]
) -> list[tuple[slice, ...]]:
    """The boxes between consecutive tile borders (and the image edges), in raster order.

    For a grid these are the tiles' owned parts of the stitched image (:meth:`TileGrid.owned`
    clipped to the image): every pixel lies in exactly one cell.

    Args:
        shape: spatial image shape ``S``.
        seams: a :class:`TileGrid` over ``shape`` or per spatial dim the border positions ``p``
            (``1 <= p < S``), as for :func:`seam_score`.

    Returns:
        The cells as tuples of slices, first dim outermost.

    Raises:
        ValueError: seams for another number of dims, a grid over another shape, or a
            position outside ``[1, S)``.
    """
    return list(itertools.product(*_cell_edges(shape, seams)))


def mean_absolute_error(
    pred: np.ndarray, truth: np.ndarray, *, channel_axis: int | None = -1
) -> float:
    """Mean of ``|pred - truth|`` over every pixel and channel (0-255 for 8-bit images).

    Args:
        pred: a translation, ``(*spatial, C)`` (or channels at ``channel_axis``), any real dtype
            (differences are taken in float64, so uint8 does not wrap).
        truth: the known true Y, the same shape.
        channel_axis: where the channels are; None: no channel axis.

    Raises:
        ValueError: different or empty shapes.
    """
    a, b = _pair(pred, truth, channel_axis)
    return float(np.abs(a - b).mean())


def tile_errors(
    pred: np.ndarray,
    truth: np.ndarray,
    seams: TileGrid | Sequence[Sequence[int]],
    *,
    channel_axis: int | None = -1,
) -> np.ndarray:
    """Each tile's mean absolute error against the truth (all of its pixels and channels).

    Args:
        pred: a stitched translation, ``(*spatial, C)`` (or channels at ``channel_axis``).
        truth: the known true Y, the same shape.
        seams: the grid the translation was stitched on, or per spatial dim the border
            positions (see :func:`tile_cells`).
        channel_axis: where the channels are; None: no channel axis.

    Returns:
        float64 array with one entry per cell, shaped like the cell counts per dim.
    """
    a, b = _pair(pred, truth, channel_axis)
    edges = _cell_edges(a.shape[1:], seams)
    error = np.abs(a - b).mean(axis=0)
    means = [error[cell].mean() for cell in itertools.product(*edges)]
    return np.array(means).reshape([len(e) for e in edges])


def tile_deviation(
    pred: np.ndarray,
    truth: np.ndarray,
    seams: TileGrid | Sequence[Sequence[int]],
    *,
    channel_axis: int | None = -1,
) -> float:
    """Tile-level deviation: the standard deviation over tiles of each tile's mean absolute
    error (:func:`tile_errors`; population std, 0 for one tile). Seams that come from per-tile
    statistics make some tiles too bright or too pale as a whole, which raises it even where
    the mean error stays the same."""
    return float(np.std(tile_errors(pred, truth, seams, channel_axis=channel_axis)))


def tile_stat_spread(
    pred: np.ndarray,
    truth: np.ndarray,
    seams: TileGrid | Sequence[Sequence[int]],
    *,
    channel_axis: int | None = -1,
) -> dict[str, float]:
    """How much the per-tile statistics of a translation stray from the truth's, over tiles.

    Per tile and channel the mean and the standard deviation of the prediction minus those of
    the truth; the spread is the standard deviation of that difference over the tiles, as a root
    mean square over channels. A constant offset (the same for every tile) adds nothing; tiles
    that each got their own brightness or contrast do.

    Args:
        pred: a stitched translation, ``(*spatial, C)`` (or channels at ``channel_axis``).
        truth: the known true Y, the same shape.
        seams: the grid the translation was stitched on, or per spatial dim the border
            positions (see :func:`tile_cells`).
        channel_axis: where the channels are; None: no channel axis.

    Returns:
        ``{"mean": spread of the tile means, "std": spread of the tile standard deviations}``,
        on the images' scale (0-255 for 8-bit), >= 0.
    """
    a, b = _pair(pred, truth, channel_axis)
    axes = tuple(range(1, a.ndim))
    diff = []  # per tile: (2, C) differences of the means and of the stds
    for cell in tile_cells(a.shape[1:], seams):
        tile_a, tile_b = a[(slice(None),) + cell], b[(slice(None),) + cell]
        diff.append(
            [
                tile_a.mean(axis=axes) - tile_b.mean(axis=axes),
                tile_a.std(axis=axes) - tile_b.std(axis=axes),
            ]
        )
    spread = np.sqrt((np.std(diff, axis=0) ** 2).mean(axis=-1))
    return {"mean": float(spread[0]), "std": float(spread[1])}


def tile_norm_jump(
    image: np.ndarray,
    tile: int | Sequence[int] = 128,
    *,
    channel_axis: int | None = -1,
    eps: float = 1e-5,
) -> float:
    """How far per-tile instance norm moves an image at tile borders, before any model.

    The image is normalised per channel twice: with each tile's own mean and standard deviation
    (instance norm on tiles of ``tile`` px side by side, as :class:`TileGrid` places them with no
    overlap) and with the whole image's (what shared statistics give). Their difference is
    smooth inside a tile and steps where two tiles meet; the probe is the mean absolute step
    across all tile borders, pooled over dims and channels, in units of the whole image's
    standard deviation. 0: every tile has the image's statistics; about 0.05 for the ``small``
    circles, 0.7 for the ``textured`` data and the bundled immunohistochemistry slide.

    Args:
        image: ``(*spatial, C)`` (or channels at ``channel_axis``); uint8 is mapped to
            [-1, 1] first (what the models see), other dtypes are taken as they are.
        tile: tile size in px, scalar or per spatial dim.
        channel_axis: where the channels are; None: no channel axis.
        eps: added to every variance (instance norm's epsilon).

    Returns:
        The mean step, >= 0.

    Raises:
        ValueError: an image no larger than one tile in every dim (no border).
    """
    raw = np.asarray(image)
    values = _channels_first(raw, channel_axis)
    if raw.dtype == np.uint8:
        values = values / 127.5 - 1.0
    spatial = values.shape[1:]
    grid = TileGrid.create(spatial, tile, 0)
    positions = seam_positions(grid)
    if not any(positions):
        raise ValueError(f"an image of shape {spatial} has no border between tiles of {tile} px")
    axes = tuple(range(1, values.ndim))
    shape = (-1,) + (1,) * len(spatial)
    whole = (values - values.mean(axis=axes).reshape(shape)) / np.sqrt(
        values.var(axis=axes).reshape(shape) + eps
    )
    shift = np.empty_like(values)
    for cell in tile_cells(spatial, positions):
        part = values[(slice(None),) + cell]
        mean = part.mean(axis=axes).reshape(shape)
        std = np.sqrt(part.var(axis=axes).reshape(shape) + eps)
        shift[(slice(None),) + cell] = (part - mean) / std
    shift -= whole
    total = count = 0.0
    for axis, where in enumerate(positions, start=1):
        for p in where:
            step = np.abs(np.take(shift, p, axis=axis) - np.take(shift, p - 1, axis=axis))
            total += step.sum()
            count += step.size
    return float(total / count)
