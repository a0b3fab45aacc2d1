"""N-D tile grid: tile positions, virtual padding, raster order and the SATI wavefront schedule.

The grid is uniform: tiles of size ``T`` start every ``step = T - O`` pixels along each spatial
dimension, and the image is (virtually) reflect-padded at its far end so the last tile fits. A
uniform grid is what makes the wavefront schedule exact (see :meth:`TileGrid.waves`); the padding
is never materialised for the whole image, only for the tiles that reach past the border
(:func:`read_tile`).

Shapes are spatial only (no channel axis) unless a docstring says otherwise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from satikit.choices import SEAMS

__all__ = ["TileGrid", "as_tuple", "read_tile", "reflect_indices", "sati_overlap_message"]

Index = tuple[int, ...]


def as_tuple(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    """Broadcast a scalar-or-sequence argument to one int per spatial dimension."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * ndim
    values = tuple(int(v) for v in value)
    if len(values) != ndim:
        raise ValueError(
            f"{name} has {len(values)} entries {values} but the image has {ndim} spatial dims"
        )
    return values


def sati_overlap_message(
    tile: Sequence[int], overlap: Sequence[int], margin: Sequence[int] | None = None
) -> str:
    """The error for a SATI grid whose tile is not larger than twice its overlap (+ margin)."""
    if margin is not None and any(margin):
        return (
            f"SATI needs tile > 2 x (overlap + margin) (tiles overlap by overlap + margin and "
            f"each keeps pixels of its own beyond its predecessors); got tile={tuple(tile)}, "
            f"overlap={tuple(overlap)}, margin={tuple(margin)}"
        )
    return (
        f"SATI needs tile > 2 x overlap (each tile keeps pixels of its own beyond the strips "
        f"it takes from its predecessors); got tile={tuple(tile)}, overlap={tuple(overlap)}"
    )


@dataclass(frozen=True)
class TileGrid:
    """A uniform N-D grid of overlapping tiles over an image of spatial ``shape``.

    Attributes:
        shape: spatial image shape ``S`` (N entries, N >= 1).
        tile: tile size ``T`` per dimension.
        overlap: overlap ``O`` per dimension, ``0 <= O < T``.
        seam: where consecutive tiles meet inside their overlap: ``"middle"`` (paper III-E,
            the default) or ``"start"`` (the later tile keeps the whole overlap; the "w/o
            stitching strategy" ablation).
        margin: SATI only, beyond the paper: extra overlap ``m`` per dimension, so tiles start
            every ``T - O - m`` px while the strip a tile takes from its predecessors stays
            ``O`` wide. The strip's inner edge then lies ``m`` px inside the predecessor instead
            of at its border, where the predecessor saw objects cut off (0: the paper's grid).
    """

    shape: tuple[int, ...]
    tile: tuple[int, ...]
    overlap: tuple[int, ...]
    seam: str = "middle"
    margin: tuple[int, ...] | None = None

    @classmethod
    def create(
        cls,
        shape: Sequence[int],
        tile: int | Sequence[int],
        overlap: int | Sequence[int],
        *,
        sati: bool = False,
        seam: str = "middle",
        margin: int | Sequence[int] = 0,
    ) -> TileGrid:
        """Build and validate a grid; ``sati=True`` also requires ``T > 2 (O + m)`` (each tile
        keeps pixels of its own beyond the strips it takes from its predecessors, paper III-A).

        Raises:
            ValueError: empty image, tile < 1, overlap < 0, overlap >= tile, (SATI) tile <=
                2 x (overlap + margin), margin < 0, a margin without ``sati``, or an unknown
                ``seam``.
        """
        if seam not in SEAMS:
            raise ValueError(f"seam must be one of {SEAMS}, got {seam!r}")
        shape = tuple(int(s) for s in shape)
        ndim = len(shape)
        if ndim < 1 or any(s < 1 for s in shape):
            raise ValueError(f"image spatial shape must have N >= 1 positive sizes, got {shape}")
        tile_t = as_tuple(tile, ndim, "tile")
        overlap_t = as_tuple(overlap, ndim, "overlap")
        for t, o in zip(tile_t, overlap_t):
            if t < 1:
                raise ValueError(f"tile must be >= 1 in every dimension, got tile={tile_t}")
            if o < 0:
                raise ValueError(f"overlap must be >= 0, got overlap={overlap_t}")
            if o >= t:
                raise ValueError(
                    f"overlap must be smaller than the tile, got tile={tile_t}, overlap={overlap_t}"
                )
        margin_t = as_tuple(margin, ndim, "margin")
        if any(m < 0 for m in margin_t):
            raise ValueError(f"margin must be >= 0, got margin={margin_t}")
        if any(margin_t) and not sati:
            raise ValueError(f"margin is a SATI setting; got margin={margin_t} without sati")
        for t, o, m in zip(tile_t, overlap_t, margin_t):
            if sati and 2 * (o + m) >= t:
                raise ValueError(sati_overlap_message(tile_t, overlap_t, margin_t))
        return cls(shape, tile_t, overlap_t, seam, margin_t if any(margin_t) else None)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @cached_property
    def window_overlap(self) -> tuple[int, ...]:
        """How far consecutive tile windows overlap, ``O + m`` (``O`` without a margin)."""
        margin = self.margin or (0,) * self.ndim
        return tuple(o + m for o, m in zip(self.overlap, margin))

    @cached_property
    def step(self) -> tuple[int, ...]:
        """Distance between consecutive tile starts, ``T - O - m``."""
        return tuple(t - o for t, o in zip(self.tile, self.window_overlap))

    @cached_property
    def counts(self) -> tuple[int, ...]:
        """Number of tiles per dimension: the fewest that cover the image."""
        return tuple(
            max(1, math.ceil((s - o) / st))
            for s, o, st in zip(self.shape, self.window_overlap, self.step)
        )

    @cached_property
    def padded_shape(self) -> tuple[int, ...]:
        """Spatial shape of the grid's coordinates, ``(n - 1) * step + T >= S`` (the tiles
        themselves end at ``S`` when ``S >= T``: see :meth:`start`)."""
        return tuple((n - 1) * st + t for n, st, t in zip(self.counts, self.step, self.tile))

    @property
    def n_tiles(self) -> int:
        return math.prod(self.counts)

    @property
    def cut(self) -> tuple[int, ...]:
        """Offset of the seam inside a leading overlap: the middle, ``O // 2`` (paper III-E),
        or 0 with ``seam="start"``."""
        return tuple(o // 2 if self.seam == "middle" else 0 for o in self.overlap)

    def start(self, index: Index) -> tuple[int, ...]:
        """Start position of tile ``index``: ``i * step``, except that a last tile which would
        run past an image at least one tile long is shifted back to end at the image border
        (its overlap with the tile before grows; the cut stays in the middle of it, paper III-E).
        Only an image smaller than a tile
        is reflect-padded."""
        return tuple(
            min(i * st, s - t) if s >= t else i * st
            for i, st, s, t in zip(index, self.step, self.shape, self.tile)
        )

    def window(self, index: Index) -> tuple[slice, ...]:
        """Slices of the tile's window in the padded image."""
        return tuple(slice(b, b + t) for b, t in zip(self.start(index), self.tile))

    def raster(self) -> Iterator[Index]:
        """All tile indices in raster order (first dimension outermost)."""
        return itertools.product(*(range(n) for n in self.counts))

    @cached_property
    def wave_base(self) -> int:
        """2, or 3 when a last tile shifted back to the border overlaps the tile two before
        it along some dim (then tile indices of overlapping tiles differ by up to 2 there)."""
        for n, st, s, t in zip(self.counts, self.step, self.shape, self.tile):
            if n >= 3 and s >= t and (n - 3) * st + t > s - t:
                return 3
        return 2

    def wave_of(self, index: Index) -> int:
        """Wave number ``t = sum_k b^(N-1-k) * i_k`` with ``b`` = :attr:`wave_base` (wavefront
        order, beyond the paper: tiles of one wave only depend on earlier waves)."""
        n, base = self.ndim, self.wave_base
        return sum(i * base ** (n - 1 - k) for k, i in enumerate(index))

    def waves(self) -> list[list[Index]]:
        """Tiles grouped into waves that can run as one batch under SATI.

        Two tiles whose windows overlap differ by at most 1 in every index when ``O + m <= T / 2``
        (by up to 2 where a last tile, shifted back to the border, reaches the tile two before
        it: then :attr:`wave_base` is 3); for such a pair the sign of the wave difference equals
        the sign of their raster order (the weights ``b^(N-1-k)`` dominate all lower dimensions
        together). So every tile's overlapping predecessors lie in earlier waves, no two
        overlapping tiles share a wave, and walking the waves reproduces the raster-order result
        exactly. 2D ``n x n`` tiles give ``3(n-1)+1`` waves, 3D ``7(n-1)+1`` (base 2).
        """
        groups: dict[int, list[Index]] = {}
        for index in self.raster():
            groups.setdefault(self.wave_of(index), []).append(index)
        return [groups[t] for t in sorted(groups)]

    def leading(self, index: Index) -> tuple[bool, ...]:
        """Per dimension, whether the tile has an already-processed neighbour before it."""
        return tuple(i > 0 for i in index)

    def owned(self, index: Index) -> tuple[slice, ...]:
        """The part of the tile that survives in the stitched image (padded coordinates).

        Tiles are cut at ``cut`` into each leading overlap (paper III-E: its middle): along each
        dimension the tile owns ``[start + cut, next start + cut)``, the first tile from 0, the
        last to its end.
        """
        start = self.start(index)
        slices = []
        for k, i in enumerate(index):
            lo = start[k] + (self.cut[k] if i > 0 else 0)
            if i < self.counts[k] - 1:
                following = list(index)
                following[k] = i + 1
                hi = self.start(tuple(following))[k] + self.cut[k]
            else:
                hi = start[k] + self.tile[k]
            slices.append(slice(lo, hi))
        return tuple(slices)

    def written(self, index: Index) -> tuple[slice, ...]:
        """What a SATI tile writes into the canvas: from each leading seam to the tile's end.

        Later tiles overwrite from their own seam on, so the canvas always holds the stitched
        result so far, and a tile's leading strips hold its predecessors' full outputs there.
        """
        return tuple(slice(o.start, w.stop) for o, w in zip(self.owned(index), self.window(index)))


def reflect_indices(start: int, length: int, size: int) -> np.ndarray:
    """Indices ``start .. start+length-1`` folded into ``[0, size)`` by reflection (no edge repeat).

    Matches ``numpy.pad(mode="reflect")`` for any pad width; ``size == 1`` maps everything to 0.
    """
    idx = np.arange(start, start + length)
    if size == 1:
        return np.zeros_like(idx)
    period = 2 * (size - 1)
    idx = np.mod(idx, period)
    return np.where(idx < size, idx, period - idx)


def read_tile(image, window: Sequence[slice], shape: Sequence[int]) -> np.ndarray:
    """Read one tile ``image[:, window]`` as float32, reflecting where it runs past the border.

    Args:
        image: ``(C, *S)`` sliceable array (numpy, memmap, zarr, tifffile store, ...).
        window: one slice per spatial dim (padded coordinates, may end past ``S``).
        shape: the spatial image shape ``S``.

    Returns:
        ``(C, *T)`` float32 array. Only the bounding box of the needed pixels is read.
    """
    inside = all(w.stop <= s for w, s in zip(window, shape))
    if inside:
        return np.asarray(image[(slice(None), *window)], dtype=np.float32)
    indices = [reflect_indices(w.start, w.stop - w.start, s) for w, s in zip(window, shape)]
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in indices)
    block = np.asarray(image[(slice(None), *box)], dtype=np.float32)
    local = [i - b.start for i, b in zip(indices, box)]
    return block[(slice(None), *np.ix_(*local))]
