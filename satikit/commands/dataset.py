"""``satikit dataset``: generate the circle benchmark (2D / 3D) and ellipsoid label volumes."""

from __future__ import annotations

import math
import time
from pathlib import Path

import click

from satikit.data.circles import label_dtype
from satikit.data.datasets import make_circle_dataset, make_ellipsoid_dataset
from satikit.data.ellipsoids import EllipsoidParams
from satikit.data.presets import get_preset

__all__ = ["dataset"]


def _refuse_non_empty(out_dir: Path, force: bool) -> None:
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise click.ClickException(f"{str(out_dir)!r} is not empty; pass --force to overwrite")


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


@click.group()
def dataset() -> None:
    """Generate benchmark datasets (layout: train/x, train/y, train/labels, test/x, test/labels)."""


@dataset.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--preset",
    type=click.Choice(["paper", "small"]),
    default="paper",
    show_default=True,
    help="paper: 2048^2, 1000 x 40 px circles (section II); small: the same ratios / 4.",
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
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--force", is_flag=True, help="Write into a non-empty OUT_DIR (stale images go).")
@click.option("--progress/--no-progress", default=True, show_default=True)
def circles(
    out_dir: Path,
    preset: str,
    dims: str,
    size: int | None,
    count: int | None,
    diameter: int | None,
    noise_sigma: float | None,
    n_images: int | None,
    n_test: int | None,
    seed: int,
    force: bool,
    progress: bool,
) -> None:
    """Circle benchmark: white circles (X) and red/green/blue circles (Y), with labels."""
    try:
        params = get_preset(preset, int(dims)).replace(
            size=size,
            count=count,
            diameter=diameter,
            noise_sigma=noise_sigma,
            n_images=n_images,
            n_test=n_test,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
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
    try:
        make_circle_dataset(out_dir, params, seed=seed, progress=progress, force=force)
    except (FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
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
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--force", is_flag=True, help="Write into a non-empty OUT_DIR (stale images go).")
@click.option("--progress/--no-progress", default=True, show_default=True)
def ellipsoids(
    out_dir: Path,
    size: int | None,
    count: int | None,
    semi_axes: tuple[float, float] | None,
    noise_sigma: float | None,
    n_images: int | None,
    n_test: int | None,
    seed: int,
    force: bool,
    progress: bool,
) -> None:
    """Synthetic nucleus volumes (section IV-C): ellipsoids 130 on 10, noise sigma 3.33."""
    try:
        params = EllipsoidParams().replace(
            size=size,
            count=count,
            semi_axes=semi_axes,
            noise_sigma=noise_sigma,
            n_images=n_images,
            n_test=n_test,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    _refuse_non_empty(out_dir, force)
    start = time.perf_counter()
    try:
        make_ellipsoid_dataset(out_dir, params, seed=seed, progress=progress, force=force)
    except (FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    n_files = params.n_images + params.n_test
    click.echo(
        f"wrote {n_files} volumes + labels to {out_dir} in {time.perf_counter() - start:.1f} s"
    )
