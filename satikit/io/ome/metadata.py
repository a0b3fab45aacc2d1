"""What an image says about its pixels: physical pixel sizes and channel names (OME).

:class:`ImageMetadata` is the part of OME metadata a translation keeps: the size of one pixel
along each spatial axis, with its unit, and the channel names. :func:`read_metadata` takes it
from an OME-TIFF (the OME-XML of the first image) or an OME-Zarr (the NGFF ``multiscales`` axes
and level-0 scale, the ``omero`` channel labels); other inputs have none.

Spatial axes are named as in OME and NGFF: ``("y", "x")`` for 2D images, ``("z", "y", "x")``
for 3D ones, in the order satikit stores them (``(*spatial[, C])``). Units are NGFF (UDUNITS-2)
names such as ``"micrometer"``; :func:`ome_symbol` gives the OME-XML symbol (``"µm"``).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satikit.io.arrays import ImageLayoutError

__all__ = [
    "SPATIAL_AXES",
    "ImageMetadata",
    "meters",
    "ngff_multiscale",
    "ome_symbol",
    "read_metadata",
]

#: Axis names of satikit's spatial dims, by their count (the only counts OME formats know).
SPATIAL_AXES: dict[int, tuple[str, ...]] = {2: ("y", "x"), 3: ("z", "y", "x")}

#: OME-XML ``UnitsLength`` symbol -> NGFF (UDUNITS-2) name, for the lengths of microscopy.
_NAMES = {
    "pm": "picometer",
    "Å": "angstrom",
    "nm": "nanometer",
    "µm": "micrometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "dm": "decimeter",
    "m": "meter",
    "km": "kilometer",
    "in": "inch",
    "ft": "foot",
    "yd": "yard",
    "mi": "mile",
}
_ALIASES = {"um": "µm", "μm": "µm", "Ang": "Å"}  # ASCII and Greek-mu spellings seen in the wild
_SYMBOLS = {name: symbol for symbol, name in _NAMES.items()}
_METERS = {
    "picometer": 1e-12,
    "angstrom": 1e-10,
    "nanometer": 1e-9,
    "micrometer": 1e-6,
    "millimeter": 1e-3,
    "centimeter": 1e-2,
    "decimeter": 1e-1,
    "meter": 1.0,
    "kilometer": 1e3,
    "inch": 0.0254,
    "foot": 0.3048,
    "yard": 0.9144,
    "mile": 1609.344,
}


def ome_symbol(unit: str | None) -> str | None:
    """The OME-XML symbol of an NGFF length unit (``"micrometer"`` -> ``"µm"``), or None."""
    return None if unit is None else _SYMBOLS.get(unit)


def meters(size: float, unit: str | None) -> float | None:
    """``size`` in ``unit`` (an NGFF length name) in meters; None if the unit is unknown."""
    factor = None if unit is None else _METERS.get(unit)
    return None if factor is None else size * factor


def _ngff_unit(symbol: str | None) -> str | None:
    if symbol is None:
        return "micrometer"  # OME-XML's default unit of a physical size
    symbol = _ALIASES.get(symbol, symbol)
    return _NAMES.get(symbol)


@dataclass(frozen=True)
class ImageMetadata:
    """Physical pixel sizes and channel names of an image.

    Attributes:
        pixel_sizes: spatial axis name (``"z"``, ``"y"``, ``"x"``) -> ``(size, unit)``: the
            size of one pixel (> 0) along that axis, with an NGFF unit name or None when the
            source gives none. Axes the source says nothing about are absent.
        channel_names: one name per channel, or None.
    """

    pixel_sizes: Mapping[str, tuple[float, str | None]] = field(default_factory=dict)
    channel_names: tuple[str, ...] | None = None

    def for_channels(self, channels: int) -> ImageMetadata:
        """This metadata for an image of ``channels`` channels: the names are kept only if
        there is one per channel (a translation may change the channel count)."""
        names = self.channel_names
        keep = names is not None and len(names) == channels
        return ImageMetadata(dict(self.pixel_sizes), names if keep else None)

    def size(self, axis: str) -> float:
        """Pixel size along ``axis``; 1.0 when unknown (pixel units)."""
        return float(self.pixel_sizes[axis][0]) if axis in self.pixel_sizes else 1.0

    def unit(self, axis: str) -> str | None:
        """Unit of ``axis``'s pixel size, or None."""
        return self.pixel_sizes[axis][1] if axis in self.pixel_sizes else None


def read_metadata(path: str | os.PathLike[str]) -> ImageMetadata:
    """The pixel sizes and channel names an image file records.

    Args:
        path: an OME-TIFF (``is_ome``), an OME-Zarr folder, or any other input (then empty).

    Returns:
        what the file records; empty for files without OME metadata, and for an OME-XML that
        cannot be parsed (the pixels are still readable, so a translation goes on without it).

    Raises:
        ValueError: an OME-Zarr whose ``multiscales`` metadata is malformed (the message names
            the file).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff") and path.is_file():
        return _tiff_metadata(path)
    if path.is_dir():
        return _zarr_metadata(path)
    return ImageMetadata()


def _tiff_metadata(path: Path) -> ImageMetadata:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            xml = tif.ome_metadata if tif.is_ome else None
    except Exception:  # unreadable files are reported by the pixel reader, naming the problem
        return ImageMetadata()
    if not xml:
        return ImageMetadata()
    try:
        return _parse_ome_xml(xml)
    except ET.ParseError:
        return ImageMetadata()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_ome_xml(xml: str) -> ImageMetadata:
    """Pixel sizes and channel names of the first ``Image`` of an OME-XML document."""
    root = ET.fromstring(xml)
    pixels = next((e for e in root.iter() if _local(e.tag) == "Pixels"), None)
    if pixels is None:
        return ImageMetadata()
    sizes: dict[str, tuple[float, str | None]] = {}
    for axis in ("z", "y", "x"):
        value = pixels.get(f"PhysicalSize{axis.upper()}")
        unit = _ngff_unit(pixels.get(f"PhysicalSize{axis.upper()}Unit"))
        try:
            size = float(value) if value is not None else 0.0
        except ValueError:
            continue
        if size > 0 and unit is not None:
            sizes[axis] = (size, unit)
    names = [c.get("Name") for c in pixels if _local(c.tag) == "Channel"]
    complete = bool(names) and all(names)
    return ImageMetadata(sizes, tuple(names) if complete else None)  # type: ignore[arg-type]


def ngff_multiscale(attrs: Mapping[str, Any], name: str) -> tuple[dict[str, Any], Mapping]:
    """The first ``multiscales`` entry of an OME-Zarr group's attributes, and the attributes
    holding it (NGFF 0.5 nests them under ``"ome"``), with ``axes`` as dicts.

    NGFF 0.1/0.2 have no ``axes`` (5D ``tczyx`` is implied, trimmed to the array's rank by the
    caller); 0.3 lists axis names as strings.

    Raises:
        ImageLayoutError: (a ValueError) no ``multiscales``, or one without datasets (the
            message names ``name``).
    """
    holder = attrs.get("ome", attrs) if isinstance(attrs.get("ome"), Mapping) else attrs
    multiscales = holder.get("multiscales")
    if not multiscales:
        raise ImageLayoutError(
            f"{name}: a zarr group without OME-Zarr 'multiscales' metadata; give an OME-Zarr "
            "image or a zarr array"
        )
    multiscale = dict(multiscales[0])
    if not multiscale.get("datasets"):
        raise ImageLayoutError(f"{name}: its OME-Zarr 'multiscales' metadata lists no datasets")
    axes = multiscale.get("axes")
    if axes is not None:
        multiscale["axes"] = [_axis(a) for a in axes]
    return multiscale, holder


_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def _axis(axis: Any) -> dict[str, Any]:
    if isinstance(axis, str):  # NGFF 0.3
        return {"name": axis, "type": _AXIS_TYPES.get(axis)}
    return dict(axis)


def _scales(multiscale: Mapping[str, Any], rank: int) -> list[float]:
    """Level 0's scale per axis: its own ``scale`` times the multiscale-wide one, if any."""
    scale = [1.0] * rank
    for transforms in (
        multiscale["datasets"][0].get("coordinateTransformations", []),
        multiscale.get("coordinateTransformations", []),
    ):
        for transform in transforms:
            if transform.get("type") == "scale" and len(transform.get("scale", [])) == rank:
                scale = [a * float(b) for a, b in zip(scale, transform["scale"])]
    return scale


def _zarr_metadata(path: Path) -> ImageMetadata:
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception:  # a plain zarr array, or not zarr at all: nothing to say
        return ImageMetadata()
    attrs = dict(group.attrs)
    if "multiscales" not in attrs and "multiscales" not in attrs.get("ome", {}):
        return ImageMetadata()
    multiscale, holder = ngff_multiscale(attrs, str(path))
    axes = multiscale.get("axes")
    if axes is None:
        return ImageMetadata()
    scale = _scales(multiscale, len(axes))
    sizes = {
        axis["name"]: (value, axis.get("unit"))
        for axis, value in zip(axes, scale)
        if axis.get("type") == "space"
        and axis.get("name") in ("z", "y", "x")
        and value > 0
        and (value != 1 or axis.get("unit"))  # a unitless 1 is the pixel grid: says nothing
    }
    channels = (holder.get("omero") or {}).get("channels") or []
    labels = [str(c.get("label", "")) for c in channels]
    complete = bool(labels) and all(labels)
    return ImageMetadata(sizes, tuple(labels) if complete else None)
