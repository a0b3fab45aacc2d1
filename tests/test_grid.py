from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satikit.stitching.grid import TileGrid, read_tile, reflect_indices


@given(size=st.integers(1, 40), start=st.integers(0, 60), length=st.integers(1, 50))
def test_reflect_indices_match_numpy_pad(size, start, length):
    a = np.arange(size)
    if size == 1:
        expected = np.zeros(length, int)
    else:
        expected = np.pad(a, (0, start + length), mode="reflect")[start : start + length]
    np.testing.assert_array_equal(reflect_indices(start, length, size), expected)


@given(
    shape=st.lists(st.integers(1, 60), min_size=1, max_size=3),
    tile=st.integers(2, 24),
    data=st.data(),
)
def test_grid_covers_image_with_uniform_steps(shape, tile, data):
    overlap = data.draw(st.integers(0, tile - 1))
    grid = TileGrid.create(shape, tile, overlap)
    for s, p, n, st_ in zip(grid.shape, grid.padded_shape, grid.counts, grid.step):
        assert p >= s
        assert n == 1 or (n - 2) * st_ + tile < s  # no superfluous tile
    # tiles never run past an image at least one tile long (the last one is shifted back);
    # only an image smaller than a tile is padded
    extent = tuple(s if s >= tile else p for s, p in zip(grid.shape, grid.padded_shape))
    last = tuple(n - 1 for n in grid.counts)
    assert tuple(w.stop for w in grid.window(last)) == extent
    # owned regions partition that extent exactly, each inside its own tile window
    cover = np.zeros(extent, int)
    for index in grid.raster():
        owned, window = grid.owned(index), grid.window(index)
        assert all(w.start <= o.start < o.stop <= w.stop for o, w in zip(owned, window))
        cover[owned] += 1
    assert (cover == 1).all()


def test_last_tile_shifts_back_and_keeps_its_cut_inside_the_strip():
    grid = TileGrid.create((512,), 128, 32, sati=True, margin=16)  # step 80: 6 tiles
    assert grid.counts == (6,) and [grid.start((i,))[0] for i in range(6)] == [
        0,
        80,
        160,
        240,
        320,
        384,  # not 400: it ends at the border instead of 16 px of reflection
    ]
    assert grid.owned((4,)) == (slice(336, 400),)  # up to the last tile's start + O / 2
    assert grid.owned((5,)) == (slice(400, 512),)
    assert grid.written((5,)) == (slice(400, 512),)


def test_wave_counts_follow_formula():
    for n in (1, 2, 3, 5):
        g2 = TileGrid.create((n * 12 + 4, n * 12 + 4), 16, 4, sati=True)
        assert g2.counts == (n, n) and len(g2.waves()) == 3 * (n - 1) + 1
        g3 = TileGrid.create((n * 12 + 4,) * 3, 16, 4, sati=True)
        assert g3.counts == (n,) * 3 and len(g3.waves()) == 7 * (n - 1) + 1


def test_waves_never_group_overlapping_tiles_and_keep_raster_precedence():
    # the largest overlaps SATI allows (T > 2 O)
    grid = TileGrid.create((70, 53, 41), (16, 12, 10), (7, 5, 4), sati=True)
    position = {i: t for t, wave in enumerate(grid.waves()) for i in wave}
    assert sorted(position) == sorted(grid.raster())
    for a in position:
        for b in position:
            if a < b and all(abs(x - y) <= 1 for x, y in zip(a, b)):  # overlapping windows
                assert position[a] < position[b]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(shape=(10, 10), tile=8, overlap=8), "smaller than the tile"),
        (dict(shape=(10, 10), tile=8, overlap=-1), ">= 0"),
        (dict(shape=(10, 10), tile=0, overlap=0), ">= 1"),
        (dict(shape=(10, 10), tile=(8, 8, 8), overlap=2), "3 entries"),
        (dict(shape=(10, 0), tile=8, overlap=2), "positive"),
        (dict(shape=(10, 10), tile=8, overlap=5, sati=True), r"tile > 2 x overlap"),
        (dict(shape=(10, 10), tile=8, overlap=4, sati=True), r"tile=\(8, 8\), overlap=\(4, 4\)"),
        (dict(shape=(10, 10), tile=(9, 8), overlap=(4, 4), sati=True), "tile > 2 x overlap"),
    ],
)
def test_invalid_grids_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TileGrid.create(**kwargs)


def test_read_tile_reflects_past_the_border_like_numpy_pad():
    image = np.arange(2 * 7 * 5, dtype=np.float32).reshape(2, 7, 5)
    grid = TileGrid.create((7, 5), 6, 2)
    padded = np.pad(
        image,
        [(0, 0)] + [(0, p - s) for p, s in zip(grid.padded_shape, grid.shape)],
        mode="reflect",
    )
    for index in grid.raster():
        np.testing.assert_array_equal(
            read_tile(image, grid.window(index), grid.shape),
            padded[(slice(None), *grid.window(index))],
        )


def test_image_smaller_than_tile_is_one_padded_tile():
    grid = TileGrid.create((5, 3), 16, 4)
    assert (
        grid.counts == (1, 1)
        and grid.padded_shape == (16, 16)
        and grid.n_tiles == math.prod(grid.counts)
    )
