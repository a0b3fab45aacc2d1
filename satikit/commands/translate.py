"""``satikit translate``: translate TIFF files or folders with a trained run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from satikit.commands.errors import user_errors
from satikit.commands.options import inference_options, threads_option

__all__ = ["translate"]


@contextmanager
def _stopped() -> Iterator[None]:
    """Under torchrun: another process failed (it printed its error); say so in one line."""
    from satikit.translation.comm import PeerFailure

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
@inference_options
@click.option("--device", default="auto", show_default=True)
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
    from satikit.devices import session

    target = params["target"]
    started = time.perf_counter()
    note = f"no partial output was left at {target}"
    with (
        _stopped(),
        user_errors(note),
        _interruption(),
        session(params["device"]) as (ctx, device),
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
    from satikit.settings import InferenceSettings

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
        from satikit.translation.comm import Comm
        from satikit.translation.distributed import translate_path_distributed

        comm = Comm.create(ctx)
        return translate_path_distributed(run_dir, source, target, comm=comm, **options)
    from satikit.translation.translate import translate_path

    return translate_path(run_dir, source, target, **options)
