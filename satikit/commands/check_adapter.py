"""``satikit check-adapter NAME``: run the conformance kit on an adapter's smallest config."""

from __future__ import annotations

import json

import click

__all__ = ["check_adapter"]


@click.command("check-adapter")
@click.argument("name")
@click.option(
    "--dims",
    "dims_list",
    type=int,
    multiple=True,
    help="Spatial dims to check (repeatable; default: every dims the adapter supports).",
)
@click.option(
    "--size", type=int, default=None, help="Crop / tile size in px (default: 32 in 2D, 16 in 3D)."
)
@click.option(
    "-o",
    "--option",
    "overrides",
    type=(str, str),
    multiple=True,
    metavar="KEY VALUE",
    help="Override one of the adapter's test options (repeatable).",
)
@click.option("--channels", type=int, default=3, show_default=True, help="Channels of X and Y.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def check_adapter(
    name: str,
    dims_list: tuple[int, ...],
    size: int | None,
    overrides: tuple[tuple[str, str], ...],
    channels: int,
    seed: int,
    device: str,
    as_json: bool,
) -> None:
    """Check that adapter NAME conforms to what SATI needs, on its smallest configuration.

    Prints one PASS / FAIL / SKIP line per check (shapes and ranges, host step, SATI step,
    state dict, determinism, tiling with each strategy) and exits with status 1 if any fails.

    Example: satikit check-adapter cyclegan --dims 2
    """
    from satikit.plugins import get_adapter_info
    from satikit.testing import check_adapter as run_checks

    try:
        info = get_adapter_info(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    bad = [d for d in dims_list if d not in info.dims]
    if bad:
        raise click.BadParameter(
            f"adapter {name!r} supports dims {list(info.dims)}, not {bad}", param_hint="--dims"
        )
    reports = []
    for dims in dims_list or info.dims:
        try:
            report = run_checks(
                info,
                dims=dims,
                in_channels=channels,
                options=dict(overrides),
                size=size,
                seed=seed,
                device=device,
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="-o") from None
        reports.append(report)
        if not as_json:
            click.echo(str(report))
    ok = all(report.ok for report in reports)
    if as_json:
        click.echo(json.dumps([report.to_dict() for report in reports], indent=2))
    else:
        total = sum(len(report.results) for report in reports)
        failed = sum(len(report.failures) for report in reports)
        verdict = "conforms" if ok else f"does NOT conform ({failed} failed)"
        click.echo(f"{name}: {verdict} ({total} checks)")
    if not ok:
        raise SystemExit(1)
