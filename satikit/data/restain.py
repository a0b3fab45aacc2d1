"""A real-image translation task with a known truth: a slide and a fixed re-staining of it.

X is a real RGB image; Y is a deterministic re-staining of it (:func:`restain`): colour
deconvolution into haematoxylin, eosin and DAB with :func:`skimage.color.separate_stains`, then
recombination with other stain vectors (:data:`STAIN_MAPS`). The map works pixel by pixel, so
the true Y of any part of the image is known, and a model trained unpaired on some parts can be
scored on others.

Sources (:func:`load_source`): images that ship inside scikit-image's wheel, no download at run
time (:data:`BUNDLED`), or any 8-bit RGB image file.

Split (:func:`split_geometry`), on the source (or its ``box``) of ``H x W`` px: the bottom
``test_fraction`` of the rows is the test part, kept apart; of the rows above it, the left half
gives the X training crops and the right half the Y training crops, so X and Y never come from
the same place (unpaired). A mosaic of the test part, mirrored ``mosaic x mosaic`` times
(:func:`mirror_mosaic`: copies alternate in orientation, so the mosaic has no edges of its own),
is the larger test image.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import skimage
import skimage.data

__all__ = [
    "BUNDLED",
    "STAIN_MAPS",
    "BundledImage",
    "Source",
    "SplitGeometry",
    "load_source",
    "mirror_mosaic",
    "restain",
    "split_geometry",
    "stain_matrices",
]


@dataclass(frozen=True)
class BundledImage:
    """An image of :mod:`skimage.data` that ships inside scikit-image's wheel.

    Attributes:
        loader: Name of the :mod:`skimage.data` function.
        file: Its file in scikit-image's ``data`` folder (read directly).
        box: Default ``(top, left, height, width)`` part to use (None: all of it).
        origin: Where the image comes from (scikit-image's documentation of it).
        licence: Its licence, as scikit-image states it.
    """

    loader: str
    file: str
    box: tuple[int, int, int, int] | None
    origin: str
    licence: str


#: Bundled sources by name; the first is the default.
BUNDLED: dict[str, BundledImage] = {
    "immunohistochemistry": BundledImage(
        "immunohistochemistry",
        "ihc.png",
        None,
        "colonic glands, IHC (FHL2 revealed with DAB) with haematoxylin counterstain, 512 x 512; "
        "acquired at the Center for Microscopy And Molecular Imaging (CMMI)",
        "no known copyright restrictions",
    ),
    "retina": BundledImage(
        "retina",
        "retina.jpg",
        (224, 224, 960, 960),  # the largest centred square inside the round fundus
        "fundus photograph of a normal left eye, 1411 x 1411 (Mikael Haeggstroem, Wikimedia "
        "Commons)",
        "CC0 1.0 Universal Public Domain Dedication",
    ),
}

#: Stain maps by name: the :mod:`skimage.color` matrix that separates the stains, the one whose
#: stain vectors recombine them, and the order its rows (stain vectors) are taken in; see
#: :func:`stain_matrices`.
STAIN_MAPS: dict[str, tuple[str, str, tuple[int, int, int]]] = {
    # haematoxylin stays; DAB (brown) is drawn with eosin's vector (pink) and eosin with DAB's:
    # an H-DAB immunostain re-stained to look like H&E
    "dab-to-eosin": ("hed_from_rgb", "rgb_from_hed", (0, 2, 1)),
}


@dataclass(frozen=True)
class Source:
    """A loaded source image and where it came from.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB, the ``box`` part only.
        name: The bundled name, or None for a file.
        path: The file read (for bundled images, the file inside scikit-image).
        sha256: SHA-256 of that file's bytes.
        full_shape: ``(H, W)`` of the whole image before ``box``.
        box: ``(top, left, height, width)`` used, in the whole image.
    """

    image: np.ndarray
    name: str | None
    path: Path
    sha256: str
    full_shape: tuple[int, int]
    box: tuple[int, int, int, int]

    def describe(self) -> dict[str, Any]:
        """JSON-ready: name, path, SHA-256, shape, box; when bundled the path inside the
        package, the loader, the scikit-image version, origin and licence."""
        path = str(self.path) if self.name is None else f"skimage/data/{self.path.name}"
        info: dict[str, Any] = {
            "name": self.name,
            "path": path,
            "sha256": self.sha256,
            "shape": list(self.full_shape),
            "box": list(self.box),
        }
        if self.name is not None:
            bundled = BUNDLED[self.name]
            info.update(
                loader=f"skimage.data.{bundled.loader}",
                scikit_image_version=skimage.__version__,
                origin=bundled.origin,
                licence=bundled.licence,
            )
        return info


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bundled_path(bundled: BundledImage) -> Path:
    """The file of a bundled image inside the installed scikit-image (never downloaded)."""
    path = Path(skimage.data.__file__).parent / bundled.file
    if not path.is_file():
        raise FileNotFoundError(
            f"the installed scikit-image does not ship {bundled.file!r} "
            f"(skimage.data.{bundled.loader}); pass an image file as the source instead"
        )
    return path


# Pillow modes of grey images
_GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")


def _read_rgb(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 (an alpha channel is dropped)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        array = tifffile.imread(path)
    else:
        from PIL import Image

        with Image.open(path) as picture:
            if picture.mode == "P":
                picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
            if picture.mode not in ("RGB", "RGBA"):
                kind = "grey" if picture.mode in _GREY_MODES else f"mode {picture.mode}"
                raise ValueError(
                    f"{str(path)!r} is not an 8-bit RGB image (got {kind}); the stain map "
                    "needs (H, W, 3) uint8 colour"
                )
            array = np.asarray(picture)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] not in (3, 4):
        kind = "grey" if array.ndim == 2 else f"{array.dtype} {array.shape}"
        raise ValueError(
            f"{str(path)!r} is not an 8-bit RGB image (got {kind}); the stain map needs "
            "(H, W, 3) uint8 colour"
        )
    return np.ascontiguousarray(array[..., :3])


def load_source(
    source: str | os.PathLike[str] | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> Source:
    """Load a bundled image by name, or an RGB image file, and cut out ``box``.

    Args:
        source: A name of :data:`BUNDLED` (default: the first, ``immunohistochemistry``) or the
            path of an 8-bit RGB image (TIFF, PNG, JPEG, ...; an alpha channel is dropped).
        box: ``(top, left, height, width)`` of the part to use; default: the bundled image's
            own box, else the whole image.

    Returns:
        The :class:`Source`.

    Raises:
        FileNotFoundError: If ``source`` is neither a bundled name nor an existing file.
        ValueError: If the image is not 8-bit RGB, is grey (its three channels equal
            everywhere: there is no stain to separate), or ``box`` leaves the image.
    """
    source = next(iter(BUNDLED)) if source is None else source
    name = str(source) if str(source) in BUNDLED else None
    if name is not None:
        bundled = BUNDLED[name]
        path = _bundled_path(bundled)
        image = _read_rgb(path)
        box = bundled.box if box is None else box
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(
                f"no image file {str(path)!r} and no bundled image of that name; "
                f"bundled: {', '.join(BUNDLED)}"
            )
        image = _read_rgb(path)
    height, width = image.shape[:2]
    box = (0, 0, height, width) if box is None else tuple(int(b) for b in box)
    top, left, box_h, box_w = box
    if min(box) < 0 or box_h < 1 or box_w < 1 or top + box_h > height or left + box_w > width:
        raise ValueError(
            f"box {box} (top, left, height, width) leaves the {height} x {width} image"
        )
    part = np.ascontiguousarray(image[top : top + box_h, left : left + box_w])
    if (part[..., 0] == part[..., 1]).all() and (part[..., 1] == part[..., 2]).all():
        raise ValueError(
            f"{str(source)!r} is grey (its three channels are equal); the stain map separates "
            "colours, so it needs a colour image"
        )
    return Source(part, name, path.resolve(), _sha256(path), (height, width), box)


def stain_matrices(stain_map: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(separate, combine)`` matrices of a stain map, ``(3, 3)`` float64 each.

    Raises:
        ValueError: On an unknown map.
    """
    if stain_map not in STAIN_MAPS:
        raise ValueError(f"no stain map {stain_map!r}; known: {', '.join(STAIN_MAPS)}")
    from skimage import color  # a slow import, only paid when re-staining

    separate, combine, rows = STAIN_MAPS[stain_map]
    return np.asarray(getattr(color, separate)), np.asarray(getattr(color, combine))[list(rows)]


def restain(image: np.ndarray, stain_map: str = "dab-to-eosin") -> np.ndarray:
    """Re-stain an RGB image: separate its stains, recombine them with other stain vectors.

    ``combine_stains(separate_stains(image, S), C)`` of :mod:`skimage.color` with the
    matrices ``(S, C)`` of :func:`stain_matrices`, scaled to 8 bits and rounded. Pixel by pixel:
    every output pixel depends on its input pixel only, so a crop's re-staining is the crop of
    the re-staining.

    Args:
        image: ``(*spatial, 3)`` uint8 RGB.
        stain_map: A name of :data:`STAIN_MAPS`.

    Returns:
        ``(*spatial, 3)`` uint8 RGB.

    Raises:
        ValueError: On an unknown map or an image that is not 8-bit RGB.
    """
    separate, combine = stain_matrices(stain_map)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim < 2 or image.shape[-1] != 3:
        raise ValueError(f"restain needs (*spatial, 3) uint8 RGB, got {image.dtype} {image.shape}")
    from skimage import color

    stains = color.separate_stains(image, separate)
    return np.rint(color.combine_stains(stains, combine) * 255).astype(np.uint8)


@dataclass(frozen=True)
class SplitGeometry:
    """Where the training crops and the test part lie, as ``(top, left, height, width)`` boxes
    in the source part's coordinates."""

    train_x: tuple[int, int, int, int]
    train_y: tuple[int, int, int, int]
    test: tuple[int, int, int, int]

    def as_dict(self) -> dict[str, list[int]]:
        return {
            "train_x": list(self.train_x),
            "train_y": list(self.train_y),
            "test": list(self.test),
        }


def split_geometry(shape: tuple[int, int], crop: int, test_fraction: float = 0.5) -> SplitGeometry:
    """Split an ``H x W`` image: test part at the bottom, X region left and Y region right above.

    Args:
        shape: ``(H, W)``.
        crop: Edge length of the training crops, px; each region must hold one.
        test_fraction: Share of the rows, at the bottom, kept for testing; in (0, 1).

    Returns:
        The :class:`SplitGeometry`: test rows ``round(H * test_fraction)``, the X region the
        left ``W // 2`` columns above them, the Y region the rest.

    Raises:
        ValueError: A fraction outside (0, 1), or an image too small for the crops: the message
            names the smallest size that works.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if int(crop) != crop or crop < 1:
        raise ValueError(f"crop must be an integer >= 1, got {crop!r}")
    height, width = (int(s) for s in shape)
    test_rows = round(height * test_fraction)
    train_rows, half = height - test_rows, width // 2
    if min(train_rows, test_rows, half) < crop:
        need_h = max(crop / (1 - test_fraction), crop / test_fraction)
        raise ValueError(
            f"the {height} x {width} image is too small for {crop} px crops with test fraction "
            f"{test_fraction:g}: the training rows ({train_rows}), the test rows ({test_rows}) "
            f"and half the width ({half}) must each be >= {crop}; it needs at least "
            f"{int(np.ceil(need_h))} x {2 * crop} px (or a smaller --crop)"
        )
    return SplitGeometry(
        train_x=(0, 0, train_rows, half),
        train_y=(0, half, train_rows, width - half),
        test=(train_rows, 0, test_rows, width),
    )


def mirror_mosaic(image: np.ndarray, times: int) -> np.ndarray:
    """``times x times`` copies of ``image``, every other one mirrored so edges meet smoothly.

    Args:
        image: ``(H, W, ...)``.
        times: Copies per spatial dim, >= 1.

    Returns:
        ``(times * H, times * W, ...)``: numpy's ``symmetric`` padding of ``image`` at its far
        ends (pixel-wise maps commute with it).
    """
    if int(times) != times or times < 1:
        raise ValueError(f"mosaic must be an integer >= 1, got {times!r}")
    height, width = image.shape[:2]
    pad = [(0, (times - 1) * height), (0, (times - 1) * width)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pad, mode="symmetric")
