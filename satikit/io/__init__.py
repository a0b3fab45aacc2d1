"""Images on disk, in and out: the path data takes before and after the engine.

- :mod:`satikit.io.reading`: :func:`open_array` opens any input lazily (TIFF, OME-TIFF, zarr,
  OME-Zarr, ``.npy``).
- :mod:`satikit.io.arrays`: the views between on-disk ``(*spatial[, C])`` arrays and the
  engine's ``(C, *spatial)`` (:class:`ChannelFirst`, :class:`ChannelLastSink`), outputs written
  under a temporary name and renamed when complete (:func:`output_array`), the partial files of
  a resumable output, and the shape helpers (:func:`spatial_channels`, :func:`infer_dims`).
- :mod:`satikit.io.ome`: viewer-ready pyramids (OME-TIFF, OME-Zarr), OME inputs and metadata.
- :mod:`satikit.io.input_range`: the values of input images and ``--input-range``.
- :mod:`satikit.io.images`: whole TIFF images in and out (data sets, evaluation).
- :mod:`satikit.io.atomic`: files written atomically (JSON, checkpoints).

This package re-exports the arrays API and :func:`open_array` (what ``satikit.arrays`` held).
"""

from __future__ import annotations

from satikit.io.arrays import (
    TIFF_SUFFIXES,
    ChannelFirst,
    ChannelLastSink,
    ImageLayoutError,
    NamedReads,
    PartialFiles,
    Transform,
    create_array,
    damaged_partial,
    infer_dims,
    open_partial,
    output_array,
    partial_files,
    release_pages,
    reopen_array,
    reported_as,
    spatial_channels,
)
from satikit.io.reading import open_array

__all__ = [
    "TIFF_SUFFIXES",
    "ChannelFirst",
    "ChannelLastSink",
    "ImageLayoutError",
    "NamedReads",
    "PartialFiles",
    "Transform",
    "create_array",
    "damaged_partial",
    "infer_dims",
    "open_array",
    "open_partial",
    "output_array",
    "partial_files",
    "release_pages",
    "reopen_array",
    "reported_as",
    "spatial_channels",
]
