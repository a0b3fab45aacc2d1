"""Bad input at the command line: one clear line and a non-zero exit, never a traceback.

The library raises ordinary exceptions whose message names the problem (``ValueError`` for
bad values and files, ``FileNotFoundError`` / ``FileExistsError`` for paths, ``OSError`` for a
full or read-only disk). Commands run their work inside :func:`user_errors`, which turns exactly
those into click errors; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

__all__ = ["BAD_INPUT", "one_line", "user_errors"]

#: Exceptions that mean "the input is wrong" (exit 2, like click's own usage errors).
BAD_INPUT: tuple[type[Exception], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (``OSError``: ``strerror: filename``)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


@contextmanager
def user_errors(io_note: str = "", *, usage: bool = True) -> Iterator[None]:
    """Run a command's work; bad input -> :class:`click.UsageError` (exit 2), other I/O
    failures (disk full, permission denied) -> :class:`click.ClickException` (exit 1).

    Args:
        io_note: appended to I/O failures, e.g. what happened to the output.
        usage: report bad input as a usage error (exit 2); False: as a plain failure (exit 1),
            for input found wanting only by the work itself (e.g. a dataset that cannot be
            generated, predictions without labels).
    """
    try:
        yield
    except click.ClickException:
        raise
    except BAD_INPUT as exc:
        if not usage:
            raise click.ClickException(one_line(exc)) from None
        raise click.UsageError(one_line(exc)) from None
    except OSError as exc:
        note = f" ({io_note})" if io_note else ""
        raise click.ClickException(one_line(exc) + note) from None
