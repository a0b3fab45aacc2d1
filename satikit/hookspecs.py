"""pluggy markers and hook specifications of satikit.

Plugins write ``@satikit.hookimpl`` and never import pluggy. They are found through the
entry-point group ``satikit`` (``[project.entry-points.satikit]`` in their ``pyproject.toml``);
the built-in adapters in ``adapters/`` are registered exactly the same way.

Example plugin module::

    import satikit
    from satikit.protocols import Option

    @satikit.hookimpl
    def register_adapters(register):
        register("mygan", build_mygan, dims=(2,), options={"ngf": Option(64, "base width")})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    import click

    from satikit.protocols import Adapter, Option

__all__ = [
    "PROJECT_NAME",
    "AdapterRegistrar",
    "hookimpl",
    "hookspec",
    "register_adapters",
    "register_commands",
]

PROJECT_NAME = "satikit"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class AdapterRegistrar(Protocol):
    """The ``register`` callable passed to :func:`register_adapters`."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Adapter],
        *,
        dims: tuple[int, ...] = (2, 3),
        options: Mapping[str, Option] | None = None,
        test_options: Mapping[str, Any] | None = None,
        override: bool = False,
        importer: Callable[[Adapter, Path], Iterable[str]] | None = None,
        importer_help: str = "",
    ) -> None: ...


@hookspec
def register_adapters(register: AdapterRegistrar) -> None:
    """Register GAN adapters.

    Call ``register(name, factory, *, dims, options, test_options, override, importer,
    importer_help)`` once per adapter.

    :param register: the registrar. ``name`` is the registry name (``satikit train --adapter
        NAME``); ``factory(*, dims, in_channels, out_channels, domain_encoding, **options)``
        builds a :class:`satikit.protocols.Adapter`; ``dims`` are the supported numbers of
        spatial dimensions; ``options`` maps hyperparameter names to
        :class:`satikit.protocols.Option` (defaults, help, choices); ``test_options`` is the
        smallest configuration for fast tests. A name that is already registered is kept and a
        warning names both plugins, unless ``override=True``. ``importer(adapter, path)``
        (optional) loads a checkpoint in the family's own reference format for ``satikit
        train --init PATH`` and returns what it loaded (``ValueError`` for files it cannot
        read); satikit weights need no importer. ``importer_help`` says what it reads (shown
        by ``satikit train --help``). An option declared with ``Option(..., flag=F)`` is also
        ``satikit train --F VALUE``.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands to the ``satikit`` command line.

    :param cli: the root click group; call ``cli.add_command(...)`` or decorate with
        ``@cli.command()``.
    """
