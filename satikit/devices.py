"""Choosing the torch device a command, trainer or the tiling engine runs on."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["resolve_device"]


def resolve_device(
    device: str | torch.device | None = "auto", fn: Callable | None = None
) -> torch.device:
    """The device to run on.

    Args:
        device: ``"auto"``: CUDA if available, else the CPU; None: the device of ``fn``'s
            first parameter (the CPU if it has none); anything else as ``torch.device`` reads
            it (``"cpu"``, ``"cuda:1"``, ...).
        fn: the callable that will run (a module's parameters tell where it lives).
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device is not None:
        return torch.device(device)
    if isinstance(fn, nn.Module):
        for param in fn.parameters():
            return param.device
    return torch.device("cpu")
