"""Resident memory of a translation into a pyramidal OME-TIFF, versus the output's size.

A uint8 RGB TIFF of ``size`` x ``size`` (default 16384: 768 MiB) with smooth, slide-like
content is translated by a cheap per-pixel network (a 1 x 1 convolution and tanh) with the
``simple`` strategy into ``OUT.ome.tif`` through :func:`satikit.io.ome.viewer_output`: the full
resolution is written band by band into a memory-mapped partial TIFF, then the pyramid is built
from it on disk and written tile by tile, zlib-compressed. The run happens in a fresh subprocess
so its peak RSS (``VmHWM``) is its own; the figure to watch is

    (peak RSS - RSS after imports and model) / output bytes   (acceptance: below 0.5)

reported for the full-resolution phase and for the whole run (pyramid included).

    python -m benchmarks.ome_memory [--size 16384] [--workdir /big/scratch] [--no-write]

Results: ``benchmarks/results/memory/<date>-<commit>-ome.json`` and ``.md``.
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
from satikit.io.arrays import ChannelFirst
from satikit.io.reading import open_array
from satikit.encoding import decode, encode
from satikit.io.ome import PyramidOptions, viewer_output
from satikit.stitching import stitch
src, dst, strategy, tile, overlap, compression = sys.argv[1:7]
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.Tanh()).eval()
fn = lambda t: net(t) * 0.5 + 0.5
def status(field):  # this process's own counters (ru_maxrss would include the parent's)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field + ":"))
base = status("VmHWM")
stored = open_array(src)
size = stored.shape[:2]
start = time.perf_counter()
options = PyramidOptions(tile=256, compression=compression)
decoder = lambda b: decode(b, "y", dtype=np.uint8)
with viewer_output(dst, (3, *size), np.uint8, transform=decoder, options=options) as out:
    view = ChannelFirst(stored, channel_last=True, transform=lambda b: encode(b, "x"))
    stitch(view, fn, tile=int(tile), overlap=int(overlap), strategy=strategy, batch_size=4, out=out)
    level0_peak, level0_seconds = status("VmHWM"), time.perf_counter() - start
seconds = time.perf_counter() - start
print(json.dumps({"baseline_kib": base, "level0_peak_kib": level0_peak, "peak_kib": status("VmHWM"),
                  "level0_seconds": level0_seconds, "seconds": seconds}))
"""


def make_input(path: Path, size: int) -> None:
    """A smooth uint8 RGB TIFF with a little noise, written band by band (never whole)."""
    import numpy as np
    import tifffile

    array = tifffile.memmap(path, shape=(size, size, 3), dtype=np.uint8, photometric="rgb")
    rng = np.random.default_rng(0)
    x = np.arange(size, dtype=np.float32)[None, :]
    for first in range(0, size, 256):
        y = np.arange(first, min(first + 256, size), dtype=np.float32)[:, None]
        waves = (np.sin(y / 97) * np.cos(x / 61), np.sin((x + y) / 131), np.cos((x - y) / 53))
        for c, wave in enumerate(waves):
            noise = rng.integers(0, 8, wave.shape, dtype=np.uint8)
            array[first : first + 256, :, c] = (120 + 120 * wave).astype(np.uint8) + noise
    array.flush()
    del array


def measure(args: argparse.Namespace, workdir: Path) -> dict:
    src, dst = workdir / "in.tif", workdir / "out.ome.tif"
    make_input(src, args.size)
    command = [sys.executable, "-c", CHILD, str(src), str(dst), args.strategy]
    command += [str(args.tile), str(args.overlap), args.compression]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    output_bytes = 3 * args.size**2
    with __import__("tifffile").TiffFile(dst) as tif:
        levels = [list(level.shape) for level in tif.series[0].levels]
        is_ome = tif.is_ome
    file_bytes = dst.stat().st_size

    def mib(kib: float) -> float:
        return round(kib / 1024, 1)

    return {
        "shape": [args.size, args.size, 3],
        "strategy": args.strategy,
        "output_mib": round(output_bytes / 2**20, 1),
        "file_mib": round(file_bytes / 2**20, 1),
        "is_ome": is_ome,
        "levels": levels,
        "process_baseline_mib": mib(stats["baseline_kib"]),
        "level0_peak_rss_mib": mib(stats["level0_peak_kib"]),
        "peak_rss_mib": mib(stats["peak_kib"]),
        "level0_growth_over_output": round(
            (stats["level0_peak_kib"] - stats["baseline_kib"]) * 1024 / output_bytes, 3
        ),
        "growth_over_output": round(
            (stats["peak_kib"] - stats["baseline_kib"]) * 1024 / output_bytes, 3
        ),
        "level0_seconds": round(stats["level0_seconds"], 1),
        "seconds": round(stats["seconds"], 1),
    }


def markdown(payload: dict) -> str:
    r = payload["row"]
    return "\n".join(
        [
            "# Pyramidal OME-TIFF output: resident memory vs output size",
            "",
            f"`{payload['command']}` on {payload['machine']}, commit {payload['commit']}",
            "",
            "| output | strategy | output MiB | file MiB | levels | process baseline MiB "
            "| peak RSS MiB | growth / output (full res.) | growth / output (all) | s (full res.) "
            "| s (all) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {'x'.join(map(str, r['shape']))} .ome.tif | {r['strategy']} | {r['output_mib']} "
            f"| {r['file_mib']} | {len(r['levels'])} | {r['process_baseline_mib']} "
            f"| {r['peak_rss_mib']} | {r['level0_growth_over_output']} "
            f"| {r['growth_over_output']} | {r['level0_seconds']} | {r['seconds']} |",
            "",
            "Growth = peak RSS minus the RSS after imports and model; target: "
            "below 0.5 of the output size.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.common import git_commit, machine, write_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--strategy", default="simple", choices=["simple", "weighted", "sati"])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--compression", default="zlib", choices=["zlib", "none"])
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (temp dir)")
    parser.add_argument("--no-write", action="store_true", help="print only, write no results")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        row = measure(args, Path(tmp))
    print(json.dumps(row), flush=True)
    argv_used = argv if argv is not None else sys.argv[1:]
    payload = {
        "config": {k: str(v) for k, v in vars(args).items()},
        "commit": git_commit(),
        "machine": machine(),
        "command": ("python -m benchmarks.ome_memory " + " ".join(argv_used)).strip(),
        "row": row,
    }
    if not args.no_write:
        paths = write_results("memory", payload, markdown(payload), suffix="-ome")
        print("wrote", *paths)
    return payload


if __name__ == "__main__":
    main()
