"""`torchrun -m satikit translate` with 2 CPU processes (gloo) == one process, and resumes.

Each torchrun job costs seconds of start-up, so one job runs all the cases that should
succeed (a worker script calling the CLI once per case, in one process group); the kill and the
failure need jobs of their own. They synchronise on events (a resume state being saved, a tile
being run), never on sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from satikit.cli import cli
from satikit.io.arrays import partial_files
from satikit.io.images import write_image
from satikit.io.reading import open_array
from satikit.translation.distributed import deal_files, row_ranges

TINY = "-o ngf 4 -o n_blocks 1 -o ndf 4 -o n_layers 1 -o pool_size 2".split()
GRID = ["--tile", "24", "--overlap", "6"]  # 6 x 5 tiles on the 120 x 88 image

# Runs several `satikit translate` commands (JSON list of argument lists) in one torchrun job.
WORKER = textwrap.dedent(
    """
    import json, sys
    import torch.distributed as dist
    from satikit.cli import cli

    dist.init_process_group("gloo")
    for args in json.loads(open(sys.argv[1]).read()):
        cli(args, prog_name="satikit", standalone_mode=False)
    dist.destroy_process_group()
    """
)

# `satikit translate` whose rank 1 is SIGKILLed right after it saves its first resume state
# (a band of the SATI pipeline, or its rows' engine state).
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import satikit.stitching.pipeline as pipeline
    import satikit.stitching.resume as resume
    from satikit.cli import cli

    def killing(save):
        def wrapped(*args, **kwargs):
            save(*args, **kwargs)
            if os.environ["RANK"] == "1":
                os.kill(os.getpid(), signal.SIGKILL)
        return wrapped

    pipeline._States.save = killing(pipeline._States.save)
    resume.Resumer.save = killing(resume.Resumer.save)
    cli(sys.argv[1:], prog_name="satikit")
    """
)

# `satikit translate` whose rank 1 fails on its first tile with a message of its own.
FAILING = textwrap.dedent(
    """
    import os, sys
    import satikit.stitching.runner as runner
    from satikit.cli import cli

    call = runner.TileFn.__call__

    def failing(self, tiles, indices=None):
        if os.environ["RANK"] == "1":
            raise ValueError("tile exploded on rank 1")
        return call(self, tiles, indices)

    runner.TileFn.__call__ = failing
    cli(sys.argv[1:], prog_name="satikit")
    """
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("distributed")
    rng = np.random.default_rng(0)
    images = {
        "x/a.tif": rng.integers(0, 256, (32, 32, 3), np.uint8),
        "y/a.tif": rng.integers(0, 256, (32, 32, 3), np.uint8),
        "big.tif": rng.integers(0, 256, (120, 88, 3), np.uint8),
        **{
            f"folder/{n}.tif": rng.integers(0, 256, (40 + 16 * i, 48, 3), np.uint8)
            for i, n in enumerate("abcd")
        },
    }
    for name, image in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(root / name, image)
    args = ["train", "--x", str(root / "x"), "--y", str(root / "y"), "--out", str(root / "run")]
    args += ["--steps", "1", "--crop", "16", "--device", "cpu", "--quiet", *TINY]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return root


def translate_args(root: Path, source: str, target: Path, *extra: str) -> list[str]:
    return [
        "translate",
        str(root / "run"),
        str(root / source),
        str(target),
        "--device",
        "cpu",
        *extra,
    ]


def single(root: Path, source: str, target: Path, *extra: str) -> None:
    result = CliRunner().invoke(cli, [*translate_args(root, source, target, *extra), "--quiet"])
    assert result.exit_code == 0, result.output


def torchrun(
    tmp_path: Path, *command: str, logs: Path | None = None
) -> subprocess.CompletedProcess:
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    ]
    if logs is not None:  # each rank's output in its own files
        launcher += ["--log-dir", str(logs), "--redirects", "3"]
    env = {**os.environ, "SATIKIT_DIST_TIMEOUT": "60"}  # a lost message fails, never hangs
    return subprocess.run(
        [*launcher, *command], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )


def script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def read(path: Path) -> np.ndarray:
    return np.asarray(open_array(path)[...])


CASES = {  # name -> (input, output, options)
    "folder": ("folder", "folder_out", ["--strategy", "sati"]),
    "simple": ("big.tif", "simple.tif", ["--strategy", "simple", "--batch-size", "3"]),
    "weighted": (
        "big.tif",
        "weighted.ome.zarr",
        ["--strategy", "weighted", "--pyramid-tile", "16"],
    ),
    "sati": ("big.tif", "sati.ome.zarr", ["--strategy", "sati", "--pyramid-tile", "16"]),
    "sati raster": ("big.tif", "raster.npy", ["--strategy", "sati", "--order", "raster"]),
    "sati batched": ("big.tif", "batched.ome.tif", ["--strategy", "sati", "--batch-size", "3"]),
}


def test_two_processes_write_what_one_process_writes(trained, tmp_path):
    commands = [
        translate_args(trained, source, tmp_path / "dist" / target, *GRID, *options, "--quiet")
        for source, target, options in CASES.values()
    ]
    commands[1] = [arg for arg in commands[1] if arg != "--quiet"]  # one progress bar to see
    (tmp_path / "dist").mkdir()
    jobs = script(tmp_path, "jobs.json", json.dumps(commands))
    done = torchrun(tmp_path, script(tmp_path, "worker.py", WORKER), jobs, logs=tmp_path / "logs")
    assert done.returncode == 0, done.stderr[-3000:]
    out = {
        rank: next((tmp_path / "logs").rglob(f"{rank}/stdout.log")).read_text() for rank in (0, 1)
    }
    err = {
        rank: next((tmp_path / "logs").rglob(f"{rank}/stderr.log")).read_text() for rank in (0, 1)
    }
    assert out[0].count("with 2 processes") == len(CASES) and out[1] == ""  # said once
    assert "stitch[simple]" in err[0] and "stitch[" not in err[1]  # progress on rank 0 only
    for name, (source, target, options) in CASES.items():
        single(trained, source, tmp_path / "one" / target, *GRID, *options)
        if name == "folder":
            names = sorted(p.name for p in (tmp_path / "one" / target).iterdir())
            assert sorted(p.name for p in (tmp_path / "dist" / target).iterdir()) == names
            pairs = [(f"{target}/{n}", f"{target}/{n}") for n in names]
        else:
            pairs = [(target, target)]
        for one, dist in pairs:
            np.testing.assert_array_equal(
                read(tmp_path / "dist" / dist), read(tmp_path / "one" / one), err_msg=name
            )
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == sorted(
        t for _, t, _ in CASES.values()
    )


@pytest.mark.parametrize(
    "target,options",
    [
        ("sati.ome.zarr", ["--strategy", "sati", "--pyramid-tile", "16"]),
        ("weighted.tif", ["--strategy", "weighted"]),
    ],
)
def test_a_killed_job_resumes(trained, tmp_path, target, options):
    single(trained, "big.tif", tmp_path / f"one_{target}", *GRID, *options)
    out = tmp_path / target
    args = translate_args(trained, "big.tif", out, *GRID, *options, "--quiet")[1:]
    killed = torchrun(tmp_path, script(tmp_path, "killer.py", KILLER), "translate", *args)
    assert killed.returncode != 0 and f"exitcode  : -{int(signal.SIGKILL)}" in killed.stderr, (
        killed.stderr[-3000:]
    )
    files = partial_files(out)
    assert not out.exists() and files.data.exists() and any(files.shards.iterdir())
    resumed = torchrun(
        tmp_path, "-m", "satikit", *translate_args(trained, "big.tif", out, "--resume", "--quiet")
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    np.testing.assert_array_equal(read(out), read(tmp_path / f"one_{target}"))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # cleaned up


def test_a_failing_process_stops_the_other_with_its_error(trained, tmp_path):
    out = tmp_path / "sati.tif"
    args = translate_args(trained, "big.tif", out, *GRID, "--strategy", "sati", "--quiet")[1:]
    failed = torchrun(tmp_path, script(tmp_path, "failing.py", FAILING), "translate", *args)
    assert failed.returncode != 0
    assert failed.stderr.count("Error: tile exploded on rank 1") == 1, failed.stderr[-3000:]
    assert not out.exists() and partial_files(out).data.exists()  # kept for --resume


def test_row_ranges_are_contiguous_and_aligned():
    assert row_ranges(120, 2) == [(0, 60), (60, 120)]
    assert row_ranges(120, 2, 16) == [(0, 64), (64, 120)]
    assert row_ranges(120, 3, 256) == [(0, 0), (0, 0), (0, 120)]
    for height, size, align in [(1, 4, 1), (97, 3, 5), (1000, 7, 64)]:
        ranges = row_ranges(height, size, align)
        assert ranges[0][0] == 0 and ranges[-1][1] == height and len(ranges) == size
        assert all(a[1] == b[0] and b[0] % align == 0 for a, b in zip(ranges, ranges[1:]))


def test_files_are_dealt_largest_first():
    assert deal_files([5, 1, 4, 4], 2) == [[0, 1], [2, 3]]
    assert deal_files([1, 1, 1], 4) == [[0], [1], [2], []]


def test_benchmark_times_the_same_command_with_and_without_torchrun(tmp_path):
    from argparse import Namespace

    from benchmarks import distributed_translate as bench

    args = Namespace(tile=64, overlap=16, size=96, files=4, ngf=4, blocks=1, nproc=2, repeats=1)
    one = bench._command("weighted", 1, args, tmp_path / "y.tif")
    two = bench._command("weighted", 2, args, tmp_path / "y.tif")
    assert two[-len(one) + 1 :] == one[1:]  # `-m satikit translate ...` alike
    assert two[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    assert bench._command("folder", 1, args, tmp_path)[5:7] == ["folder", str(tmp_path)]
    row = dict(case="sati", one_process_s=4.0, n_processes_s=2.4, ratio=0.6)
    row |= dict(one_process_wall_s=7.0, n_processes_wall_s=9.0, wall_ratio=1.286, identical=True)
    payload = dict(config={**vars(args), "cases": ["sati"]}, command="c", machine="m", commit="x")
    text = bench.markdown({**payload, "load_before": 1, "load_after": 2, "results": [row]})
    assert "| sati | 4.0 | 2.4 | 0.6 | 7.0 | 9.0 | 1.286 | True |" in text
