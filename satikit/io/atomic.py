"""Writing files so that a reader never sees a half-written one: every writer goes through a
temporary file in the destination folder, then one :func:`os.replace` (an atomic rename on
the same file system). An interrupted write leaves the previous file, or none, never a
truncated one."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "fsync_path", "read_json", "write_atomic", "write_json"]


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


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary path and move the result onto ``path`` (see
    :func:`atomic_path`); returns ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


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

    return write_atomic(path, write)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file (e.g. one written by :func:`write_json`).

    Args:
        path: A JSON file.

    Returns:
        The decoded object.
    """
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file (or a folder's entries) to disk; folders are skipped where unsupported."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except (IsADirectoryError, PermissionError):  # folders on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)
