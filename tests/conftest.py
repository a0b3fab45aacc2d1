"""Shared test settings: deterministic seeds, small thread count, hypothesis profile."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from hypothesis import settings

torch.set_num_threads(1)
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002  (seeds legacy global-RNG users too)
    torch.manual_seed(0)


@pytest.fixture
def tiny_xy(tmp_path):
    """Unpaired tiny RGB TIFFs in ``tmp_path/x`` and ``tmp_path/y``; returns a builder of
    ``satikit train`` arguments on them (1 step, 32 px crops, CPU, quiet) plus ``extra``."""
    from satikit.io.images import write_image

    rng = np.random.default_rng(0)
    for domain in ("x", "y"):
        (tmp_path / domain).mkdir()
        write_image(tmp_path / domain / "0.tif", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))

    def train_args(*extra: str) -> list[str]:
        data = ["--x", str(tmp_path / "x"), "--y", str(tmp_path / "y")]
        return [
            "train",
            *data,
            "--steps",
            "1",
            "--crop",
            "32",
            "--device",
            "cpu",
            "--quiet",
            *extra,
        ]

    return train_args
