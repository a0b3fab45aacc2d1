"""Quality benchmark: tiling strategies x adapters on the circle dataset (paper IV-A, Table 1).

For each adapter in a config, trains the standard host GAN and the SATI version (and the SATI
ablations) with the same budget and seeds, then translates the held-out test images with every
strategy and scores them with the paper's colour-consistency metric. Everything is cached under
``benchmarks/cache/<config>-<hash>/`` (dataset, every trained run, every evaluation), so an
interrupted run resumes where it stopped. Run it as ``satikit bench quality --config cpu-small``
or ``python -m benchmarks.quality --config cpu-small``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import statistics
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.methods import parse_method

ROOT = Path(__file__).resolve().parent
CONFIGS = ROOT / "configs"
CACHE = ROOT / "cache"

# Paper Table 1 (median / mean error in %, 10 runs) beside which we print ours.
PAPER_MEDIAN = {
    ("standard", "none"): 0.39,
    ("standard", "simple"): 6.59,
    ("standard", "weighted"): 3.53,
    ("sati", "sati"): 0.52,
    ("sati-wo-overlap-sampling", "sati-wo-overlap-sampling"): 1.32,
    ("sati-wo-domain-encoding", "sati-wo-domain-encoding"): 0.83,
    ("sati-wo-loss-ramping", "sati-wo-loss-ramping"): 0.54,
    ("sati-wo-pixel-weighting", "sati-wo-pixel-weighting"): 0.70,
    ("sati", "sati-wo-stitching-strategy"): 0.96,
}

# a run's kept weights (config ``snapshots = true``): runs/<adapter>/<variant>-seed<N>/snapshots/
SNAPSHOTS = "snapshots"

# bump when evaluate_run's output changes, so cached evaluations are redone
EVALUATION_VERSION = 5  # 5: last tiles shifted back to the border, not reflect-padded

# model variant -> SATISettings overrides
ABLATION_SETTINGS = {
    "overlap_sampling": {"overlap_sampling": False},
    "domain_encoding": {"domain_encoding": False},
    "loss_ramping": {"loss_ramping": False},
    "pixel_weighting": {"pixel_weighting": False},
}


@dataclass(frozen=True)
class Run:
    """One trained model of the benchmark."""

    adapter: str
    variant: str  # "standard", "sati" or "sati-wo-<adaptation>"
    seed: int

    @property
    def name(self) -> str:
        return f"{self.adapter}/{self.variant}/seed{self.seed}"


def load_config(name_or_path: str) -> dict[str, Any]:
    """Read ``benchmarks/configs/<name>.toml`` (or a path to a TOML file)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIGS / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.toml")))
        raise ValueError(f"no benchmark config {name_or_path!r}; known: {known}")
    with path.open("rb") as handle:
        return tomllib.load(handle)


def config_hash(config: dict[str, Any], *sections: str) -> str:
    """Short hash of the config (or of some of its sections): a changed config never reuses
    stale cached results."""
    part = {k: config.get(k) for k in sections} if sections else config
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:10]


# [data] keys of the validation set: they do not change the training data
VALIDATION_KEYS = ("validation_seed", "n_validation")

# [train] tables every run checks against its own saved config instead (see `_matches`)
PER_RUN_TRAIN = ("options", "sati", "standard")


def workdir(config: dict[str, Any], cache: Path = CACHE) -> Path:
    """Cache folder of the data and trained runs: keyed by what they depend on only, so
    changing inference settings re-evaluates without retraining. Adapter options
    (``[train.options.<adapter>]``) and SATI overrides (``[train.sati]``, ``[train.standard]``)
    are left out of the key: each run checks its own (see :func:`is_stale`), so adding an
    adapter keeps the other adapters' runs and a SATI override keeps the standard models."""
    train = {k: v for k, v in config["train"].items() if k not in PER_RUN_TRAIN}
    data = {k: v for k, v in config["data"].items() if k not in VALIDATION_KEYS}
    key = config_hash({**config, "data": data, "train": train}, "data", "train")
    return cache / f"{config['name']}-{key}"


# a SATI model fine-tuned from the standard model of its seed (config table [finetune])
FINETUNE = "sati-finetune"
MODELS = ("standard", "sati", FINETUNE)

PLAN_KEYS = ("models", "seeds", "ablation_seeds", "ablations")


def adapter_plan(config: dict[str, Any], adapter: str) -> dict[str, list]:
    """``models`` / ``seeds`` / ``ablation_seeds`` / ``ablations`` for one adapter: the
    top-level values, overridden by the config's ``[per_adapter.<adapter>]`` table (e.g. no
    ablations for a slower adapter). ``models`` defaults to the standard and the SATI model,
    plus the SATI fine-tune when the config has a ``[finetune]`` table."""
    overrides = config.get("per_adapter", {}).get(adapter, {})
    if unknown := set(overrides) - set(PLAN_KEYS):
        raise ValueError(
            f"[per_adapter.{adapter}] has unknown key(s) {sorted(unknown)}; "
            f"known: {', '.join(PLAN_KEYS)}"
        )
    models = ["standard", "sati"] + ([FINETUNE] if "finetune" in config else [])
    defaults = {"models": models, "seeds": config["seeds"], "ablation_seeds": [], "ablations": []}
    plan = {k: overrides.get(k, config.get(k, defaults[k])) for k in PLAN_KEYS}
    if unknown := set(plan["models"]) - set(MODELS):
        raise ValueError(f"unknown model(s) {sorted(unknown)}; known: {', '.join(MODELS)}")
    if FINETUNE in plan["models"] and "finetune" not in config:
        raise ValueError(f"model {FINETUNE!r} needs a [finetune] table (its steps)")
    return plan


def select_adapters(config: dict[str, Any], adapters: Iterable[str] | None) -> list[str]:
    """The config's adapters, or the given subset of them (in the config's order)."""
    if not adapters:
        return list(config["adapters"])
    wanted = list(adapters)
    missing = [a for a in wanted if a not in config["adapters"]]
    if missing:
        raise ValueError(
            f"adapter(s) {', '.join(missing)} not in config {config['name']!r}; "
            f"it lists: {', '.join(config['adapters'])}"
        )
    return [a for a in config["adapters"] if a in wanted]


def plan_runs(config: dict[str, Any], adapters: Iterable[str] | None = None) -> list[Run]:
    """The plan's models (standard, SATI, SATI fine-tunes of each standard model) for every
    seed, ablations for the ablation seeds, per adapter (all of the config's, or
    ``adapters``)."""
    runs = []
    for adapter in select_adapters(config, adapters):
        plan = adapter_plan(config, adapter)
        for seed in plan["seeds"]:
            runs += [Run(adapter, model, seed) for model in plan["models"]]
        for seed in plan["ablation_seeds"]:
            runs += [
                Run(adapter, f"sati-wo-{a.replace('_', '-')}", seed) for a in plan["ablations"]
            ]
    return runs


def methods_for(run: Run) -> list[str]:
    """Inference methods evaluated on a run's model."""
    if run.variant == "standard":
        return ["none", "simple", "weighted", "weighted-gaussian"]
    if run.variant == "sati":
        return ["sati", "sati-wo-stitching-strategy", "none"]
    if run.variant == FINETUNE:
        return ["sati", "none"]
    return [run.variant]


# -- data ----------------------------------------------------------------------------------
def ensure_dataset(config: dict[str, Any], root: Path) -> Path:
    """Generate the config's circle dataset once (cached)."""
    from satikit.data import make_circle_dataset

    data = {k: v for k, v in config["data"].items() if k not in VALIDATION_KEYS}
    out = root / "data"
    if (out / "manifest.json").is_file():
        return out
    preset, seed = data.pop("preset", "small"), int(data.pop("seed", 0))
    make_circle_dataset(out, preset, seed=seed, force=True, progress=True, **data)
    return out


# -- training ------------------------------------------------------------------------------
def run_steps(config: dict[str, Any], run: Run) -> int:
    """Training steps of a run: ``[finetune] steps`` for fine-tunes, else ``[train] steps``."""
    if run.variant == FINETUNE:
        return int(config["finetune"]["steps"])
    return int(config["train"]["steps"])


def init_run(config: dict[str, Any], run: Run) -> Run | None:
    """The standard run whose weights a run starts from (fine-tunes, and every run of a
    :mod:`benchmarks.variants` config with ``[train] init = "standard"``, a standard one too:
    the control that trains on without SATI), or None: trained from scratch."""
    if run.variant == FINETUNE or config["train"].get("init") == "standard":
        return Run(run.adapter, "standard", run.seed)
    return None


def _train_config(config: dict[str, Any], run: Run):
    """The :class:`satikit.checkpoint.RunConfig` a run trains with."""
    from satikit.checkpoint import AdapterSpec, DataSpec, RunConfig, SATISettings
    from satikit.checkpoint import TrainingSettings as Training

    train = config["train"]
    sati: dict[str, Any] = {"enabled": run.variant != "standard"}
    # optional SATISettings overrides: [train.sati] for SATI models, [train.standard] for the
    # baselines (e.g. lambda_stitch = 5 / domain_encoding = true), [finetune.sati] on top for
    # fine-tunes
    sati.update(train.get("sati" if sati["enabled"] else "standard", {}))
    if run.variant == FINETUNE:
        sati.update(config["finetune"].get("sati", {}))
    for adaptation, overrides in ABLATION_SETTINGS.items():
        if run.variant == f"sati-wo-{adaptation.replace('_', '-')}":
            sati.update(overrides)
    steps = run_steps(config, run)
    return RunConfig(
        adapter=AdapterSpec(run.adapter, dict(train.get("options", {}).get(run.adapter, {}))),
        data=DataSpec(dims=int(config["data"].get("dims", 2))),
        training=Training(
            crop=int(train["crop"]),
            batch_size=int(train["batch_size"]),
            steps=steps,
            seed=int(run.seed),
            log_every=50,
            checkpoint_every=max(1, steps // 6),
        ),
        sati=SATISettings(**sati),
    )


def _device(config: dict[str, Any]) -> str:
    """The device runs train on (``[train] device``, default ``auto``)."""
    return str(config["train"].get("device", "auto"))


def runs_root(home: Path, variant: str | None = None) -> Path:
    """Where a config's runs live: ``home`` itself, or ``home/variants/<label>`` for the
    :mod:`benchmarks.variants` run labelled ``variant``."""
    return home if variant is None else home / "variants" / variant


def run_dir(root: Path, run: Run) -> Path:
    return root / "runs" / run.adapter / f"{run.variant}-seed{run.seed}"


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


def _matches(path: Path, config: dict[str, Any], run: Run) -> bool:
    """Whether the run in ``path`` (its config.json, read without writing) was trained
    towards the steps, with the SATI settings and the adapter options ``config`` asks for.
    Options are compared resolved (defaults included), so dropping an override from a config
    is a change too; SATI fields and options a run predates take their defaults."""
    from satikit.checkpoint import read_config
    from satikit.plugins import get_adapter_info

    planned = _train_config(config, run)
    saved = read_config(path)
    options = saved.adapter.options
    resolved = get_adapter_info(run.adapter).resolve_options(planned.adapter.options)
    return (
        saved.training.steps == planned.training.steps
        and saved.sati == planned.sati.resolve(planned.crop)
        and all(options.get(k, v) == v for k, v in resolved.items())
    )


def is_trained(root: Path, run: Run, steps: int, config: dict[str, Any] | None = None) -> bool:
    """Whether ``run`` finished ``steps`` steps (and, given ``config``, with its settings)."""
    from satikit.checkpoint import read_config

    path = run_dir(root, run) / "config.json"
    if not path.is_file() or (config is not None and not _matches(path, config, run)):
        return False
    return read_config(path).training.step == steps


def is_stale(root: Path, run: Run, config: dict[str, Any]) -> bool:
    """A cached run trained with other settings than the config now asks for."""
    path = run_dir(root, run) / "config.json"
    return path.is_file() and not _matches(path, config, run)


def snapshots(root: Path, run: Run) -> list[tuple[int, Path]]:
    """``(step, folder)`` of the weights a run kept at its checkpoints (config
    ``snapshots = true``), oldest first; each folder loads with
    :func:`satikit.checkpoint.load_adapter`."""
    folder = run_dir(root, run) / SNAPSHOTS
    found = [(int(p.name.removeprefix("step-")), p) for p in folder.glob("step-*") if p.is_dir()]
    return sorted(found)


def train_one(
    config: dict[str, Any], run: Run, root: str, data_dir: str, home: str | None = None
) -> str:
    """Train (or resume) one run in this process; returns its run directory. A fine-tune
    starts from the standard run of its seed in ``home`` (default: ``root``), which must be
    trained already."""
    import torch

    from satikit.checkpoint import load_init
    from satikit.training import SATITrainer, Snapshots

    # a run's kept weights (config ``snapshots = true``), for learning curves
    callbacks = [Snapshots(SNAPSHOTS)] if config.get("snapshots", False) else []
    torch.set_num_threads(int(config.get("threads_per_job", 1)))
    target = run_dir(Path(root), run)
    if is_trained(Path(root), run, run_steps(config, run), config):
        return str(target)
    if is_stale(Path(root), run, config):
        shutil.rmtree(target)  # trained by an older harness with other settings
    if (target / "config.json").is_file():
        trainer = SATITrainer.resume(target, callbacks=callbacks)
    else:
        data = Path(data_dir) / "train"
        trainer = SATITrainer.from_dirs(
            _train_config(config, run),
            [data / "x"],
            [data / "y"],
            target,
            device=_device(config),
            callbacks=callbacks,
        )
        if (source := init_run(config, run)) is not None:
            load_init(trainer.adapter, run_dir(Path(home or root), source))
    trainer.fit(progress=False)
    trainer.save()
    return str(target)


def train_all(
    config: dict[str, Any],
    root: Path,
    data_dir: Path,
    runs: Iterable[Run],
    echo: Callable[[str], None] = print,
    home: Path | None = None,
) -> None:
    """Train the missing runs, ``jobs`` at a time in separate processes: first those trained
    from scratch, then the fine-tunes of standard runs (from ``home``, default ``root``)."""
    todo = [r for r in runs if not is_trained(root, r, run_steps(config, r), config)]
    for run in todo:
        if is_stale(root, run, config):
            echo(f"  {run.name}: cached with other settings, retraining")
    if not todo:
        return
    echo(f"training {len(todo)} run(s), {config.get('jobs', 1)} at a time")
    phases = [
        [r for r in todo if init_run(config, r) is None],
        [r for r in todo if init_run(config, r) is not None],
    ]
    with ProcessPoolExecutor(
        max_workers=int(config.get("jobs", 1)), mp_context=get_context("spawn")
    ) as pool:
        for phase in phases:
            futures = {
                pool.submit(train_one, config, r, str(root), str(data_dir), str(home or root)): r
                for r in phase
            }
            for future, run in futures.items():
                future.result()
                echo(f"  trained {run.name}")


# -- evaluation ----------------------------------------------------------------------------
def seam_objects(labels: np.ndarray, tile: int, overlap: int, margin: int = 0) -> np.ndarray:
    """Bool per object id (index = id): does the object cross a tile seam of the SATI grid?

    Seams lie in the middle of each overlap (paper III-E), at ``k * (T - O - m) + O // 2``
    (``m``: the SATI ``margin``, beyond the paper; 0 on the paper's grid).
    """
    from scipy import ndimage

    step = tile - overlap - margin
    boxes = ndimage.find_objects(labels)
    crossing = np.zeros(len(boxes) + 1, dtype=bool)
    for index, box in enumerate(boxes, start=1):
        if box is None:
            continue
        for sl, size in zip(box, labels.shape):
            seams = np.arange(step + overlap // 2, size, step)
            if ((seams > sl.start) & (seams < sl.stop)).any():
                crossing[index] = True
                break
    return crossing


def border_objects(labels: np.ndarray, margin: int) -> np.ndarray:
    """Bool per object id (index = id): does the object reach within ``margin`` px of the
    image border? (Separates edge effects of a model from the seams a strategy makes.)"""
    from scipy import ndimage

    boxes = ndimage.find_objects(labels)
    near = np.zeros(len(boxes) + 1, dtype=bool)
    for index, box in enumerate(boxes, start=1):
        if box is not None:
            near[index] = any(
                sl.start < margin or sl.stop > size - margin for sl, size in zip(box, labels.shape)
            )
    return near


def seam_grid(method: str, inference: dict[str, Any]) -> tuple[int, int]:
    """``(overlap, margin)`` of the grid whose seams split a method's circles into "seam" and
    "interior" (:meth:`benchmarks.methods.Method.seam_grid`)."""
    return parse_method(method, inference).seam_grid(inference)


def translate_with(
    adapter, run_config, image: np.ndarray, method: str, inference: dict[str, Any]
) -> np.ndarray:
    """Translate one ``(*spatial, C)`` uint8 X image with ``method`` (a name of
    :mod:`benchmarks.methods`) through :func:`satikit.translate.translate_array`, the library's
    inference path; ``run_config`` is the run's :class:`~satikit.checkpoint.RunConfig`.
    Returns the run's output dtype (uint8 RGB for the circles)."""
    from satikit.translate import translate_array

    settings = parse_method(method, inference).settings(int(inference.get("batch_size", 4)))
    return translate_array(adapter, run_config, image, settings)


SPLITS = ("test", "validation")


def validation_data(config: dict[str, Any], home: Path, seed: int | None = None) -> Path:
    """A second dataset with the config's parameters but another seed (``[data]
    validation_seed``, or ``seed``) and ``n_validation`` test images (default: as many as the
    test set), generated once under ``home``: the images every modelling choice is made on."""
    data = config["data"]
    seed = int(data.get("validation_seed", 777) if seed is None else seed)
    if seed == int(data.get("seed", 0)):
        raise ValueError(f"validation seed {seed} is the seed of the test set; pick another")
    n_test = int(data.get("n_validation", data.get("n_test", 8)))
    changed = {k: v for k, v in data.items() if k not in VALIDATION_KEYS}
    changed.update(seed=seed, n_images=1, n_test=n_test)
    return ensure_dataset({**config, "data": changed}, home / f"validation-{seed}")


def split_data(config: dict[str, Any], home: Path, data_dir: Path, split: str) -> Path:
    """The dataset whose ``test/`` images a split scores: the test set, or the validation set."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return data_dir if split == "test" else validation_data(config, home)


COUNT_KEYS = (
    "n_objects",
    "n_errors",
    "n_seam_objects",
    "n_seam_errors",
    "n_interior_objects",
    "n_interior_errors",
    "n_border_objects",
    "n_border_errors",
)


def score_method(
    adapter, run_config: dict[str, Any], data_dir: Path, method: str, inference: dict[str, Any]
) -> dict[str, Any]:
    """Error counts of one method over every test image of ``data_dir`` (keys
    :data:`COUNT_KEYS`), with its cost (forward-pass pixels per image pixel), tile count and
    mean seam score (:func:`satikit.metrics.seam_score` on the method's own grid; None for
    ``none``)."""
    from satikit.data.io import list_images, read_image
    from satikit.metrics import colour_error, seam_score

    spec = parse_method(method, inference)
    counts = np.zeros(len(COUNT_KEYS), dtype=np.int64)
    tiles = cost = seams = 0.0
    images = list_images(data_dir / "test" / "x")
    for path in images:
        image, labels = read_image(path), read_image(data_dir / "test" / "labels" / path.name)
        on_seam_ids = seam_objects(labels, spec.tile, *spec.seam_grid(inference))
        border = border_objects(labels, int(inference["overlap"]))
        translated = translate_with(adapter, run_config, image, method, inference)
        if (grid := spec.grid(labels.shape)) is not None:
            seams += seam_score(translated, grid, channel_axis=-1) / len(images)
        result = colour_error(translated, labels)
        on_seam, at_border, errors = on_seam_ids[result.ids], border[result.ids], result.errors
        counts += [
            result.n_objects,
            result.n_errors,
            on_seam.sum(),
            (errors & on_seam).sum(),
            (~on_seam).sum(),
            (errors & ~on_seam).sum(),
            at_border.sum(),
            (errors & at_border).sum(),
        ]
        tiles += spec.tiles(labels.shape) / len(images)
        cost += spec.cost(labels.shape) / len(images)
    seam = None if spec.strategy == "none" else seams
    return {
        **dict(zip(COUNT_KEYS, counts.tolist())),
        "tiles": tiles,
        "cost": cost,
        "seam_score": seam,
    }


def evaluate_run(
    config: dict[str, Any],
    root: Path,
    data_dir: Path,
    run: Run,
    *,
    methods: Iterable[str] | None = None,
    split: str = "test",
    home: Path | None = None,
    images: Path | None = None,
) -> list[dict[str, Any]]:
    """Score ``methods`` (default: :func:`methods_for`) of ``run`` on a split's images, one
    cached file per method and split (so a new method or split reuses the others).

    Args:
        home: the config's cache folder, where the validation set lives (default: ``root``).
        images: another dataset whose ``test/`` images to score instead, cached under
            ``split`` as its name (e.g. ``density-gradient-4242``).
    """
    from satikit.atomic import write_json
    from satikit.checkpoint import load_adapter

    if images is None:
        images = split_data(config, home or root, data_dir, split)
    inference = config["inference"]
    loaded: tuple | None = None
    rows = []
    for method in methods or methods_for(run):
        spec = parse_method(method, inference)
        key = config_hash(
            {"method": repr(spec), "evaluation": EVALUATION_VERSION, "data": str(images)}
        )
        safe = method.replace("/", "~")  # a norm suffix is not a folder
        cache = run_dir(root, run) / "evaluations" / split / f"{safe}-{key}.json"
        if cache.is_file():
            counts = json.loads(cache.read_text())
        else:
            loaded = loaded or load_adapter(run_dir(root, run))
            counts = score_method(*loaded, images, method, inference)
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_json(cache, counts)  # atomically: never a truncated cache
        rows.append(_row(run, method, split, counts))
    return rows


def _row(run: Run, method: str, split: str, counts: dict[str, Any]) -> dict[str, Any]:
    def rate(errors: str, objects: str) -> float:
        return counts[errors] / max(counts[objects], 1)

    return {
        "adapter": run.adapter,
        "model": run.variant,
        "method": method,
        "seed": run.seed,
        "split": split,
        "error": rate("n_errors", "n_objects"),
        "error_seam": rate("n_seam_errors", "n_seam_objects"),
        "error_interior": rate("n_interior_errors", "n_interior_objects"),
        "error_border": rate("n_border_errors", "n_border_objects"),
        **counts,
    }


# -- report --------------------------------------------------------------------------------
def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median / mean / std / best over seeds per (adapter, model, method), like Table 1."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["adapter"], row["model"], row["method"]), []).append(row)
    summary = []
    for (adapter, model, method), items in groups.items():
        errors = [100 * r["error"] for r in items]
        summary.append(
            {
                "adapter": adapter,
                "model": model,
                "method": method,
                "n_seeds": len(items),
                "median": statistics.median(errors),
                "mean": statistics.fmean(errors),
                "std": statistics.pstdev(errors),
                "best": min(errors),
                "seam": statistics.median(100 * r["error_seam"] for r in items),
                "interior": statistics.median(100 * r["error_interior"] for r in items),
                "border": statistics.median(100 * r.get("error_border", 0.0) for r in items),
                # Table 1 is CycleGAN's
                "paper_median": PAPER_MEDIAN.get((model, method))
                if adapter == "cyclegan"
                else None,
            }
        )
    return summary


def markdown_table(summary: list[dict[str, Any]]) -> str:
    lines = [
        "| adapter | model | method | seeds | median % | mean % | std | best % | seam circles % | interior % | image-border circles % | paper median % |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        paper = "" if s["paper_median"] is None else f"{s['paper_median']:.2f}"
        lines.append(
            f"| {s['adapter']} | {s['model']} | {s['method']} | {s['n_seeds']} | {s['median']:.2f} | {s['mean']:.2f} "
            f"| {s['std']:.2f} | {s['best']:.2f} | {s['seam']:.2f} | {s['interior']:.2f} "
            f"| {s['border']:.2f} | {paper} |"
        )
    return "\n".join(lines) + "\n"


def box_plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Error per (model, method) over seeds, log scale like the paper's Fig. 7."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[float]] = {}
    for row in rows:
        if row["model"] == "standard":
            label = f"standard + {row['method']}"
        elif row["model"] == row["method"] or row["model"].startswith("sati-wo"):
            label = row["method"]
        else:
            label = f"{row['model']}+{row['method']}"
        groups.setdefault(f"{row['adapter']}: {label}", []).append(max(100 * row["error"], 1e-2))
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(groups)), 4.5))
    ax.boxplot(list(groups.values()), showfliers=True)
    ax.set_xticks(range(1, len(groups) + 1), list(groups), rotation=35, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("error rate, % (log)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def montage(
    config: dict[str, Any], root: Path, data_dir: Path, adapter_name: str, path: Path
) -> None:
    """The same crop across a tile corner for every strategy, side by side (nearest x4)."""
    from PIL import Image, ImageDraw

    from satikit.checkpoint import load_adapter
    from satikit.data.io import list_images, read_image

    inference = config["inference"]
    tile, overlap = int(inference["tile"]), int(inference["overlap"])
    corner = tile - overlap + overlap // 2  # first SATI seam crossing
    half = max(16, tile // 4)
    image = read_image(list_images(data_dir / "test" / "x")[0])
    crop = (slice(corner - half, corner + half), slice(corner - half, corner + half))
    plan = adapter_plan(config, adapter_name)
    seed = plan["seeds"][0]
    panels = [("X input", image[crop])]
    shown = [(m, ["sati"]) for m in plan["models"] if m != "standard"]
    if "standard" in plan["models"]:
        shown.insert(0, ("standard", methods_for(Run(adapter_name, "standard", seed))))
    for variant, methods in shown:
        adapter, run_config = load_adapter(run_dir(root, Run(adapter_name, variant, seed)))
        for method in methods:
            label = f"{variant} + {method}"
            panels.append(
                (label, translate_with(adapter, run_config, image, method, inference)[crop])
            )
    scale, pad = 4, 18
    size = 2 * half * scale
    canvas = Image.new("RGB", (len(panels) * (size + 4), size + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, panel) in enumerate(panels):
        tile_img = Image.fromarray(np.ascontiguousarray(panel)).resize((size, size), Image.NEAREST)
        canvas.paste(tile_img, (i * (size + 4), pad))
        draw.text((i * (size + 4) + 2, 2), label, fill="black")
        # mark the seam lines of the SATI grid (in the middle of the crop)
        x0 = i * (size + 4) + half * scale
        draw.line([(x0, pad), (x0, pad + size)], fill=(255, 255, 0), width=1)
        draw.line(
            [(i * (size + 4), pad + half * scale), (i * (size + 4) + size, pad + half * scale)],
            fill=(255, 255, 0),
            width=1,
        )
    canvas.save(path)


def run_benchmark(
    config_name: str,
    *,
    adapters: Iterable[str] | None = None,
    cache: Path = CACHE,
    echo: Callable[[str], None] = print,
    write: bool = True,
) -> dict[str, Any]:
    """Dataset -> training -> evaluation -> report, resuming from the cache; ``adapters``
    picks some of the config's adapters (the report then names them)."""
    from benchmarks.common import git_commit, machine, require_plotting, write_results

    config = load_config(config_name)
    chosen = select_adapters(config, adapters)
    if write:
        require_plotting()
    runs = plan_runs(config, chosen)
    root = workdir(config, cache)
    root.mkdir(parents=True, exist_ok=True)
    data_dir = ensure_dataset(config, root)
    train_all(config, root, data_dir, runs, echo)
    rows: list[dict[str, Any]] = []
    for run in runs:
        rows += evaluate_run(config, root, data_dir, run)
        echo(f"  evaluated {run.name}")
    summary = summarise(rows)
    payload = {
        "config": config["name"],
        "config_hash": config_hash(config),
        "settings": config,
        "commit": git_commit(),
        "machine": machine(),
        "command": " ".join(
            [f"satikit bench quality --config {config_name}"]
            + [f"--adapter {a}" for a in adapters or []]
        ),
        "adapters": chosen,
        "rows": rows,
        "summary": summary,
    }
    if write:
        seeds = ", ".join(f"{a} {adapter_plan(config, a)['seeds']}" for a in chosen)
        header = f'# Quality benchmark `{config["name"]}`\n\n`{payload["command"]}` on {payload["machine"]}, commit {payload["commit"]}\n\nErrors in % of circles (paper metric, section II); seeds {seeds}; "seam circles" cross a seam of the tile grid the method used (simple: its own; the others: the SATI grid).\n\n'
        suffix = "-" + "-".join(chosen) if adapters else ""
        json_path, _ = write_results(
            config["name"], payload, header + markdown_table(summary), suffix, 1
        )
        stem = json_path.with_suffix("")
        box_plot(rows, Path(f"{stem}-boxplot.png"), f"{config['name']} ({payload['commit']})")
        for adapter in chosen:
            montage(config, root, data_dir, adapter, Path(f"{stem}-montage-{adapter}.png"))
        echo(f"wrote {stem}.*")
    echo(markdown_table(summary))
    return payload


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="satikit quality benchmark")
    parser.add_argument("--config", default="cpu-small")
    parser.add_argument("--adapter", dest="adapters", action="append", help="repeatable")
    args = parser.parse_args()
    run_benchmark(args.config, adapters=args.adapters)
