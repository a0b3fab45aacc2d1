"""``satikit evaluate``: the paper's colour error of a folder of translated test images, or
(for data with a known true Y) the error against that truth.

Predictions and label images are paired by file name (stem, sorted). The table lists every
image and the pooled total (errors over all objects, as the paper counts its 50 000 test
objects); the JSON holds the same plus the erroneous object ids; ``--png`` writes one picture per
image with the erroneous objects ringed in white (a maximum projection for 3D volumes).

Truth mode (``textured`` / ``restain`` datasets, chosen by the dataset manifest above the
reference folder, or ``--metric truth``): the reference folder holds the true Y images
(``test/y_true``), and every prediction gets its mean absolute error (0-255), the tile-level
deviation (standard deviation over tiles of each tile's mean absolute error), the spread over
tiles of its tile means and standard deviations against the truth's, and the seam score on the
grid it was stitched on (``--tile`` / ``--overlap``; default the manifest's tile, no overlap),
beside the truth's own seam score on that grid (about 1). ``--png`` then writes prediction,
truth and four times the absolute error side by side.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

import satikit
from satikit.commands.errors import user_errors
from satikit.commands.options import INPUT_RANGE
from satikit.data.datasets import MANIFEST, TRUTH_KINDS
from satikit.encoding import from_unit, to_unit
from satikit.io.atomic import atomic_path, read_json, write_json
from satikit.io.images import list_images, read_image
from satikit.io.input_range import InputRange, resolve_input_range
from satikit.metrics import (
    PAPER_VALUE_THRESHOLD,
    ColourErrorResult,
    colour_error,
    mean_absolute_error,
    seam_score,
    tile_deviation,
    tile_stat_spread,
)
from satikit.stitching.grid import TileGrid

__all__ = [
    "DEFAULT_TILE",
    "choose_metric",
    "error_overlay",
    "evaluate",
    "evaluate_folder",
    "evaluate_truth_folder",
    "format_table",
    "format_truth_table",
    "pair_images",
    "scored_values",
    "truth_scores",
]

#: Tile (px) of the truth-mode grid when neither ``--tile`` nor the manifest gives one.
DEFAULT_TILE = 128


def pair_images(
    pred_dir: str | os.PathLike[str], label_dir: str | os.PathLike[str]
) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """Pair prediction and label TIFFs by file stem.

    Args:
        pred_dir: Folder of ``(*spatial, 3)`` uint8 predictions.
        label_dir: Folder of ``(*spatial)`` instance label images.

    Returns:
        ``(pairs, preds_without_labels, labels_without_preds)``, pairs sorted by name.
    """
    preds = {p.stem: p for p in list_images(pred_dir)}
    labels = {p.stem: p for p in list_images(label_dir)}
    pairs = [(preds[s], labels[s]) for s in sorted(preds.keys() & labels.keys())]
    return pairs, sorted(preds.keys() - labels.keys()), sorted(labels.keys() - preds.keys())


def error_overlay(image: np.ndarray, labels: np.ndarray, error_ids: np.ndarray) -> np.ndarray:
    """A 2D picture of ``image`` with the erroneous objects ringed in white.

    Args:
        image: ``(*spatial, 3)`` uint8 prediction.
        labels: ``(*spatial)`` instance labels.
        error_ids: Ids of the objects to mark.

    Returns:
        ``(H, W, 3)`` uint8; for 3D and beyond, the maximum projection over the leading axes.
    """
    lut = np.zeros(int(labels.max(initial=0)) + 1, dtype=bool)
    lut[np.asarray(error_ids, dtype=np.int64)] = True
    marked = lut[labels]
    picture = image
    if labels.ndim > 2:
        leading = tuple(range(labels.ndim - 2))
        picture, marked = image.max(axis=leading), marked.any(axis=leading)
    ring = ndimage.binary_dilation(marked, iterations=2) & ~marked
    picture = picture.copy()
    picture[ring] = 255
    return picture


def _write_png(path: Path, picture: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")


def _find_manifest(label_dir: Path) -> dict[str, Any] | None:
    """The dataset manifest in ``label_dir`` or up to two folders above it, if there is one."""
    for folder in (label_dir, label_dir.parent, label_dir.parent.parent):
        manifest = folder / MANIFEST
        if manifest.is_file():
            try:
                found = read_json(manifest)
            except ValueError:
                return None
            return found if isinstance(found, dict) else None
    return None


def _default_diameter(label_dir: Path) -> float | None:
    """The circle diameter from the dataset manifest above ``label_dir``, if there is one."""
    manifest = _find_manifest(label_dir)
    try:
        return None if manifest is None else float(manifest["params"]["diameter"])
    except (KeyError, TypeError, ValueError):
        return None


def _manifest_tile(label_dir: Path) -> int | None:
    """The inference tile recorded in the dataset manifest above ``label_dir``, if any."""
    manifest = _find_manifest(label_dir)
    try:
        return None if manifest is None else int(manifest["params"]["tile"])
    except (KeyError, TypeError, ValueError):
        return None


def choose_metric(pred_dir: Path, label_dir: Path) -> str:
    """``"truth"`` or ``"colour"`` for ``--metric auto``.

    The manifest decides when there is one (``textured`` / ``restain``: truth; anything else:
    colour). Without one: truth when the first paired reference image is 8-bit RGB of the
    prediction's shape (which the colour error could not score), else colour.
    """
    manifest = _find_manifest(label_dir)
    if manifest is not None and "kind" in manifest:
        return "truth" if manifest["kind"] in TRUTH_KINDS else "colour"
    pairs = pair_images(pred_dir, label_dir)[0]
    if pairs:
        pred, reference = (read_image(p) for p in pairs[0])
        rgb = reference.dtype == np.uint8 and reference.ndim >= 3 and reference.shape[-1] == 3
        if rgb and reference.shape == pred.shape:
            return "truth"
    return "colour"


def evaluate_folder(
    pred_dir: str | os.PathLike[str],
    label_dir: str | os.PathLike[str],
    *,
    diameter: float | None = None,
    value_threshold: int = PAPER_VALUE_THRESHOLD,
    filter_radius: int | None = None,
    area_threshold: float | None = None,
    png_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    input_range: InputRange = None,
) -> dict[str, Any]:
    """Score every prediction in ``pred_dir`` against its labels in ``label_dir``.

    Args:
        pred_dir: Folder of ``(*spatial, 3)`` uint8 TIFF predictions.
        label_dir: Folder of ``(*spatial)`` instance label TIFFs with the same file names.
        diameter: Object diameter for the thresholds; default: the dataset manifest's, else
            estimated per image from its labels.
        value_threshold: Value threshold (paper: 60).
        filter_radius: Override the smoothing radius.
        area_threshold: Override the area / voxel threshold.
        png_dir: If given, write ``<name>.png`` with erroneous objects ringed.
        progress: Show a progress bar (stderr).
        input_range: The prediction values to read as 0..255, ``(low, high)`` or ``"auto"``
            (each image's sampled min and max); None: predictions must be uint8, or floats
            within [0, 1] (read as 0..255); see :mod:`satikit.io.input_range`.

    Returns:
        JSON-ready report: ``images`` (one summary per image, with ``name``), ``total``
        (pooled ``n_objects``, ``n_errors``, ``error_rate``, ...), ``unmatched`` names and the
        settings.

    Raises:
        ValueError: If no file names match, a pair has mismatching shapes / dtypes, or a
            prediction holds values other than uint8 ones without ``input_range``.
    """
    pred_dir, label_dir = Path(pred_dir), Path(label_dir)
    pairs, lonely_preds, lonely_labels = pair_images(pred_dir, label_dir)
    if not pairs:
        raise ValueError(f"no file name in {str(pred_dir)!r} matches one in {str(label_dir)!r}")
    if diameter is None:
        diameter = _default_diameter(label_dir)
    if png_dir is not None:
        Path(png_dir).mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for pred_path, label_path in tqdm(pairs, desc="evaluate", unit="img", disable=not progress):
        labels = read_image(label_path)
        image = scored_values(read_image(pred_path), pred_path.name, labels.ndim, input_range)
        try:
            result: ColourErrorResult = colour_error(
                image,
                labels,
                diameter=diameter,
                value_threshold=value_threshold,
                filter_radius=filter_radius,
                area_threshold=area_threshold,
            )
        except ValueError as exc:
            raise ValueError(f"{pred_path.name}: {exc}") from exc
        rows.append({"name": pred_path.name, **result.summary()})
        if png_dir is not None:
            picture = error_overlay(image, labels, result.error_ids)
            _write_png(Path(png_dir) / f"{pred_path.stem}.png", picture)
    return {
        "satikit_version": satikit.__version__,
        "pred_dir": str(pred_dir),
        "label_dir": str(label_dir),
        "settings": {
            "diameter": diameter,
            "value_threshold": value_threshold,
            "filter_radius": filter_radius,
            "area_threshold": area_threshold,
        },
        "images": rows,
        "total": _total(rows),
        "unmatched": {"predictions": lonely_preds, "labels": lonely_labels},
    }


def scored_values(
    image: np.ndarray, name: str, dims: int, input_range: InputRange = None
) -> np.ndarray:
    """A prediction as the uint8 values the colour error scores: uint8 as it is, floats in
    [0, 1] times 255, or ``input_range`` mapped onto 0..255 (rounded, clipped).

    Raises:
        ValueError: another dtype, or floats outside [0, 1], without ``input_range`` (see
            :func:`satikit.io.input_range.resolve_input_range`).
    """
    in_range = resolve_input_range(
        image, dims=dims, name=name, expected=np.uint8, given=input_range, reader="evaluate scores"
    )
    if in_range is None and image.dtype == np.uint8:
        return image
    return from_unit(to_unit(image, in_range), np.uint8)


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts of every image pooled, and the pooled error rate."""
    n_objects = sum(r["n_objects"] for r in rows)
    n_errors = sum(r["n_errors"] for r in rows)
    return {
        "n_images": len(rows),
        "n_objects": n_objects,
        "n_errors": n_errors,
        "error_rate": n_errors / n_objects if n_objects else 0.0,
        "n_no_colour": sum(r["n_no_colour"] for r in rows),
        "n_multi_colour": sum(r["n_multi_colour"] for r in rows),
    }


def _seams_or_none(image: np.ndarray, grid: TileGrid) -> float | None:
    """The seam score on ``grid``, or None when the image holds a single tile."""
    try:
        return seam_score(image, grid, channel_axis=-1)
    except ValueError:
        return None


def truth_scores(pred: np.ndarray, truth: np.ndarray, grid: TileGrid) -> dict[str, Any]:
    """Every truth-mode score of one prediction (see the module docstring).

    Args:
        pred: ``(*spatial, C)`` stitched translation.
        truth: ``(*spatial, C)`` its true Y.
        grid: The grid it was stitched on (over ``spatial``).

    Returns:
        JSON-ready ``mae``, ``tile_deviation``, ``tile_mean_spread``, ``tile_std_spread``,
        ``seam_score`` and ``truth_seam_score`` (None for a single tile), ``n_tiles``,
        ``n_pixels``.

    Raises:
        ValueError: Shapes that differ, or a grid over another shape.
    """
    spread = tile_stat_spread(pred, truth, grid)
    return {
        "mae": mean_absolute_error(pred, truth),
        "tile_deviation": tile_deviation(pred, truth, grid),
        "tile_mean_spread": spread["mean"],
        "tile_std_spread": spread["std"],
        "seam_score": _seams_or_none(pred, grid),
        "truth_seam_score": _seams_or_none(truth, grid),
        "n_tiles": grid.n_tiles,
        "n_pixels": int(np.prod(grid.shape)),
    }


def truth_picture(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Prediction, truth and ``4 |pred - truth|`` side by side, ``(H, 3 W, 3)`` uint8 (a
    maximum projection over the leading axes beyond 2D)."""
    error = np.abs(pred.astype(np.int16) - truth.astype(np.int16)) * 4
    parts = [pred, truth, np.clip(error, 0, 255).astype(np.uint8)]
    if pred.ndim > 3:
        leading = tuple(range(pred.ndim - 3))
        parts = [part.max(axis=leading) for part in parts]
    return np.concatenate(parts, axis=1)


def evaluate_truth_folder(
    pred_dir: str | os.PathLike[str],
    truth_dir: str | os.PathLike[str],
    *,
    tile: int | None = None,
    overlap: int = 0,
    png_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    input_range: InputRange = None,
) -> dict[str, Any]:
    """Score every prediction in ``pred_dir`` against its true Y in ``truth_dir``.

    Args:
        pred_dir: Folder of ``(*spatial, C)`` TIFF predictions.
        truth_dir: Folder of the true Y TIFFs with the same file names and shapes.
        tile: Tile of the grid the predictions were stitched on; default: the dataset
            manifest's, else :data:`DEFAULT_TILE`.
        overlap: Its overlap (the seams lie in the middle of each overlap).
        png_dir: If given, write ``<name>.png``: prediction, truth and 4x the error.
        progress: Show a progress bar (stderr).
        input_range: The prediction values to read as 0..255 (as for :func:`evaluate_folder`).

    Returns:
        JSON-ready report: ``metric`` (``"truth"``), ``images`` (one row per image, with
        ``name``), ``total`` (``mae`` pooled over pixels; the other scores averaged over the
        images that have them), ``unmatched`` names and the settings.

    Raises:
        ValueError: If no file names match, or a pair has mismatching shapes.
    """
    pred_dir, truth_dir = Path(pred_dir), Path(truth_dir)
    pairs, lonely_preds, lonely_truths = pair_images(pred_dir, truth_dir)
    if not pairs:
        raise ValueError(f"no file name in {str(pred_dir)!r} matches one in {str(truth_dir)!r}")
    tile = (_manifest_tile(truth_dir) or DEFAULT_TILE) if tile is None else int(tile)
    TileGrid.create((tile,), tile, overlap)  # refuse a bad tile / overlap before any work
    if png_dir is not None:
        Path(png_dir).mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for pred_path, truth_path in tqdm(pairs, desc="evaluate", unit="img", disable=not progress):
        pred, truth = read_image(pred_path), read_image(truth_path)
        try:
            pred = scored_values(pred, pred_path.name, max(pred.ndim - 1, 1), input_range)
            if pred.shape != truth.shape or pred.ndim < 2:
                raise ValueError(f"shape {pred.shape} differs from the truth's {truth.shape}")
            grid = TileGrid.create(pred.shape[:-1], tile, overlap)
            rows.append({"name": pred_path.name, **truth_scores(pred, truth, grid)})
        except ValueError as exc:
            raise ValueError(f"{pred_path.name}: {exc}") from exc
        if png_dir is not None:
            _write_png(Path(png_dir) / f"{pred_path.stem}.png", truth_picture(pred, truth))
    return {
        "satikit_version": satikit.__version__,
        "metric": "truth",
        "pred_dir": str(pred_dir),
        "truth_dir": str(truth_dir),
        "settings": {"tile": tile, "overlap": int(overlap)},
        "images": rows,
        "total": _truth_total(rows),
        "unmatched": {"predictions": lonely_preds, "truth": lonely_truths},
    }


def _mean_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return float(np.mean(values)) if values else None


def _truth_total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """MAE pooled over every pixel; the other scores averaged over the images."""
    n_pixels = sum(r["n_pixels"] for r in rows)
    keys = ("tile_deviation", "tile_mean_spread", "tile_std_spread", "seam_score")
    return {
        "n_images": len(rows),
        "n_pixels": n_pixels,
        "mae": sum(r["mae"] * r["n_pixels"] for r in rows) / n_pixels,
        **{key: _mean_of(rows, key) for key in (*keys, "truth_seam_score")},
    }


def format_truth_table(report: dict[str, Any]) -> str:
    """The per-image + total table of an :func:`evaluate_truth_folder` report, as text."""
    rows = [*report["images"], {"name": "total", **report["total"]}]
    width = max(12, *(len(r["name"]) for r in rows))
    header = (
        f"{'image':<{width}} {'MAE':>7} {'tile dev':>8} {'mean spr':>8} {'std spr':>8} "
        f"{'seams':>6} {'truth':>6}"
    )
    lines = [header, "-" * len(header)]

    def score(value: float | None) -> str:
        return f"{'-':>6}" if value is None else f"{value:>6.3f}"

    for r in rows:
        if r["name"] == "total":
            lines.append("-" * len(header))
        lines.append(
            f"{r['name']:<{width}} {r['mae']:>7.2f} {r['tile_deviation']:>8.2f} "
            f"{r['tile_mean_spread']:>8.2f} {r['tile_std_spread']:>8.2f} "
            f"{score(r['seam_score'])} {score(r['truth_seam_score'])}"
        )
    return "\n".join(lines)


def format_table(report: dict[str, Any]) -> str:
    """The per-image + total table of an :func:`evaluate_folder` report, as text."""
    rows = [*report["images"], {"name": "total", **report["total"]}]
    width = max(12, *(len(r["name"]) for r in rows))
    header = (
        f"{'image':<{width}} {'objects':>8} {'errors':>7} {'error %':>8} {'none':>6} {'multi':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        if r["name"] == "total":
            lines.append("-" * len(header))
        lines.append(
            f"{r['name']:<{width}} {r['n_objects']:>8d} {r['n_errors']:>7d} "
            f"{100 * r['error_rate']:>7.2f}% {r['n_no_colour']:>6d} {r['n_multi_colour']:>6d}"
        )
    return "\n".join(lines)


@click.command()
@click.argument("pred_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("label_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Report file [default: PRED_DIR/evaluation.json].",
)
@click.option(
    "--png",
    "png_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one PNG per image with erroneous circles ringed in white (truth metric: "
    "prediction, truth and 4x the error side by side).",
)
@click.option(
    "--diameter",
    type=click.FloatRange(min=0, min_open=True),
    help="Circle diameter in px [default: the dataset manifest's, else estimated].",
)
@click.option(
    "--value-threshold",
    type=click.IntRange(0, 255),
    default=PAPER_VALUE_THRESHOLD,
    show_default=True,
)
@click.option("--filter-radius", type=click.IntRange(min=0), help="Override the smoothing radius.")
@click.option(
    "--area-threshold", type=click.FloatRange(min=0), help="Override the area (voxel) threshold."
)
@click.option(
    "--metric",
    type=click.Choice(["auto", "colour", "truth"]),
    default="auto",
    show_default=True,
    help="colour: the circle colour error against instance labels; truth: MAE, tile-level "
    "deviation, tile-statistics spread and seam score against true Y images (textured / "
    "restain data); auto: by the dataset manifest above LABEL_DIR.",
)
@click.option(
    "--tile",
    type=click.IntRange(min=1),
    help="Truth metric: tile of the grid the predictions were stitched on [the manifest's, "
    f"else {DEFAULT_TILE}].",
)
@click.option(
    "--overlap",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Truth metric: that grid's overlap (seams in its middle).",
)
@click.option(
    "--input-range",
    type=INPUT_RANGE,
    metavar="LO,HI|auto",
    help="Prediction values to read as 0..255 (e.g. 0,65535 for uint16 predictions; auto: each "
    "image's own min and max, from a sample) [default: uint8 as it is, floats in [0, 1]].",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def evaluate(
    pred_dir: Path,
    label_dir: Path,
    json_path: Path | None,
    png_dir: Path | None,
    diameter: float | None,
    value_threshold: int,
    filter_radius: int | None,
    area_threshold: float | None,
    metric: str,
    tile: int | None,
    overlap: int,
    input_range: InputRange,
    progress: bool,
) -> None:
    """Colour error (paper section II) of predictions in PRED_DIR against LABEL_DIR.

    A circle is wrong unless exactly one of red, green, blue is present in it. For data with
    a known true Y (textured, restain), LABEL_DIR is test/y_true and the predictions are
    scored against it instead (--metric).
    """
    with user_errors(usage=False):
        if metric == "auto":
            metric = choose_metric(pred_dir, label_dir)
        if metric == "truth":
            report = evaluate_truth_folder(
                pred_dir,
                label_dir,
                tile=tile,
                overlap=overlap,
                png_dir=png_dir,
                progress=progress,
                input_range=input_range,
            )
        else:
            report = evaluate_folder(
                pred_dir,
                label_dir,
                diameter=diameter,
                value_threshold=value_threshold,
                filter_radius=filter_radius,
                area_threshold=area_threshold,
                png_dir=png_dir,
                progress=progress,
                input_range=input_range,
            )
    for kind, names in report["unmatched"].items():
        if names:
            click.echo(
                f"warning: {len(names)} {_UNMATCHED.get(kind, kind)} without a partner skipped: "
                f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}",
                err=True,
            )
    json_path = pred_dir / "evaluation.json" if json_path is None else json_path
    write_json(json_path, report)
    click.echo(format_truth_table(report) if metric == "truth" else format_table(report))
    click.echo(f"report: {json_path}")


_UNMATCHED = {"truth": "truth images"}
