"""Fuzz the engine's arguments: every combination either works or fails with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satikit.stitching import stitch

DTYPES = [np.float32, np.float64, np.uint8, np.int16, np.uint16]


@settings(max_examples=150)
@given(
    ndim=st.integers(0, 3),
    data=st.data(),
    strategy=st.sampled_from(["none", "simple", "weighted", "sati", "other"]),
    order=st.sampled_from(["raster", "wavefront", "diagonal"]),
    window=st.sampled_from(["gaussian", "pyramid", "box"]),
    batch_size=st.integers(-1, 5),
    dtype=st.sampled_from(DTYPES),
    channels=st.integers(1, 3),
)
def test_engine_arguments_work_or_raise_value_error(
    ndim, data, strategy, order, window, batch_size, dtype, channels
):
    shape = tuple(data.draw(st.integers(0, 24)) for _ in range(ndim))
    tile = data.draw(
        st.one_of(st.integers(-2, 20), st.lists(st.integers(-1, 20), min_size=1, max_size=3))
    )
    overlap = data.draw(
        st.one_of(st.integers(-2, 20), st.lists(st.integers(-1, 20), min_size=1, max_size=3))
    )
    image = (np.random.default_rng(0).random((channels, *shape)) * 100).astype(dtype)
    try:
        result = stitch(
            image,
            lambda t: t,
            tile=tile,
            overlap=overlap,
            strategy=strategy,
            order=order,
            window=window,
            batch_size=batch_size,
        )  # type: ignore[arg-type]
    except ValueError as exc:
        assert str(exc)  # a message, raised by satikit's own checks
        return
    np.testing.assert_array_equal(result, image.astype(np.float32))


@pytest.mark.parametrize("strategy", ["none", "simple", "weighted", "sati"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_named_as_the_problem(strategy, bad):
    image = np.zeros((1, 20, 20), np.float32)
    image[0, 13, 7] = bad
    with pytest.raises(ValueError, match="image contains non-finite"):
        stitch(image, lambda t: t, tile=8, overlap=2, strategy=strategy)
