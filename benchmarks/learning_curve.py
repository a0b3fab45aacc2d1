"""Learning curves of a quality run: error of the kept weights at every checkpoint.

Reads the snapshots that ``satikit bench quality`` keeps when the config says
``snapshots = true`` (the weights at every checkpoint of every standard and SATI model) and
scores each with the paper's metric on the config's first ``--images`` test images: standard
models with ``none`` (their own translation quality), SATI models (ablations too) with ``none``
and ``sati``. ``--variant LABEL`` scores a :mod:`benchmarks.variants` run instead.
It answers "is a model still improving when training stops?", e.g. whether the SATI models'
own error is a matter of training budget. Writes
``results/<config>/<date>-<commit>-learning-curve.{json,md,png}``::

    satikit bench quality --config cpu-small        # trains, keeps snapshots
    python -m benchmarks.learning_curve --config cpu-small --images 4
    python -m benchmarks.variants --config cpu-small --variant sati --steps 4800
    python -m benchmarks.learning_curve --config cpu-small --variant sati-4800steps
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import planning, scoring, training_runs
from benchmarks.bench_config import InferenceConfig


def methods_for(variant: str) -> tuple[str, ...]:
    """Models trained without SATI (standard, control): their own translation (``none``); SATI
    models (fine-tunes and ablations included): ``none`` and ``sati``."""
    return ("none",) if planning.training_free(variant) else ("none", "sati")


def kept_runs(root: Path) -> list[tuple[planning.Run, list[tuple[int, Path]]]]:
    """Every run under ``root/runs`` that kept snapshots, with them (oldest first)."""
    return [
        (run, kept)
        for run in training_runs.found_runs(root)
        if (kept := training_runs.snapshots(root, run))
    ]


def curve_rows(
    root: Path, data_dir: Path, inference: InferenceConfig, n_images: int
) -> list[dict[str, Any]]:
    """One row per (run, snapshot step, method) of the runs under ``root``: ``error`` as a
    fraction, scored on the first ``n_images`` test images of ``data_dir``.

    Raises:
        ValueError: no run under ``root`` kept snapshots.
    """
    kept = [(run, step, folder) for run, snaps in kept_runs(root) for step, folder in snaps]
    if not kept:
        raise ValueError(
            f"no snapshots under {root / 'runs'}: set `snapshots = true` in the config and run "
            "`satikit bench quality` first"
        )
    images = _labelled(data_dir, n_images)
    return [
        row
        for run, step, folder in kept
        for row in score_snapshot(run, step, folder, images, inference, methods_for(run.variant))
    ]


def _labelled(data_dir: Path, n_images: int) -> list[tuple[Any, Any]]:
    """``(x, labels)`` of the first ``n_images`` test images of ``data_dir``."""
    from satikit.io.images import list_images, read_image

    paths = list_images(data_dir / "test" / "x")[:n_images]
    return [(read_image(p), read_image(data_dir / "test" / "labels" / p.name)) for p in paths]


def score_snapshot(
    run: planning.Run,
    step: int,
    folder: Path,
    images: list[tuple[Any, Any]],
    inference: InferenceConfig,
    methods: Sequence[str],
) -> list[dict[str, Any]]:
    """The paper's colour error of the weights in ``folder`` on ``images``, per method."""
    from satikit.checkpoint import load_adapter
    from satikit.metrics import colour_error

    adapter, run_config = load_adapter(folder)
    rows = []
    for method in methods:
        n = e = 0
        for x, label in images:
            y = scoring.translate_with(adapter, run_config, x, method, inference)
            result = colour_error(y, label)
            n, e = n + result.n_objects, e + result.n_errors
        rows.append(
            {
                "adapter": run.adapter,
                "model": run.variant,
                "method": method,
                "seed": run.seed,
                "step": step,
                "error": e / max(n, 1),
                "n_objects": n,
            }
        )
    return rows


def chosen_snapshots(rows: list[dict[str, Any]]) -> dict[tuple[str, str, int], int]:
    """``(adapter, model, seed)`` -> the step whose ``none`` error is the lowest in ``rows``
    (the earliest on a tie, :func:`benchmarks.snapshot_choice.lowest_step`): a snapshot chosen
    on the images ``rows`` were scored on."""
    from benchmarks.snapshot_choice import lowest_step

    errors: dict[tuple[str, str, int], dict[int, float]] = {}
    for r in rows:
        if r["method"] == "none":
            errors.setdefault((r["adapter"], r["model"], r["seed"]), {})[r["step"]] = r["error"]
    return {key: lowest_step(by_step) for key, by_step in errors.items()}


def medians(rows: list[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """``"<adapter> <model> + <method>"`` -> step -> median error in % over seeds."""
    groups: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        key = f"{r['adapter']} {r['model']} + {r['method']}"
        groups.setdefault(key, {}).setdefault(r["step"], []).append(100 * r["error"])
    return {k: {s: statistics.median(v) for s, v in sorted(d.items())} for k, d in groups.items()}


def markdown(curves: dict[str, dict[int, float]]) -> str:
    steps = sorted({s for c in curves.values() for s in c})
    lines = [
        "| step | " + " | ".join(curves) + " |",
        "|---:|" + "---:|" * len(curves),
    ]
    for step in steps:
        cells = [f"{c[step]:.2f}" if step in c else "" for c in curves.values()]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(curves: dict[str, dict[int, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.common import save_figure

    fig, ax = plt.subplots(figsize=(8, 4.5))
    models = sorted({label.rsplit(" + ", 1)[0] for label in curves})
    colours = plt.get_cmap("tab10")
    for label, curve in curves.items():
        model, method = label.rsplit(" + ", 1)
        ax.plot(
            list(curve),
            [max(v, 1e-2) for v in curve.values()],
            marker="o",
            color=colours(models.index(model) % 10),
            linestyle="-" if method == "none" else "--",
            label=label,
        )
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("median error over seeds, % (log)")
    save_figure(fig, ax, path, title)


def run_learning_curve(
    config_name: str,
    n_images: int = 4,
    *,
    variant: str | None = None,
    split: str = "test",
    cache: Path = planning.CACHE,
    echo: Callable[[str], None] = print,
    write: bool = True,
) -> dict[str, Any]:
    """Score every snapshot of a quality run (or of the ``benchmarks.variants`` run labelled
    ``variant``) on the first ``n_images`` images of ``split`` (``validation``: where a
    snapshot may be chosen); returns the payload written as JSON."""
    from benchmarks.common import git_commit, machine, require_plotting, write_results

    if write:
        require_plotting()
    config = planning.load_config(config_name)
    home = planning.workdir(config, cache)
    root = planning.runs_root(home, variant)
    images = planning.split_data(config, home, planning.ensure_dataset(config, home), split)
    rows = curve_rows(root, images, config.inference, n_images)
    curves = medians(rows)
    command = f"python -m benchmarks.learning_curve --config {config_name} --images {n_images}"
    command += "" if split == "test" else f" --split {split}"
    chosen: list[dict[str, Any]] = []
    if split != "test":  # each run's snapshot chosen here, scored on every test image
        from satikit.checkpoint import load_adapter

        test_dir = planning.ensure_dataset(config, home)
        folders = {
            (run.adapter, run.variant, run.seed, step): folder
            for run, snaps in kept_runs(root)
            for step, folder in snaps
        }
        for (adapter, model, seed), step in sorted(chosen_snapshots(rows).items()):
            folder = folders[(adapter, model, seed, step)]
            counts = scoring.score_method(*load_adapter(folder), test_dir, "none", config.inference)
            chosen.append(
                {
                    "adapter": adapter,
                    "model": model,
                    "method": "none",
                    "seed": seed,
                    "step": step,
                    "error": scoring.count_error(counts),
                    "n_objects": counts.get("n_objects"),
                    "split": "test",
                    "chosen_on": split,
                }
            )
    payload = {
        "config": config.name,
        "variant": variant,
        "commit": git_commit(),
        "machine": machine(),
        "command": command + ("" if variant is None else f" --variant {variant}"),
        "n_images": n_images,
        "split": split,
        "rows": rows,
        "chosen": chosen,
        "curves": {k: {str(s): v for s, v in c.items()} for k, c in curves.items()},
    }
    table = markdown(curves)
    if chosen:
        table += (
            f"\nThe snapshot with the lowest {split} error of each run, on all test images:\n\n"
            "| run | step | test error % (none) |\n|---|---:|---:|\n"
        )
        table += "".join(
            f"| {c['adapter']} {c['model']} seed {c['seed']} | {c['step']} "
            f"| {100 * c['error']:.2f} |\n"
            for c in chosen
        )
    if write:
        suffix = "-learning-curve" + ("" if variant is None else f"-variant-{variant}")
        suffix += "" if split == "test" else f"-{split}"
        header = (
            f"# Learning curves of `{config.name}`\n\n`{payload['command']}` on "
            f"{payload['machine']}, commit {payload['commit']}: median error (%) over seeds of "
            f"the weights kept at each checkpoint, on the first {n_images} {split} images.\n\n"
        )
        json_path, _ = write_results(config.name, payload, header + table, suffix, indent=1)
        title = f"{config.name} learning curves (solid: none, dashed: sati)"
        plot(curves, json_path.with_suffix(".png"), title)
        echo(f"wrote {json_path.with_suffix('')}.*")
    echo(table)
    return payload


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu-small")
    parser.add_argument("--images", type=int, default=4, help="images to score per step")
    parser.add_argument(
        "--split",
        choices=planning.SPLITS,
        default="test",
        help="score the test images or the validation images (where a snapshot may be chosen)",
    )
    parser.add_argument(
        "--variant", help="label of a benchmarks.variants run [default: the config's own runs]"
    )
    args = parser.parse_args(argv)
    run_learning_curve(args.config, args.images, variant=args.variant, split=args.split)


if __name__ == "__main__":
    main()
