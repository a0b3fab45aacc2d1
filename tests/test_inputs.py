"""Input values: how a run reads them (integers at their dtype's range, floats on [0, 1]), the
cheap sampled check against the values it was trained on, ``--input-range``, the line of
resolved settings ``translate`` prints, and ``evaluate`` reading predictions the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from satikit.cli import cli
from satikit.commands.evaluate import evaluate_folder
from satikit.io.images import write_image
from satikit.io.input_range import parse_input_range, resolve_input_range, sample, sample_windows

ROOT = Path(__file__).resolve().parents[1]
STANDARD = ROOT / "satikit" / "pretrained" / "demo-standard"  # uint8, weighted, tile 128


# -- the sample --------------------------------------------------------------------------
def test_the_sample_takes_a_small_image_whole():
    assert sample_windows((40, 30)) == [(slice(0, 40), slice(0, 30))]


@pytest.mark.parametrize("spatial", [(10_000, 7_000), (600, 500, 400), (100_000, 20)])
def test_the_sample_is_a_bounded_grid_reaching_both_borders(spatial):
    windows = sample_windows(spatial)
    assert len(windows) <= 64
    assert sum(np.prod([s.stop - s.start for s in w]) for w in windows) <= 2**16
    for axis, size in enumerate(spatial):
        assert min(w[axis].start for w in windows) == 0
        assert max(w[axis].stop for w in windows) == size


class CountingReads:
    """An array that counts the values its reads return."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.shape, self.dtype, self.read = array, array.shape, array.dtype, 0

    def __getitem__(self, key):
        block = self.array[key]
        self.read += block.size
        return block


def test_the_check_reads_a_sample_not_the_image():
    image = np.zeros((4096, 4096, 3), np.uint16)
    image[4095, 4095] = 4000  # in the last window
    counted = CountingReads(image)
    with pytest.raises(ValueError, match="uint16 values 0..4000"):
        resolve_input_range(counted, dims=2, name="big.tif", expected="uint8")
    assert counted.read == 3 * 2**16  # 1/256 of the image
    assert sample(image, 2).size == counted.read


# -- what is accepted, what is refused ------------------------------------------------------
@pytest.mark.parametrize(
    "text, parsed",
    [(None, None), ("auto", "auto"), ("0,1000", (0.0, 1000.0)), ((-1, 1), (-1.0, 1.0))],
)
def test_input_ranges_parse(text, parsed):
    assert parse_input_range(text) == parsed


@pytest.mark.parametrize("bad", ["5,1", "1,1", "0", "0,1,2", "a,b", "0,nan", "0,inf", ""])
def test_bad_input_ranges_are_refused_quoting_them(bad):
    with pytest.raises(ValueError, match=f"LO,HI .*got {bad!r}"):
        parse_input_range(bad)


def resolve(image: np.ndarray, given=None, expected="uint8"):
    return resolve_input_range(image, dims=2, name="in.tif", expected=expected, given=given)


def test_images_of_the_trained_dtype_and_floats_in_0_1_are_read_as_they_are():
    rng = np.random.default_rng(0)
    assert resolve(rng.integers(0, 256, (20, 20, 3), np.uint8)) is None
    assert resolve(rng.random((20, 20, 3)).astype(np.float32)) is None  # on [0, 1]
    assert resolve(rng.integers(0, 65536, (20, 20), np.uint16), expected="uint16") is None
    assert resolve(np.ones((20, 20), np.float64)) is None


def test_other_values_are_refused_naming_what_was_seen_and_expected():
    floats = np.linspace(-0.5, 1.3, 400, dtype=np.float32).reshape(20, 20)
    with pytest.raises(ValueError) as refused:
        resolve(floats)
    assert str(refused.value) == (
        "in.tif: float32 values -0.5..1.3 (sampled), outside [0, 1], where float images are "
        "read (1.0 is white: 255 in the uint8 images the run was trained on); pass "
        "--input-range LO,HI to map [LO, HI] to 0..255 (e.g. --input-range=-0.5,1.3, or auto "
        "for the image's own sampled min and max)"
    )
    with pytest.raises(ValueError, match=r"uint8 values 0..0 .* uint16 images \(0..65535\)"):
        resolve(np.zeros((4, 4), np.uint8), expected="uint16")  # and no "auto" for one value
    with pytest.raises(ValueError, match="float images are read .*1.0 in the float32 images"):
        resolve(floats, expected="float32")
    with pytest.raises(ValueError, match="non-finite"):
        resolve(np.full((4, 4), np.nan, np.float32))


def test_a_given_range_is_taken_and_auto_is_the_sampled_extent():
    image = np.arange(100, 500, dtype=np.uint16).reshape(20, 20)
    assert resolve(image, (0, 4095)) == (0.0, 4095.0)
    assert resolve(image, "auto") == (100.0, 499.0)
    with pytest.raises(ValueError, match="auto found only the value 3"):
        resolve(np.full((8, 8), 3, np.uint16), "auto")


# -- translate: acceptance on the shipped standard run ---------------------------------------
def translate(source: Path, target: Path, *extra: str):
    args = ["translate", str(STANDARD), str(source), str(target), "--device", "cpu"]
    return CliRunner().invoke(cli, [*args, "--strategy", "none", *extra])


@pytest.fixture(scope="module")
def circles(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A 64 x 64 uint8 X image of the shipped run's kind (discs on a dark ground)."""
    folder = tmp_path_factory.mktemp("inputs")
    yy, xx = np.mgrid[:64, :64]
    image = np.full((64, 64, 3), 20, np.uint8)
    for cy, cx in ((16, 16), (40, 44), (50, 12)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = 230
    image = (image + np.random.default_rng(0).integers(0, 20, image.shape)).astype(np.uint8)
    write_image(folder / "x.tif", image)
    result = translate(folder / "x.tif", folder / "y.tif", "--quiet")
    assert result.exit_code == 0, result.output
    return folder, tifffile.imread(folder / "y.tif")


def test_a_float_0_1000_image_with_its_range_translates_like_its_uint8_copy(circles, tmp_path):
    folder, expected = circles
    image = tifffile.imread(folder / "x.tif")  # the uint8 copy of ...
    write_image(tmp_path / "f.tif", image.astype(np.float32) * np.float32(1000 / 255))  # this
    refused = translate(tmp_path / "f.tif", tmp_path / "refused.tif")
    assert refused.exit_code == 2 and "float32 values 78.4314..976.471" in refused.output
    assert not (tmp_path / "refused.tif").exists()
    mapped = translate(tmp_path / "f.tif", tmp_path / "y.tif", "--input-range", "0,1000")
    assert mapped.exit_code == 0, mapped.output
    assert np.abs(tifffile.imread(tmp_path / "y.tif").astype(int) - expected).max() <= 1
    # the generator's instance norms undo any affine map of the values; clipping they cannot
    clipped = translate(tmp_path / "f.tif", tmp_path / "o.tif", "--input-range", "0,500")
    assert clipped.exit_code == 0, clipped.output
    assert np.abs(tifffile.imread(tmp_path / "o.tif").astype(int) - expected).max() > 1


def test_floats_in_0_1_are_read_as_0_255(circles, tmp_path):
    folder, expected = circles
    image = tifffile.imread(folder / "x.tif")
    write_image(tmp_path / "f.tif", image.astype(np.float32) / 255)
    result = translate(tmp_path / "f.tif", tmp_path / "y.tif")
    assert result.exit_code == 0, result.output
    assert "input float32 0..1 read as uint8 0..255" in result.output
    assert np.abs(tifffile.imread(tmp_path / "y.tif").astype(int) - expected).max() <= 1


def test_auto_maps_a_uint16_image_by_its_own_extent(circles, tmp_path):
    folder, _ = circles
    image = tifffile.imread(folder / "x.tif").astype(float)
    stretched = np.rint((image - image.min()) * 255 / (image.max() - image.min()))
    write_image(tmp_path / "s.tif", stretched.astype(np.uint8))  # 0..255
    write_image(tmp_path / "w.tif", (stretched * 16 + 1000).astype(np.uint16))  # 1000..5080
    result = translate(tmp_path / "w.tif", tmp_path / "y.tif", "--input-range", "auto")
    assert result.exit_code == 0, result.output
    assert "input uint16 1000..5080 (--input-range auto) read as uint8 0..255" in result.output
    assert translate(tmp_path / "s.tif", tmp_path / "s_y.tif", "--quiet").exit_code == 0
    reference = tifffile.imread(tmp_path / "s_y.tif").astype(int)
    assert np.abs(tifffile.imread(tmp_path / "y.tif").astype(int) - reference).max() <= 1


def test_the_values_reach_the_generator_as_those_of_the_uint8_image(circles, tmp_path):
    """What the network sees (the outputs alone cannot tell: the CycleGAN's instance norms
    undo any affine map of its input)."""
    from satikit.checkpoint import load_config
    from satikit.translation.translate import open_input

    config = load_config(STANDARD)
    image = tifffile.imread(circles[0] / "x.tif")
    copies = {
        "unit.tif": (image.astype(np.float32) / 255, None),
        "f1000.tif": (image.astype(np.float32) * np.float32(1000 / 255), (0, 1000)),
        "u16.tif": (image.astype(np.uint16) * 16 + 7, (7, 255 * 16 + 7)),
    }
    expected = open_input(config, circles[0] / "x.tif")[...]
    for name, (copy, given) in copies.items():
        write_image(tmp_path / name, copy)
        seen = open_input(config, tmp_path / name, given)[...]
        np.testing.assert_allclose(seen, expected, atol=1e-6, err_msg=name)
    auto = open_input(config, tmp_path / "u16.tif", "auto")[...]
    low, high = int(image.min()) * 16 + 7, int(image.max()) * 16 + 7
    np.testing.assert_allclose(auto, open_input(config, tmp_path / "u16.tif", (low, high))[...])


def test_translate_says_the_settings_it_used_and_simple_tiles_side_by_side(circles, tmp_path):
    folder, _ = circles
    args = ["translate", str(STANDARD), str(folder / "x.tif"), "--device", "cpu"]
    simple = CliRunner().invoke(cli, [*args, str(tmp_path / "s.tif"), "--strategy", "simple"])
    assert simple.exit_code == 0, simple.output
    lines = [line for line in simple.stderr.splitlines() if line.startswith("x.tif: ")]
    assert lines == [
        "x.tif: strategy simple, tile 128, overlap 0, norm tile (each tile's own statistics); "
        "input uint8 0..255, as trained"
    ]
    weighted = CliRunner().invoke(cli, [*args, str(tmp_path / "w.tif"), "--norm", "thumbnail"])
    overlap = json.loads((STANDARD / "config.json").read_text())["inference"]["overlap"][0]
    said = (
        f"x.tif: strategy weighted, tile 128, overlap {overlap}, window gaussian, norm thumbnail "
    )
    assert said in weighted.stderr  # the run's recorded strategy and overlap, the given norm
    sati = CliRunner().invoke(cli, [*args, str(tmp_path / "t.tif"), "--strategy", "sati",
                                    "--overlap", "16", "--margin", "8", "--quiet"])  # fmt: skip
    assert sati.exit_code == 0 and "strategy" not in sati.output, sati.output


def test_translate_uses_the_statistics_a_run_recorded_unless_told_otherwise(circles, tmp_path):
    """A shipped model records the statistics its method was chosen with; the CLI's defaults
    must not override them."""
    import shutil

    folder, _ = circles
    run = tmp_path / "run"
    shutil.copytree(STANDARD, run)
    config = json.loads((run / "config.json").read_text())
    config["inference"].update(
        strategy="weighted", tile=[128, 128], overlap=[96, 96], norm="kernel", norm_kernel="5"
    )
    (run / "config.json").write_text(json.dumps(config))
    args = ["translate", str(run), str(folder / "x.tif"), "--device", "cpu"]
    recorded = CliRunner().invoke(cli, [*args, str(tmp_path / "r.tif")])
    assert recorded.exit_code == 0, recorded.output
    assert "strategy weighted, tile 128, overlap 96, window gaussian, norm kernel (5)" in (
        recorded.stderr
    )
    given = CliRunner().invoke(cli, [*args, str(tmp_path / "g.tif"), "--norm", "tile"])
    assert "norm tile (each tile's own statistics)" in given.stderr
    other = CliRunner().invoke(cli, [*args, str(tmp_path / "o.tif"), "--strategy", "simple"])
    assert "norm tile" in other.stderr  # recorded for the run's own strategy only


# -- evaluate reads predictions the same way ------------------------------------------------
def test_evaluate_scores_floats_and_mapped_ranges_like_uint8(tmp_path):
    labels = np.zeros((32, 32), np.uint16)
    labels[4:12, 4:12], labels[18:28, 16:26] = 1, 2
    prediction = np.zeros((32, 32, 3), np.uint8)
    prediction[labels == 1, 0] = 200  # red
    prediction[labels == 2, 1] = 90  # green, then also blue: an error
    prediction[labels == 2, 2] = 90
    (tmp_path / "labels").mkdir()
    write_image(tmp_path / "labels" / "a.tif", labels)
    variants = {
        "u8": (prediction, None),
        "float": (prediction.astype(np.float32) / 255, None),
        "u16": (prediction.astype(np.uint16) * 257, (0, 65535)),
        "auto": (prediction.astype(np.uint16) * 10 + 5, "auto"),
    }
    totals = {}
    for name, (image, given) in variants.items():
        (tmp_path / name).mkdir()
        write_image(tmp_path / name / "a.tif", image)
        report = evaluate_folder(
            tmp_path / name, tmp_path / "labels", diameter=8, input_range=given
        )
        totals[name] = report["total"]
    assert totals["u8"]["n_objects"] == 2 and totals["u8"]["n_errors"] == 1
    assert all(total == totals["u8"] for total in totals.values()), totals
    with pytest.raises(ValueError, match="uint16 values 5..2005 .*evaluate scores uint8"):
        evaluate_folder(tmp_path / "auto", tmp_path / "labels", diameter=8)
