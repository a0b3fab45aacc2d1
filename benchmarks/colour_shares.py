"""Which colours a model paints its circles: the shares of red, green, blue, none and several.

The paper's error (section II) counts a circle as correct when it carries exactly one colour,
so a model that paints every circle blue scores well. This benchmark looks one level deeper:
each model (a run folder or one of its snapshots) translates the split's images without tiling,
and every circle is sorted by the colours :func:`satikit.metrics.colour_error` finds in it:
red only, green only, blue only, none, or two and more. The circle data draw each circle's
colour uniformly from red, green and blue, so a model that learned the task paints a third of
the circles in each. Writes ``results/<config>/<date>-<commit>-colour-shares<-label>.{json,md,png}``
(the picture: the first image and each model's translation of it)::

    python -m benchmarks.colour_shares --config cpu-small --split validation \\
        --model cyclegan=runs/cyclegan/standard-seed0 \\
        --model unit=variants/standard-discriminator-patch-latent-noise-0.1/runs/unit/standard-seed0/snapshots/step-001600

A model path is a run folder (absolute, or relative to the config's cache folder).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import planning, scoring

#: the categories, in the table's order
SHARES = ("red", "green", "blue", "none", "several")


def shares_of(present: np.ndarray) -> dict[str, int]:
    """Counts per category of ``(n, 3)`` bool colour presence (red, green, blue per circle)."""
    colours = present.sum(axis=1)
    single = present[colours == 1]
    counts = {name: int(single[:, k].sum()) for k, name in enumerate(SHARES[:3])}
    counts.update(none=int((colours == 0).sum()), several=int((colours >= 2).sum()))
    return counts


def model_shares(
    run_dir: Path, data_dir: Path, inference: Any
) -> tuple[dict[str, int], np.ndarray]:
    """Category counts of one model over every image of ``data_dir/test`` (no tiling), and its
    translation of the first image."""
    from satikit.checkpoint import load_adapter
    from satikit.io.images import list_images, read_image
    from satikit.metrics import colour_error

    adapter, run_config = load_adapter(run_dir)
    totals = dict.fromkeys(SHARES, 0)
    first = None
    for path in list_images(data_dir / "test" / "x"):
        labels = read_image(data_dir / "test" / "labels" / path.name)
        translated = scoring.translate_with(
            adapter, run_config, read_image(path), "none", inference
        )
        first = translated if first is None else first
        for key, count in shares_of(colour_error(translated, labels).present).items():
            totals[key] += count
    return totals, first


def picture(
    x: np.ndarray, translations: dict[str, np.ndarray], path: Path, size: int = 160
) -> None:
    """The first image's top-left ``size`` px: X, then each model's translation, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"X": x, **translations}
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.6))
    for ax, (name, image) in zip(np.atleast_1d(axes), panels.items()):
        ax.imshow(image[:size, :size], interpolation="nearest", cmap="gray")
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(rows: list[dict[str, Any]]) -> str:
    """One row per model: the share of circles in each category, in %."""
    lines = [
        "| model | circles | " + " | ".join(f"{s} %" for s in SHARES) + " | paper's error % |",
        "|---|---:|" + "---:|" * (len(SHARES) + 1),
    ]
    for row in rows:
        total = max(row["n_objects"], 1)
        cells = [f"{100 * row[s] / total:.1f}" for s in SHARES]
        error = 100 * (row["none"] + row["several"]) / total
        lines.append(
            f"| {row['model']} | {row['n_objects']} | " + " | ".join(cells) + f" | {error:.1f} |"
        )
    return "\n".join(lines) + "\n"


def run_colour_shares(
    config_name: str,
    models: Sequence[tuple[str, str]],
    *,
    split: str = "validation",
    label: str = "",
    cache: Path = planning.CACHE,
    echo: Callable[[str], None] = print,
    write: bool = True,
) -> dict[str, Any]:
    """Score ``models`` (``(name, run folder)`` pairs); returns the payload written as JSON.

    Raises:
        ValueError: a model folder that does not exist, or the config's data are not circles.
    """
    from benchmarks.common import git_commit, machine, require_plotting, write_results

    if write:
        require_plotting()
    config = planning.load_config(config_name)
    home = planning.workdir(config, cache)
    data_dir = planning.split_data(config, home, planning.ensure_dataset(config, home), split)
    if scoring.has_truth(data_dir):
        raise ValueError(f"{config.name} has no circles to sort by colour")
    run_dirs = {
        name: Path(folder) if Path(folder).is_absolute() else home / folder
        for name, folder in models
    }
    for name, run_dir in run_dirs.items():  # every folder checked before any scoring
        if not (run_dir / "config.json").is_file():
            raise ValueError(f"model {name!r}: no run folder at {run_dir}")
    rows, translations = [], {}
    for name, folder in models:
        counts, translations[name] = model_shares(run_dirs[name], data_dir, config.inference)
        rows.append(
            {"model": name, "run": str(folder), "n_objects": sum(counts.values()), **counts}
        )
    command = f"python -m benchmarks.colour_shares --config {config_name} --split {split}"
    command += "".join(f" --model {n}={f}" for n, f in models)
    command += f" --label {label}" if label else ""
    payload = {
        "config": config.name,
        "split": split,
        "commit": git_commit(),
        "machine": machine(),
        "command": command,
        "rows": rows,
    }
    table = markdown(rows)
    if write:
        header = (
            f"# Which colours the models paint the circles, `{config.name}` ({split} images)\n\n"
            f"`{command}` on {payload['machine']}, commit {payload['commit']}. Each model "
            "translates the images without tiling; every circle counts once, by the colours the "
            "paper's metric finds in it. The data draw red, green and blue equally often (a "
            "third each); the paper's error is `none` + `several`. The picture: the first image's "
            "top-left 160 px, X and each model's translation.\n\n"
        )
        suffix = "-colour-shares" + (f"-{label}" if label else "")
        json_path, _ = write_results(config.name, payload, header + table, suffix, 1)
        from satikit.io.images import list_images, read_image

        first = read_image(list_images(data_dir / "test" / "x")[0])
        picture(first, translations, json_path.with_suffix(".png"))
        echo(f"wrote {json_path.with_suffix('')}.*")
    echo(table)
    return payload


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu-small")
    parser.add_argument("--split", default="validation", choices=planning.SPLITS)
    parser.add_argument(
        "--model", action="append", required=True, metavar="NAME=RUN", help="a model (repeatable)"
    )
    parser.add_argument("--label", default="", help="added to the result file names")
    args = parser.parse_args(argv)
    models = []
    for item in args.model:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            parser.error(f"--model needs NAME=RUN, got {item!r}")
        models.append((name, folder))
    run_colour_shares(args.config, models, split=args.split, label=args.label)


if __name__ == "__main__":
    main()
