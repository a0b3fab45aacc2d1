"""N-D ResNet generator of CycleGAN (Zhu et al. 2017, appendix; SATI paper IV): reflection
padding, instance norm without running statistics, ReLU, tanh output."""

from __future__ import annotations

from torch import Tensor, nn

from satikit.gan.layers import check_divisible, conv_layer, instance_norm

__all__ = ["ResnetBlock", "ResnetGenerator"]


class ResnetBlock(nn.Module):
    """Residual block: two 3^N convolutions with reflection padding and instance norm.

    ``(B, channels, *S)`` -> same shape. State-dict keys ``body.{1,5}.weight|bias`` (the convs).
    """

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        conv, pad = conv_layer("conv", dims), conv_layer("pad", dims)
        self.body = nn.Sequential(
            pad(1),
            conv(channels, channels, 3),
            instance_norm(dims, channels),
            nn.ReLU(inplace=True),
            pad(1),
            conv(channels, channels, 3),
            instance_norm(dims, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """ResNet generator: 7^N stem, ``n_downsampling`` stride-2 convs, residual blocks, mirrored
    transposed convs, 7^N head with tanh.

    Input ``(B, in_channels, *spatial)`` with every spatial size divisible by
    ``2 ** n_downsampling`` and at least twice that (the residual blocks' reflection padding
    and instance norms need 2 px), and at least 4 (the stem's padding); output
    ``(B, out_channels, *spatial)`` in [-1, 1].
    """

    def __init__(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        *,
        ngf: int = 96,
        n_blocks: int = 9,
        n_downsampling: int = 2,
    ) -> None:
        super().__init__()
        conv, conv_t = conv_layer("conv", dims), conv_layer("convT", dims)
        pad = conv_layer("pad", dims)
        layers: list[nn.Module] = [
            pad(3),
            conv(in_channels, ngf, 7),
            instance_norm(dims, ngf),
            nn.ReLU(inplace=True),
        ]
        channels = ngf
        for _ in range(n_downsampling):
            layers += [
                conv(channels, channels * 2, 3, stride=2, padding=1),
                instance_norm(dims, channels * 2),
                nn.ReLU(inplace=True),
            ]
            channels *= 2
        layers += [ResnetBlock(dims, channels) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += [
                conv_t(channels, channels // 2, 3, stride=2, padding=1, output_padding=1),
                instance_norm(dims, channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [pad(3), conv(channels, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.multiple = 2**n_downsampling
        self.minimum = max(4, 2 * self.multiple)

    def forward(self, x: Tensor) -> Tensor:
        check_divisible(x, self.multiple, "ResnetGenerator", self.minimum)
        return self.model(x)
