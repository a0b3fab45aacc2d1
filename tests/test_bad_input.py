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

import satikit.checkpoint.files
import satikit.io.arrays
import satikit.translation.translate
from satikit.checkpoint import load_adapter, load_config
from satikit.cli import cli
from satikit.io.images import write_image

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

    def translate(
        self, source: str = "test.tif", *extra: str, run: Path | None = None, out: str = "out.tif"
    ):
        run = run or self.run
        return ["translate", str(run), str(self.data / source), str(self.tmp / out), *extra]

    def evaluate(self, predictions: str, *extra: str) -> list[str]:
        return ["evaluate", str(self.data / predictions), str(self.data / "labels"),
                "--json", str(self.tmp / "report.json"), "--no-progress", *extra]  # fmt: skip

    def copied_run(self) -> Path:
        """A copy of the trained run this test may damage."""
        return Path(shutil.copytree(self.run, self.tmp / "run"))


def spread(image: np.ndarray, low: float, high: float, dtype) -> np.ndarray:
    """``image`` as ``dtype`` with ``low`` and ``high`` among its first pixels (so the sample
    that the value checks read sees exactly that range)."""
    image = image.astype(dtype)
    image.flat[:2] = low, high
    return image


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
    images |= {
        "float1000.tif": spread(rng.random((40, 40, 3)) * 1000, 0, 1000, np.float32),
        "uint16.tif": spread(rng.integers(0, 4096, (40, 40, 3)), 0, 4095, np.uint16),
        "int16.tif": spread(rng.integers(-100, 100, (40, 40, 3)), -100, 99, np.int16),
        "constant.tif": np.full((40, 40, 3), 7, np.uint16),
        "float1000/a.tif": spread(rng.random((32, 32, 3)) * 1000, 0, 1000, np.float32),
        "mixed/a.tif": rng.integers(0, 256, (32, 32, 3), np.uint8),
        "mixed/b.tif": rng.integers(0, 4096, (32, 32, 3), np.uint16),
        "int16/a.tif": rng.integers(-100, 100, (32, 32, 3), np.int16),
        "labels/a.tif": np.repeat(np.arange(4, dtype=np.uint16), 256).reshape(32, 32),
        "predictions16/a.tif": rng.integers(0, 65536, (32, 32, 3), np.uint16),
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


def into_a_file(p: Paths) -> list[str]:
    (p.tmp / "file").write_bytes(b"")
    return p.translate(out="file/out.tif")


def read_only_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The output folder cannot be written (as root, permissions do not stop writes)."""
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: not mode & os.W_OK and real(path, mode))


def damaged_partial(p: Paths) -> list[str]:
    (p.tmp / ".out.tif.partial.tif").write_bytes(b"not a tiff " * 10)
    return p.translate("test.tif", "--resume")


def disk_full_on(owner: object, name: str) -> Callable[[pytest.MonkeyPatch], None]:
    """Make ``owner.name(path, ...)`` raise ENOSPC naming the file it was given, as the OS
    does (here: one of the output's hidden partial files)."""

    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        def full(path, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(owner, name, full)

    return patch


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


WRITE_TILE = (satikit.io.arrays.ChannelLastSink, "__setitem__", 1)  # fails on the 2nd row band
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
    # values the run was not trained on
    "translate float32 0..1000": Case(
        lambda p: p.translate("float1000.tif"),
        "float32 values 0..1000 (sampled), outside [0, 1], where float images are read (1.0 is "
        "white: 255 in the uint8 images the run was trained on); pass --input-range LO,HI to map "
        "[LO, HI] to 0..255 (e.g. --input-range 0,1000,",
    ),
    "translate uint16": Case(
        lambda p: p.translate("uint16.tif"),
        "uint16 values 0..4095 (sampled), but the run was trained on uint8 images (0..255); pass "
        "--input-range LO,HI to map [LO, HI] to 0..255 (e.g. --input-range 0,4095,",
    ),
    "translate int16": Case(lambda p: p.translate("int16.tif"), "int16 values -100..99"),
    "translate --input-range 5,1": Case(
        lambda p: p.translate("test.tif", "--input-range", "5,1"),
        "Invalid value for '--input-range': expected LO,HI (two numbers, LO < HI) or auto",
    ),
    "translate --input-range auto of one value": Case(
        lambda p: p.translate("constant.tif", "--input-range", "auto"),
        "--input-range auto found only the value 7 in its sample",
    ),
    "train on float32 0..1000": Case(
        lambda p: p.train(x="float1000"), "float32 values 0..1000 (sampled), outside [0, 1]"
    ),
    "train on mixed dtypes": Case(lambda p: p.train(x="mixed"), "must share one dtype"),
    "train on int16": Case(lambda p: p.train(x="int16"), "int16 images cannot be trained on"),
    "evaluate uint16 predictions": Case(
        lambda p: p.evaluate("predictions16"),
        "but evaluate scores uint8 images (0..255); pass --input-range LO,HI",
    ),
    # the output path, as typed
    "translate into .png": Case(
        lambda p: p.translate(out="out.png"),
        "out.png: unsupported output type '.png'; use .tif/.tiff, .ome.tif, .zarr, .ome.zarr",
    ),
    "translate into a name without suffix": Case(
        lambda p: p.translate(out="out"), "out: unsupported output type (no suffix)"
    ),
    "translate into a missing folder": Case(
        lambda p: p.translate(out="nonexist/dir/out.tif"),
        "nonexist/dir/out.tif: its folder ",  # ... /nonexist/dir does not exist
    ),
    "translate into a file's folder": Case(into_a_file, "file/out.tif: "),
    "translate into a read-only folder": Case(
        lambda p: p.translate(), "cannot write into its folder", read_only_folder
    ),
    "translate resuming a damaged partial output": Case(
        damaged_partial,
        "out.tif: the partial output of the interrupted translation cannot be read",
    ),
    "disk full creating the output": Case(
        lambda p: p.translate(),
        "No space left on device: ",  # + the output the user typed (checked below)
        disk_full_on(satikit.io.arrays, "create_array"),
    ),
    "disk full writing the settings beside the output": Case(
        lambda p: p.translate(),
        "No space left on device: ",
        disk_full_on(satikit.translation.translate, "write_json"),
    ),
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
    # names what the user typed, never a hidden temporary file
    assert ".partial" not in result.output and ".resume." not in result.output, errors
    if args[0] == "translate":
        target = Path(args[3])
        if case.message == "No space left on device: ":  # the OS named a file: which one
            assert errors[0].split("No space left on device: ")[1].startswith(f"{target} ")
        if target.parent.is_dir():
            assert not [p.name for p in target.parent.iterdir() if p.name.startswith(".")]


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
