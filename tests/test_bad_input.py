"""Bad input at the CLI: one clear line naming the problem, a non-zero exit, no traceback."""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import satikit.arrays
import satikit.checkpoint.files
from satikit.checkpoint import load_adapter, load_config
from satikit.cli import cli
from satikit.data.io import write_image

TINY = "-o ngf 4 -o n_blocks 1 -o ndf 4 -o n_layers 1 -o pool_size 2".split()


@dataclass
class Paths:
    """The shared data and trained run, and this test's own folder."""

    data: Path
    run: Path
    tmp: Path

    def train(
        self, *extra: str, x: str = "x", y: str = "y", out: str = "new", options=TINY
    ) -> list[str]:
        return [
            "train", "--x", str(self.data / x), "--y", str(self.data / y),
            "--out", str(self.tmp / out), "--steps", "1", "--crop", "16", "--device", "cpu",
            "--quiet", *options, *extra,
        ]  # fmt: skip

    def translate(self, source: str = "test.tif", *extra: str, run: Path | None = None):
        run = run or self.run
        return ["translate", str(run), str(self.data / source), str(self.tmp / "out.tif"), *extra]

    def copied_run(self) -> Path:
        """A copy of the trained run this test may damage."""
        return Path(shutil.copytree(self.run, self.tmp / "run"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    images = {
        "x/a.tif": rng.integers(0, 256, (32, 32, 3), np.uint8),
        "y/a.tif": rng.integers(0, 256, (32, 32, 3), np.uint8),
        "grey/a.tif": rng.integers(0, 256, (32, 32), np.uint8),
        "test.tif": rng.integers(0, 256, (40, 40, 3), np.uint8),
        "grey.tif": rng.integers(0, 256, (40, 40), np.uint8),
        "volume.tif": rng.integers(0, 256, (8, 40, 40, 3), np.uint8),
    }
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        image = rng.random((16, 16, 3)).astype(np.float32)
        image[5, 7, 1] = value
        images[f"{name}.tif"] = image
        images[f"{name}/a.tif"] = image
    for name, image in images.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(data / name, image)
    for folder in ("empty", "garbage", "truncated"):
        (data / folder).mkdir()
    (data / "empty.tif").write_bytes(b"")
    (data / "garbage.tif").write_bytes(b"not a tiff at all " * 20)
    (data / "truncated.tif").write_bytes((data / "test.tif").read_bytes()[:3000])
    for folder in ("empty", "garbage", "truncated"):
        shutil.copy(data / f"{folder}.tif", data / folder / "a.tif")
    run = data / "run"
    result = CliRunner().invoke(cli, Paths(data, run, data).train(out="run"))
    assert result.exit_code == 0, result.output
    return data, run


# -- ways to damage a copy of the run ------------------------------------------------------
def edit_config(p: Paths, change: Callable[[dict], None]) -> Path:
    run = p.copied_run()
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config))
    return run


def other_architecture(p: Paths) -> list[str]:
    run = edit_config(p, lambda c: c["adapter"]["options"].update(ngf=8))
    return p.translate(run=run)


def unknown_run_adapter(p: Paths) -> list[str]:
    run = edit_config(p, lambda c: c["adapter"].update(name="nope"))
    return p.translate(run=run)


def truncated_weights(p: Paths, checksums: bool = True) -> list[str]:
    run = edit_config(p, lambda c: None if checksums else c.pop("checkpoint"))
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return p.translate(run=run)


def tampered_weights(p: Paths) -> list[str]:
    run = p.copied_run()
    data = bytearray((run / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF  # a weight, not the header: only the checksum sees it
    (run / "model.safetensors").write_bytes(bytes(data))
    return p.translate(run=run)


def tampered_state(p: Paths) -> list[str]:
    run = p.copied_run()
    data = bytearray((run / "state.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (run / "state.safetensors").write_bytes(bytes(data))
    return ["train", "--out", str(run), "--resume", "--steps", "2", "--quiet"]


def existing_output(p: Paths) -> list[str]:
    (p.tmp / "out.tif").write_bytes(b"keep me")
    return p.translate()


def existing_run(p: Paths) -> list[str]:
    args = p.train()
    args[args.index("--out") + 1] = str(p.run)
    return args


def disk_full(owner: object, name: str, calls_before: int) -> Callable[[pytest.MonkeyPatch], None]:
    """Make calls of ``owner.name`` after the first ``calls_before`` raise ENOSPC."""

    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        real, calls = getattr(owner, name), [0]

        def full(*args, **kwargs):
            calls[0] += 1
            if calls[0] > calls_before:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, full)

    return patch


WRITE_TILE = (satikit.arrays.ChannelLastSink, "__setitem__", 1)  # fails on the 2nd row band
SECOND_STATE = (satikit.checkpoint.files, "save_file", 3)  # fails on the 2nd checkpoint's state


@dataclass
class Case:
    args: Callable[[Paths], list[str]]
    message: str
    patch: Callable[[pytest.MonkeyPatch], None] | None = None


CASES: dict[str, Case] = {
    # wrong dims / channels
    "translate 3D volume with a 2D run": Case(
        lambda p: p.translate("volume.tif"), "expected 2 spatial axes"
    ),
    "translate grey with an RGB run": Case(
        lambda p: p.translate("grey.tif"), "1 channels; the run was trained on 3"
    ),
    "train --dims 3 on 2D images": Case(
        lambda p: p.train("--dims", "3"), "looks like a 2D image; check --dims"
    ),
    "train grey X, RGB Y with SATI": Case(lambda p: p.train(x="grey"), "same channels"),
    # SATI tile <= 2 x overlap
    "translate sati tile = 2 x overlap": Case(
        lambda p: p.translate("test.tif", "--strategy", "sati", "--tile", "16", "--overlap", "8"),
        "SATI needs tile > 2 x overlap",
    ),
    "translate sati tile = 2 x (overlap + margin)": Case(
        lambda p: p.translate(
            "test.tif", "--strategy", "sati", "--tile", "16", "--overlap", "4", "--margin", "4"
        ),
        "SATI needs tile > 2 x (overlap + margin)",
    ),
    "translate weighted with a margin": Case(
        lambda p: p.translate("test.tif", "--strategy", "weighted", "--margin", "4"),
        "margin is a SATI setting",
    ),
    "train overlap = crop / 2": Case(lambda p: p.train("--overlap", "8"), "below half the crop"),
    # empty or unreadable TIFF
    "translate empty TIFF": Case(lambda p: p.translate("empty.tif"), "file is empty"),
    "translate garbage TIFF": Case(lambda p: p.translate("garbage.tif"), "cannot read image"),
    "translate truncated TIFF": Case(lambda p: p.translate("truncated.tif"), "cannot read image"),
    "train on empty TIFF": Case(lambda p: p.train(x="empty"), "file is empty"),
    "train on garbage TIFF": Case(lambda p: p.train(x="garbage"), "cannot read image"),
    "train on truncated TIFF": Case(lambda p: p.train(x="truncated"), "cannot read image"),
    # NaN / inf
    "translate NaN image": Case(lambda p: p.translate("nan.tif"), "non-finite values"),
    "translate inf image": Case(lambda p: p.translate("inf.tif"), "non-finite values"),
    "train on NaN image": Case(lambda p: p.train(x="nan"), "non-finite values"),
    "train on inf image": Case(lambda p: p.train(y="inf"), "non-finite values"),
    # unknown adapter / backbone
    "train unknown adapter": Case(lambda p: p.train("--adapter", "nope"), "unknown adapter 'nope'"),
    "train unknown timm backbone": Case(
        lambda p: p.train("--adapter", "timm", "--backbone", "nope", options=()),
        "unknown timm backbone 'nope'",
    ),
    "translate run of unknown adapter": Case(unknown_run_adapter, "unknown adapter 'nope'"),
    # checkpoints
    "config does not match weights": Case(other_architecture, "does not fit the 'cyclegan'"),
    "truncated weights": Case(truncated_weights, "checksum differs"),
    "truncated weights, no checksums": Case(
        lambda p: truncated_weights(p, checksums=False), "not a readable safetensors file"
    ),
    "tampered weights": Case(tampered_weights, "checksum differs"),
    "tampered resume state": Case(tampered_state, "checksum differs"),
    "resume without a run": Case(
        lambda p: ["train", "--out", str(p.tmp), "--resume"], "not a satikit run directory"
    ),
    # existing outputs
    "translate onto an existing file": Case(existing_output, "exists"),
    "train into an existing run": Case(existing_run, "already holds a run"),
    # full disk
    "disk full while translating": Case(
        lambda p: p.translate(), "No space left on device", disk_full(*WRITE_TILE)
    ),
    "disk full while checkpointing": Case(
        lambda p: p.train("--steps", "3", "--checkpoint-every", "1", out="full"),
        "No space left on device",
        disk_full(*SECOND_STATE),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_clear_line(shared, tmp_path, monkeypatch, name):
    case = CASES[name]
    paths = Paths(*shared, tmp_path)
    args = case.args(paths)
    if case.patch is not None:
        case.patch(monkeypatch)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and case.message in errors[0], result.output


def test_full_disk_leaves_no_partial_output(shared, tmp_path, monkeypatch):
    paths = Paths(*shared, tmp_path)
    disk_full(*WRITE_TILE)(monkeypatch)
    result = CliRunner().invoke(cli, paths.translate())
    assert "no partial output" in result.output
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary file


def test_full_disk_keeps_the_last_complete_checkpoint(shared, tmp_path, monkeypatch):
    paths = Paths(*shared, tmp_path)
    disk_full(*SECOND_STATE)(monkeypatch)
    args = paths.train("--steps", "3", "--checkpoint-every", "1", out="full")
    result = CliRunner().invoke(cli, args)
    assert "last complete checkpoint" in result.output
    run = tmp_path / "full"
    assert load_config(run).training.step == 1
    load_adapter(run)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    resumed = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", "--quiet"])
    assert resumed.exit_code == 0 and load_config(run).training.step == 3
