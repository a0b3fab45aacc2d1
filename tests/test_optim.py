"""Adam with constant-then-linear decay, the optimiser helper for adapters."""

from __future__ import annotations

import pytest
import torch

from satikit.training.optim import adam_with_linear_decay, linear_decay


def test_linear_decay_is_constant_then_linear_to_zero():
    factor = linear_decay(4, 0.5)
    assert [factor(step) for step in range(5)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    assert [linear_decay(3, 1.0)(step) for step in range(3)] == [1.0] * 3  # never decays


def test_adam_with_linear_decay_steps_both_groups():
    generator, discriminator = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    opts = adam_with_linear_decay(
        generator.parameters(),
        discriminator.parameters(),
        4,
        lr=1e-3,
        betas=(0.5, 0.9),
        weight_decay=1e-4,
        decay_start=0.5,
    )
    assert opts.generator.param_groups[0]["params"] == list(generator.parameters())
    assert opts.discriminator.param_groups[0]["params"] == list(discriminator.parameters())
    for opt in (opts.generator, opts.discriminator):
        group = opt.param_groups[0]
        assert group["betas"] == (0.5, 0.9) and group["weight_decay"] == 1e-4
    rates = []
    for _ in range(4):
        rates.append(opts.generator.param_groups[0]["lr"])
        assert opts.discriminator.param_groups[0]["lr"] == rates[-1]
        opts.generator.step()
        opts.discriminator.step()
        for scheduler in opts.schedulers:
            scheduler.step()
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4])
