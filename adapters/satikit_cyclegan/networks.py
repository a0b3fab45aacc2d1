"""N-D ResNet generator and PatchGAN discriminator (paper IV), built from the conv dimension.

Written from the CycleGAN paper's description (Zhu et al. 2017, appendix) and SATI paper IV:
reflection padding, instance normalisation without running statistics, ReLU, tanh output.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["PatchDiscriminator", "ResnetBlock", "ResnetGenerator", "init_weights"]


def _layer(kind: str, dims: int) -> type[nn.Module]:
    table = {
        "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
        "convT": (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
        "norm": (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d),
        "pad": (nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d),
    }
    if dims not in (1, 2, 3):
        raise ValueError(f"dims must be 1, 2 or 3, got {dims!r}")
    return table[kind][dims - 1]


def _norm(dims: int, channels: int) -> nn.Module:
    # Instance norm without affine parameters and without running statistics (paper III-B):
    # the statistics always come from the tile itself, in training and at inference.
    return _layer("norm", dims)(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Residual block: two 3^N convolutions with reflection padding and instance norm."""

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        conv, pad = _layer("conv", dims), _layer("pad", dims)
        self.body = nn.Sequential(
            pad(1),
            conv(channels, channels, 3),
            _norm(dims, channels),
            nn.ReLU(inplace=True),
            pad(1),
            conv(channels, channels, 3),
            _norm(dims, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """ResNet generator: 7^N stem, ``n_downsampling`` stride-2 convs, residual blocks, mirrored
    transposed convs, 7^N head with tanh.

    Input ``(B, in_channels, *spatial)`` with every spatial size divisible by
    ``2 ** n_downsampling``; output ``(B, out_channels, *spatial)`` in [-1, 1].
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
        conv, conv_t, pad = _layer("conv", dims), _layer("convT", dims), _layer("pad", dims)
        layers: list[nn.Module] = [
            pad(3),
            conv(in_channels, ngf, 7),
            _norm(dims, ngf),
            nn.ReLU(inplace=True),
        ]
        channels = ngf
        for _ in range(n_downsampling):
            layers += [
                conv(channels, channels * 2, 3, stride=2, padding=1),
                _norm(dims, channels * 2),
                nn.ReLU(inplace=True),
            ]
            channels *= 2
        layers += [ResnetBlock(dims, channels) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += [
                conv_t(channels, channels // 2, 3, stride=2, padding=1, output_padding=1),
                _norm(dims, channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [pad(3), conv(channels, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.multiple = 2**n_downsampling

    def forward(self, x: Tensor) -> Tensor:
        bad = [size for size in x.shape[2:] if size % self.multiple]
        if bad:
            raise ValueError(
                f"ResnetGenerator needs spatial sizes divisible by {self.multiple}, "
                f"got {tuple(x.shape[2:])}"
            )
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: stride-2 4^N convs (LeakyReLU 0.2, instance norm after the
    first), one stride-1 conv, and a 1-channel stride-1 head of raw patch scores.

    Input ``(B, in_channels, *spatial)``; output ``(B, 1, *patches)``.
    """

    def __init__(self, dims: int, in_channels: int, *, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        conv = _layer("conv", dims)
        layers: list[nn.Module] = [
            conv(in_channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                conv(channels, out, 4, stride=stride, padding=1),
                _norm(dims, out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out
        layers.append(conv(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """Initialise conv weights from N(0, gain) and biases with 0 (DCGAN-style)."""
    for layer in module.modules():
        if isinstance(layer, (nn.modules.conv._ConvNd,)):
            nn.init.normal_(layer.weight, 0.0, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
