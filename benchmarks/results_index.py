"""Index of the benchmark result files: writes ``benchmarks/results/README.md``.

Every benchmark writes ``benchmarks/results/<topic>/<date>-<commit>[-<suffix>].<ext>`` (a JSON
file, a markdown table, PNGs) and old results stay beside new ones. This module groups the files
of each topic folder into *series*, the results that share a suffix (``-frontier``,
``-frontier-validation``, ``-seam-profile``, or none), and marks the newest result of each series
current, the older ones superseded by it. Newest means the latest date; on the same date, the
later commit in ``git log`` of the checkout (``+dirty`` counts as its commit); commits that git
does not know, or ties, fall back to the file name (``abc1234+dirty`` after ``abc1234``).

Each entry links its ``.md`` (else its ``.json``, else its first other file), lists the other
files of the same result, and shows the markdown's first heading and the JSON's ``command``.
The output depends only on the files and the git history, so reruns give the same bytes.

    python -m benchmarks.results_index            # rewrite benchmarks/results/README.md
    python -m benchmarks.results_index --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "INDEX_NAME",
    "RESULTS",
    "Result",
    "Series",
    "build_index",
    "git_commits",
    "main",
    "parse_name",
    "render",
]

RESULTS = Path(__file__).resolve().parent / "results"
INDEX_NAME = "README.md"

#: ``<date>-<commit>[-<suffix>].<ext>``; the commit is a (short) hash, maybe ``+dirty``.
NAME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})-(?P<commit>[0-9a-f]{4,40}(?:\+dirty)?|unknown)"
    r"(?P<suffix>-[^.]+)?\.(?P<ext>[A-Za-z0-9]+)$"
)
#: Which file of a result the index links, by extension (then any other, by name).
PRIMARY = ("md", "json")


def parse_name(name: str) -> tuple[str, str, str, str] | None:
    """``(date, commit, suffix, ext)`` of a result file name (suffix with its leading ``-``, or
    ``""``), or None for a name that does not follow the pattern."""
    match = NAME.match(name)
    if match is None:
        return None
    return match["date"], match["commit"], match["suffix"] or "", match["ext"]


@dataclass
class Result:
    """One result: the files of one ``<date>-<commit><suffix>`` stem."""

    folder: str
    stem: str
    date: str
    commit: str
    suffix: str
    files: dict[str, str] = field(default_factory=dict)  # extension -> file name
    title: str | None = None
    command: str | None = None

    @property
    def primary(self) -> str:
        """The file the index links: the ``.md``, else the ``.json``, else the first by name."""
        for ext in PRIMARY:
            if ext in self.files:
                return self.files[ext]
        return sorted(self.files.values())[0]

    @property
    def others(self) -> list[str]:
        return sorted(name for name in self.files.values() if name != self.primary)


@dataclass
class Series:
    """The results of one topic folder that share a suffix, newest first."""

    folder: str
    suffix: str
    results: list[Result]

    @property
    def current(self) -> Result:
        return self.results[0]

    @property
    def superseded(self) -> list[Result]:
        return self.results[1:]

    @property
    def label(self) -> str:
        return self.suffix.lstrip("-") or "(no suffix)"


def git_commits(repo: Path) -> list[str]:
    """Full hashes of ``git log`` from HEAD in ``repo``, newest first; ``[]`` without git."""
    try:
        out = subprocess.run(
            ["git", "log", "--format=%H", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return out.split()


def _commit_rank(commit: str, commits: Sequence[str]) -> int:
    """Position of ``commit`` (a short hash, maybe ``+dirty``) from the oldest commit of
    ``commits`` (newest first, as ``git log`` prints them); -1 when git does not know it."""
    base = commit.removesuffix("+dirty")
    for index, full in enumerate(commits):
        if full.startswith(base) or base.startswith(full):
            return len(commits) - 1 - index
    return -1


def _first_heading(path: Path) -> str | None:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip() or None
    return None


def _command(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    command = data.get("command") if isinstance(data, dict) else None
    return command if isinstance(command, str) and command else None


def build_index(
    results: Path, commits: Sequence[str] | None = None
) -> tuple[dict[str, list[Series]], dict[str, list[str]]]:
    """Series per topic folder of ``results``, and the files that follow no result pattern.

    Args:
        results: the results folder (topic folders inside it).
        commits: full or short hashes, newest first (``git log`` order); None: ask git in
            ``results``.

    Returns:
        ``(series, other)``: ``series[folder]`` sorted by suffix, each series newest first;
        ``other[folder]`` the names of files there that are no results (folder ``""``: the
        results folder itself, without this index).
    """
    results = Path(results)
    if commits is None:
        commits = git_commits(results)
    series: dict[str, list[Series]] = {}
    other: dict[str, list[str]] = {}
    loose = sorted(p.name for p in results.iterdir() if p.is_file() and p.name != INDEX_NAME)
    if loose:
        other[""] = loose
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        stems: dict[str, Result] = {}
        strays: list[str] = []
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            parsed = parse_name(path.name)
            if parsed is None:
                strays.append(path.name)
                continue
            date, commit, suffix, ext = parsed
            stem = path.name[: -len(ext) - 1]
            result = stems.setdefault(stem, Result(folder.name, stem, date, commit, suffix))
            result.files[ext] = path.name
            if ext == "md":
                result.title = _first_heading(path)
            elif ext == "json":
                result.command = _command(path)
        groups: dict[str, list[Result]] = {}
        for result in stems.values():
            groups.setdefault(result.suffix, []).append(result)
        if groups:
            series[folder.name] = [
                Series(
                    folder.name,
                    suffix,
                    sorted(
                        groups[suffix],
                        key=lambda r: (r.date, _commit_rank(r.commit, commits), r.stem),
                        reverse=True,
                    ),
                )
                for suffix in sorted(groups)
            ]
        if strays:
            other[folder.name] = strays
    return series, other


def _code(text: str) -> str:
    """``text`` as an inline code span (longer fences when it holds backticks)."""
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _link(folder: str, name: str) -> str:
    return f"[{name}]({folder}/{name})" if folder else f"[{name}]({name})"


def _entry(result: Result) -> str:
    parts = [_link(result.folder, result.primary)]
    if result.others:
        others = (f"[{n.rsplit('.', 1)[-1]}]({result.folder}/{n})" for n in result.others)
        parts.append("(also " + ", ".join(others) + ")")
    if result.title:
        parts.append(f"— {result.title}")
    if result.command:
        parts.append(f"— {_code(result.command)}")
    return " ".join(parts)


def render(results: Path, commits: Sequence[str] | None = None) -> str:
    """The index's markdown (see :func:`build_index` for ``commits``)."""
    series, other = build_index(results, commits)
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks.results_index`; do not edit, rerun it after adding",
        "results. Files are named `<date>-<commit>[-<suffix>].<ext>`; the results of a folder that",
        "share a suffix form a series, whose newest result (by date, then by the commit's place",
        "in `git log`, then by name) is current and supersedes the older ones. What the",
        "benchmarks measure and what came of them: [docs/benchmarks.md](../../docs/benchmarks.md).",
    ]
    for folder, folder_series in series.items():
        lines += ["", f"## {folder}", "", "| series | current | results |", "|---|---|---:|"]
        for s in folder_series:
            current = _link(folder, s.current.primary)
            lines.append(f"| {_code(s.label)} | {current} | {len(s.results)} |")
        for s in folder_series:
            lines += ["", f"### {folder}: {_code(s.label)}", ""]
            commands = {r.command for r in s.results if r.command}
            if len(commands) > 1:
                lines += [
                    f"Made by {len(commands)} different commands: check that an older result"
                    " measured the same thing before taking it as replaced.",
                    "",
                ]
            lines.append(f"- **current**: {_entry(s.current)}")
            for old in s.superseded:
                lines.append(f"- superseded by {s.current.stem}: {_entry(old)}")
        if folder in other:
            lines += ["", "Other files: " + ", ".join(_link(folder, n) for n in other[folder])]
    if "" in other:
        lines += ["", "## Other files", ""]
        lines += [f"- {_link('', name)}" for name in other[""]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.results_index", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="results folder")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the index is missing or out of date"
    )
    args = parser.parse_args(argv)
    target = args.results / INDEX_NAME
    text = render(args.results)
    if args.check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            print(
                f"{target} is out of date: run python -m benchmarks.results_index", file=sys.stderr
            )
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
