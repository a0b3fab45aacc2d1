"""Normalisation-aware tiling (TIN / KIN) on circles whose density varies across the image.

Per-tile instance-norm statistics differ where the image content does; thumbnail (TIN) and
kernelized (KIN) statistics share them between tiles. This benchmark takes a quality config's
trained standard models (their training data has uniform density), translates the test images
of the ``density-gradient`` preset (circle density falling from 1.8x to 0.2x the mean down the
image) with each base method x ``tile`` / ``thumbnail`` / ``kernel`` statistics and reports the
colour error, the seam score (:func:`satikit.metrics.seam_score`: 1 = tile borders invisible)
and the cost (the statistics pass included). Writes
``results/<config>/<date>-<commit>-norm-seams.{json,md}``::

    python -m benchmarks.norm_seams --config cpu-small
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import planning, scoring, training_runs
from benchmarks.bench_config import BenchConfig, DataConfig
from benchmarks.methods import parse_method

__all__ = ["NORMS", "density_data", "run_norm_seams"]

# per-tile statistics, TIN (1/4-scale thumbnail), KIN (3 x 3 tiles), and TIN at full
# resolution: every tile normalised with the whole image's statistics, the most sharing can do
NORMS = ("tile", "thumbnail", "kernel", "thumbnail:1.0")
BASES = ("simple@0", "gaussian@25")


def density_data(config: BenchConfig, home: Path, seed: int, n_test: int) -> Path:
    """Test images of the ``density-gradient`` preset (``seed``, ``n_test`` images), made once
    under ``home``."""
    table = {"preset": "density-gradient", "dims": 2, "seed": seed, "n_images": 1, "n_test": n_test}
    data = DataConfig.from_dict(table, "data", "density_data")
    return planning.ensure_dataset(replace(config, data=data), home / f"density-gradient-{seed}")


def method_name(base: str, norm: str) -> str:
    """``base`` with the norm suffix of :mod:`benchmarks.methods` (none for ``tile``)."""
    return base if norm == "tile" else f"{base}/{norm}"


def run_norm_seams(
    config_name: str,
    *,
    bases: Sequence[str] = BASES,
    seed: int = 4242,
    n_test: int = 8,
    adapter: str = "cyclegan",
    seeds: Sequence[int] | None = None,
    cache: Path = planning.CACHE,
    echo: Callable[[str], None] = print,
    write: bool = True,
) -> dict[str, Any]:
    """Score the config's standard models (trained first if missing) on density-gradient
    images with every base method x normalisation; returns the payload written as JSON."""
    from benchmarks.common import git_commit, machine, write_results

    config = planning.load_config(config_name)
    methods = [method_name(b, n) for b in bases for n in NORMS]
    for method in methods:
        parse_method(method, config.inference)  # refuse a bad name before any work
    home = planning.workdir(config, cache)
    home.mkdir(parents=True, exist_ok=True)
    train_data = planning.ensure_dataset(config, home)
    chosen = planning.adapter_plan(config, adapter)["seeds"] if seeds is None else seeds
    runs = [planning.Run(adapter, "standard", int(s)) for s in chosen]
    training_runs.train_all(config, home, train_data, runs, echo)
    data = density_data(config, home, seed, n_test)
    rows = []
    for run in runs:
        rows += scoring.evaluate_run(
            config, home, train_data, run, methods=methods, split=data.parent.name, images=data
        )
        echo(f"  scored {run.name}")
    summary = summarise(rows, bases)
    command = " ".join(
        [f"python -m benchmarks.norm_seams --config {config_name}"]
        + (["--bases " + " ".join(bases)] if tuple(bases) != BASES else [])
        + ([f"--seed {seed}"] if seed != 4242 else [])
        + ([f"--seeds {' '.join(str(r.seed) for r in runs)}"] if seeds is not None else [])
    )
    payload = {
        "config": config.name,
        "commit": git_commit(),
        "machine": machine(),
        "command": command,
        "images": f"satikit dataset circles --preset density-gradient --seed {seed} ({n_test} test images)",
        "rows": rows,
        "summary": summary,
    }
    table = markdown_table(summary)
    if write:
        header = (
            f"# TIN / KIN on density-varying circles, `{config.name}` standard models\n\n"
            f"`{command}` on {payload['machine']}, commit {payload['commit']}; "
            f"{payload['images']}. Medians over seeds {[r.seed for r in runs]}. Seam score: mean "
            "jump across tile borders over the mean jump between other neighbouring pixels "
            "(1: the borders are invisible); ratio: seam score over plain per-tile statistics "
            "at the same tiles; cost: forward-pass pixels per image pixel, the statistics pass "
            "included.\n\n"
        )
        json_path, _ = write_results(config.name, payload, header + table, "-norm-seams", 1)
        echo(f"wrote {json_path.with_suffix('')}.*")
    echo(table)
    return payload


def summarise(rows: list[dict[str, Any]], bases: Sequence[str]) -> list[dict[str, Any]]:
    """Median over seeds per method, with the seam score relative to ``tile`` statistics."""
    summary = []
    for base in bases:
        plain = None
        for norm in NORMS:
            items = [r for r in rows if r["method"] == method_name(base, norm)]
            if not items:
                continue
            score = statistics.median(r["seam_score"] for r in items)
            plain = score if norm == "tile" else plain
            summary.append(
                {
                    "base": base,
                    "norm": norm,
                    "n_seeds": len(items),
                    "error": statistics.median(100 * r["error"] for r in items),
                    "errors": [100 * r["error"] for r in items],
                    "seam_score": score,
                    "ratio_to_tile": score / plain if plain else None,
                    "cost": items[0]["cost"],
                }
            )
    return summary


def markdown_table(summary: list[dict[str, Any]]) -> str:
    lines = [
        "| tiles | statistics | cost (px / px) | median error % | seam score | ratio to per-tile | per seed % |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for s in summary:
        ratio = "-" if s["ratio_to_tile"] is None else f"{s['ratio_to_tile']:.2f}"
        seeds = " / ".join(f"{e:.2f}" for e in s["errors"])
        lines.append(
            f"| {s['base']} | {s['norm']} | {s['cost']:.2f} | {s['error']:.2f} "
            f"| {s['seam_score']:.3f} | {ratio} | {seeds} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu-small")
    parser.add_argument("--bases", nargs="+", default=list(BASES), help="tiled methods")
    parser.add_argument("--seed", type=int, default=4242, help="seed of the density images")
    parser.add_argument("--n-test", type=int, default=8)
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="standard models [default: the config's]"
    )
    args = parser.parse_args(argv)
    run_norm_seams(
        args.config, bases=args.bases, seed=args.seed, n_test=args.n_test, seeds=args.seeds
    )


if __name__ == "__main__":
    main()
