"""Where a command runs: the torch device of a command, trainer or the tiling engine, and under
``torchrun`` the process group, this process's rank in it and the device of that rank.

``torchrun --nproc_per_node N -m satikit train|translate ...`` starts N copies of the command
with ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in their environment. :func:`setup` (or
:func:`session`) joins them into one process group (NCCL on CUDA, gloo on CPU) and gives each
rank its device (``cuda:LOCAL_RANK``); :func:`context` says who a process is. What the ranks
then share is the business of data-parallel training (:mod:`satikit.training.distributed`) or
of translation (:mod:`satikit.translation.distributed`).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "Context",
    "context",
    "environment",
    "launched",
    "resolve_device",
    "session",
    "setup",
    "teardown",
]


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


def _cpu_name() -> str:
    """The CPU's model name (Linux: ``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict[str, str]:
    """What a computation ran on, for a run's record: the device (and GPU name), CPU model,
    torch, Python and OS. Seeded training repeats itself exactly where these agree; another
    CPU or torch build rounds differently, which GAN training can grow into another model."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {  # the device's kind, not its index: cuda:0 and cuda:1 of one machine round alike
        "device": device.type + (f" ({gpu})" if gpu else ""),
        "cpu": _cpu_name(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "os": f"{platform.system()} {platform.machine()}",
    }


@dataclass(frozen=True)
class Context:
    """Where this process stands in the process group.

    Attributes:
        rank: global rank, 0 .. world_size - 1 (0: the one that writes files).
        world_size: number of processes (1: not distributed).
        local_rank: rank on this machine (picks the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """True when gradients must be averaged over several processes."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the rank that writes checkpoints, logs, samples and the progress bar."""
        return self.rank == 0

    def shard(self, batch_size: int) -> slice:
        """This rank's part of a global batch of ``batch_size * world_size`` samples."""
        return slice(self.rank * batch_size, (self.rank + 1) * batch_size)


def launched() -> bool:
    """True when started by ``torchrun`` (or any launcher) with ``WORLD_SIZE > 1``."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def context() -> Context:
    """This process's :class:`Context` (rank 0 of 1 unless a process group is initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return Context(dist.get_rank(), dist.get_world_size(), local)


def _rank_device(device: str, local_rank: int) -> torch.device:
    """``auto``/``cuda`` -> ``cuda:LOCAL_RANK`` (when CUDA is there); explicit devices stay."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    if resolved.type == "cuda" and resolved.index is None:
        return torch.device("cuda", local_rank)
    return resolved


def setup(device: str = "auto") -> tuple[Context, str]:
    """Join the launcher's process group if there is one (``WORLD_SIZE > 1``).

    Args:
        device: the requested device (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ...).

    Returns:
        ``(context, device)``: the process's rank and the device it should train on
        (``cuda:LOCAL_RANK`` for ``auto``/``cuda``). Without a launcher: ``(Context(), device)``.

    Raises:
        ValueError: ``RANK`` / ``LOCAL_RANK`` missing or the backend is not available.
    """
    if not launched():
        return context(), device
    if "RANK" not in os.environ or "LOCAL_RANK" not in os.environ:
        raise ValueError("WORLD_SIZE > 1 but RANK/LOCAL_RANK are not set; launch with torchrun")
    local_rank = int(os.environ["LOCAL_RANK"])
    rank_device = _rank_device(device, local_rank)
    backend = "nccl" if rank_device.type == "cuda" else "gloo"
    if not dist.is_available() or not dist.is_backend_available(backend):
        raise ValueError(f"distributed training needs the {backend} backend, which is missing")
    if rank_device.type == "cuda":
        torch.cuda.set_device(rank_device)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return context(), str(rank_device)


def teardown() -> None:
    """Leave the process group (no-op when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def session(device: str = "auto") -> Iterator[tuple[Context, str]]:
    """:func:`setup` on entry, :func:`teardown` on exit (a no-op without a launcher).

    A process group that was already initialised on entry (e.g. by a script running several
    commands in one ``torchrun`` job) is used and left in place."""
    owned = not (dist.is_available() and dist.is_initialized())
    ctx, rank_device = setup(device)
    try:
        yield ctx, rank_device
    finally:
        if ctx.distributed and owned:
            teardown()
