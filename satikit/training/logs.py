"""What a training run writes besides checkpoints: the JSONL loss log and sample images."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from satikit.encoding import decode
from satikit.io.atomic import atomic_path

__all__ = ["LOG_NAME", "SAMPLES_DIR", "append_log", "truncate_log", "write_sample"]

LOG_NAME = "log.jsonl"
SAMPLES_DIR = "samples"


def append_log(run_dir: Path, record: Mapping[str, float]) -> None:
    """Append one JSON line to ``run_dir/log.jsonl`` (the folder is created)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOG_NAME, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(dict(record)) + "\n")


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after ``step`` by an interrupted run (so a resumed log is exact),
    and a last line cut short by a kill."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    kept = "".join(line + "\n" for line in text.splitlines() if _log_step(line) <= step)
    if kept != text:
        with atomic_path(path) as tmp:
            tmp.write_text(kept, encoding="utf-8")


def _log_step(line: str) -> float:
    """The step of a log line; infinity for a blank or broken one (so it is dropped)."""
    try:
        return float(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return float("inf")


def write_sample(path: Path, sample: Sequence[torch.Tensor | None], *, encoding: bool) -> Path:
    """Write ``x | ŷ_x | z | ŷ_z`` of the first crop of a batch as one PNG (3D: the middle
    slice).

    Args:
        path: the PNG to write (atomically; its folder is created).
        sample: ``(x, ŷ_x, z, M, ŷ_z)``, each ``(B, C, *crop)`` encoded (``z``, ``M``, ``ŷ_z``
            None on a step without SATI terms); ``M`` marks ``z``'s pixels that came from Y.
        encoding: whether the values are domain-encoded (paper III-C).
    """
    from PIL import Image

    x, y_hat_x, z, mask, y_hat_z = (
        None if t is None else t[0].detach().float().cpu() for t in sample
    )
    panels = [
        decode(x.numpy(), "x", enabled=encoding),  # type: ignore[union-attr]
        decode(y_hat_x.numpy(), "y", enabled=encoding),  # type: ignore[union-attr]
    ]
    if z is not None:
        merged = np.where(
            mask.numpy(),  # type: ignore[union-attr]
            decode(z.numpy(), "y", enabled=encoding),
            decode(z.numpy(), "x", enabled=encoding),
        )
        panels += [merged, decode(y_hat_z.numpy(), "y", enabled=encoding)]  # type: ignore[union-attr]
    images = [_displayable(p) for p in panels]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(np.concatenate(images, axis=1)).save(tmp, format="PNG")
    return path


def _displayable(image: np.ndarray) -> np.ndarray:
    """``(C, *spatial)`` uint8 -> ``(H, W[, 3])`` for a PNG (3D: the middle slice)."""
    while image.ndim > 3:
        image = image[:, image.shape[1] // 2]
    if image.shape[0] == 3:
        return np.moveaxis(image, 0, -1)
    return np.repeat(image[:1], 3, axis=0).transpose(1, 2, 0)
