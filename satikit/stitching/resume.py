"""Resume state of the engine: where an interrupted :func:`stitch_on_grid` stands.

``simple``, ``weighted`` and ``sati`` finish the output in order along the first spatial dim. After
each finished unit (``simple``: a batch that completes a tile row; ``weighted``/``sati``: a band
of tile rows, once its final rows are flushed to ``out``) they save a :class:`Progress`: how many
units are finished, how many padded rows of ``out`` are final, and the rows of their band
accumulators that the next band still needs (``O_0`` rows; see :meth:`Band.carried`). A resumed
run restores them and continues with the next unit, so it calls ``fn`` on exactly the tiles an
uninterrupted run calls it on after that point, batched the same way: the output is
bit-identical.

The state is one safetensors file, replaced atomically: the arrays as tensors, the identity of the
run (strategy, grid, order, batch size, window, image shape; the normalisation settings unless
per-tile) and the counters as JSON metadata. Resuming with a different identity (a key differing,
or present on one side only) is a :class:`ValueError`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from satikit.io.atomic import atomic_path

__all__ = ["Progress", "Resumer"]

VERSION = 1
_KEY = "satikit.stitch"


@dataclass
class Progress:
    """What a resumed run needs.

    Attributes:
        next: finished units (``simple``: tiles in raster order; else bands of tile rows).
        done: padded rows ``[0, done)`` of ``out`` that are final.
        origin: padded row where the carried band starts.
        channels: ``C_out`` (``out`` is allocated before any ``fn`` call on resume).
        arrays: the carried rows of each band, ``name -> (C, rows, *P_rest)``.
    """

    next: int
    done: int
    origin: int
    channels: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _normalised(identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(identity))


class Resumer:
    """Saves and loads the :class:`Progress` of one engine call.

    Args:
        path: the state file (``.safetensors``); None: neither save nor load.
        identity: JSON-able description of the call the state belongs to.
        resume: load an existing state; a missing file means "start from the beginning".
    """

    def __init__(self, path: str | os.PathLike[str] | None, identity: dict[str, Any], resume: bool):
        self.path = None if path is None else Path(path)
        self.identity = _normalised(identity)
        self.resume = resume

    def load(self) -> Progress | None:
        """The saved progress, or None (no path, not resuming, or no state written yet).

        Raises:
            ValueError: the file is unreadable or belongs to a different call.
        """
        if self.path is None or not self.resume or not self.path.exists():
            return None
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(self.path), framework="np") as handle:
                meta = json.loads((handle.metadata() or {})[_KEY])
                arrays = {name: handle.get_tensor(name) for name in handle.keys()}
        except (SafetensorError, KeyError, json.JSONDecodeError, OSError) as exc:
            raise ValueError(f"{self.path}: not a readable resume state ({exc})") from None
        self._check(meta)
        counters = meta["progress"]
        return Progress(**counters, arrays=arrays)

    def _check(self, meta: dict[str, Any]) -> None:
        if meta.get("version") != VERSION:
            raise ValueError(f"{self.path}: resume state version {meta.get('version')!r}")
        saved = meta.get("identity", {})
        keys = [*self.identity, *(key for key in saved if key not in self.identity)]
        diffs = [
            f"{key} {saved.get(key)!r} (now {self.identity.get(key)!r})"
            for key in keys
            if saved.get(key) != self.identity.get(key)
        ]
        if diffs:
            raise ValueError(
                f"{self.path}: the interrupted translation used a different setup: "
                + ", ".join(diffs)
            )

    def save(self, out: Any, progress: Progress) -> None:
        """Make ``out`` durable, then replace the state file with ``progress`` atomically."""
        if self.path is None:
            return
        flush = getattr(out, "flush", None)
        if callable(flush):
            flush()
        from safetensors.numpy import save_file

        meta = {
            "version": VERSION,
            "identity": self.identity,
            "progress": {
                "next": progress.next,
                "done": progress.done,
                "origin": progress.origin,
                "channels": progress.channels,
            },
        }
        arrays = {name: np.ascontiguousarray(a) for name, a in progress.arrays.items()}
        with atomic_path(self.path) as tmp:
            save_file(arrays, str(tmp), metadata={_KEY: json.dumps(meta)})
