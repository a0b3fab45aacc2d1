"""Click options that several commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["INPUT_RANGE", "threads_option"]

F = TypeVar("F", bound=Callable[..., Any])


def _set_threads(ctx: click.Context, param: click.Parameter, threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def threads_option(command: F) -> F:
    """``--threads N``: set torch's CPU threads before the command runs (default: torch's)."""
    return click.option(
        "--threads",
        type=click.IntRange(min=1),
        expose_value=False,
        callback=_set_threads,
        help="CPU threads for torch [default: torch's]; 1 is often fastest for small "
        "models on a busy machine.",
    )(command)


class _InputRange(click.ParamType):
    """``LO,HI`` (two numbers) or ``auto``."""

    name = "LO,HI|auto"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        from satikit.inputs import parse_input_range

        try:
            return parse_input_range(value)
        except ValueError:
            self.fail(f"expected LO,HI (two numbers, LO < HI) or auto, got {value!r}", param, ctx)


#: ``--input-range``'s type: a pair of floats, ``"auto"`` (see :mod:`satikit.inputs`).
INPUT_RANGE = _InputRange()
