"""The ``satikit`` entry point of the MUNIT adapter: registers ``munit``.

Importing this module is cheap (no torch); the networks are imported when an adapter is built.
"""

from __future__ import annotations

from typing import Any

import satikit
from satikit.protocols import Option

__all__ = ["OPTIONS", "TEST_OPTIONS", "register_adapters"]

# Defaults from the MUNIT paper (appendix B and section 5).
OPTIONS: dict[str, Option] = {
    "dim": Option(64, "width of the first encoder layer (doubles per downsampling)"),
    "n_downsampling": Option(
        2,
        "stride-2 convolutions of the content encoder; crops and tiles "
        "must be divisible by 2**n_downsampling",
    ),
    "n_res": Option(4, "residual blocks of the content encoder and of the AdaIN decoder"),
    "style_dim": Option(8, "length of the style code (paper: 8)"),
    "style_downsampling": Option(4, "stride-2 convolutions of the style encoder (paper: 4)"),
    "mlp_dim": Option(256, "hidden width of the MLP that maps a style to AdaIN parameters"),
    "mlp_layers": Option(3, "linear layers of that MLP"),
    "upsampling": Option(
        "nearest",
        "decoder upsampling: nearest (the paper's 2x nearest + 5^N conv) or transposed "
        "(CycleGAN's stride-2 3^N transposed conv)",
        choices=("nearest", "transposed"),  # satikit.gan.autoencoder.UPSAMPLING
    ),
    "noise_channels": Option(
        0,
        "beyond the paper: maps of per-pixel N(0, 1) noise each decoder takes before its last "
        "conv while training (zeros at inference: a deterministic translation); 0: none",
    ),
    "ndf": Option(64, "discriminator base channels"),
    "d_layers": Option(4, "stride-2 layers of each discriminator scale"),
    "n_scales": Option(3, "scales of the multi-scale discriminator (paper: 3)"),
    "discriminator": Option(
        "multiscale",
        "multiscale (the paper's, one PatchGAN per scale, no normalisation) or patch "
        "(CycleGAN's PatchGAN with instance norm; n_scales unused)",
        choices=("multiscale", "patch"),
    ),
    "gan_loss": Option("lsgan", "adversarial loss (paper: LSGAN)", choices=("lsgan", "vanilla")),
    "lambda_gan": Option(1.0, "weight of the adversarial losses"),
    "lambda_x": Option(10.0, "weight of the L1 image reconstruction (paper: 10)"),
    "lambda_c": Option(1.0, "weight of the L1 content reconstruction (paper: 1)"),
    "lambda_s": Option(1.0, "weight of the L1 style reconstruction (paper: 1)"),
    "lambda_cycle": Option(0.0, "weight of the style-augmented cycle loss (paper: 0 or 10)"),
    "lambda_idt": Option(
        0.0,
        "beyond the paper: weight of CycleGAN's L1 identity loss (a Y image through G_XY "
        "comes back unchanged, and an X image through G_YX); 0: the paper's loss",
    ),
    "lr": Option(1e-4, "Adam learning rate (paper: 0.0001)"),
    "beta1": Option(0.5, "Adam beta1"),
    "beta2": Option(0.999, "Adam beta2"),
    "weight_decay": Option(1e-4, "Adam weight decay (paper: 0.0001)"),
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
    "style_seed": Option(
        0,
        "seed of the style used at inference when none is given (one style "
        "for every tile of an image)",
    ),
}

# The smallest configuration, for fast tests (2D at 32 px, 3D at 16 px).
TEST_OPTIONS: dict[str, Any] = {
    "dim": 4,
    "n_res": 1,
    "style_dim": 2,
    "style_downsampling": 2,
    "mlp_dim": 8,
    "ndf": 4,
    "d_layers": 2,
    "n_scales": 2,
}


def _build(**kwargs: Any) -> Any:
    from satikit_munit.adapter import build_munit

    return build_munit(**kwargs)


def _load_init(adapter: Any, path: Any) -> list[str]:
    from satikit_munit.importer import load_init

    return load_init(adapter, path)


@satikit.hookimpl
def register_adapters(register: Any) -> None:
    """Register the ``munit`` adapter (2D and 3D)."""
    register(
        "munit",
        _build,
        dims=(2, 3),
        options=OPTIONS,
        test_options=TEST_OPTIONS,
        importer=_load_init,
        importer_help="reference gen_*.pt",
    )
