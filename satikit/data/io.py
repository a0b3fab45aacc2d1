"""Array I/O shared by every command: TIFF images in, TIFF images out, atomically.

On-disk layout (DESIGN.md section 3): colour images are ``(*spatial, C)`` with ``C`` last,
uint8; label images are ``(*spatial)`` uint16 or uint32. Every writer goes through a temporary
file in the destination folder followed by :func:`os.replace`, so a reader never sees a
half-written file and an interrupted run leaves no truncated image behind.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

__all__ = [
    "IMAGE_SUFFIXES",
    "atomic_path",
    "list_images",
    "read_image",
    "read_json",
    "write_image",
    "write_json",
]

#: File suffixes (lower case) that :func:`list_images` treats as images.
IMAGE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    The temporary file lives in the destination folder so that :func:`os.replace` is an atomic
    rename on the same file system. On error the temporary file is removed and ``path`` is left
    untouched.

    Args:
        path: Final destination. Its parent folder must exist.

    Yields:
        The temporary path to write to.
    """
    path = Path(path)
    # a fresh unique name (not mkstemp: that would give the final file mode 0600)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_atomic(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


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
    return _write_atomic(
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


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON (UTF-8, trailing newline), atomically.

    Args:
        path: Destination file; its folder must exist.
        data: Anything :func:`json.dumps` accepts.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return _write_atomic(path, write)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`write_json`.

    Args:
        path: A JSON file.

    Returns:
        The decoded object.
    """
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
