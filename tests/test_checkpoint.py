"""Checkpoints: safetensors + JSON only, bit-identical reloads, exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from satikit_cyclegan.plugin import TEST_OPTIONS

from satikit import __version__
from satikit.checkpoint import (
    AdapterSpec,
    RunConfig,
    TrainingSettings,
    load_adapter,
    load_config,
    load_train_state,
    pack,
    save_checkpoint,
    unpack,
)
from satikit.io.images import write_image
from satikit.training import SATITrainer


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    for domain in "xy":
        (tmp_path / domain).mkdir()
        for i in range(2):
            write_image(tmp_path / domain / f"{i}.tif", rng.integers(0, 256, (48, 48, 3), np.uint8))
    return tmp_path


def trainer_for(data, run: str, steps: int) -> SATITrainer:
    config = RunConfig(
        adapter=AdapterSpec("cyclegan", {**TEST_OPTIONS, "n_layers": 1, "pool_size": 2}),
        training=TrainingSettings(crop=16, steps=steps, batch_size=2),
    )
    return SATITrainer.from_dirs(config, [data / "x"], [data / "y"], data / run, device="cpu")


def test_pack_round_trip():
    state = {
        "step": 3,
        "betas": (0.5, 0.999),
        "by_index": {0: {"exp": torch.ones(2)}, 7: None},
        "nested": [torch.arange(3), {"f": 1.5, "s": "x", "b": True}],
    }
    skeleton, tensors = pack(state)
    json.dumps(skeleton)  # JSON-serialisable
    restored = unpack(json.loads(json.dumps(skeleton)), tensors)
    assert restored["betas"] == (0.5, 0.999) and set(restored["by_index"]) == {0, 7}
    assert torch.equal(restored["by_index"][0]["exp"], torch.ones(2))
    assert torch.equal(restored["nested"][0], torch.arange(3)) and restored["nested"][1]["b"]
    with pytest.raises(TypeError, match="state.bad"):
        pack({"bad": object()})


def test_run_directory_holds_only_safetensors_and_json(data):
    trainer = trainer_for(data, "run", 2)
    trainer.fit(progress=False)
    run = data / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json",
        "log.jsonl",
        "model.safetensors",
        "state.json",
        "state.safetensors",
    ]
    config = load_config(run)
    assert config.satikit_version == __version__ and config.adapter.name == "cyclegan"
    assert config.encoding is True
    assert config.sati.enabled and config.sati.overlap == 4
    saved = json.loads((run / "config.json").read_text())
    assert saved["inference"] == {"strategy": "sati", "tile": [32, 32], "overlap": [8, 8]}
    assert saved["encoding"] == {"domain_encoding": True} and saved["format"] == "satikit-run/1"
    assert set(load_file(run / "model.safetensors")) == set(trainer.adapter.state_dict())


def test_round_trip_gives_bit_identical_translations(data):
    trainer = trainer_for(data, "run", 2)
    trainer.fit(progress=False)
    x = torch.rand(2, 3, 32, 32) - 1
    expected = trainer.adapter.translate(x)
    adapter, _ = load_adapter(data / "run")
    assert torch.equal(adapter.translate(x), expected)


def test_resume_equals_an_uninterrupted_run(data):
    straight = trainer_for(data, "straight", 6)
    straight.fit(progress=False)

    first = trainer_for(data, "split", 6)
    while first.step < 3:
        first.train_step(*first.next_batch())
        first._log({"g_total": 0.0})
    first.save()
    first.train_step(*first.next_batch())  # an interrupted step after the checkpoint ...
    first._log({"g_total": 0.0})  # ... whose log line a resume must drop
    del first

    resumed = SATITrainer.resume(data / "split")
    assert resumed.step == 3
    resumed.fit(progress=False)
    a, b = straight.adapter.state_dict(), resumed.adapter.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    state_a, state_b = (
        straight.optimizers.generator.state_dict(),
        resumed.optimizers.generator.state_dict(),
    )
    assert all(
        torch.equal(state_a["state"][i]["exp_avg"], state_b["state"][i]["exp_avg"])
        for i in state_a["state"]
    )
    steps = [
        json.loads(line)["step"] for line in (data / "split" / "log.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_mismatched_state_is_refused(data):
    trainer = trainer_for(data, "run", 2)
    trainer.fit(progress=False)
    with pytest.raises(ValueError, match="step 2, config at step 5"):
        load_train_state(data / "run", step=5)
    with pytest.raises(FileNotFoundError, match="not a satikit run"):
        load_config(data / "x")


def test_saving_is_atomic_and_leaves_no_temp_files(data, monkeypatch):
    trainer = trainer_for(data, "run", 1)
    trainer.fit(progress=False)
    before = (data / "run" / "model.safetensors").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("satikit.checkpoint.files.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(data / "run", trainer.adapter, trainer.run_config())
    assert (data / "run" / "model.safetensors").read_bytes() == before
    assert not [p for p in (data / "run").iterdir() if p.name.startswith(".")]
