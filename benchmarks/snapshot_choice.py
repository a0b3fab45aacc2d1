"""The snapshot of each run chosen on the validation images (early stopping).

GAN hosts oscillate: on cpu-small MUNIT made 8.5 % errors at step 800 and 96 % at step 1200,
and a run's last weights are whatever phase training stopped in. A run of a config with
``snapshots = true`` keeps its weights at every checkpoint; :func:`choose` scores each of them
without tiling on the validation images and records the one with the lowest error (the earliest
on a tie) in ``snapshots/chosen.json``. The model ``<variant>+best``
(:class:`benchmarks.planning.Run` with ``weights="best"``) is that snapshot; the frontier scores
it with the methods of ``[frontier] best``, beside the run's last weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from benchmarks import planning, scoring, training_runs
from benchmarks.bench_config import BenchConfig

__all__ = ["choose", "lowest_step"]


def lowest_step(errors: Mapping[int, float]) -> int:
    """The step with the lowest error, the earliest on a tie (step -> error)."""
    return min(errors, key=lambda step: (errors[step], step))


def choose(
    config: BenchConfig,
    root: Path,
    home: Path,
    data_dir: Path,
    run: planning.Run,
    echo: Callable[[str], None] = print,
) -> int:
    """Score ``run``'s snapshots without tiling on the validation images (each once: the
    errors are kept in the record) and record the best; returns its step.

    Raises:
        ValueError: the run kept no snapshots.
    """
    from satikit.checkpoint import load_adapter
    from satikit.io.atomic import write_json

    kept = training_runs.snapshots(root, run)
    if not kept:
        raise ValueError(
            f"{run.name} kept no snapshots: set `snapshots = true` in the config and retrain it"
        )
    images = planning.split_data(config, home, data_dir, "validation")
    path = planning.run_dir(root, run) / planning.SNAPSHOTS / planning.CHOSEN_SNAPSHOT
    old = json.loads(path.read_text()) if path.is_file() else {}
    errors: dict[str, float] = (
        dict(old.get("errors", {})) if old.get("data") == scoring.data_key(images) else {}
    )
    for step, folder in kept:
        if str(step) not in errors:
            counts = scoring.score_method(*load_adapter(folder), images, "none", config.inference)
            errors[str(step)] = scoring.count_error(counts)
    step = lowest_step({step: errors[str(step)] for step, _ in kept})
    folder = dict(kept)[step]
    record = {
        "split": "validation",
        "method": "none",
        "data": scoring.data_key(images),
        "errors": errors,
        "step": step,
        "snapshot": folder.name,
    }
    write_json(path, record)  # atomically
    echo(f"  chose {run.name} step {step} ({100 * errors[str(step)]:.2f} % on validation)")
    return step
