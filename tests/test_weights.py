from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satikit.stitching.grid import TileGrid
from satikit.stitching.windows import blend_window, overlap_weight, strip_mask


@pytest.mark.parametrize("mode", ["pyramid", "gaussian"])
@pytest.mark.parametrize("tile", [(9,), (16, 11), (8, 9, 10)])
def test_window_is_symmetric_positive_and_peaks_at_one(mode, tile):
    w = blend_window(tile, mode)
    assert w.shape == tile and w.dtype == np.float32
    assert (w > 0).all() and w.max() == pytest.approx(1.0)
    for k in range(len(tile)):
        np.testing.assert_allclose(w, np.flip(w, axis=k), rtol=1e-6)
    assert not w.flags.writeable


@pytest.mark.parametrize("mode", ["pyramid", "gaussian"])
@given(shape=st.lists(st.integers(5, 40), min_size=1, max_size=3), data=st.data())
def test_windows_form_a_partition_of_unity(mode, shape, data):
    tile = data.draw(st.integers(4, 12))
    overlap = data.draw(st.integers(0, tile - 1))
    grid = TileGrid.create(shape, tile, overlap)
    # the tiles cover the image (the last ones end at its border), or the padded tile
    extent = tuple(s if s >= tile else p for s, p in zip(grid.shape, grid.padded_shape))
    total = np.zeros(extent)
    windows = []
    for index in grid.raster():
        w = blend_window(
            grid.tile,
            mode,
            flat_before=[i == 0 for i in index],
            flat_after=[i == n - 1 for i, n in zip(index, grid.counts)],
        )
        windows.append((grid.window(index), w))
        total[grid.window(index)] += w
    assert (total > 0).all()
    normalised = np.zeros(extent)
    for window, w in windows:
        normalised[window] += w / total[window]
    np.testing.assert_allclose(normalised, 1.0, rtol=1e-6)


def test_flat_edges_keep_full_weight_on_the_image_border():
    w = blend_window((10,), "pyramid", flat_before=[True])
    assert (w[:5] == 1).all() and w[-1] < 0.5


def test_unknown_window_raises():
    with pytest.raises(ValueError, match="pyramid"):
        blend_window((4, 4), "hann")  # type: ignore[arg-type]


def test_overlap_weight_corner_case_matches_fig6():
    w = overlap_weight((9, 9), (3, 3), (True, True))
    assert w[0, 0] == 1.0  # leading corner
    assert (w[3:, 3:] == 0).all()  # domain X
    # linear in euclidean distance from the corner towards the opposite corner (8, 8)
    assert w[2, 2] == pytest.approx(1 - np.hypot(2, 2) / np.hypot(8, 8))
    assert w[0, 8] == pytest.approx(1 - 8 / np.hypot(8, 8))
    np.testing.assert_allclose(w, w.T)


def test_overlap_weight_single_strip_is_linear_along_its_axis():
    w = overlap_weight((9, 6), (3, 2), (True, False))
    np.testing.assert_allclose(w[:3], np.repeat((1 - np.arange(3) / 8)[:, None], 6, axis=1))
    assert (w[3:] == 0).all()


@given(ndim=st.integers(1, 3), data=st.data())
def test_overlap_weight_properties_any_case(ndim, data):
    tile = tuple(data.draw(st.integers(3, 10)) for _ in range(ndim))
    overlap = tuple(data.draw(st.integers(1, t - 1)) for t in tile)
    case = tuple(data.draw(st.booleans()) for _ in range(ndim))
    if not any(case):
        with pytest.raises(ValueError):
            overlap_weight(tile, overlap, case)
        return
    w = overlap_weight(tile, overlap, case)
    mask = strip_mask(tile, overlap, case)
    assert (w[~mask] == 0).all() and (w >= 0).all() and (w <= 1).all()
    assert w.max() == 1.0 and w[(0,) * ndim] == 1.0
    assert overlap_weight(tile, overlap, case) is w  # cached
