"""The `satikit` command line: a click root group; each subcommand lives in `satikit.commands`.

Subcommand modules are imported lazily when click resolves them, so `satikit --help` stays fast
and a broken optional module cannot take the whole CLI down.
"""

from __future__ import annotations

import importlib

import click

from satikit import __version__

__all__ = ["cli"]

# command name -> "module:attribute" of the click command / group
_COMMANDS: dict[str, str] = {
    "dataset": "satikit.commands.dataset:dataset",
    "evaluate": "satikit.commands.evaluate:evaluate",
    "adapters": "satikit.commands.adapters:adapters",
    "train": "satikit.commands.train:train",
    "translate": "satikit.commands.translate:translate",
    "demo": "satikit.commands.demo:demo",
    "check-adapter": "satikit.commands.check_adapter:check_adapter",
    "bench": "satikit.commands.bench:bench",
}


class _LazyGroup(click.Group):
    """A click group whose built-in subcommands are imported on first use."""

    _plugin_commands_loaded = False

    def _load_plugin_commands(self) -> None:
        """Let plugins add commands (hook ``register_commands``), once, on first need."""
        if not self._plugin_commands_loaded:
            self._plugin_commands_loaded = True
            from satikit.plugins import load_plugin_commands

            load_plugin_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return sorted(set(super().list_commands(ctx)) | set(_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            self._load_plugin_commands()
        command = super().get_command(ctx, name)
        if command is None and name in _COMMANDS:
            module_name, attr = _COMMANDS[name].split(":")
            try:
                command = getattr(importlib.import_module(module_name), attr)
            except ImportError as exc:  # a missing optional dependency must not kill the CLI
                click.echo(f"satikit: command {name!r} unavailable: {exc}", err=True)
                return None
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="satikit")
def cli() -> None:
    """satikit: translate images far larger than one GAN forward pass, without seams (SATI)."""
