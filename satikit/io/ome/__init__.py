"""Viewer-ready images: pyramidal OME-TIFF and OME-Zarr outputs, OME inputs and metadata.

- :func:`viewer_output` / :func:`viewer_format`: write ``.ome.tif`` (tiled, sub-IFD pyramid)
  or ``.ome.zarr`` (NGFF 0.4 multiscale) out of core, resumable (:mod:`satikit.io.ome.output`);
  :func:`open_viewer_partial`: the same level 0 opened by other processes that write into it.
- :func:`read_metadata` / :class:`ImageMetadata`: physical pixel sizes and channel names of an
  OME-TIFF or OME-Zarr input, carried over to the output (:mod:`satikit.io.ome.metadata`).
- :func:`open_zarr`: a zarr array or an OME-Zarr's level 0 as ``(*spatial[, C])``
  (:mod:`satikit.io.ome.reading`; :func:`satikit.io.reading.open_array` uses it).
- :func:`downsample_yx` / :func:`level_shapes`: the pyramid rule (:mod:`satikit.io.ome.pyramid`).
"""

from __future__ import annotations

from satikit.io.ome.metadata import SPATIAL_AXES, ImageMetadata, read_metadata
from satikit.io.ome.output import (
    COMPRESSIONS,
    PyramidOptions,
    ViewerFormat,
    open_viewer_partial,
    viewer_format,
    viewer_output,
)
from satikit.io.ome.pyramid import downsample_yx, level_shapes
from satikit.io.ome.reading import AxesView, open_zarr

__all__ = [
    "COMPRESSIONS",
    "SPATIAL_AXES",
    "AxesView",
    "ImageMetadata",
    "PyramidOptions",
    "ViewerFormat",
    "downsample_yx",
    "level_shapes",
    "open_viewer_partial",
    "open_zarr",
    "read_metadata",
    "viewer_format",
    "viewer_output",
]
