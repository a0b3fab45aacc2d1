"""Domain encoding (paper III-C): the value range tells the generator where a pixel came from.

With encoding enabled, images from domain X are mapped to [-1, 0] and images from domain Y to
[0, 1], so a merged tile ``z`` (X pixels plus already-translated Y strips) carries its origin in
its values without an extra channel. Disabled (the "w/o domain encoding" ablation), both domains
use the plain [-1, 1] range.

Functions work on numpy arrays; :func:`to_domain` also works on torch tensors.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np

__all__ = [
    "Domain",
    "check_finite",
    "decode",
    "domain_range",
    "dtype_range",
    "encode",
    "from_unit",
    "to_domain",
    "to_unit",
]

Domain = Literal["x", "y"]
T = TypeVar("T")

# Encoded value range per (domain, encoding enabled), paper III-C.
_RANGES: dict[tuple[str, bool], tuple[float, float]] = {
    ("x", True): (-1.0, 0.0),
    ("y", True): (0.0, 1.0),
    ("x", False): (-1.0, 1.0),
    ("y", False): (-1.0, 1.0),
}


def domain_range(domain: Domain, *, enabled: bool = True) -> tuple[float, float]:
    """Return the ``(low, high)`` value range of ``domain`` in encoded space."""
    if domain not in ("x", "y"):
        raise ValueError(f"domain must be 'x' or 'y', got {domain!r}")
    return _RANGES[(domain, bool(enabled))]


def dtype_range(dtype: np.dtype | type | str) -> tuple[float, float]:
    """The values read as black and white for images of ``dtype``: uint8 ``(0, 255)``,
    uint16 ``(0, 65535)``, float ``(0, 1)``.

    Raises:
        ValueError: any other dtype (signed integers, bool, ...): its range cannot be inferred.
    """
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 0.0, 255.0
    if dtype == np.uint16:
        return 0.0, 65535.0
    if np.issubdtype(dtype, np.floating):
        return 0.0, 1.0
    raise ValueError(
        f"cannot infer the value range of dtype {dtype}; pass in_range=(low, high) "
        "(uint8, uint16 and float in [0, 1] are inferred)"
    )


def _input_range(array: np.ndarray, in_range: tuple[float, float] | None) -> tuple[float, float]:
    if in_range is not None:
        low, high = float(in_range[0]), float(in_range[1])
        if not high > low:
            raise ValueError(f"in_range must be (low, high) with high > low, got {in_range!r}")
        return low, high
    return dtype_range(array.dtype)


def check_finite(block: np.ndarray, where: str) -> np.ndarray:
    """Return ``block`` unchanged; refuse NaN / inf before :func:`encode` would clip them.

    Raises:
        ValueError: ``"{where} contains non-finite values (NaN or inf)"`` (float data only).
    """
    if block.dtype.kind in "fc" and not np.isfinite(block).all():
        raise ValueError(f"{where} contains non-finite values (NaN or inf)")
    return block


def to_unit(array: np.ndarray, in_range: tuple[float, float] | None = None) -> np.ndarray:
    """Scale an image to float32 in [0, 1].

    Args:
        array: any shape; uint8 (0..255), uint16 (0..65535) or float (``in_range`` or [0, 1]).
        in_range: explicit ``(low, high)`` of the input values; values outside are clipped.
    """
    array = np.asarray(array)
    low, high = _input_range(array, in_range)
    unit = (array.astype(np.float32) - np.float32(low)) / np.float32(high - low)
    return np.clip(unit, 0.0, 1.0, out=unit)


def from_unit(unit: np.ndarray, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Inverse of :func:`to_unit` for the default ranges: [0, 1] float -> ``dtype``.

    Integer dtypes are rounded and clipped to their full range; float dtypes stay in [0, 1].
    """
    unit = np.clip(np.asarray(unit, dtype=np.float32), 0.0, 1.0)
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return np.rint(unit * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(unit * 65535.0).astype(np.uint16)
    if np.issubdtype(dtype, np.floating):
        return unit.astype(dtype)
    raise ValueError(f"unsupported output dtype {dtype}; use uint8, uint16 or a float dtype")


def encode(
    array: np.ndarray,
    domain: Domain,
    *,
    enabled: bool = True,
    in_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Encode an image of ``domain`` into the generator's value range.

    Args:
        array: image of any shape, uint8 / uint16 / float (see :func:`to_unit`).
        domain: ``"x"`` (source) or ``"y"`` (target).
        enabled: domain encoding on (X -> [-1, 0], Y -> [0, 1]) or off (both -> [-1, 1]).
        in_range: explicit input value range, see :func:`to_unit`.

    Returns:
        float32 array of the same shape in the domain's encoded range.
    """
    low, high = domain_range(domain, enabled=enabled)
    return (to_unit(array, in_range) * np.float32(high - low) + np.float32(low)).astype(
        np.float32, copy=False
    )


def decode(
    array: np.ndarray,
    domain: Domain,
    *,
    enabled: bool = True,
    dtype: np.dtype | type = np.uint8,
) -> np.ndarray:
    """Inverse of :func:`encode`: encoded values of ``domain`` -> ``dtype`` (clipped)."""
    low, high = domain_range(domain, enabled=enabled)
    unit = (np.asarray(array, dtype=np.float32) - np.float32(low)) / np.float32(high - low)
    return from_unit(unit, dtype)


def to_domain(t: T, domain: Domain, *, enabled: bool = True) -> T:
    """Map a tanh output ``t`` in [-1, 1] to ``domain``'s encoded range (paper III-C).

    Y: ``0.5 t + 0.5`` (-> [0, 1]); X: ``0.5 t - 0.5`` (-> [-1, 0]); identity when disabled.
    Works on numpy arrays and torch tensors alike (keeps autograd).
    """
    low, high = domain_range(domain, enabled=enabled)
    if not enabled:
        return t
    return t * ((high - low) / 2.0) + (high + low) / 2.0  # type: ignore[operator,return-value]
