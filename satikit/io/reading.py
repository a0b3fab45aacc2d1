"""Open any image satikit reads, lazily: ``(*spatial[, C])``, nothing loaded yet.

:func:`open_array` opens TIFF (memory-mapped when the file is uncompressed and contiguous,
through tifffile's zarr store when it is tiled or compressed; level 0 of a pyramid; an OME-TIFF's
channel planes moved last), zarr (an array, or level 0 of an OME-Zarr image) and ``.npy`` inputs.
It sits above both the array views (:mod:`satikit.io.arrays`) and the OME readers
(:mod:`satikit.io.ome.reading`), which it dispatches to by suffix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from satikit.io.arrays import TIFF_SUFFIXES, ImageLayoutError
from satikit.io.ome.reading import image_view, open_zarr

__all__ = ["open_array"]


def open_array(path: str | os.PathLike[str]) -> Any:
    """Open an image for lazy reading: ``(*spatial[, C])`` array-like, nothing loaded yet.

    Raises:
        ValueError: missing, empty, truncated or unreadable file, or an unknown suffix (the
            message names the file).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    is_zarr = suffix == ".zarr" or path.is_dir()
    if not is_zarr and path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty")
    if not is_zarr and suffix != ".npy" and suffix not in TIFF_SUFFIXES:
        raise ValueError(
            f"{path}: unsupported image type {suffix!r}; use .tif/.tiff, .zarr or .npy"
        )
    try:
        if is_zarr:
            return open_zarr(path)
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        return _open_tiff(path)
    except ImageLayoutError:  # readable, but not an image satikit can take: says why already
        raise
    except Exception as exc:  # corrupt files raise many different errors deep inside readers
        raise ValueError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from None


def _open_tiff(path: Path) -> Any:
    import tifffile

    try:
        array = tifffile.memmap(path, mode="r")
    except ValueError:  # compressed, tiled or truncated: read through tifffile's zarr store
        import zarr

        _check_complete(path)  # level 0 of a pyramid (OME-TIFF, SVS): the full resolution
        array = zarr.open_array(tifffile.imread(path, aszarr=True, level=0), mode="r")
    with tifffile.TiffFile(path) as tif:
        axes = tif.series[0].axes if tif.is_ome else None
    if axes is None:
        return array
    return image_view(array, axes, str(path))  # e.g. CYX planes as (Y, X, C)


def _check_complete(path: Path) -> None:
    """Refuse a TIFF whose image data run past its end (a truncated copy) when it is opened,
    not when a read first reaches the missing part."""
    import tifffile

    size = path.stat().st_size
    with tifffile.TiffFile(path) as tif:
        for page in tif.series[0].pages:
            end = max((o + n for o, n in zip(page.dataoffsets, page.databytecounts)), default=0)
            if end > size:
                raise ValueError(f"truncated: its image data end at byte {end} of {size}")
