"""Click options that several commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["threads_option"]

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
