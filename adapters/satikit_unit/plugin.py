"""The ``satikit`` entry point of the UNIT adapter: registers ``unit``.

Importing this module is cheap (no torch); the networks are imported when an adapter is built.
"""

from __future__ import annotations

from typing import Any

import satikit
from satikit.protocols import Option

__all__ = ["OPTIONS", "TEST_OPTIONS", "register_adapters"]

# Architecture from the UNIT paper (appendix: 3 private + 1 shared residual blocks per encoder
# and decoder); layer types of the authors' 2018 revision (4x4 stride-2 downsampling, nearest
# upsampling + 5x5 conv + LN, multi-scale LSGAN discriminators), so their checkpoints import.
# Loss weights: the paper's lambda_0..4 = 10, 0.1, 100, 0.1, 100 divided by lambda_0, so the
# adversarial weight is 1 like SATI's own adversarial term.
OPTIONS: dict[str, Option] = {
    "dim": Option(64, "width of the first encoder layer (doubles per downsampling)"),
    "n_downsampling": Option(
        2,
        "stride-2 convolutions per encoder; crops and tiles must be divisible by 2**n_downsampling",
    ),
    "n_res": Option(3, "private residual blocks per encoder and per decoder (paper: 3)"),
    "n_shared": Option(
        1,
        "residual blocks shared by both encoders, and by both decoders "
        "(paper: 1; the authors' 2018 code: 0)",
    ),
    "upsampling": Option(
        "nearest",
        "decoder upsampling: nearest (the paper's 2x nearest + 5^N conv) or transposed "
        "(CycleGAN's stride-2 3^N transposed conv)",
        choices=("nearest", "transposed"),  # satikit.gan.autoencoder.UPSAMPLING
    ),
    "up_norm": Option(
        "ln",
        "norm of the decoders' upsampling stages: ln (the paper's layer norm) or in (CycleGAN's "
        "instance norm, beyond the paper)",
        choices=("ln", "in"),
    ),
    "ndf": Option(64, "discriminator base channels"),
    "d_layers": Option(4, "stride-2 layers of each discriminator scale"),
    "n_scales": Option(3, "scales of the multi-scale discriminator"),
    "discriminator": Option(
        "multiscale",
        "multiscale (the paper's, one PatchGAN per scale, no normalisation) or patch "
        "(CycleGAN's PatchGAN with instance norm; n_scales unused)",
        choices=("multiscale", "patch"),
    ),
    "gan_loss": Option("lsgan", "adversarial loss", choices=("lsgan", "vanilla")),
    "lambda_gan": Option(1.0, "weight of the adversarial losses (paper lambda_0 / lambda_0)"),
    "latent_noise": Option(
        1.0,
        "std of the Gaussian noise added to the latent code in training (paper: 1, the "
        "unit-variance encoders)",
    ),
    "lambda_kl": Option(0.01, "weight of the KL terms (paper lambda_1 / lambda_0)"),
    "lambda_rec": Option(10.0, "weight of the L1 reconstruction (paper lambda_2 / lambda_0)"),
    "lambda_kl_cycle": Option(0.01, "weight of the cycle KL terms (paper lambda_3 / lambda_0)"),
    "lambda_cycle": Option(
        10.0, "weight of the L1 cycle reconstruction (paper lambda_4 / lambda_0)"
    ),
    "lambda_idt": Option(
        0.0,
        "beyond the paper: weight of CycleGAN's L1 identity loss (a Y image through G_XY "
        "comes back unchanged, and an X image through G_YX); 0: the paper's loss",
    ),
    "lr": Option(1e-4, "Adam learning rate (paper: 0.0001)"),
    "beta1": Option(0.5, "Adam beta1"),
    "beta2": Option(0.999, "Adam beta2"),
    "weight_decay": Option(1e-4, "Adam weight decay"),
    "lr_decay_start": Option(
        0.5, "fraction of the steps after which the learning rate decays linearly to 0"
    ),
    "init_gain": Option(0.02, "std of the normal conv weight initialisation"),
    "gen_init": Option(
        "normal",
        "generator weights: normal (N(0, init_gain), as the paper) or kaiming (He-normal conv "
        "and linear layers, as the reference configurations)",
        choices=("normal", "kaiming"),  # satikit.gan.layers.INIT_SCHEMES
    ),
}

# The smallest configuration, for fast tests (2D at 32 px, 3D at 16 px).
TEST_OPTIONS: dict[str, Any] = {
    "dim": 4,
    "n_res": 1,
    "n_shared": 1,
    "ndf": 4,
    "d_layers": 2,
    "n_scales": 2,
}


def _build(**kwargs: Any) -> Any:
    from satikit_unit.adapter import build_unit

    return build_unit(**kwargs)


def _load_init(adapter: Any, path: Any) -> list[str]:
    from satikit_unit.importer import load_init

    return load_init(adapter, path)


@satikit.hookimpl
def register_adapters(register: Any) -> None:
    """Register the ``unit`` adapter (2D and 3D)."""
    register(
        "unit",
        _build,
        dims=(2, 3),
        options=OPTIONS,
        test_options=TEST_OPTIONS,
        importer=_load_init,
        importer_help="reference gen_*.pt",
    )
