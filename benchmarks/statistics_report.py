"""Shared statistics against per-tile statistics, per seed, on data with a known truth.

Reads a frontier result of a dataset with a true Y (``textured``, ``restain``) and answers, per
seed (lineage) and as the median over seeds, for the standard model:

- **simple tiling** (tiles side by side, sharp borders): the seam score of the better of the
  kernel-averaged (KIN) and dense statistics, over per-tile statistics' (target <= 0.5). Which
  one (and which kernel) is chosen on the validation images;
- **gaussian 25 %** (blended borders, where per-tile statistics show as blotches): the
  tile-level deviation of the better of KIN and dense over per-tile's (target <= 0.5), chosen
  the same way, and of the best of every shared mode (TIN at 1/4 and full resolution too);
- **TIN at full resolution**: its error over no tiling's (target <= 1.1), simple and gaussian;
- the floors: exact whole-image statistics (TIN at full resolution) leave this seam score
  (what remains is not statistics), and one pass without tiles this tile-level deviation;
- **SATI with shared statistics**: whether its best row (chosen on validation) has the lowest
  error of every tiled row of the lineage at no more than a third of gaussian 75 %'s cost.

Example::

    python -m benchmarks.statistics_report benchmarks/results/textured/<date>-<commit>-frontier.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import git_commit, machine, write_results

__all__ = ["SHARED", "compare", "main", "markdown"]

#: The shared-statistics suffixes a choice is made among, per base method: KIN and dense...
SHARED = ("/kernel:3", "/kernel:5", "/dense")
#: ... and every shared mode, whole-image statistics (TIN) included.
ANY_SHARED = ("/thumbnail:0.25", "/thumbnail:1", *SHARED)


def _index(rows: Iterable[dict[str, Any]], model: str) -> dict[tuple[int, str], dict[str, Any]]:
    return {(r["seed"], r["method"]): r for r in rows if r["model"] == model}


def _chosen(
    choice: dict[tuple[int, str], dict[str, Any]], seed: int, names: Sequence[str], key: str
) -> str | None:
    """The name among ``names`` with the lowest ``key`` on the choice split (None: none scored)."""
    scored = [(choice[(seed, n)][key], n) for n in names if (seed, n) in choice]
    return min(scored)[1] if scored else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def compare(result: dict[str, Any], model: str = "standard") -> list[dict[str, Any]]:
    """One entry per seed of ``model`` (and the SATI fine-tune of its lineage): the ratios and
    the rows they come from (test split; choices on ``choice_rows``, else on the test rows)."""
    test = _index(result["rows"], model)
    choice = _index(result.get("choice_rows") or result["rows"], model)
    sati_test = _index(result["rows"], "sati-finetune")
    sati_choice = _index(result.get("choice_rows") or result["rows"], "sati-finetune")
    out = []
    for seed in sorted({s for s, _ in test}):

        def get(method: str, key: str, seed: int = seed) -> float | None:
            row = test.get((seed, method))
            return None if row is None or row.get(key) is None else float(row[key])

        entry: dict[str, Any] = {"seed": seed}
        simple = _chosen(choice, seed, [f"simple@0{s}" for s in SHARED], "seam_score")
        entry["simple_shared"] = simple
        entry["seam_ratio"] = _ratio(
            get(simple, "seam_score") if simple else None, get("simple@0", "seam_score")
        )
        # exact whole-image statistics (TIN at full resolution) are the best any shared
        # statistics can do on these tiles: what is left is not statistics
        entry["seam_floor"] = _ratio(
            get("simple@0/thumbnail:1", "seam_score"), get("simple@0", "seam_score")
        )
        for suffix, modes in (("", SHARED), ("_any", ANY_SHARED)):
            blended = _chosen(choice, seed, [f"gaussian@25{s}" for s in modes], "tile_deviation")
            entry[f"gaussian_shared{suffix}"] = blended
            entry[f"tile_deviation_ratio{suffix}"] = _ratio(
                get(blended, "tile_deviation") if blended else None,
                get("gaussian@25", "tile_deviation"),
            )
        # one pass without tiles spreads its error over the same cells too
        entry["tile_deviation_floor"] = _ratio(
            get("none", "tile_deviation"), get("gaussian@25", "tile_deviation")
        )
        for base in ("simple@0", "gaussian@25"):
            entry[f"tin_ratio_{base}"] = _ratio(
                get(f"{base}/thumbnail:1", "error"), get("none", "error")
            )
        entry.update(_sati_lowest(seed, test, sati_test, sati_choice))
        out.append(entry)
    return out


def _sati_lowest(
    seed: int,
    test: dict[tuple[int, str], dict[str, Any]],
    sati_test: dict[tuple[int, str], dict[str, Any]],
    sati_choice: dict[tuple[int, str], dict[str, Any]],
) -> dict[str, Any]:
    """SATI's best shared-statistics row (chosen on validation) against every tiled row of the
    standard model of the same seed: its error, the lowest other error, and the cost rule."""
    shared = [
        m for (s, m) in sati_choice if s == seed and m.startswith("sati") and "/" in m
    ]  # fmt: skip
    if not shared:
        return {"sati_shared": None}
    best = min(shared, key=lambda m: sati_choice[(seed, m)]["error"])
    row = sati_test.get((seed, best))
    g75 = test.get((seed, "gaussian@75"))
    tiled = [r for (s, m), r in test.items() if s == seed and m != "none"]
    if row is None or g75 is None or not tiled:
        return {"sati_shared": best}
    others = min(float(r["error"]) for r in tiled)
    return {
        "sati_shared": best,
        "sati_error": 100 * float(row["error"]),
        "lowest_tiled_error": 100 * others,
        "sati_cost_share_of_g75": float(row["cost"]) / float(g75["cost"]),
        "sati_lowest": float(row["error"]) <= others
        and float(row["cost"]) <= float(g75["cost"]) / 3,
    }


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


COLUMNS = (
    ("seed", "seed"),
    ("simple_shared", "simple: chosen shared"),
    ("seam_ratio", "seam / per-tile (<= 0.5)"),
    ("seam_floor", "TIN 1 seam / per-tile"),
    ("gaussian_shared", "gaussian 25 %: chosen shared"),
    ("tile_deviation_ratio", "tile dev. / per-tile (<= 0.5)"),
    ("gaussian_shared_any", "gaussian 25 %: chosen among all shared (TIN too)"),
    ("tile_deviation_ratio_any", "tile dev. / per-tile, all shared"),
    ("tile_deviation_floor", "no tiling tile dev. / per-tile"),
    ("tin_ratio_simple@0", "TIN 1 simple / none (<= 1.1)"),
    ("tin_ratio_gaussian@25", "TIN 1 gaussian / none (<= 1.1)"),
    ("sati_shared", "SATI: chosen shared"),
    ("sati_error", "SATI error %"),
    ("lowest_tiled_error", "lowest standard tiled error %"),
    ("sati_cost_share_of_g75", "SATI cost / gaussian 75 %"),
    ("sati_lowest", "SATI lowest at <= 1/3 cost"),
)


# the columns that name a row rather than give a number (no median)
NAMES = (
    "seed",
    "simple_shared",
    "gaussian_shared",
    "gaussian_shared_any",
    "sati_shared",
    "sati_lowest",
)


def markdown(entries: list[dict[str, Any]]) -> str:
    """The per-seed table with a median row (ratios and errors)."""
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    for entry in entries:
        lines.append("| " + " | ".join(_fmt(entry.get(key)) for key, _ in COLUMNS) + " |")
    median = {key: _median(e.get(key) for e in entries) for key, _ in COLUMNS if key not in NAMES}
    median["seed"] = "median"
    lines.append("| " + " | ".join(_fmt(median.get(key)) for key, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path, help="a frontier result (JSON) of truth data")
    parser.add_argument("--model", default="standard")
    args = parser.parse_args(argv)
    result = json.loads(args.result.read_text())
    entries = compare(result, args.model)
    table = markdown(entries)
    header = (
        f"# Shared against per-tile statistics: {result['config']}\n\n"
        f"From `{args.result.name}` (test split; choices on "
        f"{'the validation images' if result.get('choice_rows') else 'the test images'}). "
        f"`python -m benchmarks.statistics_report {args.result}` on {machine()}, commit "
        f"{git_commit()}.\n\n"
    )
    payload = {"source": args.result.name, "commit": git_commit(), "seeds": entries}
    write_results(result["config"], payload, header + table, "-statistics")
    print(header + table)


if __name__ == "__main__":
    main()
