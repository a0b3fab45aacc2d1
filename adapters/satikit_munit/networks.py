"""N-D MUNIT networks (Huang et al. 2018, appendix B): style encoder, AdaIN decoder + MLP.

The content encoder is UNIT's :class:`satikit.gan.autoencoder.Encoder` (``c7s1-64, d128, d256,
R256 x 4``). The style encoder is ``c7s1-64, d128, d256, d256, d256, GAP, fc8`` without
normalisation (instance norm would remove the style). The decoder's residual blocks use adaptive
instance normalisation whose per-sample scale and shift come from an MLP of the style code.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from satikit.gan.autoencoder import upsampling_path
from satikit.gan.layers import ConvBlock, conv_layer, instance_norm

__all__ = ["AdaIN", "AdaINResBlock", "StyleDecoder", "StyleEncoder"]


class AdaIN(nn.Module):
    """Adaptive instance norm: ``IN(x) * scale + shift``.

    The normalisation is an :func:`~satikit.gan.layers.instance_norm` module (no parameters), so
    tiled inference with shared statistics (``--norm thumbnail|kernel|dense``) finds and
    replaces it like every other instance norm of the generator.

    ``forward(x, shift, scale)``: ``x`` ``(B, C, *S)``; ``shift`` / ``scale`` ``(B, C)``
    per-sample affine parameters (from the style code).
    """

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.norm = instance_norm(dims, channels)

    def forward(self, x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
        view = (*shift.shape, *(1,) * (x.ndim - 2))
        return self.norm(x) * scale.reshape(view) + shift.reshape(view)


class AdaINResBlock(nn.Module):
    """Residual block: two 3^N convs (reflection padding), AdaIN after each, ReLU after the first.

    ``forward(x, params)`` with ``params`` ``(B, 4 C)``: ``[shift_1, scale_1, shift_2, scale_2]``.
    """

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = ConvBlock(dims, channels, channels, 3, act="none")
        self.conv2 = ConvBlock(dims, channels, channels, 3, act="none")
        self.norm1, self.norm2 = AdaIN(dims, channels), AdaIN(dims, channels)

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        shift1, scale1, shift2, scale2 = params.split(self.channels, dim=1)
        h = F.relu(self.norm1(self.conv1(x), shift1, scale1))
        return x + self.norm2(self.conv2(h), shift2, scale2)


class StyleEncoder(nn.Module):
    """``c7s1-dim``, ``n_downsampling`` stride-2 4^N convs (the first two double the width), global
    average pooling and a 1^N conv to ``style_dim``; no normalisation.

    ``(B, in_channels, *S)`` -> ``(B, style_dim)``; any spatial size that survives the
    downsampling (>= 2**n_downsampling) works.
    """

    def __init__(
        self, dims: int, in_channels: int, dim: int, n_downsampling: int, style_dim: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(dims, in_channels, dim, 7)]
        for index in range(n_downsampling):
            out = dim * 2 if index < 2 else dim
            layers.append(ConvBlock(dims, dim, out, 4, 2))
            dim = out
        self.layers = nn.Sequential(*layers)
        self.head = conv_layer("conv", dims)(dim, style_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.layers(x).mean(dim=tuple(range(2, x.ndim)), keepdim=True)
        return self.head(h).flatten(1)


class StyleDecoder(nn.Module):
    """MUNIT decoder: AdaIN residual blocks whose parameters an MLP computes from the style code,
    then :func:`satikit.gan.autoencoder.upsampling_path` (``upsampling``: its mode;
    ``noise_channels``: per-pixel noise maps before its last conv).

    ``forward(content, style)``: content ``(B, channels, *S)``, style ``(B, style_dim)`` or
    ``(1, style_dim)`` (broadcast over the batch) -> ``(B, out_channels, *S * 2**n)`` in [-1, 1].
    """

    def __init__(
        self,
        dims: int,
        channels: int,
        out_channels: int,
        n_upsampling: int,
        n_res: int,
        *,
        style_dim: int,
        mlp_dim: int,
        mlp_layers: int = 3,
        upsampling: str = "nearest",
        noise_channels: int = 0,
    ) -> None:
        super().__init__()
        if mlp_layers < 1:
            raise ValueError(f"mlp_layers must be >= 1, got {mlp_layers}")
        self.style_dim = style_dim
        self.blocks = nn.ModuleList([AdaINResBlock(dims, channels) for _ in range(n_res)])
        n_params = sum(4 * block.channels for block in self.blocks)
        layers: list[nn.Module] = []
        width = style_dim
        for _ in range(mlp_layers - 1):
            layers += [nn.Linear(width, mlp_dim), nn.ReLU(inplace=True)]
            width = mlp_dim
        layers.append(nn.Linear(width, n_params))
        self.mlp = nn.Sequential(*layers)
        self.up = upsampling_path(
            dims, channels, out_channels, n_upsampling, upsampling, noise_channels
        )

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        if style.ndim != 2 or style.shape[1] != self.style_dim:
            raise ValueError(f"style must be (B, {self.style_dim}), got shape {tuple(style.shape)}")
        if style.shape[0] not in (1, content.shape[0]):
            raise ValueError(
                f"style batch {style.shape[0]} does not match content batch {content.shape[0]} "
                "(pass one style per sample, or one for all)"
            )
        params = self.mlp(style.to(content.dtype)).expand(content.shape[0], -1)
        h, offset = content, 0
        for block in self.blocks:
            width = 4 * block.channels
            h = block(h, params[:, offset : offset + width])
            offset += width
        return self.up(h)
