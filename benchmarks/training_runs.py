"""Training the quality benchmark's runs, resumably: each run's RunConfig from the benchmark
config, whether a cached run is finished or stale (read-only checks of its config.json), and
the training itself, several runs at a time in separate processes."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.bench_config import BenchConfig
from benchmarks.planning import (
    FINETUNE,
    SNAPSHOTS,
    Run,
    base_model,
    init_run,
    run_dir,
    run_steps,
    training_free,
    training_seed,
)

# model variant -> SATISettings overrides
ABLATION_SETTINGS = {
    "overlap_sampling": {"overlap_sampling": False},
    "domain_encoding": {"domain_encoding": False},
    "loss_ramping": {"loss_ramping": False},
    "pixel_weighting": {"pixel_weighting": False},
}


def train_config(config: BenchConfig, run: Run):
    """The :class:`satikit.checkpoint.RunConfig` a run trains with."""
    from satikit.checkpoint import AdapterSpec, DataSpec, RunConfig, SATISettings
    from satikit.checkpoint import TrainingSettings as Training

    train = config.train
    sati: dict[str, Any] = {"enabled": not training_free(run.variant)}
    # optional SATISettings overrides: [train.sati] for SATI models, [train.standard] for the
    # baselines (e.g. lambda_stitch = 5 / domain_encoding = true), [finetune.sati] on top for
    # fine-tunes, then the adapter's own [per_adapter.<adapter>] finetune_sati
    sati.update(train.sati if sati["enabled"] else train.standard)
    if base_model(run.variant) == FINETUNE and config.finetune is not None:
        sati.update(config.finetune.sati)
        if (overrides := config.per_adapter.get(run.adapter)) is not None:
            sati.update(overrides.finetune_sati)
    for adaptation, overrides in ABLATION_SETTINGS.items():
        if run.variant == f"sati-wo-{adaptation.replace('_', '-')}":
            sati.update(overrides)
    steps = run_steps(config, run)
    return RunConfig(
        adapter=AdapterSpec(run.adapter, dict(train.options.get(run.adapter, {}))),
        data=DataSpec(dims=config.data.dims),
        training=Training(
            crop=train.crop,
            batch_size=train.batch_size,
            steps=steps,
            seed=training_seed(run),
            log_every=50,
            checkpoint_every=max(1, steps // 6),
            ema=float(train.ema),
        ),
        sati=SATISettings(**sati),
    )


def _device(config: BenchConfig) -> str:
    """The device runs train on (``[train] device``, default ``auto``)."""
    return config.train.device


RUN_NAME = re.compile(r"(?P<variant>.+)-seed(?P<seed>\d+)")


def found_runs(root: Path, *, finished: bool = False) -> list[Run]:
    """Every run folder under ``root/runs``, sorted by path: in any state (trained, partial),
    or with ``finished`` only those whose saved step reached their own target."""
    runs = []
    for folder in sorted((root / "runs").glob("*/*")):
        if match := RUN_NAME.fullmatch(folder.name):
            runs.append(Run(folder.parent.name, match["variant"], int(match["seed"])))
    return [r for r in runs if _finished(run_dir(root, r))] if finished else runs


def _finished(folder: Path) -> bool:
    from satikit.checkpoint import read_config

    path = folder / "config.json"
    if not path.is_file():
        return False
    training = read_config(path).training
    return training.step == training.steps


def _matches(path: Path, config: BenchConfig, run: Run) -> bool:
    """Whether the run in ``path`` (its config.json, read without writing) was trained
    towards the steps, with the SATI settings and the adapter options ``config`` asks for.
    Options are compared resolved (defaults included), so dropping an override from a config
    is a change too; SATI fields and options a run predates take their defaults."""
    from satikit.checkpoint import read_config
    from satikit.plugins import get_adapter_info

    planned = train_config(config, run)
    saved = read_config(path)
    options = saved.adapter.options
    resolved = get_adapter_info(run.adapter).resolve_options(planned.adapter.options)
    return (
        saved.training.steps == planned.training.steps
        and saved.training.ema == planned.training.ema
        and saved.sati == planned.sati.resolve(planned.crop)
        and all(options.get(k, v) == v for k, v in resolved.items())
    )


# beside a fine-tune's config.json: which weights it started from
PARENT = "parent.json"


def _weights_id(folder: Path) -> str | None:
    """The SHA-256 of a run's ``model.safetensors`` as its config.json records it."""
    from satikit.checkpoint import read_config

    path = folder / "config.json"
    return read_config(path).files.get("model.safetensors") if path.is_file() else None


def _parent_changed(root: Path, run: Run, config: BenchConfig, home: Path | None) -> bool:
    """Whether the run a fine-tune started from (in ``home``, default ``root``) holds other
    weights now than when the fine-tune began (e.g. it was retrained for more steps). Runs
    from before this record was kept count as unchanged."""
    source = init_run(config, run)
    record = run_dir(root, run) / PARENT
    if source is None or not record.is_file():
        return False
    return json.loads(record.read_text())["model"] != _weights_id(run_dir(home or root, source))


def is_trained(
    root: Path,
    run: Run,
    steps: int,
    config: BenchConfig | None = None,
    home: Path | None = None,
) -> bool:
    """Whether ``run`` finished ``steps`` steps (and, given ``config``, with its settings and,
    for a fine-tune, from its parent's current weights; see :func:`is_stale`)."""
    from satikit.checkpoint import read_config

    path = run_dir(root, run) / "config.json"
    if not path.is_file() or (config is not None and is_stale(root, run, config, home)):
        return False
    return read_config(path).training.step == steps


def is_stale(root: Path, run: Run, config: BenchConfig, home: Path | None = None) -> bool:
    """A cached run trained with other settings than the config now asks for, or a fine-tune
    of weights its parent run (in ``home``, default ``root``) no longer holds."""
    path = run_dir(root, run) / "config.json"
    if not path.is_file():
        return False
    return not _matches(path, config, run) or _parent_changed(root, run, config, home)


def snapshots(root: Path, run: Run) -> list[tuple[int, Path]]:
    """``(step, folder)`` of the weights a run kept at its checkpoints (config
    ``snapshots = true``), oldest first; each folder loads with
    :func:`satikit.checkpoint.load_adapter`."""
    folder = run_dir(root, run) / SNAPSHOTS
    found = [(int(p.name.removeprefix("step-")), p) for p in folder.glob("step-*") if p.is_dir()]
    return sorted(found)


def train_one(
    config: BenchConfig, run: Run, root: str, data_dir: str, home: str | None = None
) -> str:
    """Train (or resume) one run in this process; returns its run directory. A fine-tune
    starts from the standard run of its seed in ``home`` (default: ``root``), which must be
    trained already."""
    import torch

    from satikit.checkpoint import load_init
    from satikit.io.atomic import write_json
    from satikit.training import SATITrainer, Snapshots

    # a run's kept weights (config ``snapshots = true``), for learning curves
    callbacks = [Snapshots(SNAPSHOTS)] if config.snapshots else []
    torch.set_num_threads(config.threads_per_job)
    target = run_dir(Path(root), run)
    parents = Path(home or root)
    if is_trained(Path(root), run, run_steps(config, run), config, parents):
        return str(target)
    if is_stale(Path(root), run, config, parents):
        shutil.rmtree(target)  # trained with other settings, or from other weights
    if (target / "config.json").is_file():
        trainer = SATITrainer.resume(target, callbacks=callbacks)
    else:
        data = Path(data_dir) / "train"
        trainer = SATITrainer.from_dirs(
            train_config(config, run),
            [data / "x"],
            [data / "y"],
            target,
            device=_device(config),
            callbacks=callbacks,
        )
        if (source := init_run(config, run)) is not None:
            parent = run_dir(parents, source)
            load_init(trainer.adapter, parent)
            target.mkdir(parents=True, exist_ok=True)
            write_json(target / PARENT, {"run": source.name, "model": _weights_id(parent)})
    trainer.fit(progress=False)
    trainer.save()
    return str(target)


def train_all(
    config: BenchConfig,
    root: Path,
    data_dir: Path,
    runs: Iterable[Run],
    echo: Callable[[str], None] = print,
    home: Path | None = None,
) -> None:
    """Train the missing runs, ``jobs`` at a time in separate processes: first those trained
    from scratch, then the fine-tunes of standard runs (from ``home``, default ``root``)."""
    todo = [r for r in runs if not is_trained(root, r, run_steps(config, r), config, home)]
    for run in todo:
        if is_stale(root, run, config, home):
            echo(f"  {run.name}: cached with other settings or from other weights, retraining")
    if not todo:
        return
    echo(f"training {len(todo)} run(s), {config.jobs} at a time")
    phases = [
        [r for r in todo if init_run(config, r) is None],
        [r for r in todo if init_run(config, r) is not None],
    ]
    with ProcessPoolExecutor(max_workers=config.jobs, mp_context=get_context("spawn")) as pool:
        for phase in phases:
            futures = {
                pool.submit(train_one, config, r, str(root), str(data_dir), str(home or root)): r
                for r in phase
            }
            for future, run in futures.items():
                future.result()
                echo(f"  trained {run.name}")
