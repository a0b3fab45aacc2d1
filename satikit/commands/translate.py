"""``satikit translate``: translate TIFF files or folders with a trained run."""

from __future__ import annotations

import time

import click

from satikit.commands.errors import user_errors
from satikit.commands.options import threads_option

__all__ = ["translate"]


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


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("source", metavar="INPUT", type=click.Path(exists=True))
@click.argument("target", metavar="OUTPUT", type=click.Path())
@click.option(
    "--strategy",
    type=click.Choice(["none", "simple", "weighted", "sati"]),
    help="Tiling strategy [default: the run's: sati for SATI runs, else weighted].",
)
@click.option("--tile", type=_Sizes(), help="Tile size [default: the run's].")
@click.option("--overlap", type=_Sizes(), help="Tile overlap [default: the run's, 25% of tile].")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--order",
    type=click.Choice(["raster", "wavefront"]),
    default="wavefront",
    show_default=True,
    help="SATI tile order (same output).",
)
@click.option(
    "--window",
    type=click.Choice(["gaussian", "pyramid"]),
    default="gaussian",
    show_default=True,
    help="Blending window of the weighted strategy.",
)
@click.option(
    "--seam",
    type=click.Choice(["middle", "start"]),
    default="middle",
    show_default=True,
    help="Cut tiles in the middle of the overlap (paper III-E) or at its start "
    "(the 'w/o stitching strategy' ablation).",
)
@click.option("--style-seed", type=int, help="Image-level seed for adapters with styles.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@threads_option
def translate(
    run_dir: str,
    source: str,
    target: str,
    strategy: str | None,
    tile,
    overlap,
    batch_size: int,
    device: str,
    order: str,
    window: str,
    seam: str,
    style_seed: int | None,
    force: bool,
    quiet: bool,
) -> None:
    """Translate INPUT (a TIFF, .zarr or .npy image, or a folder of TIFFs) with the run in
    RUN_DIR into OUTPUT (same formats), out of core.

    \b
    Example:
      satikit translate runs/sati big_x.tif big_y.tif --strategy sati
    """
    from satikit.translate import translate_path

    started = time.perf_counter()
    with user_errors(f"no partial output was left at {target}"):
        written = translate_path(
            run_dir,
            source,
            target,
            device=device,
            strategy=strategy,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            order=order,
            window=window,
            seam=seam,
            style_seed=style_seed,
            overwrite=force,
            progress=not quiet,
        )
    click.echo(
        f"translated {len(written)} image(s) in {time.perf_counter() - started:.1f} s -> {target}"
    )
