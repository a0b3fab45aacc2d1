"""The ``satikit`` entry point of the timm-backbone adapter: registers ``timm`` (2D only).

Importing this module is cheap: neither torch nor timm is imported; timm is imported when an
adapter is built. Without timm installed the adapter is not registered and a
:class:`satikit.plugins.PluginWarning` says how to install it; the other adapters are unaffected.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import satikit
from satikit.gan.options import CYCLE_OPTIONS
from satikit.protocols import Option
from satikit_timm import TIMM_MISSING

__all__ = ["OPTIONS", "TEST_OPTIONS", "TIMM_MISSING", "register_adapters"]

OPTIONS: dict[str, Option] = {
    "backbone": Option(
        "resnet18",
        "timm model name used as the generator encoder "
        "(any timm.list_models() name that supports features_only; "
        "built with pretrained=False)",
        flag="backbone",
    ),
    "checkpoint": Option(
        "",
        "local checkpoint (.safetensors or a torch.save state dict) of the full timm model "
        "to initialise the encoders from ('' = random); used once, runs keep their weights",
    ),
    "depth": Option(0, "feature levels of the backbone used by the U-Net (0 = all)"),
    "decoder_channels": Option(
        32, "width of the decoder's full-resolution stage (deeper stages double it, up to 8x)"
    ),
    # The discriminators and the objective are CycleGAN's (same options, same defaults).
    **CYCLE_OPTIONS,
}

# The smallest configuration, for fast tests (2D, 32 px: test_resnet, 4 levels).
TEST_OPTIONS: dict[str, Any] = {
    "backbone": "test_resnet",
    "depth": 4,
    "decoder_channels": 4,
    "ndf": 4,
    "n_layers": 2,
    "pool_size": 4,
}


def _build(**kwargs: Any) -> Any:
    if importlib.util.find_spec("timm") is None:
        raise ValueError(TIMM_MISSING)
    from satikit_timm.adapter import build_timm

    return build_timm(**kwargs)


@satikit.hookimpl
def register_adapters(register: Any) -> None:
    """Register the ``timm`` adapter (2D only). Without timm installed it stays listed, and
    building it says how to install timm (other commands stay quiet)."""
    register("timm", _build, dims=(2,), options=OPTIONS, test_options=TEST_OPTIONS)
