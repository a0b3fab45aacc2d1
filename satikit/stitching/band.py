"""A band of the padded grid along the first spatial dimension.

``weighted`` and ``sati`` must keep state that later tiles still touch (blend accumulators, the
stitched canvas). They keep it only for a band of tile rows: ``(C, H, *P_rest)`` with
``H = (R - 1) * step_0 + T_0`` for ``R`` tile rows, and move the band down once its rows are
final, carrying the last ``O_0`` rows (the overlap with the next tile row) along.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from satikit.stitching.grid import TileGrid

__all__ = ["Band"]


class Band:
    """Rows ``[origin, origin + height)`` of a ``(C, *padded_shape)`` array, zero-initialised.

    Args:
        channels: leading channel count ``C``.
        grid: the tile grid (padded coordinates).
        rows: tile rows ``R`` the band holds at once.
        dtype: storage dtype.
    """

    def __init__(self, channels: int, grid: TileGrid, rows: int, dtype: type = np.float32):
        self.grid = grid
        self.height = self.height_of(grid, rows)
        self.data = np.zeros((channels, self.height, *grid.padded_shape[1:]), dtype=dtype)
        self.origin = 0
        self.kept = 0  # rows carried over by the last advance (the rest is zero)

    @staticmethod
    def height_of(grid: TileGrid, rows: int) -> int:
        """Rows a band of ``rows`` tile rows spans, ``(R - 1) * step + T`` (along dim 0)."""
        return (rows - 1) * grid.step[0] + grid.tile[0]

    def local(self, region: Sequence[slice]) -> tuple[slice, ...]:
        """Translate a padded-coordinate region into the band's own (channel axis included)."""
        first = region[0]
        if first.start < self.origin or first.stop > self.origin + self.height:
            raise IndexError(
                f"rows {first.start}:{first.stop} are outside the band at {self.origin}"
            )
        return (
            slice(None),
            slice(first.start - self.origin, first.stop - self.origin),
            *region[1:],
        )

    def advance(self, origin: int) -> None:
        """Move the band to start at ``origin``, keeping the rows both positions share."""
        shift = origin - self.origin
        keep = max(0, self.height - shift)
        if keep:
            self.data[:, :keep] = self.data[:, shift : shift + keep]
        self.data[:, keep:] = 0
        self.origin = origin
        self.kept = keep

    def carried(self) -> np.ndarray:
        """The rows the last :meth:`advance` carried over, ``(C, kept, *P_rest)``; the rest of
        the band is zero, so these rows and :attr:`origin` are the whole state."""
        return self.data[:, : self.kept]

    def restore(self, origin: int, rows: np.ndarray) -> None:
        """Put the band back where :meth:`carried` was taken: at ``origin``, holding ``rows``."""
        if rows.shape[0] != self.data.shape[0] or rows.shape[2:] != self.data.shape[2:]:
            raise ValueError(
                f"saved band rows of shape {rows.shape} do not fit a band of {self.data.shape}"
            )
        self.data[...] = 0
        self.data[:, : rows.shape[1]] = rows
        self.origin = origin
        self.kept = rows.shape[1]
