"""Distributed training: 2 CPU processes (torchrun, gloo) == 1 process with the doubled batch."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from torch import nn

from satikit.cli import cli
from satikit.data.circles import make_circle_image
from satikit.devices import Context
from satikit.io.images import write_image
from satikit.plugins import create_adapter
from satikit.training.crops import CropSampler
from satikit.training.distributed import _buckets

TINY = "-o ngf 4 -o n_blocks 1 -o ndf 4 -o n_layers 2 -o pool_size 0".split()
STEPS = 3

# Runs `satikit train` under torchrun and, after fit, dumps each rank's weights (only rank 0
# writes the run, so this is how the test sees rank 1).
WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import satikit.training as training
    from satikit.checkpoint import save_weights
    from satikit.cli import cli

    fit = training.SATITrainer.fit

    def fit_and_dump(self, **kwargs):
        losses = fit(self, **kwargs)
        path = Path(sys.argv[1]) / f"rank{self.dist.rank}.safetensors"
        save_weights(path, self.adapter.state_dict())
        return losses

    training.SATITrainer.fit = fit_and_dump
    cli(sys.argv[2:], prog_name="satikit")
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def circle_data(tmp_path) -> list[str]:
    rng = np.random.default_rng(0)
    for domain in "xy":
        (tmp_path / domain).mkdir()
        image, _ = make_circle_image(
            domain, shape=(64, 64), count=12, diameter=8, noise_sigma=20, rng=rng
        )
        write_image(tmp_path / domain / "0.tif", image)
    return ["--x", str(tmp_path / "x"), "--y", str(tmp_path / "y")]


def train_args(data: list[str], out, batch_size: int) -> list[str]:
    # --no-overlap-sampling: the stitch loss is normalised by the masked pixels of the batch,
    # so the mean of two halves' losses equals the full batch's only when all samples share
    # one border case. LSGAN, cycle and identity losses are batch means; instance norm is
    # per sample; pool_size 0 removes the image pool's history.
    return [
        "train", *data, "--out", str(out), "--steps", str(STEPS), "--crop", "32",
        "--batch-size", str(batch_size), "--device", "cpu", "--quiet", "--threads", "1",
        "--no-overlap-sampling", *TINY,
    ]  # fmt: skip


def norm_cancelled_biases(module: nn.Module) -> set[str]:
    """Biases of layers followed by an instance norm: their exact gradient is 0, so Adam turns
    float noise in them into steps of up to ``lr`` (any summation order changes that noise)."""
    names = set()
    for prefix, seq in module.named_modules():
        if isinstance(seq, nn.Sequential):
            layers = list(seq.named_children())
            for (name, layer), (_, following) in zip(layers, layers[1:]):
                norm = isinstance(following, (nn.InstanceNorm2d, nn.InstanceNorm3d))
                if norm and getattr(layer, "bias", None) is not None:
                    names.add(f"{prefix}.{name}.bias")
    return names


def log_losses(run) -> list[float]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [json.loads(line)["g_total"] for line in lines]


def test_two_cpu_ranks_match_one_process_with_the_doubled_batch(tmp_path):
    data = circle_data(tmp_path)
    (tmp_path / "worker.py").write_text(WORKER)
    launcher = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
    ]  # fmt: skip
    done = subprocess.run(
        [*launcher, str(tmp_path / "worker.py"), str(tmp_path)]
        + train_args(data, tmp_path / "ddp", batch_size=1),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("done: step 3") == 1  # only rank 0 talks
    single = CliRunner().invoke(cli, train_args(data, tmp_path / "single", batch_size=2))
    assert single.exit_code == 0, single.output

    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    written = load_file(tmp_path / "ddp" / "model.safetensors")
    reference = load_file(tmp_path / "single" / "model.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) and torch.equal(rank0[k], written[k]) for k in rank0)
    adapter = create_adapter("cyclegan", **{k: int(v) for k, v in zip(TINY[1::3], TINY[2::3])})
    noisy = norm_cancelled_biases(adapter)
    assert noisy and noisy < set(rank0)
    diff = {k: (rank0[k] - reference[k]).abs().max().item() for k in rank0}
    assert max(v for k, v in diff.items() if k not in noisy) < 1e-5
    assert max(diff[k] for k in noisy) <= 2 * 2e-4 * STEPS  # Adam: at most lr per step each
    ddp_losses, single_losses = log_losses(tmp_path / "ddp"), log_losses(tmp_path / "single")
    assert len(ddp_losses) == STEPS  # one log, written by rank 0 only
    np.testing.assert_allclose(ddp_losses, single_losses, rtol=1e-5)
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["training"]["world_size"] == 2 and config["training"]["batch_size"] == 1


@pytest.mark.parametrize("rank", [0, 1])
def test_each_rank_reads_its_share_of_the_global_draw(tmp_path, rank):
    write_image(
        tmp_path / "a.tif", np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)
    )
    sampler = CropSampler([tmp_path / "a.tif"], (16, 16), "x")
    share = Context(rank=rank, world_size=2).shard(3)
    part = sampler.sample(6, np.random.default_rng(5), keep=share)
    whole = sampler.sample(6, np.random.default_rng(5))
    assert torch.equal(part, whole[share]) and part.shape[0] == 3


def test_merger_cases_are_a_share_of_the_global_draw():
    from satikit.checkpoint import RunConfig, TrainingSettings
    from satikit.training import SATITrainer

    def cases(rank: int, world: int, batch: int) -> torch.Tensor:
        adapter = create_adapter("cyclegan", **{"ngf": 4, "n_blocks": 1, "ndf": 4, "n_layers": 1})
        config = RunConfig(training=TrainingSettings(crop=32, steps=2, seed=7))
        trainer = SATITrainer(adapter, config, device="cpu")
        dist = Context(rank=rank, world_size=world)
        return torch.cat([trainer.hooks.merge_cases(batch, dist) for _ in range(3)])

    whole = cases(0, 1, 4).view(3, 4)
    for rank in (0, 1):
        assert torch.equal(cases(rank, 2, 2).view(3, 2), whole[:, 2 * rank : 2 * rank + 2])


def test_gradient_buckets_respect_size_and_dtype():
    tensors = [torch.zeros(3), torch.zeros(4), torch.zeros(2, dtype=torch.float64), torch.zeros(5)]
    sizes = [[t.numel() for t in bucket] for bucket in _buckets(tensors, limit=7)]
    assert sizes == [[3, 4], [2], [5]]
