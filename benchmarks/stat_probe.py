"""How much per-tile statistics differ on each dataset, before any training.

The probe (:func:`satikit.metrics.tile_norm_jump`): instance norm applied to the raw pixels of
every tile (128 px, side by side) against the whole image's statistics; the mean step of the
difference across tile borders, in units of the whole image's standard deviation. It bounds
what sharing statistics between tiles (``--norm thumbnail`` / ``kernel``) can fix: on data where
it is small, per-tile statistics cause no seams worth removing.

Images, made in memory with the datasets' own generators and seeds: the X test images of the
``small`` and ``density-gradient`` circles and of ``textured``; for ``restain``, the X test part
and mosaic of the bundled immunohistochemistry slide and of the retina's central square, and
the whole of each (the part its box keeps). Writes
``results/probe/<date>-<commit>-stat-probe.{json,md}``::

    python -m benchmarks.stat_probe
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from satikit.data.circles import make_circle_image
from satikit.data.datasets import image_rng
from satikit.data.presets import get_preset
from satikit.data.restain import load_source, mirror_mosaic, split_geometry
from satikit.data.textured import TexturedParams, make_textured_image
from satikit.metrics import tile_norm_jump

__all__ = ["probe_images", "run_stat_probe"]


def _circles(preset: str, seed: int, n_test: int) -> list[np.ndarray]:
    params = get_preset(preset)
    return [
        make_circle_image(
            "x",
            shape=params.shape,
            count=params.count,
            diameter=params.diameter,
            noise_sigma=params.noise_sigma,
            rng=image_rng(seed, "circles", "test", "x", i),
            density_gradient=params.density_gradient,
        )[0]
        for i in range(n_test)
    ]


def _restain(source: str, crop: int = 128) -> dict[str, list[np.ndarray]]:
    image = load_source(source).image
    top, left, height, width = split_geometry(image.shape[:2], crop).test
    test = image[top : top + height, left : left + width]
    return {
        f"restain {source}: test part": [test],
        f"restain {source}: mosaic 2 x 2": [mirror_mosaic(test, 2)],
        f"restain {source}: source (its box)": [image],
    }


def probe_images(seed: int = 0, n_test: int = 8) -> dict[str, list[np.ndarray]]:
    """The probed X images by dataset name (see the module docstring)."""
    textured = TexturedParams()
    images = {
        "circles small": _circles("small", seed, n_test),
        "circles density-gradient": _circles("density-gradient", seed, n_test),
        "textured": [
            make_textured_image(textured, image_rng(seed, "textured", "test", "x", i))
            for i in range(n_test)
        ],
    }
    for source in ("immunohistochemistry", "retina"):
        images.update(_restain(source))
    return images


def run_stat_probe(
    *,
    seed: int = 0,
    n_test: int = 8,
    tile: int = 128,
    echo: Callable[[str], None] = print,
    write: bool = True,
) -> dict[str, Any]:
    """Probe every dataset; returns the payload (also written as JSON + markdown)."""
    from benchmarks.common import git_commit, machine, write_results

    rows = []
    for name, images in probe_images(seed, n_test).items():
        values = [tile_norm_jump(image, tile) for image in images]
        rows.append(
            {
                "dataset": name,
                "n_images": len(values),
                "shape": list(images[0].shape),
                "probe": statistics.mean(values),
                "per_image": values,
            }
        )
    base = rows[0]["probe"]
    for row in rows:
        row["ratio_to_small_circles"] = row["probe"] / base
    lines = [
        f"| dataset | images | shape | probe (tile {tile}) | x small circles |",
        "|---|---:|---|---:|---:|",
    ]
    for r in rows:
        shape = " x ".join(map(str, r["shape"][:-1]))
        lines.append(
            f"| {r['dataset']} | {r['n_images']} | {shape} | {r['probe']:.3f} "
            f"| {r['ratio_to_small_circles']:.1f} |"
        )
    markdown = "\n".join(lines) + "\n"
    echo(markdown)
    payload = {
        "commit": git_commit(),
        "machine": machine(),
        "command": f"python -m benchmarks.stat_probe --seed {seed} --n-test {n_test} --tile {tile}",
        "tile": tile,
        "seed": seed,
        "rows": rows,
    }
    if write:
        json_path, md_path = write_results("probe", payload, markdown, "-stat-probe")
        echo(f"wrote {json_path} and {md_path}")
    return payload


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="dataset seed of the test images")
    parser.add_argument("--n-test", type=int, default=8, help="test images per synthetic set")
    parser.add_argument("--tile", type=int, default=128)
    args = parser.parse_args(argv)
    run_stat_probe(seed=args.seed, n_test=args.n_test, tile=args.tile)


if __name__ == "__main__":
    main()
