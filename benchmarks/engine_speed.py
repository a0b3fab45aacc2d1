"""Engine speed: every strategy timed on the same model and image, reported as ratios.

For each image (2D ``--sizes``, 3D ``--volumes``), a small conv net, tile ``T`` and overlap
``O`` (weighted: 50 %), interleaved over ``--repeats`` rounds, medians:

- each strategy's time / ``none`` and / the pure forward pass over the same (simple) tiles,
  i.e. the engine's overhead;
- ``sati`` / ``simple`` without overlap against the theoretical ``(T / (T - O))^N`` (the paper's
  "x1.25 per dimension" for O = T/4... here with the given O);
- ``weighted`` (gaussian, 50 %) against MONAI's ``sliding_window_inference`` (gaussian, same
  overlap and batch), when MONAI is installed (``pip install -e .[bench]``);
- ``sati`` wavefront vs raster;
- host memory the engine allocates (numpy, traced with tracemalloc) per strategy;
- the tile counts behind each ratio (a uniform grid pads a small image up to whole tiles, so
  on small images the measured ratio follows the tile counts, not the theory).

``--skip`` leaves methods out (e.g. ``none`` on a volume whose single forward pass does not fit
in memory); ratios that need a skipped method are left out too.

    python -m benchmarks.engine_speed [--sizes 2048 8192] [--volumes 256] [--tile 512 --overlap 64]
    python -m benchmarks.engine_speed --sizes --volumes 512 --skip none --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from benchmarks.common import git_commit, machine, write_results
from satikit.grid import TileGrid, read_tile
from satikit.stitching import stitch

MONAI = "monai weighted"  # the case that needs the benchmark-only MONAI dependency


def small_net(ndim: int, channels: int = 3, width: int = 16) -> nn.Module:
    """Three 3x3 convolutions: enough compute that the engine's share is measurable."""
    torch.manual_seed(0)
    conv = nn.Conv2d if ndim == 2 else nn.Conv3d
    return nn.Sequential(
        conv(channels, width, 3, padding=1),
        nn.ReLU(),
        conv(width, width, 3, padding=1),
        nn.ReLU(),
        conv(width, channels, 3, padding=1),
        nn.Tanh(),
    ).eval()


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _peak_bytes(call: Callable[[], object]) -> int:
    """Peak host memory traced during ``call`` (a separate, untimed run: tracing is slow)."""
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def cases(
    image: np.ndarray, net: nn.Module, tile: int, overlap: int, batch: int
) -> dict[str, Callable[[], object]]:
    """Name -> zero-argument call, all on the same image and net."""
    spatial = image.shape[1:]
    grid = TileGrid.create(spatial, tile, overlap)
    common = dict(tile=tile, batch_size=batch)

    def forward_only() -> None:
        tiles = [read_tile(image, grid.window(i), grid.shape) for i in grid.raster()]
        with torch.inference_mode():
            for b in range(0, len(tiles), batch):
                net(torch.from_numpy(np.stack(tiles[b : b + batch])))

    calls: dict[str, Callable[[], object]] = {
        "none": lambda: stitch(image, net, overlap=0, strategy="none", **common),
        "forward only": forward_only,
        "simple": lambda: stitch(image, net, overlap=overlap, strategy="simple", **common),
        "simple (no overlap)": lambda: stitch(image, net, overlap=0, strategy="simple", **common),
        "weighted": lambda: stitch(
            image, net, overlap=tile // 2, strategy="weighted", window="gaussian", **common
        ),
        "sati raster": lambda: stitch(
            image, net, overlap=overlap, strategy="sati", order="raster", **common
        ),
        "sati wavefront": lambda: stitch(
            image, net, overlap=overlap, strategy="sati", order="wavefront", **common
        ),
    }
    try:
        from monai.inferers import sliding_window_inference

        def monai() -> None:
            with torch.inference_mode():
                sliding_window_inference(
                    torch.from_numpy(image)[None],
                    (tile,) * len(spatial),
                    batch,
                    net,
                    overlap=0.5,
                    mode="gaussian",
                )

        calls[MONAI] = monai
    except ImportError:  # benchmark-only dependency
        pass
    return calls


def tile_counts(shape: tuple[int, ...], tile: int, overlap: int) -> dict[str, int]:
    """Tiles each method runs: simple / sati at ``overlap``, side by side, weighted at 50 %."""
    return {
        "overlap": TileGrid.create(shape, tile, overlap).n_tiles,
        "no_overlap": TileGrid.create(shape, tile, 0).n_tiles,
        "half": TileGrid.create(shape, tile, tile // 2).n_tiles,
    }


def _ratio(med: dict[str, float], a: str, b: str) -> float | None:
    return round(med[a] / med[b], 3) if a in med and b in med else None


def measure(
    shape: tuple[int, ...],
    tile: int,
    overlap: int,
    batch: int,
    repeats: int,
    skip: tuple[str, ...] = (),
) -> dict:
    """Time every case on one image shape; returns rows and the ratios the issue asks for.

    Raises:
        ValueError: ``skip`` names a method that does not exist.
    """
    net = small_net(len(shape))
    image = np.random.default_rng(0).uniform(-1, 0, (3, *shape)).astype(np.float32)
    calls = cases(image, net, tile, overlap, batch)
    unknown = sorted(set(skip) - set(calls) - {MONAI})  # MONAI's case exists when installed
    if unknown:
        raise ValueError(f"--skip: unknown method(s) {unknown}; methods: {sorted(calls)}")
    calls = {name: call for name, call in calls.items() if name not in skip}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            times[name].append(_timed(call))
    peaks = {name: _peak_bytes(call) for name, call in calls.items()}
    med = {name: statistics.median(t) for name, t in times.items()}
    rows = [
        {
            "shape": list(shape),
            "method": name,
            "median_s": round(med[name], 3),
            "ratio_to_none": _ratio(med, name, "none"),
            "ratio_to_forward": _ratio(med, name, "forward only"),
            "host_mib": round(peaks[name] / 2**20, 1),
        }
        for name in calls
    ]
    counts = tile_counts(shape, tile, overlap)
    overhead = _ratio(med, "simple", "forward only")
    ratios = {
        # the paper's "x1.25 per dimension": SATI's overlapping tiles vs simple tiles side by side
        "sati_over_simple_no_overlap": _ratio(med, "sati raster", "simple (no overlap)"),
        "sati_over_simple_theory": round((tile / (tile - overlap)) ** len(shape), 3),
        "sati_over_simple_tile_count": round(counts["overlap"] / counts["no_overlap"], 3),
        "wavefront_over_raster": _ratio(med, "sati wavefront", "sati raster"),
        "simple_engine_overhead": None if overhead is None else round(overhead - 1, 3),
        "weighted_over_monai": _ratio(med, "weighted", MONAI),
    }
    ratios = {k: v for k, v in ratios.items() if v is not None}
    return {"shape": list(shape), "rows": rows, "ratios": ratios, "tiles": counts}


def _cell(value: float | None) -> str:
    return "-" if value is None else str(value)


def markdown(payload: dict) -> str:
    lines = [
        f"# Engine speed (tile {payload['config']['tile']}, overlap {payload['config']['overlap']}, "
        f"weighted 50 %, batch {payload['config']['batch_size']})",
        "",
        f"`{payload['command']}` on {payload['machine']}, commit {payload['commit']}",
        "",
        "| image | method | median s | / none | / forward over simple's tiles | host MiB (numpy) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for result in payload["results"]:
        name = "x".join(map(str, result["shape"]))
        lines += [
            f"| {name} | {r['method']} | {r['median_s']} | {_cell(r['ratio_to_none'])} | "
            f"{_cell(r['ratio_to_forward'])} | {r['host_mib']} |"
            for r in result["rows"]
        ]
    lines += ["", "| image | ratio | value |", "|---|---|---:|"]
    for result in payload["results"]:
        name = "x".join(map(str, result["shape"]))
        lines += [f"| {name} | {k} | {v} |" for k, v in result["ratios"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[2048], help="2D image sizes")
    parser.add_argument("--volumes", type=int, nargs="*", default=[], help="3D volume sizes")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--tile-3d", type=int, default=64)
    parser.add_argument("--overlap-3d", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--skip", nargs="*", default=[], metavar="METHOD", help='methods to leave out, e.g. "none"'
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    skip = tuple(args.skip)
    results = [
        measure((s, s), args.tile, args.overlap, args.batch_size, args.repeats, skip)
        for s in args.sizes
    ]
    results += [
        measure((s, s, s), args.tile_3d, args.overlap_3d, args.batch_size, args.repeats, skip)
        for s in args.volumes
    ]
    argv_used = argv if argv is not None else sys.argv[1:]
    payload = {
        "config": vars(args),
        "commit": git_commit(),
        "machine": machine(),
        "command": ("python -m benchmarks.engine_speed " + " ".join(argv_used)).strip(),
        "results": results,
    }
    text = markdown(payload)
    print(text)
    if not args.no_write:
        print("wrote", *write_results("speed", payload, text))
    return payload


if __name__ == "__main__":
    main()
