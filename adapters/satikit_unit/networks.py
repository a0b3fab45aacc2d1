"""N-D encoder / decoder / multi-scale discriminator of UNIT, shared with MUNIT.

Written from the papers (Liu et al. 2017, UNIT; Huang et al. 2018, MUNIT, appendix B): an
encoder is ``c7s1-k`` (7^N conv, instance norm, ReLU), ``n`` stride-2 ``4^N`` convs doubling the
width, then residual blocks; a decoder is residual blocks, ``n`` upsampling stages (2x nearest
neighbour + ``5^N`` conv + layer norm + ReLU) and a ``7^N`` conv with tanh; the discriminator is
LSGAN-style PatchGAN applied at several scales (pix2pixHD). Every layer is built from the conv
dimension, so 2D and 3D share the code. Residual blocks and the conv-class table come from
:mod:`satikit_cyclegan.networks` (same block: reflection pad, 3^N conv, instance norm).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from satikit_cyclegan.networks import ResnetBlock, _layer, _norm
from torch import Tensor, nn

__all__ = [
    "ConvBlock",
    "Decoder",
    "Encoder",
    "LayerNorm",
    "MultiScaleDiscriminator",
    "adversarial_loss",
    "check_divisible",
    "upsampling_path",
]

Norm = Literal["none", "in", "ln"]
Activation = Literal["relu", "lrelu", "tanh", "none"]


class LayerNorm(nn.Module):
    """Layer normalisation (Ba et al. 2016) over ``(C, *spatial)`` of each sample, followed by a
    per-channel affine map. Input and output ``(B, C, *spatial)``."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x, x.shape[1:], eps=self.eps)
        return self._affine(y)

    def _affine(self, y: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (y.ndim - 2)
        return y * self.weight.view(shape) + self.bias.view(shape)

    # satikit.protocols.NormWithStatistics: lets thumbnail / kernel tiling share its statistics
    def norm_statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, var)`` over ``(C, *spatial)`` of each sample, each ``(B, 1)``."""
        var, mean = torch.var_mean(x, dim=tuple(range(1, x.ndim)), correction=0)
        return mean[:, None], var[:, None]

    def normalize_with(self, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        """The forward output with the given ``(B, 1)`` statistics instead of ``x``'s own."""
        view = (x.shape[0],) + (1,) * (x.ndim - 1)
        y = (x - mean.reshape(view)) * torch.rsqrt(var.reshape(view) + self.eps)
        return self._affine(y)


def _make_norm(norm: Norm, dims: int, channels: int) -> nn.Module:
    if norm == "none":
        return nn.Identity()
    if norm == "in":
        return _norm(dims, channels)
    if norm == "ln":
        return LayerNorm(channels)
    raise ValueError(f"norm must be 'none', 'in' or 'ln', got {norm!r}")


def _make_activation(act: Activation) -> nn.Module:
    table = {
        "relu": lambda: nn.ReLU(inplace=True),
        "lrelu": lambda: nn.LeakyReLU(0.2, inplace=True),
        "tanh": nn.Tanh,
        "none": nn.Identity,
    }
    if act not in table:
        raise ValueError(f"activation must be one of {sorted(table)}, got {act!r}")
    return table[act]()


class ConvBlock(nn.Module):
    """Reflection padding ``(k - 1) // 2``, a ``k^N`` conv, a norm, an activation.

    ``(B, in_channels, *S)`` -> ``(B, out_channels, *S / stride)``.
    """

    def __init__(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        *,
        norm: Norm = "none",
        act: Activation = "relu",
    ) -> None:
        super().__init__()
        padding = (kernel - 1) // 2
        self.pad = _layer("pad", dims)(padding) if padding else nn.Identity()
        self.conv = _layer("conv", dims)(in_channels, out_channels, kernel, stride)
        self.norm = _make_norm(norm, dims, out_channels)
        self.act = _make_activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


def check_divisible(x: Tensor, multiple: int, who: str) -> None:
    """Raise a ValueError naming ``who`` if a spatial size of ``x`` is not a multiple."""
    bad = [size for size in x.shape[2:] if size % multiple]
    if bad:
        raise ValueError(
            f"{who} needs spatial sizes divisible by {multiple}, got {tuple(x.shape[2:])}"
        )


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


class MultiScaleDiscriminator(nn.Module):
    """PatchGAN discriminators at ``n_scales`` scales (each a 3^N average pool, stride 2, of the
    previous one): ``n_layers`` x (4^N conv, stride 2, LeakyReLU 0.2) and a 1^N conv to one
    channel.

    Input ``(B, in_channels, *S)``; output a list of ``n_scales`` raw patch-score tensors
    ``(B, 1, *S / 2**(n_layers + scale))``; :func:`adversarial_loss` sums the per-scale losses.
    """

    def __init__(
        self, dims: int, in_channels: int, *, ndf: int = 64, n_layers: int = 4, n_scales: int = 3
    ) -> None:
        super().__init__()
        if n_scales < 1 or n_layers < 1:
            raise ValueError(f"n_scales and n_layers must be >= 1, got {n_scales}, {n_layers}")
        self.dims = dims
        self.scales = nn.ModuleList(
            [self._scale(dims, in_channels, ndf, n_layers) for _ in range(n_scales)]
        )

    @staticmethod
    def _scale(dims: int, in_channels: int, ndf: int, n_layers: int) -> nn.Sequential:
        layers: list[nn.Module] = [ConvBlock(dims, in_channels, ndf, 4, 2, act="lrelu")]
        channels = ndf
        for _ in range(n_layers - 1):
            layers.append(ConvBlock(dims, channels, channels * 2, 4, 2, act="lrelu"))
            channels *= 2
        layers.append(_layer("conv", dims)(channels, 1, 1))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[self.dims - 1]
        outputs = []
        for index, net in enumerate(self.scales):
            if index:
                x = pool(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(net(x))
        return outputs


def adversarial_loss(
    prediction: Tensor | Sequence[Tensor], target_is_real: bool, kind: str = "lsgan"
) -> Tensor:
    """Sum over scales of the LSGAN (MSE to 1 / 0) or vanilla (BCE on logits) loss.

    Args:
        prediction: one patch-score tensor or a sequence of them (one per scale).
        target_is_real: target 1 (real) or 0 (fake).
        kind: ``"lsgan"`` or ``"vanilla"``.

    Returns:
        scalar tensor >= 0.
    """
    if kind not in ("lsgan", "vanilla"):
        raise ValueError(f"gan loss must be 'lsgan' or 'vanilla', got {kind!r}")
    scores = [prediction] if isinstance(prediction, Tensor) else list(prediction)
    total = None
    for score in scores:
        target = torch.full_like(score, 1.0 if target_is_real else 0.0)
        loss = (
            F.mse_loss(score, target)
            if kind == "lsgan"
            else F.binary_cross_entropy_with_logits(score, target)
        )
        total = loss if total is None else total + loss
    if total is None:
        raise ValueError("the discriminator returned no scores")
    return total
