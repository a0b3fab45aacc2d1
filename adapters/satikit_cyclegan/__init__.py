"""CycleGAN for satikit (paper IV): ResNet generators, PatchGAN discriminators, LSGAN losses.

Registered through the ``satikit`` entry-point group like any third-party plugin; the networks
work in 2D and 3D from the same code (the conv dimension is a parameter).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
