"""The SATI trainer: Alg. 1 step, switches, schedules, crops, samples and logs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from satikit_cyclegan.plugin import TEST_OPTIONS

import satikit.training.hooks as hooks
from satikit.checkpoint import (
    AdapterSpec,
    DataSpec,
    InferenceSettings,
    RunConfig,
    SATISettings,
    TrainingSettings,
)
from satikit.encoding import encode
from satikit.io.arrays import ChannelFirst, infer_dims
from satikit.io.images import write_image
from satikit.plugins import create_adapter
from satikit.training import SATITrainer
from satikit.training.crops import CropSampler

SATI_TERMS = {"adv_zy", "stitch", "d_sati", "lambda_stitch"}
HOST_TERMS = {"adv_xy", "adv_yx", "cycle_x", "cycle_y", "idt_x", "idt_y", "d_x", "d_y"}


def run_config(*, dims: int = 2, options=None, sati=None, **training) -> RunConfig:
    """A cyclegan run config from flat settings."""
    return RunConfig(
        adapter=AdapterSpec("cyclegan", dict(options or {})),
        data=DataSpec(dims=dims),
        training=TrainingSettings(**training),
        sati=sati or SATISettings(),
    )


def make_trainer(dims: int = 2, crop: int = 32, steps: int = 10, **sati) -> SATITrainer:
    adapter = create_adapter("cyclegan", dims=dims, **{**TEST_OPTIONS, "n_layers": 1})
    config = run_config(dims=dims, crop=crop, steps=steps, sati=SATISettings(**sati))
    return SATITrainer(adapter, config, device="cpu")


def batch(dims: int = 2, size: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (2, 3, *(size,) * dims)
    return torch.rand(shape, generator=g) - 1, torch.rand(shape, generator=g)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("dims", [2, 3])
def test_sati_steps_change_all_networks_and_give_finite_terms(dims):
    trainer = make_trainer(dims=dims, crop=16 if dims == 3 else 32)
    before = snapshot(trainer.adapter)
    x, y = batch(dims, 16 if dims == 3 else 32)
    for _ in range(3):
        terms = trainer.train_step(x, y)
    assert HOST_TERMS | SATI_TERMS | {"g_host", "d_host", "g_total", "d_total"} <= set(terms)
    assert all(torch.isfinite(v) for v in terms.values())
    after = trainer.adapter.state_dict()
    for prefix in ("generator_xy", "generator_yx", "discriminator_y", "discriminator_x"):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))
    assert trainer.step == 3
    assert all(p.requires_grad for p in trainer.adapter.discriminator_y.parameters())


@pytest.mark.parametrize("weight", [1.0, 0.5, 0.0])
def test_discriminator_loss_adds_the_weighted_sati_term(weight):
    trainer = make_trainer(lambda_d_sati=weight)
    terms = trainer.train_step(*batch())
    expected = terms["d_host"] + weight * terms["d_sati"]
    assert torch.allclose(terms["d_total"], expected) and terms["d_sati"] > 0


def test_no_sati_runs_only_the_host(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("merge must not run without SATI")

    monkeypatch.setattr(hooks, "merge", fail)
    terms = make_trainer(enabled=False).train_step(*batch())
    assert not SATI_TERMS & set(terms) and terms["g_total"] == terms["g_host"]


def test_stitch_loss_drops_when_it_dominates():
    """With a large λ_stitch on a fixed batch the stitch loss really gets trained down."""
    adapter = create_adapter("cyclegan", **{**TEST_OPTIONS, "ngf": 8, "lr": 1e-3})
    config = run_config(
        crop=32, steps=30, sati=SATISettings(lambda_stitch=1000.0, loss_ramping=False)
    )
    trainer = SATITrainer(adapter, config, device="cpu")
    x, y = batch()
    losses = [trainer.train_step(x, y)["stitch"].item() for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5])


@pytest.mark.parametrize(
    "switches, expected",
    [
        ({}, {"cases": "all", "weighting": True}),
        ({"overlap_sampling": False}, {"cases": "leading", "weighting": True}),
        ({"pixel_weighting": False}, {"cases": "all", "weighting": False}),
    ],
)
def test_ablation_switches_reach_the_merger(monkeypatch, switches, expected):
    calls = []
    real_merge = hooks.merge

    def spy(x, y_hat, overlap, **kwargs):
        calls.append((overlap, kwargs, y_hat.requires_grad))
        return real_merge(x, y_hat, overlap, **kwargs)

    monkeypatch.setattr(hooks, "merge", spy)
    make_trainer(**switches).train_step(*batch())
    overlap, kwargs, target_has_graph = calls[0]
    assert overlap == 8  # 25 % of the 32 px crop (paper IV: 64 of 256)
    assert {k: kwargs[k] for k in expected} == expected
    assert not target_has_graph  # the stitch target is a constant


def test_neighbour_strips_are_the_shifted_neighbours_trailing_edges():
    """strip_source="neighbour": each leading strip is the trailing strip of the translation
    of the crop shifted back by crop - overlap along that axis; the rest is the crop's own."""
    trainer = make_trainer(strip_source="neighbour")  # crop 32, overlap 8 -> context 56
    assert trainer.sati.sample_crop(trainer.crop) == (56, 56)
    context = batch(size=56)[0]
    _, x = trainer.hooks.split_context(context)
    assert torch.equal(x, context[:, :, 24:, 24:])
    own = torch.zeros(2, 3, 32, 32)
    with torch.no_grad():
        strips = trainer.hooks.neighbour_strips(trainer.adapter, context, own)
        above = trainer.adapter.generator_xy(context[:, :, :32, 24:])
        left = trainer.adapter.generator_xy(context[:, :, 24:, :32])
    assert torch.allclose(strips[:, :, :8, 8:], above[:, :, 24:, 8:], atol=1e-6)
    assert torch.allclose(strips[:, :, :, :8], left[:, :, :, 24:], atol=1e-6)  # wins the corner
    assert torch.equal(strips[:, :, 8:, 8:], own[:, :, 8:, 8:])


def test_neighbour_strips_train_and_reject_crop_sized_batches():
    trainer = make_trainer(strip_source="neighbour")
    x, _ = batch(size=56)
    terms = trainer.train_step(x, batch()[1])
    assert torch.isfinite(terms["stitch"]) and trainer.step == 1
    with pytest.raises(ValueError, match=r"need X batches of spatial size \(56, 56\)"):
        trainer.train_step(*batch())
    with pytest.raises(ValueError, match="strip_source must be one of crop, neighbour"):
        SATISettings(strip_source="left")
    assert SATISettings(enabled=False, strip_source="neighbour").sample_crop((32, 32)) == (32, 32)


def test_statistics_context_crops_the_centre_and_normalises_z_with_the_region(monkeypatch):
    """statistics_context=k: X is sampled k * crop wide, the crop is its centre window, and
    G_XY(z) runs inside region_statistics over the whole sampled region."""
    trainer = make_trainer(statistics_context=3)  # crop 32 -> region 96
    assert trainer.sati.sample_crop(trainer.crop) == (96, 96)
    region = batch(size=96)[0]
    context, x = trainer.hooks.split_context(region)
    assert context is region and torch.equal(x, region[:, :, 32:64, 32:64])
    seen = []
    real = hooks.region_statistics

    def spy(source, generator, wide):
        seen.append(wide)
        return real(source, generator, wide)

    monkeypatch.setattr(hooks, "region_statistics", spy)
    terms = trainer.train_step(region, batch()[1])
    assert len(seen) == 1 and seen[0] is region and torch.isfinite(terms["stitch"])
    with pytest.raises(ValueError, match=r"need X batches of spatial size \(96, 96\)"):
        trainer.train_step(*batch())


@pytest.mark.parametrize("context", [0, 1.5, True])
def test_statistics_context_rejects_bad_values(context):
    with pytest.raises(ValueError, match="statistics_context must be an integer >= 1"):
        SATISettings(statistics_context=context)
    with pytest.raises(ValueError, match="cannot be combined"):
        SATISettings(statistics_context=2, strip_source="neighbour")
    assert SATISettings(enabled=False, statistics_context=2).sample_crop((32, 32)) == (32, 32)


def test_loss_ramping_schedule():
    ramped = make_trainer(steps=10)
    assert ramped.hooks.lambda_stitch(0) == 0 and ramped.hooks.lambda_stitch(5) == 5.0
    assert ramped.hooks.lambda_stitch(10) == 10.0  # paper IV-A: 10 in 2D
    flat = make_trainer(loss_ramping=False)
    assert flat.hooks.lambda_stitch(0) == 10.0
    assert make_trainer(dims=3, crop=16).sati.lambda_stitch == 20.0  # paper IV-C
    assert make_trainer(lambda_stitch=3.0, loss_ramping=False).hooks.lambda_stitch(0) == 3.0


def test_start_delays_the_sati_terms_and_their_ramps(monkeypatch):
    trainer = make_trainer(steps=10, start=0.4, lambda_consistency=4.0)
    assert trainer.hooks.start_step == 4
    assert trainer.hooks.lambda_stitch(4) == 0 and trainer.hooks.lambda_stitch(7) == 5.0
    assert (
        trainer.hooks.lambda_consistency(7) == 2.0 and trainer.hooks.lambda_consistency(10) == 4.0
    )
    merged = []
    real_merge = hooks.merge
    monkeypatch.setattr(hooks, "merge", lambda *a, **k: merged.append(1) or real_merge(*a, **k))
    x, y = batch()
    for step in range(6):
        terms = trainer.train_step(x, y)
        assert ("stitch" in terms) == (step >= 4) and ("consistency" in terms) == (step >= 4)
    assert len(merged) == 2
    flat = make_trainer(steps=10, start=0.5, loss_ramping=False)
    assert flat.hooks.lambda_stitch(5) == 10.0


def test_consistency_term_enters_the_generator_loss(monkeypatch):
    """g_total = g_host + adv_zy + λ_stitch · stitch + λ_cons · consistency; without the
    switch the term is not computed (the paper's loss)."""
    trainer = make_trainer(loss_ramping=False, lambda_consistency=3.0)
    terms = trainer.train_step(*batch())
    expected = (
        terms["g_host"] + terms["adv_zy"] + 10.0 * terms["stitch"] + 3.0 * terms["consistency"]
    )
    assert terms["consistency"] > 0 and torch.allclose(terms["g_total"], expected)
    assert "consistency" not in make_trainer().train_step(*batch())


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"start": 1.0}, "start must be a fraction"),
        ({"start": -0.1}, "start must be a fraction"),
        ({"lambda_consistency": -1.0}, "lambda_consistency must be >= 0"),
        ({"ramp_end": 0.0}, "ramp_end must be in"),
    ],
)
def test_settings_refuse_bad_switches(bad, message):
    with pytest.raises(ValueError, match=message):
        SATISettings(**bad)
    assert SATISettings(start=0.5, lambda_consistency=10.0).start == 0.5  # valid ones pass


def test_settings_validation_and_inference_defaults():
    with pytest.raises(ValueError, match="overlap"):
        SATISettings(overlap=20).resolve((32, 32))
    with pytest.raises(ValueError, match="crop"):
        TrainingSettings(crop=(32, 32, 32)).crop_size(2)
    assert InferenceSettings.for_run((256, 256), True).run_dict() == {
        "strategy": "sati",
        "tile": [512, 512],
        "overlap": [128, 128],
    }  # paper IV-A
    assert InferenceSettings.for_run((64, 64, 64), False).run_dict() == {
        "strategy": "weighted",
        "tile": [64, 64, 64],
        "overlap": [16, 16, 16],
    }  # paper IV-C


def test_domain_encoding_follows_sati_unless_set():
    # SATI III-C encodes domains; the "Standard" baseline is the host GAN as published (IV-B)
    assert SATISettings().domain_encoding is True
    assert SATISettings(enabled=False).domain_encoding is False
    assert SATISettings(enabled=False, domain_encoding=True).domain_encoding is True
    assert SATISettings(domain_encoding=False).domain_encoding is False


def test_domain_encoding_switch_changes_crop_ranges(tmp_path):
    image = np.full((40, 40, 3), 255, np.uint8)
    write_image(tmp_path / "a.tif", image)
    rng = np.random.default_rng(0)
    on = CropSampler([tmp_path / "a.tif"], (16, 16), "x").sample(1, rng)
    off = CropSampler([tmp_path / "a.tif"], (16, 16), "x", encoding=False).sample(1, rng)
    assert on.max() == 0 and off.max() == 1  # X white -> 0 encoded, 1 plain


def test_crop_sampler_reads_lazily_and_checks_files(tmp_path):
    volume = np.arange(20 * 24 * 28, dtype=np.uint16).reshape(20, 24, 28)
    write_image(tmp_path / "v.tif", volume)
    sampler = CropSampler([tmp_path / "v.tif"], (8, 8, 8), "y")
    assert isinstance(sampler._open(tmp_path / "v.tif"), np.memmap)
    crops = sampler.sample(3, np.random.default_rng(0))
    assert crops.shape == (3, 1, 8, 8, 8) and crops.dtype == torch.float32
    assert 0 <= crops.min() and crops.max() <= 1
    with pytest.raises(ValueError, match="smaller than the crop"):
        CropSampler([tmp_path / "v.tif"], (32, 32, 32), "y")
    view = ChannelFirst(volume, channel_last=False, transform=lambda b: encode(b, "x"))
    assert view.shape == (1, 20, 24, 28) and view[:, 2:4].shape == (1, 2, 24, 28)
    assert infer_dims((20, 24, 28)) == 3 and infer_dims((20, 24, 3)) == 2


def write_domains(root, size: int) -> None:
    """``root/x/a.tif`` and ``root/y/a.tif``: random ``(size, size, 3)`` uint8 images."""
    rng = np.random.default_rng(0)
    for domain in "xy":
        (root / domain).mkdir()
        write_image(root / domain / "a.tif", rng.integers(0, 256, (size, size, 3), np.uint8))


def test_fit_logs_every_term_and_writes_samples(tmp_path):
    write_domains(tmp_path, 48)
    config = run_config(options={**TEST_OPTIONS, "n_layers": 1}, crop=16, steps=4, sample_every=2)
    trainer = SATITrainer.from_dirs(
        config, [tmp_path / "x"], [tmp_path / "y"], tmp_path / "run", device="cpu"
    )
    trainer.fit(progress=False)
    records = [
        json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert HOST_TERMS | SATI_TERMS | {"lr", "g_total", "d_total"} <= set(records[-1])
    samples = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert samples == ["step_0000002.png", "step_0000004.png"]
    from PIL import Image

    assert Image.open(tmp_path / "run" / "samples" / samples[0]).size == (4 * 16, 16)


def test_neighbour_strips_sample_wider_x_crops_from_disk(tmp_path):
    write_domains(tmp_path, 40)
    config = run_config(
        options={**TEST_OPTIONS, "n_layers": 1},
        crop=16,
        steps=2,
        sati=SATISettings(strip_source="neighbour"),
    )
    trainer = SATITrainer.from_dirs(config, [tmp_path / "x"], [tmp_path / "y"], device="cpu")
    x, y = trainer.next_batch()
    assert x.shape[2:] == (28, 28) and y.shape[2:] == (16, 16)  # 2 * 16 - 4
    trainer.fit(progress=False)
    assert trainer.step == 2
    (tmp_path / "small").mkdir()
    write_domains(tmp_path / "small", 24)
    with pytest.raises(ValueError, match=r"smaller than the crop \(28, 28\)"):
        SATITrainer.from_dirs(config, [tmp_path / "small" / "x"], [tmp_path / "y"], device="cpu")


def test_sati_needs_equal_channels(tmp_path):
    for domain, channels in (("x", 1), ("y", 3)):
        (tmp_path / domain).mkdir()
        write_image(tmp_path / domain / "a.tif", np.zeros((32, 32, channels), np.uint8))
    config = run_config(options=dict(TEST_OPTIONS), crop=16, steps=1)
    with pytest.raises(ValueError, match="same channels"):
        SATITrainer.from_dirs(config, [tmp_path / "x"], [tmp_path / "y"], device="cpu")


def test_callbacks_follow_every_step_and_checkpoint(tmp_path):
    from satikit.checkpoint import load_adapter
    from satikit.training import Callback, Snapshots

    write_domains(tmp_path, 40)
    events = []

    class Recorder(Callback):
        def on_step(self, trainer, terms):
            events.append(("step", trainer.step, "g_total" in terms))

        def on_checkpoint(self, trainer, run_dir):
            events.append(("checkpoint", trainer.step, (run_dir / "config.json").is_file()))

    config = run_config(
        options={**TEST_OPTIONS, "n_layers": 1}, crop=16, steps=4, checkpoint_every=2
    )
    run = tmp_path / "run"
    callbacks = [Recorder(), Snapshots("kept")]
    trainer = SATITrainer.from_dirs(
        config, [tmp_path / "x"], [tmp_path / "y"], run, device="cpu", callbacks=callbacks
    )
    trainer.fit(progress=False)
    assert events == [
        ("step", 1, True),
        ("checkpoint", 2, True),
        ("step", 2, True),
        ("step", 3, True),
        ("checkpoint", 4, True),
        ("step", 4, True),
        ("checkpoint", 4, True),  # the final save; its snapshot exists already
    ]
    kept = sorted(p.name for p in (run / "kept").iterdir())
    assert kept == ["step-000002", "step-000004"]
    final, _ = load_adapter(run)
    last, _ = load_adapter(run / "kept" / "step-000004")
    first, _ = load_adapter(run / "kept" / "step-000002")
    state = final.state_dict()
    assert all(torch.equal(v, last.state_dict()[k]) for k, v in state.items())
    assert any(not torch.equal(v, first.state_dict()[k]) for k, v in state.items())
