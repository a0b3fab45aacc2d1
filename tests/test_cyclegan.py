"""The CycleGAN adapter: networks in 2D and 3D, paper defaults, losses, pool, schedule."""

from __future__ import annotations

import pytest
import torch
from satikit_cyclegan.adapter import CycleGANAdapter
from satikit_cyclegan.plugin import OPTIONS, TEST_OPTIONS

from satikit.gan import ImagePool, PatchDiscriminator, ResnetGenerator
from satikit.plugins import create_adapter
from satikit.protocols import Adapter
from satikit.training.optim import linear_decay


def tiny(dims: int = 2, channels: int = 3, **overrides) -> CycleGANAdapter:
    return create_adapter(
        "cyclegan",
        dims=dims,
        in_channels=channels,
        out_channels=channels,
        **{**TEST_OPTIONS, **overrides},
    )


def test_paper_defaults():
    defaults = {name: option.default for name, option in OPTIONS.items()}
    assert defaults["ngf"] == 96 and defaults["n_blocks"] == 9  # paper IV
    assert defaults["gan_loss"] == "lsgan" and defaults["cycle_loss"] == "mse"
    assert defaults["lambda_cycle"] == 10 and defaults["lambda_idt"] == 5
    assert defaults["pool_size"] == 50 and defaults["lr"] == 2e-4
    assert (defaults["beta1"], defaults["beta2"]) == (0.5, 0.999)


@pytest.mark.parametrize("dims", [2, 3])
def test_networks_shapes_and_instance_norm_without_running_stats(dims):
    generator = ResnetGenerator(dims, 3, 2, ngf=4, n_blocks=1)
    x = torch.randn(2, 3, *(16,) * dims)
    out = generator(x)
    assert out.shape == (2, 2, *(16,) * dims) and out.abs().max() <= 1
    assert not any("running" in key for key in generator.state_dict())
    assert f"Conv{dims}d" in repr(generator) and f"ReflectionPad{dims}d" in repr(generator)
    scores = PatchDiscriminator(dims, 2, ndf=4, n_layers=2)(out)
    assert scores.shape[:2] == (2, 1) and scores.ndim == dims + 2
    with pytest.raises(ValueError, match="divisible by 4"):
        generator(torch.randn(1, 3, *(18,) * dims))


@pytest.mark.parametrize("encoding, low, high", [(True, 0.0, 1.0), (False, -1.0, 1.0)])
def test_generators_output_encoded_domains(encoding, low, high):
    adapter = create_adapter("cyclegan", domain_encoding=encoding, **TEST_OPTIONS)
    x = torch.rand(1, 3, 16, 16) - 1
    y_hat = adapter.generator_xy(x)
    x_hat = adapter.generator_yx(y_hat)
    assert low <= y_hat.min() and y_hat.max() <= high
    assert -1 <= x_hat.min() and x_hat.max() <= (0 if encoding else 1)


def test_generator_step_returns_host_loss_and_y_hat_with_graph():
    adapter = tiny()
    assert isinstance(adapter, Adapter)
    x, y = torch.rand(2, 3, 16, 16) - 1, torch.rand(2, 3, 16, 16)
    loss, y_hat = adapter.generator_step(x, y)
    assert loss.requires_grad and y_hat.requires_grad and y_hat.shape == y.shape
    assert set(adapter.loss_terms) == {"adv_xy", "adv_yx", "cycle_x", "cycle_y", "idt_x", "idt_y"}
    assert torch.isclose(loss.detach(), sum(adapter.loss_terms.values()))
    d_loss = adapter.discriminator_step(x, y, y_hat.detach())
    assert d_loss.requires_grad and {"d_x", "d_y"} <= set(adapter.loss_terms)


def test_discriminator_step_needs_a_generator_step_first():
    with pytest.raises(RuntimeError, match="generator_step"):
        tiny().discriminator_step(
            torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)
        )


def test_lsgan_criterion_is_mse_to_one_or_zero():
    adapter = tiny()
    prediction = torch.tensor([0.0, 1.0, 2.0])
    assert adapter.criterion(prediction, True).item() == pytest.approx((1 + 0 + 1) / 3)
    assert adapter.criterion(prediction, False).item() == pytest.approx((0 + 1 + 4) / 3)


def test_identity_loss_needs_equal_channels():
    with pytest.raises(ValueError, match="lambda_idt 0"):
        create_adapter("cyclegan", in_channels=1, out_channels=3, **TEST_OPTIONS)
    adapter = create_adapter(
        "cyclegan", in_channels=1, out_channels=3, lambda_idt=0, **TEST_OPTIONS
    )
    loss, y_hat = adapter.generator_step(torch.rand(1, 1, 16, 16) - 1, torch.rand(1, 3, 16, 16))
    assert y_hat.shape == (1, 3, 16, 16) and "idt_x" not in adapter.loss_terms


def test_image_pool_mixes_history_and_restores_exactly():
    assert torch.equal(ImagePool(0).query(torch.ones(2, 1, 2, 2)), torch.ones(2, 1, 2, 2))
    pool = ImagePool(2, seed=3)
    first = torch.stack([torch.full((1, 2, 2), float(i)) for i in range(2)])
    assert torch.equal(pool.query(first), first)  # filling: returned as is
    state = pool.state_dict()
    later = torch.full((8, 1, 2, 2), 9.0)
    mixed = pool.query(later)
    assert set(mixed.flatten().tolist()) <= {0.0, 1.0, 9.0} and (mixed != 9).any()
    again = ImagePool(2, seed=0)
    again.load_state_dict(state, "cpu")
    assert torch.equal(again.query(later), mixed)


def test_linear_lr_decay():
    factor = linear_decay(10, 0.5)
    assert [factor(s) for s in (0, 4)] == [1.0, 1.0]
    assert factor(5) == 1.0 and factor(10) == 0.0 and 0 < factor(8) < 1
    opts = tiny().configure_optimizers(10)
    assert opts.generator.param_groups[0]["betas"] == (0.5, 0.999)
    assert len(opts.schedulers) == 2


def test_training_state_round_trip():
    adapter = tiny()
    x, y = torch.rand(3, 3, 16, 16) - 1, torch.rand(3, 3, 16, 16)
    _, y_hat = adapter.generator_step(x, y)
    adapter.discriminator_step(x, y, y_hat.detach())
    state = adapter.training_state()
    assert state["pool_y.images"].shape == (3, 3, 16, 16)
    other = tiny()
    other.load_training_state(state)
    assert torch.equal(torch.stack(other.pool_y.images), torch.stack(adapter.pool_y.images))


@pytest.mark.parametrize("dims", [2, 3])
def test_gradients_reach_both_generators(dims):
    adapter = tiny(dims=dims, channels=1, n_layers=1)
    x = torch.rand(1, 1, *(16,) * dims) - 1
    loss, _ = adapter.generator_step(x, x + 1)
    loss.backward()
    for module in (adapter.generator_xy, adapter.generator_yx):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())
