from __future__ import annotations

import pytest
import torch
from torch import nn

from satikit.training.losses import (
    consistency_loss,
    constant,
    linear_ramp,
    sati_discriminator_adv,
    sati_generator_adv,
    stitch_loss,
)
from satikit.training.sati_merge import merge


def test_stitch_loss_is_mean_over_masked_elements_and_ignores_x_pixels():
    z = torch.zeros(1, 2, 4, 4)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[..., 0, :] = True
    weight = mask.float() * 0.5
    y_hat_z = torch.zeros_like(z)
    y_hat_z[..., 0, :] = 2.0  # error 4 per masked element, weighted 0.5
    y_hat_z[..., 1:, :] = 100.0  # X pixels are free to change
    assert stitch_loss(y_hat_z, z, mask, weight).item() == pytest.approx(2.0)


def test_stitch_loss_scale_does_not_depend_on_mask_size():
    z = torch.zeros(2, 1, 8, 8)
    y_hat_z = torch.ones_like(z)
    small = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    small[..., :1, :] = True
    large = torch.zeros_like(small)
    large[..., :4, :] = True
    assert (
        stitch_loss(y_hat_z, z, small, small.float())
        == stitch_loss(y_hat_z, z, large, large.float())
        == 1.0
    )


def test_stitch_loss_treats_z_as_constant_and_empty_mask_is_zero():
    y_hat = torch.rand(2, 3, 8, 8, requires_grad=True)
    z, mask, weight = merge(-torch.rand(2, 3, 8, 8), y_hat, 2)
    y_hat_z = y_hat * 0.5
    stitch_loss(y_hat_z, z, mask, weight).backward()
    # d/dy of W (0.5 y - z)^2 with z constant: W * 2 (0.5 y - z) * 0.5, over |M| * C elements
    n = mask.sum() * 3
    expected = weight * mask * 2 * (0.5 * y_hat.detach() - z.detach()) * 0.5 / n
    torch.testing.assert_close(y_hat.grad, expected.expand_as(y_hat))
    empty = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    assert stitch_loss(y_hat_z, z, empty, empty.float()) == 0


def test_consistency_loss_is_mean_outside_the_mask_with_constant_target():
    y_hat_x = torch.zeros(1, 2, 4, 4)
    y_hat_z = torch.zeros(1, 2, 4, 4, requires_grad=True)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[..., :1, :] = True  # the top strip: 4 of 16 pixels
    with torch.no_grad():
        y_hat_z[:, :, 0] = 5.0  # inside the strip: ignored
        y_hat_z[:, 0, 1, 0] = 2.0  # one element outside: 4 / (12 px * 2 channels)
    loss = consistency_loss(y_hat_z, y_hat_x.requires_grad_(), mask)
    assert loss.item() == pytest.approx(4.0 / 24)
    loss.backward()
    assert y_hat_x.grad is None and y_hat_z.grad[:, :, 0].abs().sum() == 0
    full = torch.ones_like(mask)
    assert consistency_loss(y_hat_z, y_hat_x, full).item() == 0.0


def test_sati_adversarial_terms_use_host_criterion_and_detach_for_d():
    disc = nn.Conv2d(3, 1, 3, padding=1)
    calls = []

    def criterion(pred, target_is_real):
        calls.append(target_is_real)
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        return nn.functional.mse_loss(pred, target)

    y_hat_z = torch.rand(2, 3, 8, 8, requires_grad=True)
    sati_generator_adv(criterion, disc, y_hat_z).backward()
    assert y_hat_z.grad is not None
    y_hat_z.grad = None
    sati_discriminator_adv(criterion, disc, y_hat_z).backward()
    assert y_hat_z.grad is None and disc.weight.grad is not None
    assert calls == [True, False]


def test_schedules():
    ramp = linear_ramp(10.0, 100, 200)
    assert [ramp(s) for s in (0, 100, 150, 200, 500)] == [0.0, 0.0, 5.0, 10.0, 10.0]
    assert constant(20)(0) == constant(20)(10**6) == 20.0
    with pytest.raises(ValueError):
        linear_ramp(1.0, 10, 5)
