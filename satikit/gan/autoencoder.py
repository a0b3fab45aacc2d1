"""N-D encoder and decoder of UNIT (Liu et al. 2017), also MUNIT's content encoder and
upsampling path (Huang et al. 2018, appendix B).

An encoder is ``c7s1-k`` (7^N conv, instance norm, ReLU), ``n`` stride-2 ``4^N`` convs doubling
the width, then residual blocks; a decoder is residual blocks, ``n`` upsampling stages (2x
nearest neighbour + ``5^N`` conv + layer norm + ReLU) and a ``7^N`` conv with tanh.
"""

from __future__ import annotations

from torch import Tensor, nn

from satikit.gan.layers import ConvBlock, check_divisible
from satikit.gan.resnet import ResnetBlock

__all__ = ["Decoder", "Encoder", "upsampling_path"]


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


def upsampling_path(
    dims: int, channels: int, out_channels: int, n_upsampling: int
) -> nn.Sequential:
    """``n_upsampling`` x (2x nearest upsampling, 5^N conv, LN, ReLU) halving the width, then a
    7^N conv with tanh: ``(B, channels, *S)`` -> ``(B, out_channels, *S * 2**n)`` in [-1, 1]."""
    layers: list[nn.Module] = []
    for _ in range(n_upsampling):
        layers.append(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                ConvBlock(dims, channels, channels // 2, 5, norm="ln"),
            )
        )
        channels //= 2
    layers.append(ConvBlock(dims, channels, out_channels, 7, act="tanh"))
    return nn.Sequential(*layers)


class Decoder(nn.Module):
    """``n_res`` residual blocks (IN), then :func:`upsampling_path`.

    ``(B, channels, *S)`` -> ``(B, out_channels, *S * 2**n_upsampling)``, tanh values in [-1, 1].
    """

    def __init__(
        self, dims: int, channels: int, out_channels: int, n_upsampling: int, n_res: int
    ) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[ResnetBlock(dims, channels) for _ in range(n_res)])
        self.up = upsampling_path(dims, channels, out_channels, n_upsampling)

    def forward(self, h: Tensor) -> Tensor:
        return self.up(self.blocks(h))
