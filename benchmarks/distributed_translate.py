"""Distributed translation speed: ``torchrun`` with N processes against one process, per case.

Trains a small CycleGAN run (1 step: the weights do not matter for timing), writes random RGB
images, then times ``satikit translate`` side by side, interleaved over ``--repeats`` rounds:

- ``folder``: ``--files`` images of ``size / sqrt(files)`` px (the same pixels as one image);
- ``simple`` / ``weighted`` / ``sati``: one ``--size`` x ``--size`` image, same tile grid;

each once as one process (``python -m satikit translate``) and once as ``torchrun --standalone
--nproc_per_node N -m satikit translate``, every process with one torch thread
(``OMP_NUM_THREADS=1``, ``--threads 1``: N processes may use N cores, one process one). Reported
per case: the time the command itself reports (load the run, translate, write the ``.tif``),
the whole command's wall time (with Python / torch start-up and, for torchrun, the launcher and
process group), their ratios N processes / 1 process (below 1: faster), and whether both
outputs are identical. The machine's load average is recorded before and after: other jobs on
the cores change the ratios.

    python -m benchmarks.distributed_translate [--size 1536 --files 4 --tile 128 --overlap 32]
    python -m benchmarks.distributed_translate --size 512 --tile 64 --overlap 16 --no-write
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import git_commit, machine, write_results

CASES = ("folder", "simple", "weighted", "sati")
_REPORTED = re.compile(r"translated \d+ image\(s\) in ([0-9.]+) s")


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    paths = [root, str(Path(root) / "adapters"), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
    }


def _run(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``command``; returns (reported seconds, wall seconds)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=_env())
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    found = _REPORTED.search(done.stdout)
    if found is None:
        raise RuntimeError(f"no timing in the output of {' '.join(command)}:\n{done.stdout}")
    return float(found.group(1)), wall


def prepare(work: Path, args: argparse.Namespace) -> Path:
    """The run and the images under ``work``; returns the run folder."""
    from satikit.io.images import write_image

    rng = np.random.default_rng(0)
    images = {
        "x/a.tif": rng.integers(0, 256, (64, 64, 3), np.uint8),
        "y/a.tif": rng.integers(0, 256, (64, 64, 3), np.uint8),
        "big.tif": rng.integers(0, 256, (args.size, args.size, 3), np.uint8),
    }
    side = round(args.size / math.sqrt(args.files))
    for n in range(args.files):
        images[f"folder/{n}.tif"] = rng.integers(0, 256, (side, side, 3), np.uint8)
    for name, image in images.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(work / name, image)
    options = ["-o", "ngf", str(args.ngf), "-o", "n_blocks", str(args.blocks), "-o", "ndf", "8"]
    command = [sys.executable, "-m", "satikit", "train", "--x", "x", "--y", "y", "--out", "run"]
    command += ["--steps", "1", "--crop", "32", "--device", "cpu", "--quiet", *options]
    subprocess.run(command, check=True, capture_output=True, cwd=work, env=_env())
    return work / "run"


def _command(case: str, procs: int, args: argparse.Namespace, out: Path) -> list[str]:
    """``satikit translate`` of ``case`` into ``out``, as one process or under torchrun."""
    source = "folder" if case == "folder" else "big.tif"
    strategy = "sati" if case == "folder" else case
    tail = ["translate", "run", source, str(out), "--device", "cpu", "--quiet", "--threads", "1"]
    tail += ["--strategy", strategy, "--tile", str(args.tile), "--overlap", str(args.overlap)]
    if procs == 1:
        return [sys.executable, "-m", "satikit", *tail]
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)]
    return [sys.executable, *launcher, "-m", "satikit", *tail]


def _same(a: Path, b: Path) -> bool:
    from satikit.io.reading import open_array

    pairs = [(a, b)] if a.is_file() else [(p, b / p.name) for p in sorted(a.iterdir())]
    return all(
        np.array_equal(np.asarray(open_array(x)[...]), np.asarray(open_array(y)[...]))
        for x, y in pairs
    )


def measure(work: Path, args: argparse.Namespace) -> list[dict]:
    """Time every case with 1 and ``nproc`` processes, interleaved; medians."""
    times: dict[tuple[str, int], list[tuple[float, float]]] = {}
    identical = {}
    for round_ in range(args.repeats):
        for case in args.cases:
            outputs = {}
            for procs in (1, args.nproc):
                out = work / f"out-{case}-{procs}-{round_}" / ("y" if case == "folder" else "y.tif")
                out.parent.mkdir(parents=True)
                command = _command(case, procs, args, out)
                times.setdefault((case, procs), []).append(_run(command, work))
                outputs[procs] = out
            identical[case] = identical.get(case, True) and _same(outputs[1], outputs[args.nproc])
            print(f"round {round_ + 1}: {case} done", file=sys.stderr)
    rows = []
    for case in args.cases:
        one = [statistics.median(t[i] for t in times[(case, 1)]) for i in (0, 1)]
        many = [statistics.median(t[i] for t in times[(case, args.nproc)]) for i in (0, 1)]
        rows.append(
            {
                "case": case,
                "one_process_s": round(one[0], 2),
                "n_processes_s": round(many[0], 2),
                "ratio": round(many[0] / one[0], 3),
                "one_process_wall_s": round(one[1], 2),
                "n_processes_wall_s": round(many[1], 2),
                "wall_ratio": round(many[1] / one[1], 3),
                "identical": identical[case],
            }
        )
    return rows


def markdown(payload: dict) -> str:
    config = payload["config"]
    lines = [
        f"# Distributed translation: {config['nproc']} processes / 1 process",
        "",
        f"- command: `{payload['command']}`",
        f"- machine: {payload['machine']}",
        f"- commit: {payload['commit']}",
        f"- load average (1 min) before / after: {payload['load_before']} / {payload['load_after']}",
        f"- image {config['size']}^2 RGB (folder: {config['files']} images, same pixels), tile "
        f"{config['tile']}, overlap {config['overlap']}, CycleGAN ngf {config['ngf']}, "
        f"{config['blocks']} blocks, CPU, 1 thread per process, median of {config['repeats']}",
        "",
        "| case | 1 process (s) | N processes (s) | ratio | 1 process wall (s) | "
        "N processes wall (s) | wall ratio | identical |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r['case']} | {r['one_process_s']} | {r['n_processes_s']} | {r['ratio']} | "
        f"{r['one_process_wall_s']} | {r['n_processes_wall_s']} | {r['wall_ratio']} | "
        f"{r['identical']} |"
        for r in payload["results"]
    ]
    lines += [
        "",
        "Times: what `satikit translate` reports (load the run, translate, write); wall: the "
        "whole command, with start-up (torchrun: launcher and process group too).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1536, help="side of the one image (px)")
    parser.add_argument("--files", type=int, default=4, help="images in the folder case")
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--ngf", type=int, default=16, help="CycleGAN generator width")
    parser.add_argument("--blocks", type=int, default=4, help="CycleGAN residual blocks")
    parser.add_argument("--nproc", type=int, default=2, help="processes of the torchrun runs")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="satikit-dist-") as tmp:
        work = Path(tmp)
        prepare(work, args)
        results = measure(work, args)
    argv_used = argv if argv is not None else sys.argv[1:]
    payload = {
        "config": vars(args),
        "commit": git_commit(),
        "machine": machine(),
        "command": ("python -m benchmarks.distributed_translate " + " ".join(argv_used)).strip(),
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 2),
        "results": results,
    }
    text = markdown(payload)
    print(text)
    if not args.no_write:
        print("wrote", *write_results("speed", payload, text, suffix="-distributed-translate"))
    return payload


if __name__ == "__main__":
    main()
