"""Training step time of every built-in adapter with and without SATI, plus conformance.

Each adapter is built in a small configuration (below) and trained with
:meth:`satikit.training.SATITrainer.train_step` (the real trainer step: host generator step, SATI
merger + ``G_XY(z)`` + stitch and adversarial terms, discriminator step) on random encoded crops,
once with SATI enabled and once as the plain host GAN (``SATISettings(enabled=False)``). Steps of
the two modes are interleaved over ``--repeats`` rounds and summarised by their medians, so the
machine's drift cancels in the ratio. The conformance kit (:mod:`satikit.testing`) runs on each
adapter's smallest configuration in the same run.

    python -m benchmarks.adapter_step_time [--crop 64] [--batch-size 1] [--repeats 10]
        [--device cpu] [--threads 1] [--adapters cyclegan,unit,munit,timm]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from benchmarks.common import git_commit, machine, write_results
from satikit.checkpoint import AdapterSpec, RunConfig, SATISettings, TrainingSettings
from satikit.plugins import create_adapter, get_adapter_info, list_adapters
from satikit.testing import check_adapter
from satikit.training import SATITrainer

# Small, comparable configurations: a few residual blocks, 16 base channels.
SMALL: dict[str, dict[str, Any]] = {
    "cyclegan": {"ngf": 16, "n_blocks": 3, "ndf": 16, "n_layers": 3, "pool_size": 10},
    "unit": {"dim": 16, "n_res": 2, "n_shared": 1, "ndf": 16, "d_layers": 3, "n_scales": 2},
    "munit": {
        "dim": 16,
        "n_res": 2,
        "style_downsampling": 4,
        "mlp_dim": 64,
        "ndf": 16,
        "d_layers": 3,
        "n_scales": 2,
    },
    "timm": {
        "backbone": "resnet18",
        "decoder_channels": 16,
        "ndf": 16,
        "n_layers": 3,
        "pool_size": 10,
    },
}


def _batch(crop: int, batch: int, device: torch.device, seed: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, crop, crop, generator=generator) - 1.0  # encoded X in [-1, 0]
    y = torch.rand(batch, 3, crop, crop, generator=generator)  # encoded Y in [0, 1]
    return x.to(device), y.to(device)


def _trainer(name: str, sati: bool, args: argparse.Namespace) -> SATITrainer:
    torch.manual_seed(0)
    options = SMALL.get(name, dict(get_adapter_info(name).test_options))
    adapter = create_adapter(name, **options).to(args.device)
    config = RunConfig(
        adapter=AdapterSpec(name, options),
        training=TrainingSettings(
            crop=args.crop, batch_size=args.batch_size, steps=1000, amp=False
        ),
        sati=SATISettings(enabled=sati),
    )
    return SATITrainer(adapter, config, device=args.device)


def _step_seconds(trainer: SATITrainer, x: torch.Tensor, y: torch.Tensor) -> float:
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.train_step(x, y)
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_adapter(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Median step time with and without SATI (interleaved) and their ratio."""
    x, y = _batch(args.crop, args.batch_size, torch.device(args.device), seed=1)
    trainers = {"plain": _trainer(name, False, args), "sati": _trainer(name, True, args)}
    for trainer in trainers.values():
        for _ in range(args.warmup):
            trainer.train_step(x, y)
    times: dict[str, list[float]] = {"plain": [], "sati": []}
    for _ in range(args.repeats):
        for mode, trainer in trainers.items():
            times[mode].append(_step_seconds(trainer, x, y))
    plain, sati = statistics.median(times["plain"]), statistics.median(times["sati"])
    n_params = sum(p.numel() for p in trainers["sati"].adapter.parameters())
    return {
        "adapter": name,
        "options": SMALL.get(name, {}),
        "params": n_params,
        "plain_s": plain,
        "sati_s": sati,
        "ratio": sati / plain,
    }


def conformance(name: str) -> list[dict[str, Any]]:
    """The conformance kit on the adapter's smallest configuration, per supported dims."""
    return [
        check_adapter(name, dims=dims, threads=None).to_dict()
        for dims in get_adapter_info(name).dims
    ]


def _markdown(payload: dict[str, Any]) -> str:
    lines = [
        f"# Adapter training step time, with and without SATI ({payload['commit']})",
        "",
        f"Machine: {payload['machine']}. Crop {payload['crop']} px, batch {payload['batch_size']}, "
        f"{payload['repeats']} interleaved steps per mode after {payload['warmup']} warm-up "
        f"steps, medians; `SATITrainer.train_step`, no AMP.",
        "",
        "| adapter | parameters | plain step (ms) | SATI step (ms) | SATI / plain |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in payload["timings"]:
        lines.append(
            f"| {row['adapter']} | {row['params']:,} | {1000 * row['plain_s']:.1f} | "
            f"{1000 * row['sati_s']:.1f} | {row['ratio']:.2f} |"
        )
    lines += [
        "",
        "## Conformance (smallest configuration)",
        "",
        "| adapter | dims | passed | failed | skipped |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, reports in payload["conformance"].items():
        for report in reports:
            counts = {
                s: sum(r["status"] == s for r in report["results"])
                for s in ("pass", "fail", "skip")
            }
            lines.append(
                f"| {name} | {report['dims']}D | {counts['pass']} | {counts['fail']} | "
                f"{counts['skip']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", default="cyclegan,unit,munit,timm")
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 avoids oversubscription on shared machines)",
    )
    parser.add_argument("--no-write", action="store_true", help="Print only.")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n for n in args.adapters.split(",") if n in list_adapters()]
    timings, checks = [], {}
    for name in names:
        timings.append(time_adapter(name, args))
        row = timings[-1]
        print(
            f"{name:9s} plain {1000 * row['plain_s']:8.1f} ms  sati {1000 * row['sati_s']:8.1f} ms"
            f"  ratio {row['ratio']:.2f}",
            flush=True,
        )
        checks[name] = conformance(name)
        for report in checks[name]:
            failed = [r["name"] for r in report["results"] if r["status"] == "fail"]
            print(
                f"{'':9s} conformance {report['dims']}D: "
                f"{'ok' if report['ok'] else 'FAILED ' + ', '.join(failed)}",
                flush=True,
            )
    payload = {
        "commit": git_commit(),
        "machine": machine(),
        "crop": args.crop,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "device": args.device,
        "timings": timings,
        "conformance": checks,
    }
    markdown = _markdown(payload)
    if not args.no_write:
        json_path, md_path = write_results("adapter_steps", payload, markdown)
        print(f"wrote {json_path} and {md_path}")
    print(markdown)
    return payload


if __name__ == "__main__":
    main()
