"""Copy the median-seed standard and SATI models of a quality run into ``satikit/pretrained``.

With ``--frontier RESULT.json`` (a :mod:`benchmarks.frontier` report that compared seed
lineages) it ships one whole lineage instead: the median lineage's standard model, its control
and its SATI fine-tune, each with the weights (last or averaged) and the method its validation
rows chose recorded as the run's default (:func:`ship_lineage`).

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
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from benchmarks import planning, scoring
from benchmarks.bench_config import BenchConfig, InferenceConfig
from benchmarks.common import git_commit
from satikit.checkpoint import CONFIG_NAME, WEIGHTS_NAME, RunConfig, read_config

PRETRAINED = Path(__file__).resolve().parent.parent / "satikit" / "pretrained"


def shipped_name(name: str, adapter: str, config: BenchConfig) -> str:
    """The folder of a ``[ship]`` name for ``adapter``: the name itself for the config's first
    adapter, else the adapter inserted before the last part (``large-objects-sati`` ->
    ``large-objects-timm-sati``)."""
    if adapter == config.adapters[0]:
        return name
    head, _, kind = name.rpartition("-")
    return f"{head}-{adapter}-{kind}" if head else f"{adapter}-{name}"


def shipped_models(config: BenchConfig, adapter: str) -> dict[str, tuple[str, str, str]]:
    """``kind -> (folder name, model variant, method scoring it)`` from ``[ship]``."""
    ship = config.ship
    return {
        "standard": (
            shipped_name(ship.standard, adapter, config),
            "standard",
            ship.standard_method,
        ),
        "sati": (shipped_name(ship.sati, adapter, config), ship.sati_model, ship.sati_method),
    }


def median_seed(rows: list[dict], variant: str, method: str) -> int:
    """The seed whose error is the median (the lower middle one for an even count)."""
    errors = sorted(
        (r["error"], r["seed"]) for r in rows if r["model"] == variant and r["method"] == method
    )
    if not errors:
        raise ValueError(f"no {variant} + {method} rows to choose from")
    return errors[(len(errors) - 1) // 2][1]


def shipped_config(run_config: RunConfig) -> RunConfig:
    """The run's config without what only held on the training machine: the training data's
    absolute paths and the checksums of the resume state, which is not shipped."""
    files = {k: v for k, v in run_config.files.items() if k == WEIGHTS_NAME}
    data = replace(run_config.data, x=None, y=None)
    return replace(run_config, data=data, files=files)


def ship(
    config_name: str,
    adapter: str = "cyclegan",
    target: Path = PRETRAINED,
    seeds: list[int] | None = None,
) -> list[Path]:
    from benchmarks.methods import parse_method

    config = planning.load_config(config_name)
    root = planning.workdir(config)
    data_dir = planning.ensure_dataset(config, root)
    seeds = planning.adapter_plan(config, adapter)["seeds"] if seeds is None else seeds
    commit = git_commit()  # before the first copy makes the tree differ from HEAD
    shipped = []
    for name, variant, method in shipped_models(config, adapter).values():
        runs = [planning.Run(adapter, variant, s) for s in seeds]
        rows = [
            row
            for run in runs
            for row in scoring.evaluate_run(config, root, data_dir, run, methods=[method])
        ]
        seed = median_seed(rows, variant, method)
        source = planning.run_dir(root, planning.Run(adapter, variant, seed))
        run_config = shipped_config(read_config(source / CONFIG_NAME))
        spec = parse_method(method, config.inference)
        if spec.strategy != "none":  # the benchmark's tiles, the method's margin
            dims = run_config.data.dims
            inference = replace(
                run_config.run_inference,
                tile=(spec.tile,) * dims,
                overlap=(spec.overlap,) * dims,
                margin=(spec.margin,) * dims,
            )
            run_config = replace(run_config, inference=inference)
        data = config.data
        trained_by = {
            "command": f"python -m benchmarks.frontier --config {config_name}",
            "run": f"{adapter}/{variant}/seed{seed}",
            "why_this_seed": f"the median of the benchmark's {len(runs)} seed(s) {list(seeds)} for "
            f"this model (colour error of {method} on {data.n_test} test images)",
            "data": f"satikit dataset circles --preset {data.preset} --seed {data.seed} "
            f"({data.n_images} images per domain)",
            "satikit_commit": commit,
        }
        shipped.append(_write(target / name, source, run_config, trained_by))
        print(f"{name}: {adapter}/{variant}/seed{seed} ({method})")
    return shipped


def _write(out: Path, source: Path, run_config: RunConfig, trained_by: dict) -> Path:
    """Copy a run's weights to ``out`` beside its config with the ``trained_by`` record."""
    run_config = replace(run_config, extra={**run_config.extra, "trained_by": trained_by})
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / WEIGHTS_NAME, out / WEIGHTS_NAME)
    (out / CONFIG_NAME).write_text(json.dumps(run_config.to_dict(), indent=1) + "\n")
    return out


def median_lineage(comparison: dict, adapter: str) -> dict:
    """The lineage of ``adapter`` whose SATI / training-free ratio is the median (the lower
    middle one for an even count) in a :func:`benchmarks.lineages.compare_lineages` result."""
    lineages = sorted(
        (item for item in comparison["lineages"] if item["adapter"] == adapter and "ratio" in item),
        key=lambda item: (item["ratio"], item["seed"]),
    )
    if not lineages:
        raise ValueError(f"no compared lineage of {adapter!r} in the frontier result")
    return lineages[(len(lineages) - 1) // 2]


def chosen_model(rows: list[dict], variant: str, seed: int, inference: InferenceConfig) -> dict:
    """The row with the lowest (validation) error of one model of a lineage and its repeats
    (``control`` also chooses among ``control-2``, ...), among its tiled methods: SATI
    inference for SATI models, any other tiling for models trained without SATI (no tiling is
    no choice for an image larger than one pass)."""
    from benchmarks.methods import parse_method

    sati = not planning.training_free(variant)
    candidates = [
        r
        for r in rows
        if r["seed"] == seed
        and planning.base_model(r["model"].split("+")[0]) == variant
        and (parse_method(r["method"], inference).strategy == "sati") == sati
        and r["method"] != "none"
    ]
    if not candidates:
        raise ValueError(f"no tiled rows of {variant} seed {seed} to choose from")
    return min(candidates, key=lambda r: (r["error"], r["cost"], r["method"]))


def ship_lineage(
    config_name: str,
    frontier_json: Path,
    adapter: str = "cyclegan",
    target: Path = PRETRAINED,
) -> list[Path]:
    """Ship the median lineage's standard model, control and SATI fine-tune (``[ship]``
    ``standard`` / ``control`` / ``sati`` names), each with its chosen weights and method; a
    config that trains no control ships the other two."""
    from benchmarks.methods import parse_method

    config = planning.load_config(config_name)
    payload = json.loads(Path(frontier_json).read_text())
    lineage = median_lineage(payload["lineages"], adapter)
    seed, inference = lineage["seed"], config.inference
    choice = payload.get("choice_rows") or payload["rows"]
    names = {
        kind: shipped_name(name, adapter, config)
        for kind, name in (
            ("standard", config.ship.standard),
            ("control", config.ship.control),
            ("sati", config.ship.sati),
        )
    }
    root = planning.workdir(config)
    planned = planning.adapter_plan(config, adapter)["models"]
    commit = git_commit()  # before the first copy makes the tree differ from HEAD
    shipped = []
    for kind, variant in (
        ("standard", "standard"),
        ("control", planning.CONTROL),
        ("sati", planning.FINETUNE),
    ):
        if variant not in planned:
            continue
        row = chosen_model(choice, variant, seed, inference)
        chosen, _, weights = row["model"].partition("+")
        run = planning.Run(adapter, chosen, seed, weights)
        source = planning.run_dir(root, run)
        settings = parse_method(row["method"], inference).settings()
        run_config = shipped_config(read_config(source / CONFIG_NAME))
        dims = run_config.data.dims
        recorded = replace(
            settings,
            tile=(settings.tile,) * dims,
            overlap=(settings.overlap,) * dims,
            margin=(settings.margin,) * dims if settings.strategy == "sati" else None,
            batch_size=1,
        )
        trained_by = {
            "command": payload["command"],
            "run": run.name,
            "method": row["method"],
            "why_this_lineage": f"the median SATI / training-free ratio of the "
            f"{adapter} lineages ({lineage['ratio']:.2f}, seed {seed})",
            "why_this_method": f"the lowest {row['split']} error of this model's tiled methods "
            f"({100 * row['error']:.2f} %)",
            "satikit_commit": commit,
        }
        run_config = replace(run_config, inference=recorded)
        shipped.append(_write(target / names[kind], source, run_config, trained_by))
        print(f"{names[kind]}: {run.name} ({row['method']})")
    return shipped


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu-small")
    parser.add_argument("--adapter", default="cyclegan")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to choose from")
    parser.add_argument(
        "--frontier", type=Path, help="a frontier result (JSON) with lineages: ship one lineage"
    )
    args = parser.parse_args(argv)
    if args.frontier is not None:
        ship_lineage(args.config, args.frontier, args.adapter)
    else:
        ship(args.config, args.adapter, seeds=args.seeds)


if __name__ == "__main__":
    main()
