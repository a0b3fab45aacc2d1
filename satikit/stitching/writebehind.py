"""Write-behind: finished rows go to a slow ``out`` (a compressed TIFF or zarr sink) on a worker
thread while the next band of tiles computes.

Only for sinks that are not numpy arrays (a memmap write is a memory copy, nothing to hide).
One worker thread runs the writes and the resume-state saves in the order they were handed
over, so a saved state never claims rows that are not yet in ``out``. Memory: at most one band
of finished rows in flight (each flush first waits for the previous band's writes).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["WriteBehind"]


class WriteBehind:
    """Hands writes into ``out`` to a worker thread when ``out`` is a slow sink.

    Use as a context manager: on exit every pending write has finished (or its error is
    raised).
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._failed = False

    @staticmethod
    def applies_to(out: Any) -> bool:
        """Whether writes into ``out`` go to the worker: not for numpy arrays and memmaps, nor
        for an ``out`` whose ``write_behind`` attribute is False (one that drops its input)."""
        return not isinstance(out, np.ndarray) and getattr(out, "write_behind", True)

    def write(self, out: Any, key: tuple, values: np.ndarray) -> None:
        """``out[key] = values``: now for a numpy ``out``, else on the worker (from a copy of
        ``values``, which the caller may go on changing)."""
        if not self.applies_to(out):
            out[key] = values
            return
        self.submit(out.__setitem__, key, np.array(values, copy=True))

    def submit(self, call: Callable[..., object], *args: Any) -> None:
        """Run ``call(*args)`` on the worker after everything handed over before it."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="satikit-write")
        self._pending.append(self._pool.submit(self._run, call, *args))

    def _run(self, call: Callable[..., object], *args: Any) -> None:
        # after a failed write nothing more runs: a resume state saved behind it would claim
        # rows that never reached ``out``
        if self._failed:
            raise RuntimeError("skipped: an earlier write into the output failed")
        try:
            call(*args)
        except BaseException:
            self._failed = True
            raise

    @property
    def active(self) -> bool:
        """Whether anything went to the worker so far."""
        return self._pool is not None

    def barrier(self) -> None:
        """Wait for every write handed over so far; raises the first error."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.barrier()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
