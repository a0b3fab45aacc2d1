"""Training survives SIGKILL at any moment: the last complete checkpoint loads, --resume ends
where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from satikit.checkpoint import PENDING_NAME, load_adapter, load_config, load_train_state
from satikit.cli import cli
from satikit.io.images import write_image

STEPS = 6
TINY = "-o ngf 4 -o n_blocks 1 -o ndf 4 -o n_layers 1 -o pool_size 2".split()

# `satikit train` with one function of satikit.checkpoint.files wrapped, acting on its AT-th
# call before it runs: "kill" SIGKILLs the process itself (a kill at an exact point of a
# checkpoint write); "pause" prints READY and blocks until the process is killed from outside
# (the test reads that line: it synchronises on the event, never on time).
DRIVER = textwrap.dedent(
    """
    import os, signal, sys, threading
    import satikit.checkpoint.files as checkpoint
    from satikit.cli import cli

    name, action, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    real, calls = getattr(checkpoint, name), [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == at and action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if calls[0] == at and action == "pause":
            print("READY", flush=True)
            threading.Event().wait()  # until SIGKILL
        return real(*args, **kwargs)

    setattr(checkpoint, name, wrapped)
    cli(sys.argv[4:], prog_name="satikit")
    """
)
READY = "READY"


def train_args(data, run) -> list[str]:
    return [
        "train", "--x", str(data / "x"), "--y", str(data / "y"), "--out", str(run),
        "--steps", str(STEPS), "--crop", "16", "--device", "cpu", "--quiet", "--threads", "1",
        "--checkpoint-every", "1", *TINY,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    rng = np.random.default_rng(0)
    for domain in "xy":
        (root / domain).mkdir()
        write_image(root / domain / "a.tif", rng.integers(0, 256, (40, 40, 3), np.uint8))
    result = CliRunner().invoke(cli, train_args(root, root / "reference"))
    assert result.exit_code == 0, result.output
    return root


def start(data, run, name: str, action: str, at: int) -> subprocess.Popen:
    (data / "driver.py").write_text(DRIVER)
    command = [sys.executable, str(data / "driver.py"), name, action, str(at)]
    return subprocess.Popen(
        command + train_args(data, run), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def kill_when_ready(process: subprocess.Popen) -> None:
    """Wait for the driver's READY line (a blocking read: the process is then blocked at the
    chosen point) and SIGKILL it from outside."""
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            if line.strip() == READY:
                break
        else:  # stdout closed: the process ended without reaching the point
            raise AssertionError(f"finished before the kill: {process.stderr.read()[-2000:]}")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)


def committed_step(run) -> int:
    try:
        return json.loads((run / "config.json").read_text())["training"]["step"]
    except (FileNotFoundError, ValueError):
        return 0


SCENARIOS = {
    # 2nd checkpoint: its weights staged, its resume state not yet -> step 1 survives
    "while staging": ("save_weights", "kill", 4, 1),
    # 2nd checkpoint complete in the staging folder, the commit rename not done -> step 1
    "before the commit": ("_commit", "kill", 2, 1),
    # 2nd checkpoint committed, new weights moved in, config.json still the old one -> step 2
    "between weights and config": ("_move_into_place", "kill", 6, 2),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_kill_at_a_point_of_the_checkpoint_write(data, tmp_path, scenario):
    name, action, at, expected = SCENARIOS[scenario]
    run = tmp_path / "run"
    process = start(data, run, name, action, at)
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, process.stderr.read()[-2000:]
    if scenario == "while staging":  # a half-written checkpoint that the next save removes
        assert list(run.glob(".checkpoint-*.tmp"))
    if scenario == "between weights and config":  # the dangerous mix is on disk ...
        assert (run / PENDING_NAME).is_dir() and committed_step(run) == 1
    assert load_config(run).training.step == expected  # ... and readers finish it
    check_loadable_and_resume(data, run)


OUTSIDE = {
    # checkpoint 2 complete, checkpoint 3 staged, its commit not begun -> step 2 survives
    "after a checkpoint": ("_commit", 3, 2),
    # checkpoint 2 committed, its weights and resume weights moved in, the rest pending -> the
    # readers finish it: step 2
    "during a commit": ("_move_into_place", 7, 2),
}


@pytest.mark.parametrize("moment", list(OUTSIDE))
def test_kill_from_outside(data, tmp_path, moment):
    name, at, expected = OUTSIDE[moment]
    run = tmp_path / "run"
    process = start(data, run, name, "pause", at)
    kill_when_ready(process)
    assert process.returncode == -signal.SIGKILL
    if moment == "during a commit":
        assert (run / PENDING_NAME).is_dir() and committed_step(run) == 1
    else:
        assert not (run / PENDING_NAME).exists() and committed_step(run) == 2
    assert load_config(run).training.step == expected
    check_loadable_and_resume(data, run)


def check_loadable_and_resume(data, run) -> None:
    config = load_config(run)
    step = config.training.step
    assert 1 <= step < STEPS
    load_adapter(run)  # weights match the config (checksums, shapes)
    assert load_train_state(run, step=step)["step"] == step
    result = CliRunner().invoke(cli, ["train", "--out", str(run), "--resume", "--quiet"])
    assert result.exit_code == 0, result.output
    assert load_config(run).training.step == STEPS
    logged = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert logged == list(range(1, STEPS + 1))
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no leftovers
    final, reference = (load_file(r / "model.safetensors") for r in (run, data / "reference"))
    assert all(torch.equal(final[k], reference[k]) for k in reference)  # as if never killed
