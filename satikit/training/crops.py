"""The random crop sampler used for training.

Images on disk are ``(*spatial, C)`` or ``(*spatial)`` (see :mod:`satikit.io.images`). They
are opened lazily with :func:`satikit.io.reading.open_array` (a memmap where the file allows
it, else tifffile's zarr store), so a crop reads only its own pixels; open images are kept in a
small cache. The shape helpers (:func:`~satikit.io.arrays.spatial_channels`,
:func:`~satikit.io.arrays.infer_dims`) are :mod:`satikit.io.arrays`'; re-exported here.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from satikit.encoding import Domain, check_finite, dtype_range, encode
from satikit.io.arrays import ChannelFirst, NamedReads, infer_dims, spatial_channels
from satikit.io.input_range import format_range, sampled_range
from satikit.io.reading import open_array

__all__ = ["CropSampler", "infer_dims", "spatial_channels"]


def _dims_hint(shape: Sequence[int], dims: int) -> str:
    """A hint for images whose shape suggests other spatial dims than ``dims``."""
    try:
        guess = infer_dims(shape)
    except ValueError:
        return ""
    if guess == dims:
        return ""
    return f" (its shape {tuple(shape)} looks like a {guess}D image; check --dims)"


class CropSampler:
    """Random crops of a set of large images, encoded for one domain.

    Args:
        paths: image files of one domain.
        crop: crop size per spatial dim (paper IV: 256 in 2D, 64^3 in 3D).
        domain: ``"x"`` or ``"y"``.
        encoding: domain encoding on or off (paper III-C).
        cache_size: how many opened images to keep open.

    Raises:
        ValueError: no images, images of mixed dims/channels/dtypes, an image smaller than the
            crop, or values the encoding cannot read (a dtype other than uint8, uint16 or
            float; floats outside [0, 1]; NaN or inf, checked on a sample); the message names
            the file.
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
            self._check_values(path)

    def _check_values(self, path: Path) -> None:
        """Refuse images whose values cannot be read the way the run will record (one dtype
        per domain: uint8, uint16, or floats within [0, 1], checked on a sample; see
        :mod:`satikit.io.input_range`)."""
        array, domain = self._open(path), self.domain.upper()
        dtype = np.dtype(array.dtype)
        if dtype != self.dtype:
            raise ValueError(
                f"{path} is {dtype}, {self.paths[0]} is {self.dtype}: the {domain} images must "
                "share one dtype, so that one value range reads them all (convert them)"
            )
        try:
            dtype_range(dtype)
        except ValueError:
            raise ValueError(
                f"{path}: {dtype} images cannot be trained on; use uint8, uint16 or float "
                "images in [0, 1]"
            ) from None
        seen = sampled_range(NamedReads(array, str(path)), self.dims, str(path))
        if dtype.kind == "f" and seen is not None and not (0.0 <= seen[0] and seen[1] <= 1.0):
            raise ValueError(
                f"{path}: {dtype} values {format_range(*seen)} (sampled), outside [0, 1], where "
                f"float images are read (1.0 is white); scale the {domain} images to [0, 1], or "
                "store them as uint8 or uint16"
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
        array = open_array(path)
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
        path, array = self.paths[index], self._open(self.paths[index])
        where = f"{path} (the region from {tuple(starts)})"
        view = ChannelFirst(
            NamedReads(array, str(path)),
            channel_last=len(array.shape) == self.dims + 1,
            transform=lambda block: encode(
                check_finite(block, where), self.domain, enabled=self.encoding
            ),
        )
        window = tuple(slice(s, s + c) for s, c in zip(starts, self.crop))
        return view[(slice(None), *window)]
