"""Interrupted stitching resumes from its saved state and ends bit-identical to one run."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from click.testing import CliRunner
from torch import nn

import satikit.stitching.resume as resume_module
from satikit.cli import cli
from satikit.io.arrays import output_array, partial_files
from satikit.io.images import write_image
from satikit.io.reading import open_array
from satikit.stitching import stitch_on_grid
from satikit.stitching.grid import TileGrid

CASES = {  # name -> (strategy, order, batch_size)
    "simple": ("simple", "wavefront", 3),
    "weighted": ("weighted", "wavefront", 2),
    "weighted, bands of 2 rows": ("weighted", "wavefront", 7),
    "sati raster": ("sati", "raster", 1),
    "sati wavefront": ("sati", "wavefront", 2),
}
SHAPES = {2: ((45, 30), 12, 4), 3: ((21, 18, 15), 8, 2)}


class Interrupted(Exception):
    """Stands for a crash."""


class Counting:
    """A tiny context-dependent net that counts the tiles it sees and can crash on a call."""

    def __init__(self, ndim: int, crash_at: int | None = None):
        torch.manual_seed(0)
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.net = nn.Sequential(conv(2, 4, 3, padding=1), nn.Tanh(), conv(4, 2, 3, padding=1))
        self.crash_at, self.calls, self.tiles = crash_at, 0, 0

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.crash_at:
            raise Interrupted
        self.tiles += len(tiles)
        return self.net(tiles)


def run(image, fn, grid, case, out, **kwargs) -> np.ndarray:
    strategy, order, batch_size = CASES[case]
    return stitch_on_grid(
        image, fn, grid, strategy=strategy, order=order, batch_size=batch_size, out=out, **kwargs
    )


def setup(ndim: int, case: str) -> tuple[np.ndarray, TileGrid]:
    shape, tile, overlap = SHAPES[ndim]
    image = np.random.default_rng(ndim).standard_normal((2, *shape)).astype(np.float32)
    grid = TileGrid.create(shape, tile, overlap, sati=CASES[case][0] == "sati")
    return image, grid


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_resumed_run_equals_one_run_and_skips_finished_tiles(tmp_path, monkeypatch, ndim, case):
    image, grid = setup(ndim, case)
    reference = Counting(ndim)
    expected = run(image, reference, grid, case, np.zeros(image.shape, np.float32))
    saved_at: list[int] = []  # tiles fn had finished when each state was saved
    real_save = resume_module.Resumer.save
    crashing = Counting(ndim, crash_at=reference.calls // 2 + 1)

    def save(self, out, progress):
        real_save(self, out, progress)
        saved_at.append(crashing.tiles)

    monkeypatch.setattr(resume_module.Resumer, "save", save)
    out = np.full(image.shape, np.nan, np.float32)  # the rows written survive in `out`
    state = tmp_path / "state.safetensors"
    with pytest.raises(Interrupted):
        run(image, crashing, grid, case, out, state_path=state)
    finished = saved_at[-1]
    assert state.exists() and 0 < finished < reference.tiles

    resumed = Counting(ndim)
    result = run(image, resumed, grid, case, out, state_path=state, resume=True)
    assert result is out
    np.testing.assert_array_equal(out, expected)  # bit-identical
    # finished bands are not rerun; weighted's batches cross band borders, so the batch that
    # held the saved band's first tile runs again (its tiles of finished bands are dropped)
    rerun = resumed.tiles - (reference.tiles - finished)
    strategy, _, batch_size = CASES[case]
    assert 0 <= rerun <= batch_size if strategy == "weighted" else rerun == 0


@pytest.mark.parametrize("case", list(CASES))
def test_a_resumed_progress_bar_ends_at_its_total(tmp_path, monkeypatch, case):
    # finished tiles count as done at the start; the rerun batch of weighted is not counted twice
    import satikit.stitching as stitching

    bars: list[dict] = []

    class Bar:
        def __init__(self, total, **_):
            self.record = {"total": total, "done": 0}
            bars.append(self.record)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            self.record["done"] += n

    monkeypatch.setattr(stitching, "tqdm", Bar)
    image, grid = setup(2, case)
    reference = Counting(2)
    run(image, reference, grid, case, np.zeros(image.shape, np.float32))
    out, state = np.zeros(image.shape, np.float32), tmp_path / "state.safetensors"
    with pytest.raises(Interrupted):
        run(
            image, Counting(2, crash_at=reference.calls // 2 + 1), grid, case, out, state_path=state
        )
    run(image, Counting(2), grid, case, out, state_path=state, resume=True)
    assert bars[0]["done"] == bars[0]["total"] == bars[-1]["done"] == bars[-1]["total"]


def test_resume_refuses_a_state_of_another_setup(tmp_path):
    image, grid = setup(2, "sati wavefront")
    out = np.zeros(image.shape, np.float32)
    state = tmp_path / "state.safetensors"
    with pytest.raises(Interrupted):
        run(image, Counting(2, crash_at=12), grid, "sati wavefront", out, state_path=state)
    assert state.exists()
    other = TileGrid.create(grid.shape, 10, 4, sati=True)
    with pytest.raises(ValueError, match=r"different setup: tile \[12, 12\] \(now \[10, 10\]\)"):
        run(image, Counting(2), other, "sati wavefront", out, state_path=state, resume=True)
    with pytest.raises(ValueError, match="batch_size 2 \\(now 1\\)"):
        run(image, Counting(2), grid, "sati raster", out, state_path=state, resume=True)
    state.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable resume state"):
        run(image, Counting(2), grid, "sati wavefront", out, state_path=state, resume=True)


@pytest.mark.parametrize("strategy", ["none", "weighted"])
def test_resume_without_a_state_starts_from_the_beginning(tmp_path, strategy):
    image, grid = setup(2, "weighted")
    expected = stitch_on_grid(image, Counting(2), grid, strategy=strategy)
    out = np.zeros(image.shape, np.float32)
    state = tmp_path / "state.safetensors"
    stitch_on_grid(
        image, Counting(2), grid, strategy=strategy, out=out, state_path=state, resume=True
    )
    np.testing.assert_array_equal(out, expected)


# --- the CLI: `satikit translate ... --resume` ------------------------------------------------

TINY = "-o ngf 4 -o n_blocks 1 -o ndf 4 -o n_layers 1 -o pool_size 2".split()

# `satikit translate` that SIGKILLs itself right after the AT-th resume state is saved
DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    import satikit.stitching.resume as resume
    from satikit.cli import cli

    at, real, calls = int(sys.argv[1]), resume.Resumer.save, [0]

    def save(self, out, progress):
        real(self, out, progress)
        calls[0] += 1
        if calls[0] == at:
            os.kill(os.getpid(), signal.SIGKILL)

    resume.Resumer.save = save
    cli(sys.argv[2:], prog_name="satikit")
    """
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(0)
    images = {
        "x/a.tif": rng.integers(0, 256, (32, 32, 3), np.uint8),
        "y/a.tif": rng.integers(0, 256, (32, 32, 3), np.uint8),
        **{f"big/{n}.tif": rng.integers(0, 256, (200, 40, 3), np.uint8) for n in "abc"},
    }
    for name, image in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(root / name, image)
    args = ["train", "--x", str(root / "x"), "--y", str(root / "y"), "--out", str(root / "run")]
    args += ["--steps", "1", "--crop", "16", "--device", "cpu", "--quiet", *TINY]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return root


def translate(root: Path, source: str, target: Path, *extra: str):
    args = ["translate", str(root / "run"), str(root / source), str(target), "--device", "cpu"]
    return CliRunner().invoke(cli, [*args, "--quiet", *extra])


def interrupt_after(monkeypatch, saves: int) -> None:
    """Ctrl-C right after the ``saves``-th resume state is written."""
    real, calls = resume_module.Resumer.save, [0]

    def save(self, out, progress):
        real(self, out, progress)
        calls[0] += 1
        if calls[0] == saves:
            raise KeyboardInterrupt

    monkeypatch.setattr(resume_module.Resumer, "save", save)


def read(path: Path) -> np.ndarray:
    return tifffile.imread(path)


@pytest.mark.parametrize("strategy", ["sati", "weighted", "simple"])
def test_cli_resume_after_ctrl_c_equals_one_translation(trained, tmp_path, monkeypatch, strategy):
    options = ("--strategy", strategy, "--batch-size", "2")
    assert translate(trained, "big/a.tif", tmp_path / "ref.tif", *options).exit_code == 0
    target = tmp_path / "out.tif"
    interrupt_after(monkeypatch, 2)
    result = translate(trained, "big/a.tif", target, *options)
    assert result.exit_code == 1 and "--resume to continue" in result.output, result.output
    files = partial_files(target)
    assert not target.exists() and files.data.exists() and files.state.exists()
    monkeypatch.undo()
    result = translate(trained, "big/a.tif", target, "--resume")  # settings as recorded
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read(target), read(tmp_path / "ref.tif"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "ref.tif"]


def test_cli_resume_after_sigkill_equals_one_translation(trained, tmp_path):
    assert translate(trained, "big/a.tif", tmp_path / "ref.tif").exit_code == 0
    target = tmp_path / "out.tif"
    (tmp_path / "driver.py").write_text(DRIVER)
    args = ["translate", str(trained / "run"), str(trained / "big/a.tif"), str(target)]
    command = [
        sys.executable,
        str(tmp_path / "driver.py"),
        "3",
        *args,
        "--quiet",
        "--device",
        "cpu",
    ]
    killed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not target.exists() and partial_files(target).state.exists()
    result = translate(trained, "big/a.tif", target, "--resume", "--order", "auto")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read(target), read(tmp_path / "ref.tif"))


def test_cli_resume_with_other_settings_fails_in_one_line(trained, tmp_path, monkeypatch):
    target = tmp_path / "out.tif"
    interrupt_after(monkeypatch, 1)
    assert translate(trained, "big/a.tif", target).exit_code == 1
    monkeypatch.undo()
    result = translate(trained, "big/a.tif", target, "--resume", "--tile", "24")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--tile 24 (it used 32,32)" in errors[0], result.output
    assert partial_files(target).data.exists()  # still resumable with the right settings
    result = translate(trained, "big/b.tif", target, "--resume")
    assert result.exit_code == 2 and "input" in result.output


def test_cli_without_resume_replaces_a_stale_partial(trained, tmp_path, monkeypatch):
    assert translate(trained, "big/a.tif", tmp_path / "ref.tif").exit_code == 0
    target = tmp_path / "out.tif"
    interrupt_after(monkeypatch, 1)
    assert translate(trained, "big/a.tif", target).exit_code == 1
    monkeypatch.undo()
    result = translate(trained, "big/a.tif", target)
    assert result.exit_code == 0 and "replacing the partial output" in result.stderr
    np.testing.assert_array_equal(read(target), read(tmp_path / "ref.tif"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "ref.tif"]


def test_cli_resumes_a_folder_file_by_file(trained, tmp_path, monkeypatch):
    assert translate(trained, "big", tmp_path / "ref").exit_code == 0
    interrupt_after(monkeypatch, 10)  # 7 states per file: the interruption is in b.tif
    assert translate(trained, "big", tmp_path / "out").exit_code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        "a.tif"
    ]
    monkeypatch.undo()
    result = translate(trained, "big", tmp_path / "out", "--resume")
    assert result.exit_code == 0 and "a.tif is complete; skipped" in result.stderr, result.output
    for name in "abc":
        np.testing.assert_array_equal(
            read(tmp_path / "out" / f"{name}.tif"), read(tmp_path / "ref" / f"{name}.tif")
        )


# --- resumable outputs --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".npy"])
def test_resumable_output_survives_an_interruption_and_reopens(tmp_path, suffix):
    target = tmp_path / f"out{suffix}"
    files = partial_files(target)
    with (
        pytest.raises(KeyboardInterrupt),
        output_array(target, (6, 5, 3), np.uint8, resumable=True) as a,
    ):
        a[:3] = 7
        files.state.write_bytes(b"state")
        raise KeyboardInterrupt
    assert not target.exists() and files.data.exists() and files.state.exists()
    with output_array(target, (6, 5, 3), np.uint8, resume=True) as a:
        assert (np.asarray(a[:3]) == 7).all()  # the rows written before are kept
        a[3:] = 9
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    stored = np.load(target) if suffix == ".npy" else np.asarray(open_array(target)[...])
    np.testing.assert_array_equal(stored[:, 0, 0], [7, 7, 7, 9, 9, 9])


def test_resumable_output_is_removed_on_errors_and_checked_on_resume(tmp_path):
    target = tmp_path / "out.tif"
    with pytest.raises(RuntimeError), output_array(target, (4, 4), np.uint8, resumable=True):
        raise RuntimeError("a bug")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt), output_array(target, (4, 4), np.uint8, resumable=True):
        raise KeyboardInterrupt
    with pytest.raises(ValueError, match="without resuming"):
        with output_array(target, (5, 4), np.uint8, resume=True):
            pass


def test_cli_resume_keeps_the_input_range_it_started_with(trained, tmp_path, monkeypatch):
    options = ("--input-range", "0,510")  # uint8 values read at half their brightness
    assert translate(trained, "big/a.tif", tmp_path / "ref.tif", *options).exit_code == 0
    target = tmp_path / "out.tif"
    interrupt_after(monkeypatch, 2)
    assert translate(trained, "big/a.tif", target, *options).exit_code == 1
    monkeypatch.undo()
    result = translate(trained, "big/a.tif", target, "--resume", "--input-range", "0,255")
    assert result.exit_code == 2, result.output
    assert "--input-range 0,255 (it used 0,510)" in result.output
    assert translate(trained, "big/a.tif", target, "--resume").exit_code == 0
    np.testing.assert_array_equal(read(target), read(tmp_path / "ref.tif"))
    assert not np.array_equal(read(target), read_plain(trained, tmp_path))


def read_plain(root: Path, tmp_path: Path) -> np.ndarray:
    """``big/a.tif`` translated without an input range (its uint8 values as they are)."""
    assert translate(root, "big/a.tif", tmp_path / "plain.tif").exit_code == 0
    return read(tmp_path / "plain.tif")
