"""``satikit train`` -> ``satikit translate`` -> colour error, on tiny circle data, 2D and 3D."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from satikit.cli import cli
from satikit.data.circles import make_circle_image
from satikit.io.images import read_image, write_image
from satikit.metrics import colour_error

TINY = "-o ngf 4 -o n_blocks 1 -o ndf 4 -o n_layers 1 -o pool_size 2".split()


def circles(tmp_path, dims: int, size: int) -> None:
    """Tiny benchmark-like data: train/x, train/y and one test image with labels."""
    rng = np.random.default_rng(0)
    shape, count = (size,) * dims, 12 if dims == 2 else 6
    for domain in "xy":
        (tmp_path / domain).mkdir()
        image, _ = make_circle_image(
            domain, shape=shape, count=count, diameter=8, noise_sigma=20, rng=rng
        )
        write_image(tmp_path / domain / "0.tif", image)
    image, labels = make_circle_image(
        "x", shape=shape, count=count, diameter=8, noise_sigma=20, rng=rng
    )
    write_image(tmp_path / "test_x.tif", image)
    np.save(tmp_path / "labels.npy", labels)


def invoke(*args: str):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def train_args(data, out, *extra, steps: int | None = 1, crop: int = 16) -> list[str]:
    """``satikit train`` on the ``circles`` data in ``data`` on the CPU; ``steps=None``: no
    ``--steps`` (e.g. for ``--epochs`` in ``extra``)."""
    length = [] if steps is None else ["--steps", steps]
    args = ["train", "--x", data / "x", "--y", data / "y", "--out", out, *length]
    return [str(a) for a in (*args, "--crop", crop, "--device", "cpu", *extra)]


def train(data, out, *extra, **kwargs):
    """Train the tiny CycleGAN quietly (see :func:`train_args`); the run must succeed."""
    return invoke(*train_args(data, out, "--quiet", *extra, *TINY, **kwargs))


@pytest.fixture
def run(tmp_path):
    """A one-step tiny CycleGAN run on 2D circle data, both in ``tmp_path``."""
    circles(tmp_path, 2, 64)
    train(tmp_path, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize("dims, size, crop", [(2, 64, 16), (3, 24, 8)])
def test_train_translate_evaluate(tmp_path, dims, size, crop):
    circles(tmp_path, dims, size)
    run = tmp_path / "run"
    train(tmp_path, run, steps=2, crop=crop)
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["dims"] == dims and config["training"]["step"] == 2
    labels = np.load(tmp_path / "labels.npy")
    for strategy in ("none", "simple", "weighted", "sati"):
        out = tmp_path / f"{strategy}.tif"
        invoke("translate", run, tmp_path / "test_x.tif", out, "--strategy", strategy, "--quiet")
        image = read_image(out)
        assert image.shape == (*(size,) * dims, 3) and image.dtype == np.uint8
        result = colour_error(image, labels)
        assert result.n_objects == len(np.unique(labels[labels > 0])) > 0
        assert result.error_rate == result.n_errors / result.n_objects


def test_translate_defaults_raster_order_and_folders(tmp_path, run):
    invoke("translate", run, tmp_path / "test_x.tif", tmp_path / "wave.tif", "--quiet")
    invoke(
        "translate",
        run,
        tmp_path / "test_x.tif",
        tmp_path / "raster.tif",
        "--order",
        "raster",
        "--tile",
        "32",
        "--overlap",
        "8,8",
        "--quiet",
    )
    wave, raster = read_image(tmp_path / "wave.tif"), read_image(tmp_path / "raster.tif")
    assert np.abs(wave.astype(int) - raster.astype(int)).max() <= 1  # same up to rounding
    invoke("translate", run, tmp_path / "x", tmp_path / "out_dir", "--quiet")
    assert (tmp_path / "out_dir" / "0.tif").is_file()
    result = CliRunner().invoke(
        cli, ["translate", str(run), str(tmp_path / "test_x.tif"), str(tmp_path / "wave.tif")]
    )
    assert result.exit_code == 2 and "exists" in result.output
    invoke(
        "translate",
        run,
        tmp_path / "test_x.tif",
        tmp_path / "wave.tif",
        "--force",
        "--seam",
        "start",
        "--quiet",
    )
    # beyond the paper: strips end inside their predecessors; recorded for --resume
    invoke(
        "translate",
        run,
        tmp_path / "test_x.tif",
        tmp_path / "margin.npy",
        "--margin",
        "4",
        "--quiet",
    )
    assert np.abs(np.load(tmp_path / "margin.npy").astype(int) - wave.astype(int)).max() > 1


@pytest.mark.parametrize("strategy", ["none", "weighted", "sati"])
def test_out_of_core_file_output_equals_in_memory(tmp_path, run, strategy):
    from satikit.checkpoint import load_adapter
    from satikit.translation.translate import translate_array, translate_file

    adapter, config = load_adapter(run)
    expected = translate_array(
        adapter, config, read_image(tmp_path / "test_x.tif"), strategy=strategy
    )
    out = translate_file(
        adapter, config, tmp_path / "test_x.tif", tmp_path / "o.npy", strategy=strategy
    )
    assert np.array_equal(np.load(out), expected)


def test_no_sati_resume_and_ablation_flags(tmp_path):
    circles(tmp_path, 2, 64)
    run = tmp_path / "run"
    train(tmp_path, run, "--no-sati")
    config = json.loads((run / "config.json").read_text())
    assert not config["sati"]["enabled"] and config["inference"]["strategy"] == "weighted"
    assert config["encoding"] == {"domain_encoding": False}  # the plain host GAN's [-1, 1]
    invoke("train", "--out", run, "--resume", "--steps", 3, "--quiet", "--threads", 1)
    assert json.loads((run / "config.json").read_text())["training"]["step"] == 3
    refused = CliRunner().invoke(
        cli, ["train", "--out", str(run), "--resume", "--bn-recalibration", "5", "--quiet"]
    )
    assert refused.exit_code != 0 and "--bn-recalibration 5 (it used 100)" in refused.output
    ablation = tmp_path / "ablation"
    ablation_flags = (
        "--no-overlap-sampling --no-domain-encoding --no-loss-ramping --no-pixel-weighting "
        "--lambda-stitch 5 --overlap 6 --strip-source neighbour --lambda-consistency 2 "
        "--lambda-d-sati 0.5 --sati-start 0.25 --bn-recalibration 0"
    )
    train(tmp_path, ablation, *ablation_flags.split())
    epochs = tmp_path / "epochs"
    train(tmp_path, epochs, "--epochs", 2, steps=None)
    assert json.loads((epochs / "config.json").read_text())["training"]["steps"] == 2
    assert json.loads((ablation / "config.json").read_text())["training"]["bn_recalibration"] == 0
    sati = json.loads((ablation / "config.json").read_text())["sati"]
    assert sati == {
        "enabled": True,
        "overlap": 6,
        "overlap_sampling": False,
        "domain_encoding": False,
        "loss_ramping": False,
        "pixel_weighting": False,
        "lambda_stitch": 5.0,
        "ramp_end": 1.0,
        "lambda_d_sati": 0.5,
        "strip_source": "neighbour",
        "lambda_consistency": 2.0,
        "start": 0.25,
    }


def test_statistics_context_trains_and_is_recorded(tmp_path):
    circles(tmp_path, 2, 64)
    run = tmp_path / "run"
    train(tmp_path, run, "--statistics-context", 3, "--bn-recalibration", 0)  # 48 px regions
    config = json.loads((run / "config.json").read_text())
    assert config["sati"]["statistics_context"] == 3 and config["training"]["step"] == 1
    refused = CliRunner().invoke(
        cli,
        train_args(
            tmp_path, tmp_path / "both", "--statistics-context", "2", "--strip-source", "neighbour"
        ),
    )
    assert refused.exit_code == 2 and "cannot be combined" in refused.output
    assert not (tmp_path / "both" / "config.json").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--adapter", "nope"], "unknown adapter 'nope'"),
        (["-o", "depth", "3"], "no option 'depth'"),
        (["-o", "ngf", "many"], "invalid value 'many' for option 'ngf'"),
        (["--crop", "128"], "smaller than the crop"),
    ],
)
def test_train_errors_name_the_bad_input(tmp_path, extra, message):
    circles(tmp_path, 2, 64)
    result = CliRunner().invoke(cli, train_args(tmp_path, tmp_path / "run", *extra))
    assert result.exit_code == 2 and message in result.output


def test_translate_refuses_wrong_channels_and_existing_runs(tmp_path):
    circles(tmp_path, 2, 64)
    run = tmp_path / "run"
    args = train_args(tmp_path, run, "--quiet", *TINY)
    invoke(*args)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "already holds a run" in result.output
    write_image(tmp_path / "grey.tif", np.zeros((32, 32), np.uint8))
    result = CliRunner().invoke(
        cli, ["translate", str(run), str(tmp_path / "grey.tif"), str(tmp_path / "o.tif")]
    )
    assert result.exit_code == 2 and "1 channels; the run was trained on 3" in result.output


def test_demo_quick(tmp_path):
    out = tmp_path / "demo"
    result = invoke("demo", "--quick", "--steps", 3, "--out", out)
    assert "under a minute" in result.output.splitlines()[0]
    for label in (
        "Standard + no tiling",
        "Standard + simple tiling",
        "Standard + weighted tiling",
        "SATI ",
    ):
        assert label in result.output
    results = json.loads((out / "results.json").read_text())
    assert [r["strategy"] for r in results["rows"]] == [
        "none",
        "simple",
        "weighted",
        "sati",
        "none",
        "weighted",  # the tiling without training the benchmark chose, with KIN 5
    ]
    assert results["rows"][-1]["method"] == "Standard + weighted 25% + KIN 5"
    for r in results["rows"]:
        assert r["objects"] > 0 and r["error_percent"] == round(100 * r["errors"] / r["objects"], 2)
    assert (out / "seams.png").is_file()
    assert (out / "runs" / "small" / "sati" / "config.json").is_file()
    again = invoke("demo", "--quick", "--steps", 3, "--out", out)  # reuses data and models
    assert "reusing the trained sati model" in again.output


def test_demo_large_objects_preset_uses_its_tiles_circles_and_statistics(tmp_path):
    out = tmp_path / "demo"
    invoke("demo", "--quick", "--steps", 2, "--out", out)  # the small preset first, same folder
    result = invoke("demo", "--quick", "--steps", 2, "--preset", "large-objects", "--out", out)
    assert "large-objects circle dataset (16 px circles)" in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["preset"] == "large-objects"
    assert all(r["paper_median_percent"] is None for r in results["rows"])
    sati = json.loads((out / "runs" / "large-objects" / "sati" / "config.json").read_text())
    assert sati["inference"]["tile"] == [64, 64] and sati["inference"]["overlap"] == [16, 16]
    assert sati["sati"]["lambda_consistency"] == 0.0 and sati["training"]["steps"] == 1
    assert sati["sati"]["lambda_d_sati"] == 0.5  # the benchmark's validation choice
    manifest = json.loads((out / "data" / "large-objects" / "manifest.json").read_text())
    assert manifest["params"]["diameter"] == 16
    # the held-out image is the preset's (not the small demo's circles in the same folder)
    assert {r["objects"] for r in results["rows"]} <= set(range(60, 100))  # ~94 circles
    assert [r["method"] for r in results["rows"]][-3:] == [
        "Standard + weighted 50% + TIN",
        "SATI + TIN",
        "SATI + KIN 5",
    ]


def test_demo_restain_preset_scores_against_the_truth(tmp_path):
    out = tmp_path / "demo"
    result = invoke("demo", "--quick", "--steps", 2, "--preset", "restain", "--out", out)
    assert "immunohistochemistry" in result.output
    results = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in results["rows"]}
    assert rows["Standard + no tiling"]["seam_score"] is None
    for row in rows.values():
        assert 0 <= row["mae"] <= 255 and row["tile_deviation"] >= 0
    assert rows["Standard + simple + dense"]["seam_score"] > 0
    # the held-out image is the mosaic of the slide's test part, beside its true Y
    manifest = json.loads((out / "data" / "restain" / "manifest.json").read_text())
    assert manifest["kind"] == "restain" and manifest["params"]["crop"] == 32
    sati = json.loads((out / "runs" / "restain" / "sati" / "config.json").read_text())
    assert sati["inference"]["tile"] == [128, 128] and sati["inference"]["overlap"] == [32, 32]
    assert (out / "seams.png").is_file()


def test_demo_uses_shipped_models_by_default(tmp_path, monkeypatch):
    from satikit.commands import demo as demo_module

    # stand-ins for the shipped pair: the two tiny models a quick demo trains
    invoke("demo", "--quick", "--steps", 2, "--out", tmp_path / "train")
    shipped = tmp_path / "shipped"
    for name in ("standard", "sati"):
        target = shipped / f"demo-{name}"
        target.mkdir(parents=True)
        for item in ("config.json", "model.safetensors"):
            source = tmp_path / "train" / "runs" / "small" / name / item
            (target / item).write_bytes(source.read_bytes())
    monkeypatch.setattr(demo_module, "PRETRAINED", shipped)
    monkeypatch.setattr(demo_module, "FULL", demo_module.QUICK)  # keep the data tiny
    out = tmp_path / "demo"
    result = invoke("demo", "--out", out)
    assert "shipped" in result.output.splitlines()[0]
    assert "training the" not in result.output
    assert (out / "pretrained" / "small" / "sati" / "model.safetensors").is_file()
    assert not (out / "runs").exists()
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["strategy"] for r in rows] == [
        "none",
        "simple",
        "weighted",
        "sati",
        "none",
        "weighted",
    ]


def test_demo_without_shipped_models_trains(tmp_path, monkeypatch):
    from satikit.commands import demo as demo_module

    monkeypatch.setattr(demo_module, "PRETRAINED", tmp_path / "nothing")
    monkeypatch.setattr(demo_module, "FULL", dataclasses.replace(demo_module.QUICK, steps=2))
    result = invoke("demo", "--out", tmp_path / "demo")
    assert "training the standard CycleGAN" in result.output
    assert "fine-tuning it with SATI: the sati CycleGAN" in result.output
