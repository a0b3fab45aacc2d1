"""N-D encoder and decoder of UNIT (Liu et al. 2017), also MUNIT's content encoder and
upsampling path (Huang et al. 2018, appendix B).

An encoder is ``c7s1-k`` (7^N conv, instance norm, ReLU), ``n`` stride-2 ``4^N`` convs doubling
the width, then residual blocks; a decoder is residual blocks, ``n`` upsampling stages (2x
nearest neighbour + ``5^N`` conv + layer norm + ReLU) and a ``7^N`` conv with tanh.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from satikit.gan.layers import ConvBlock, Norm, check_divisible, conv_layer, make_norm
from satikit.gan.resnet import ResnetBlock

__all__ = ["UPSAMPLING", "Decoder", "Encoder", "NoiseInput", "upsampling_path"]


class Encoder(nn.Module):
    """``c7s1-dim``, ``n_downsampling`` x ``d`` (4^N, stride 2, IN, ReLU), ``n_res`` residual
    blocks (IN).

    ``(B, in_channels, *S)`` -> ``(B, dim * 2**n_downsampling, *S / 2**n_downsampling)``; every
    spatial size must be divisible by ``2**n_downsampling``.
    """

    def __init__(
        self, dims: int, in_channels: int, dim: int, n_downsampling: int, n_res: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(dims, in_channels, dim, 7, norm="in")]
        for _ in range(n_downsampling):
            layers.append(ConvBlock(dims, dim, dim * 2, 4, 2, norm="in"))
            dim *= 2
        layers += [ResnetBlock(dims, dim) for _ in range(n_res)]
        self.layers = nn.Sequential(*layers)
        self.out_channels = dim
        self.multiple = 2**n_downsampling

    def forward(self, x: Tensor) -> Tensor:
        check_divisible(x, self.multiple, "the encoder")
        return self.layers(x)


#: how :func:`upsampling_path` doubles the size: the papers' ``nearest`` (2x nearest-neighbour
#: upsampling + 5^N conv) or CycleGAN's ``transposed`` (3^N stride-2 transposed conv)
UPSAMPLING = ("nearest", "transposed")


class NoiseInput(nn.Module):
    """Appends ``channels`` maps of per-pixel N(0, 1) noise to its input while training, and
    zeros (the noise's mean: a deterministic translation, the same for every tile) in
    evaluation mode: ``(B, C, *S)`` -> ``(B, C + channels, *S)``.

    Beyond the papers: a decoder that must synthesise a domain's per-pixel noise from a smooth
    latent draws it as a pattern at its upsampling phase; with noise given it need not."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"noise channels must be >= 1, got {channels}")
        self.channels = channels

    def forward(self, h: Tensor) -> Tensor:
        draw = torch.randn if self.training else torch.zeros
        shape = (h.shape[0], self.channels, *h.shape[2:])
        return torch.cat([h, draw(shape, dtype=h.dtype, device=h.device)], dim=1)


def upsampling_path(
    dims: int,
    channels: int,
    out_channels: int,
    n_upsampling: int,
    mode: str = "nearest",
    noise_channels: int = 0,
    norm: Norm = "ln",
) -> nn.Sequential:
    """``n_upsampling`` x (an upsampling stage (``mode``, see :data:`UPSAMPLING`), a norm
    (``norm``: the papers' ``ln``, or CycleGAN's ``in``), ReLU) halving the width, then
    (``noise_channels`` > 0) a :class:`NoiseInput`, then a 7^N conv with tanh:
    ``(B, channels, *S)`` -> ``(B, out_channels, *S * 2**n)`` in [-1, 1]."""
    if mode not in UPSAMPLING:
        raise ValueError(f"upsampling must be one of {UPSAMPLING}, got {mode!r}")
    if noise_channels < 0:
        raise ValueError(f"noise_channels must be >= 0, got {noise_channels}")
    layers: list[nn.Module] = []
    for _ in range(n_upsampling):
        if mode == "nearest":
            stage: nn.Module = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                ConvBlock(dims, channels, channels // 2, 5, norm=norm),
            )
        else:
            transposed = conv_layer("convT", dims)
            stage = nn.Sequential(
                transposed(channels, channels // 2, 3, stride=2, padding=1, output_padding=1),
                make_norm(norm, dims, channels // 2),
                nn.ReLU(inplace=True),
            )
        layers.append(stage)
        channels //= 2
    if noise_channels:
        layers.append(NoiseInput(noise_channels))
    layers.append(ConvBlock(dims, channels + noise_channels, out_channels, 7, act="tanh"))
    return nn.Sequential(*layers)


class Decoder(nn.Module):
    """``n_res`` residual blocks (IN), then :func:`upsampling_path` (``upsampling``: its mode,
    ``norm``: its norm).

    ``(B, channels, *S)`` -> ``(B, out_channels, *S * 2**n_upsampling)``, tanh values in [-1, 1].
    """

    def __init__(
        self,
        dims: int,
        channels: int,
        out_channels: int,
        n_upsampling: int,
        n_res: int,
        upsampling: str = "nearest",
        norm: Norm = "ln",
    ) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[ResnetBlock(dims, channels) for _ in range(n_res)])
        self.up = upsampling_path(dims, channels, out_channels, n_upsampling, upsampling, norm=norm)

    def forward(self, h: Tensor) -> Tensor:
        return self.up(self.blocks(h))
