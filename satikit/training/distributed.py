"""Data-parallel training over several processes / GPUs (``torchrun``), adapter-agnostic.

``torchrun --nproc_per_node N -m satikit train ...`` starts N copies of the command with
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in their environment. :func:`satikit.devices.setup`
joins them into one process group (NCCL on CUDA, gloo on CPU) and gives each rank its device
(``cuda:LOCAL_RANK``); the trainer then asks :func:`satikit.devices.context` who it is (the
process group is shared with ``torchrun`` translation, so it lives in :mod:`satikit.devices`;
its names are re-exported here).

Design: gradients are averaged with :func:`average_gradients` (bucketed ``all_reduce``) over the
parameters of the optimizer that is about to step, instead of wrapping modules in
``DistributedDataParallel``. The SATI step calls ``G_XY`` twice per backward (host forward and
``ŷ_z``), switches ``requires_grad`` of the discriminators and only knows an adapter through
its protocol; DDP wrappers would have to replace each adapter's own submodules and cope with
re-entrant forwards. Averaging what the optimizers see works for any adapter unchanged, and
keeps every rank's weights bit-identical (all ranks apply the same averaged gradients).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import torch
import torch.distributed as dist

from satikit.devices import Context, context, launched, session, setup, teardown

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
