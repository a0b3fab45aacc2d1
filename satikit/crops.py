"""Lazy channel-first views of large images and the random crop sampler used for training.

Images on disk are ``(*spatial, C)`` or ``(*spatial)`` (DESIGN §3). They are opened with
``tifffile.memmap`` where the file allows it (uncompressed, contiguous), so a crop reads only
its own pixels; other files are read whole and kept in a small cache.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch

from satikit.data.io import read_image
from satikit.encoding import Domain, check_finite, encode

__all__ = ["CropSampler", "EncodedView", "infer_dims", "open_image", "spatial_channels"]


def open_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Open a TIFF read-only: a memmap when possible, else the array read into memory.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an empty, truncated or otherwise unreadable file (the message names it).
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty")
    try:
        return tifffile.memmap(path, mode="r")
    except (ValueError, OSError, IndexError):
        pass
    try:
        return read_image(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # readers raise many kinds of errors on corrupt files
        raise ValueError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from None


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


def _dims_hint(shape: Sequence[int], dims: int) -> str:
    """A hint for images whose shape suggests other spatial dims than ``dims``."""
    try:
        guess = infer_dims(shape)
    except ValueError:
        return ""
    if guess == dims:
        return ""
    return f" (its shape {tuple(shape)} looks like a {guess}D image; check --dims)"


class EncodedView:
    """A ``(C, *spatial)`` float32 view of an on-disk ``(*spatial[, C])`` image, encoded on read.

    Slicing reads and encodes only the requested region, so the stitching engine can walk a
    memmapped image larger than memory.

    Args:
        raw: ``(*spatial)`` or ``(*spatial, C)`` array (numpy or memmap).
        domain: ``"x"`` or ``"y"``; see :func:`satikit.encoding.encode`.
        dims: number of spatial dims.
        encoding: domain encoding on or off.
        name: how error messages call the image.

    Raises:
        ValueError: (on read) the region holds NaN or inf.
    """

    def __init__(
        self, raw: Any, domain: Domain, dims: int, *, encoding: bool = True, name: str = "image"
    ) -> None:
        self.raw = raw
        self.domain = domain
        self.encoding = encoding
        self.name = name
        spatial, self.channels = spatial_channels(raw.shape, dims)
        self.has_channels = raw.ndim == dims + 1
        self.shape = (self.channels, *spatial)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key: Any) -> np.ndarray:
        if key is Ellipsis:
            key = (slice(None),) * self.ndim
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        channel, spatial = key[0], key[1:]
        if any(not isinstance(k, slice) for k in key):
            raise TypeError("EncodedView supports slices only")
        block = np.asarray(self.raw[spatial])
        corner = tuple(k.indices(n)[0] for k, n in zip(spatial, self.shape[1:]))
        check_finite(block, f"{self.name} (the region from {corner})")
        block = np.moveaxis(block, -1, 0) if self.has_channels else block[None]
        return encode(block[channel], self.domain, enabled=self.encoding)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self[...]
        return array if dtype is None else array.astype(dtype)


class CropSampler:
    """Random crops of a set of large images, encoded for one domain.

    Args:
        paths: image files of one domain.
        crop: crop size per spatial dim (paper IV: 256 in 2D, 64^3 in 3D).
        domain: ``"x"`` or ``"y"``.
        encoding: domain encoding on or off (paper III-C).
        cache_size: how many non-memmappable images to keep in memory.

    Raises:
        ValueError: no images, images of mixed dims/channels, or an image smaller than the crop
            (the message names the file).
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        crop: Sequence[int],
        domain: Domain,
        *,
        encoding: bool = True,
        cache_size: int = 8,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError(f"no images for domain {domain!r}")
        self.crop = tuple(int(c) for c in crop)
        self.dims = len(self.crop)
        self.domain = domain
        self.encoding = encoding
        self.cache_size = cache_size
        self._cache: OrderedDict[Path, Any] = OrderedDict()
        checked = [self._check(path) for path in self.paths]
        self.shapes = [spatial for spatial, _ in checked]
        self.channels = checked[0][1]
        self.dtype = np.dtype(self._open(self.paths[0]).dtype)
        for path, (_, channels) in zip(self.paths, checked):
            if channels != self.channels:
                raise ValueError(
                    f"{path} has {channels} channels, {self.paths[0]} has {self.channels}"
                )

    def _check(self, path: Path) -> tuple[tuple[int, ...], int]:
        spatial, channels = spatial_channels(self._open(path).shape, self.dims, name=str(path))
        if any(s < c for s, c in zip(spatial, self.crop)):
            raise ValueError(
                f"{path}: spatial size {spatial} is smaller than the crop {self.crop}"
                + _dims_hint(self._open(path).shape, self.dims)
            )
        return spatial, channels

    def _open(self, path: Path) -> Any:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        array = open_image(path)
        self._cache[path] = array
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return array

    def sample(
        self, batch_size: int, rng: np.random.Generator, *, keep: slice | None = None
    ) -> torch.Tensor:
        """Draw ``batch_size`` crops: image uniformly, then position uniformly.

        Args:
            batch_size: crops drawn from ``rng``.
            rng: the crop positions' generator.
            keep: read only these of the drawn crops (a rank's share of a global batch in
                distributed training: every rank draws the same positions, each reads its
                own); default: all.

        Returns:
            ``(len(kept), C, *crop)`` float32 tensor in the domain's encoded range.

        Raises:
            ValueError: a crop holds NaN or inf (the message names the file and position).
        """
        draws = [self._draw(rng) for _ in range(batch_size)]
        crops = [self._read(index, starts) for index, starts in draws[keep or slice(None)]]
        return torch.from_numpy(np.stack(crops))

    def _draw(self, rng: np.random.Generator) -> tuple[int, list[int]]:
        index = int(rng.integers(len(self.paths)))
        starts = [int(rng.integers(s - c + 1)) for s, c in zip(self.shapes[index], self.crop)]
        return index, starts

    def _read(self, index: int, starts: Sequence[int]) -> np.ndarray:
        """``(C, *crop)`` encoded crop of image ``index`` at ``starts``."""
        path = self.paths[index]
        view = EncodedView(
            self._open(path), self.domain, self.dims, encoding=self.encoding, name=str(path)
        )
        window = tuple(slice(s, s + c) for s, c in zip(starts, self.crop))
        return view[(slice(None), *window)]
