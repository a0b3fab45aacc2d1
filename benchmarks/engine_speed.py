"""Engine timing: each strategy's time relative to one untiled forward pass (``none``).

A small conv net on a ``3 x 2048 x 2048`` image, tile 512, overlap 64 (25 % of the tile is the
paper's default for SATI; 64 here as issue 3 asks), weighted tiling at 50 % overlap with the
gaussian window. All strategies are timed in one run, interleaved over ``--repeats`` rounds, and
reported as ratios of medians so the machine's speed cancels out.

    python -m benchmarks.engine_speed [--size 2048] [--tile 512] [--overlap 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

from benchmarks.common import git_commit, machine, write_results
from satikit.grid import TileGrid, read_tile
from satikit.stitching import stitch


def small_net(channels: int = 3, width: int = 16) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, channels, 3, padding=1),
        nn.Tanh(),
    ).eval()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    net = small_net()
    image = np.random.default_rng(0).uniform(-1, 0, (3, args.size, args.size)).astype(np.float32)
    common = dict(tile=args.tile, batch_size=args.batch_size)
    cases = {
        "none": dict(strategy="none", overlap=0),
        "simple": dict(strategy="simple", overlap=args.overlap),
        "weighted (50 % overlap)": dict(
            strategy="weighted", overlap=args.tile // 2, window="gaussian"
        ),
        "sati raster": dict(strategy="sati", overlap=args.overlap, order="raster"),
        "sati wavefront": dict(strategy="sati", overlap=args.overlap, order="wavefront"),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    times["forward only (simple's tiles)"] = []
    grid = TileGrid.create((args.size, args.size), args.tile, args.overlap)
    tiles = [
        np.ascontiguousarray(read_tile(image, grid.window(i), grid.shape)) for i in grid.raster()
    ]
    for _ in range(args.repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            for b in range(0, len(tiles), args.batch_size):
                net(torch.from_numpy(np.stack(tiles[b : b + args.batch_size])))
        times["forward only (simple's tiles)"].append(time.perf_counter() - start)
        for name, kwargs in cases.items():
            start = time.perf_counter()
            stitch(image, net, **common, **kwargs)  # type: ignore[arg-type]
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["none"])
    forward = statistics.median(times["forward only (simple's tiles)"])
    rows = [
        {
            "method": name,
            "median_s": round(statistics.median(t), 3),
            "ratio_to_none": round(statistics.median(t) / base, 3),
            "ratio_to_forward": round(statistics.median(t) / forward, 3),
        }
        for name, t in times.items()
    ]
    command = "python -m benchmarks.engine_speed " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    payload = {
        "config": vars(args),
        "commit": git_commit(),
        "machine": machine(),
        "command": command.strip(),
        "theory": {
            "sati_over_simple_per_dim": "T/(T-O) = %.3f" % (args.tile / (args.tile - args.overlap))
        },
        "rows": rows,
    }
    lines = [
        f"# Engine speed, {args.size}^2 x 3, tile {args.tile}, overlap {args.overlap} (weighted: {args.tile // 2})",
        "",
        f"`{payload['command']}` on {payload['machine']}, commit {payload['commit']}",
        "",
        "| method | median s | time / none | time / forward over simple's tiles |",
        "|---|---:|---:|---:|",
        *[
            f"| {r['method']} | {r['median_s']} | {r['ratio_to_none']} | {r['ratio_to_forward']} |"
            for r in rows
        ],
        "",
    ]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        paths = write_results("speed", payload, markdown)
        print("wrote", *paths)
    return payload


if __name__ == "__main__":
    main()
