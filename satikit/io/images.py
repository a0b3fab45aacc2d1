"""Image I/O shared by every command: TIFF images in, TIFF images out, atomically.

On-disk layout: colour images are ``(*spatial, C)`` with ``C`` last,
uint8; label images are ``(*spatial)`` uint16 or uint32. Images are written through
:func:`satikit.io.atomic.write_atomic`, so a reader never sees a half-written file and an
interrupted run leaves no truncated image behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

from satikit.io.atomic import write_atomic

__all__ = ["IMAGE_SUFFIXES", "list_images", "read_image", "write_image"]

#: File suffixes (lower case) that :func:`list_images` treats as images.
IMAGE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")


def write_image(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write an array as an uncompressed TIFF, atomically.

    The last axis of a uint8 array with 3 entries is written as RGB samples; everything else is
    written as grey / label data. The array's shape is stored in the TIFF description, so
    :func:`read_image` returns exactly the same shape and dtype (N-D volumes included). The
    output is byte-identical for identical arrays (no time stamp is written).

    Args:
        path: Destination ``.tif`` / ``.tiff`` file; its folder must exist.
        array: ``(*spatial, C)`` colour image or ``(*spatial)`` grey / label image, any
            integer or float dtype that TIFF supports.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: If ``array`` is empty or ``path`` has no TIFF suffix.
    """
    array = np.asarray(array)
    if array.size == 0:
        raise ValueError(f"write_image: refusing to write an empty array of shape {array.shape}")
    if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"write_image: {str(path)!r} must end in one of {IMAGE_SUFFIXES}")
    rgb = array.ndim >= 3 and array.shape[-1] == 3 and array.dtype == np.uint8
    photometric = "rgb" if rgb else "minisblack"
    return write_atomic(
        path,
        lambda tmp: tifffile.imwrite(tmp, array, photometric=photometric, metadata={}),
    )


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a TIFF image written by :func:`write_image` (or any TIFF tifffile reads).

    Args:
        path: A ``.tif`` / ``.tiff`` file.

    Returns:
        The array as stored: ``(*spatial, C)`` for colour images, ``(*spatial)`` for grey /
        label images, in the file's dtype.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_image: no such file: {str(path)!r}")
    return tifffile.imread(path)


def list_images(directory: str | os.PathLike[str]) -> list[Path]:
    """List the TIFF images of a folder (not recursive), sorted by file name.

    Hidden files (e.g. the temporary files of an interrupted atomic write) are skipped.

    Args:
        directory: Folder to list.

    Returns:
        Sorted paths whose suffix is ``.tif`` or ``.tiff`` (any case).

    Raises:
        NotADirectoryError: If ``directory`` is not an existing folder.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"list_images: not a folder: {str(directory)!r}")
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
