"""A trainer's resume state besides the weights: optimizers, schedulers, grad scaler, every RNG,
the step and the host's own training state (e.g. CycleGAN's image pools), so a resumed run
continues bit-identically (see :func:`satikit.checkpoint.pack` for how it is stored)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from satikit.training.trainer import SATITrainer

__all__ = ["restore_state", "trainer_state"]


def trainer_state(trainer: SATITrainer) -> dict[str, Any]:
    """Everything an exact resume needs besides the weights."""
    opt = trainer.optimizers
    rng = {
        "torch": torch.get_rng_state(),
        "numpy": trainer.rng.bit_generator.state,
        "merge": trainer.hooks.merge_generator.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    state = {
        "step": trainer.step,
        "optimizers": {
            "generator": opt.generator.state_dict(),
            "discriminator": opt.discriminator.state_dict(),
        },
        "schedulers": [s.state_dict() for s in opt.schedulers],
        "scaler": trainer.scaler.state_dict() if trainer.amp else {},
        "rng": rng,
        "host": trainer.adapter.training_state(),
    }
    if trainer.ema is not None:
        state["ema"] = trainer.ema.state()
    return state


def restore_state(trainer: SATITrainer, state: Mapping[str, Any]) -> None:
    """Restore :func:`trainer_state` into ``trainer`` (after the weights are loaded)."""
    opt = trainer.optimizers
    opt.generator.load_state_dict(state["optimizers"]["generator"])
    opt.discriminator.load_state_dict(state["optimizers"]["discriminator"])
    for scheduler, saved in zip(opt.schedulers, state["schedulers"]):
        scheduler.load_state_dict(saved)
    if trainer.amp and state["scaler"]:
        trainer.scaler.load_state_dict(state["scaler"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    trainer.rng.bit_generator.state = rng["numpy"]
    trainer.hooks.merge_generator.set_state(rng["merge"])
    random.setstate(rng["python"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(rng["cuda"]))
    trainer.adapter.load_training_state(state["host"])
    if trainer.ema is not None and "ema" in state:
        trainer.ema.load_state(state["ema"])
    trainer.step = int(state["step"])
