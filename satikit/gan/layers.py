"""N-D layer helpers the built-in GANs share: conv / norm / padding classes by dimension, layer
norm, a padded conv block, weight initialisation.

Every network is built from the number of spatial dimensions (1, 2 or 3), so 2D and 3D share
one code path. Instance norms keep no running statistics: a tile is always normalised with its
own statistics, in training and at inference (paper III-B, Alg. 1).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Activation",
    "INIT_SCHEMES",
    "ConvBlock",
    "LayerNorm",
    "Norm",
    "check_divisible",
    "conv_layer",
    "init_weights",
    "instance_norm",
    "make_activation",
    "make_norm",
]

Norm = Literal["none", "in", "ln"]
Activation = Literal["relu", "lrelu", "tanh", "none"]
LayerKind = Literal["conv", "convT", "norm", "pad"]

_LAYERS: dict[str, tuple[type[nn.Module], type[nn.Module], type[nn.Module]]] = {
    "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
    "convT": (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
    "norm": (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d),
    "pad": (nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d),
}


def conv_layer(kind: LayerKind, dims: int) -> type[nn.Module]:
    """The torch layer class of ``kind`` for ``dims`` spatial dims, e.g. ``("conv", 3)`` ->
    :class:`torch.nn.Conv3d`; ``kind`` is ``conv``, ``convT``, ``norm`` (instance norm) or
    ``pad`` (reflection padding).

    Raises:
        ValueError: ``dims`` not in 1..3.
    """
    if dims not in (1, 2, 3):
        raise ValueError(f"dims must be 1, 2 or 3, got {dims!r}")
    return _LAYERS[kind][dims - 1]


def instance_norm(dims: int, channels: int) -> nn.Module:
    """Instance norm without affine parameters and without running statistics (paper III-B):
    ``(B, channels, *S)`` -> same shape, each sample and channel normalised over ``S``."""
    return conv_layer("norm", dims)(channels, affine=False, track_running_stats=False)


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

    # satikit.protocols.NormWithStatistics: lets thumbnail / kernel / dense tiling share its
    # statistics (dense: per-position (B, 1, *spatial) ones, broadcast over the channels)
    dense_statistics = True

    def norm_statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, var)`` over ``(C, *spatial)`` of each sample, each ``(B, 1)``."""
        var, mean = torch.var_mean(x, dim=tuple(range(1, x.ndim)), correction=0)
        return mean[:, None], var[:, None]

    def normalize_with(self, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        """The forward output with the given ``(B, 1)`` statistics (or ``(B, 1, *spatial)`` per
        position) instead of ``x``'s own."""
        view = mean.shape if mean.ndim == x.ndim else (x.shape[0],) + (1,) * (x.ndim - 1)
        y = (x - mean.reshape(view)) * torch.rsqrt(var.reshape(view) + self.eps)
        return self._affine(y)


def make_norm(norm: Norm, dims: int, channels: int) -> nn.Module:
    """``none`` (identity), ``in`` (:func:`instance_norm`) or ``ln`` (:class:`LayerNorm`)."""
    if norm == "none":
        return nn.Identity()
    if norm == "in":
        return instance_norm(dims, channels)
    if norm == "ln":
        return LayerNorm(channels)
    raise ValueError(f"norm must be 'none', 'in' or 'ln', got {norm!r}")


def make_activation(act: Activation) -> nn.Module:
    """``relu``, ``lrelu`` (slope 0.2), ``tanh`` or ``none`` (identity)."""
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
        self.pad = conv_layer("pad", dims)(padding) if padding else nn.Identity()
        self.conv = conv_layer("conv", dims)(in_channels, out_channels, kernel, stride)
        self.norm = make_norm(norm, dims, out_channels)
        self.act = make_activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


def check_divisible(x: Tensor, multiple: int, who: str, minimum: int = 1) -> None:
    """Raise a ValueError naming ``who`` if a spatial size of ``x`` ``(B, C, *S)`` is not a
    multiple of ``multiple``, or below ``minimum``."""
    bad = [size for size in x.shape[2:] if size % multiple or size < minimum]
    if bad:
        least = f"at least {minimum} px, " if minimum > multiple else ""
        raise ValueError(
            f"{who} needs spatial sizes {least}divisible by {multiple}, got {tuple(x.shape[2:])}"
        )


#: weight initialisations :func:`init_weights` offers
INIT_SCHEMES = ("normal", "kaiming")


def init_weights(module: nn.Module, gain: float = 0.02, scheme: str = "normal") -> None:
    """Initialise the weights of ``module``, biases with 0.

    ``normal``: every conv weight from N(0, gain) (DCGAN-style, as the CycleGAN, UNIT and MUNIT
    papers do; linear layers keep torch's default). ``kaiming``: every conv and linear weight
    He-normal (fan-in, ReLU gain), as the UNIT / MUNIT reference configurations initialise
    their generators (``init: kaiming``); ``gain`` is unused then.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init scheme must be one of {INIT_SCHEMES}, got {scheme!r}")
    kinds = (nn.modules.conv._ConvNd,) + ((nn.Linear,) if scheme == "kaiming" else ())
    for layer in module.modules():
        if isinstance(layer, kinds):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(layer.weight, a=0.0, mode="fan_in")
            else:
                nn.init.normal_(layer.weight, 0.0, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
