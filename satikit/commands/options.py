"""Click options that several commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["INPUT_RANGE", "SIZES", "inference_options", "threads_option"]

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
        from satikit.io.input_range import parse_input_range

        try:
            return parse_input_range(value)
        except ValueError:
            self.fail(f"expected LO,HI (two numbers, LO < HI) or auto, got {value!r}", param, ctx)


#: ``--input-range``'s type: a pair of floats, ``"auto"`` (see :mod:`satikit.io.input_range`).
INPUT_RANGE = _InputRange()


class _Sizes(click.ParamType):
    """An int, or comma-separated ints (one per spatial dim)."""

    name = "N[,N...]"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, (int, tuple)):
            return value
        try:
            sizes = tuple(int(part) for part in str(value).split(","))
        except ValueError:
            self.fail(f"expected an integer or comma-separated integers, got {value!r}", param, ctx)
        return sizes[0] if len(sizes) == 1 else sizes


#: Tile sizes: ``128`` or ``128,64`` (one per spatial dim).
SIZES = _Sizes()


def _click_type(metadata: Any) -> Any:
    """The click type of a setting's ``kind`` (see :mod:`satikit.settings`)."""
    kind = metadata["kind"]
    if kind == "choice":
        return click.Choice(list(metadata["choices"]))
    types = {
        "sizes": SIZES,
        "count": click.IntRange(min=1),
        "fraction": click.FloatRange(0, 1, min_open=True),
        "int": int,
        "text": str,
        "path": click.Path(exists=True),
        "range": INPUT_RANGE,
    }
    return types[kind]


def inference_options(command: F) -> F:
    """One option per :class:`~satikit.settings.InferenceSettings` field (``--batch-size`` for
    ``batch_size``), its type, default and help from the field: the settings are written once."""
    import dataclasses

    from satikit.settings import InferenceSettings

    for f in reversed(dataclasses.fields(InferenceSettings)):
        default = f.default
        help = f.metadata["help"]
        extra: dict[str, Any] = {}
        if f.name in InferenceSettings.RUN_METHOD_FIELDS:
            # not given: None, so that a run's recorded method (a shipped model's statistics)
            # stands for its own strategy (satikit.checkpoint.config.resolve_inference)
            help += f" [default: the run's recorded setting for its strategy, else {default}]"
        elif default is not None:
            extra = {"default": str(default) if f.metadata["kind"] == "text" else default}
            extra["show_default"] = True
        if "metavar" in f.metadata:
            extra["metavar"] = f.metadata["metavar"]
        command = click.option(
            "--" + f.name.replace("_", "-"),
            f.name,
            type=_click_type(f.metadata),
            help=help,
            **extra,
        )(command)
    return command
