"""Helpers shared by the benchmark scripts: provenance and writing results (JSON + markdown)."""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import torch

__all__ = ["git_commit", "machine", "require_plotting", "save_figure", "write_results"]

RESULTS = Path(__file__).resolve().parent / "results"


def git_commit() -> str:
    """Short hash of HEAD (``+dirty`` when the code a result depends on, the core, the adapters
    or the benchmarks with their configs, differs from HEAD), or ``unknown``."""
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.check_output(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True
        ).strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "satikit", "adapters", "benchmarks"], cwd=root
        ).returncode
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    """One line: CPU / GPU, core count, torch version."""
    from satikit.devices import environment

    here = environment(torch.device("cpu"))  # what a trained run records (trained_on)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{here['cpu']}, {os.cpu_count()} cores, torch {here['torch']} "
        f"({torch.get_num_threads()} threads), {gpu}, Python {here['python']}"
    )


def write_results(
    kind: str, payload: dict, markdown: str, suffix: str = "", indent: int = 2
) -> tuple[Path, Path]:
    """Write ``results/<kind>/<date>-<commit><suffix>.json`` and ``.md``; returns both paths
    (a picture of the same result goes beside them as ``json_path.with_suffix(".png")``)."""
    folder = RESULTS / kind
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{_dt.date.today().isoformat()}-{payload['commit']}{suffix}"
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    json_path.write_text(json.dumps(payload, indent=indent) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def require_plotting(module: str = "matplotlib") -> None:
    """Refuse up front, before any data or training, when the pictures could not be drawn.

    Raises:
        ValueError: ``module`` (matplotlib, a benchmark extra) is not installed.
    """
    if importlib.util.find_spec(module) is None:
        raise ValueError(
            f"the benchmark pictures need {module}, which is not installed: "
            "pip install -c constraints.txt -e '.[bench]'"
        )


def save_figure(fig, ax, path: Path, title: str) -> None:
    """Title, legend to the right of the axes, write ``path`` (PNG, 110 dpi) and close ``fig``."""
    import matplotlib.pyplot as plt

    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
