"""``satikit translate``: translate TIFF files or folders with a trained run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from satikit.commands.errors import user_errors
from satikit.commands.options import INPUT_RANGE, threads_option

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


@contextmanager
def _stopped() -> Iterator[None]:
    """Under torchrun: another process failed (it printed its error); say so in one line."""
    from satikit.comm import PeerFailure

    try:
        yield
    except PeerFailure as exc:
        if exc.quiet:
            raise click.exceptions.Exit(1) from None
        raise click.ClickException(
            f"{exc}; the tiles written so far are kept: run the same command with --resume "
            "to continue"
        ) from None


@contextmanager
def _interruption() -> Iterator[None]:
    """Ctrl-C: one line saying how to continue (the partial output is kept)."""
    try:
        yield
    except KeyboardInterrupt:
        raise click.ClickException(
            "interrupted; the tiles written so far are kept: run the same command with "
            "--resume to continue"
        ) from None


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
@click.option(
    "--overlap",
    type=_Sizes(),
    help="Tile overlap [default: 0 for simple (tiles side by side); the run's for weighted "
    "and sati, 25% of the tile].",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--order",
    type=click.Choice(["auto", "raster", "wavefront"]),
    default="auto",
    show_default=True,
    help="SATI tile order (same output): auto = wavefront with --batch-size > 1 on a GPU or "
    "for a volume, else raster.",
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
@click.option(
    "--margin",
    type=_Sizes(),
    help="SATI only (beyond the paper): tiles overlap by --overlap plus this many px, so the "
    "strip each tile takes from its predecessors ends inside them, not at their border "
    "[default: the run's, else 0].",
)
@click.option(
    "--norm",
    type=click.Choice(["tile", "thumbnail", "kernel", "dense"]),  # stitching.norm.NORMS
    default="tile",
    show_default=True,
    help="Where the generator's instance norms take their statistics from: each tile's own "
    "(tile), one pass over a downscaled whole image (thumbnail: TIN, Chen et al. AAAI 2022), "
    "a kernel average over neighbouring tiles' (kernel: KIN, Ho et al. ECCV 2022; a "
    "second pass over all tiles), or per pixel, interpolated between the tile centres around "
    "it (dense: Dense Normalization, Ho et al. ECCV 2024; the same second pass). Tiled "
    "strategies only.",
)
@click.option(
    "--norm-kernel",
    default="3",
    show_default=True,
    metavar="SIZE[,SIZE...][:constant|gaussian[:SIGMA]]",
    help="--norm kernel: odd kernel size in tiles (per dim if several) and its weights.",
)
@click.option(
    "--thumbnail-scale",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.25,
    show_default=True,
    help="--norm thumbnail: thumbnail size / image size per dim (1: full resolution).",
)
@click.option("--style-seed", type=int, help="Image-level seed for adapters with styles.")
@click.option(
    "--style-ref",
    type=click.Path(exists=True),
    help="Reference Y image whose style every tile uses (adapters with styles, e.g. MUNIT); "
    "overrides --style-seed.",
)
@click.option(
    "--input-range",
    type=INPUT_RANGE,
    metavar="LO,HI|auto",
    help="Map input values LO..HI onto the range the run was trained on (clipping beyond), "
    "e.g. 0,4095 for 12-bit data; auto: each image's own min and max (from a sample). Needed "
    "for integer images of another dtype than the run's and float images outside [0, 1] "
    "[default: integers of the run's dtype at their full range, floats on [0, 1]].",
)
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted translation into OUTPUT from the tiles already written, "
    "with the settings it was started with (folders: file by file).",
)
@click.option(
    "--pyramid-tile",
    type=click.IntRange(16, 4096),
    help="OUTPUT.ome.tif / OUTPUT.ome.zarr: tile (chunk) size of every pyramid level, a "
    "multiple of 16; levels stop once one tile holds the image [default: 256].",
)
@click.option(
    "--compression",
    type=click.Choice(["zlib", "none"]),
    help="OUTPUT.ome.tif / OUTPUT.ome.zarr: lossless zlib (deflate), or none [default: zlib].",
)
@click.option(
    "--quiet", is_flag=True, help="No progress bar, and no line of the settings used per image."
)
@threads_option
def translate(**params: Any) -> None:
    """Translate INPUT (a TIFF or OME-TIFF, .zarr or OME-Zarr, or .npy image, or a folder of
    TIFFs) with the run in RUN_DIR into OUTPUT, out of core. OUTPUT's suffix picks the format:
    .ome.tif (tiled pyramidal OME-TIFF, for QuPath / OpenSlide-style readers), .ome.zarr
    (OME-Zarr multiscale image, for napari), .tif, .zarr or .npy (one plain array). The OME
    outputs carry the input's pixel sizes and channel names. Before each image one line says
    the settings used (strategy, tile, overlap, margin, statistics) and how its values are read.

    Started by torchrun (torchrun --standalone --nproc_per_node N -m satikit translate ...),
    the processes share the work: a folder's files, or one image's rows (none / simple /
    weighted) or bands of tile rows, pipelined (sati); the output is the same as one
    process's, and --resume works the same.

    \b
    Example:
      satikit translate runs/sati big_x.tif big_y.tif --strategy sati
      satikit translate runs/sati slide.ome.tif slide_y.ome.tif     # pyramid for QuPath
      satikit translate runs/sati big_x.tif big_y.tif --resume   # after an interruption
      satikit translate runs/cyclegan big_x.tif big_y.tif --strategy weighted --norm kernel
    """
    from satikit import distributed

    target = params["target"]
    started = time.perf_counter()
    note = f"no partial output was left at {target}"
    with (
        _stopped(),
        user_errors(note),
        _interruption(),
        distributed.session(params["device"]) as (ctx, device),
    ):
        options = dict(
            device=device,
            overwrite=params["force"],
            resume=params["resume"],
            pyramid_tile=params["pyramid_tile"],
            compression=params["compression"],
            progress=not params["quiet"] and ctx.is_main,
            say=_stderr,
            announce=None if params["quiet"] else _stderr,
            **_settings(params),
        )
        written = _translate(ctx, params["run_dir"], params["source"], target, options)
    if ctx.is_main:
        processes = f" with {ctx.world_size} processes" if ctx.distributed else ""
        click.echo(
            f"translated {len(written)} image(s) in {time.perf_counter() - started:.1f} s"
            f"{processes} -> {target}"
        )


def _stderr(message: str) -> None:
    click.echo(message, err=True)


def _settings(params: dict[str, Any]) -> dict[str, Any]:
    """The inference settings among the options; with ``--resume`` only those given (the
    recorded ones stand in for the others)."""
    from satikit.checkpoint import InferenceSettings

    settings = {key: params[key] for key in InferenceSettings.names()}
    if params["resume"]:
        context = click.get_current_context()
        settings = {
            key: value
            for key, value in settings.items()
            if context.get_parameter_source(key) != click.core.ParameterSource.DEFAULT
        }
    return settings


def _translate(ctx: Any, run_dir: str, source: str, target: str, options: dict) -> list:
    """Translate in this process, or share the work out over torchrun's processes."""
    if ctx.distributed:
        from satikit.comm import Comm
        from satikit.translate_distributed import translate_path_distributed

        comm = Comm.create(ctx)
        return translate_path_distributed(run_dir, source, target, comm=comm, **options)
    from satikit.translate import translate_path

    return translate_path(run_dir, source, target, **options)
