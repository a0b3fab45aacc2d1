"""Viewer-ready outputs (``.ome.tif``, ``.ome.zarr``), filled band by band and resumable.

:func:`viewer_output` is :func:`satikit.io.arrays.output_array` for OME outputs: it yields a
``(C, *spatial)`` sink the engine writes the full-resolution level into, and builds the
pyramid only once that level is complete. Files, next to the target (see
:func:`satikit.io.arrays.partial_files`):

- ``.NAME.partial.tif`` (OME-TIFF) or ``.NAME.partial.zarr`` (OME-Zarr): the full-resolution
  level under construction (an uncompressed memory-mapped TIFF; the OME-Zarr group itself, whose
  array ``"0"`` is level 0). Kept when the job is interrupted (Ctrl-C, a killed process), so
  ``resume=True`` continues it; removed on ordinary errors, as for other outputs.
- ``.NAME.pyramid/``: the reduced levels and the OME-TIFF being written; rebuilt from level 0
  by every run, removed at the end.

The target appears only when complete: the OME-TIFF is written under the scratch folder and
renamed; the OME-Zarr group gets its levels and metadata and is then renamed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from satikit.io.arrays import (
    ChannelLastSink,
    create_array,
    partial_files,
    reopen_array,
    reported_as,
)
from satikit.io.ome.metadata import SPATIAL_AXES, ImageMetadata

__all__ = [
    "COMPRESSIONS",
    "PyramidOptions",
    "ViewerFormat",
    "open_viewer_partial",
    "viewer_format",
    "viewer_output",
]

ViewerFormat = Literal["ome-tiff", "ome-zarr"]
#: Compressions of the viewer outputs (``none``: uncompressed). Both need no extra codec package.
COMPRESSIONS = ("zlib", "none")


def viewer_format(path: str | os.PathLike[str]) -> ViewerFormat | None:
    """``"ome-tiff"`` for ``*.ome.tif``/``*.ome.tiff``, ``"ome-zarr"`` for ``*.ome.zarr`` (any
    case), else None."""
    name = Path(path).name.lower()
    if name.endswith((".ome.tif", ".ome.tiff")):
        return "ome-tiff"
    if name.endswith(".ome.zarr"):
        return "ome-zarr"
    return None


@dataclass(frozen=True)
class PyramidOptions:
    """How viewer outputs are tiled and compressed.

    Attributes:
        tile: tile (OME-TIFF) and chunk (OME-Zarr) width and height, a multiple of 16 in
            [16, 4096]; the pyramid stops at the first level whose y and x fit in one tile.
        compression: ``"zlib"`` (lossless deflate, read by every viewer) or ``"none"``.
    """

    tile: int = 256
    compression: str = "zlib"

    def __post_init__(self) -> None:
        if not (16 <= self.tile <= 4096 and self.tile % 16 == 0):
            raise ValueError(
                f"pyramid tile must be a multiple of 16 in [16, 4096], got {self.tile}"
            )
        if self.compression not in COMPRESSIONS:
            raise ValueError(
                f"unknown compression {self.compression!r}; choose one of {COMPRESSIONS}"
            )

    @property
    def codec(self) -> str | None:
        """The compression as tifffile / the NGFF writer spell it (None: uncompressed)."""
        return None if self.compression == "none" else self.compression


class _ChannelFirstSink:
    """Write-only ``(C, *spatial)`` view applying ``transform`` to every block written."""

    def __init__(self, array: Any, transform: Callable[[np.ndarray], np.ndarray]):
        self.array, self.transform = array, transform
        self.shape = tuple(array.shape)
        self.ndim = len(self.shape)

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        self.array[key] = self.transform(np.asarray(value))

    def flush(self) -> None:
        """Nothing to do: zarr writes are on disk when the assignment returns."""

    @property
    def row_chunk(self) -> int:
        """Rows along the first spatial dim per chunk (see
        :attr:`satikit.io.arrays.ChannelLastSink.row_chunk`)."""
        return int(self.array.chunks[1])


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _scratch(path: Path) -> Path:
    return path.with_name(f".{path.name}.pyramid")


@contextmanager
def viewer_output(
    path: str | os.PathLike[str],
    shape: Sequence[int],
    dtype: Any,
    *,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    metadata: ImageMetadata | None = None,
    options: PyramidOptions | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> Iterator[Any]:
    """Create a pyramidal OME-TIFF or OME-Zarr at ``path`` from a level 0 filled in the block.

    The block yields a write-only ``(C, *spatial)`` sink (``sink[key] = block``, plus
    ``flush()``) over the full-resolution level; ``transform`` (e.g. decoding to uint8) is
    applied to every block written. When the block ends, the pyramid is built from level 0 on
    disk and the output renamed into place. Like a resumable
    :func:`satikit.io.arrays.output_array`: an interrupted block (not an :class:`Exception`) keeps
    level 0 for ``resume``; an error removes everything.

    Args:
        path: ``*.ome.tif`` / ``*.ome.tiff`` or ``*.ome.zarr``.
        shape: ``(C, *spatial)`` with 2 (``y, x``) or 3 (``z, y, x``) spatial dims.
        dtype: the stored values' numpy dtype (e.g. uint8).
        transform: applied to each written block, e.g. the domain decoding; default: none.
        metadata: pixel sizes and channel names to record (names only if one per channel).
        options: tile size and compression (default :class:`PyramidOptions`).
        overwrite: replace an existing ``path``; otherwise an existing path is an error.
        resume: reopen the level 0 of an interrupted run, contents kept (none: start anew).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: not an OME suffix, not 2 or 3 spatial dims, or a partial level 0 of another
            shape or dtype.
    """
    path = Path(path)
    kind = _check_target(path, shape, overwrite)
    channels, *spatial = (int(s) for s in shape)
    options = options or PyramidOptions()
    metadata = metadata or ImageMetadata()
    dtype = np.dtype(dtype)
    transform = transform or (lambda block: block)
    files, scratch = partial_files(path), _scratch(path)
    reopen = resume and files.data.exists()
    with reported_as(path):  # errors name path, not its hidden partial files
        if not reopen:
            files.remove()  # a stale partial of an earlier, interrupted run
        _remove(scratch)
        try:
            sink = _level0(
                kind, files.data, (channels, *spatial), dtype, options, transform, reopen, name=path
            )
            yield sink
            sink.flush()
            del sink
            _finish(kind, files.data, path, scratch, len(spatial), metadata, options)
            files.remove()
        except BaseException as exc:
            if isinstance(exc, Exception):  # interrupted: keep level 0 to resume
                files.remove()
            raise
        finally:
            _remove(scratch)


def _check_target(path: Path, shape: Sequence[int], overwrite: bool) -> str:
    """The viewer format of ``path`` (``ome-tiff`` or ``ome-zarr``), checked with ``shape``.

    Raises:
        ValueError: not an OME suffix, or not 2 or 3 spatial dims.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    kind = viewer_format(path)
    if kind is None:
        raise ValueError(f"{path.name}: viewer outputs end in .ome.tif, .ome.tiff or .ome.zarr")
    spatial = tuple(int(s) for s in shape[1:])
    if len(spatial) not in SPATIAL_AXES:
        raise ValueError(
            f"{path.name}: OME images have 2 or 3 spatial dims (y, x or z, y, x), "
            f"got {len(spatial)} ({spatial})"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    return kind


def _level0(
    kind: str,
    data: Path,
    shape: tuple[int, ...],
    dtype: np.dtype,
    options: PyramidOptions,
    transform: Callable[[np.ndarray], np.ndarray],
    reopen: bool,
    *,
    name: Path,
) -> Any:
    """The ``(C, *spatial)`` sink over the full-resolution level at ``data`` (a partial
    OME-TIFF's plain TIFF, or an OME-Zarr's level 0), created or reopened; messages call it
    the partial output of ``name``."""
    channels, *spatial = shape
    if kind == "ome-tiff":
        stored = (*spatial, channels) if channels > 1 else tuple(spatial)
        array = (
            reopen_array(data, ".tif", stored, dtype, name=name)
            if reopen
            else create_array(data, ".tif", stored, dtype, None)
        )
        return ChannelLastSink(array, channel_last=channels > 1, transform=transform)
    from satikit.io.ome import ngff

    array = (
        ngff.reopen_level0(data, shape, dtype, name=name)
        if reopen
        else ngff.create_level0(data, shape, dtype, tile=options.tile, compression=options.codec)
    )
    return _ChannelFirstSink(array, transform)


def open_viewer_partial(
    path: str | os.PathLike[str],
    shape: Sequence[int],
    dtype: Any,
    *,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Any:
    """The sink :func:`viewer_output` yields, over the level 0 another process created at
    ``path`` and will turn into the pyramid: how other processes write into it.

    Args:
        path / shape / dtype / transform: as for :func:`viewer_output`.

    Raises:
        ValueError: not an OME suffix, no partial level 0, or one of another shape or dtype.
    """
    path = Path(path)
    kind = viewer_format(path)
    if kind is None:
        raise ValueError(f"{path.name}: viewer outputs end in .ome.tif, .ome.tiff or .ome.zarr")
    data = partial_files(path).data
    if not data.exists():
        raise ValueError(f"{path}: no partial output to write into (it was removed)")
    channels, *spatial = (int(s) for s in shape)
    transform = transform or (lambda block: block)
    if kind == "ome-tiff":
        stored = (*spatial, channels) if channels > 1 else tuple(spatial)
        array = reopen_array(data, ".tif", stored, np.dtype(dtype), name=path)
        return ChannelLastSink(array, channel_last=channels > 1, transform=transform)
    from satikit.io.ome import ngff

    level0 = ngff.reopen_level0(data, (channels, *spatial), dtype, name=path)
    return _ChannelFirstSink(level0, transform)


def _image_name(path: Path) -> str:
    name = path.name
    return (
        name[: -len(".ome" + path.suffix)]
        if name.lower().endswith(".ome" + path.suffix.lower())
        else path.stem
    )


def _finish(
    kind: ViewerFormat,
    level0: Path,
    path: Path,
    scratch: Path,
    spatial: int,
    metadata: ImageMetadata,
    options: PyramidOptions,
) -> None:
    """Build the pyramid from the complete level 0 and move the output into place."""
    if kind == "ome-tiff":
        import tifffile

        from satikit.io.ome.tiff import write_ome_tiff

        scratch.mkdir()
        written = scratch / "output.ome.tif"
        write_ome_tiff(
            tifffile.memmap(level0, mode="r"),
            written,
            spatial=spatial,
            scratch=scratch,
            metadata=metadata,
            tile=options.tile,
            compression=options.codec,
        )
    else:
        from satikit.io.ome.ngff import build_pyramid

        build_pyramid(
            level0,
            metadata=metadata,
            tile=options.tile,
            compression=options.codec,
            name=_image_name(path),
        )
        written = level0
    _remove(path)
    os.replace(written, path)
