"""The generated index of benchmark results (``benchmarks/results_index.py``) on a tiny fake
results folder: grouping into series by suffix, and which result of a series is current."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.results_index import build_index, main, parse_name, render


def _write(folder: Path, name: str, heading: str | None = None, command: str | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if name.endswith(".md"):
        path.write_text(f"# {heading}\n\n| a |\n" if heading else "| a |\n")
    elif name.endswith(".json"):
        path.write_text(json.dumps({"command": command} if command else {"rows": []}))
    else:
        path.write_bytes(b"\x89PNG")


def _fake_results(root: Path) -> Path:
    results = root / "results"
    topic = results / "topic"
    _write(topic, "2026-01-01-aaaaaaa-frontier.md", "Old frontier")
    _write(topic, "2026-01-01-aaaaaaa-frontier.json", command="bench frontier --seeds 0")
    _write(topic, "2026-01-02-bbbbbbb-frontier.md", "New frontier")
    _write(topic, "2026-01-02-bbbbbbb-frontier.png")
    _write(topic, "2026-01-02-bbbbbbb-frontier-validation.json", command="bench frontier --val")
    # same date: git order decides (1111111 is the later commit), not the name
    _write(topic, "2026-01-03-1111111.md", "One")
    _write(topic, "2026-01-03-2222222.md", "Two")
    _write(topic, "2026-01-02-3333333+dirty-boxplot.png")
    _write(topic, "notes.txt")
    _write(results / "other", "2026-01-05-4444444-8192.md", "Speed")
    _write(results, "demo.png")
    return results


# newest first, as ``git log`` prints them
COMMITS = ["1111111" + "0" * 33, "2222222" + "0" * 33, "bbbbbbb" + "0" * 33, "aaaaaaa" + "0" * 33]


def test_parse_name() -> None:
    assert parse_name("2026-12-03-063fe99+dirty-8192.json") == (
        "2026-12-03",
        "063fe99+dirty",
        "-8192",
        "json",
    )
    assert parse_name("2026-12-03-cf44d00.md") == ("2026-12-03", "cf44d00", "", "md")
    assert parse_name("2026-12-03-cf44d00-frontier-ft-cons2.png")[2] == "-frontier-ft-cons2"
    assert parse_name("notes.txt") is None
    assert parse_name("README.md") is None


def test_series_and_current(tmp_path: Path) -> None:
    series, other = build_index(_fake_results(tmp_path), COMMITS)
    assert sorted(series) == ["other", "topic"]
    by_suffix = {s.suffix: s for s in series["topic"]}
    assert sorted(by_suffix) == ["", "-boxplot", "-frontier", "-frontier-validation"]

    frontier = by_suffix["-frontier"]
    assert frontier.current.stem == "2026-01-02-bbbbbbb-frontier"
    assert frontier.current.primary == "2026-01-02-bbbbbbb-frontier.md"
    assert frontier.current.title == "New frontier"
    assert [r.stem for r in frontier.superseded] == ["2026-01-01-aaaaaaa-frontier"]
    assert frontier.superseded[0].command == "bench frontier --seeds 0"

    validation = by_suffix["-frontier-validation"]
    assert validation.current.primary.endswith(".json") and validation.superseded == []

    plain = by_suffix[""]
    assert plain.current.stem == "2026-01-03-1111111"  # later in git log, earlier by name
    assert [r.stem for r in plain.superseded] == ["2026-01-03-2222222"]
    assert other == {"": ["demo.png"], "topic": ["notes.txt"]}


def test_unknown_commits_fall_back_to_the_name(tmp_path: Path) -> None:
    series, _ = build_index(_fake_results(tmp_path), [])
    plain = next(s for s in series["topic"] if s.suffix == "")
    assert plain.current.stem == "2026-01-03-2222222"


def test_render_marks_current_and_superseded(tmp_path: Path) -> None:
    results = _fake_results(tmp_path)
    text = render(results, COMMITS)
    assert text == render(results, COMMITS)  # deterministic
    assert (
        "- **current**: [2026-01-02-bbbbbbb-frontier.md](topic/2026-01-02-bbbbbbb-frontier.md)"
        " (also [png](topic/2026-01-02-bbbbbbb-frontier.png)) — New frontier" in text
    )
    assert (
        "- superseded by 2026-01-02-bbbbbbb-frontier: [2026-01-01-aaaaaaa-frontier.md]"
        "(topic/2026-01-01-aaaaaaa-frontier.md) (also [json](topic/2026-01-01-aaaaaaa-frontier.json))"
        " — Old frontier — `bench frontier --seeds 0`" in text
    )
    assert "- **current**: [2026-01-03-1111111.md](topic/2026-01-03-1111111.md) — One" in text
    assert text.index("## other") < text.index("## topic")


def test_main_writes_and_checks(tmp_path: Path) -> None:
    results = _fake_results(tmp_path)
    assert main(["--results", str(results), "--check"]) == 1  # no index yet
    assert main(["--results", str(results)]) == 0
    assert (results / "README.md").is_file()
    assert main(["--results", str(results), "--check"]) == 0
    _write(results / "topic", "2026-02-01-5555555-frontier.md", "Newer")
    assert main(["--results", str(results), "--check"]) == 1
