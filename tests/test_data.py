"""Tests of the benchmark generators, presets, dataset writer and array I/O."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from satikit.data import (
    CIRCLE_PRESETS,
    LAYOUT,
    CirclePreset,
    EllipsoidParams,
    ball_footprint,
    get_preset,
    list_images,
    make_circle_dataset,
    make_circle_image,
    make_ellipsoid_dataset,
    make_ellipsoid_volume,
    place_circles,
    place_ellipsoids,
    read_image,
    render_x,
    render_y,
    write_image,
)
from satikit.io.atomic import atomic_path, read_json, write_json

SIGMA = 58.0
HALF_NORMAL_MEAN = SIGMA / math.sqrt(2 * math.pi)  # E[max(0, N(0, sigma))] = 23.1


def boxes_of(labels: np.ndarray) -> list[tuple[slice, ...]]:
    from scipy import ndimage

    return ndimage.find_objects(labels)


# --- footprint and placement ----------------------------------------------------------------


@pytest.mark.parametrize(("diameter", "ndim"), [(1, 2), (10, 2), (40, 2), (7, 2), (8, 3)])
def test_ball_footprint_spans_the_diameter(diameter: int, ndim: int) -> None:
    foot = ball_footprint(diameter, ndim)
    assert foot.shape == (diameter,) * ndim
    for axis in range(ndim):
        assert foot.any(axis=tuple(a for a in range(ndim) if a != axis)).all()
        np.testing.assert_array_equal(foot, np.flip(foot, axis))
    nominal = math.pi ** (ndim / 2) / math.gamma(ndim / 2 + 1) * (diameter / 2) ** ndim
    if diameter >= 8:
        assert foot.sum() == pytest.approx(nominal, rel=0.1)


def test_ball_footprint_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="diameter"):
        ball_footprint(0, 2)
    with pytest.raises(ValueError, match="ndim"):
        ball_footprint(3, 0)


@pytest.mark.parametrize(
    ("shape", "count", "diameter"), [((128, 128), 60, 10), ((32, 32, 32), 40, 8)]
)
def test_labels_match_the_painted_balls_exactly(shape, count, diameter) -> None:
    labels = place_circles(shape, count, diameter, np.random.default_rng(1))
    assert labels.dtype == np.uint16
    np.testing.assert_array_equal(np.unique(labels), np.arange(count + 1))
    foot = ball_footprint(diameter, len(shape))
    interior = 0
    for index, box in enumerate(boxes_of(labels)):
        piece = labels[box] == index + 1
        touches_border = any(s.start == 0 or s.stop == n for s, n in zip(box, shape, strict=True))
        if not touches_border:  # a whole ball: exactly the footprint
            np.testing.assert_array_equal(piece, foot)
            interior += 1
        else:  # clipped: a piece of the footprint, never more
            assert piece.sum() <= foot.sum()
    assert interior >= count // 4


def test_placement_is_deterministic_per_seed() -> None:
    a = place_circles((96, 96), 30, 10, np.random.default_rng(5))
    b = place_circles((96, 96), 30, 10, np.random.default_rng(5))
    c = place_circles((96, 96), 30, 10, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_coverage_of_the_small_preset_density() -> None:
    # 1/16 of the small preset's area with 1/16 of its circles: ~30 % coverage
    labels = place_circles((128, 128), 62, 10, np.random.default_rng(2))
    assert 0.27 < (labels > 0).mean() < 0.31


def test_centres_are_uniform_and_touch_the_border() -> None:
    labels = place_circles((200, 200), 300, 6, np.random.default_rng(3))
    ys, xs = np.nonzero(labels)
    assert labels[0].any() and labels[-1].any() and labels[:, 0].any() and labels[:, -1].any()
    # the four quadrants hold about the same number of object pixels
    quarters = np.histogram2d(ys, xs, bins=2, range=[[0, 200], [0, 200]])[0]
    assert quarters.min() > 0.8 * quarters.max()


def test_density_gradient_off_leaves_images_byte_identical() -> None:
    """Pinned on the code before the option existed."""
    import hashlib

    digest = hashlib.sha256()
    for domain in "xy":
        image, labels = make_circle_image(
            domain,
            shape=(64, 48),
            count=12,
            diameter=6,
            noise_sigma=20.0,
            rng=np.random.default_rng(5),
        )
        digest.update(image.tobytes())
        digest.update(labels.tobytes())
    assert digest.hexdigest() == (
        "734d911175b897862f6aa7c7f5498bf64f3c7f3506899ef6412ac7af2e77368c"
    )
    a = place_circles((96, 96), 30, 10, np.random.default_rng(5))
    b = place_circles((96, 96), 30, 10, np.random.default_rng(5), density_gradient=0.0)
    np.testing.assert_array_equal(a, b)


def test_density_gradient_thins_objects_down_the_first_axis() -> None:
    labels = place_circles((512, 128), 160, 8, np.random.default_rng(4), density_gradient=0.9)
    assert labels.max() == 160
    rows, cols = np.nonzero(labels)
    ids = labels[rows, cols].astype(np.int64)
    size = np.bincount(ids)[1:]
    centre_row = np.bincount(ids, weights=rows)[1:] / size
    centre_col = np.bincount(ids, weights=cols)[1:] / size
    # density 1 + g (1 - 2 t): 72.5 % of the centres in the first half, 5x more in the first
    # quarter than in the last; the other axis stays uniform
    assert 0.62 < (centre_row < 256).mean() < 0.82
    quarters = np.histogram(centre_row, bins=4, range=(0, 512))[0]
    assert quarters[0] > 3 * quarters[-1], quarters
    assert 0.38 < (centre_col < 64).mean() < 0.62
    with pytest.raises(ValueError, match=r"density_gradient must be in \[0, 1\)"):
        place_circles((64, 64), 5, 6, np.random.default_rng(0), density_gradient=1.0)


def test_density_gradient_preset_and_manifest(tmp_path: Path) -> None:
    preset = get_preset("density-gradient")
    assert preset.density_gradient == 0.8 and preset.shape == (512, 512)
    assert "density_gradient" not in get_preset("small").as_dict()  # manifests unchanged
    with pytest.raises(ValueError, match="density_gradient"):
        preset.replace(density_gradient=-0.1)
    tiny = preset.replace(size=48, count=10, diameter=6, n_images=1, n_test=1)
    manifest = make_circle_dataset(tmp_path / "d", tiny, seed=1)
    assert manifest["params"]["density_gradient"] == 0.8
    again = make_circle_dataset(tmp_path / "e", tiny, seed=1)
    assert again == manifest
    x = read_image(tmp_path / "d" / LAYOUT["train_x"] / "00000.tif")
    np.testing.assert_array_equal(x, read_image(tmp_path / "e" / LAYOUT["train_x"] / "00000.tif"))


def test_too_many_circles_raise_with_the_placed_count() -> None:
    with pytest.raises(ValueError, match=r"could place only \d+ of 500"):
        place_circles((64, 64), 500, 10, np.random.default_rng(0), max_candidates=2000)
    with pytest.raises(ValueError, match="exceeds"):
        place_circles((8, 8), 1, 10, np.random.default_rng(0))


def test_many_objects_use_uint32() -> None:
    labels = place_circles((400, 400), 70_000, 1, np.random.default_rng(0))
    assert labels.dtype == np.uint32 and labels.max() == 70_000


# --- rendering ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    labels = place_circles((256, 256), 250, 10, rng)
    x = render_x(labels, SIGMA, rng)
    y, colours = render_y(labels, SIGMA, rng)
    return labels, x, y, colours


def test_clean_images_are_exactly_the_labels(scene) -> None:
    labels = scene[0]
    rng = np.random.default_rng(0)
    x = render_x(labels, 0.0, rng)
    np.testing.assert_array_equal(x[..., 0] == 255, labels > 0)
    np.testing.assert_array_equal(x[..., 0] == 0, labels == 0)
    y, colours = render_y(labels, 0.0, rng)
    assert set(np.unique(y)) <= {0, 255}
    for channel in range(3):
        np.testing.assert_array_equal(
            y[..., channel] == 255, np.isin(labels, np.flatnonzero(colours == channel) + 1)
        )


def test_x_statistics(scene) -> None:
    labels, x = scene[0], scene[1]
    assert x.dtype == np.uint8 and x.shape == (*labels.shape, 3)
    np.testing.assert_array_equal(x[..., 0], x[..., 1])  # grey copied to RGB
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    grey = x[..., 0].astype(float)
    background, circles = grey[labels == 0], grey[labels > 0]
    # noise clipped at 0 / 255: means of the half-normal, half the pixels at the bound
    assert background.mean() == pytest.approx(HALF_NORMAL_MEAN, rel=0.05)
    assert 255 - circles.mean() == pytest.approx(HALF_NORMAL_MEAN, rel=0.05)
    assert (background == 0).mean() == pytest.approx(0.5, abs=0.03)
    # the unclipped half recovers sigma: E[N^2 | N > 0] = sigma^2
    assert np.sqrt((background[background > 0] ** 2).mean()) == pytest.approx(SIGMA, rel=0.05)


def test_y_statistics(scene) -> None:
    labels, _, y, colours = scene
    assert y.dtype == np.uint8 and y.shape == (*labels.shape, 3)
    own = np.zeros(labels.shape, dtype=bool)
    for channel in range(3):
        own_c = np.isin(labels, np.flatnonzero(colours == channel) + 1)
        on, off = y[..., channel][own_c].astype(float), y[..., channel][~own_c].astype(float)
        assert 255 - on.mean() == pytest.approx(HALF_NORMAL_MEAN, rel=0.06)
        assert off.mean() == pytest.approx(HALF_NORMAL_MEAN, rel=0.06)
        own |= own_c
    assert own.sum() == (labels > 0).sum()
    # channel-wise noise: independent between channels on the background
    bg = y[labels == 0].astype(float)
    correlation = np.corrcoef(bg.T)
    assert np.abs(correlation[np.triu_indices(3, 1)]).max() < 0.05
    # colours drawn uniformly
    assert np.bincount(colours, minlength=3).min() > 250 / 3 * 0.7


def test_render_y_validates_colours(scene) -> None:
    labels = scene[0]
    with pytest.raises(ValueError, match="colours"):
        render_y(labels, 0, np.random.default_rng(0), colours=np.zeros(3, int))


def test_make_circle_image_domains() -> None:
    for domain in ("x", "y"):
        image, labels = make_circle_image(
            domain,
            shape=(64, 64),
            count=8,
            diameter=10,
            noise_sigma=SIGMA,
            rng=np.random.default_rng(0),
        )
        assert image.shape == (64, 64, 3) and labels.max() == 8
    with pytest.raises(ValueError, match="domain"):
        make_circle_image(
            "z", shape=(8, 8), count=1, diameter=2, noise_sigma=0, rng=np.random.default_rng(0)
        )


def test_3d_spheres() -> None:
    image, labels = make_circle_image(
        "y",
        shape=(32, 32, 32),
        count=50,
        diameter=8,
        noise_sigma=SIGMA,
        rng=np.random.default_rng(0),
    )
    assert image.shape == (32, 32, 32, 3) and labels.shape == (32, 32, 32)
    assert labels.max() == 50
    assert 0.25 < (labels > 0).mean() < 0.45


# --- ellipsoids -----------------------------------------------------------------------------


def test_ellipsoid_volume_values() -> None:
    params = EllipsoidParams(size=48, count=30, n_images=1, n_test=0)
    volume, labels = make_ellipsoid_volume(params, rng=np.random.default_rng(0))
    assert volume.dtype == np.uint8 and volume.shape == labels.shape == (48, 48, 48)
    assert labels.max() == 30
    fg, bg = volume[labels > 0].astype(float), volume[labels == 0].astype(float)
    assert fg.mean() == pytest.approx(130, abs=0.2) and bg.mean() == pytest.approx(10, abs=0.1)
    assert bg.std() == pytest.approx(3.33, rel=0.05)  # rounded but not clipped at 10 +- 3.33
    clean, _ = make_ellipsoid_volume(params.replace(noise_sigma=0.0), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(clean, np.where(labels > 0, 130, 10))


def test_ellipsoids_are_oriented_and_sized_in_range() -> None:
    labels = place_ellipsoids((64, 64, 64), 20, (3.0, 6.0), np.random.default_rng(1))
    sizes = np.bincount(labels.ravel())[1:]
    assert len(sizes) == 20
    assert sizes.max() <= 4 / 3 * math.pi * 6**3 * 1.2
    assert np.median(sizes) >= 4 / 3 * math.pi * 3**3 * 0.8


def test_ellipsoid_params_validate() -> None:
    with pytest.raises(ValueError, match="semi_axes"):
        EllipsoidParams(semi_axes=(5.0, 2.0))
    with pytest.raises(ValueError, match="foreground"):
        EllipsoidParams(foreground=300)
    assert EllipsoidParams().shape == (256, 256, 256)  # section IV-C


# --- presets --------------------------------------------------------------------------------


def test_paper_preset_matches_the_paper() -> None:
    paper = get_preset("paper")
    assert (paper.size, paper.count, paper.diameter) == (2048, 1000, 40)
    assert (paper.n_images, paper.n_test, paper.noise_sigma) == (512, 50, 58.0)
    assert paper.coverage == pytest.approx(0.30, abs=0.01)


def test_small_preset_keeps_the_paper_ratios() -> None:
    paper, small = get_preset("paper"), get_preset("small")
    assert small.size * 4 == paper.size and small.diameter * 4 == paper.diameter
    assert small.count == paper.count
    assert small.coverage == pytest.approx(paper.coverage, abs=0.02)
    assert (small.n_images, small.n_test) == (48, 8)


def test_large_objects_preset_makes_circles_as_wide_as_the_overlap() -> None:
    small, large = get_preset("small"), get_preset("large-objects")
    assert large.size == small.size and large.diameter == 64 // 4  # the 25 % overlap of tile 64
    assert large.coverage == pytest.approx(0.30, abs=0.01)
    assert large.count * large.n_test >= 5000  # enough test objects for a stable median
    with pytest.raises(ValueError, match="no circle preset 'large-objects' for dims=3"):
        get_preset("large-objects", 3)


def test_3d_presets_and_lookup() -> None:
    for name in ("paper", "small"):
        preset = get_preset(name, 3)
        assert preset.dims == 3 and preset.coverage == pytest.approx(0.3, abs=0.03)
    assert set(CIRCLE_PRESETS) == {
        ("paper", 2),
        ("small", 2),
        ("large-objects", 2),
        ("density-gradient", 2),
        ("paper", 3),
        ("small", 3),
    }
    with pytest.raises(ValueError, match="no circle preset 'huge'"):
        get_preset("huge")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"diameter": 0}, "diameter"),
        ({"size": 8, "diameter": 10}, "exceeds"),
        ({"noise_sigma": -1.0}, "noise_sigma"),
        ({"count": 2.5}, "count"),
    ],
)
def test_preset_validation(changes, match) -> None:
    with pytest.raises(ValueError, match=match):
        get_preset("small").replace(**changes)


# --- I/O ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3),
        np.arange(4 * 5 * 6 * 3, dtype=np.uint8).reshape(4, 5, 6, 3),
        np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6),
        np.full((7, 8), 70_000, dtype=np.uint32),
    ],
)
def test_write_read_roundtrip(tmp_path: Path, array: np.ndarray) -> None:
    path = write_image(tmp_path / "a.tif", array)
    back = read_image(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert [p.name for p in tmp_path.iterdir()] == ["a.tif"]  # no temporary file left


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "keep.tif"
    write_image(target, np.ones((4, 4), np.uint8))
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    np.testing.assert_array_equal(read_image(target), np.ones((4, 4), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]


def test_io_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must end in"):
        write_image(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        write_image(tmp_path / "a.tif", np.zeros((0, 2), np.uint8))
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.tif")
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "nope")


def test_list_images_sorted_tiffs_only(tmp_path: Path) -> None:
    for name in ("b.tif", "a.TIFF", "c.tiff", ".hidden.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "d.tif").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.TIFF", "b.tif", "c.tiff"]


def test_json_roundtrip(tmp_path: Path) -> None:
    data = {"a": [1, 2.5, "x"], "b": None}
    assert read_json(write_json(tmp_path / "m.json", data)) == data


# --- dataset writer -------------------------------------------------------------------------

TINY = CirclePreset(size=64, count=12, diameter=10, noise_sigma=SIGMA, n_images=2, n_test=2)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_circle_dataset_layout_and_manifest(tmp_path: Path) -> None:
    manifest = make_circle_dataset(tmp_path / "ds", TINY, seed=3)
    root = tmp_path / "ds"
    circle_keys = ["train_x", "train_labels", "train_y", "train_y_labels", "test_x", "test_labels"]
    assert list(manifest["layout"]) == circle_keys
    for key, folder in manifest["layout"].items():
        assert LAYOUT[key] == folder
        expected = TINY.n_test if key.startswith("test") else TINY.n_images
        names = [p.name for p in list_images(root / folder)]
        assert names == [f"{i:05d}.tif" for i in range(expected)], key
    assert read_json(root / "manifest.json") == manifest
    assert manifest["seed"] == 3 and manifest["params"]["diameter"] == 10
    assert manifest["counts"]["test_x"] == 2 and "satikit_version" in manifest
    x, labels = read_image(root / "test/x/00000.tif"), read_image(root / "test/labels/00000.tif")
    assert x.shape == (64, 64, 3) and x.dtype == np.uint8
    assert labels.shape == (64, 64) and labels.max() == 12
    y, y_labels = (
        read_image(root / "train/y/00001.tif"),
        read_image(root / "train/y_labels/00001.tif"),
    )
    assert y.shape == (64, 64, 3) and y_labels.max() == 12


def test_circle_dataset_is_reproducible_byte_for_byte(tmp_path: Path) -> None:
    make_circle_dataset(tmp_path / "a", TINY, seed=9)
    make_circle_dataset(tmp_path / "b", TINY, seed=9)
    make_circle_dataset(tmp_path / "c", TINY, seed=10)
    a, b, c = (tree_bytes(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys() and a["train/x/00000.tif"] != c["train/x/00000.tif"]


def test_test_images_are_not_training_images(tmp_path: Path) -> None:
    make_circle_dataset(tmp_path, TINY.replace(n_images=4, n_test=4), seed=0, force=True)
    train = [read_image(p).tobytes() for p in list_images(tmp_path / "train/labels")]
    y = [read_image(p).tobytes() for p in list_images(tmp_path / "train/y_labels")]
    test = [read_image(p).tobytes() for p in list_images(tmp_path / "test/labels")]
    assert len(set(train) | set(y) | set(test)) == 12  # all independent draws


def test_circle_dataset_refuses_non_empty_unless_force(tmp_path: Path) -> None:
    (tmp_path / "other.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        make_circle_dataset(tmp_path, TINY)
    make_circle_dataset(tmp_path, TINY.replace(n_images=3), force=True)
    make_circle_dataset(tmp_path, TINY, force=True)  # fewer images: stale ones must go
    assert len(list_images(tmp_path / "train/x")) == 2
    assert (tmp_path / "other.txt").read_text() == "keep me"


def test_circle_dataset_overrides_and_3d(tmp_path: Path) -> None:
    manifest = make_circle_dataset(
        tmp_path, "small", dims=3, size=24, count=10, diameter=6, n_images=1, n_test=1
    )
    assert manifest["params"]["dims"] == 3
    assert read_image(tmp_path / "train/y/00000.tif").shape == (24, 24, 24, 3)
    assert read_image(tmp_path / "test/labels/00000.tif").shape == (24, 24, 24)
    with pytest.raises(ValueError, match="unknown circle parameters"):
        make_circle_dataset(tmp_path / "z", "small", colour="red")
    with pytest.raises(ValueError, match="seed"):
        make_circle_dataset(tmp_path / "z", TINY, seed=-1)


def test_ellipsoid_dataset(tmp_path: Path) -> None:
    params = EllipsoidParams(size=32, count=8, n_images=2, n_test=1)
    manifest = make_ellipsoid_dataset(tmp_path, params, seed=1)
    assert manifest["kind"] == "ellipsoids" and manifest["params"]["background"] == 10
    assert len(list_images(tmp_path / "train/x")) == 2
    assert len(list_images(tmp_path / "test/labels")) == 1
    volume = read_image(tmp_path / "train/x/00000.tif")
    assert volume.shape == (32, 32, 32) and volume.dtype == np.uint8
    again = tmp_path / "again"
    make_ellipsoid_dataset(again, params, seed=1)
    assert (again / "train/x/00001.tif").read_bytes() == (
        tmp_path / "train/x/00001.tif"
    ).read_bytes()
