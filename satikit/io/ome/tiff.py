"""Tiled pyramidal OME-TIFF, written with tifffile from a full-resolution level on disk.

Layout (what QuPath, OpenSlide-style readers, Bio-Formats and napari's tifffile readers expect):
one OME image whose full-resolution pages are tiled (``tile`` x ``tile``), each page carrying
its reduced levels as sub-IFDs (``SubIFDs`` tag, ``NewSubfileType`` 1). Pages:

- uint8 with 3 channels: interleaved RGB, axes ``YXS`` (``ZYXS`` for volumes);
- one channel: grey, ``YX`` / ``ZYX``;
- anything else: one grey page per channel (and z), axes ``CYX`` / ``CZYX``, with the channel
  names in the OME-XML.

Physical pixel sizes go to the OME-XML (``PhysicalSizeX`` ... with their units) and, for y and
x, to the TIFF resolution tags (pixels per centimetre) of every level.

Memory: tiles are cut from memory maps (their pages dropped after each row of tiles) and handed
to tifffile as an iterator, with tifffile's compression buffer capped at :data:`BUFFER_BYTES`;
each reduced level is computed into a temporary ``.npy`` memory map from the one before
(:func:`satikit.io.ome.pyramid.build_level`), which is removed once the next is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from satikit.io.arrays import release_pages
from satikit.io.ome.metadata import SPATIAL_AXES, ImageMetadata, meters, ome_symbol
from satikit.io.ome.pyramid import build_level, level_shapes

__all__ = ["BUFFER_BYTES", "write_ome_tiff"]

#: At most this many bytes of tiles wait for compression at once (tifffile's default is 512 MiB).
BUFFER_BYTES = 32 * 2**20


def _layout(shape: Sequence[int], dtype: np.dtype, spatial: int) -> tuple[str, str]:
    """``(axes, photometric)`` of a channel-last ``(*spatial[, C])`` level."""
    lead = "Z" if spatial == 3 else ""
    if len(shape) == spatial:
        return lead + "YX", "minisblack"
    if shape[-1] == 3 and dtype == np.uint8:
        return lead + "YXS", "rgb"
    return "C" + lead + "YX", "minisblack"


def _tiles(level: Any, spatial: int, planar: bool, tile: int) -> Iterator[np.ndarray]:
    """The tiles of a channel-last level in the order of the TIFF pages: channel (planar
    only), then z, then rows and columns of tiles; edge tiles are cut short (tifffile pads)."""
    height, width = level.shape[spatial - 2], level.shape[spatial - 1]
    channels = range(level.shape[-1]) if planar else [None]
    planes = range(level.shape[0]) if spatial == 3 else [None]
    for channel in channels:
        for plane in planes:
            for y in range(0, height, tile):
                for x in range(0, width, tile):
                    key: tuple[Any, ...] = (slice(y, y + tile), slice(x, x + tile))
                    key = ((plane,) if plane is not None else ()) + key
                    key += (channel,) if channel is not None else ()
                    yield np.array(level[key])  # a copy: the page can go
                release_pages(level)


def _ome_dict(axes: str, metadata: ImageMetadata, spatial: int, channels: int) -> dict[str, Any]:
    """tifffile's ``metadata`` for the OME-XML: axes, physical sizes, channel names."""
    result: dict[str, Any] = {"axes": axes}
    for axis in SPATIAL_AXES[spatial]:
        symbol = ome_symbol(metadata.unit(axis))
        if axis in metadata.pixel_sizes and symbol is not None:
            result[f"PhysicalSize{axis.upper()}"] = metadata.size(axis)
            result[f"PhysicalSize{axis.upper()}Unit"] = symbol
    names = metadata.for_channels(channels).channel_names
    if axes.startswith("C") and names is not None:
        result["Channel"] = {"Name": list(names)}
    return result


def _resolution(metadata: ImageMetadata, factor: int) -> dict[str, Any]:
    """TIFF resolution tags (pixels per cm) of a level ``factor`` times coarser; {} if the y/x
    pixel sizes are unknown."""
    sizes = [meters(metadata.size(a), metadata.unit(a)) for a in ("x", "y")]
    if any(s is None or a not in metadata.pixel_sizes for s, a in zip(sizes, ("x", "y"))):
        return {}
    x, y = (0.01 / (s * factor) for s in sizes)  # type: ignore[operator]
    return {"resolution": (x, y), "resolutionunit": "CENTIMETER"}


def write_ome_tiff(
    level0: Any,
    path: str | os.PathLike[str],
    *,
    spatial: int,
    scratch: str | os.PathLike[str],
    metadata: ImageMetadata | None = None,
    tile: int = 256,
    compression: str | None = "zlib",
) -> Path:
    """Write a tiled pyramidal OME-TIFF of ``level0`` to ``path`` (replaced if it exists).

    Args:
        level0: the full-resolution image, channel last: ``(*spatial)`` grey or
            ``(*spatial, C)``, any TIFF dtype; a memory map or any sliceable array.
        path: the file to write (not renamed into place: callers write to a temporary name).
        spatial: number of spatial dims, 2 (``(Y, X)``) or 3 (``(Z, Y, X)``, levels halve y and x
            only).
        scratch: an existing folder for the reduced levels' temporary memory maps.
        metadata: pixel sizes and channel names to record.
        tile: tile width and height, a multiple of 16; levels stop once y and x fit in a tile.
        compression: ``"zlib"`` (deflate), None, or another codec tifffile knows.

    Returns:
        ``path``.
    """
    import tifffile

    metadata = metadata or ImageMetadata()
    dtype = np.dtype(level0.dtype)
    shape = tuple(int(s) for s in level0.shape)
    axes, photometric = _layout(shape, dtype, spatial)
    planar = axes.startswith("C")
    channels = shape[-1] if len(shape) > spatial else 1
    shapes = level_shapes(shape, spatial - 2, tile)
    tiff_shape = lambda s: (s[-1], *s[:-1]) if planar else s  # noqa: E731
    total = sum(int(np.prod(s)) for s in shapes) * dtype.itemsize
    options = dict(
        photometric=photometric,
        tile=(tile, tile),
        compression=compression,
        dtype=dtype,
        buffersize=BUFFER_BYTES,
    )
    previous: Any = level0
    with tifffile.TiffWriter(path, bigtiff=total > 2**31, ome=True) as tif:
        tif.write(
            _tiles(level0, spatial, planar, tile),
            shape=tiff_shape(shapes[0]),
            subifds=len(shapes) - 1,
            metadata=_ome_dict(axes, metadata, spatial, channels),
            **_resolution(metadata, 1),
            **options,  # type: ignore[arg-type]
        )
        for k, level_shape in enumerate(shapes[1:], start=1):
            file = Path(scratch) / f"level{k}.npy"
            level = np.lib.format.open_memmap(file, mode="w+", dtype=dtype, shape=level_shape)
            build_level(previous, level, spatial - 2, tile)
            level.flush()
            tif.write(
                _tiles(level, spatial, planar, tile),
                shape=tiff_shape(level_shape),
                subfiletype=1,
                metadata=None,
                **_resolution(metadata, 2**k),
                **options,  # type: ignore[arg-type]
            )
            if k > 1:
                old = Path(previous.filename)
                del previous
                old.unlink()
            previous = level
    return Path(path)
