"""N-D encoder and decoder of UNIT (Liu et al. 2017), also MUNIT's content encoder and
upsampling path (Huang et al. 2018, appendix B).

An encoder is ``c7s1-k`` (7^N conv, instance norm, ReLU), ``n`` stride-2 ``4^N`` convs doubling
the width, then residual blocks; a decoder is residual blocks, ``n`` upsampling stages (2x
nearest neighbour + ``5^N`` conv + layer norm + ReLU) and a ``7^N`` conv with tanh.
"""

from __future__ import annotations

from torch import Tensor, nn

from satikit.gan.layers import ConvBlock, check_divisible, conv_layer, make_norm
from satikit.gan.resnet import ResnetBlock

__all__ = ["UPSAMPLING", "Decoder", "Encoder", "upsampling_path"]


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


def upsampling_path(
    dims: int, channels: int, out_channels: int, n_upsampling: int, mode: str = "nearest"
) -> nn.Sequential:
    """``n_upsampling`` x (an upsampling stage (``mode``, see :data:`UPSAMPLING`), LN, ReLU)
    halving the width, then a 7^N conv with tanh: ``(B, channels, *S)`` ->
    ``(B, out_channels, *S * 2**n)`` in [-1, 1]."""
    if mode not in UPSAMPLING:
        raise ValueError(f"upsampling must be one of {UPSAMPLING}, got {mode!r}")
    layers: list[nn.Module] = []
    for _ in range(n_upsampling):
        if mode == "nearest":
            stage: nn.Module = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                ConvBlock(dims, channels, channels // 2, 5, norm="ln"),
            )
        else:
            transposed = conv_layer("convT", dims)
            stage = nn.Sequential(
                transposed(channels, channels // 2, 3, stride=2, padding=1, output_padding=1),
                make_norm("ln", dims, channels // 2),
                nn.ReLU(inplace=True),
            )
        layers.append(stage)
        channels //= 2
    layers.append(ConvBlock(dims, channels, out_channels, 7, act="tanh"))
    return nn.Sequential(*layers)


class Decoder(nn.Module):
    """``n_res`` residual blocks (IN), then :func:`upsampling_path` (``upsampling``: its mode).

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
    ) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[ResnetBlock(dims, channels) for _ in range(n_res)])
        self.up = upsampling_path(dims, channels, out_channels, n_upsampling, upsampling)

    def forward(self, h: Tensor) -> Tensor:
        return self.up(self.blocks(h))
