"""The names each choice setting takes (strategy, order, window, seam, norm): the only spelling
of them, shared by the settings (:mod:`satikit.settings`), the command line and the engine
(:mod:`satikit.stitching`).

This module imports nothing of satikit, nor torch nor numpy: every layer can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["NORMS", "ORDERS", "SEAMS", "STRATEGIES", "WINDOWS", "check_choice"]

#: The stitching strategies (:mod:`satikit.stitching.registry` holds one object per name).
STRATEGIES = ("none", "simple", "weighted", "sati")
#: SATI tile orders (same output): ``auto`` picks (:func:`satikit.stitching.resolve_order`).
ORDERS = ("auto", "raster", "wavefront")
#: The weighted strategy's blending windows (:mod:`satikit.stitching.windows`).
WINDOWS = ("gaussian", "pyramid")
#: Where tiles are cut: the middle of the overlap (paper III-E) or its start.
SEAMS = ("middle", "start")
#: Where instance norms take their statistics from (:mod:`satikit.stitching.norm`).
NORMS = ("tile", "thumbnail", "kernel", "dense")


def check_choice(kind: str, value: Any, choices: Sequence[str]) -> None:
    """Raise ``ValueError("unknown <kind> 'x'; choose one of (...)")`` unless ``value`` is one
    of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; choose one of {tuple(choices)}")
