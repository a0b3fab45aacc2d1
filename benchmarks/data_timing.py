"""Time the benchmark generators and the colour metric; check the metric on known answers.

Run: ``python benchmarks/data_timing.py [--repeats 3] [--json PATH]``

Measures: generation of one 2048^2 circle image (paper preset) and one 256^3 volume
(3D sphere preset and the paper's ellipsoid volume), the metric on one 2048^2 image and one
256^3 volume; and the metric on a ground-truth Y image (must be 0 %) and on deliberately
tiled-wrong images: every circle beyond a seam (one half-plane) or in each tile of a 4 x 4 grid
(simple tiling) gets a different random colour, so exactly the circles crossing a seam carry two
colours. Reported: the true number of such circles, how many the metric flags, and false
alarms among the others.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from satikit.data.circles import make_circle_image, place_circles, render_y
from satikit.data.ellipsoids import EllipsoidParams, make_ellipsoid_volume
from satikit.data.presets import get_preset
from satikit.io.atomic import write_json
from satikit.metrics import colour_error


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``fn`` over ``repeats`` calls, and its last result."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def tile_ids(shape: tuple[int, ...], tile: int | None, axis: int, seam: int) -> np.ndarray:
    """Region index per pixel: a grid of ``tile`` cells, or the two sides of one seam."""
    if tile is not None:
        grids = np.meshgrid(*[np.arange(n) // tile for n in shape], indexing="ij", sparse=True)
        ids = np.zeros(shape, dtype=np.int64)
        for g in grids:
            ids = ids * (shape[0] // tile + 1) + g
        return ids
    index = np.arange(shape[axis]) >= seam
    return np.broadcast_to(
        index.reshape([-1 if a == axis else 1 for a in range(len(shape))]), shape
    )


def tiled_wrong(
    labels: np.ndarray, colours: np.ndarray, regions: np.ndarray, sigma: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A Y image whose every region recolours every object to a different random colour.

    Returns:
        ``(image, crossing)``: the image and a bool per object id (index 0 unused) telling
        whether the object spans two regions of different colour (the true errors).
    """
    rng = np.random.default_rng(seed)
    image = np.zeros((*labels.shape, 3), dtype=np.uint8)
    n = len(colours)
    region_values = np.unique(regions)
    per_region = {}
    for k, region in enumerate(region_values):
        shifted = colours if k == 0 else (colours + rng.integers(1, 3, size=n)) % 3
        per_region[region] = shifted
        rendered = render_y(labels, sigma, rng, colours=shifted)[0]
        mask = regions == region
        image[mask] = rendered[mask]
    seen = np.zeros((n + 1, 3), dtype=bool)
    for region, shifted in per_region.items():
        ids = np.unique(labels[(regions == region) & (labels > 0)])
        seen[ids, shifted[ids - 1]] = True
    return image, seen.sum(axis=1) >= 2


def check_metric(
    name: str, labels: np.ndarray, colours: np.ndarray, regions: np.ndarray, sigma: float
) -> dict[str, Any]:
    image, crossing = tiled_wrong(labels, colours, regions, sigma, seed=1)
    result = colour_error(image, labels)
    flagged = np.zeros(len(crossing), dtype=bool)
    flagged[result.ids] = result.errors
    row = {
        "case": name,
        "objects": result.n_objects,
        "true_two_colour": int(crossing.sum()),
        "flagged": result.n_errors,
        "hits": int((flagged & crossing).sum()),
        "false_alarms": int((flagged & ~crossing).sum()),
        "error_rate_percent": round(100 * result.error_rate, 3),
    }
    print(
        f"  {name:<34} objects {row['objects']:>6}  two-colour {row['true_two_colour']:>5}  "
        f"flagged {row['flagged']:>5} (hits {row['hits']}, false {row['false_alarms']})  "
        f"error {row['error_rate_percent']:.2f} %"
    )
    return row


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"timings_s": {}, "metric_checks": []}
    t = report["timings_s"]

    paper2, paper3 = get_preset("paper", 2), get_preset("paper", 3)
    print("generation (median of", args.repeats, "runs)")
    for domain in ("x", "y"):
        t[f"generate_2048^2_{domain}"], _ = timed(
            lambda d=domain: make_circle_image(
                d,
                shape=paper2.shape,
                count=paper2.count,
                diameter=paper2.diameter,
                noise_sigma=paper2.noise_sigma,
                rng=np.random.default_rng(0),
            ),
            args.repeats,
        )
    t["generate_256^3_spheres_y"], _ = timed(
        lambda: make_circle_image(
            "y",
            shape=paper3.shape,
            count=paper3.count,
            diameter=paper3.diameter,
            noise_sigma=paper3.noise_sigma,
            rng=np.random.default_rng(0),
        ),
        args.repeats,
    )
    t["generate_256^3_ellipsoids"], _ = timed(
        lambda: make_ellipsoid_volume(EllipsoidParams(), rng=np.random.default_rng(0)),
        args.repeats,
    )
    for key in list(t):
        print(f"  {key:<34} {t[key]:.3f} s")

    print("metric")
    rng = np.random.default_rng(42)
    labels2 = place_circles(paper2.shape, paper2.count, paper2.diameter, rng)
    image2, colours2 = render_y(labels2, paper2.noise_sigma, rng)
    t["metric_2048^2"], result2 = timed(lambda: colour_error(image2, labels2), args.repeats)
    labels3 = place_circles(paper3.shape, paper3.count, paper3.diameter, rng)
    image3, colours3 = render_y(labels3, paper3.noise_sigma, rng)
    t["metric_256^3"], result3 = timed(lambda: colour_error(image3, labels3), args.repeats)
    print(f"  {'metric_2048^2':<34} {t['metric_2048^2']:.3f} s ({result2.n_objects} circles)")
    print(f"  {'metric_256^3':<34} {t['metric_256^3']:.3f} s ({result3.n_objects} spheres)")

    print("metric on known answers")
    checks = report["metric_checks"]
    checks.append({"case": "ground truth 2048^2", **result2.summary()})
    checks.append({"case": "ground truth 256^3", **result3.summary()})
    print(f"  {'ground truth Y 2048^2':<34} error {100 * result2.error_rate:.2f} %")
    print(f"  {'ground truth Y 256^3':<34} error {100 * result3.error_rate:.2f} %")
    sigma = paper2.noise_sigma
    checks.append(
        check_metric(
            "2048^2 one seam (x = 1024)",
            labels2,
            colours2,
            tile_ids(paper2.shape, None, 1, 1024),
            sigma,
        )
    )
    checks.append(
        check_metric(
            "2048^2 simple tiling, 512 px tiles",
            labels2,
            colours2,
            tile_ids(paper2.shape, 512, 0, 0),
            sigma,
        )
    )
    checks.append(
        check_metric(
            "256^3 one seam (z = 128)",
            labels3,
            colours3,
            tile_ids(paper3.shape, None, 0, 128),
            sigma,
        )
    )
    small = get_preset("small", 2)
    rng = np.random.default_rng(7)
    labels_s = place_circles(small.shape, small.count, small.diameter, rng)
    image_s, colours_s = render_y(labels_s, small.noise_sigma, rng)
    gt_small = colour_error(image_s, labels_s)
    print(f"  {'ground truth Y 512^2 (small)':<34} error {100 * gt_small.error_rate:.2f} %")
    checks.append({"case": "ground truth 512^2 small", **gt_small.summary()})
    checks.append(
        check_metric(
            "512^2 small, simple tiling 128 px",
            labels_s,
            colours_s,
            tile_ids(small.shape, 128, 0, 0),
            sigma,
        )
    )
    for check in checks:
        check.pop("error_ids", None)
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
