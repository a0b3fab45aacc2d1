"""``satikit adapters``: list registered adapters, or one adapter's options."""

from __future__ import annotations

import json

import click

from satikit.plugins import get_adapter_info, list_adapters

__all__ = ["adapters"]


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    )


def _options_rows(name: str) -> tuple[list[list[str]], list[dict[str, object]]]:
    info = get_adapter_info(name)
    rows = [["OPTION", "DEFAULT", "CHOICES", "HELP"]]
    records = []
    for key, option in info.options.items():
        choices = "|".join(map(str, option.choices)) if option.choices else ""
        rows.append([key, repr(option.default), choices, option.help])
        records.append(
            {
                "name": key,
                "default": option.default,
                "help": option.help,
                "choices": list(option.choices) if option.choices else None,
                "test": info.test_options.get(key),
            }
        )
    return rows, records


@click.command()
@click.option("--options", "options_of", metavar="NAME", help="List the options of adapter NAME.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def adapters(options_of: str | None, as_json: bool) -> None:
    """List the GAN adapters that plugins registered: name, plugin, version, dimensions.

    Example: satikit adapters --options cyclegan
    """
    if options_of is not None:
        try:
            rows, records = _options_rows(options_of)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--options") from None
        click.echo(json.dumps(records, indent=2) if as_json else _table(rows))
        return
    infos = [get_adapter_info(name) for name in list_adapters()]
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"name": i.name, "plugin": i.plugin, "version": i.version, "dims": list(i.dims)}
                    for i in infos
                ],
                indent=2,
            )
        )
        return
    if not infos:
        click.echo("no adapters registered (is a satikit plugin installed?)")
        return
    rows = [["NAME", "PLUGIN", "VERSION", "DIMS"]]
    rows += [[i.name, i.plugin, i.version or "-", ",".join(f"{d}D" for d in i.dims)] for i in infos]
    click.echo(_table(rows))
