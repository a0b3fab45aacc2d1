"""GAN building blocks for adapters: N-D layers, ResNet / encoder-decoder generators, PatchGAN
discriminators, an image pool, adapter base classes and importer helpers.

The built-in adapters (``cyclegan``, ``unit``, ``munit``, ``timm``) are made of these pieces, and
third-party adapters may use them too; each adapter package imports only ``satikit``. Networks
are built from the number of spatial dimensions, so 2D and 3D share one code path; tensors are
``(B, C, *spatial)``.

Modules (imported on first use, so ``satikit.gan.options`` stays cheap for plugin modules):

* :mod:`satikit.gan.layers`: conv / norm classes by dimension, layer norm, conv block, init;
* :mod:`satikit.gan.resnet`: CycleGAN's ResNet generator;
* :mod:`satikit.gan.autoencoder`: UNIT's encoder / decoder (MUNIT's content path);
* :mod:`satikit.gan.discriminators`: PatchGAN, multi-scale PatchGAN, adversarial loss;
* :mod:`satikit.gan.pool`: the discriminators' image pool;
* :mod:`satikit.gan.base`: adapter base classes; :mod:`satikit.gan.cyclegan`: the CycleGAN
  objective; :mod:`satikit.gan.options`: its declared options;
* :mod:`satikit.gan.importing`, :mod:`satikit.gan.reference`: reading other codebases'
  checkpoints.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from satikit.gan.autoencoder import Decoder, Encoder, upsampling_path
    from satikit.gan.base import AdapterBase, DomainGenerator, TwoDomainAdapter
    from satikit.gan.cyclegan import CycleGANBase
    from satikit.gan.discriminators import (
        MultiScaleDiscriminator,
        PatchDiscriminator,
        adversarial_loss,
    )
    from satikit.gan.layers import (
        ConvBlock,
        LayerNorm,
        check_divisible,
        conv_layer,
        init_weights,
        instance_norm,
    )
    from satikit.gan.pool import ImagePool
    from satikit.gan.resnet import ResnetBlock, ResnetGenerator

_EXPORTS = {
    "AdapterBase": "base",
    "ConvBlock": "layers",
    "CycleGANBase": "cyclegan",
    "Decoder": "autoencoder",
    "DomainGenerator": "base",
    "Encoder": "autoencoder",
    "ImagePool": "pool",
    "LayerNorm": "layers",
    "MultiScaleDiscriminator": "discriminators",
    "PatchDiscriminator": "discriminators",
    "ResnetBlock": "resnet",
    "ResnetGenerator": "resnet",
    "TwoDomainAdapter": "base",
    "adversarial_loss": "discriminators",
    "check_divisible": "layers",
    "conv_layer": "layers",
    "init_weights": "layers",
    "instance_norm": "layers",
    "upsampling_path": "autoencoder",
}

__all__ = [
    "AdapterBase",
    "ConvBlock",
    "CycleGANBase",
    "Decoder",
    "DomainGenerator",
    "Encoder",
    "ImagePool",
    "LayerNorm",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "TwoDomainAdapter",
    "adversarial_loss",
    "check_divisible",
    "conv_layer",
    "init_weights",
    "instance_norm",
    "upsampling_path",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'satikit.gan' has no attribute {name!r}")
    return getattr(importlib.import_module(f"satikit.gan.{_EXPORTS[name]}"), name)
