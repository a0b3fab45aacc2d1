"""SATI against the best training-free tiling, within one seed lineage.

A lineage is one standard model (one training seed) and what was trained from it: its SATI
fine-tune and a control fine-tune of the same parent with the same data and steps and no SATI
terms. SATI is a training method, so its baseline is the strongest tiling a user of the same
parent gets *without* that training: any tiled method (any window, overlap and statistics, up
to gaussian 75 %'s cost) on the standard model or the control, raw or averaged weights. Seeds
differ more than methods do, so the comparison is made per lineage and then summarised.

Both sides are chosen on the validation images when they were scored (the row with the lowest
validation error), and reported on the test images; without validation rows the test rows
choose (marked so).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.bench_config import InferenceConfig
from benchmarks.methods import parse_method
from benchmarks.planning import training_free

__all__ = [
    "COST_CAP_METHOD",
    "compare_lineages",
    "counting_interval",
    "lineage_table",
    "plot_lineages",
]

# the baseline may spend up to this method's cost (with any statistics pass)
COST_CAP_METHOD = "gaussian@75"


def _variant(model: str) -> str:
    return model.split("+", 1)[0]


def _side(row: dict[str, Any], inference: InferenceConfig) -> str | None:
    """``"baseline"`` (a training-free tiling), ``"sati"`` (SATI inference on a SATI model),
    or None (no tiling, or another method on a SATI model)."""
    strategy = parse_method(row["method"], inference).strategy
    free = training_free(_variant(row["model"]))
    if free and strategy != "none":
        return "baseline"
    if not free and strategy == "sati":
        return "sati"
    return None


def _cost_cap(rows: Iterable[dict[str, Any]]) -> float:
    caps = [r["cost"] for r in rows if r["method"].split("/")[0] == COST_CAP_METHOD]
    return max(caps) if caps else float("inf")


def counting_interval(sati_errors: int, baseline_errors: int) -> tuple[float, float]:
    """The 95 % interval of the ratio of two error counts from counting noise alone: each count
    taken as Poisson (0.5 added to a zero), ``exp(ln(a / b) +- 1.96 sqrt(1/a + 1/b))``. Both
    counts come from the same objects, so this overstates the noise of a paired difference and
    ignores image-to-image variation: a scale for how many errors a ratio rests on, not a test."""
    a, b = max(sati_errors, 0.5), max(baseline_errors, 0.5)
    spread = 1.96 * math.sqrt(1 / a + 1 / b)
    return a / b * math.exp(-spread), a / b * math.exp(spread)


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return row["model"], row["method"]


def _pick(
    candidates: list[dict[str, Any]], chooser: dict[tuple[str, str], float]
) -> dict[str, Any] | None:
    """The candidate with the lowest choosing error (validation, else its own)."""
    scored = [(chooser.get(_key(r), r["error"]), r["error"], _key(r), r) for r in candidates]
    return min(scored, key=lambda s: s[:3])[3] if scored else None


def compare_lineages(
    rows: list[dict[str, Any]],
    inference: InferenceConfig,
    validation: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Per (adapter, seed): the chosen SATI row, the chosen training-free row and their error
    ratio on the test rows, plus the no-tiling errors of the standard and SATI models; then per
    adapter the median and the largest ratio over lineages.

    Args:
        rows: test rows of :func:`benchmarks.scoring.evaluate_run` (errors as fractions).
        inference: the config's ``[inference]`` table.
        validation: the same models' validation rows, which choose each side's row.
    """
    chooser_by_lineage: dict[tuple[str, int], dict[tuple[str, str], float]] = {}
    for row in validation or []:
        chooser_by_lineage.setdefault((row["adapter"], row["seed"]), {})[_key(row)] = row["error"]
    lineages = []
    for adapter, seed in sorted({(r["adapter"], r["seed"]) for r in rows}):
        mine = [r for r in rows if r["adapter"] == adapter and r["seed"] == seed]
        cap = _cost_cap(mine)
        chooser = chooser_by_lineage.get((adapter, seed), {})
        sides = {
            side: [r for r in mine if _side(r, inference) == side and r["cost"] <= cap + 1e-9]
            for side in ("baseline", "sati")
        }
        if side_missing := [s for s, found in sides.items() if not found]:
            lineages.append({"adapter": adapter, "seed": seed, "missing": side_missing})
            continue
        chosen = {side: _pick(found, chooser) for side, found in sides.items()}
        best = {side: min(found, key=lambda r: r["error"]) for side, found in sides.items()}
        none = {
            _variant(r["model"]): 100 * r["error"]
            for r in mine
            if r["method"] == "none" and "+" not in r["model"]
        }
        lineages.append(
            {
                "adapter": adapter,
                "seed": seed,
                "chosen_on": "validation" if chooser else "test",
                "cost_cap": cap,
                **{
                    f"{side}_{field}": value
                    for side, row in chosen.items()
                    for field, value in (
                        ("model", row["model"]),
                        ("method", row["method"]),
                        ("error", 100 * row["error"]),
                        ("cost", row["cost"]),
                    )
                },
                "ratio": chosen["sati"]["error"] / max(chosen["baseline"]["error"], 1e-9),
                **(
                    {
                        "sati_errors": chosen["sati"]["n_errors"],
                        "baseline_errors": chosen["baseline"]["n_errors"],
                        "ratio_interval": counting_interval(
                            chosen["sati"]["n_errors"], chosen["baseline"]["n_errors"]
                        ),
                    }
                    if all("n_errors" in row for row in chosen.values())
                    else {}
                ),
                "best_test_ratio": best["sati"]["error"] / max(best["baseline"]["error"], 1e-9),
                "best_test": {s: f"{r['model']} {r['method']}" for s, r in best.items()},
                "none_standard": none.get("standard"),
                # the chosen SATI model's own run (one of several fine-tunes, if repeated)
                "none_sati": none.get(_variant(chosen["sati"]["model"])),
            }
        )
    summary = {}
    for adapter in sorted({item["adapter"] for item in lineages}):
        ratios = [i["ratio"] for i in lineages if i["adapter"] == adapter and "ratio" in i]
        if ratios:
            summary[adapter] = {
                "n_lineages": len(ratios),
                "median_ratio": statistics.median(ratios),
                "max_ratio": max(ratios),
            }
    return {"lineages": lineages, "summary": summary}


def lineage_table(comparison: dict[str, Any]) -> str:
    """Markdown: one line per lineage, then the per-adapter summary."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    lines = [
        "| adapter | seed | SATI (model, method) | SATI % | cost | best training-free "
        "(model, method) | training-free % | cost | SATI / training-free | chosen on | "
        "standard, no tiling % | SATI model, no tiling % | errors: SATI / training-free "
        "(95 % from counting alone) |",
        "|---|---:|---|---:|---:|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for item in comparison["lineages"]:
        if "missing" in item:
            lines.append(
                f"| {item['adapter']} | {item['seed']} | not scored: no "
                f"{' / '.join(item['missing'])} rows | | | | | | | | | | |"
            )
            continue
        lines.append(
            f"| {item['adapter']} | {item['seed']} | {item['sati_model']} {item['sati_method']} "
            f"| {pct(item['sati_error'])} | {item['sati_cost']:.2f} | {item['baseline_model']} "
            f"{item['baseline_method']} | {pct(item['baseline_error'])} | "
            f"{item['baseline_cost']:.2f} | **{item['ratio']:.2f}** | {item['chosen_on']} | "
            f"{pct(item['none_standard'])} | {pct(item['none_sati'])} | {_counts(item)} |"
        )
    lines += [
        "",
        "| adapter | lineages | median SATI / training-free | largest |",
        "|---|---:|---:|---:|",
    ]
    for adapter, s in comparison["summary"].items():
        lines.append(
            f"| {adapter} | {s['n_lineages']} | **{s['median_ratio']:.2f}** | {s['max_ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _counts(item: dict[str, Any]) -> str:
    if "ratio_interval" not in item:
        return "-"
    low, high = item["ratio_interval"]
    return f"{item['sati_errors']} / {item['baseline_errors']} ({low:.2f}-{high:.2f})"


def plot_lineages(
    rows: list[dict[str, Any]], inference: InferenceConfig, path: Path, title: str
) -> None:
    """One panel per lineage (a row of panels per adapter, a column per seed): error against
    cost, a line per (model, strategy family), no tiling dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.frontier import strategy_family

    adapters = sorted({r["adapter"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    labels = sorted(
        {
            f"{r['model']}: {strategy_family(r['method'], inference)}"
            for r in rows
            if r["method"] != "none"
        }
    )
    # the legend below the panels, as many columns as fit the width (about 2.3 in a label) and
    # as tall as its rows need, so that it never covers a panel
    width, panel = 4.6 * len(seeds), 3.8
    columns = max(2, int(width // 2.3))
    legend_height = 0.3 + 0.14 * math.ceil(len(labels) / columns)
    height = panel * len(adapters) + legend_height + 0.4
    fig, axes = plt.subplots(len(adapters), len(seeds), figsize=(width, height), squeeze=False)
    # up to 60 distinguishable colours, the same label the same colour in every panel
    palette = [plt.get_cmap(name)(k) for name in ("tab20", "tab20b", "tab20c") for k in range(20)]
    colour = {label: palette[k % len(palette)] for k, label in enumerate(labels)}
    legend: dict[str, Any] = {}
    for (a, adapter), (s, seed) in itertools.product(enumerate(adapters), enumerate(seeds)):
        ax = axes[a][s]
        mine = [r for r in rows if (r["adapter"], r["seed"]) == (adapter, seed)]
        lines: dict[str, list[tuple[float, float]]] = {}
        for r in mine:
            error = max(100 * r["error"], 1e-2)
            if r["method"] == "none":
                ax.axhline(error, linestyle=":", linewidth=0.8, color="grey")
                continue
            label = f"{r['model']}: {strategy_family(r['method'], inference)}"
            lines.setdefault(label, []).append((r["cost"], error))
        for label, points in sorted(lines.items()):
            points.sort()
            (handle,) = ax.plot(
                *zip(*points), marker="o", label=label, linewidth=1, color=colour[label]
            )
            legend.setdefault(label, handle)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{adapter}, seed {seed} (dotted: no tiling)", fontsize=9)
        ax.set_xlabel("cost: forward-pass px per image px (log)", fontsize=8)
        ax.set_ylabel("colour error, % of objects (log)", fontsize=8)
    fig.legend(list(legend.values()), list(legend), fontsize=6, loc="lower center", ncol=columns)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, legend_height / height, 1, 1 - 0.4 / height))
    fig.savefig(path, dpi=110)
    plt.close(fig)
