"""``satikit dataset``: generate the circle benchmark (2D / 3D), ellipsoid label volumes, and
(beyond the paper) textured slides and a re-stained real image, both with a known true Y."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from satikit.commands.errors import user_errors
from satikit.data.circles import label_dtype
from satikit.data.datasets import (
    make_circle_dataset,
    make_ellipsoid_dataset,
    make_restain_dataset,
    make_textured_dataset,
)
from satikit.data.ellipsoids import EllipsoidParams
from satikit.data.presets import get_preset
from satikit.data.restain import BUNDLED, STAIN_MAPS, load_source, split_geometry
from satikit.data.textured import TexturedParams

__all__ = ["dataset"]

F = TypeVar("F", bound=Callable[..., Any])


def _refuse_non_empty(out_dir: Path, force: bool) -> None:
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise click.ClickException(f"{str(out_dir)!r} is not empty; pass --force to overwrite")


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def _generation_options(command: F) -> F:
    """``--seed``, ``--force`` and ``--progress``, the last options of every dataset command."""
    for option in (
        click.option("--progress/--no-progress", default=True, show_default=True),
        click.option(
            "--force", is_flag=True, help="Write into a non-empty OUT_DIR (stale images go)."
        ),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True),
    ):
        command = option(command)
    return command


@click.group()
def dataset() -> None:
    """Generate benchmark datasets (layout: train/x, train/y, train/labels, test/x, test/labels;
    textured / restain: test/y_true, the known true Y)."""


@dataset.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--preset",
    type=click.Choice(["paper", "small", "large-objects", "density-gradient"]),
    default="paper",
    show_default=True,
    help="paper: 2048^2, 1000 x 40 px circles (section II); small: the same ratios / 4; "
    "large-objects (2D): small's 512^2 images with 378 x 16 px circles, as wide as the 25 % "
    "overlap of a 64 px tile, so tiling cuts objects no tile sees whole; density-gradient "
    "(2D): small's geometry with the circle density falling from 1.8x to 0.2x the mean down "
    "the image, so tiles differ in their instance-norm statistics.",
)
@click.option(
    "--dims",
    type=click.Choice(["2", "3"]),
    default="2",
    show_default=True,
    help="2: circles in images; 3: spheres in volumes.",
)
@click.option("--size", type=click.IntRange(min=1), help="Image edge length in px.")
@click.option("--count", type=click.IntRange(min=0), help="Circles per image.")
@click.option("--diameter", type=click.IntRange(min=1), help="Circle diameter in px.")
@click.option("--noise-sigma", type=click.FloatRange(min=0), help="Noise sigma (8-bit scale).")
@click.option("--n-images", type=click.IntRange(min=0), help="Training images per domain.")
@click.option("--n-test", type=click.IntRange(min=0), help="Held-out test images.")
@click.option(
    "--density-gradient",
    type=click.FloatRange(0, 1, max_open=True),
    help="Circle density falls linearly down the image from 1+G to 1-G times the mean "
    "(0: uniform, the paper's).",
)
@_generation_options
def circles(
    out_dir: Path, preset: str, dims: str, seed: int, force: bool, progress: bool, **sizes: Any
) -> None:
    """Circle benchmark: white circles (X) and red/green/blue circles (Y), with labels."""
    with user_errors():
        params = get_preset(preset, int(dims)).replace(**sizes)
    _refuse_non_empty(out_dir, force)
    voxels = math.prod(params.shape)
    per_image = voxels * (3 + label_dtype(params.count).itemsize)
    n_files = 2 * params.n_images + params.n_test
    click.echo(
        f"circles {params.dims}D: {'x'.join(map(str, params.shape))} px, {params.count} x "
        f"{params.diameter} px (~{params.coverage:.0%} cover), sigma {params.noise_sigma:g}; "
        f"{params.n_images} X + {params.n_images} Y train, {params.n_test} test "
        f"-> {out_dir} (~{_gib(n_files * per_image)})",
        err=True,
    )
    start = time.perf_counter()
    with user_errors(usage=False):
        make_circle_dataset(out_dir, params, seed=seed, progress=progress, force=force)
    click.echo(
        f"wrote {n_files} images + labels to {out_dir} in {time.perf_counter() - start:.1f} s"
    )


@dataset.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", type=click.IntRange(min=1), help="Volume edge length (paper: 256).")
@click.option("--count", type=click.IntRange(min=0), help="Ellipsoids per volume.")
@click.option(
    "--semi-axes",
    type=(float, float),
    default=None,
    help="Semi-axis range LOW HIGH in px (default 4 8).",
)
@click.option("--noise-sigma", type=click.FloatRange(min=0), help="Noise sigma (paper: 3.33).")
@click.option("--n-images", type=click.IntRange(min=0), help="Training volumes (default 4).")
@click.option("--n-test", type=click.IntRange(min=0), help="Held-out volumes (default 1).")
@_generation_options
def ellipsoids(out_dir: Path, seed: int, force: bool, progress: bool, **sizes: Any) -> None:
    """Synthetic nucleus volumes (section IV-C): ellipsoids 130 on 10, noise sigma 3.33."""
    with user_errors():
        params = EllipsoidParams().replace(**sizes)
    _refuse_non_empty(out_dir, force)
    start = time.perf_counter()
    with user_errors(usage=False):
        make_ellipsoid_dataset(out_dir, params, seed=seed, progress=progress, force=force)
    n_files = params.n_images + params.n_test
    click.echo(
        f"wrote {n_files} volumes + labels to {out_dir} in {time.perf_counter() - start:.1f} s"
    )


@dataset.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", type=click.IntRange(min=1), help="Image edge length in px [512].")
@click.option(
    "--tile",
    type=click.IntRange(min=1),
    help="Inference tile the fields and clusters are scaled to, px [128].",
)
@click.option("--noise-sigma", type=click.FloatRange(min=0), help="Pixel noise (8-bit) [8].")
@click.option("--n-images", type=click.IntRange(min=0), help="Training images per domain [48].")
@click.option("--n-test", type=click.IntRange(min=0), help="Held-out test images [8].")
@_generation_options
def textured(out_dir: Path, seed: int, force: bool, progress: bool, **sizes: Any) -> None:
    """Textured slides: clustered dark discs, fine texture, brightness and colour fields
    several tiles long (X); Y colours each pixel by its intensity; test/y_true is the truth."""
    with user_errors():
        params = TexturedParams().replace(**sizes)
    _refuse_non_empty(out_dir, force)
    n_files = 2 * params.n_images + 2 * params.n_test
    click.echo(
        f"textured: {params.size}^2 px for {params.tile} px tiles; {params.n_images} X + "
        f"{params.n_images} Y train, {params.n_test} test + true Y -> {out_dir} "
        f"(~{_gib(n_files * 3 * params.size**2)})",
        err=True,
    )
    start = time.perf_counter()
    with user_errors(usage=False):
        make_textured_dataset(out_dir, params, seed=seed, progress=progress, force=force)
    click.echo(f"wrote {n_files} images to {out_dir} in {time.perf_counter() - start:.1f} s")


@dataset.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--source",
    default=next(iter(BUNDLED)),
    show_default=True,
    metavar="IMAGE",
    help=f"A bundled scikit-image picture ({', '.join(BUNDLED)}) or an 8-bit RGB image file "
    "(TIFF, PNG, JPEG).",
)
@click.option(
    "--box",
    type=(
        click.IntRange(min=0),
        click.IntRange(min=0),
        click.IntRange(min=1),
        click.IntRange(min=1),
    ),
    default=None,
    metavar="TOP LEFT HEIGHT WIDTH",
    help="Use only this part of the source [retina: its central 960 px square; else all].",
)
@click.option(
    "--crop", type=click.IntRange(min=1), default=128, show_default=True, help="Training crop, px."
)
@click.option(
    "--n-images",
    type=click.IntRange(min=0),
    default=48,
    show_default=True,
    help="Training crops per domain.",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="Share of the rows, at the bottom, kept apart for testing.",
)
@click.option(
    "--mosaic",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="mosaic/x holds N x N mirrored copies of the test part.",
)
@click.option(
    "--tile",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Inference tile the task is meant for (satikit evaluate's default grid).",
)
@click.option(
    "--stain-map",
    type=click.Choice(list(STAIN_MAPS)),
    default=next(iter(STAIN_MAPS)),
    show_default=True,
    help="dab-to-eosin: haematoxylin stays, DAB is redrawn with eosin's colour and eosin with "
    "DAB's.",
)
@_generation_options
def restain(
    out_dir: Path,
    source: str,
    box: tuple[int, int, int, int] | None,
    seed: int,
    force: bool,
    progress: bool,
    **options: Any,
) -> None:
    """Real image, known truth: X is the source, Y a fixed re-staining of it.

    X crops come from the left and Y crops from the right half of the top rows; the bottom
    rows (test/x, with test/y_true) and their mirrored mosaic (mosaic/x, mosaic/y_true) are
    kept apart for testing.
    """
    with user_errors():
        loaded = load_source(source, box)
        split_geometry(loaded.image.shape[:2], options["crop"], options["test_fraction"])
    _refuse_non_empty(out_dir, force)
    start = time.perf_counter()
    with user_errors(usage=False):
        manifest = make_restain_dataset(
            out_dir, loaded, seed=seed, progress=progress, force=force, **options
        )
    geometry = manifest["geometry"]
    test_h, test_w = geometry["test"][2:]
    mosaic_h, mosaic_w = geometry["mosaic_shape"]
    click.echo(
        f"wrote {2 * options['n_images']} training crops of {options['crop']} px, a "
        f"{test_h} x {test_w} test part and its {mosaic_h} x {mosaic_w} mosaic (with true Y) "
        f"of {manifest['source']['name'] or source} to {out_dir} in "
        f"{time.perf_counter() - start:.1f} s"
    )
