"""SATI losses (paper eq. 1-3, Alg. 1) and the lambda_stitch schedules (paper III-D)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

__all__ = [
    "AdversarialCriterion",
    "Schedule",
    "consistency_loss",
    "constant",
    "linear_ramp",
    "sati_discriminator_adv",
    "sati_generator_adv",
    "stitch_loss",
]

Schedule = Callable[[int], float]


class AdversarialCriterion(Protocol):
    """The host GAN's adversarial criterion: ``criterion(prediction, target_is_real)``."""

    def __call__(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor: ...


def stitch_loss(
    y_hat_z: torch.Tensor, z: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Weighted stitch loss ``L_stitch`` (paper eq. 1 with III-F weighting).

    ``sum(W * (y_hat_z - z)^2 over M) / (|M| * C)``: the mean over the masked elements (pixels
    times channels) of the weighted squared error, so its scale does not depend on how many
    pixels the sampled case puts in the mask. ``z`` is the target and is treated as a constant.

    Args:
        y_hat_z: ``(B, C, *spatial)`` generator output for ``z``.
        z: ``(B, C, *spatial)`` merged input.
        mask: bool ``(B, 1, *spatial)``, True where ``z`` came from ``y_hat_x``.
        weight: ``(B, 1, *spatial)`` pixel-overlap weights in [0, 1] (0 outside ``mask``).

    Returns:
        scalar tensor >= 0 (0 when the mask is empty).
    """
    sq = (y_hat_z - z.detach()).pow(2) * (weight * mask)
    n = mask.sum() * y_hat_z.shape[1]
    return sq.sum() / n.clamp_min(1)


def consistency_loss(
    y_hat_z: torch.Tensor, y_hat_x: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Continuation term ``L_cons`` (beyond the paper): ``y_hat_z`` should reproduce
    ``y_hat_x`` outside the merged strips too.

    The paper's stitch loss only covers the strip, where ``z`` already shows the answer. Outside
    it, ``z`` holds every X pixel ``y_hat_x`` was made from except the strip's, so an object
    reaching into the strip can only get ``y_hat_x``'s colour by reading the strip: the
    continuation SATI inference needs when a predecessor tile chose the colour.
    ``sum((y_hat_z - y_hat_x)^2 outside M) / (|not M| * C)``, ``y_hat_x`` a constant target.

    Args:
        y_hat_z: ``(B, C, *spatial)`` generator output for ``z``.
        y_hat_x: ``(B, C, *spatial)`` generator output for ``x`` (detached here).
        mask: bool ``(B, 1, *spatial)``, True inside the merged strips.

    Returns:
        scalar tensor >= 0 (0 when the mask covers everything).
    """
    outside = ~mask
    sq = (y_hat_z - y_hat_x.detach()).pow(2) * outside
    n = outside.sum() * y_hat_z.shape[1]
    return sq.sum() / n.clamp_min(1)


def sati_generator_adv(
    criterion: AdversarialCriterion, discriminator: nn.Module, y_hat_z: torch.Tensor
) -> torch.Tensor:
    """``L_adv^ZY`` (paper eq. 2): the host criterion on ``D_Y(y_hat_z)`` against "real"."""
    return criterion(discriminator(y_hat_z), True)


def sati_discriminator_adv(
    criterion: AdversarialCriterion, discriminator: nn.Module, y_hat_z: torch.Tensor
) -> torch.Tensor:
    """``L_D^SATI`` (Alg. 1): ``D_Y`` learns ``y_hat_z`` is fake; no gradient reaches ``G``."""
    return criterion(discriminator(y_hat_z.detach()), False)


def constant(value: float) -> Schedule:
    """Schedule that is ``value`` at every step (the "w/o loss ramping" ablation)."""
    value = float(value)

    def schedule(step: int) -> float:
        return value

    return schedule


def linear_ramp(final: float, start_step: int, end_step: int) -> Schedule:
    """Loss ramping (paper III-D): 0 until ``start_step``, linear to ``final`` at ``end_step``.

    Raises:
        ValueError: if ``end_step < start_step`` or either is negative.
    """
    if start_step < 0 or end_step < start_step:
        raise ValueError(f"need 0 <= start_step <= end_step, got {start_step}, {end_step}")
    final = float(final)

    def schedule(step: int) -> float:
        if step >= end_step:
            return final
        if step <= start_step:
            return 0.0
        return final * (step - start_step) / (end_step - start_step)

    return schedule
