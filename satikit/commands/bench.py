"""`satikit bench`: run the benchmarks of a source checkout (they live in ``benchmarks/``)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import click

from satikit.commands.errors import user_errors

__all__ = ["bench"]


def _benchmarks(module: str) -> ModuleType:
    """Import ``benchmarks.<module>`` from the checkout satikit was installed from."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / f"{module}.py").is_file():
        raise click.UsageError(
            "satikit bench needs the source checkout's benchmarks/ folder "
            "(install with `pip install -e .` from a clone)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"benchmarks.{module}")


@click.group()
def bench() -> None:
    """Quality and speed benchmarks (results go to benchmarks/results/)."""


@bench.command()
@click.option(
    "--config",
    "config_name",
    default="cpu-small",
    show_default=True,
    help="benchmarks/configs/<NAME>.toml or a path to a TOML file",
)
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    help="only this adapter of the config (repeatable) [default: all the config lists]",
)
def quality(config_name: str, adapters: tuple[str, ...]) -> None:
    """Strategies x adapters on the circle dataset; resumes from benchmarks/cache/."""
    module = _benchmarks("quality")
    with user_errors():
        module.run_benchmark(config_name, adapters=adapters, echo=click.echo)


@bench.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def speed(args: tuple[str, ...]) -> None:
    """Engine timing ratios (arguments go to benchmarks/engine_speed.py; try --help)."""
    _benchmarks("engine_speed").main(list(args))
