"""Planning the quality benchmark (paper IV-A, Table 1): its TOML configs, the runs they ask
for (adapters x models x seeds, ablations), the cache folders keyed by what the runs depend on,
and the circle datasets (test and validation splits, paper II)."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.bench_config import VALIDATION_KEYS, BenchConfig, ConfigError, DataConfig

ROOT = Path(__file__).resolve().parent
CONFIGS = ROOT / "configs"
CACHE = ROOT / "cache"


@dataclass(frozen=True)
class Run:
    """One model of the benchmark: a trained run, (``weights="ema"``) the average of its
    generator's weights that the run keeps beside it (``[train] ema``), or (``weights="best"``)
    the snapshot of its weights chosen on the validation images (``snapshots = true``,
    :mod:`benchmarks.snapshot_choice`)."""

    adapter: str
    variant: str  # "standard", "sati", "sati-finetune", "control" or "sati-wo-<adaptation>"
    seed: int
    weights: str = ""  # "": the run's last weights; "ema": their moving average; "best"

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {self.weights!r}")

    @property
    def model(self) -> str:
        """The model's name in tables: the variant, ``+ema`` for averaged weights, ``+best``
        for the chosen snapshot."""
        return self.variant + (f"+{self.weights}" if self.weights else "")

    @property
    def name(self) -> str:
        return f"{self.adapter}/{self.model}/seed{self.seed}"

    @property
    def trained(self) -> Run:
        """The run that trains this model (itself, or the run whose average it is)."""
        return Run(self.adapter, self.variant, self.seed)


WEIGHTS = ("", "ema", "best")
# a run's kept weights (config ``snapshots = true``): runs/<adapter>/<variant>-seed<N>/snapshots/
SNAPSHOTS = "snapshots"
# the record of the snapshot chosen on the validation images, in that folder
CHOSEN_SNAPSHOT = "chosen.json"


def load_config(name_or_path: str) -> BenchConfig:
    """Read and check ``benchmarks/configs/<name>.toml`` (or a path to a TOML file).

    Raises:
        ValueError: no such config, or (:class:`~benchmarks.bench_config.ConfigError`) an
            unknown key or a value of the wrong type, naming the file and the key.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIGS / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.toml")))
        raise ValueError(f"no benchmark config {name_or_path!r}; known: {known}")
    with path.open("rb") as handle:
        try:
            table = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: {error}") from None
    return BenchConfig.from_dict(table, source=str(path))


def config_hash(config: dict[str, Any], *sections: str) -> str:
    """Short hash of the config (or of some of its sections): a changed config never reuses
    stale cached results."""
    part = {k: config.get(k) for k in sections} if sections else config
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:10]


# [train] tables every run checks against its own saved config instead (see `_matches`)
PER_RUN_TRAIN = ("options", "sati", "standard")


def workdir(config: BenchConfig, cache: Path = CACHE) -> Path:
    """Cache folder of the data and trained runs: keyed by what they depend on only, so
    changing inference settings re-evaluates without retraining. Adapter options
    (``[train.options.<adapter>]``) and SATI overrides (``[train.sati]``, ``[train.standard]``)
    are left out of the key: each run checks its own (see :func:`is_stale`), so adding an
    adapter keeps the other adapters' runs and a SATI override keeps the standard models."""
    train = {k: v for k, v in config.train.as_dict().items() if k not in PER_RUN_TRAIN}
    data = {k: v for k, v in config.data.as_dict().items() if k not in VALIDATION_KEYS}
    key = config_hash({"data": data, "train": train})
    return cache / f"{config.name}-{key}"


# a SATI model fine-tuned from the standard model of its seed (config table [finetune])
FINETUNE = "sati-finetune"
# the same fine-tune without the SATI terms: as many more steps on the same data, so that a
# SATI fine-tune's gain over its parent is not just the extra training
CONTROL = "control"
MODELS = ("standard", "sati", FINETUNE, CONTROL)
# models trained without SATI, whose tilings are the training-free baselines
TRAINING_FREE = ("standard", CONTROL)
# a further fine-tune (or control) of the same parent, ``<model>-<k>`` with k >= 2: trained
# with seed + REPEAT_SEED_STRIDE * (k - 1) (other crops, other SATI samples), so that each
# lineage can keep the best of k SATI fine-tunes on the validation images while its
# training-free side gets as many controls to choose from
REPEAT = re.compile(rf"(?P<model>{FINETUNE}|{CONTROL})-(?P<k>[2-9]|[1-9][0-9]+)")
REPEAT_SEED_STRIDE = 1000


def base_model(variant: str) -> str:
    """The model a (possibly repeated) variant is a copy of: ``control-2`` -> ``control``."""
    match = REPEAT.fullmatch(variant)
    return match["model"] if match else variant


def repeat_index(variant: str) -> int:
    """1 for a model's first run, k for its repeat ``<model>-<k>``."""
    match = REPEAT.fullmatch(variant)
    return int(match["k"]) if match else 1


def training_free(variant: str) -> bool:
    """Whether a model is trained without SATI (standard, controls and their repeats)."""
    return base_model(variant) in TRAINING_FREE


def training_seed(run: Run) -> int:
    """The seed a run trains with: its lineage's, offset for a repeated fine-tune."""
    return run.seed + REPEAT_SEED_STRIDE * (repeat_index(run.variant) - 1)


PLAN_KEYS = ("models", "seeds", "ablation_seeds", "ablations")


def adapter_plan(config: BenchConfig, adapter: str) -> dict[str, list]:
    """``models`` / ``seeds`` / ``ablation_seeds`` / ``ablations`` for one adapter: the
    top-level values, overridden by the config's ``[per_adapter.<adapter>]`` table (e.g. no
    ablations for a slower adapter). ``models`` defaults to the standard and the SATI model,
    plus the SATI fine-tune when the config has a ``[finetune]`` table."""
    overrides = config.per_adapter.get(adapter)
    models = ("standard", "sati") + ((FINETUNE,) if config.finetune is not None else ())
    plan = {
        "models": config.models if config.models is not None else models,
        "seeds": config.seeds,
        "ablation_seeds": config.ablation_seeds,
        "ablations": config.ablations,
    }
    if overrides is not None:
        plan |= {k: getattr(overrides, k) for k in PLAN_KEYS if getattr(overrides, k) is not None}
    plan = {k: list(v) for k, v in plan.items()}
    if unknown := {m for m in plan["models"] if base_model(m) not in MODELS}:
        raise ValueError(
            f"unknown model(s) {sorted(unknown)}; known: {', '.join(MODELS)}, and repeats "
            f"{FINETUNE}-<k> / {CONTROL}-<k> (k >= 2) of the fine-tunes"
        )
    for model in plan["models"]:
        if base_model(model) in (FINETUNE, CONTROL) and config.finetune is None:
            raise ValueError(f"model {model!r} needs a [finetune] table (its steps)")
    repeats = [m for m in plan["models"] if repeat_index(m) > 1]
    if repeats and (outside := [s for s in plan["seeds"] if not 0 <= s < REPEAT_SEED_STRIDE]):
        raise ValueError(
            f"seeds {outside} of {adapter}: repeated fine-tunes ({', '.join(repeats)}) train with "
            f"the lineage's seed + {REPEAT_SEED_STRIDE} per repeat, so lineage seeds must lie in "
            f"0..{REPEAT_SEED_STRIDE - 1} (two runs would share a seed)"
        )
    return plan


def select_adapters(config: BenchConfig, adapters: Iterable[str] | None) -> list[str]:
    """The config's adapters, or the given subset of them (in the config's order)."""
    if not adapters:
        return list(config.adapters)
    wanted = list(adapters)
    missing = [a for a in wanted if a not in config.adapters]
    if missing:
        raise ValueError(
            f"adapter(s) {', '.join(missing)} not in config {config.name!r}; "
            f"it lists: {', '.join(config.adapters)}"
        )
    return [a for a in config.adapters if a in wanted]


def plan_runs(config: BenchConfig, adapters: Iterable[str] | None = None) -> list[Run]:
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


def scored_models(config: BenchConfig, runs: Iterable[Run]) -> list[Run]:
    """The models to score of trained ``runs``: each run, and with ``[train] ema`` its
    averaged weights too."""
    ema = config.train.ema > 0
    return [
        m for r in runs for m in ([r, Run(r.adapter, r.variant, r.seed, "ema")] if ema else [r])
    ]


def methods_for(run: Run) -> list[str]:
    """Inference methods evaluated on a run's model."""
    if training_free(run.variant):
        return ["none", "simple", "weighted", "weighted-gaussian"]
    if run.variant == "sati":
        return ["sati", "sati-wo-stitching-strategy", "none"]
    if base_model(run.variant) == FINETUNE:
        return ["sati", "none"]
    return [run.variant]


# -- data ----------------------------------------------------------------------------------
def ensure_dataset(config: BenchConfig, root: Path) -> Path:
    """Generate the config's dataset once (cached): ``[data] kind`` ``circles`` (default; a
    ``preset`` and its overrides), ``textured`` (:func:`satikit.data.make_textured_dataset`'s
    parameters) or ``restain`` (:func:`satikit.data.make_restain_dataset`'s)."""
    from satikit.data import make_circle_dataset
    from satikit.data.datasets import make_restain_dataset, make_textured_dataset

    out = root / "data"
    if (out / "manifest.json").is_file():
        return out
    kind, seed, data = config.data.kind, config.data.seed, config.data.generator_options()
    if kind == "textured":
        make_textured_dataset(out, seed=seed, force=True, progress=True, **data)
    elif kind == "restain":
        make_restain_dataset(out, seed=seed, force=True, progress=True, **data)
    elif kind == "circles":
        preset = data.pop("preset", "small")
        make_circle_dataset(out, preset, seed=seed, force=True, progress=True, **data)
    else:
        raise ValueError(f"[data] kind must be circles, textured or restain, got {kind!r}")
    return out


# -- training ------------------------------------------------------------------------------
def run_steps(config: BenchConfig, run: Run) -> int:
    """Training steps of a run: ``[finetune] steps`` for fine-tunes and their controls, else
    ``[train] steps``; ``[per_adapter.<adapter>]``'s ``finetune_steps`` / ``steps`` replace
    them for that adapter's runs."""
    overrides = config.per_adapter.get(run.adapter)
    if base_model(run.variant) in (FINETUNE, CONTROL):
        if config.finetune is None:
            raise ValueError(f"model {run.variant!r} needs a [finetune] table (its steps)")
        if overrides is not None and overrides.finetune_steps is not None:
            return overrides.finetune_steps
        return config.finetune.steps
    if overrides is not None and overrides.steps is not None:
        return overrides.steps
    return config.train.steps


def init_run(config: BenchConfig, run: Run) -> Run | None:
    """The standard run whose weights a run starts from (fine-tunes, their controls, and every
    run of a :mod:`benchmarks.variants` config with ``[train] init = "standard"``), or None:
    trained from scratch."""
    if base_model(run.variant) in (FINETUNE, CONTROL) or config.train.init == "standard":
        return Run(run.adapter, "standard", run.seed)
    return None


def runs_root(home: Path, variant: str | None = None) -> Path:
    """Where a config's runs live: ``home`` itself, or ``home/variants/<label>`` for the
    :mod:`benchmarks.variants` run labelled ``variant``."""
    return home if variant is None else home / "variants" / variant


def run_dir(root: Path, run: Run) -> Path:
    """A model's run folder (an averaged model's: the sub-folder its run writes it to)."""
    from satikit.training.ema import EMA_DIR

    folder = root / "runs" / run.adapter / f"{run.variant}-seed{run.seed}"
    if run.weights == "best":
        return chosen_snapshot(folder)
    return folder / EMA_DIR if run.weights == "ema" else folder


def scored_run(root: Path, run: Run) -> Run:
    """The model whose scores ``run`` shares: a ``+best`` model whose chosen snapshot holds the
    run's last weights is the run itself (scored once, cached under it), any other ``run``
    is its own."""
    if run.weights == "best" and same_weights(run_dir(root, run), run_dir(root, run.trained)):
        return run.trained
    return run


def same_weights(a: Path, b: Path) -> bool:
    """Whether two run folders' weights hold equal tensors (the files themselves may differ:
    a snapshot is written apart from the run's last checkpoint)."""
    from safetensors.torch import load_file

    from satikit.checkpoint.files import WEIGHTS_NAME

    first, second = load_file(a / WEIGHTS_NAME), load_file(b / WEIGHTS_NAME)
    return first.keys() == second.keys() and all(
        first[k].dtype == second[k].dtype
        and first[k].shape == second[k].shape
        and bool((first[k] == second[k]).all())
        for k in first
    )


def chosen_snapshot(folder: Path) -> Path:
    """The snapshot folder recorded as chosen for the run in ``folder``.

    Raises:
        FileNotFoundError: none was chosen yet (:func:`benchmarks.snapshot_choice.choose`).
    """
    import json

    record = folder / SNAPSHOTS / CHOSEN_SNAPSHOT
    if not record.is_file():
        raise FileNotFoundError(
            f"no snapshot of {folder} was chosen yet ({record} is missing): the frontier chooses "
            "one on the validation images when [frontier] best is set"
        )
    return folder / SNAPSHOTS / json.loads(record.read_text())["snapshot"]


SPLITS = ("test", "validation")


def validation_data(config: BenchConfig, home: Path, seed: int | None = None) -> Path:
    """A second dataset with the config's parameters but another seed (``[data]
    validation_seed``, or ``seed``) and ``n_validation`` test images (default: as many as the
    test set), generated once under ``home``: the images every modelling choice is made on."""
    data = config.data
    seed = data.validation_seed if seed is None else seed
    if seed == data.seed:
        raise ValueError(f"validation seed {seed} is the seed of the test set; pick another")
    changed: DataConfig
    folder = f"validation-{seed}"
    if data.kind == "restain":  # the bottom half of another image, or of a part of the slide
        box = None if data.validation_box is None else tuple(data.validation_box)
        params = {**data.params, "source": data.validation_source, "box": box}
        changed = replace(data, seed=seed, n_images=1, params=params)
        folder += f"-{data.validation_source}" + "".join(f"-{b}" for b in box or ())
    else:
        n_test = next(n for n in (data.n_validation, data.n_test, 8) if n is not None)
        changed = replace(data, seed=seed, n_images=1, n_test=n_test)
    return ensure_dataset(replace(config, data=changed), home / folder)


def split_data(config: BenchConfig, home: Path, data_dir: Path, split: str) -> Path:
    """The dataset whose ``test/`` images a split scores: the test set, or the validation set."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return data_dir if split == "test" else validation_data(config, home)
