"""Lazy array views and on-disk arrays for out-of-core translation.

The engine (:func:`satikit.stitching.stitch`) reads ``(C, *spatial)`` float tiles from anything
sliceable and writes rows of its result into anything that supports slice assignment. Images on
disk are ``(*spatial, C)`` or ``(*spatial)``, uint8/uint16/float. The views here bridge the two
without loading the image: :class:`ChannelFirst` reorders axes and encodes values on read,
:class:`ChannelLastSink` reorders axes and decodes values on write.

Arrays come from :func:`satikit.io.reading.open_array` (TIFF, zarr, OME, ``.npy``), whose
shapes :func:`spatial_channels` splits into spatial dims and channels;
:class:`NamedReads` names the file in errors that only a read finds (a damaged chunk).
:func:`output_array` creates TIFF (BigTIFF when needed), zarr or ``.npy`` outputs under a
temporary name and renames them only once complete; a resumable output keeps that partial file
(see :func:`partial_files`) when interrupted, and can reopen it to continue.
"""

from __future__ import annotations

import mmap
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ChannelFirst",
    "ChannelLastSink",
    "ImageLayoutError",
    "NamedReads",
    "PartialFiles",
    "create_array",
    "damaged_partial",
    "infer_dims",
    "open_partial",
    "output_array",
    "partial_files",
    "release_pages",
    "reopen_array",
    "reported_as",
    "spatial_channels",
]

Transform = Callable[[np.ndarray], np.ndarray]
TIFF_SUFFIXES = (".tif", ".tiff")
_UNSUPPORTED = "unsupported output type {suffix!r}; use .tif/.tiff, .zarr or .npy"


def release_pages(array: Any) -> None:
    """Drop a memory-mapped array's pages from this process's resident set.

    Pages of a file mapping that were read or written stay in the process's RSS until unmapped,
    so walking a memory-mapped image tile by tile would grow RSS to the image size. The data
    stays in the file and the kernel's page cache (shared file mappings lose nothing); a later
    access maps it back. No-op for arrays that are not memory-mapped.
    """
    mapping = getattr(array, "_mmap", None)
    if isinstance(mapping, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


class ImageLayoutError(ValueError):
    """A readable image laid out in a way satikit cannot translate (a time series, no y/x axes,
    an OME-Zarr group without its levels); the message names the file and the problem."""


def infer_dims(shape: Sequence[int]) -> int:
    """Guess the number of spatial dims of an on-disk image shape.

    ``(H, W)`` -> 2; ``(H, W, C)`` with ``C`` in {1, 3, 4} -> 2; ``(D, H, W)`` otherwise -> 3;
    ``(D, H, W, C)`` -> 3. Pass the dims explicitly where this guess is wrong.
    """
    if len(shape) == 2:
        return 2
    if len(shape) == 3:
        return 2 if shape[-1] in (1, 3, 4) else 3
    if len(shape) == 4:
        return 3
    raise ValueError(f"cannot infer spatial dims of an image of shape {tuple(shape)}")


def spatial_channels(
    shape: Sequence[int], dims: int, *, name: str = "image"
) -> tuple[tuple[int, ...], int]:
    """Split an on-disk shape into ``(spatial, channels)`` for ``dims`` spatial dims.

    Raises:
        ValueError: if the shape has neither ``dims`` nor ``dims + 1`` axes.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == dims:
        return shape, 1
    if len(shape) == dims + 1:
        return shape[:-1], shape[-1]
    raise ValueError(
        f"{name} has shape {shape}; expected {dims} spatial axes, optionally followed by channels"
    )


def _normalise_key(key: Any, ndim: int) -> tuple:
    if key is Ellipsis:
        return (slice(None),) * ndim
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - len(key) + 1) + key[i + 1 :]
    return key + (slice(None),) * (ndim - len(key))


class ChannelFirst:
    """Read-only ``(C, *spatial)`` view of a ``(*spatial, C)`` or ``(*spatial)`` array.

    Args:
        array: the stored array (numpy, memmap, zarr, ...).
        channel_last: True if the last axis of ``array`` holds channels; False for grey images
            (then ``C = 1``).
        transform: applied to every block read (e.g. domain encoding); default: float32 cast.
    """

    def __init__(self, array: Any, *, channel_last: bool, transform: Transform | None = None):
        self.array = array
        self.channel_last = channel_last
        self.transform = transform or (lambda block: np.asarray(block, dtype=np.float32))
        shape = tuple(array.shape)
        self.shape = (shape[-1], *shape[:-1]) if channel_last else (1, *shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key: Any) -> np.ndarray:
        channel, *spatial = _normalise_key(key, self.ndim)
        if self.channel_last:
            block = np.asarray(self.array[(*spatial, channel)])
            block = np.moveaxis(block, -1, 0) if block.ndim == len(spatial) + 1 else block
        else:
            block = np.asarray(self.array[tuple(spatial)])[None][channel]
        result = np.array(self.transform(block), copy=True)  # own the data before releasing
        release_pages(self.array)
        return result


class ChannelLastSink:
    """Write-only ``(C, *spatial)`` view onto a ``(*spatial, C)`` (or ``(*spatial)``) array.

    Args:
        array: the destination array (numpy, memmap, zarr, ...).
        channel_last: True if ``array`` has a trailing channel axis; False for grey output.
        transform: applied to every block written (e.g. decoding to uint8).
    """

    def __init__(self, array: Any, *, channel_last: bool, transform: Transform | None = None):
        self.array = array
        self.channel_last = channel_last
        self.transform = transform or (lambda block: block)
        shape = tuple(array.shape)
        self.shape = (shape[-1], *shape[:-1]) if channel_last else (1, *shape)
        self.ndim = len(self.shape)

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        channel, *spatial = _normalise_key(key, self.ndim)
        block = self.transform(np.asarray(value))
        if self.channel_last:
            self.array[(*spatial, channel)] = np.moveaxis(block, 0, -1)
        else:
            if block.shape[0] != 1:
                raise ValueError(f"grey output takes 1 channel, got {block.shape[0]}")
            self.array[tuple(spatial)] = block[0]
        release_pages(self.array)

    def flush(self) -> None:
        """Write the array's pending changes to disk (memory maps); no-op for others."""
        flush = getattr(self.array, "flush", None)
        if callable(flush):
            flush()

    @property
    def row_chunk(self) -> int:
        """Rows along the first spatial dim per storage chunk (1 for memory maps): processes
        that write disjoint row ranges aligned to it never write into one chunk."""
        chunks = getattr(self.array, "chunks", None)
        return int(chunks[0]) if chunks else 1


class NamedReads:
    """A lazily read image whose read errors (a damaged chunk, found only when a read reaches
    it) become one ``ValueError`` naming the file.

    Args:
        array: the opened array, e.g. from :func:`open_array`.
        name: how the messages call it (usually the path).
    """

    def __init__(self, array: Any, name: str) -> None:
        self.array, self.name = array, name
        self.shape, self.dtype = tuple(array.shape), array.dtype
        self._mmap = getattr(array, "_mmap", None)  # so release_pages sees through the wrapper

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self.array[key])
        except Exception as exc:  # readers raise many kinds of errors on damaged files
            raise ValueError(f"{self.name}: cannot read image ({exc})") from None


@dataclass(frozen=True)
class PartialFiles:
    """The files of an unfinished resumable output (all hidden, next to the target).

    Attributes:
        data: the partial array, ``.NAME.partial.SUFFIX``.
        settings: what the caller records about the job, ``.NAME.resume.json``.
        state: the engine's resume state, ``.NAME.resume.safetensors``.
    """

    data: Path
    settings: Path
    state: Path

    @property
    def shards(self) -> Path:
        """The resume states of the processes of a ``torchrun`` translation,
        ``.NAME.resume.shards/`` (see :mod:`satikit.translation.distributed`)."""
        return self.state.with_name(f"{self.state.stem}.shards")

    @property
    def norm_state(self) -> Path:
        """The state of an interrupted ``--norm kernel`` caching pass,
        ``.NAME.resume.norm.safetensors`` (see
        :func:`satikit.stitching.statistics.statistics_state_path`)."""
        return self.state.with_name(f"{self.state.stem}.norm{self.state.suffix}")

    def remove(self) -> None:
        """Delete the partial array and its sidecar files, where they exist."""
        _remove(self.data)
        self.settings.unlink(missing_ok=True)
        self.state.unlink(missing_ok=True)
        self.norm_state.unlink(missing_ok=True)
        _remove(self.shards)


def partial_files(path: str | os.PathLike[str]) -> PartialFiles:
    """The deterministic partial files of a resumable output at ``path``."""
    path = Path(path)
    return PartialFiles(
        data=path.with_name(f".{path.name}.partial{path.suffix.lower()}"),
        settings=path.with_name(f".{path.name}.resume.json"),
        state=path.with_name(f".{path.name}.resume.safetensors"),
    )


@contextmanager
def reported_as(path: str | os.PathLike[str]) -> Iterator[None]:
    """Report the OS errors (a full disk, a read-only folder) about the hidden files of the
    output at ``path`` (its partial files ``.NAME.*``, their temporary files) as errors about
    ``path``: a user never typed those names."""
    path = Path(path)
    prefix = f".{path.name}."
    try:
        yield
    except OSError as exc:
        names = [os.fsdecode(n) for n in (exc.filename, exc.filename2) if n is not None]
        hidden = any(p.startswith(prefix) for n in names for p in Path(n).parts)
        if exc.errno is None or not hidden:
            raise
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None


@contextmanager
def output_array(
    path: str | os.PathLike[str],
    shape: Sequence[int],
    dtype: Any,
    *,
    overwrite: bool = False,
    chunks: Sequence[int] | None = None,
    resumable: bool = False,
    resume: bool = False,
) -> Iterator[Any]:
    """Create an on-disk ``(*spatial[, C])`` array under a temporary name; rename when done.

    The block yields the writable array. If it raises, the temporary file is removed and
    ``path`` is untouched, so a finished output is never partial.

    A ``resumable`` output lives in :func:`partial_files` ``(path).data`` instead of a random
    name. It is kept, with its sidecar files, when the block is interrupted (an exception that is
    not an :class:`Exception`, e.g. :class:`KeyboardInterrupt`; or a killed process); ordinary
    errors still remove them. A stale partial is replaced unless ``resume``. On success the
    sidecars are deleted.

    Args:
        path: ``.tif``/``.tiff`` (uncompressed, BigTIFF above 2 GiB), ``.zarr`` or ``.npy``.
        shape: ``(*spatial)`` or ``(*spatial, C)``.
        dtype: numpy dtype of the stored values.
        overwrite: replace an existing ``path``; otherwise an existing path is an error.
        chunks: zarr chunk shape (default: 256 per spatial dim, all channels).
        resumable: use the deterministic partial name and keep it when interrupted.
        resume: (implies ``resumable``) reopen an existing partial for writing, contents kept;
            without one, start a new partial.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: unknown suffix, or a partial to resume of another shape or dtype.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    suffix = path.suffix.lower()
    if suffix not in (*TIFF_SUFFIXES, ".zarr", ".npy"):
        raise ValueError(f"{path}: {_UNSUPPORTED.format(suffix=suffix)}")
    with reported_as(path):  # errors name path, not its hidden partial files
        resumable = resumable or resume
        files = partial_files(path) if resumable else None
        tmp = (
            files.data
            if files
            else path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial{suffix}")
        )
        shape = tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        if files and not (resume and tmp.exists()):
            files.remove()  # a stale partial of an earlier, interrupted run
        cleanup = files.remove if files else lambda: _remove(tmp)
        try:
            if resume and tmp.exists():
                array = reopen_array(tmp, suffix, shape, dtype, name=path)
            else:
                array = create_array(tmp, suffix, shape, dtype, chunks)
            yield array
            if hasattr(array, "flush"):
                array.flush()
            del array
            if path.exists():
                _remove(path)
            os.replace(tmp, path)
            cleanup()
        except BaseException as exc:
            if not resumable or isinstance(exc, Exception):  # interrupted: keep it to resume
                cleanup()
            raise


def open_partial(path: str | os.PathLike[str], shape: Sequence[int], dtype: Any) -> Any:
    """The partial array of a resumable output at ``path`` (:func:`output_array`), opened for
    writing with its contents kept: how other processes write into an output that one
    process created and will rename.

    Raises:
        ValueError: no readable partial, or one of another shape or dtype.
    """
    path = Path(path)
    data = partial_files(path).data
    if not data.exists():
        raise ValueError(f"{path}: no partial output to write into (it was removed)")
    shape = tuple(int(s) for s in shape)
    return reopen_array(data, path.suffix.lower(), shape, np.dtype(dtype), name=path)


def _remove(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def reopen_array(
    tmp: Path, suffix: str, shape: tuple[int, ...], dtype: np.dtype, *, name: Path
) -> Any:
    """Open a partial output for writing, keeping its contents; it must match shape and dtype.
    Messages call it the partial output of ``name`` (the target)."""
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            array = tifffile.memmap(tmp, mode="r+")
        elif suffix == ".zarr":
            import zarr

            array = zarr.open_array(str(tmp), mode="r+")
        else:
            array = np.lib.format.open_memmap(tmp, mode="r+")
    except Exception as exc:  # a partial damaged by the crash: many reader errors
        raise ValueError(damaged_partial(name, exc)) from None
    if tuple(array.shape) != shape or np.dtype(array.dtype) != dtype:
        raise ValueError(
            f"{name}: its partial output is {tuple(array.shape)} {np.dtype(array.dtype)}, "
            f"expected {shape} {dtype}; translate again without resuming"
        )
    return array


def damaged_partial(name: str | os.PathLike[str], exc: Exception) -> str:
    """The message for the unreadable partial output of ``name`` (its reader's error type
    only: its text names the hidden file)."""
    return (
        f"{name}: the partial output of the interrupted translation cannot be read "
        f"({type(exc).__name__}); translate again without resuming"
    )


def create_array(tmp: Path, suffix: str, shape: tuple[int, ...], dtype: np.dtype, chunks) -> Any:
    """Create a new output array of ``shape`` / ``dtype`` at ``tmp`` (TIFF memory map, zarr with
    ``chunks``, or ``.npy`` memory map, by ``suffix``)."""
    if suffix in TIFF_SUFFIXES:
        import tifffile

        rgb = len(shape) >= 3 and shape[-1] == 3 and dtype == np.uint8
        nbytes = int(np.prod(shape)) * dtype.itemsize
        return tifffile.memmap(
            tmp,
            shape=shape,
            dtype=dtype,
            photometric="rgb" if rgb else "minisblack",
            bigtiff=nbytes > 2**31 - 2**25,
        )
    if suffix == ".zarr":
        import zarr

        if chunks is None:
            chunks = tuple(min(256, s) for s in shape)
        return zarr.open_array(str(tmp), mode="w", shape=shape, dtype=dtype, chunks=tuple(chunks))
    if suffix == ".npy":
        return np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    raise ValueError(_UNSUPPORTED.format(suffix=suffix))
