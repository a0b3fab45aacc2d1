"""N-D discriminators and their adversarial loss: the PatchGAN of CycleGAN (SATI paper IV) and
the multi-scale PatchGAN of UNIT / MUNIT (pix2pixHD)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satikit.gan.layers import ConvBlock, conv_layer, instance_norm

__all__ = ["MultiScaleDiscriminator", "PatchDiscriminator", "adversarial_loss"]


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: stride-2 4^N convs (LeakyReLU 0.2, instance norm after the
    first), one stride-1 conv, and a 1-channel stride-1 head of raw patch scores.

    Input ``(B, in_channels, *spatial)``; output ``(B, 1, *patches)``.
    """

    def __init__(self, dims: int, in_channels: int, *, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        conv = conv_layer("conv", dims)
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
                instance_norm(dims, out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out
        layers.append(conv(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


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
        layers.append(conv_layer("conv", dims)(channels, 1, 1))
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
