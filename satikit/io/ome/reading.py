"""OME inputs as satikit sees images: lazy ``(*spatial[, C])`` arrays, nothing loaded.

OME formats name their axes: NGFF stores ``(t, c, z, y, x)`` (any subset, in that order), an
OME-TIFF series ``TCZYXS``-like orders. :class:`AxesView` presents such an array as satikit's
on-disk layout: the spatial axes ``z, y, x`` in that order, the channel axis last (dropped when
it has one entry), every other axis squeezed (it must have one entry). :func:`open_zarr` opens a
zarr array, or level 0 of an OME-Zarr image; :func:`image_view` wraps any array with named axes
(an OME-TIFF series).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from satikit.io.arrays import ImageLayoutError
from satikit.io.ome.metadata import ngff_multiscale

__all__ = ["AxesView", "open_zarr", "image_view"]

_CHANNEL = ("c", "s")  # NGFF channel, tifffile's channel ('C') and sample ('S') axes
_SPATIAL = ("z", "y", "x")


class AxesView:
    """Read-only ``(*spatial[, C])`` view of an array stored with named axes.

    Args:
        array: the stored array (zarr, memmap, ...), read lazily.
        axes: one name per stored axis, case-insensitive: ``z``, ``y``, ``x`` (spatial; y and x
            required), ``c`` or ``s`` (channels; at most one with more than one entry), anything
            else (``t``, ``q``, ...) only with one entry.
        name: how errors call the image.

    Raises:
        ImageLayoutError: (a ValueError) no y/x axis, an extra axis with more than one entry
            (e.g. a time series), or two channel axes (the message names the file and axis).
    """

    def __init__(self, array: Any, axes: Sequence[str], name: str) -> None:
        axes = [a.lower() for a in axes]
        shape = tuple(int(s) for s in array.shape)
        if len(axes) != len(shape):
            raise ImageLayoutError(f"{name}: {len(axes)} axis names for an array of shape {shape}")
        if "y" not in axes or "x" not in axes:
            raise ImageLayoutError(f"{name}: axes {''.join(axes)!r} have no y and x; not an image")
        channels = [i for i, a in enumerate(axes) if a in _CHANNEL and shape[i] > 1]
        if len(channels) > 1:
            raise ImageLayoutError(
                f"{name}: two channel axes {''.join(axes)!r}; cannot translate that"
            )
        for i, a in enumerate(axes):
            if a not in _CHANNEL + _SPATIAL and shape[i] > 1:
                what = "a time series" if a == "t" else f"axis {a!r} has {shape[i]} entries"
                raise ImageLayoutError(f"{name}: {what}; give one image (one {a} per file)")
        self.array, self.name = array, name
        self.order = [axes.index(a) for a in _SPATIAL if a in axes] + channels  # stored axes
        self.shape = tuple(shape[i] for i in self.order)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(array.dtype)
        self._mmap = getattr(array, "_mmap", None)  # so release_pages sees through the view

    @property
    def is_identity(self) -> bool:
        """True if the view changes nothing (the stored axes are already satikit's)."""
        return self.order == list(range(len(self.array.shape)))

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        stored: list[Any] = [0] * len(self.array.shape)  # squeezed axes: their one entry
        for axis, k in zip(self.order, key):
            stored[axis] = k
        block = np.asarray(self.array[tuple(stored)])
        kept = [axis for axis, k in zip(self.order, key) if not isinstance(k, (int, np.integer))]
        present = sorted(kept)  # the stored order of the axes the read returned
        return np.transpose(block, [present.index(axis) for axis in kept])


def image_view(array: Any, axes: str, name: str) -> Any:
    """An array with named axes (NGFF names, or tifffile's series axes such as ``"CYX"``) as
    ``(*spatial[, C])``; ``array`` itself when its axes already are."""
    view = AxesView(array, axes, name)
    return array if view.is_identity else view


def open_zarr(path: str | Path) -> Any:
    """Open a zarr array, or level 0 of an OME-Zarr image, lazily as ``(*spatial[, C])``.

    A plain zarr array is returned as stored. An OME-Zarr group (NGFF 0.1 to 0.5) gives its
    first (full-resolution) dataset, through :class:`AxesView` when its axes are not already
    satikit's (e.g. ``cyx`` becomes ``yxc``).

    Raises:
        ImageLayoutError: (a ValueError) a zarr group without OME-Zarr metadata, a time
            series, or malformed NGFF metadata (the message names the path).
        Exception: whatever zarr raises for a folder that is not zarr (callers wrap it).
    """
    import zarr

    name = str(path)
    try:
        return zarr.open_array(str(path), mode="r")
    except Exception as array_error:  # not an array: maybe an OME-Zarr group
        try:
            group = zarr.open_group(str(path), mode="r")
        except Exception:
            raise array_error from None
    multiscale, _ = ngff_multiscale(dict(group.attrs), name)
    dataset = str(multiscale["datasets"][0].get("path", ""))
    try:
        array = group[dataset]
    except KeyError:
        raise ImageLayoutError(f"{name}: its OME-Zarr level 0 {dataset!r} is missing") from None
    axes = multiscale.get("axes")
    names = (
        [str(a.get("name")) for a in axes]
        if axes is not None
        else list("tczyx"[-len(array.shape) :])  # NGFF 0.1/0.2: tczyx implied
    )
    return image_view(array, names, name)
