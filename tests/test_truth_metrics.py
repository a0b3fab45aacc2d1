"""Scores against a known true Y (MAE, tile-level deviation, tile-statistics spread) and the
per-tile statistics probe, on arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from satikit.metrics import (
    mean_absolute_error,
    tile_cells,
    tile_deviation,
    tile_errors,
    tile_norm_jump,
    tile_stat_spread,
)
from satikit.stitching.grid import TileGrid


def offsets_per_tile(truth: np.ndarray, tile: int, offsets: np.ndarray) -> np.ndarray:
    """``truth`` (float) with ``offsets[i, j]`` added to tile ``(i, j)`` of ``tile`` px."""
    pred = truth.astype(np.float64).copy()
    for (i, j), value in np.ndenumerate(offsets):
        pred[i * tile : (i + 1) * tile, j * tile : (j + 1) * tile] += value
    return pred


def test_mean_absolute_error_is_on_the_8_bit_scale() -> None:
    truth = np.zeros((4, 4, 3), np.uint8)
    pred = truth.copy()
    pred[0, 0] = 255  # one pixel of 16, all channels: 255 / 16
    assert mean_absolute_error(pred, truth) == pytest.approx(255 / 16)
    assert mean_absolute_error(truth, pred) == mean_absolute_error(pred, truth)  # no uint8 wrap
    assert mean_absolute_error(pred[..., 0], truth[..., 0], channel_axis=None) == 255 / 16
    with pytest.raises(ValueError, match="differs"):
        mean_absolute_error(pred, truth[:2])


def test_tile_cells_cover_every_pixel_once() -> None:
    grid = TileGrid.create((50, 37), 16, 4)
    counts = np.zeros((50, 37), int)
    for cell in tile_cells((50, 37), grid):
        counts[cell] += 1
    assert (counts == 1).all()
    assert len(tile_cells((50, 37), grid)) == grid.n_tiles
    assert tile_cells((8,), [[3, 5]]) == [(slice(0, 3),), (slice(3, 5),), (slice(5, 8),)]
    with pytest.raises(ValueError, match="outside"):
        tile_cells((8,), [[8]])
    with pytest.raises(ValueError, match="covers"):
        tile_cells((9, 9), grid)


def test_tile_errors_and_deviation_on_known_offsets() -> None:
    truth = np.random.default_rng(0).integers(50, 200, (32, 48, 3)).astype(np.uint8)
    offsets = np.array([[0.0, 2.0, -2.0], [4.0, 0.0, 6.0]])
    pred = offsets_per_tile(truth, 16, offsets)
    grid = TileGrid.create((32, 48), 16, 0)
    np.testing.assert_allclose(tile_errors(pred, truth, grid), np.abs(offsets))
    assert tile_deviation(pred, truth, grid) == pytest.approx(np.abs(offsets).std())
    assert mean_absolute_error(pred, truth) == pytest.approx(np.abs(offsets).mean())
    # the same error everywhere: no tile-level deviation
    assert tile_deviation(truth + 5.0, truth, grid) == 0.0
    assert tile_deviation(pred, truth, [[], []]) == 0.0  # one tile


def test_tile_stat_spread_ignores_shared_offsets() -> None:
    truth = np.random.default_rng(1).integers(50, 200, (32, 32, 3)).astype(np.uint8)
    grid = TileGrid.create((32, 32), 16, 0)
    assert tile_stat_spread(truth + 7.0, truth, grid) == {"mean": 0.0, "std": 0.0}
    offsets = np.array([[1.0, -1.0], [3.0, -3.0]])
    spread = tile_stat_spread(offsets_per_tile(truth, 16, offsets), truth, grid)
    assert spread["mean"] == pytest.approx(offsets.std())
    assert spread["std"] == pytest.approx(0.0, abs=1e-9)
    contrast = truth.astype(np.float64)
    contrast[:16, :16] = 2 * contrast[:16, :16]  # one tile with twice the contrast
    assert tile_stat_spread(contrast, truth, grid)["std"] > 0


def test_tile_norm_jump_is_zero_when_every_tile_has_the_same_statistics() -> None:
    tile = np.random.default_rng(2).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    image = np.tile(tile, (3, 4, 1))  # every tile is the same pixels
    assert tile_norm_jump(image, 16) == pytest.approx(0.0, abs=1e-12)


def test_tile_norm_jump_grows_with_the_difference_between_tiles() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 1, (64, 64))
    ramp = np.linspace(0, 1, 64)[None, :]  # brightness rising across the tiles
    values = [tile_norm_jump(noise + k * ramp, 16, channel_axis=None) for k in (0, 2, 8)]
    assert values[0] < values[1] < values[2]
    # scale and offset of float images do not matter; uint8 is taken as the models see it
    assert tile_norm_jump(3 * noise + 1, 16, channel_axis=None) == pytest.approx(
        tile_norm_jump(noise, 16, channel_axis=None), rel=1e-4
    )
    image = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    assert tile_norm_jump(image, 16) == pytest.approx(tile_norm_jump(image / 127.5 - 1, 16))
    with pytest.raises(ValueError, match="no border"):
        tile_norm_jump(image, 64)
