"""The typed run configuration: old config.json files still load and round-trip exactly, the
inference settings resolve defaults <- recorded <- given in one place, and ``train --resume``
refuses options that contradict the run (as ``translate --resume`` does)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from satikit.checkpoint import (
    FORMAT,
    InferenceSettings,
    RunConfig,
    SATISettings,
    build_adapter,
    load_adapter,
    load_config,
    save_weights,
)
from satikit.checkpoint.config import resolve_inference
from satikit.cli import cli

DATA = Path(__file__).parent / "data"
OLD = sorted(DATA.glob("run-config-v1-*.json"))


@pytest.mark.parametrize("path", OLD, ids=lambda p: p.stem)
def test_stored_configs_round_trip_exactly(path: Path) -> None:
    stored = json.loads(path.read_text())
    config = RunConfig.from_dict(stored, source=str(path))
    assert config.to_dict() == stored
    assert list(config.to_dict()) == list(stored)  # the sections keep their order
    assert json.dumps(config.to_dict()) == json.dumps(stored)  # and so do their keys


def test_an_old_run_folder_loads_and_translates(tmp_path: Path) -> None:
    stored = json.loads((DATA / "run-config-v1-cached.json").read_text())
    config = RunConfig.from_dict(stored)
    assert config.adapter.name == "cyclegan" and config.adapter.options["ngf"] == 16
    assert config.training.step == config.training.steps == 2400
    assert config.crop == (64, 64) and config.encoding is False and not config.sati.enabled
    assert config.run_inference == InferenceSettings("weighted", (128, 128), (32, 32))
    # the run's weights file, as that run wrote it (the checksum in config.json is its own)
    save_weights(tmp_path / "model.safetensors", build_adapter(config).state_dict())
    from satikit.checkpoint.files import _sha256

    stored["checkpoint"]["files"] = {"model.safetensors": _sha256(tmp_path / "model.safetensors")}
    (tmp_path / "config.json").write_text(json.dumps(stored))
    adapter, loaded = load_adapter(tmp_path)
    assert loaded.to_dict() == stored and type(adapter).__name__ == "CycleGANAdapter"


def test_newer_or_unknown_formats_and_missing_fields_are_refused() -> None:
    stored = json.loads((DATA / "run-config-v1-shipped.json").read_text())
    assert stored["format"] == FORMAT == "satikit-run/1"
    for bad in ("satikit-run/2", "satikit-run/x", "other/1", None):
        with pytest.raises(ValueError, match="unknown checkpoint format"):
            RunConfig.from_dict({**stored, "format": bad}, source="cfg")
    missing = {**stored, "data": {k: v for k, v in stored["data"].items() if k != "dims"}}
    with pytest.raises(ValueError, match="cfg: missing field data.dims"):
        RunConfig.from_dict(missing, source="cfg")
    assert RunConfig.from_dict(stored).extra == {"trained_by": stored["trained_by"]}


def test_a_new_config_derives_what_a_trainer_fills_in() -> None:
    config = RunConfig()
    assert config.crop == (256, 256) and config.encoding is True  # paper IV-A, III-C
    assert config.run_inference.run_dict() == {
        "strategy": "sati",
        "tile": [512, 512],
        "overlap": [128, 128],
    }
    plain = RunConfig(sati=SATISettings(enabled=False))
    assert plain.encoding is False and plain.run_inference.strategy == "weighted"
    resolved = config.resolved(
        options={"ngf": 4},
        plugin="p",
        plugin_version="1",
        channels=(3, 3),
        output_dtype="uint8",
        world_size=1,
        version="v",
    )
    assert resolved.sati.overlap == 64 and resolved.sati.lambda_stitch == 10.0
    assert resolved.training.crop == (256, 256) and resolved.data.x == ()
    assert RunConfig.from_dict(resolved.to_dict()) == replace(resolved, domain_encoding=True)


def test_inference_settings_resolve_defaults_then_recorded_then_given() -> None:
    run = InferenceSettings(strategy="sati", tile=(64, 64), overlap=(16, 16), margin=(4, 4))
    plain = resolve_inference(run)
    assert (plain.strategy, plain.tile, plain.overlap, plain.margin) == (
        "sati",
        (64, 64),
        (16, 16),
        (4, 4),
    )
    assert (plain.seam, plain.batch_size, plain.norm_kernel) == ("middle", 1, "3")  # defaults
    given = resolve_inference(run, {"strategy": "weighted", "tile": 32, "seam": None})
    assert (given.strategy, given.tile, given.overlap, given.margin) == (
        "weighted",
        32,
        (16, 16),
        0,
    )
    assert given.seam == "middle"  # None: not given
    assert resolve_inference(replace(run, margin=None)).margin == 0  # the paper's grid
    assert resolve_inference(run, {"margin": 2}).margin == 2
    kernel = resolve_inference(run, {"norm_kernel": "5:gaussian"}).norm_kernel
    assert kernel == str(resolve_inference(run, {"norm_kernel": kernel}).norm_kernel)
    with pytest.raises(TypeError, match="unknown inference setting"):
        resolve_inference(run, {"tiles": 3})
    round_trip = InferenceSettings.from_dict(json.loads(json.dumps(given.to_dict())))
    assert round_trip == given and not given.differences(round_trip, given.names())
    assert given.differences(plain, ["strategy", "seam"]) == ["strategy"]


def test_simple_tiles_side_by_side_unless_an_overlap_is_given() -> None:
    run = InferenceSettings("weighted", (128, 128), (96, 96))  # the shipped standard run's
    assert resolve_inference(run, {"strategy": "simple"}).overlap == 0  # paper's simple
    assert resolve_inference(run, {"strategy": "simple", "overlap": 8}).overlap == 8
    assert resolve_inference(run).overlap == (96, 96)
    assert resolve_inference(run, {"strategy": "sati"}).overlap == (96, 96)
    recorded_simple = InferenceSettings("simple", 64, 16)
    assert resolve_inference(recorded_simple).overlap == 0


def test_a_run_records_how_its_strategy_is_best_run() -> None:
    plain = InferenceSettings("weighted", (64, 64), (32, 32))
    assert set(plain.run_dict()) == {"strategy", "tile", "overlap"}  # defaults stay unrecorded
    run = replace(plain, norm="thumbnail", thumbnail_scale=1.0, window="pyramid")
    recorded = run.run_dict()
    assert recorded["norm"] == "thumbnail" and recorded["thumbnail_scale"] == 1.0
    assert "norm_kernel" not in recorded
    read = InferenceSettings.from_dict(json.loads(json.dumps(recorded)))
    used = resolve_inference(read)
    assert (used.norm, used.thumbnail_scale, used.window) == ("thumbnail", 1.0, "pyramid")
    assert resolve_inference(read, {"norm": "tile"}).norm == "tile"  # given wins
    other = resolve_inference(read, {"strategy": "sati"})  # not the run's strategy
    assert (other.norm, other.window) == ("tile", "gaussian")
    assert resolve_inference(read, {"strategy": "none"}).norm == "tile"


def test_the_input_range_is_a_setting_in_its_cli_spelling() -> None:
    assert InferenceSettings(input_range="0,1000").input_range == (0.0, 1000.0)
    assert InferenceSettings(input_range=[0, 1]).to_dict(["input_range"]) == {
        "input_range": [0.0, 1.0]
    }
    assert InferenceSettings.from_dict({"input_range": "auto"}).input_range == "auto"
    with pytest.raises(ValueError, match="LO,HI"):
        InferenceSettings(input_range="1,0")


def test_a_run_records_the_values_it_was_trained_on(tiny_xy, tmp_path: Path) -> None:
    shipped = RunConfig.from_dict(json.loads((DATA / "run-config-v1-shipped.json").read_text()))
    assert shipped.data.input_dtype is None  # it predates the field: inferred
    assert (shipped.data.trained_dtype, shipped.data.trained_range) == ("uint8", (0.0, 255.0))
    sixteen = RunConfig().resolved(
        options={}, plugin="p", plugin_version="1", channels=(1, 3), output_dtype="uint8",
        world_size=1, version="v", input_dtype="uint16",
    )  # fmt: skip
    assert sixteen.to_dict()["data"]["input_dtype"] == "uint16"
    assert sixteen.to_dict()["data"]["input_range"] == [0.0, 65535.0]
    assert RunConfig.from_dict(sixteen.to_dict()).data == sixteen.data
    result = _train(tiny_xy("--out", str(tmp_path / "run"), "--no-sati"))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert (data["input_dtype"], data["input_range"]) == ("uint8", [0.0, 255.0])


def _train(args: list[str]):
    return CliRunner().invoke(cli, args)


def test_train_resume_refuses_options_that_contradict_the_run(tiny_xy, tmp_path: Path) -> None:
    run = tmp_path / "run"
    tiny = ["-o", "ngf", "4", "-o", "n_blocks", "1", "-o", "ndf", "4", "-o", "n_layers", "2"]
    first = _train(tiny_xy("--out", str(run), "--seed", "5", *tiny))
    assert first.exit_code == 0, first.output
    resume = ["train", "--out", str(run), "--resume", "--quiet", "--device", "cpu"]
    bad = _train([*resume, "--seed", "3", "-o", "ngf", "8", "--no-sati", "--crop", "16"])
    assert bad.exit_code == 2, bad.output
    message = " ".join(bad.output.split())
    assert "cannot resume the run in" in message
    for part in ("--seed 3 (it used 5)", "-o ngf 8 (it used 4)", "--no-sati (it used --sati)"):
        assert part in message
    assert "--crop 16,16 (it used 32,32)" in message
    assert load_config(run).training.step == 1  # nothing trained
    other = _train([*resume, "--x", str(tmp_path / "y"), "--init", str(run)])
    assert other.exit_code == 2 and "--init" in other.output and "--x" in other.output
    # agreeing options (the run's own values) and --steps are accepted
    same = _train([*resume, "--seed", "5", "--crop", "32", "-o", "ngf", "4", "--steps", "2"])
    assert same.exit_code == 0, same.output
    assert load_config(run).training.step == 2
