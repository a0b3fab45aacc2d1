"""MUNIT for satikit (Huang et al. 2018): content / style codes and AdaIN decoders.

Registered through the ``satikit`` entry-point group like any third-party plugin. One style code
per large image (from a seed or a reference Y image) keeps all tiles consistent; SATI training
decodes ``ŷ_x`` and ``ŷ_z`` with the step's sampled style. Works in 1D, 2D and 3D.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
