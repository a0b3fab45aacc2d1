"""Tests of the colour-consistency metric (paper section II) on images with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satikit.data.circles import ball_footprint, place_circles, render_x, render_y
from satikit.metrics import (
    MIN_AREA_THRESHOLD,
    ColourErrorResult,
    area_threshold_for,
    ball_volume,
    colour_error,
    estimate_diameter,
    filter_radius_for,
    seam_positions,
    seam_score,
)

SIGMA = 58.0  # the noise of the benchmark presets (paper II)


def paint(shape: tuple[int, ...], starts: list[tuple[int, ...]], diameter: int) -> np.ndarray:
    """Labels with ball ``i + 1`` painted in the box starting at ``starts[i]`` (clipped)."""
    labels = np.zeros(shape, dtype=np.uint16)
    foot = ball_footprint(diameter, len(shape))
    for i, start in enumerate(starts):
        img_sl, foot_sl = [], []
        for s, n in zip(start, shape, strict=True):
            a, b = max(s, 0), min(s + diameter, n)
            img_sl.append(slice(a, b))
            foot_sl.append(slice(a - s, b - s))
        region = labels[tuple(img_sl)]
        assert not region[foot[tuple(foot_sl)]].any(), "test circles must not overlap"
        region[foot[tuple(foot_sl)]] = i + 1
    return labels


def colourise(
    labels: np.ndarray, colours: np.ndarray, seed: int = 0, sigma: float = SIGMA
) -> np.ndarray:
    """A Y image of ``labels`` with object ``i + 1`` in channel ``colours[i]`` plus noise."""
    return render_y(labels, sigma, np.random.default_rng(seed), colours=np.asarray(colours))[0]


def noisy(clean: np.ndarray, seed: int = 0, sigma: float = SIGMA) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, clean.shape)
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def split_colour(image: np.ndarray, labels: np.ndarray, ids, axis: int = -1) -> np.ndarray:
    """Cycle the channels of the objects ``ids`` in the half beyond their centre on ``axis``."""
    out = image.copy()
    for i in ids:
        where = np.nonzero(labels == i)
        cut = (where[axis].min() + where[axis].max() + 1) // 2
        half = tuple(w[where[axis] >= cut] for w in where)
        out[half] = np.roll(image[half], 1, axis=-1)
    return out


@pytest.fixture(scope="module")
def small_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """256^2, 250 circles of 10 px (the small preset's density), a ground-truth Y image."""
    rng = np.random.default_rng(7)
    labels = place_circles((256, 256), 250, 10, rng)
    image, colours = render_y(labels, SIGMA, rng)
    return image, labels, colours


@pytest.fixture(scope="module")
def paper_scene() -> tuple[np.ndarray, np.ndarray]:
    """256^2 with 12 circles of the paper's 40 px, a ground-truth Y image."""
    rng = np.random.default_rng(3)
    labels = place_circles((256, 256), 12, 40, rng)
    return render_y(labels, SIGMA, rng)[0], labels


# --- thresholds ---------------------------------------------------------------------------


def test_paper_thresholds_at_paper_size() -> None:
    assert area_threshold_for(40, 2) == pytest.approx(30.0, rel=1e-3)  # section II: 30 px^2
    assert filter_radius_for(40) == 2


def test_thresholds_scale_with_the_circle() -> None:
    assert filter_radius_for(80) == 4
    assert area_threshold_for(80, 2) == pytest.approx(4 * 30.0, rel=1e-3)
    # 3D: the same share of the sphere volume
    assert area_threshold_for(40, 3) == pytest.approx(30 / 1257 * ball_volume(40, 3))
    assert area_threshold_for(40, 3) == pytest.approx(800, rel=1e-2)


def test_noise_floors_for_small_circles() -> None:
    assert filter_radius_for(10) == 2
    assert area_threshold_for(10, 2) == MIN_AREA_THRESHOLD[2]
    assert area_threshold_for(4, 3) == MIN_AREA_THRESHOLD[3]


def test_estimate_diameter_from_labels(small_scene) -> None:
    _, labels, _ = small_scene
    assert estimate_diameter(labels) == pytest.approx(10, abs=0.3)
    assert math.isnan(estimate_diameter(np.zeros((4, 4), np.uint8)))


# --- known answers, 2D ----------------------------------------------------------------------


def test_ground_truth_scores_zero(small_scene, paper_scene) -> None:
    for image, labels in (small_scene[:2], paper_scene):
        result = colour_error(image, labels)
        assert result.n_objects == len(np.unique(labels)) - 1
        assert result.n_errors == 0
        assert result.error_rate == 0.0
        assert (result.n_colours == 1).all()


def test_present_channel_is_the_painted_colour(small_scene) -> None:
    image, labels, colours = small_scene
    result = colour_error(image, labels)
    np.testing.assert_array_equal(result.ids, np.arange(1, len(colours) + 1))
    np.testing.assert_array_equal(result.present.argmax(axis=1), colours)
    assert result.present.shape == (len(colours), 3)


@pytest.mark.parametrize("k", [1, 5, 17])
def test_k_split_circles_are_k_errors(small_scene, k: int) -> None:
    image, labels, _ = small_scene
    ids = np.random.default_rng(k).choice(np.arange(1, labels.max() + 1), k, replace=False)
    result = colour_error(split_colour(image, labels, ids), labels)
    assert result.n_errors == k
    assert result.n_multi_colour == k
    np.testing.assert_array_equal(result.error_ids, np.sort(ids))


def test_split_paper_size_circles(paper_scene) -> None:
    image, labels = paper_scene
    result = colour_error(split_colour(image, labels, [2, 5], axis=0), labels)
    np.testing.assert_array_equal(result.error_ids, [2, 5])


def test_speck_below_area_threshold_is_not_an_error() -> None:
    labels = paint((96, 96), [(20, 20)], 40)
    clean = np.zeros((96, 96, 3))
    clean[labels == 1, 0] = 255
    clean[38:41, 38:41] = (0, 255, 0)  # 9 px of green in a red circle: < 30 px^2 after smoothing
    result = colour_error(noisy(clean), labels)
    assert result.n_errors == 0
    assert result.present[0].tolist() == [True, False, False]


def test_speck_above_area_threshold_is_an_error() -> None:
    labels = paint((96, 96), [(20, 20)], 40)
    clean = np.zeros((96, 96, 3))
    clean[labels == 1, 0] = 255
    clean[36:44, 36:44] = (0, 255, 0)  # 64 px of green
    result = colour_error(noisy(clean), labels)
    assert result.n_errors == 1
    assert result.present[0].tolist() == [True, True, False]


def test_noise_only_circle_has_no_colour() -> None:
    labels = paint((64, 64), [(5, 5), (30, 30)], 20)
    clean = np.zeros((64, 64, 3))
    clean[labels == 1, 2] = 255  # circle 2 keeps only noise
    result = colour_error(noisy(clean), labels)
    assert result.n_errors == 1
    assert result.n_no_colour == 1
    assert result.error_ids.tolist() == [2]


def test_blended_circle_is_two_colours() -> None:
    labels = paint((64, 64), [(12, 12)], 40)
    clean = np.zeros((64, 64, 3))
    clean[labels == 1] = (128, 0, 128)  # purple: weighted tiling mixing red and blue
    assert colour_error(noisy(clean), labels).n_multi_colour == 1


def test_white_x_image_is_all_errors(small_scene) -> None:
    _, labels, _ = small_scene
    x = render_x(labels, SIGMA, np.random.default_rng(0))
    result = colour_error(x, labels)
    assert result.n_errors == result.n_objects
    assert (result.n_colours == 3).all()


def test_touching_circles_do_not_bleed() -> None:
    # a 4 x 12 grid of 10 px circles whose boxes abut: every circle touches its neighbours
    starts = [(2 + 10 * r, 2 + 10 * c) for r in range(4) for c in range(12)]
    labels = paint((44, 124), starts, 10)
    colours = np.arange(len(starts)) % 3
    touching = (labels[:, 1:] != labels[:, :-1]) & (labels[:, 1:] > 0) & (labels[:, :-1] > 0)
    assert touching.sum() >= 4 * 11  # the circles really touch
    for seed in range(3):
        assert colour_error(colourise(labels, colours, seed), labels, diameter=10).n_errors == 0
    split = split_colour(colourise(labels, colours), labels, [7, 30])
    assert colour_error(split, labels, diameter=10).error_ids.tolist() == [7, 30]


def test_circles_cut_by_the_border() -> None:
    starts = [(-20, -20), (-20, 50), (50, -18), (80, 84), (30, 30)]
    labels = paint((100, 100), starts, 40)
    assert len(np.unique(labels)) == 6
    colours = np.array([0, 1, 2, 0, 1])
    assert colour_error(colourise(labels, colours), labels, diameter=40).n_errors == 0
    split = split_colour(colourise(labels, colours), labels, [2, 4], axis=-2)
    assert colour_error(split, labels, diameter=40).error_ids.tolist() == [2, 4]


def test_sparse_ids_and_no_objects() -> None:
    labels = paint((64, 64), [(2, 2), (30, 30)], 20).astype(np.int32)
    image = colourise(labels, np.array([1, 2]))
    labels[labels == 2] = 1_000_000  # huge sparse id
    result = colour_error(image, labels)
    assert result.ids.tolist() == [1, 1_000_000]
    assert result.n_errors == 0
    empty = colour_error(image, np.zeros((64, 64), np.uint16))
    assert (empty.n_objects, empty.n_errors, empty.error_rate) == (0, 0, 0.0)


def test_summary_is_json_ready(small_scene) -> None:
    image, labels, _ = small_scene
    summary = colour_error(split_colour(image, labels, [3]), labels).summary()
    assert summary["n_errors"] == 1 and summary["error_ids"] == [3]
    assert isinstance(summary["error_rate"], float)
    assert summary["filter_radius"] == 2 and summary["value_threshold"] == 60


# --- known answers, 3D ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sphere_scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    labels = place_circles((40, 40, 40), 60, 8, rng)
    return render_y(labels, SIGMA, rng)[0], labels


def test_3d_ground_truth_scores_zero(sphere_scene) -> None:
    image, labels = sphere_scene
    result = colour_error(image, labels)
    assert result.n_objects == 60
    assert result.n_errors == 0


def test_3d_split_spheres_are_errors(sphere_scene) -> None:
    image, labels = sphere_scene
    for axis in (0, 1, 2):
        wrong = split_colour(image, labels, [4, 9, 33], axis=axis - 3)
        assert colour_error(wrong, labels).error_ids.tolist() == [4, 9, 33]


def test_3d_speck_and_empty_sphere() -> None:
    labels = paint((30, 30, 30), [(2, 2, 2), (15, 15, 15)], 12)
    clean = np.zeros((30, 30, 30, 3))
    clean[labels == 1, 1] = 255
    clean[labels == 2, 0] = 255
    clean[7:9, 7:9, 7] = (0, 0, 255)  # 4 voxels of blue in sphere 1: below the threshold
    result = colour_error(noisy(clean), labels, diameter=12)
    assert result.area_threshold > 4
    assert result.n_errors == 0
    clean[labels == 2, 0] = 0  # sphere 2 is only noise now
    assert colour_error(noisy(clean), labels, diameter=12).error_ids.tolist() == [2]


# --- properties -----------------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**16),
    count=st.integers(1, 20),
    diameter=st.integers(8, 16),
)
def test_clean_one_colour_images_never_err(seed: int, count: int, diameter: int) -> None:
    rng = np.random.default_rng(seed)
    labels = place_circles((128, 128), count, diameter, rng)
    image, _ = render_y(labels, 0.0, rng)
    result = colour_error(image, labels, diameter=diameter)
    assert result.n_errors == 0


@given(seed=st.integers(0, 2**16))
def test_verdicts_do_not_depend_on_id_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = place_circles((64, 64), 20, 10, rng)
    image = split_colour(render_y(labels, SIGMA, rng)[0], labels, [1, 2, 3])
    permutation = np.concatenate([[0], rng.permutation(np.arange(1, 21)) * 7])
    first = colour_error(image, labels, diameter=10)
    second = colour_error(image, permutation[labels], diameter=10)
    np.testing.assert_array_equal(
        first.present, second.present[np.argsort(np.argsort(permutation[1:]))]
    )


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "labels", "match"),
    [
        (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8), "uint8"),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), r"\(\*spatial, 3\)"),
        (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8), np.uint8), r"\(\*spatial, 3\)"),
        (np.zeros((8, 9, 3), np.uint8), np.zeros((8, 8), np.uint8), "differs"),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.float32), "integer"),
        (np.zeros((8, 8, 3), np.uint8), -np.ones((8, 8), np.int16), ">= 0"),
    ],
)
def test_bad_input_raises(image, labels, match) -> None:
    with pytest.raises(ValueError, match=match):
        colour_error(image, labels)


def test_bad_thresholds_raise() -> None:
    image, labels = np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), np.uint8)
    with pytest.raises(ValueError, match="diameter"):
        colour_error(image, labels, diameter=0)
    with pytest.raises(ValueError, match="value_threshold"):
        colour_error(image, labels, value_threshold=300)
    assert isinstance(colour_error(image, labels, diameter=8), ColourErrorResult)


# --- seam score -----------------------------------------------------------------------------


def test_seam_positions_follow_the_grid_cut() -> None:
    from satikit.stitching.grid import TileGrid

    # step 24, cut 4; the last tiles shifted back to end at the border (starts 68 and 28)
    grid = TileGrid.create((100, 60), 32, 8)
    assert seam_positions(grid) == ((28, 52, 72), (28, 32))
    start = TileGrid.create((100, 60), 32, 8, seam="start")
    assert seam_positions(start) == ((24, 48, 68), (24, 28))


def test_seam_score_on_known_arrays() -> None:
    # 1D ramp with slope 1, plus a step of 3 at each border: jumps 4 at borders, 1 elsewhere
    ramp = np.arange(40, dtype=np.float64)
    steps = 3.0 * (np.arange(40) >= 10) + 3.0 * (np.arange(40) >= 30)
    assert seam_score(ramp + steps, [[10, 30]]) == pytest.approx(4.0)
    assert seam_score(ramp, [[10, 30]]) == pytest.approx(1.0)  # no seam to see
    # 2D, channels last, uint8 (no wrap-around): tiles of constant brightness on a gradient
    y, x = np.mgrid[0:20, 0:30]
    image = (2 * y + x + 10 * (x >= 15)).astype(np.uint8)
    rgb = np.repeat(image[..., None], 3, axis=-1)
    # dim 0: every pair jumps 2; dim 1: 1 everywhere, 11 at the border x = 15
    border = 20 * 11 / 20  # one border column of 20 pairs
    inside = (19 * 30 * 2 + 20 * 28 * 1) / (19 * 30 + 20 * 28)
    assert seam_score(rgb, [[], [15]], channel_axis=-1) == pytest.approx(border / inside)
    assert seam_score(np.moveaxis(rgb, -1, 0), [[], [15]], channel_axis=0) == pytest.approx(
        border / inside
    )
    flat = np.zeros((8, 8))
    assert seam_score(flat, [[4], [4]]) == 1.0
    flat[4:] = 1
    assert seam_score(flat, [[4], []]) == float("inf")


def test_seam_score_rejects_bad_positions() -> None:
    with pytest.raises(ValueError, match="outside"):
        seam_score(np.zeros((8, 8)), [[8], []])
    with pytest.raises(ValueError, match="2 spatial dims"):
        seam_score(np.zeros((8, 8)), [[4]])
    with pytest.raises(ValueError, match="border"):
        seam_score(np.zeros((8, 8)), [[], []])
