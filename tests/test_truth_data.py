"""The datasets with a known true Y (``textured``, ``restain``): generators, the CLI, and
``satikit evaluate`` on them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from satikit.cli import cli
from satikit.data import list_images, read_image, write_image
from satikit.data.circles import make_circle_image
from satikit.data.restain import (
    BUNDLED,
    load_source,
    mirror_mosaic,
    restain,
    split_geometry,
)
from satikit.data.textured import (
    TexturedParams,
    colour_by_intensity,
    intensity_lut,
    make_textured_image,
)
from satikit.io.atomic import read_json
from satikit.metrics import tile_norm_jump

TEXTURED = "--size 64 --tile 16 --n-images 2 --n-test 2 --no-progress".split()
RESTAIN = "--crop 32 --n-images 3 --no-progress".split()


def run(*args: object) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def colour_image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A smooth colour picture: channels that vary differently across the image, plus noise."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    rng = np.random.default_rng(seed)
    image = np.stack(
        [
            120 + 60 * np.sin(rows / 9),
            100 + 50 * np.cos(cols / 7),
            160 + 40 * np.sin((rows + cols) / 11),
        ],
        axis=-1,
    )
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def textured_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("textured") / "ds"
    result = run("dataset", "textured", out, *TEXTURED)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def restain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("restain") / "ds"
    result = run("dataset", "restain", out, *RESTAIN)
    assert result.exit_code == 0, result.output
    return out


# --- textured ---------------------------------------------------------------------------------


def test_textured_writes_the_layout(textured_dir: Path) -> None:
    manifest = read_json(textured_dir / "manifest.json")
    assert manifest["kind"] == "textured"
    assert manifest["params"]["size"] == 64 and manifest["params"]["tile"] == 16
    assert manifest["layout"] == {
        "train_x": "train/x",
        "train_y": "train/y",
        "test_x": "test/x",
        "test_y_true": "test/y_true",
    }
    for folder in ("train/x", "train/y", "test/x", "test/y_true"):
        assert [p.name for p in list_images(textured_dir / folder)] == ["00000.tif", "00001.tif"]
    image = read_image(textured_dir / "train/x/00000.tif")
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


def test_textured_is_reproducible_by_seed(textured_dir: Path, tmp_path: Path) -> None:
    assert run("dataset", "textured", tmp_path / "same", *TEXTURED).exit_code == 0
    assert run("dataset", "textured", tmp_path / "other", *TEXTURED, "--seed", "1").exit_code == 0
    for name in ("train/x/00001.tif", "train/y/00000.tif", "test/y_true/00001.tif"):
        same = (tmp_path / "same" / name).read_bytes()
        assert same == (textured_dir / name).read_bytes()
        assert same != (tmp_path / "other" / name).read_bytes()


def test_textured_x_and_y_are_independent_draws(textured_dir: Path) -> None:
    for name in ("00000.tif", "00001.tif"):
        x = read_image(textured_dir / "train/x" / name)
        y = read_image(textured_dir / "train/y" / name)
        assert (colour_by_intensity(x) == y).all(axis=-1).mean() < 0.5
        # nor the colour map of any other X image
        for other in list_images(textured_dir / "train/x"):
            assert not (colour_by_intensity(read_image(other)) == y).all()


def test_textured_y_colour_follows_intensity(textured_dir: Path) -> None:
    lut = intensity_lut()
    assert (np.diff(lut.astype(int), axis=0) >= 0).all()  # every channel rises
    assert (np.diff(lut.astype(int).sum(axis=1)) > 0).all()  # strictly: invertible
    for path in list_images(textured_dir / "train/y"):
        y = read_image(path).reshape(-1, 3)
        on_map = (y[:, None, :] == lut[None, :, :]).all(axis=-1).any(axis=1)
        assert on_map.all()  # every Y pixel is the colour of some intensity


def test_textured_truth_is_the_map_of_the_test_image(textured_dir: Path) -> None:
    for path in list_images(textured_dir / "test/x"):
        truth = read_image(textured_dir / "test/y_true" / path.name)
        x = read_image(path)
        np.testing.assert_array_equal(truth, colour_by_intensity(x))
        intensity = (x.astype(int).sum(axis=-1) + 1) // 3
        np.testing.assert_array_equal(truth, intensity_lut()[intensity])


def test_colour_by_intensity_rounds_the_channel_mean() -> None:
    pixels = np.array([[[0, 0, 1], [0, 1, 1], [255, 255, 254], [10, 20, 30]]], np.uint8)
    lut = intensity_lut()
    np.testing.assert_array_equal(colour_by_intensity(pixels)[0], lut[[0, 1, 255, 20]])
    with pytest.raises(ValueError, match="8-bit RGB"):
        colour_by_intensity(pixels.astype(np.float32))


def test_textured_params_are_checked() -> None:
    with pytest.raises(ValueError, match="wavelength"):
        TexturedParams(wavelength=(2.0, 8.0))
    with pytest.raises(ValueError, match="brightness"):
        TexturedParams(brightness=1.5)
    with pytest.raises(ValueError, match="size"):
        TexturedParams(size=0)


def test_textured_statistics_vary_far_more_than_the_circles() -> None:
    """The probe of the textured data is at least 3x that of the circles (256 px, 64 px
    tiles: the small preset's circle density and sizes, the textured data scaled to the tile)."""
    textured = TexturedParams(size=256, tile=64)
    tex = [
        tile_norm_jump(make_textured_image(textured, np.random.default_rng(i)), 64)
        for i in range(2)
    ]
    circles = [
        tile_norm_jump(
            make_circle_image(
                "x",
                shape=(256, 256),
                count=250,
                diameter=10,
                noise_sigma=58.0,
                rng=np.random.default_rng(i),
            )[0],
            64,
        )
        for i in range(2)
    ]
    assert np.mean(tex) >= 3 * np.mean(circles)


def test_textured_rejects_bad_options(tmp_path: Path) -> None:
    result = run("dataset", "textured", tmp_path / "a", "--size", "0")
    assert result.exit_code == 2
    result = run("dataset", "textured", tmp_path / "a", "--tile", "0")
    assert result.exit_code == 2


# --- restain ----------------------------------------------------------------------------------


def test_bundled_images_load_offline() -> None:
    import skimage.data

    for name, bundled in BUNDLED.items():
        source = load_source(name)
        top, left, height, width = source.box
        expected = getattr(skimage.data, bundled.loader)()[top : top + height, left : left + width]
        np.testing.assert_array_equal(source.image, expected)
        assert source.sha256 == hashlib.sha256(source.path.read_bytes()).hexdigest()
        info = source.describe()
        assert info["licence"] and info["origin"] and info["path"].startswith("skimage/data/")
    assert load_source().name == "immunohistochemistry"
    assert load_source("retina").image.min(axis=-1).max() > 0  # the box holds no black corner


def test_restain_is_pixelwise_and_deterministic() -> None:
    image = colour_image((40, 40))
    y = restain(image)
    assert y.shape == image.shape and y.dtype == np.uint8
    np.testing.assert_array_equal(restain(image[5:20, 7:30]), y[5:20, 7:30])
    np.testing.assert_array_equal(restain(mirror_mosaic(image, 3)), mirror_mosaic(y, 3))
    np.testing.assert_array_equal(restain(image), y)
    assert np.abs(y.astype(int) - image).mean() > 5  # it does change the colours
    with pytest.raises(ValueError, match="stain map"):
        restain(image, "nope")


def test_mirror_mosaic_has_no_edges_of_its_own() -> None:
    image = np.arange(12).reshape(3, 4)
    mosaic = mirror_mosaic(image, 2)
    assert mosaic.shape == (6, 8)
    np.testing.assert_array_equal(mosaic[3:, :4], image[::-1])
    np.testing.assert_array_equal(mosaic[:3, 4:], image[:, ::-1])
    np.testing.assert_array_equal(mirror_mosaic(image, 1), image)


def test_split_geometry_keeps_the_parts_apart() -> None:
    geometry = split_geometry((512, 512), 128)
    assert geometry.train_x == (0, 0, 256, 256)
    assert geometry.train_y == (0, 256, 256, 256)
    assert geometry.test == (256, 0, 256, 512)
    with pytest.raises(ValueError, match="too small.*at least 256 x 256"):
        split_geometry((200, 512), 128)
    with pytest.raises(ValueError, match="test_fraction"):
        split_geometry((512, 512), 128, 1.0)


def test_restain_writes_the_task(restain_dir: Path) -> None:
    manifest = read_json(restain_dir / "manifest.json")
    assert manifest["kind"] == "restain"
    assert manifest["source"]["name"] == "immunohistochemistry"
    assert manifest["source"]["sha256"] == load_source().sha256
    assert manifest["stain_map"]["name"] == "dab-to-eosin"
    from skimage import color

    np.testing.assert_array_equal(manifest["stain_map"]["separate"], color.hed_from_rgb)
    np.testing.assert_array_equal(manifest["stain_map"]["combine"], color.rgb_from_hed[[0, 2, 1]])
    geometry = manifest["geometry"]
    assert geometry["test"] == [256, 0, 256, 512] and geometry["mosaic_shape"] == [512, 1024]
    source = load_source().image
    truth = restain(source)
    for domain, image in (("x", source), ("y", truth)):
        region = geometry[f"train_{domain}"]
        for index, (top, left) in enumerate(geometry[f"train_{domain}_corners"]):
            assert region[0] <= top <= region[0] + region[2] - 32
            assert region[1] <= left <= region[1] + region[3] - 32
            crop = read_image(restain_dir / f"train/{domain}" / f"{index:05d}.tif")
            np.testing.assert_array_equal(crop, image[top : top + 32, left : left + 32])
    # X crops from the left, Y crops from the right half: never the same place
    assert geometry["train_x"][1] + geometry["train_x"][3] <= geometry["train_y"][1]
    test_x = read_image(restain_dir / "test/x/00000.tif")
    np.testing.assert_array_equal(test_x, source[256:])
    np.testing.assert_array_equal(
        read_image(restain_dir / "test/y_true/00000.tif"), restain(test_x)
    )
    mosaic_x = read_image(restain_dir / "mosaic/x/00000.tif")
    assert mosaic_x.shape == (512, 1024, 3)
    np.testing.assert_array_equal(
        read_image(restain_dir / "mosaic/y_true/00000.tif"), restain(mosaic_x)
    )


def test_restain_is_reproducible_by_seed(restain_dir: Path, tmp_path: Path) -> None:
    assert run("dataset", "restain", tmp_path / "same", *RESTAIN).exit_code == 0
    assert run("dataset", "restain", tmp_path / "other", *RESTAIN, "--seed", "5").exit_code == 0
    for name in ("train/x/00002.tif", "train/y/00000.tif", "mosaic/y_true/00000.tif"):
        assert (tmp_path / "same" / name).read_bytes() == (restain_dir / name).read_bytes()
    assert (tmp_path / "other/train/x/00002.tif").read_bytes() != (
        restain_dir / "train/x/00002.tif"
    ).read_bytes()


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_restain_from_a_user_image(tmp_path: Path, suffix: str) -> None:
    image = colour_image((80, 96))
    path = tmp_path / f"slide{suffix}"
    if suffix == ".tif":
        write_image(path, image)
    else:
        Image.fromarray(np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])).save(path)
    out = tmp_path / "ds"
    result = run("dataset", "restain", out, "--source", path, "--crop", "16", "--n-images", "2")
    assert result.exit_code == 0, result.output
    manifest = read_json(out / "manifest.json")
    assert manifest["source"]["name"] is None
    assert manifest["source"]["path"] == str(path.resolve())
    assert manifest["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    np.testing.assert_array_equal(read_image(out / "test/x/00000.tif"), image[40:])
    np.testing.assert_array_equal(read_image(out / "test/y_true/00000.tif"), restain(image[40:]))
    box = run(
        "dataset", "restain", tmp_path / "box", "--source", path, "--crop", "8",
        "--n-images", "1", "--box", "10", "20", "40", "50",
    )  # fmt: skip
    assert box.exit_code == 0, box.output
    np.testing.assert_array_equal(
        read_image(tmp_path / "box/test/x/00000.tif"), image[30:50, 20:70]
    )


def test_restain_errors_are_clear(tmp_path: Path) -> None:
    result = run("dataset", "restain", tmp_path / "a", "--source", tmp_path / "missing.tif")
    assert result.exit_code == 2 and "no image file" in result.output
    assert "immunohistochemistry" in result.output  # names the bundled images
    small = tmp_path / "small.tif"
    write_image(small, colour_image((40, 40)))
    result = run("dataset", "restain", tmp_path / "b", "--source", small)
    assert result.exit_code == 2 and "too small" in result.output
    grey = tmp_path / "grey.tif"
    write_image(grey, np.repeat(colour_image((64, 64))[..., :1], 3, axis=-1))
    result = run("dataset", "restain", tmp_path / "c", "--source", grey, "--crop", "16")
    assert result.exit_code == 2 and "grey" in result.output
    flat = tmp_path / "flat.png"
    Image.fromarray(colour_image((64, 64))[..., 0]).save(flat)
    result = run("dataset", "restain", tmp_path / "d", "--source", flat, "--crop", "16")
    assert result.exit_code == 2 and "not an 8-bit RGB image" in result.output
    result = run("dataset", "restain", tmp_path / "e", "--box", "400", "0", "200", "200")
    assert result.exit_code == 2 and "leaves" in result.output
    for bad in ("a", "b", "c", "d", "e"):
        assert not (tmp_path / bad).exists()  # nothing written


# --- evaluate ---------------------------------------------------------------------------------


def per_tile_offsets(folder: Path, out: Path, tile: int, spread: int = 20) -> None:
    """Copy every image of ``folder`` to ``out`` with a random brightness offset per tile."""
    out.mkdir()
    rng = np.random.default_rng(0)
    for path in list_images(folder):
        image = read_image(path).astype(int)
        for top in range(0, image.shape[0], tile):
            for left in range(0, image.shape[1], tile):
                image[top : top + tile, left : left + tile] += rng.integers(-spread, spread + 1)
        write_image(out / path.name, np.clip(image, 0, 255).astype(np.uint8))


def test_evaluate_textured_truth_scores_zero(textured_dir: Path, tmp_path: Path) -> None:
    result = run(
        "evaluate", textured_dir / "test/y_true", textured_dir / "test/y_true",
        "--json", tmp_path / "r.json", "--png", tmp_path / "png", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "MAE" in result.output and "tile dev" in result.output
    report = read_json(tmp_path / "r.json")
    assert report["metric"] == "truth"
    assert report["settings"] == {"tile": 16, "overlap": 0}  # the manifest's tile
    total = report["total"]
    assert total["mae"] == total["tile_deviation"] == total["tile_mean_spread"] == 0.0
    assert total["seam_score"] == total["truth_seam_score"]
    assert report["images"][0]["n_tiles"] == 16
    picture = np.asarray(Image.open(tmp_path / "png/00000.png"))
    assert picture.shape == (64, 192, 3) and (picture[:, 128:] == 0).all()


def test_evaluate_sees_per_tile_offsets(textured_dir: Path, tmp_path: Path) -> None:
    per_tile_offsets(textured_dir / "test/y_true", tmp_path / "pred", 16)
    result = run("evaluate", tmp_path / "pred", textured_dir / "test/y_true", "--no-progress")
    assert result.exit_code == 0, result.output
    total = read_json(tmp_path / "pred/evaluation.json")["total"]
    assert total["mae"] > 1 and total["tile_deviation"] > 1 and total["tile_mean_spread"] > 1
    assert total["seam_score"] > 1.5 * total["truth_seam_score"]
    # on another grid the same offsets are no seams
    run("evaluate", tmp_path / "pred", textured_dir / "test/y_true", "--no-progress",
        "--tile", "24", "--json", tmp_path / "other.json")  # fmt: skip
    assert read_json(tmp_path / "other.json")["total"]["seam_score"] < total["seam_score"]


def test_evaluate_restain_mosaic(restain_dir: Path, tmp_path: Path) -> None:
    per_tile_offsets(restain_dir / "mosaic/y_true", tmp_path / "pred", 128)
    result = run(
        "evaluate", tmp_path / "pred", restain_dir / "mosaic/y_true", "--no-progress",
        "--overlap", "32",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "pred/evaluation.json")
    assert report["settings"] == {"tile": 128, "overlap": 32}
    assert report["images"][0]["n_pixels"] == 512 * 1024
    assert report["total"]["tile_deviation"] > 0


def test_evaluate_chooses_truth_without_a_manifest(textured_dir: Path, tmp_path: Path) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()
    for path in list_images(textured_dir / "test/y_true"):
        write_image(truth / path.name, read_image(path))
    result = run("evaluate", truth, truth, "--no-progress")
    assert result.exit_code == 0, result.output
    report = read_json(truth / "evaluation.json")
    assert report["metric"] == "truth" and report["settings"]["tile"] == 128
    result = run("evaluate", truth, truth, "--metric", "colour", "--no-progress")
    assert result.exit_code == 1  # RGB truth is no label image


def test_evaluate_truth_errors(textured_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    write_image(bad / "00000.tif", np.zeros((32, 32, 3), np.uint8))
    result = run("evaluate", bad, textured_dir / "test/y_true", "--no-progress")
    assert result.exit_code == 1 and "00000.tif" in result.output and "differs" in result.output
    result = run(
        "evaluate", textured_dir / "test/x", textured_dir / "test/y_true", "--overlap", "16",
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 1 and "overlap" in result.output
