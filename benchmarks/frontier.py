"""Error versus cost: which tiling leaves the fewest seam errors at the compute a user can afford.

For every model of a quality config (standard, SATI, SATI fine-tunes; or the models of a
:mod:`benchmarks.variants` label) and every method its ``[frontier]`` table lists for that
kind of model, scores the colour error on all objects, on objects crossing a cut line of the
method's own grid ("seam") and on the others ("interior"), against the cost: forward-pass
pixels per image pixel (1 for one pass over the whole image) and tiles per image. Medians over
the seeds. Writes ``results/<config>/<date>-<commit>-frontier[-<split>].{json,md,png}``::

    python -m benchmarks.frontier --config large-objects
    python -m benchmarks.frontier --config large-objects --split validation --variant LABEL
    python -m benchmarks.frontier --config cpu-small --seeds 3 4 --include EARLIER.json

Trains what is missing first (like the quality benchmark; evaluations are cached per method).
``--include`` adds the lineages of an earlier report of the same config (same settings but for
the seed lists) that this run does not score, e.g. new lineages scored beside committed ones.
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import lineages, planning, scoring, training_runs
from benchmarks.bench_config import BenchConfig, InferenceConfig
from benchmarks.methods import parse_method

__all__ = ["frontier_methods", "included_reports", "run_frontier", "summarise"]

# [frontier] defaults: simple without overlap, both windows at 12.5 / 25 / 50 / 75 % overlap,
# SATI at 12.5 / 25 % (T > 2 O leaves no more), with and without a margin
DEFAULT_METHODS = {
    "standard": ["none", "simple@0"]
    + [f"{w}@{p}" for w in ("gaussian", "pyramid") for p in ("12.5", "25", "50", "75")],
    "sati": ["none", "sati@12.5", "sati@25", "sati@25+m8"],
}


def frontier_methods(config: BenchConfig, run: planning.Run) -> list[str]:
    """Methods of the frontier for one model: the config's ``[frontier]`` list named after the
    model (e.g. ``control``), else its ``standard`` list for models trained without SATI, its
    ``sati`` list for every SATI model; for averaged weights only those of them in
    ``[frontier] averaged``, if the config has it, for a chosen snapshot those in
    ``[frontier] best``."""
    kind = "standard" if planning.training_free(run.variant) else "sati"
    lists = config.frontier.lists
    named = planning.base_model(run.variant)  # a repeat takes its model's list
    methods = list(lists.get(named, lists.get(kind, DEFAULT_METHODS[kind])))
    kept = {"ema": config.frontier.averaged, "best": config.frontier.best}.get(run.weights)
    if kept is not None:
        methods = [m for m in methods if m in kept]
    return methods


def _without_seeds(settings: Any) -> Any:
    if isinstance(settings, dict):
        return {k: _without_seeds(v) for k, v in settings.items() if k != "seeds"}
    return settings


def included_reports(
    paths: Sequence[Path], config: BenchConfig, split: str, choose_on: str | None
) -> list[dict[str, Any]]:
    """Earlier frontier reports whose lineages join this one: each must be of the same config
    with the same settings except the seed lists, scored on ``split`` (and on ``choose_on``,
    which chooses each lineage's rows), and of the models in the plan (not a variant's)."""
    import json

    wanted = _without_seeds(config.as_dict())
    reports = []
    for path in paths:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise ValueError(
                f"--include {path}: not a readable frontier report ({error})"
            ) from None
        if not isinstance(report, dict) or "rows" not in report or "settings" not in report:
            raise ValueError(f"--include {path}: not a frontier report (no rows or settings)")
        checks = [
            (
                report.get("config") != config.name,
                f"of config {report.get('config')!r}, not {config.name!r}",
            ),
            (report.get("split") != split, f"on the {report.get('split')} split, not {split}"),
            (bool(report.get("variant")), "of a variant's models"),
            (
                _without_seeds(report["settings"]) != wanted,
                "with other settings (beyond the seed lists)",
            ),
            (
                choose_on not in (None, split) and not report.get("choice_rows"),
                f"without rows on the {choose_on} split that choose each lineage",
            ),
        ]
        problem = next((message for failed, message in checks if failed), None)
        if problem:
            raise ValueError(f"--include {path}: a report {problem}")
        reports.append({**report, "path": str(path)})
    return reports


def joined_lineages(
    rows: list[dict[str, Any]], reports: list[dict[str, Any]]
) -> list[set[tuple[str, int]]]:
    """The (adapter, seed) lineages each report adds to ``rows``: those neither ``rows`` nor
    an earlier report holds (a lineage comes whole from one source)."""
    held = {(r["adapter"], r["seed"]) for r in rows}
    added = []
    for report in reports:
        new = {(r["adapter"], r["seed"]) for r in report["rows"]} - held
        added.append(new)
        held |= new
    return added


def chosen_snapshots(
    config: BenchConfig,
    root: Path,
    home: Path,
    data_dir: Path,
    runs: Sequence[planning.Run],
    echo: Callable[[str], None],
    cached_only: bool = False,
) -> list[planning.Run]:
    """The ``+best`` models of ``runs`` when ``[frontier] best`` is set: each run's snapshot
    chosen on the validation images (:func:`benchmarks.snapshot_choice.choose`; with
    ``cached_only`` only the choices made already). A run that kept no snapshots (trained
    before ``snapshots = true``) has none, and says so."""
    if config.frontier.best is None:
        return []
    from benchmarks import snapshot_choice

    models = []
    for run in runs:
        best = planning.Run(run.adapter, run.variant, run.seed, "best")
        record = planning.run_dir(root, run) / planning.SNAPSHOTS / planning.CHOSEN_SNAPSHOT
        if not training_runs.snapshots(root, run):
            echo(f"  {run.name} kept no snapshots: no {best.model} model")
            continue
        if cached_only and not record.is_file():
            continue
        if not cached_only:
            snapshot_choice.choose(config, root, home, data_dir, run, echo)
        models.append(best)
    return models


def strategy_family(method: str, inference: InferenceConfig) -> str:
    """The line a method belongs to in the plot: ``none``, ``simple``, ``gaussian``,
    ``pyramid``, ``sati`` or ``sati+margin``, with ``/thumbnail`` or ``/kernel`` for TIN / KIN."""
    spec = parse_method(method, inference)
    family = spec.strategy
    if spec.strategy == "weighted":
        family = spec.window or "weighted"
    elif spec.strategy == "sati" and spec.margin:
        family = "sati+margin"
    return family if spec.norm == "tile" else f"{family}/{spec.norm}"


def summarise(rows: list[dict[str, Any]], inference: InferenceConfig) -> list[dict[str, Any]]:
    """Median over seeds per (adapter, model, method), with the method's cost, sorted by model
    then cost."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["adapter"], row["model"], row["method"]), []).append(row)
    summary = []
    for (adapter, model, method), items in groups.items():

        def median(key: str, scale: float = 100.0, items=items) -> float | None:
            values = [r[key] for r in items if r.get(key) is not None]
            return statistics.median(scale * v for v in values) if values else None

        summary.append(
            {
                "adapter": adapter,
                "model": model,
                "method": method,
                "family": strategy_family(method, inference),
                "n_seeds": len(items),
                "seeds": [r["seed"] for r in items],
                "errors": [100 * r["error"] for r in items],
                "median": median("error"),
                "seam": median("error_seam"),
                "interior": median("error_interior"),
                "seam_share": (median("n_seam_objects", 1.0) or 0)
                / max(median("n_objects", 1.0) or 0, 1),
                "cost": items[0]["cost"],
                "seam_score": median("seam_score", 1.0),
                "tile_deviation": median("tile_deviation", 1.0),  # datasets with a known truth
                "tiles": items[0]["tiles"],
                "n_objects": int(median("n_objects", 1.0) or 0),
            }
        )
    return sorted(summary, key=lambda s: (s["adapter"], s["model"], s["cost"], s["method"]))


def markdown_table(summary: list[dict[str, Any]]) -> str:
    """Circles: error, seam and interior objects; data with a known truth (rows with a tile
    deviation): mean absolute error in grey levels and the tile deviation instead."""

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    truth = any(s.get("tile_deviation") is not None for s in summary)
    middle = "MAE (0-255) | tile deviation (0-255)" if truth else "seam objects % | interior %"
    lines = [
        f"| adapter | model | method | tiles / image | cost (px / px) | median error % | {middle} "
        "| seam score | per seed % |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summary:
        seeds = " / ".join(f"{e:.2f}" for e in s["errors"])
        cells = (2.55 * s["median"], s["tile_deviation"]) if truth else (s["seam"], s["interior"])
        lines.append(
            f"| {s['adapter']} | {s['model']} | {s['method']} | {s['tiles']:.0f} | {s['cost']:.2f} "
            f"| {s['median']:.2f} | {number(cells[0])} | {number(cells[1])} "
            f"| {number(s.get('seam_score'))} | {seeds} |"
        )
    return "\n".join(lines) + "\n"


def plot(summary: list[dict[str, Any]], path: Path, title: str) -> None:
    """Median error against cost, one line per (model, strategy family), log error axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.common import save_figure

    lines: dict[str, list[tuple[float, float, str]]] = {}
    for s in summary:
        label = f"{s['adapter']} {s['model']}: {s['family']}"
        lines.setdefault(label, []).append((s["cost"], max(s["median"], 1e-2), s["method"]))
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for label, points in sorted(lines.items()):
        points.sort()
        marker = "*" if "none" in label else "o"
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cost: forward-pass pixels per image pixel (log)")
    ax.set_ylabel("median colour error, % of objects (log)")
    save_figure(fig, ax, path, title)


def selection_suffix(
    adapters: Sequence[str] | None,
    models: Sequence[str] | None,
    seeds: Sequence[int] | None,
    methods: Sequence[str] | None,
) -> str:
    """The part of a report's file name naming a selection of the config's plan (adapters,
    models, seeds, methods; empty for the whole plan), so that a report of part of the plan
    never takes the place of the whole plan's report."""
    parts = [*(adapters or []), *(models or [])]
    if seeds is not None:
        parts.append("seeds" + "-".join(str(s) for s in seeds))
    if methods:
        parts.append(f"{len(methods)}methods")
    return "".join(f"-{re.sub(r'[^A-Za-z0-9.-]+', '_', p)}" for p in parts)


def named_seeds(
    seeds: Sequence[int] | None, joined: Sequence[set[tuple[str, int]]]
) -> list[int] | None:
    """The seeds a report's file name gives: those of ``--seeds`` and of the lineages the
    included reports add (None: the whole plan was scored)."""
    if seeds is None:
        return None
    return sorted(set(seeds).union(*({seed for _, seed in added} for added in joined)))


def run_frontier(
    config_name: str,
    *,
    adapters: Sequence[str] | None = None,
    variant: str | None = None,
    split: str = "test",
    models: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    methods: Sequence[str] | None = None,
    cache: Path = planning.CACHE,
    echo: Callable[[str], None] = print,
    write: bool = True,
    train_only: bool = False,
    choose_on: str | None = "validation",
    cached_only: bool = False,
    include: Sequence[Path] = (),
) -> dict[str, Any]:
    """Train what is missing, score every model's frontier methods (``methods``: only these of
    them), write the report (``train_only``: stop after training).

    Where a lineage has both SATI and training-free models, the report compares them per
    lineage (:mod:`benchmarks.lineages`), each side's row chosen on the ``choose_on`` split
    (scored too; None: on the reported split itself). ``cached_only``: train and score
    nothing, report what is scored already (marked partial). ``include``: earlier reports
    whose lineages this run does not score join the report (:func:`included_reports`)."""
    from benchmarks.common import git_commit, machine, require_plotting, write_results

    config = planning.load_config(config_name)
    chosen = planning.select_adapters(config, adapters)
    listed = {
        m
        for kind in ("standard", "sati")
        for m in frontier_methods(config, planning.Run("", kind, 0))
    }
    for method in listed:
        parse_method(method, config.inference)  # refuse a bad name before any work
    if unknown := sorted(set(methods or []) - listed):
        raise ValueError(f"--method {unknown}: not in the config's [frontier] lists")
    if include and variant is not None:
        raise ValueError("--include joins lineages of the plan's models, not of a --variant")
    reports = included_reports(include, config, split, choose_on)
    if write:
        require_plotting()
    home = planning.workdir(config, cache)
    home.mkdir(parents=True, exist_ok=True)
    data_dir = planning.ensure_dataset(config, home)
    root = planning.runs_root(home, variant)
    if variant is None:
        runs = [
            r
            for r in planning.plan_runs(config, chosen)
            if (not models or r.variant in models) and (seeds is None or r.seed in seeds)
        ]
        if not cached_only:
            training_runs.train_all(config, root, data_dir, runs, echo)
        if train_only:
            return {"runs": [r.name for r in runs]}
    else:  # a variant's trained models (benchmarks.variants trains them)
        runs = [r for r in training_runs.found_runs(root, finished=True) if r.adapter in chosen]
        if not runs:
            raise ValueError(f"no finished runs of variant {variant!r} under {root}")
    splits = [split] + ([choose_on] if choose_on not in (None, split) else [])
    scored: dict[str, list[dict[str, Any]]] = {name: [] for name in splits}
    for run in planning.scored_models(config, runs) + chosen_snapshots(
        config, root, home, data_dir, runs, echo, cached_only
    ):
        chosen_methods = [m for m in frontier_methods(config, run) if not methods or m in methods]
        for name in splits:
            scored[name] += scoring.evaluate_run(
                config,
                root,
                data_dir,
                run,
                methods=chosen_methods,
                split=name,
                home=home,
                cached_only=cached_only,
            )
            echo(f"  scored {run.name} ({len(chosen_methods)} methods, {name})")
    joined = joined_lineages(scored[split], reports)
    for report, added in zip(reports, joined, strict=True):
        for name in scored:
            source = report["rows"] if name == split else report["choice_rows"]
            scored[name] += [r for r in source if (r["adapter"], r["seed"]) in added]
    rows = scored[split]
    comparison = lineages.compare_lineages(
        rows, config.inference, scored[choose_on] if choose_on in scored else None
    )
    if variant is not None:
        rows = [{**row, "model": f"{variant}:{row['model']}"} for row in rows]
    summary = summarise(rows, config.inference)
    command = " ".join(
        [f"python -m benchmarks.frontier --config {config_name}"]
        + [f"--adapter {a}" for a in adapters or []]
        + ([f"--variant {variant}"] if variant else [])
        + ([f"--split {split}"] if split != "test" else [])
        + [f"--model {m}" for m in models or []]
        + ([f"--seeds {' '.join(str(s) for s in seeds)}"] if seeds is not None else [])
        + [f"--method {m}" for m in methods or []]
        + (["--cached-only"] if cached_only else [])
        + [f"--include {r['path']}" for r in reports]
    )
    payload = {
        "config": config.name,
        "split": split,
        "variant": variant,
        "commit": git_commit(),
        "machine": machine(),
        "command": command,
        "partial": cached_only or any(r.get("partial") for r in reports),
        "included": [
            {
                "path": r["path"],
                "commit": r.get("commit"),
                "command": r.get("command"),
                "machine": r.get("machine"),
                "lineages": [{"adapter": a, "seed": s} for a, s in sorted(added)],
            }
            for r, added in zip(reports, joined, strict=True)
        ],
        "settings": config.as_dict(),
        "rows": rows,
        "summary": summary,
        "lineages": comparison,
        "choice_rows": scored[choose_on] if choose_on in scored and choose_on != split else [],
    }
    table = markdown_table(summary)
    if comparison["summary"]:
        table += (
            "\n## SATI against the best training-free tiling, per seed lineage\n\nEach side's "
            f"row (model and method) chosen on the {choose_on or split} images, errors on the "
            f"{split} images; training-free: any tiling of the standard or control model up to "
            f"{lineages.COST_CAP_METHOD}'s cost.\n\n" + lineages.lineage_table(comparison)
        )
    if write:
        images = "test" if split == "test" else "validation"
        header = (
            f"# Error versus cost, `{config.name}` ({images} images)\n\n"
            + (
                "**Partial**: the evaluations scored when this report was written; rows and "
                "lineages without them are missing.\n\n"
                if payload["partial"]
                else ""
            )
            + f"`{command}` on "
            f"{payload['machine']}, commit {payload['commit']}\n\n"
            + "".join(
                "Lineages "
                + ", ".join(f"{x['adapter']} seed {x['seed']}" for x in item["lineages"])
                + f" from `{item['path']}` (commit {item['commit']}, `{item['command']}`, on "
                f"{item['machine']}).\n\n"
                for item in payload["included"]
            )
            + "Cost: forward-pass pixels "
            "per image pixel (tiles x tile area / image area; 1 = one pass over the whole "
            "image). "
            + (
                "Errors: median over seeds of the mean absolute error against the true Y, "
                "in % of 255 (and in grey levels); tile deviation: the spread over tiles of each "
                "tile's mean absolute error"
                if any(r.get("tile_deviation") is not None for r in summary)
                else "Errors: median over seeds of the paper's colour metric; seam objects "
                "cross a cut line of the method's own grid (the middle of each overlap)"
            )
            + "; seam score: mean jump across tile borders over the mean jump between other "
            "neighbouring pixels (1: borders invisible).\n\n"
        )
        suffix = "-frontier" + (f"-{variant}" if variant else "")
        suffix += selection_suffix(adapters, models, named_seeds(seeds, joined), methods)
        suffix += "" if split == "test" else f"-{split}"
        json_path, _ = write_results(config.name, payload, header + table, suffix, 1)
        title = f"{config.name} ({payload['commit']})"
        plot(summary, json_path.with_suffix(".png"), title)
        if comparison["summary"]:
            picture = json_path.with_name(json_path.stem + "-lineages.png")
            lineages.plot_lineages(rows, config.inference, picture, title)
        echo(f"wrote {json_path.with_suffix('')}.*")
    echo(table)
    return payload


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="large-objects")
    parser.add_argument("--adapter", dest="adapters", action="append", help="repeatable")
    parser.add_argument(
        "--variant", help="score the finished runs of this benchmarks.variants label"
    )
    parser.add_argument("--split", choices=planning.SPLITS, default="test")
    parser.add_argument(
        "--model", dest="models", action="append", help="only these models of the plan (repeatable)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="only these seeds of the plan")
    parser.add_argument(
        "--method",
        dest="methods",
        action="append",
        help="only these of the config's frontier methods (repeatable)",
    )
    parser.add_argument(
        "--choose-on",
        choices=planning.SPLITS,
        default="validation",
        help="the split whose errors choose each lineage's SATI and training-free rows",
    )
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="train and score nothing: report the evaluations cached so far (a partial report)",
    )
    parser.add_argument(
        "--train-only", action="store_true", help="train the missing runs, score nothing"
    )
    parser.add_argument(
        "--include",
        action="append",
        type=Path,
        default=[],
        help="an earlier report (JSON) of the same config whose lineages this run does not "
        "score joins the report (repeatable)",
    )
    args = parser.parse_args(argv)
    run_frontier(
        args.config,
        adapters=args.adapters,
        variant=args.variant,
        split=args.split,
        models=args.models,
        seeds=args.seeds,
        methods=args.methods,
        train_only=args.train_only,
        choose_on=args.choose_on,
        cached_only=args.cached_only,
        include=args.include,
    )


if __name__ == "__main__":
    main()
