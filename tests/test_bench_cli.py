"""``satikit bench NAME``: every benchmark with an entry point is one command."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from click.testing import CliRunner

from satikit.cli import cli
from satikit.commands.bench import BENCHMARKS

ROOT = Path(__file__).resolve().parent.parent / "benchmarks"


def _runnable_modules() -> set[str]:
    """The benchmark modules that run as ``python -m benchmarks.<module>``."""
    found = set()
    for path in ROOT.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(
            isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body
        ):
            found.add(path.stem)
    return found


def test_every_runnable_benchmark_is_a_bench_command():
    listed = {module for module, _ in BENCHMARKS.values()} | {"quality"}
    assert _runnable_modules() == listed


def test_each_bench_command_calls_a_main_that_takes_argv():
    import importlib

    for module, _ in BENCHMARKS.values():
        main_fn = importlib.import_module(f"benchmarks.{module}").main
        assert "argv" in inspect.signature(main_fn).parameters, module


def test_bench_help_lists_every_benchmark_and_passes_arguments_on():
    runner = CliRunner()
    listing = runner.invoke(cli, ["bench", "--help"])
    assert listing.exit_code == 0, listing.output
    for name in [*BENCHMARKS, "quality"]:
        assert f"  {name} " in listing.output
    result = runner.invoke(cli, ["bench", "stat-probe", "--help"])
    assert result.exit_code == 0
    assert "usage: satikit bench stat-probe" in result.output
