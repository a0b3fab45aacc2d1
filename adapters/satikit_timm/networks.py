"""A U-Net-style generator whose encoder is any timm model built with ``features_only=True``.

The encoder is created with ``pretrained=False`` (nothing is ever downloaded); a local checkpoint
can be loaded into it (:func:`load_backbone_checkpoint`, never unpickling arbitrary objects). The
light decoder walks the feature pyramid from the deepest level up: resize to the next level,
concatenate its features, two 3x3 conv + instance norm + ReLU; at full resolution it
concatenates the input image itself (so the generator can keep already-translated SATI pixels)
and ends in a 3x3 conv with tanh. Resizing goes to each feature's exact size, so any input size
the backbone accepts works (no divisibility rule). 2D only (timm models are 2D).

Statistics across tiles: the backbone's BatchNorm layers normalise with their running statistics
at inference (a loaded run is in evaluation mode; the trainer recomputes them over source-domain
crops before every checkpoint, :mod:`satikit.training.batch_norm`), so the encoder is the same
for every tile;
the decoder's instance norms are per tile, and they are what ``--norm thumbnail|kernel|dense``
share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satikit_timm import TIMM_MISSING

__all__ = ["TIMM_MISSING", "TimmUNet", "create_backbone", "import_timm", "load_backbone_checkpoint"]


def import_timm() -> Any:
    """Import timm, or raise an ImportError that says how to install it."""
    try:
        import timm
    except ImportError as exc:
        raise ImportError(f"{TIMM_MISSING} ({exc})") from None
    return timm


def create_backbone(name: str, in_channels: int, *, depth: int = 0) -> nn.Module:
    """``timm.create_model(name, features_only=True, pretrained=False, in_chans=...)``.

    Args:
        name: any timm model name whose model supports ``features_only``.
        in_channels: image channels.
        depth: use the first ``depth`` feature levels (0: all).

    Raises:
        ValueError: unknown name (listing similar ones), or a model without ``features_only``.
    """
    timm = import_timm()
    if not timm.is_model(name):
        similar = timm.list_models(f"*{name}*")[:10]
        hint = f"; similar: {', '.join(similar)}" if similar else ""
        raise ValueError(f"unknown timm backbone {name!r}{hint} (see timm.list_models())")
    kwargs: dict[str, Any] = {}
    if depth > 0:
        kwargs["out_indices"] = tuple(range(depth))
    try:
        return timm.create_model(
            name, pretrained=False, features_only=True, in_chans=in_channels, **kwargs
        )
    except Exception as exc:  # timm raises several types for "no features_only"
        raise ValueError(
            f"timm backbone {name!r} cannot be built with features_only=True "
            f"(in_chans={in_channels}, depth={depth}): {type(exc).__name__}: {exc}"
        ) from None


def _unwrap(state: Any, path: Path) -> dict[str, Tensor]:
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a flat state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _read_state(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"no backbone checkpoint {str(path)!r}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return _unwrap(load_file(str(path)), path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{path} is not a plain state dict (tensors in dicts); satikit never unpickles "
            f"arbitrary objects: {str(exc).splitlines()[0]}"
        ) from None
    return _unwrap(state, path)


def _adapt_input_conv(weight: Tensor, channels: int) -> Tensor:
    """Adapt an RGB stem ``(O, 3, *k)`` to ``channels`` inputs (sum for 1, tiled and rescaled
    otherwise), so an ImageNet checkpoint also serves grey or multi-channel images."""
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-channels // weight.shape[1])
    tiled = weight.repeat(1, repeats, *(1,) * (weight.ndim - 2))[:, :channels]
    return tiled * (weight.shape[1] / channels)


def load_backbone_checkpoint(encoder: nn.Module, path: str | os.PathLike[str]) -> int:
    """Load a local checkpoint of the *full* timm model into a ``features_only`` encoder.

    Keys are matched as they are, or with the feature wrapper's ``a_b`` for ``a.b`` module
    names; head weights the encoder lacks are ignored; a stem conv with another number of input
    channels is adapted. Files: ``.safetensors`` or a ``torch.save`` of a state dict (loaded with
    ``weights_only=True``; a ``state_dict`` / ``model`` wrapper is unwrapped).

    Returns:
        number of tensors loaded.

    Raises:
        ValueError: not a state dict, or an encoder tensor missing / of another shape.
    """
    path = Path(path)
    source = _read_state(path)
    flat = {key.replace(".", "_"): key for key in source}
    target = encoder.state_dict()
    loaded, missing = {}, []
    for key, value in target.items():
        name = key if key in source else flat.get(key.replace(".", "_"))
        if name is None:
            if not key.endswith("num_batches_tracked"):
                missing.append(key)
            continue
        tensor = source[name]
        if (
            tensor.shape != value.shape
            and tensor.ndim == value.ndim == 4
            and tensor.shape[0] == value.shape[0]
            and tensor.shape[2:] == value.shape[2:]
        ):
            tensor = _adapt_input_conv(tensor, value.shape[1])
        if tensor.shape != value.shape:
            raise ValueError(
                f"{path}: {name!r} has shape {tuple(tensor.shape)}, the backbone "
                f"expects {tuple(value.shape)} (another model or size?)"
            )
        loaded[key] = tensor
    if missing:
        raise ValueError(
            f"{path} lacks {len(missing)} backbone tensors, e.g. {missing[:3]} "
            "(is it a checkpoint of this timm model?)"
        )
    encoder.load_state_dict(loaded, strict=False)
    return len(loaded)


def _stage(in_channels: int, out_channels: int) -> nn.Sequential:
    def conv(i: int, o: int) -> list[nn.Module]:
        return [
            nn.ReflectionPad2d(1),
            nn.Conv2d(i, o, 3),
            nn.InstanceNorm2d(o, affine=False, track_running_stats=False),
            nn.ReLU(inplace=True),
        ]

    return nn.Sequential(*conv(in_channels, out_channels), *conv(out_channels, out_channels))


class TimmUNet(nn.Module):
    """U-Net generator on a timm feature backbone (see the module docstring).

    Args:
        backbone: timm model name (``features_only`` capable), e.g. ``"resnet18"``.
        in_channels / out_channels: image channels in and out.
        decoder_channels: width of the full-resolution stage; level ``i`` uses
            ``min(decoder_channels * 2**(i + 1), 8 * decoder_channels)``.
        depth: feature levels used (0: all the backbone offers).
        checkpoint: optional local checkpoint of the full timm model (see
            :func:`load_backbone_checkpoint`); ``""``: random initialisation.

    ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)`` tanh values in [-1, 1].
    """

    def __init__(
        self,
        backbone: str,
        in_channels: int,
        out_channels: int,
        *,
        decoder_channels: int = 32,
        depth: int = 0,
        checkpoint: str = "",
    ) -> None:
        super().__init__()
        if decoder_channels < 1:
            raise ValueError(f"decoder_channels must be >= 1, got {decoder_channels}")
        self.encoder = create_backbone(backbone, in_channels, depth=depth)
        if checkpoint:
            load_backbone_checkpoint(self.encoder, checkpoint)
        features = list(self.encoder.feature_info.channels())
        self.size_multiple = int(max(self.encoder.feature_info.reduction()))
        widths = [
            min(decoder_channels * 2 ** (i + 1), 8 * decoder_channels) for i in range(len(features))
        ]
        previous = features[-1]
        stages = []
        for level in range(len(features) - 2, -1, -1):
            stages.append(_stage(previous + features[level], widths[level]))
            previous = widths[level]
        self.stages = nn.ModuleList(stages)
        self.full = _stage(previous + in_channels, decoder_channels)
        self.head = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(decoder_channels, out_channels, 3), nn.Tanh()
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(
                f"the timm generator is 2D: expected (B, C, H, W), got {tuple(x.shape)}"
            )
        features = self.encoder(x)
        h = features[-1]
        for stage, skip in zip(self.stages, reversed(features[:-1])):
            h = F.interpolate(h, size=skip.shape[2:], mode="bilinear", align_corners=False)
            h = stage(torch.cat([h, skip], dim=1))
        h = F.interpolate(h, size=x.shape[2:], mode="bilinear", align_corners=False)
        return self.head(self.full(torch.cat([h, x], dim=1)))

    def decoder_modules(self) -> list[nn.Module]:
        """The modules outside the timm backbone (for initialisation)."""
        return [*self.stages, self.full, self.head]
