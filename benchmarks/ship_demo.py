"""Copy the median-seed standard and SATI models of a quality run into ``satikit/pretrained``.

``satikit demo`` uses them by default. The model of each kind whose colour error (its own
method) is the median over the benchmark's seeds is shipped, with a ``trained_by`` record in
its config.json. What ships comes from the config's ``[ship]`` table (default: the pair
``demo-standard`` / ``demo-sati``, the standard model scored with ``weighted``, the ``sati``
model with ``sati``); ``sati_method`` may name a method of :mod:`benchmarks.methods` with a
margin, which is then recorded as the shipped model's inference default::

    python -m benchmarks.frontier --config cpu-small && python -m benchmarks.ship_demo --config cpu-small
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from benchmarks import quality
from benchmarks.common import git_commit

PRETRAINED = Path(__file__).resolve().parent.parent / "satikit" / "pretrained"
SHIP_DEFAULTS = {
    "standard": "demo-standard",
    "standard_method": "weighted",
    "sati": "demo-sati",
    "sati_model": "sati",
    "sati_method": "sati",
}


def shipped_models(config: dict) -> dict[str, tuple[str, str, str]]:
    """``kind -> (folder name, model variant, method scoring it)`` from ``[ship]``."""
    ship = {**SHIP_DEFAULTS, **config.get("ship", {})}
    return {
        "standard": (ship["standard"], "standard", ship["standard_method"]),
        "sati": (ship["sati"], ship["sati_model"], ship["sati_method"]),
    }


def median_seed(rows: list[dict], variant: str, method: str) -> int:
    """The seed whose error is the median (the lower middle one for an even count)."""
    errors = sorted(
        (r["error"], r["seed"]) for r in rows if r["model"] == variant and r["method"] == method
    )
    if not errors:
        raise ValueError(f"no {variant} + {method} rows to choose from")
    return errors[(len(errors) - 1) // 2][1]


def shipped_config(run_config: dict) -> dict:
    """The run's config without what only held on the training machine: the training data's
    absolute paths and the checksums of the resume state, which is not shipped."""
    config = json.loads(json.dumps(run_config))
    for key in ("x", "y"):
        config.get("data", {}).pop(key, None)
    files = config.get("checkpoint", {}).get("files")
    if files is not None:
        config["checkpoint"]["files"] = {"model.safetensors": files["model.safetensors"]}
    return config


def ship(
    config_name: str,
    adapter: str = "cyclegan",
    target: Path = PRETRAINED,
    seeds: list[int] | None = None,
) -> list[Path]:
    from benchmarks.methods import parse_method

    config = quality.load_config(config_name)
    root = quality.workdir(config)
    data_dir = quality.ensure_dataset(config, root)
    seeds = quality.adapter_plan(config, adapter)["seeds"] if seeds is None else seeds
    shipped = []
    for name, variant, method in shipped_models(config).values():
        runs = [quality.Run(adapter, variant, s) for s in seeds]
        rows = [
            row
            for run in runs
            for row in quality.evaluate_run(config, root, data_dir, run, methods=[method])
        ]
        seed = median_seed(rows, variant, method)
        source = quality.run_dir(root, quality.Run(adapter, variant, seed))
        run_config = shipped_config(json.loads((source / "config.json").read_text()))
        spec = parse_method(method, config["inference"])
        if spec.strategy != "none":  # the benchmark's tiles, the method's margin
            dims = len(run_config["inference"]["tile"])
            run_config["inference"].update(
                tile=[spec.tile] * dims, overlap=[spec.overlap] * dims, margin=[spec.margin] * dims
            )
        data = config["data"]
        run_config["trained_by"] = {
            "command": f"python -m benchmarks.frontier --config {config_name}",
            "run": f"{adapter}/{variant}/seed{seed}",
            "why_this_seed": f"the median of the benchmark's {len(runs)} seed(s) {list(seeds)} for "
            f"this model (colour error of {method} on {data['n_test']} test images)",
            "data": f"satikit dataset circles --preset {data['preset']} --seed {data['seed']} "
            f"({data['n_images']} images per domain)",
            "satikit_commit": git_commit(),
        }
        out = target / name
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / "model.safetensors", out / "model.safetensors")
        (out / "config.json").write_text(json.dumps(run_config, indent=1) + "\n")
        shipped.append(out)
        print(f"{name}: {adapter}/{variant}/seed{seed} ({method})")
    return shipped


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu-small")
    parser.add_argument("--adapter", default="cyclegan")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to choose from")
    args = parser.parse_args()
    ship(args.config, args.adapter, seeds=args.seeds)
