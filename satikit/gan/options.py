"""Declared hyperparameters (:class:`satikit.protocols.Option`) shared by adapters built on
:class:`satikit.gan.cyclegan.CycleGANBase`. Cheap to import (no torch), so plugin modules can
use it when they register."""

from __future__ import annotations

from satikit.protocols import Option

__all__ = ["CYCLE_OPTIONS", "RESNET_OPTIONS"]

# The ResNet generator of CycleGANBase (paper IV: ngf 96, 9 blocks).
RESNET_OPTIONS: dict[str, Option] = {
    "ngf": Option(96, "generator base channels (paper IV: 96)"),
    "n_blocks": Option(9, "residual blocks in the generator (paper IV: 9)"),
    "n_downsampling": Option(
        2,
        "stride-2 convolutions in the generator; crops and tiles must "
        "be divisible by 2**n_downsampling",
    ),
}

# The discriminators, losses and optimiser of CycleGANBase; defaults from paper IV (and the
# CycleGAN paper where SATI's is silent).
CYCLE_OPTIONS: dict[str, Option] = {
    "ndf": Option(64, "discriminator base channels"),
    "n_layers": Option(3, "stride-2 layers of the PatchGAN discriminator"),
    "gan_loss": Option(
        "lsgan", "adversarial loss (paper IV: LSGAN / MSE)", choices=("lsgan", "vanilla")
    ),
    "cycle_loss": Option(
        "mse", "distance of the cycle and identity losses (paper IV: MSE)", choices=("mse", "l1")
    ),
    "lambda_cycle": Option(10.0, "weight of the cycle-consistency loss (paper IV: 10)"),
    "lambda_idt": Option(5.0, "weight of the identity loss (paper IV: 5; 0 disables it)"),
    "pool_size": Option(50, "image pool size for the discriminators (0 disables it)"),
    "lr": Option(2e-4, "Adam learning rate (paper IV: 0.0002)"),
    "beta1": Option(0.5, "Adam beta1"),
    "beta2": Option(0.999, "Adam beta2"),
    "lr_decay_start": Option(
        0.5, "fraction of the steps after which the learning rate decays linearly to 0"
    ),
    "init_gain": Option(0.02, "std of the normal weight initialisation"),
}
