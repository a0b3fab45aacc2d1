"""Quality benchmark: tiling strategies x adapters on the circle dataset (paper IV-A, Table 1).

For each adapter in a config, trains the standard host GAN and the SATI version (and the SATI
ablations) with the same budget and seeds, then translates the held-out test images with every
strategy and scores them with the paper's colour-consistency metric. Everything is cached under
``benchmarks/cache/<config>-<hash>/`` (dataset, every trained run, every evaluation), so an
interrupted run resumes where it stopped. Run it as ``satikit bench quality --config cpu-small``
or ``python -m benchmarks.quality --config cpu-small``.

The pieces: :mod:`benchmarks.planning` (configs, runs, cache folders, datasets),
:mod:`benchmarks.training_runs` (training and cache checks), :mod:`benchmarks.scoring`
(translation and colour errors), :mod:`benchmarks.report` (tables and figures).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.planning import (
    CACHE,
    adapter_plan,
    config_hash,
    ensure_dataset,
    load_config,
    plan_runs,
    select_adapters,
    workdir,
)
from benchmarks.report import box_plot, markdown_table, montage, summarise
from benchmarks.scoring import evaluate_run
from benchmarks.training_runs import train_all


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
        "config": config.name,
        "config_hash": config_hash(config.as_dict()),
        "settings": config.as_dict(),
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
        header = f'# Quality benchmark `{config.name}`\n\n`{payload["command"]}` on {payload["machine"]}, commit {payload["commit"]}\n\nErrors in % of circles (paper metric, section II); seeds {seeds}; "seam circles" cross a seam of the tile grid the method used (simple: its own; the others: the SATI grid).\n\n'
        suffix = "-" + "-".join(chosen) if adapters else ""
        json_path, _ = write_results(
            config.name, payload, header + markdown_table(summary), suffix, 1
        )
        stem = json_path.with_suffix("")
        box_plot(rows, Path(f"{stem}-boxplot.png"), f"{config.name} ({payload['commit']})")
        for adapter in chosen:
            montage(config, root, data_dir, adapter, Path(f"{stem}-montage-{adapter}.png"))
        echo(f"wrote {stem}.*")
    echo(markdown_table(summary))
    return payload


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="satikit quality benchmark")
    parser.add_argument("--config", default="cpu-small")
    parser.add_argument("--adapter", dest="adapters", action="append", help="repeatable")
    args = parser.parse_args(argv)
    run_benchmark(args.config, adapters=args.adapters)


if __name__ == "__main__":
    main()
