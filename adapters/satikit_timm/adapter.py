"""The timm-backbone adapter: U-Net generators on timm feature encoders, CycleGAN objective.

Two :class:`~satikit_timm.networks.TimmUNet` generators (X -> Y, Y -> X), two PatchGAN
discriminators, LSGAN + cycle + identity losses and image pools: everything but the generators
is CycleGAN's, so this class reuses :class:`satikit.gan.cyclegan.CycleGANBase`'s steps,
optimisers and state handling and only builds different networks.
"""

from __future__ import annotations

from typing import Any

from satikit.gan.base import DomainGenerator
from satikit.gan.cyclegan import CycleGANBase
from satikit.gan.layers import init_weights

from .networks import TimmUNet

__all__ = ["TimmAdapter", "build_timm"]

# CycleGAN generator options that make the smallest ResNet generators.
_PLACEHOLDER = {"ngf": 1, "n_blocks": 0, "n_downsampling": 0}


class TimmAdapter(CycleGANBase):
    """CycleGAN objective with timm-backbone U-Net generators; 2D only.

    Takes :class:`~satikit.gan.base.AdapterBase`'s arguments with ``dims=2``;
    ``**options`` are the hyperparameters declared in :mod:`satikit_timm.plugin`.

    Raises:
        ValueError: ``dims != 2``, unknown backbone, or one without ``features_only``.
        ImportError: timm is not installed (the message says how to install it).
    """

    name = "timm"

    def __init__(self, *, dims: int, **kwargs: Any) -> None:
        if dims != 2:
            raise ValueError(
                f"the timm adapter is 2D only (timm backbones are 2D), got dims={dims}"
            )
        # CycleGAN's constructor sets up everything but the generators (discriminators, pools,
        # state); it is given the smallest ResNet generators, which are replaced right after
        # (so the random draws, hence the weights a seed gives, stay those of earlier versions).
        super().__init__(dims=dims, **{**kwargs, **_PLACEHOLDER})
        for key in _PLACEHOLDER:  # not options of this adapter
            del self.options[key]
        o = self.options
        in_channels, out_channels = self.in_channels, self.out_channels
        unet = dict(
            decoder_channels=o["decoder_channels"], depth=o["depth"], checkpoint=o["checkpoint"]
        )
        net_xy = TimmUNet(o["backbone"], in_channels, out_channels, **unet)
        net_yx = TimmUNet(o["backbone"], out_channels, in_channels, **unet)
        for net in (net_xy, net_yx):  # the backbone keeps timm's own (or the loaded) weights
            for module in net.decoder_modules():
                init_weights(module, o["init_gain"])
        self.generator_xy = DomainGenerator(net_xy, "y", encoding=self.domain_encoding)
        self.generator_yx = DomainGenerator(net_yx, "x", encoding=self.domain_encoding)
        # whole images (strategy "none") are padded to the backbone's largest reduction
        self.size_multiple = net_xy.size_multiple
        # The checkpoint only initialises the encoders; runs store the trained weights, so a
        # rebuilt run (translate, resume) must not need the file any more.
        self.backbone_checkpoint = o["checkpoint"]
        self.options["checkpoint"] = ""


def build_timm(**kwargs: Any) -> TimmAdapter:
    """Factory registered as ``timm`` (see :class:`satikit.protocols.AdapterFactory`)."""
    return TimmAdapter(**kwargs)
