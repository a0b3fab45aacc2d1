"""The CycleGAN adapter (paper IV): :class:`satikit.gan.cyclegan.CycleGANBase` registered as
``cyclegan`` (ResNet generators, PatchGAN discriminators, LSGAN, cycle + identity losses)."""

from __future__ import annotations

from typing import Any

from satikit.gan.cyclegan import CycleGANBase

__all__ = ["CycleGANAdapter", "build_cyclegan"]


class CycleGANAdapter(CycleGANBase):
    """CycleGAN wrapped for SATI; see :class:`satikit.protocols.Adapter`.

    Takes :class:`~satikit.gan.base.AdapterBase`'s arguments; ``**options`` are the
    hyperparameters declared in :mod:`satikit_cyclegan.plugin`.
    """

    name = "cyclegan"


def build_cyclegan(**kwargs: Any) -> CycleGANAdapter:
    """Factory registered as ``cyclegan`` (see :class:`satikit.protocols.AdapterFactory`)."""
    return CycleGANAdapter(**kwargs)
