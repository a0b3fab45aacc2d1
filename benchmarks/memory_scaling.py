"""Out-of-core scaling: peak resident memory and throughput of a TIFF -> TIFF translation
versus image size, for every strategy.

Each measurement runs in a fresh subprocess (so its peak RSS is its own): a uint8 RGB TIFF of
the given size is opened lazily (memory-mapped), encoded tile by tile, translated by a small
conv net and decoded band by band into an on-disk TIFF. The figure to watch is
``peak RSS / image bytes``: it must fall as images grow (the engine holds a band of tiles, not
the image). The fixed cost of the Python + torch process is reported separately.

    python -m benchmarks.memory_scaling [--sizes 4096 8192 16384] [--volumes 256 512]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(2)
from satikit.io.arrays import ChannelFirst, ChannelLastSink, output_array
from satikit.io.reading import open_array
from satikit.encoding import decode, encode
from satikit.stitching import stitch
src, dst, strategy, tile, overlap, ndim = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.manual_seed(0)
conv = torch.nn.Conv2d if ndim == 2 else torch.nn.Conv3d
net = torch.nn.Sequential(conv(3, 8, 3, padding=1), torch.nn.ReLU(), conv(8, 3, 3, padding=1), torch.nn.Tanh()).eval()
fn = lambda t: net(t) * 0.5 + 0.5
def status(field):  # this process's own counters; ru_maxrss would include the parent's pre-exec peak
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field + ":"))
base = status("VmHWM")
stored = open_array(src)
start = time.perf_counter()
if strategy != "noop":
    with output_array(dst, stored.shape, np.uint8, overwrite=True) as out:
        view = ChannelFirst(stored, channel_last=True, transform=lambda b: encode(b, "x"))
        sink = ChannelLastSink(out, channel_last=True, transform=lambda b: decode(b, "y"))
        stitch(view, fn, tile=tile, overlap=overlap, strategy=strategy, batch_size=4, out=sink)
seconds = time.perf_counter() - start
peak = status("VmHWM")
print(json.dumps({"baseline_kib": base, "peak_kib": peak, "seconds": seconds}))
"""


def make_input(path: Path, shape: tuple[int, ...]) -> None:
    """A random uint8 RGB TIFF written band by band (never whole in memory)."""
    import numpy as np
    import tifffile

    array = tifffile.memmap(
        path, shape=(*shape, 3), dtype=np.uint8, photometric="rgb", bigtiff=True
    )
    rng = np.random.default_rng(0)
    for start in range(0, shape[0], 64):
        block = array[start : start + 64]
        block[...] = rng.integers(0, 256, block.shape, dtype=np.uint8)
    array.flush()
    del array


def measure(shape: tuple[int, ...], strategy: str, tile: int, overlap: int, workdir: Path) -> dict:
    src = workdir / f"in-{'x'.join(map(str, shape))}.tif"
    if not src.exists():
        make_input(src, shape)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(src),
            str(workdir / "out.tif"),
            strategy,
            str(tile),
            str(overlap),
            str(len(shape)),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    image_bytes = 3 * int(__import__("math").prod(shape))
    engine_bytes = (stats["peak_kib"] - stats["baseline_kib"]) * 1024
    return {
        "shape": list(shape),
        "strategy": strategy,
        "image_mib": round(image_bytes / 2**20, 1),
        "peak_rss_mib": round(stats["peak_kib"] / 1024, 1),
        "process_baseline_mib": round(stats["baseline_kib"] / 1024, 1),
        "peak_rss_over_image": round(stats["peak_kib"] * 1024 / image_bytes, 3),
        "engine_rss_over_image": round(engine_bytes / image_bytes, 3),
        "seconds": round(stats["seconds"], 2),
        "mpix_per_s": round(image_bytes / 3 / 1e6 / stats["seconds"], 2)
        if stats["seconds"]
        else None,
    }


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.common import git_commit, machine, write_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[4096, 8192, 16384])
    parser.add_argument("--volumes", type=int, nargs="*", default=[256, 512])
    parser.add_argument("--strategies", nargs="*", default=["simple", "weighted", "sati"])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--tile-3d", type=int, default=64)
    parser.add_argument("--overlap-3d", type=int, default=16)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="scratch folder (default: a temp dir)"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        jobs = [((s, s), args.tile, args.overlap) for s in args.sizes]
        jobs += [((s, s, s), args.tile_3d, args.overlap_3d) for s in args.volumes]
        for shape, tile, overlap in jobs:
            for strategy in args.strategies:
                row = measure(shape, strategy, tile, overlap, Path(tmp))
                rows.append(row)
                print(json.dumps(row), flush=True)
            (Path(tmp) / f"in-{'x'.join(map(str, shape))}.tif").unlink()
    argv_used = argv if argv is not None else sys.argv[1:]
    payload = {
        "config": {k: str(v) for k, v in vars(args).items()},
        "commit": git_commit(),
        "machine": machine(),
        "command": ("python -m benchmarks.memory_scaling " + " ".join(argv_used)).strip(),
        "rows": rows,
    }
    lines = [
        "# Out-of-core scaling: TIFF -> TIFF translation, peak RSS vs image size",
        "",
        f"`{payload['command']}` on {payload['machine']}, commit {payload['commit']}",
        "",
        "| image | strategy | image MiB | peak RSS MiB | process baseline MiB | peak RSS / image | (peak - baseline) / image | Mpx/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {'x'.join(map(str, r['shape']))} | {r['strategy']} | {r['image_mib']} | {r['peak_rss_mib']} | "
            f"{r['process_baseline_mib']} | {r['peak_rss_over_image']} | {r['engine_rss_over_image']} | {r['mpix_per_s']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print("wrote", *write_results("memory", payload, text))
    return payload


if __name__ == "__main__":
    main()
