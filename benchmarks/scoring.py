"""Scoring a trained run on the circle benchmark: translating the test images with each method
through the library's inference path and counting colour errors (paper II), split into
circles on a seam of the tile grid, inside tiles, and near the image border; one cached file
per method and split."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.bench_config import BenchConfig, InferenceConfig
from benchmarks.methods import TILE_STYLES, parse_method
from benchmarks.planning import Run, config_hash, methods_for, run_dir, scored_run, split_data

if TYPE_CHECKING:
    import torch

# bump when evaluate_run's output changes, so cached evaluations are redone
EVALUATION_VERSION = 5  # 5: last tiles shifted back to the border, not reflect-padded


# -- evaluation ----------------------------------------------------------------------------
def seam_objects(labels: np.ndarray, tile: int, overlap: int, margin: int = 0) -> np.ndarray:
    """Bool per object id (index = id): does the object cross a tile seam of the SATI grid?

    Seams lie in the middle of each overlap (paper III-E), at ``k * (T - O - m) + O // 2``
    (``m``: the SATI ``margin``, beyond the paper; 0 on the paper's grid).
    """
    from scipy import ndimage

    step = tile - overlap - margin
    boxes = ndimage.find_objects(labels)
    crossing = np.zeros(len(boxes) + 1, dtype=bool)
    for index, box in enumerate(boxes, start=1):
        if box is None:
            continue
        for sl, size in zip(box, labels.shape):
            seams = np.arange(step + overlap // 2, size, step)
            if ((seams > sl.start) & (seams < sl.stop)).any():
                crossing[index] = True
                break
    return crossing


def border_objects(labels: np.ndarray, margin: int) -> np.ndarray:
    """Bool per object id (index = id): does the object reach within ``margin`` px of the
    image border? (Separates edge effects of a model from the seams a strategy makes.)"""
    from scipy import ndimage

    boxes = ndimage.find_objects(labels)
    near = np.zeros(len(boxes) + 1, dtype=bool)
    for index, box in enumerate(boxes, start=1):
        if box is not None:
            near[index] = any(
                sl.start < margin or sl.stop > size - margin for sl, size in zip(box, labels.shape)
            )
    return near


def seam_grid(method: str, inference: InferenceConfig) -> tuple[int, int]:
    """``(overlap, margin)`` of the grid whose seams split a method's circles into "seam" and
    "interior" (:meth:`benchmarks.methods.Method.seam_grid`)."""
    return parse_method(method, inference).seam_grid(inference)


def translate_with(
    adapter, run_config, image: np.ndarray, method: str, inference: InferenceConfig
) -> np.ndarray:
    """Translate one ``(*spatial, C)`` uint8 X image with ``method`` (a name of
    :mod:`benchmarks.methods`) through :func:`satikit.translation.translate.translate_array`, the
    library's inference path; ``run_config`` is the run's :class:`~satikit.checkpoint.RunConfig`.
    Returns the run's output dtype (uint8 RGB for the circles)."""
    from dataclasses import replace

    from satikit.translation.translate import translate_array

    parsed = parse_method(method, inference)
    # the tile order changes the speed only (wavefront: SATI's independent tiles in batches)
    settings = replace(parsed.settings(inference.batch_size), order=inference.order)
    if parsed.styles == "tile":
        adapter = TileStyles(adapter, name=method)
    return translate_array(adapter, run_config, image, settings)


class TileStyles:
    """An adapter with style codes (``style_dim``, ``translate(x, style=...)``: MUNIT) that
    decodes every tile with a style of its own, drawn from N(0, I) by a generator seeded with
    ``seed`` (the same draws on every run); everything else is the wrapped adapter's.

    Raises:
        ValueError: the adapter has no style codes.
    """

    def __init__(self, adapter: Any, *, name: str = TILE_STYLES, seed: int = 0) -> None:
        if not isinstance(getattr(adapter, "style_dim", None), int):
            raise ValueError(
                f"{name!r} draws a style code per tile; the {type(adapter).__name__} has no "
                "style codes (no integer style_dim)"
            )
        import torch

        self._adapter = adapter
        self._generator = torch.Generator().manual_seed(seed)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._adapter, attribute)

    def translate(self, x: torch.Tensor, **_: Any) -> torch.Tensor:
        """``(B, C, *tile)`` -> the adapter's translation, tile ``i`` in style ``i``."""
        import torch

        styles = torch.randn(x.shape[0], self._adapter.style_dim, generator=self._generator)
        return self._adapter.translate(x, style=styles.to(x.device))


COUNT_KEYS = (
    "n_objects",
    "n_errors",
    "n_seam_objects",
    "n_seam_errors",
    "n_interior_objects",
    "n_interior_errors",
    "n_border_objects",
    "n_border_errors",
)


#: what a dataset with a known true Y (``test/y_true``) is scored by, per image, then averaged
TRUTH_KEYS = ("mae", "tile_deviation", "spread_mean", "spread_std")


def has_truth(data_dir: Path) -> bool:
    """Whether the dataset's test images come with their true Y (textured, restain), scored by
    :func:`score_truth`; else they come with instance labels (circles, :func:`score_method`)."""
    return (data_dir / "test" / "y_true").is_dir()


def score_truth(
    adapter, run_config, data_dir: Path, method: str, inference: InferenceConfig
) -> dict[str, Any]:
    """Scores of one method against the known true Y over every test image of ``data_dir``
    (means over the images): mean absolute error (0-255), tile-level deviation and the spread of
    per-tile statistics (:mod:`satikit.metrics`) on the method's own grid (``none``: the
    config's SATI grid), the seam score (None for ``none``), cost and tiles."""
    from satikit.io.images import list_images, read_image
    from satikit.metrics import mean_absolute_error, seam_score, tile_deviation, tile_stat_spread
    from satikit.stitching.grid import TileGrid

    spec = parse_method(method, inference)
    images = list_images(data_dir / "test" / "x")
    totals = dict.fromkeys(("tiles", "cost", "seam", *TRUTH_KEYS), 0.0)
    for path in images:
        image, truth = read_image(path), read_image(data_dir / "test" / "y_true" / path.name)
        translated = translate_with(adapter, run_config, image, method, inference)
        shape = truth.shape[:-1]
        grid = spec.grid(shape)
        if grid is not None:
            totals["seam"] += seam_score(translated, grid, channel_axis=-1)
        cells = grid or TileGrid.create(shape, inference.tile, inference.overlap)
        spread = tile_stat_spread(translated, truth, cells)
        scores = {
            "mae": mean_absolute_error(translated, truth),
            "tile_deviation": tile_deviation(translated, truth, cells),
            "spread_mean": spread["mean"],
            "spread_std": spread["std"],
            "tiles": spec.tiles(shape),
            "cost": spec.cost(shape),
        }
        for key, value in scores.items():
            totals[key] += value
    mean = {key: value / len(images) for key, value in totals.items()}
    seam = mean.pop("seam")
    return {**mean, "seam_score": None if spec.strategy == "none" else seam}


def score_method(
    adapter, run_config: dict[str, Any], data_dir: Path, method: str, inference: InferenceConfig
) -> dict[str, Any]:
    """Error counts of one method over every test image of ``data_dir`` (keys
    :data:`COUNT_KEYS`), with its cost (forward-pass pixels per image pixel), tile count and
    mean seam score (:func:`satikit.metrics.seam_score` on the method's own grid; None for
    ``none``). Datasets with a known truth are scored by :func:`score_truth` instead."""
    if has_truth(data_dir):
        return score_truth(adapter, run_config, data_dir, method, inference)
    from satikit.io.images import list_images, read_image
    from satikit.metrics import colour_error, seam_score

    spec = parse_method(method, inference)
    counts = np.zeros(len(COUNT_KEYS), dtype=np.int64)
    tiles = cost = seams = 0.0
    images = list_images(data_dir / "test" / "x")
    for path in images:
        image, labels = read_image(path), read_image(data_dir / "test" / "labels" / path.name)
        on_seam_ids = seam_objects(labels, spec.tile, *spec.seam_grid(inference))
        border = border_objects(labels, inference.overlap)
        translated = translate_with(adapter, run_config, image, method, inference)
        if (grid := spec.grid(labels.shape)) is not None:
            seams += seam_score(translated, grid, channel_axis=-1) / len(images)
        result = colour_error(translated, labels)
        on_seam, at_border, errors = on_seam_ids[result.ids], border[result.ids], result.errors
        counts += [
            result.n_objects,
            result.n_errors,
            on_seam.sum(),
            (errors & on_seam).sum(),
            (~on_seam).sum(),
            (errors & ~on_seam).sum(),
            at_border.sum(),
            (errors & at_border).sum(),
        ]
        tiles += spec.tiles(labels.shape) / len(images)
        cost += spec.cost(labels.shape) / len(images)
    seam = None if spec.strategy == "none" else seams
    return {
        **dict(zip(COUNT_KEYS, counts.tolist())),
        "tiles": tiles,
        "cost": cost,
        "seam_score": seam,
    }


def data_key(images: Path) -> str:
    """The images' folder as cached scores record it: its real path, so a checkout that reaches
    the same cache through a link (a second working tree) reuses the scores."""
    return str(Path(images).resolve())


def evaluate_run(
    config: BenchConfig,
    root: Path,
    data_dir: Path,
    run: Run,
    *,
    methods: Iterable[str] | None = None,
    split: str = "test",
    home: Path | None = None,
    images: Path | None = None,
    cached_only: bool = False,
) -> list[dict[str, Any]]:
    """Score ``methods`` (default: :func:`methods_for`) of ``run`` on a split's images, one
    cached file per method and split (so a new method or split reuses the others).

    Args:
        home: the config's cache folder, where the validation set lives (default: ``root``).
        images: another dataset whose ``test/`` images to score instead, cached under
            ``split`` as its name (e.g. ``density-gradient-4242``).
        cached_only: return the rows already scored and score nothing (a partial report).
    """
    from satikit.checkpoint import load_adapter
    from satikit.io.atomic import write_json

    if images is None:
        images = split_data(config, home or root, data_dir, split)
    inference = config.inference
    loaded: tuple | None = None
    scored = scored_run(root, run)  # a chosen snapshot that is the last weights: scored once
    rows = []
    for method in methods or methods_for(run):
        spec = parse_method(method, inference)
        styles = {} if spec.styles == "image" else {"styles": spec.styles}
        key = config_hash(
            {
                "method": repr(spec),
                "evaluation": EVALUATION_VERSION,
                "data": data_key(images),
                **styles,
            }
        )
        safe = method.replace("/", "~")  # a norm suffix is not a folder
        cache = run_dir(root, scored) / "evaluations" / split / f"{safe}-{key}.json"
        if cache.is_file():
            counts = json.loads(cache.read_text())
        elif cached_only:
            continue
        else:
            loaded = loaded or load_adapter(run_dir(root, scored))
            counts = score_method(*loaded, images, method, inference)
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_json(cache, counts)  # atomically: never a truncated cache
        rows.append(_row(run, method, split, counts))
    return rows


def count_error(counts: dict[str, Any]) -> float:
    """A method's error from :func:`score_method`'s counts: the share of objects coloured wrong
    (circles), or the mean absolute error as a fraction of 0-255 (data with a known truth)."""
    if "mae" in counts:
        return counts["mae"] / 255
    return counts["n_errors"] / max(counts["n_objects"], 1)


def _row(run: Run, method: str, split: str, counts: dict[str, Any]) -> dict[str, Any]:
    """A scored row: ``error`` is the share of objects coloured wrong (circles), or for a
    dataset with a known truth the mean absolute error as a fraction of the 0-255 range (its
    "error %" is the MAE in % of full scale), with the truth scores beside it."""
    row = {"adapter": run.adapter, "model": run.model, "method": method, "seed": run.seed}
    row["split"] = split
    if "mae" in counts:
        return {**row, "error": count_error(counts), **counts}

    def rate(errors: str, objects: str) -> float:
        return counts[errors] / max(counts[objects], 1)

    return {
        **row,
        "error": count_error(counts),
        "error_seam": rate("n_seam_errors", "n_seam_objects"),
        "error_interior": rate("n_interior_errors", "n_interior_objects"),
        "error_border": rate("n_border_errors", "n_border_objects"),
        **counts,
    }
