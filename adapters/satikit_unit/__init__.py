"""UNIT for satikit (Liu et al. 2017): VAE-GAN encoders / decoders with a shared latent space.

Registered through the ``satikit`` entry-point group like any third-party plugin; the networks
work in 1D, 2D and 3D from the same code (the conv dimension is a parameter); they are
:mod:`satikit.gan`'s encoder, decoder and multi-scale discriminator.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
