"""Fuzz the engine's arguments: every valid combination works (an identity generator gives the
input back), every invalid one fails with a clear ValueError, and which is which follows the
documented rules (:func:`satikit.stitching.stitch`, :meth:`satikit.grid.TileGrid.create`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satikit.stitching import stitch

DTYPES = [np.float32, np.float64, np.uint8, np.int16, np.uint16]
STRATEGIES = ("none", "simple", "weighted", "sati")


def _per_dim(value, ndim: int) -> list[int] | None:
    """An int or per-dim list broadcast to ``ndim`` ints (None: the wrong number of entries)."""
    values = [value] * ndim if isinstance(value, int) else list(value)
    return values if len(values) == ndim else None


def valid(shape, strategy, order, window, batch_size, tile, overlap) -> bool:
    """Whether ``stitch`` must accept these arguments: at least one spatial dim; a known
    strategy, order and window; batch size >= 1; and for the tiled strategies a non-empty image,
    a tile and an overlap per dim (or one for all) with 1 <= tile, 0 <= overlap < tile, and for
    SATI tile > 2 x overlap."""
    if len(shape) < 1 or strategy not in STRATEGIES or batch_size < 1:
        return False
    if order not in ("auto", "raster", "wavefront") or window not in ("gaussian", "pyramid"):
        return False
    if strategy == "none":
        return True
    tiles, overlaps = _per_dim(tile, len(shape)), _per_dim(overlap, len(shape))
    if tiles is None or overlaps is None or min(shape) < 1:
        return False
    limit = 2 if strategy == "sati" else 1
    return all(t >= 1 and 0 <= o and limit * o < t for t, o in zip(tiles, overlaps))


@settings(max_examples=150)
@given(
    ndim=st.integers(0, 3),
    data=st.data(),
    strategy=st.sampled_from(["none", "simple", "weighted", "sati", "other"]),
    order=st.sampled_from(["auto", "raster", "wavefront", "diagonal"]),
    window=st.sampled_from(["gaussian", "pyramid", "box"]),
    batch_size=st.integers(-1, 5),
    dtype=st.sampled_from(DTYPES),
    channels=st.integers(1, 3),
)
def test_engine_accepts_exactly_the_valid_arguments(
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
        assert not valid(shape, strategy, order, window, batch_size, tile, overlap), exc
        return
    assert valid(shape, strategy, order, window, batch_size, tile, overlap)
    np.testing.assert_array_equal(result, image.astype(np.float32))


@settings(max_examples=60)
@given(
    data=st.data(),
    shape=st.lists(st.integers(1, 30), min_size=1, max_size=3).map(tuple),
    strategy=st.sampled_from(STRATEGIES),
    order=st.sampled_from(["raster", "wavefront"]),
    window=st.sampled_from(["gaussian", "pyramid"]),
    batch_size=st.integers(1, 5),
    dtype=st.sampled_from(DTYPES),
)
def test_every_valid_combination_is_accepted(
    data, shape, strategy, order, window, batch_size, dtype
):
    """Drawn valid by construction (int or per-dim tiles, any overlap the rules allow), so a
    wrongly refused input cannot hide among the invalid ones."""
    tiles = [data.draw(st.integers(1, 20)) for _ in shape]
    limit = 2 if strategy == "sati" else 1
    overlaps = [data.draw(st.integers(0, (t - 1) // limit)) for t in tiles]
    per_dim = data.draw(st.booleans()) or len(set(tiles)) > 1 or len(set(overlaps)) > 1
    tile, overlap = (tiles, overlaps) if per_dim else (tiles[0], overlaps[0])
    assert valid(shape, strategy, order, window, batch_size, tile, overlap)
    image = (np.random.default_rng(1).random((2, *shape)) * 100).astype(dtype)
    result = stitch(
        image,
        lambda t: t,
        tile=tile,
        overlap=overlap,
        strategy=strategy,  # type: ignore[arg-type]
        order=order,  # type: ignore[arg-type]
        window=window,  # type: ignore[arg-type]
        batch_size=batch_size,
    )
    np.testing.assert_array_equal(result, image.astype(np.float32))


@pytest.mark.parametrize("strategy", ["none", "simple", "weighted", "sati"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_named_as_the_problem(strategy, bad):
    image = np.zeros((1, 20, 20), np.float32)
    image[0, 13, 7] = bad
    with pytest.raises(ValueError, match="image contains non-finite"):
        stitch(image, lambda t: t, tile=8, overlap=2, strategy=strategy)
