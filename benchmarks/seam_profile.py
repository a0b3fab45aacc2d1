"""Where circle errors sit on the SATI tile grid: error rate by distance from a tile's leading edge.

Every tile ``k >= 1`` (per spatial dim) of the SATI inference grid starts at ``k (T - O)``; its
first ``O`` px are the leading strip that SATI fills with already-translated output (domain Y),
the rest is still domain X. Two places matter:

- the **seam** at ``O / 2`` (paper III-E): where the predecessor's output ends in the final
  image. ``benchmarks.quality`` splits its error into circles crossing it ("seam") and the rest
  ("interior").
- the **strip edge** at ``O``: where the merged input ``z`` switches from Y to X, so the
  generator has to continue a circle it was given half-coloured. Its circles count as
  "interior" in ``quality``'s split.

This benchmark bins every circle of the test images by the distance of its centre from the
nearest leading tile edge (``c mod (T - O)``, the closest over dims; circles in the first tile
row and column have no leading edge, and circles within ``O`` px of the image border are left
out) and scores each bin, pooled over seeds:
standard models with ``none`` and ``weighted``, SATI models (ablations too) with ``none`` and
``sati``. It also reports each method's whole-image error (median over seeds).

``--margin M ...`` adds ``sati-margin-M`` for the SATI models: SATI inference on a grid whose
tiles overlap by ``O + M`` while the strip stays ``O`` wide (beyond the paper, see
:class:`satikit.stitching.grid.TileGrid`), so the strip edge lies ``M`` px inside the
predecessor; its circles are binned on that grid (step ``T - O - M``).
``--validation-seed S`` scores the test images of a second dataset drawn with seed ``S``
instead (same parameters; generated once), for choosing ``M`` without looking at the test set.
Writes ``results/<config>/<date>-<commit>-seam-profile[-variant-X][-validation-S].{json,md,png}``::

    satikit bench quality --config cpu-small
    python -m benchmarks.seam_profile --config cpu-small --margin 4 8 16 --validation-seed 777
    python -m benchmarks.seam_profile --config cpu-small --margin 8
    python -m benchmarks.seam_profile --config cpu-small --variant sati-4800steps --margin 8
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import planning, scoring, training_runs
from benchmarks.bench_config import InferenceConfig

#: The models the picture shows.
MAIN = ("standard", "sati")


def methods_for(variant: str, margins: Sequence[int] = ()) -> tuple[str, ...]:
    """Standard models: ``none`` and the paper's ``weighted``; SATI models: ``none``, ``sati``
    and ``sati-margin-M`` for each of ``margins``."""
    if variant == "standard":
        return ("none", "weighted")
    return ("none", "sati", *(f"sati-margin-{m}" for m in margins))


def _inference_for(method: str, inference: InferenceConfig) -> tuple[str, InferenceConfig]:
    """``sati-margin-M`` -> ``sati`` with ``margin = M``; other methods unchanged."""
    if method.startswith("sati-margin-"):
        return "sati", replace(inference, margin=int(method.rsplit("-", 1)[1]))
    return method, inference


def edge_distance(labels: np.ndarray, tile: int, overlap: int, margin: int = 0) -> np.ndarray:
    """Distance (px) of each object's centre from the nearest leading tile edge.

    Args:
        labels: ``(*spatial)`` int label image, 0 background, objects ``1..n``.
        tile, overlap, margin: the SATI inference grid (tiles start at
            ``k (tile - overlap - margin)``).

    Returns:
        ``(n + 1,)`` float array indexed by object id (entry 0 unused, ``inf``); ``inf`` for an
        object whose centre lies in the first tile along every dim (no leading edge), and for
        one reaching within ``overlap`` px of the image border (the model's own border effects
        would otherwise land in the first bins: ``S - overlap`` is often a multiple of the step).
    """
    from scipy import ndimage

    step = tile - overlap - margin
    n = int(labels.max())
    distance = np.full(n + 1, np.inf)
    if n == 0:
        return distance
    centres = np.asarray(ndimage.center_of_mass(labels > 0, labels, np.arange(1, n + 1)))
    centres = centres.reshape(n, labels.ndim)
    per_dim = np.where(centres >= step, np.mod(centres, step), np.inf)
    distance[1:] = per_dim.min(axis=1)
    distance[scoring.border_objects(labels, overlap)] = np.inf
    return distance


def profile_rows(
    root: Path,
    data_dir: Path,
    inference: InferenceConfig,
    n_images: int,
    bin_width: int,
    margins: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """One row per (run, method, bin) of the trained runs under ``root``: ``n`` circles whose
    centre lies ``[start, start + bin_width)`` px from a leading edge, ``errors`` among them;
    and one per (run, method) with ``bin_start = None``: all circles of the images.

    Raises:
        ValueError: no trained run under ``root``.
    """
    from satikit.checkpoint import load_adapter
    from satikit.io.images import list_images, read_image
    from satikit.metrics import colour_error

    runs = training_runs.found_runs(root, finished=True)  # a partial run saves weights too
    if not runs:
        raise ValueError(
            f"no trained runs under {root / 'runs'}: run `satikit bench quality` first"
        )
    tile, overlap = inference.tile, inference.overlap
    images = list_images(data_dir / "test" / "x")[:n_images]
    labels = [read_image(data_dir / "test" / "labels" / p.name) for p in images]
    xs = [read_image(p) for p in images]
    by_margin: dict[int, list[np.ndarray]] = {}  # each method is binned on its own grid
    rows = []
    for run in runs:
        adapter, run_config = load_adapter(planning.run_dir(root, run))
        for method in methods_for(run.variant, margins):
            strategy, settings = _inference_for(method, inference)
            margin = settings.margin
            if margin not in by_margin:
                by_margin[margin] = [edge_distance(lb, tile, overlap, margin) for lb in labels]
            distances = by_margin[margin]
            edges = np.arange(0, tile - overlap - margin + bin_width, bin_width)
            n = np.zeros(len(edges) - 1, dtype=np.int64)
            errors = np.zeros_like(n)
            total = [0, 0]
            for x, label, distance in zip(xs, labels, distances):
                y = scoring.translate_with(adapter, run_config, x, strategy, settings)
                result = colour_error(y, label)
                d = distance[result.ids]
                n += np.histogram(d, edges)[0]
                errors += np.histogram(d[result.errors], edges)[0]
                total = [total[0] + result.n_objects, total[1] + result.n_errors]
            cells = [*zip(edges[:-1].tolist(), n.tolist(), errors.tolist()), (None, *total)]
            for start, count, wrong in cells:
                rows.append(
                    {
                        "adapter": run.adapter,
                        "model": run.variant,
                        "method": method,
                        "seed": run.seed,
                        "bin_start": start,
                        "n": int(count),
                        "errors": int(wrong),
                    }
                )
    return rows


def _key(row: dict[str, Any]) -> str:
    return f"{row['adapter']} {row['model']} + {row['method']}"


def totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``"<adapter> <model> + <method>"`` -> median / best whole-image error in % over seeds."""
    errors: dict[str, list[float]] = {}
    for r in rows:
        if r["bin_start"] is None:
            errors.setdefault(_key(r), []).append(100.0 * r["errors"] / max(r["n"], 1))
    return {
        key: {"median": statistics.median(v), "best": min(v), "seeds": len(v)}
        for key, v in errors.items()
    }


def pooled(rows: list[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """``"<adapter> <model> + <method>"`` -> bin start -> error in %, pooled over seeds."""
    sums: dict[str, dict[int, list[int]]] = {}
    for r in rows:
        if r["bin_start"] is None:
            continue
        cell = sums.setdefault(_key(r), {}).setdefault(r["bin_start"], [0, 0])
        cell[0] += r["n"]
        cell[1] += r["errors"]
    return {
        key: {b: 100.0 * e / max(n, 1) for b, (n, e) in sorted(bins.items())}
        for key, bins in sums.items()
    }


def markdown(
    profiles: dict[str, dict[int, float]],
    bin_width: int,
    overlap: int,
    whole: dict[str, dict[str, float]] | None = None,
) -> str:
    """Table: one row per model + method, one column per bin (seam and strip edge marked),
    then the whole-image median over seeds if ``whole`` is given."""
    starts = sorted({b for p in profiles.values() for b in p})

    def head(b: int) -> str:
        marks = [
            name
            for name, at in (("seam", overlap // 2), ("strip edge", overlap))
            if b <= at < b + bin_width
        ]
        return f"{b}-{b + bin_width}" + (f" ({', '.join(marks)})" if marks else "")

    lines = [
        "| model + method | " + " | ".join(head(b) for b in starts) + " |",
        "|---|" + "---:|" * len(starts),
    ]
    for key, profile in profiles.items():
        cells = [f"{profile[b]:.1f}" if b in profile else "" for b in starts]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    if whole:
        lines += [
            "",
            "| model + method | whole image: median % | best % | seeds |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {key} | {t['median']:.2f} | {t['best']:.2f} | {t['seeds']} |"
            for key, t in whole.items()
        ]
    return "\n".join(lines) + "\n"


def plot(
    profiles: dict[str, dict[int, float]], path: Path, title: str, bin_width: int, overlap: int
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.common import save_figure

    # the standard and SATI models only (ablations would bury them; they are in the table)
    main = {k: p for k, p in profiles.items() if k.split(" + ")[0].split(" ", 1)[1] in MAIN}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, profile in (main or profiles).items():
        centres = [b + bin_width / 2 for b in profile]
        ax.plot(centres, list(profile.values()), marker="o", markersize=3, label=key)
    for at, name in ((overlap / 2, "seam (O/2)"), (overlap, "strip edge (O)")):
        ax.axvline(at, color="grey", linestyle=":", linewidth=1)
        ax.text(at, 1.0, f" {name}", transform=ax.get_xaxis_transform(), fontsize=7, va="top")
    ax.set_xlabel("circle centre: distance from the nearest leading tile edge (px)")
    ax.set_ylabel("error, % (pooled over seeds)")
    save_figure(fig, ax, path, title)


def run_seam_profile(
    config_name: str,
    n_images: int | None = None,
    *,
    variant: str | None = None,
    bin_width: int = 4,
    margins: Sequence[int] = (),
    validation_seed: int | None = None,
    cache: Path = planning.CACHE,
    echo: Callable[[str], None] = print,
    write: bool = True,
) -> dict[str, Any]:
    """Profile the trained runs of a quality run (or of the ``benchmarks.variants`` run labelled
    ``variant``) on ``n_images`` test images (default all) of the config's dataset, or of the
    validation dataset drawn with ``validation_seed``; returns the payload written as JSON."""
    from benchmarks.common import git_commit, machine, require_plotting, write_results

    if write:
        require_plotting()
    config = planning.load_config(config_name)
    home = planning.workdir(config, cache)
    root = planning.runs_root(home, variant)
    inference = config.inference
    if n_images is None:
        n_images = config.data.n_test if config.data.n_test is not None else 0

    data_dir = (
        home / "data"
        if validation_seed is None
        else planning.validation_data(config, home, validation_seed)
    )
    rows = profile_rows(root, data_dir, inference, n_images, bin_width, margins)
    profiles = pooled(rows)
    whole = totals(rows)
    command = f"python -m benchmarks.seam_profile --config {config_name} --images {n_images}"
    command += "" if bin_width == 4 else f" --bin {bin_width}"
    command += "" if variant is None else f" --variant {variant}"
    command += "" if not margins else " --margin " + " ".join(map(str, margins))
    command += "" if validation_seed is None else f" --validation-seed {validation_seed}"
    overlap = inference.overlap
    payload = {
        "config": config.name,
        "variant": variant,
        "commit": git_commit(),
        "machine": machine(),
        "command": command,
        "n_images": n_images,
        "tile": inference.tile,
        "overlap": overlap,
        "bin_width": bin_width,
        "margins": list(margins),
        "images": "test" if validation_seed is None else f"validation seed {validation_seed}",
        "rows": rows,
        "profiles": {k: {str(b): v for b, v in p.items()} for k, p in profiles.items()},
        "whole_image": whole,
    }
    table = markdown(profiles, bin_width, overlap, whole)
    if write:
        suffix = "-seam-profile" + ("" if variant is None else f"-variant-{variant}")
        suffix += "" if validation_seed is None else f"-validation-{validation_seed}"
        header = (
            f"# Error by position on the SATI grid, `{config.name}`\n\n`{command}` on "
            f"{payload['machine']}, commit {payload['commit']}, {payload['images']} images: "
            f"error (%) of the circles whose centre lies in each {bin_width}-px bin of distance "
            f"from the nearest leading tile edge (tile {payload['tile']}, overlap {overlap}), "
            "pooled over seeds; then each method's whole-image error.\n\n"
        )
        json_path, _ = write_results(config.name, payload, header + table, suffix, indent=1)
        title = f"{config.name}: error by circle position on the SATI tile grid"
        plot(profiles, json_path.with_suffix(".png"), title, bin_width, overlap)
        echo(f"wrote {json_path.with_suffix('')}.*")
    echo(table)
    return payload


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu-small")
    parser.add_argument("--images", type=int, help="test images to score [default: all]")
    parser.add_argument("--bin", type=int, default=4, help="bin width in px [default: 4]")
    parser.add_argument(
        "--variant", help="label of a benchmarks.variants run [default: the config's own runs]"
    )
    parser.add_argument(
        "--margin",
        type=int,
        nargs="+",
        default=[],
        metavar="M",
        help="also score SATI models with sati on a grid with this margin (px; beyond the paper)",
    )
    parser.add_argument(
        "--validation-seed",
        type=int,
        help="score a validation dataset drawn with this seed instead of the test images",
    )
    args = parser.parse_args(argv)
    if args.bin < 1:
        parser.error("--bin must be >= 1")
    if any(m < 1 for m in args.margin):
        parser.error("--margin values must be >= 1 (0 is plain sati, always scored)")
    run_seam_profile(
        args.config,
        args.images,
        variant=args.variant,
        bin_width=args.bin,
        margins=args.margin,
        validation_seed=args.validation_seed,
    )


if __name__ == "__main__":
    main()
