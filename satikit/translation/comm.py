"""Messages between the processes of a ``torchrun`` translation, and what happens when one fails.

The translation's messages are host (numpy) arrays and small Python objects, so they go over
their own gloo process groups, whatever backend the default group uses (NCCL on GPUs):

- :meth:`Comm.share`: rank 0 prepares something (checks the input, creates the output) and
  every rank gets the result, or stops if rank 0 failed;
- :meth:`Comm.ring`: a :class:`~satikit.stitching.pipeline.Ring` over ``isend``/``recv`` for
  the SATI pipeline;
- :meth:`Comm.barrier`: wait until every rank has finished its share of the work.

Failures: a rank that fails exits with its error (the CLI prints it); its connections close,
so a rank waiting for it gets an error from gloo at once (and ``torchrun`` stops the remaining
ranks as soon as one exits with an error). Such errors become :class:`PeerFailure`. Waits for
a message time out after ``SATIKIT_DIST_TIMEOUT`` seconds (default 1800) in case a rank hangs
without failing; the final :meth:`Comm.barrier` waits for the other ranks' work, as long as it
takes (a week at most).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from satikit.devices import Context

__all__ = ["TIMEOUT_ENV", "Comm", "GlooRing", "PeerFailure", "message_timeout"]

T = TypeVar("T")
#: Environment variable: seconds a rank waits for a message before giving up.
TIMEOUT_ENV = "SATIKIT_DIST_TIMEOUT"
_WORK_TIMEOUT = timedelta(days=7)


class PeerFailure(BaseException):
    """Another process of the job failed, so this one stops.

    Like :class:`KeyboardInterrupt` (and unlike :class:`Exception`) it says this process was
    interrupted, not that its own work went wrong: resumable outputs keep their partial files
    (:func:`satikit.io.arrays.output_array`), so ``--resume`` continues.

    Attributes:
        quiet: the failed process has already said why (rank 0's setup errors); nothing to add.
    """

    def __init__(self, message: str, *, quiet: bool = False):
        super().__init__(message)
        self.quiet = quiet


def message_timeout() -> timedelta:
    """How long a rank waits for a message: ``SATIKIT_DIST_TIMEOUT`` seconds (default 1800).

    Raises:
        ValueError: the variable is not a positive number.
    """
    text = os.environ.get(TIMEOUT_ENV, "1800")
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise ValueError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {text!r}")
    return timedelta(seconds=seconds)


def _checked(call: Callable[[], T], what: str) -> T:
    """Run a ``torch.distributed`` call; its failure (a closed connection, a timeout) means
    another rank failed: :class:`PeerFailure`."""
    try:
        return call()
    except RuntimeError as exc:
        raise PeerFailure(
            f"stopped while {what}: another process failed ({_reason(exc)})"
        ) from None


def _reason(exc: BaseException) -> str:
    """The gist of a gloo error: its first sentence without the source location, e.g.
    ``Connection closed by peer [127.0.0.1]:31130``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)
    return text.split(". ")[0].rstrip(".")


@dataclass
class GlooRing:
    """A :class:`~satikit.stitching.pipeline.Ring` over a gloo group: ``isend`` to the next
    rank (the buffer is kept until received), ``recv`` from the previous one.

    Attributes:
        group: the gloo process group (ranks 0 .. size - 1 of the job).
        rank / size: this rank, the number of ranks.
    """

    group: Any
    rank: int
    size: int
    _pending: list[tuple[Any, torch.Tensor]] = field(default_factory=list)

    def send(self, array: np.ndarray) -> None:
        """Send a float32 copy of ``array`` to rank ``(rank + 1) % size`` without waiting."""
        tensor = torch.from_numpy(np.array(array, dtype=np.float32, copy=True))
        dst = (self.rank + 1) % self.size
        work = _checked(lambda: dist.isend(tensor, dst=dst, group=self.group), "sending a strip")
        self._pending = [(w, t) for w, t in self._pending if not w.is_completed()]
        self._pending.append((work, tensor))

    def recv(self, shape: Sequence[int]) -> np.ndarray:
        """The next float32 array of ``shape`` from rank ``(rank - 1) % size``."""
        tensor = torch.empty(tuple(int(s) for s in shape), dtype=torch.float32)
        src = (self.rank - 1) % self.size
        _checked(lambda: dist.recv(tensor, src=src, group=self.group), "waiting for a strip")
        return tensor.numpy()

    def flush(self) -> None:
        """Wait until the next rank has received everything sent."""
        for work, _ in self._pending:
            _checked(work.wait, "handing on the last strip")
        self._pending = []


@dataclass(frozen=True)
class Comm:
    """The translation's process groups (see the module docstring).

    Attributes:
        ctx: this process's rank and the job's size.
        group: gloo group whose waits time out after :func:`message_timeout`.
        patient: gloo group for waiting on the other ranks' work.
    """

    ctx: Context
    group: Any
    patient: Any

    @classmethod
    def create(cls, ctx: Context) -> Comm:
        """Make the groups; every rank must call it (after the default group is set up)."""
        group = dist.new_group(backend="gloo", timeout=message_timeout())
        patient = dist.new_group(backend="gloo", timeout=_WORK_TIMEOUT)
        return cls(ctx, group, patient)

    @property
    def rank(self) -> int:
        return self.ctx.rank

    @property
    def size(self) -> int:
        return self.ctx.world_size

    def share(self, make: Callable[[], T]) -> T:
        """``make()`` on rank 0; its result on every rank.

        Raises:
            whatever ``make`` raised, on rank 0; :class:`PeerFailure` (quiet) on the others.
        """
        result: list[Any] = [None]
        error: BaseException | None = None
        if self.rank == 0:
            try:
                result = [("ok", make())]
            except BaseException as exc:  # told to the others, then raised here
                error, result = exc, [("failed", None)]
        _checked(lambda: dist.broadcast_object_list(result, src=0, group=self.group), "starting")
        if error is not None:
            raise error
        status, value = result[0]
        if status != "ok":
            raise PeerFailure("stopped: process 0 failed", quiet=True)
        return value

    def barrier(self) -> None:
        """Wait until every rank has got here (however long their work takes)."""
        _checked(lambda: dist.barrier(group=self.patient), "waiting for the other processes")

    def ring(self) -> GlooRing:
        """The ring of all ranks, for :class:`~satikit.stitching.pipeline.Pipeline`."""
        return GlooRing(self.group, self.rank, self.size)
