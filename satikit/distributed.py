"""Data-parallel training over several processes / GPUs (``torchrun``), adapter-agnostic.

``torchrun --nproc_per_node N -m satikit train ...`` starts N copies of the command with
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in their environment. :func:`setup` joins them into
one process group (NCCL on CUDA, gloo on CPU) and gives each rank its device
(``cuda:LOCAL_RANK``); the trainer then asks :func:`context` who it is.

Design: gradients are averaged with :func:`average_gradients` (bucketed ``all_reduce``) over the
parameters of the optimizer that is about to step, instead of wrapping modules in
``DistributedDataParallel``. The SATI step calls ``G_XY`` twice per backward (host forward and
``ŷ_z``), switches ``requires_grad`` of the discriminators and only knows an adapter through
its protocol; DDP wrappers would have to replace each adapter's own submodules and cope with
re-entrant forwards. Averaging what the optimizers see works for any adapter unchanged, and
keeps every rank's weights bit-identical (all ranks apply the same averaged gradients).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "Context",
    "average_gradients",
    "broadcast_state",
    "context",
    "launched",
    "mean_terms",
    "rank_seed",
    "session",
    "setup",
    "teardown",
]

_BUCKET_ELEMENTS = 1 << 24  # 64 MiB of float32 per all_reduce


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


def _buckets(tensors: list[torch.Tensor], limit: int) -> Iterator[list[torch.Tensor]]:
    """Consecutive runs of tensors with one dtype and device, up to ``limit`` elements each."""
    bucket: list[torch.Tensor] = []
    size = 0
    for tensor in tensors:
        same = not bucket or (tensor.dtype, tensor.device) == (bucket[0].dtype, bucket[0].device)
        if bucket and (not same or size + tensor.numel() > limit):
            yield bucket
            bucket, size = [], 0
        bucket.append(tensor)
        size += tensor.numel()
    if bucket:
        yield bucket


def average_gradients(
    params: Iterable[torch.Tensor], *, bucket_elements: int = _BUCKET_ELEMENTS
) -> None:
    """Replace each parameter's ``.grad`` by its mean over all ranks (in place).

    Gradients are flattened into buckets so a model costs a few ``all_reduce`` calls, not one
    per tensor. Every rank must hold gradients for the same parameters (true for the adapters'
    fixed step graphs; the same assumption DDP makes without ``find_unused_parameters``).

    Args:
        params: the parameters an optimizer is about to step (``None`` grads are skipped).
        bucket_elements: most elements per ``all_reduce``.
    """
    world = dist.get_world_size()
    grads = [p.grad for p in params if p.grad is not None]
    for bucket in _buckets(grads, bucket_elements):
        flat = torch.cat([g.reshape(-1) for g in bucket])
        dist.all_reduce(flat)
        flat.div_(world)
        for grad, part in zip(bucket, flat.split([g.numel() for g in bucket])):
            grad.copy_(part.view_as(grad))


def broadcast_state(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rank 0's values of a ``name -> tensor`` mapping, on every rank (sorted-name order).

    Used once at start so every rank begins from the same weights whatever the adapter's
    initialisation does.
    """
    out = {}
    for name in sorted(tensors):
        tensor = tensors[name].detach().clone()
        dist.broadcast(tensor, src=0)
        out[name] = tensor
    return out


def mean_terms(terms: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Average scalar loss terms over all ranks (for logging the global batch's losses)."""
    names = list(terms)
    values = torch.tensor([float(terms[k]) for k in names], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    values /= dist.get_world_size()
    return {k: v.cpu() for k, v in zip(names, values)}


def rank_seed(seed: int, rank: int, step: int) -> int:
    """A seed for the host GAN's own randomness (noise, styles) on ``rank`` at ``step``:
    independent across ranks and restarts, reproducible from ``(seed, rank, step)``."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


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
