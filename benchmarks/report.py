"""The quality benchmark's report: median / mean / std / best over seeds like paper Table 1,
a markdown table, a box plot (log scale, like Fig. 7) and a montage of one tile corner."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_config import BenchConfig
from benchmarks.planning import Run, adapter_plan, methods_for, run_dir
from benchmarks.scoring import translate_with

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
                # circles: errors on seams, inside tiles, at the image border; data with a known
                # truth (no objects): its seam score and tile-level deviation instead
                "seam": _median(items, "error_seam", 100),
                "interior": _median(items, "error_interior", 100),
                "border": _median(items, "error_border", 100),
                "seam_score": _median(items, "seam_score"),
                "tile_deviation": _median(items, "tile_deviation"),
                # Table 1 is CycleGAN's
                "paper_median": PAPER_MEDIAN.get((model, method))
                if adapter == "cyclegan"
                else None,
            }
        )
    return summary


def _median(items: list[dict[str, Any]], key: str, scale: float = 1.0) -> float | None:
    """The median of ``key`` over ``items`` times ``scale``; None where a row lacks it."""
    values = [r.get(key) for r in items]
    if any(v is None for v in values):
        return None
    return scale * statistics.median(values)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown_table(summary: list[dict[str, Any]]) -> str:
    """Table 1's columns; for data with a known truth (no objects: no seam, interior or border
    errors) its seam score and tile-level deviation instead."""
    truth = bool(summary) and all(s["seam"] is None for s in summary)
    if truth:
        tail = [("seam score", "seam_score"), ("tile deviation", "tile_deviation")]
    else:
        tail = [
            ("seam circles %", "seam"),
            ("interior %", "interior"),
            ("image-border circles %", "border"),
        ]
    titles = ["median MAE %" if truth else "median %", "mean %", "std", "best %"]
    titles += [title for title, _ in tail] + ([] if truth else ["paper median %"])
    lines = [
        "| adapter | model | method | seeds | " + " | ".join(titles) + " |",
        "|---|---|---|---:|" + "---:|" * len(titles),
    ]
    for s in summary:
        cells = [_cell(s[k]) for k in ("median", "mean", "std", "best")]
        cells += [_cell(s[key]) for _, key in tail]
        if not truth:
            cells.append("" if s["paper_median"] is None else f"{s['paper_median']:.2f}")
        lines.append(
            f"| {s['adapter']} | {s['model']} | {s['method']} | {s['n_seeds']} | "
            + " | ".join(cells)
            + " |"
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


def montage(config: BenchConfig, root: Path, data_dir: Path, adapter_name: str, path: Path) -> None:
    """The same crop across a tile corner for every strategy, side by side (nearest x4)."""
    from PIL import Image, ImageDraw

    from satikit.checkpoint import load_adapter
    from satikit.io.images import list_images, read_image

    inference = config.inference
    tile, overlap = inference.tile, inference.overlap
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
