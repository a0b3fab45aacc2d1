"""The values of input images: the dtype and range a run was trained on, a cheap check of an
input against them, and ``--input-range`` to map other values onto them.

How values are read (paper III-C encodes them from there): integer images at their dtype's
full range (uint8 0..255, uint16 0..65535: 0 is black, the maximum white); float images on
[0, 1] (0.0 black, 1.0 white, i.e. 255 of a uint8 run; the convention of scikit-image's
``img_as_float`` and torchvision's ``ToTensor``). A run takes integer images of the dtype it was
trained on, and float images within [0, 1]; anything else is refused with one line naming the
values seen, the values expected and the fix: ``--input-range LO,HI`` maps [LO, HI] onto the
trained range (values beyond are clipped), ``--input-range auto`` takes LO and HI from the
image's own sampled minimum and maximum.

The check reads a sample, never the whole image: an evenly spaced grid of small windows
(:func:`sample_windows`: 8 x 8 windows of 32 px in 2D, 4 x 4 x 4 of 10 px in 3D), so it
costs a few chunks of a tiled TIFF or zarr and a few pages of a memory map whatever the image
size. An image whose extremes lie outside the sample passes the check; their values are
clipped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from satikit.encoding import dtype_range
from satikit.io.arrays import release_pages

__all__ = [
    "InputRange",
    "format_range",
    "parse_input_range",
    "resolve_input_range",
    "sample",
    "sample_windows",
    "sampled_range",
]

#: An input range as given: ``(low, high)``, ``"auto"`` or None (the image's dtype decides).
InputRange = tuple[float, float] | Literal["auto"] | None

_USAGE = "--input-range takes LO,HI (two numbers, LO < HI) or auto"


def parse_input_range(value: Any) -> InputRange:
    """An input range from its CLI spelling (``"0,1000"``, ``"auto"``), a pair, or None.

    Raises:
        ValueError: anything else, e.g. ``"5,1"`` or ``"0,nan"`` (the message quotes it).
    """
    if value is None or value == "auto":
        return value
    parts = value.split(",") if isinstance(value, str) else value
    try:
        low, high = (float(part) for part in parts)
    except (TypeError, ValueError):
        raise ValueError(f"{_USAGE}, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{_USAGE}, got {value!r}")
    return low, high


def format_range(low: float, high: float) -> str:
    """``0..255``: a value range as messages write it."""
    return f"{low:g}..{high:g}"


def sample_windows(
    spatial: Sequence[int], *, windows: int = 64, pixels: int = 2**16
) -> list[tuple[slice, ...]]:
    """An evenly spaced grid of about ``windows`` windows of about ``pixels`` pixels in all
    over an image of ``spatial`` shape (the first and last windows touch the image's borders);
    an axis shorter than its windows together is taken whole.

    Returns:
        one tuple of slices per window, one slice per spatial dim.
    """
    dims = len(spatial)
    if dims == 0:
        return [()]
    per_dim = max(1, round(windows ** (1 / dims)))
    size = max(1, round((pixels / windows) ** (1 / dims)))
    axes = []
    for n in (int(s) for s in spatial):
        if n <= per_dim * size:
            axes.append([slice(0, n)])
            continue
        steps = max(per_dim - 1, 1)
        starts = sorted({round(i * (n - size) / steps) for i in range(per_dim)})
        axes.append([slice(start, start + size) for start in starts])
    return list(itertools.product(*axes))


def sample(array: Any, dims: int) -> np.ndarray:
    """The values of ``array`` (``(*spatial[, C])``, read lazily) in its
    :func:`sample_windows`, flattened, in the array's dtype."""
    spatial = tuple(int(s) for s in array.shape[:dims])
    blocks = [np.asarray(array[window]).reshape(-1) for window in sample_windows(spatial)]
    release_pages(array)
    return np.concatenate(blocks) if blocks else np.empty(0, np.dtype(array.dtype))


def sampled_range(array: Any, dims: int, name: str) -> tuple[float, float] | None:
    """``(min, max)`` of the :func:`sample` of ``array``; None when it has no pixels.

    Raises:
        ValueError: the sample holds NaN or inf, or the dtype holds no real numbers.
    """
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"{name}: {dtype} images cannot be translated; use integers or floats")
    values = sample(array, dims)
    if values.size == 0:
        return None
    if dtype.kind == "f" and not np.isfinite(values).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return float(values.min()), float(values.max())


def resolve_input_range(
    array: Any,
    *,
    dims: int,
    name: str,
    expected: Any,
    given: InputRange = None,
    reader: str = "the run was trained on",
) -> tuple[float, float] | None:
    """The range of ``array``'s values to map onto the expected range (what
    :func:`satikit.encoding.encode` takes as ``in_range``), checked cheaply from a sample.

    Args:
        array: ``(*spatial[, C])`` image, read lazily (only its sample is read).
        dims: its spatial dims.
        name: how messages call it (its path).
        expected: the dtype it should have (a run's :attr:`DataSpec.trained_dtype`).
        given: ``(low, high)`` (returned as it is), ``"auto"`` (the sample's min and max) or
            None: the image's dtype decides, and it must be ``expected`` (integers) or lie
            within [0, 1] (floats).
        reader: who expects the values, for messages (``"evaluate scores"``).

    Returns:
        ``(low, high)``, or None for the image's own dtype range (see :func:`dtype_range`).

    Raises:
        ValueError: an integer image of another dtype, a float image outside [0, 1], ``auto``
            on an image of one value, NaN or inf in the sample; one line naming the values
            seen, the values expected and ``--input-range``.
    """
    given = parse_input_range(given)
    if isinstance(given, tuple):
        return given
    dtype, expected = np.dtype(array.dtype), np.dtype(expected)
    if given is None and dtype.kind in "ui" and dtype == expected:
        return None  # every value is one the run read in training: nothing to sample
    seen = sampled_range(array, dims, name)
    if given == "auto":
        if seen is None or not seen[1] > seen[0]:
            value = "no pixels" if seen is None else f"only the value {seen[0]:g}"
            raise ValueError(
                f"{name}: --input-range auto found {value} in its sample; give --input-range LO,HI"
            )
        return seen
    if seen is None:
        return None
    if dtype.kind == "f" and 0.0 <= seen[0] and seen[1] <= 1.0:
        return None
    raise ValueError(_refusal(name, dtype, seen, expected, reader))


def _refusal(
    name: str, dtype: np.dtype, seen: tuple[float, float], expected: np.dtype, reader: str
) -> str:
    """The one line refusing ``name``'s values ``seen``: what was expected, and the fix."""
    target = format_range(*dtype_range(expected))
    if dtype.kind == "f":
        white = "1.0" if expected.kind == "f" else f"{dtype_range(expected)[1]:g}"
        problem = (
            f"outside [0, 1], where float images are read (1.0 is white: {white} in the "
            f"{expected} images {reader})"
        )
    else:
        problem = f"but {reader} {expected} images ({target})"
    low, high = seen
    if high > low:
        example = _option(*(_rounded(low, high) if dtype.kind == "f" else seen))
        example = f"e.g. {example}, or auto for the image's own sampled min and max"
    elif dtype.kind in "ui":
        info = np.iinfo(dtype)
        example = f"e.g. {_option(info.min, info.max)} for the whole {dtype} range"
    else:
        example = "its values are all one number"
    return (
        f"{name}: {dtype} values {format_range(low, high)} (sampled), {problem}; pass "
        f"--input-range LO,HI to map [LO, HI] to {target} ({example})"
    )


def _rounded(low: float, high: float) -> tuple[float, float]:
    """``low`` down and ``high`` up to about three significant digits of their span
    (0.108..999.997 -> 0..1000), for a suggestion a user can type."""
    exponent = math.floor(math.log10(high - low)) - 2
    step, digits = 10.0**exponent, max(0, -exponent)
    return round(math.floor(low / step) * step, digits), round(
        math.ceil(high / step) * step, digits
    )


def _option(low: float, high: float) -> str:
    """``--input-range LO,HI`` as typed (``=`` before a negative LO, so no shell or parser
    takes it for an option)."""
    spelled = f"{low:.12g},{high:.12g}"
    return f"--input-range={spelled}" if low < 0 else f"--input-range {spelled}"
