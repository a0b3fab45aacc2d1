"""The generator's weight average: its arithmetic, its run folder and exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from satikit_cyclegan.plugin import TEST_OPTIONS

from satikit.checkpoint import (
    AdapterSpec,
    DataSpec,
    RunConfig,
    TrainingSettings,
    load_adapter,
    load_config,
)
from satikit.training import EMA_DIR, GeneratorEMA, SATITrainer
from tests.test_training import write_domains


def test_average_follows_the_documented_decay():
    module = torch.nn.Linear(1, 1, bias=False)
    ema = GeneratorEMA(module, decay=0.5)
    values = [1.0, 3.0, 7.0, 7.0]
    expected = None
    for t, value in enumerate(values, start=1):
        module.weight.data.fill_(value)
        ema.update()
        keep = min(0.5, (1 + t) / (10 + t))
        expected = value if expected is None else keep * expected + (1 - keep) * value
        assert ema.average["weight"].item() == pytest.approx(expected)
    with ema.swapped_in() as swapped:
        assert swapped.weight.item() == pytest.approx(expected)
    assert module.weight.item() == 7.0  # put back


def test_swapped_in_restores_the_weights_after_an_error():
    module = torch.nn.Linear(2, 2)
    ema = GeneratorEMA(module, decay=0.9)
    ema.update()
    own = module.weight.detach().clone()
    module.weight.data.add_(1.0)
    changed = module.weight.detach().clone()
    with pytest.raises(RuntimeError), ema.swapped_in():
        assert torch.equal(module.weight, own)
        raise RuntimeError("boom")
    assert torch.equal(module.weight, changed)


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_bad_decays_are_refused(decay):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        TrainingSettings(ema=decay)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        GeneratorEMA(torch.nn.Linear(1, 1), decay)


def _config(steps: int) -> RunConfig:
    return RunConfig(
        adapter=AdapterSpec("cyclegan", {**TEST_OPTIONS, "n_layers": 1}),
        data=DataSpec(dims=2),
        training=TrainingSettings(crop=16, steps=steps, checkpoint_every=2, ema=0.9),
    )


def _trainer(tmp_path, run) -> SATITrainer:
    return SATITrainer.from_dirs(_config(4), [tmp_path / "x"], [tmp_path / "y"], run, device="cpu")


def test_the_average_is_a_run_of_its_own_and_resumes_exactly(tmp_path):
    write_domains(tmp_path, 40)
    whole = _trainer(tmp_path, tmp_path / "whole")
    whole.fit(progress=False)
    first = _trainer(tmp_path, tmp_path / "split")
    for _ in range(3):  # a checkpoint at step 2, then a step that is lost
        first.train_step(*first.next_batch())
        if first.step == 2:
            first.save()
    SATITrainer.resume(tmp_path / "split", device="cpu").fit(progress=False)
    averaged, config = load_adapter(tmp_path / "whole" / EMA_DIR)
    raw, _ = load_adapter(tmp_path / "whole")
    assert config.training.step == 4 and config.training.ema == 0.9
    assert load_config(tmp_path / "whole").training.ema == 0.9
    resumed, _ = load_adapter(tmp_path / "split" / EMA_DIR)
    for key, value in averaged.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    # the average differs from the last weights, and only in the averaged generator
    ga, gr = averaged.generator_xy.state_dict(), raw.generator_xy.state_dict()
    assert any(not torch.equal(ga[k], gr[k]) for k in ga)
    expected = whole.ema.average
    assert all(torch.equal(ga[k], expected[k]) for k in expected)
    da, dr = averaged.discriminator_y.state_dict(), raw.discriminator_y.state_dict()
    assert all(torch.equal(da[k], dr[k]) for k in da)


def test_a_run_records_each_machine_it_trained_on_once(tmp_path):
    from satikit.devices import environment
    from satikit.training.trainer import TRAINED_ON

    write_domains(tmp_path, 40)
    run = tmp_path / "run"
    trainer = _trainer(tmp_path, run)
    trainer.train_step(*trainer.next_batch())
    trainer.save()
    here = environment(torch.device("cpu"))
    assert load_config(run).extra[TRAINED_ON] == [here]
    assert set(here) == {"device", "cpu", "torch", "python", "os"} and here["device"] == "cpu"
    SATITrainer.resume(run, device="cpu").fit(progress=False)  # the same machine: not again
    assert load_config(run).extra[TRAINED_ON] == [here]
    # a run begun elsewhere lists that machine first, then this one
    saved = json.loads((run / "config.json").read_text())
    other = {**here, "cpu": "another CPU"}
    saved[TRAINED_ON] = [other]
    (run / "config.json").write_text(json.dumps(saved))
    SATITrainer.resume(run, device="cpu").fit(progress=False)  # finished: nothing trained
    assert load_config(run).extra[TRAINED_ON] == [other]
    SATITrainer.resume(run, steps=5, device="cpu").fit(progress=False)
    assert load_config(run).extra[TRAINED_ON] == [other, here]
