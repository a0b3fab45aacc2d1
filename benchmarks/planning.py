"""Planning the quality benchmark (paper IV-A, Table 1): its TOML configs, the runs they ask
for (adapters x models x seeds, ablations), the cache folders keyed by what the runs depend on,
and the circle datasets (test and validation splits, paper II)."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
CONFIGS = ROOT / "configs"
CACHE = ROOT / "cache"


@dataclass(frozen=True)
class Run:
    """One model of the benchmark: a trained run, or (``weights="ema"``) the average of its
    generator's weights that the run keeps beside it (``[train] ema``)."""

    adapter: str
    variant: str  # "standard", "sati", "sati-finetune", "control" or "sati-wo-<adaptation>"
    seed: int
    weights: str = ""  # "": the run's last weights; "ema": their moving average

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {self.weights!r}")

    @property
    def model(self) -> str:
        """The model's name in tables: the variant, ``+ema`` for averaged weights."""
        return self.variant + (f"+{self.weights}" if self.weights else "")

    @property
    def name(self) -> str:
        return f"{self.adapter}/{self.model}/seed{self.seed}"

    @property
    def trained(self) -> Run:
        """The run that trains this model (itself, or the run whose average it is)."""
        return Run(self.adapter, self.variant, self.seed)


WEIGHTS = ("", "ema")


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
VALIDATION_KEYS = ("validation_seed", "n_validation", "validation_source")

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
# the same fine-tune without the SATI terms: as many more steps on the same data, so that a
# SATI fine-tune's gain over its parent is not just the extra training
CONTROL = "control"
MODELS = ("standard", "sati", FINETUNE, CONTROL)
# models trained without SATI, whose tilings are the training-free baselines
TRAINING_FREE = ("standard", CONTROL)

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
    for model in (FINETUNE, CONTROL):
        if model in plan["models"] and "finetune" not in config:
            raise ValueError(f"model {model!r} needs a [finetune] table (its steps)")
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


def scored_models(config: dict[str, Any], runs: Iterable[Run]) -> list[Run]:
    """The models to score of trained ``runs``: each run, and with ``[train] ema`` its
    averaged weights too."""
    ema = float(config["train"].get("ema", 0.0)) > 0
    return [
        m for r in runs for m in ([r, Run(r.adapter, r.variant, r.seed, "ema")] if ema else [r])
    ]


def methods_for(run: Run) -> list[str]:
    """Inference methods evaluated on a run's model."""
    if run.variant in TRAINING_FREE:
        return ["none", "simple", "weighted", "weighted-gaussian"]
    if run.variant == "sati":
        return ["sati", "sati-wo-stitching-strategy", "none"]
    if run.variant == FINETUNE:
        return ["sati", "none"]
    return [run.variant]


# -- data ----------------------------------------------------------------------------------
def ensure_dataset(config: dict[str, Any], root: Path) -> Path:
    """Generate the config's dataset once (cached): ``[data] kind`` ``circles`` (default; a
    ``preset`` and its overrides), ``textured`` (:func:`satikit.data.make_textured_dataset`'s
    parameters) or ``restain`` (:func:`satikit.data.make_restain_dataset`'s)."""
    from satikit.data import make_circle_dataset
    from satikit.data.datasets import make_restain_dataset, make_textured_dataset

    data = {k: v for k, v in config["data"].items() if k not in VALIDATION_KEYS}
    out = root / "data"
    if (out / "manifest.json").is_file():
        return out
    kind, seed = data.pop("kind", "circles"), int(data.pop("seed", 0))
    if kind != "circles":
        data.pop("dims", None)  # 2D images; ``dims`` tells the runs
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
def run_steps(config: dict[str, Any], run: Run) -> int:
    """Training steps of a run: ``[finetune] steps`` for fine-tunes and their controls, else
    ``[train] steps``."""
    if run.variant in (FINETUNE, CONTROL):
        return int(config["finetune"]["steps"])
    return int(config["train"]["steps"])


def init_run(config: dict[str, Any], run: Run) -> Run | None:
    """The standard run whose weights a run starts from (fine-tunes, their controls, and every
    run of a :mod:`benchmarks.variants` config with ``[train] init = "standard"``), or None:
    trained from scratch."""
    if run.variant in (FINETUNE, CONTROL) or config["train"].get("init") == "standard":
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
    return folder / EMA_DIR if run.weights == "ema" else folder


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
    if data.get("kind") == "restain":  # one test part per source image: another image's
        del changed["n_test"]
        changed.update(source=data.get("validation_source", "retina"), box=None)
    return ensure_dataset({**config, "data": changed}, home / f"validation-{seed}")


def split_data(config: dict[str, Any], home: Path, data_dir: Path, split: str) -> Path:
    """The dataset whose ``test/`` images a split scores: the test set, or the validation set."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return data_dir if split == "test" else validation_data(config, home)
