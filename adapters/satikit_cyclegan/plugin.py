"""The ``satikit`` entry point of the CycleGAN adapter: registers ``cyclegan``.

Importing this module is cheap (no torch); the networks are imported when an adapter is built.
"""

from __future__ import annotations

from typing import Any

import satikit
from satikit.gan.options import CYCLE_OPTIONS, RESNET_OPTIONS
from satikit.protocols import Option

__all__ = ["OPTIONS", "TEST_OPTIONS", "register_adapters"]

# Defaults from paper IV (and the CycleGAN paper where SATI's is silent).
OPTIONS: dict[str, Option] = {**RESNET_OPTIONS, **CYCLE_OPTIONS}

# The smallest configuration, for fast tests.
TEST_OPTIONS: dict[str, Any] = {"ngf": 4, "n_blocks": 1, "ndf": 4, "n_layers": 2, "pool_size": 4}


def _build(**kwargs: Any) -> Any:
    from satikit_cyclegan.adapter import build_cyclegan

    return build_cyclegan(**kwargs)


def _load_init(adapter: Any, path: Any) -> list[str]:
    from satikit_cyclegan.importer import load_init

    return load_init(adapter, path)


@satikit.hookimpl
def register_adapters(register: Any) -> None:
    """Register the ``cyclegan`` adapter (2D and 3D)."""
    register(
        "cyclegan",
        _build,
        dims=(2, 3),
        options=OPTIONS,
        test_options=TEST_OPTIONS,
        importer=_load_init,
        importer_help="pytorch-CycleGAN-and-pix2pix folder or *_net_G_A.pth",
    )
