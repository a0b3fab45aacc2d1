"""What a SATI model takes from its leading strip: SATI inference with the strip swapped.

SATI inference (paper III-A) hands every tile after the first its predecessors' output in the
leading overlap strip. This probe runs the same inference (raster order, one tile at a time) on
the config's test images with the strip filled from somewhere else, so that the circles far
from the strip tell whether the model uses it only to continue the circles it cuts, or as a
cue for the whole tile:

- ``real``: the predecessors' output, i.e. plain SATI (equals ``benchmarks.quality``'s ``sati``);
- ``other-image``: the same window of the model's SATI output for *another* test image
  (Y content of the model's own making, circles unrelated to this tile);
- ``true-y-other``: the same window of an ideal Y image of another test image (its circles in
  random pure colours, the dataset's noise);
- ``true-y``: the ideal Y image of this test image (an ideal predecessor);
- ``y-background``: a Y image without circles (noise only);
- ``x``: the tile's own X pixels, i.e. no strip at all (the same tiles as SATI, plain input).

Only what the generator *sees* changes: the final image keeps each tile's real output, so in
every condition but ``real`` the circles that cross a seam mix two sources and are mostly wrong,
and those at the strip's inner edge are cut by a strip that does not match them. The circles
that tell are the ones centred at least one diameter past the strip edge ("far"): the strip
touches them only through the generator's receptive field. ``none`` (the model on the whole
image, no strip) is scored too.
SATI models of every adapter (``--adapter`` for some) and seed; writes
``results/<config>/<date>-<commit>-strip-probe.{json,md}``::

    satikit bench quality --config cpu-small
    python -m benchmarks.strip_probe --config cpu-small
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import planning, scoring, training_runs
from benchmarks.bench_config import BenchConfig, InferenceConfig

#: Where the strip comes from, in the order the table shows them.
CONDITIONS = ("real", "other-image", "true-y-other", "true-y", "y-background", "x")


class StripSwap:
    """A tile function for raster-order SATI that replaces each tile's leading strip.

    Args:
        fn: the generator, ``(1, C, *tile)`` -> ``(1, C, *tile)`` in encoded values.
        grid: the SATI grid the engine walks (``raster()`` is the order of the calls).
        source: ``(C, *spatial)`` encoded array whose window fills the strip, or None to
            leave the predecessors' output in place.

    Raises:
        ValueError: (on call) a batch of more than one tile, or more calls than tiles.
    """

    def __init__(self, fn: Callable, grid, source: np.ndarray | None):
        self.fn, self.grid, self.source = fn, grid, source
        self.order = iter(grid.raster())

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        from satikit.stitching.grid import read_tile
        from satikit.stitching.windows import strip_mask

        if tiles.shape[0] != 1:
            raise ValueError("StripSwap needs batch_size=1 (one tile per call, raster order)")
        index = next(self.order, None)
        if index is None:
            raise ValueError("StripSwap was called more often than the grid has tiles")
        leading = self.grid.leading(index)
        if self.source is not None and any(leading):
            mask = torch.from_numpy(
                np.array(strip_mask(self.grid.tile, self.grid.overlap, leading))
            )
            # the engine's own read: reflected where the padded grid runs past the image
            window = read_tile(self.source, self.grid.window(index), self.grid.shape)
            donor = torch.from_numpy(window).to(tiles)
            tiles = torch.where(mask.expand_as(tiles[0]), donor, tiles[0])[None]
        return self.fn(tiles)


def sati_with_source(x: np.ndarray, fn: Callable, grid, source: np.ndarray | None) -> np.ndarray:
    """SATI inference of the encoded ``(C, *spatial)`` image ``x`` with the generator seeing
    ``source``'s window in every leading strip (None: plain SATI); returns ``(C, *spatial)``."""
    from satikit.stitching import stitch_on_grid

    swap = StripSwap(fn, grid, source)
    return stitch_on_grid(x, swap, grid, strategy="sati", batch_size=1, order="raster")


def ideal_y(labels: np.ndarray, noise_sigma: float, seed: int) -> np.ndarray:
    """``(*spatial, 3)`` uint8 Y image of ``labels``: random pure colours, the dataset's noise."""
    from satikit.data.circles import render_y

    return render_y(labels, noise_sigma, np.random.default_rng(seed))[0]


def _data_value(config: BenchConfig, name: str) -> float:
    """A circle-data parameter (``noise_sigma``, ``diameter``): the config's, else its preset's."""
    from satikit.data.presets import get_preset

    data = config.data
    preset = get_preset(data.preset or "small", data.dims)
    return float(data.params.get(name, getattr(preset, name)))


def far_objects(labels: np.ndarray, tile: int, overlap: int, diameter: float) -> np.ndarray:
    """``(n + 1,)`` bool per object id: centred at least ``overlap + diameter`` px past the
    nearest leading tile edge of the SATI grid (so at least a radius clear of the strip), not in
    the first tile and not at the image border (:func:`benchmarks.seam_profile.edge_distance`)."""
    from benchmarks.seam_profile import edge_distance

    distance = edge_distance(labels, tile, overlap)
    return np.isfinite(distance) & (distance >= overlap + diameter)


@dataclass
class ProbeImages:
    """The test images of a quality run with what every probed model is scored against."""

    images: list[np.ndarray]  # (*spatial, 3) uint8 X images
    labels: list[np.ndarray]  # (*spatial) int labels, 0 background
    seams: list[np.ndarray]  # (n + 1,) bool per object id: crosses a SATI seam
    far: list[np.ndarray]  # (n + 1,) bool per object id: see far_objects
    truth: list[np.ndarray]  # (*spatial, 3) uint8 ideal Y of each image
    empty: list[np.ndarray]  # (*spatial, 3) uint8 Y without circles

    @classmethod
    def load(cls, config: BenchConfig, data_dir: Path) -> ProbeImages:
        from satikit.io.images import list_images, read_image

        tile, overlap = config.inference.tile, config.inference.overlap
        paths = list_images(data_dir / "test" / "x")
        labels = [read_image(data_dir / "test" / "labels" / p.name) for p in paths]
        sigma, diameter = _data_value(config, "noise_sigma"), _data_value(config, "diameter")
        return cls(
            images=[read_image(p) for p in paths],
            labels=labels,
            seams=[scoring.seam_objects(label, tile, overlap) for label in labels],
            far=[far_objects(label, tile, overlap, diameter) for label in labels],
            truth=[ideal_y(label, sigma, i) for i, label in enumerate(labels)],
            empty=[ideal_y(np.zeros_like(lb), sigma, 1000 + i) for i, lb in enumerate(labels)],
        )


def _translations(
    adapter, run_config, test: ProbeImages, inference: InferenceConfig
) -> Iterator[tuple[str, int, np.ndarray]]:
    """``(condition, image index, (*spatial, 3) uint8 translation)`` for ``none`` and every
    condition of :data:`CONDITIONS`."""
    from satikit.encoding import decode, encode
    from satikit.stitching.grid import TileGrid

    enabled = run_config.encoding

    def encoded(image: np.ndarray, domain: str) -> np.ndarray:
        return np.moveaxis(encode(image, domain, enabled=enabled), -1, 0)

    n = len(test.images)
    for i, image in enumerate(test.images):
        yield "none", i, scoring.translate_with(adapter, run_config, image, "none", inference)
    xs = [encoded(image, "x") for image in test.images]
    grid = TileGrid.create(xs[0].shape[1:], inference.tile, inference.overlap, sati=True)
    real = [sati_with_source(x, adapter.translate, grid, None) for x in xs]
    for condition in CONDITIONS:
        for i, x in enumerate(xs):
            if condition == "real":
                y = real[i]
            else:
                if condition == "other-image":
                    source = real[(i + 1) % n]
                elif condition == "x":
                    source = x
                else:
                    ideal = {
                        "true-y-other": test.truth[(i + 1) % n],
                        "true-y": test.truth[i],
                        "y-background": test.empty[i],
                    }[condition]
                    source = encoded(ideal, "y")
                y = sati_with_source(x, adapter.translate, grid, source)
            yield condition, i, np.moveaxis(decode(y, "y", enabled=enabled), 0, -1)


def probe_rows(
    config: BenchConfig, root: Path, data_dir: Path, adapters: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One row per SATI run and condition (``none`` included): circles, errors, and both split
    into those crossing a seam of the SATI grid and the rest.

    Raises:
        ValueError: no trained SATI run under ``root`` (for ``adapters``).
    """
    from satikit.checkpoint import load_adapter
    from satikit.metrics import colour_error

    runs = [
        r
        for r in training_runs.found_runs(root, finished=True)
        if r.variant == "sati" and (adapters is None or r.adapter in adapters)
    ]
    if not runs:
        raise ValueError(
            f"no trained SATI runs under {root / 'runs'}: run `satikit bench quality` first"
        )
    test = ProbeImages.load(config, data_dir)
    rows = []
    for run in runs:
        adapter, run_config = load_adapter(planning.run_dir(root, run))
        counts: dict[str, np.ndarray] = {}
        for condition, i, y in _translations(adapter, run_config, test, config.inference):
            result = colour_error(y, test.labels[i])
            on_seam, far = test.seams[i][result.ids], test.far[i][result.ids]
            counts[condition] = counts.get(condition, 0) + np.array(
                [
                    result.n_objects,
                    result.n_errors,
                    on_seam.sum(),
                    (result.errors & on_seam).sum(),
                    far.sum(),
                    (result.errors & far).sum(),
                ]
            )
        for condition, (total, wrong, n_seam, wrong_seam, n_far, wrong_far) in counts.items():
            rows.append(
                {
                    "adapter": run.adapter,
                    "model": run.variant,
                    "seed": run.seed,
                    "condition": condition,
                    "n_objects": int(total),
                    "n_errors": int(wrong),
                    "n_seam_objects": int(n_seam),
                    "n_seam_errors": int(wrong_seam),
                    "error": wrong / max(total, 1),
                    "error_seam": wrong_seam / max(n_seam, 1),
                    "error_interior": (wrong - wrong_seam) / max(total - n_seam, 1),
                    "n_far_objects": int(n_far),
                    "n_far_errors": int(wrong_far),
                    "error_far": wrong_far / max(n_far, 1),
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """Two tables, error in % per adapter and condition, median over seeds: the circles far
    from the strip (:func:`far_objects`), then all circles."""
    conditions = ("none", *CONDITIONS)
    errors: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        for measure in ("error_far", "error"):
            errors.setdefault((measure, r["adapter"], r["condition"]), []).append(100 * r[measure])
    adapters = list(dict.fromkeys(r["adapter"] for r in rows))
    lines = []
    for measure, title in (
        ("error_far", "Circles at least one diameter past the strip edge"),
        ("error", "All circles"),
    ):
        lines += [
            f"{title}:",
            "",
            "| adapter | seeds | " + " | ".join(conditions) + " |",
            "|---|---:|" + "---:|" * len(conditions),
        ]
        for adapter in adapters:
            cells = [errors.get((measure, adapter, c), []) for c in conditions]
            values = [f"{statistics.median(v):.2f}" if v else "" for v in cells]
            seeds = max(len(v) for v in cells)
            lines.append(f"| {adapter} | {seeds} | " + " | ".join(values) + " |")
        lines.append("")
    return "\n".join(lines)


def run_strip_probe(
    config_name: str,
    adapters: Sequence[str] | None = None,
    *,
    cache: Path = planning.CACHE,
    echo: Callable[[str], None] = print,
    write: bool = True,
) -> dict[str, Any]:
    """Probe the trained SATI runs of a quality run; returns the payload written as JSON."""
    from benchmarks.common import git_commit, machine, write_results

    config = planning.load_config(config_name)
    chosen = None if adapters is None else planning.select_adapters(config, adapters)
    home = planning.workdir(config, cache)
    rows = probe_rows(config, planning.runs_root(home), home / "data", chosen)
    command = f"python -m benchmarks.strip_probe --config {config_name}"
    command += "" if chosen is None else "".join(f" --adapter {a}" for a in chosen)
    payload = {
        "config": config.name,
        "commit": git_commit(),
        "machine": machine(),
        "command": command,
        "tile": config.inference.tile,
        "overlap": config.inference.overlap,
        "conditions": ["none", *CONDITIONS],
        "rows": rows,
    }
    table = markdown(rows)
    if write:
        header = (
            f"# What SATI models take from the leading strip, `{config.name}`\n\n"
            f"`{command}` on {payload['machine']}, commit {payload['commit']}. SATI inference "
            f"(tile {payload['tile']}, overlap {payload['overlap']}, raster order) with the "
            "generator shown another strip (see `benchmarks/strip_probe.py`); error in % of "
            "circles, median over seeds. `none`: the whole image without tiling; `real`: plain "
            "SATI. The JSON rows also split off the circles crossing a seam.\n\n"
        )
        json_path, _ = write_results(config.name, payload, header + table, "-strip-probe", 1)
        echo(f"wrote {json_path.with_suffix('')}.*")
    echo(table)
    return payload


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu-small")
    parser.add_argument(
        "--adapter", action="append", help="probe this adapter's SATI runs [default: all]"
    )
    args = parser.parse_args(argv)
    run_strip_probe(args.config, args.adapter)


if __name__ == "__main__":
    main()
