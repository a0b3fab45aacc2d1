"""Optimisers for adapters: Adam with a constant-then-linear-decay learning rate.

The schedule of CycleGAN, UNIT and MUNIT (and of the SATI paper, IV): the learning rate stays
at its initial value for the first part of training, then falls linearly to 0 at the last step.
Third-party adapters can return :func:`adam_with_linear_decay` from ``configure_optimizers``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from satikit.protocols import Optimizers

__all__ = ["adam_with_linear_decay", "linear_decay"]


def linear_decay(total_steps: int, start_fraction: float) -> Callable[[int], float]:
    """LR factor: 1 for the first ``start_fraction`` of training, then linearly down to 0."""
    start = int(round(total_steps * start_fraction))
    span = max(total_steps - start, 1)

    def factor(step: int) -> float:
        return 1.0 if step < start else max(0.0, 1.0 - (step - start) / span)

    return factor


def adam_with_linear_decay(
    generator_parameters: Iterable[nn.Parameter],
    discriminator_parameters: Iterable[nn.Parameter],
    total_steps: int,
    *,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    weight_decay: float = 0,
    decay_start: float = 0.5,
) -> Optimizers:
    """One Adam for the generators and one for the discriminators, each with a
    :class:`~torch.optim.lr_scheduler.LambdaLR` of :func:`linear_decay`.

    Args:
        generator_parameters / discriminator_parameters: what each optimiser updates.
        total_steps: training steps of the run (the rate reaches 0 at the last one).
        lr / betas / weight_decay: Adam's settings (defaults: paper IV).
        decay_start: fraction of ``total_steps`` after which the rate decays.

    Returns:
        ``Optimizers(generator, discriminator, [scheduler_g, scheduler_d])``.
    """
    settings = dict(lr=lr, betas=betas, weight_decay=weight_decay)
    opt_g = torch.optim.Adam(generator_parameters, **settings)
    opt_d = torch.optim.Adam(discriminator_parameters, **settings)
    factor = linear_decay(total_steps, decay_start)
    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (opt_g, opt_d)]
    return Optimizers(opt_g, opt_d, schedulers)
