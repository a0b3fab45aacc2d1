"""Trainer callbacks: code that runs after each step or each checkpoint of
:meth:`satikit.training.SATITrainer.fit`, without subclassing the trainer."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from satikit.checkpoint import CONFIG_NAME, WEIGHTS_NAME

if TYPE_CHECKING:
    from satikit.training.trainer import SATITrainer

__all__ = ["Callback", "Snapshots"]


class Callback:
    """Base class of trainer callbacks; override the events you need (each does nothing here).

    Callbacks run on every process of a distributed run; the trainer writes files on rank 0
    only, so :meth:`on_checkpoint` runs there only.
    """

    def on_step(self, trainer: SATITrainer, terms: Mapping[str, torch.Tensor]) -> None:
        """After optimizer step ``trainer.step`` (1-based) of :meth:`SATITrainer.fit`, with its
        detached loss terms, once the step's log line, sample and checkpoint are written."""

    def on_checkpoint(self, trainer: SATITrainer, run_dir: Path) -> None:
        """After a complete checkpoint of step ``trainer.step`` was written to ``run_dir``."""


class Snapshots(Callback):
    """Keep a copy of the weights and config of every checkpoint in
    ``run_dir/<folder>/step-NNNNNN`` (the run's own checkpoint is still overwritten), e.g. for
    learning curves; each copy loads with :func:`satikit.checkpoint.load_adapter`. A copy is
    written whole under a hidden name and renamed, and an existing one is kept."""

    def __init__(self, folder: str = "snapshots") -> None:
        self.folder = folder

    def on_checkpoint(self, trainer: SATITrainer, run_dir: Path) -> None:
        target = run_dir / self.folder / f"step-{trainer.step:06d}"
        if target.is_dir():
            return
        staging = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in (WEIGHTS_NAME, CONFIG_NAME):
            shutil.copy2(run_dir / name, staging / name)
        staging.rename(target)
