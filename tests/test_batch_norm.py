"""Precise BatchNorm statistics: the arithmetic, what is left untouched, and the trainer's use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from satikit_timm.plugin import TEST_OPTIONS

from satikit.checkpoint import (
    AdapterSpec,
    DataSpec,
    RunConfig,
    TrainingSettings,
    load_adapter,
    load_config,
)
from satikit.training import SATITrainer
from satikit.training.batch_norm import batch_norm_layers, recalibrate
from tests.test_training import write_domains


def _net() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))


def test_statistics_become_the_plain_average_over_the_batches():
    net = _net().eval()
    conv, bn = net
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randn(3, 1, 5, 5, generator=generator) * s + s for s in (1.0, 2.0, 4.0)]
    assert recalibrate(net, batches) == 3
    with torch.no_grad():
        features = [conv(b) for b in batches]
    means = torch.stack([f.mean(dim=(0, 2, 3)) for f in features]).mean(0)
    variances = torch.stack([f.transpose(0, 1).flatten(1).var(1) for f in features]).mean(0)
    torch.testing.assert_close(bn.running_mean, means)
    torch.testing.assert_close(bn.running_var, variances)
    assert bn.momentum == 0.1 and not bn.training  # restored


def test_nothing_is_read_without_batchnorm_and_an_empty_source_is_refused():
    def never():
        raise AssertionError("read")
        yield

    assert recalibrate(torch.nn.Conv2d(1, 1, 1), never()) == 0
    net = _net()
    before = net[1].running_mean.clone()
    with pytest.raises(ValueError, match="no batches"):
        recalibrate(net, [])
    assert torch.equal(net[1].running_mean, before)


def test_the_global_random_state_is_left_as_it_was():
    net = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(4))
    torch.manual_seed(3)
    recalibrate(net, [torch.randn(8, 4) for _ in range(2)])
    after = torch.rand(3)
    torch.manual_seed(3)
    [torch.randn(8, 4) for _ in range(2)]  # the batches' own draws
    assert torch.equal(after, torch.rand(3))


def _config(batches: int) -> RunConfig:
    return RunConfig(
        adapter=AdapterSpec("timm", dict(TEST_OPTIONS)),
        data=DataSpec(dims=2),
        training=TrainingSettings(
            crop=32, steps=3, batch_size=2, checkpoint_every=2, bn_recalibration=batches
        ),
    )


def _fit(tmp_path, batches: int) -> SATITrainer:
    run = tmp_path / f"run-{batches}"
    trainer = SATITrainer.from_dirs(
        _config(batches), [tmp_path / "x"], [tmp_path / "y"], run, device="cpu"
    )
    trainer.fit(progress=False)
    return trainer


def test_trainer_recomputes_the_statistics_from_source_crops_without_changing_training(
    tmp_path,
):
    write_domains(tmp_path, 48)
    _fit(tmp_path, 0)
    recomputed = _fit(tmp_path, 4)
    plain, stored = load_adapter(tmp_path / "run-0")[0], load_adapter(tmp_path / "run-4")[0]
    for (name, a), b in zip(plain.state_dict().items(), stored.state_dict().values()):
        if "running_" in name or "num_batches" in name:
            continue
        assert torch.equal(a, b), name  # the training itself is the same
    layers = batch_norm_layers(stored.generator_xy)
    assert layers
    assert not torch.equal(
        layers[0].running_mean, batch_norm_layers(plain.generator_xy)[0].running_mean
    )
    # the same crops (X for generator_xy) through recalibrate give what the run stored
    rng = np.random.default_rng((0, 3))
    x = [recomputed.x_sampler.sample(2, rng) for _ in range(4)]
    recalibrate(plain.generator_xy, x)
    for a, b in zip(batch_norm_layers(plain.generator_xy), layers):
        torch.testing.assert_close(a.running_mean, b.running_mean)
        torch.testing.assert_close(a.running_var, b.running_var)
    assert load_config(tmp_path / "run-4").training.bn_recalibration == 4


def test_setting_is_stored_only_when_changed_and_checked():
    assert "bn_recalibration" not in TrainingSettings().to_dict()
    assert TrainingSettings(bn_recalibration=0).to_dict()["bn_recalibration"] == 0
    with pytest.raises(ValueError, match="bn_recalibration"):
        TrainingSettings(bn_recalibration=-1)
