"""Engine speed: every strategy timed on the same model and image, reported as ratios.

For each image (2D ``--sizes``, 3D ``--volumes``), a small conv net, tile ``T`` and overlap
``O`` (weighted: 50 %), interleaved over ``--repeats`` rounds, medians:

- each strategy's time / ``none`` and / the pure forward pass over the same (simple) tiles,
  i.e. the engine's overhead;
- each strategy's share of time outside ``fn`` (the net's forward passes, timed inside the
  same run, so free of the run-to-run noise of the ratios between runs), and from it
  ``weighted`` / MONAI for the same forward work, ``(1 - share MONAI) / (1 - share weighted)``
  (both run the same tiles in the same full batches);
- ``sati`` / ``simple`` without overlap against the theoretical ``(T / (T - O))^N`` (the paper's
  "x1.25 per dimension" for O = T/4... here with the given O);
- ``weighted`` (gaussian, 50 %) against MONAI's ``sliding_window_inference`` (gaussian, same
  overlap and batch), when MONAI is installed (``pip install -e .[bench]``);
- ``sati`` wavefront vs raster;
- host memory the engine allocates (numpy, traced with tracemalloc) per strategy;
- the tile counts behind each ratio (a uniform grid pads a small image up to whole tiles, so
  on small images the measured ratio follows the tile counts, not the theory).

``--skip`` leaves methods out (e.g. ``none`` on a volume whose single forward pass does not fit
in memory); ratios that need a skipped method are left out too.

    python -m benchmarks.engine_speed [--sizes 2048 8192] [--volumes 256] [--tile 512 --overlap 64]
    python -m benchmarks.engine_speed --sizes --volumes 512 --skip none --repeats 1
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from benchmarks.common import git_commit, machine, write_results
from satikit.stitching import stitch
from satikit.stitching.grid import TileGrid, read_tile

MONAI = "monai weighted"  # the case that needs the benchmark-only MONAI dependency


def small_net(ndim: int, channels: int = 3, width: int = 16) -> nn.Module:
    """Three 3x3 convolutions: enough compute that the engine's share is measurable."""
    torch.manual_seed(0)
    conv = nn.Conv2d if ndim == 2 else nn.Conv3d
    return nn.Sequential(
        conv(channels, width, 3, padding=1),
        nn.ReLU(),
        conv(width, width, 3, padding=1),
        nn.ReLU(),
        conv(width, channels, 3, padding=1),
        nn.Tanh(),
    ).eval()


class UNet(nn.Module):
    """A two-level UNet (``width``, ``2 width``, ``4 width`` channels, instance norms, skip
    connections): the size of a real generator, where the forward pass dominates the engine."""

    def __init__(self, ndim: int, channels: int = 3, width: int = 32):
        super().__init__()
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        norm = nn.InstanceNorm2d if ndim == 2 else nn.InstanceNorm3d
        up = nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d

        def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(conv(cin, cout, 3, stride, 1), norm(cout), nn.ReLU())

        self.enc0 = block(channels, width)
        self.enc1 = block(width, 2 * width, 2)
        self.mid = nn.Sequential(block(2 * width, 4 * width, 2), block(4 * width, 4 * width))
        self.up1 = up(4 * width, 2 * width, 2, 2)
        self.dec1 = block(4 * width, 2 * width)
        self.up0 = up(2 * width, width, 2, 2)
        self.dec0 = block(2 * width, width)
        self.head = nn.Sequential(conv(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        d1 = self.dec1(torch.cat([self.up1(self.mid(e1)), e1], 1))
        return self.head(self.dec0(torch.cat([self.up0(d1), e0], 1)))


MODELS = {"small": small_net, "unet": lambda ndim: _seeded(UNet, ndim)}


def _seeded(cls, ndim: int) -> nn.Module:
    torch.manual_seed(0)
    return cls(ndim).eval()


def channels_last(net: nn.Module, ndim: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``net`` (a copy) in channels-last memory format, fed channels-last tiles."""
    fmt = torch.channels_last if ndim == 2 else torch.channels_last_3d
    converted = copy.deepcopy(net).to(memory_format=fmt)
    return lambda x: converted(x.contiguous(memory_format=fmt))


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _peak_bytes(call: Callable[[], object]) -> int:
    """Peak host memory traced during ``call`` (a separate, untimed run: tracing is slow)."""
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


class Clock:
    """Wall time spent inside the forward passes it wraps, since :meth:`reset`: the part of a
    strategy's time that is the network's, measured in the same run (no run-to-run noise)."""

    def __init__(self) -> None:
        self.total = 0.0

    def reset(self) -> None:
        self.total = 0.0

    def wrap(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
        def timed(x: torch.Tensor) -> torch.Tensor:
            start = time.perf_counter()
            y = fn(x)
            self.total += time.perf_counter() - start
            return y

        return timed


def cases(
    image: np.ndarray,
    net: nn.Module,
    tile: int,
    overlap: int,
    batch: int,
    variants: tuple[str, ...] = (),
    clock: Clock | None = None,
) -> dict[str, Callable[[], object]]:
    """Name -> zero-argument call, all on the same image and net. ``variants``: faster forward
    passes to try (``channels-last``, ``compile``), each as a forward over simple's tiles and
    as ``weighted`` (to set against MONAI with the plain net). ``clock``: times every forward
    pass the calls make."""
    timed = clock.wrap if clock is not None else (lambda f: f)
    fn = timed(net)
    spatial = image.shape[1:]
    grid = TileGrid.create(spatial, tile, overlap)
    common = dict(tile=tile, batch_size=batch)

    def forward_only(fn: Callable = fn, size: int = batch) -> None:
        # the least a tiled loop does: read a batch of simple's tiles, run it, drop the result
        indices = list(grid.raster())
        with torch.inference_mode():
            for b in range(0, len(indices), size):
                tiles = [
                    read_tile(image, grid.window(i), grid.shape) for i in indices[b : b + size]
                ]
                fn(torch.from_numpy(np.stack(tiles)))

    calls: dict[str, Callable[[], object]] = {
        "none": lambda: stitch(image, fn, overlap=0, strategy="none", **common),
        "forward only": forward_only,
        "forward only (batch 1)": lambda: forward_only(fn, 1),
        "simple": lambda: stitch(image, fn, overlap=overlap, strategy="simple", **common),
        "simple (no overlap)": lambda: stitch(image, fn, overlap=0, strategy="simple", **common),
        "weighted": lambda: stitch(
            image, fn, overlap=tile // 2, strategy="weighted", window="gaussian", **common
        ),
        "sati raster": lambda: stitch(
            image, fn, overlap=overlap, strategy="sati", order="raster", **common
        ),
        "sati wavefront": lambda: stitch(
            image, fn, overlap=overlap, strategy="sati", order="wavefront", **common
        ),
        "sati auto": lambda: stitch(
            image, fn, overlap=overlap, strategy="sati", order="auto", **common
        ),
    }
    for variant in variants:
        fast = timed(_variant(variant, net, len(spatial)))
        calls[f"forward only ({variant})"] = lambda fast=fast: forward_only(fast)
        calls[f"weighted ({variant})"] = lambda fast=fast: stitch(
            image, fast, overlap=tile // 2, strategy="weighted", window="gaussian", **common
        )
    try:
        from monai.inferers import sliding_window_inference

        def monai() -> None:
            with torch.inference_mode():
                sliding_window_inference(
                    torch.from_numpy(image)[None],
                    (tile,) * len(spatial),
                    batch,
                    fn,
                    overlap=0.5,
                    mode="gaussian",
                )

        calls[MONAI] = monai
    except ImportError:  # benchmark-only dependency
        pass
    return calls


VARIANTS = ("channels-last", "compile")


def _variant(name: str, net: nn.Module, ndim: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The forward variant ``name`` of ``net`` (opt-in ways to a faster forward pass)."""
    if name == "channels-last":
        return channels_last(net, ndim)
    if name == "compile":
        return torch.compile(net)
    raise ValueError(f"unknown forward variant {name!r}; choose from {VARIANTS}")


def tile_counts(shape: tuple[int, ...], tile: int, overlap: int) -> dict[str, int]:
    """Tiles each method runs: simple / sati at ``overlap``, side by side, weighted at 50 %."""
    return {
        "overlap": TileGrid.create(shape, tile, overlap).n_tiles,
        "no_overlap": TileGrid.create(shape, tile, 0).n_tiles,
        "half": TileGrid.create(shape, tile, tile // 2).n_tiles,
    }


def _ratio(med: dict[str, float], a: str, b: str) -> float | None:
    return round(med[a] / med[b], 3) if a in med and b in med else None


def measure(
    shape: tuple[int, ...],
    tile: int,
    overlap: int,
    batch: int,
    repeats: int,
    skip: tuple[str, ...] = (),
    model: str = "small",
    variants: tuple[str, ...] = (),
    memory: bool = True,
) -> dict:
    """Time every case on one image shape; returns rows and the ratios the issue asks for.

    Raises:
        ValueError: ``skip`` names a method that does not exist.
    """
    net = MODELS[model](len(shape))
    image = np.random.default_rng(0).uniform(-1, 0, (3, *shape)).astype(np.float32)
    clock = Clock()
    calls = cases(image, net, tile, overlap, batch, variants, clock)
    unknown = sorted(set(skip) - set(calls) - {MONAI})  # MONAI's case exists when installed
    if unknown:
        raise ValueError(f"--skip: unknown method(s) {unknown}; methods: {sorted(calls)}")
    calls = {name: call for name, call in calls.items() if name not in skip}
    times: dict[str, list[float]] = {name: [] for name in calls}
    outside: dict[str, list[float]] = {name: [] for name in calls}  # share not in the forward
    for name, call in calls.items():  # warm-up (compilation, allocator), untimed
        if "compile" in name:
            call()
    for _ in range(repeats):
        for name, call in calls.items():
            clock.reset()
            times[name].append(_timed(call))
            outside[name].append(1 - clock.total / times[name][-1])
    peaks = {name: _peak_bytes(call) if memory else None for name, call in calls.items()}
    med = {name: statistics.median(t) for name, t in times.items()}
    rows = [
        {
            "shape": list(shape),
            "method": name,
            "median_s": round(med[name], 3),
            "ratio_to_none": _ratio(med, name, "none"),
            "ratio_to_forward": _ratio(med, name, "forward only"),
            "outside_forward": round(statistics.median(outside[name]), 3),
            "host_mib": None if peaks[name] is None else round(peaks[name] / 2**20, 1),
        }
        for name in calls
    ]
    counts = tile_counts(shape, tile, overlap)
    overhead = _ratio(med, "simple", "forward only")
    ratios = {
        # the paper's "x1.25 per dimension": SATI's overlapping tiles vs simple tiles side by side
        "sati_over_simple_no_overlap": _ratio(med, "sati raster", "simple (no overlap)"),
        # the same with SATI's default order (wavefront for volumes)
        "sati_auto_over_simple_no_overlap": _ratio(med, "sati auto", "simple (no overlap)"),
        "sati_over_simple_theory": round((tile / (tile - overlap)) ** len(shape), 3),
        "sati_over_simple_tile_count": round(counts["overlap"] / counts["no_overlap"], 3),
        "wavefront_over_raster": _ratio(med, "sati wavefront", "sati raster"),
        "sati_auto_over_raster": _ratio(med, "sati auto", "sati raster"),
        # the `order="auto"` rule: a batch of B tiles against B single tiles, forward only
        "forward_batch_over_batch_1": _ratio(med, "forward only", "forward only (batch 1)"),
        "sati_over_simple": _ratio(med, "sati raster", "simple"),
        "simple_engine_overhead": None if overhead is None else round(overhead - 1, 3),
        "weighted_over_monai": _ratio(med, "weighted", MONAI),
    }
    for variant in variants:
        ratios[f"weighted_{variant}_over_monai"] = _ratio(med, f"weighted ({variant})", MONAI)
        ratios[f"forward_{variant}_over_forward"] = _ratio(
            med, f"forward only ({variant})", "forward only"
        )
    share = {row["method"]: row["outside_forward"] for row in rows}
    if "weighted" in share and MONAI in share:
        # same tiles in the same batches: the forward work cancels, the engines' shares remain
        ratios["weighted_over_monai_same_forward"] = round(
            (1 - share[MONAI]) / (1 - share["weighted"]), 3
        )
    ratios = {k: v for k, v in ratios.items() if v is not None}
    return {"shape": list(shape), "rows": rows, "ratios": ratios, "tiles": counts, "model": model}


def _cell(value: float | None) -> str:
    return "-" if value is None else str(value)


def markdown(payload: dict) -> str:
    lines = [
        f"# Engine speed ({payload['config']['model']} model, tile {payload['config']['tile']}, "
        f"overlap {payload['config']['overlap']}, "
        f"weighted 50 %, batch {payload['config']['batch_size']})",
        "",
        f"`{payload['command']}` on {payload['machine']}, commit {payload['commit']}",
        "",
        "| image | method | median s | / none | / forward over simple's tiles | "
        "share outside fn | host MiB (numpy) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in payload["results"]:
        name = "x".join(map(str, result["shape"]))
        lines += [
            f"| {name} | {r['method']} | {r['median_s']} | {_cell(r['ratio_to_none'])} | "
            f"{_cell(r['ratio_to_forward'])} | {_cell(r['outside_forward'])} | "
            f"{_cell(r['host_mib'])} |"
            for r in result["rows"]
        ]
    lines += ["", "| image | ratio | value |", "|---|---|---:|"]
    for result in payload["results"]:
        name = "x".join(map(str, result["shape"]))
        lines += [f"| {name} | {k} | {v} |" for k, v in result["ratios"].items()]
    return "\n".join(lines) + "\n"


def run_suffix(args: argparse.Namespace) -> str:
    """``-<sizes>-<volumes>[-<model>]``: runs of one commit with other images or another model
    keep their own result files."""
    parts = [str(s) for s in args.sizes] + [f"{v}x{v}x{v}" for v in args.volumes]
    if args.model != "small":
        parts.append(args.model)
    return "".join(f"-{p}" for p in parts)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[2048], help="2D image sizes")
    parser.add_argument("--volumes", type=int, nargs="*", default=[], help="3D volume sizes")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--tile-3d", type=int, default=64)
    parser.add_argument("--overlap-3d", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--skip", nargs="*", default=[], metavar="METHOD", help='methods to leave out, e.g. "none"'
    )
    parser.add_argument("--model", choices=sorted(MODELS), default="small")
    parser.add_argument(
        "--variants",
        nargs="*",
        default=[],
        choices=VARIANTS,
        help="faster forward passes to try beside the plain one",
    )
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the (untimed, slow) host-memory pass"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    skip = tuple(args.skip)
    extra = (args.model, tuple(args.variants), not args.no_memory)
    results = [
        measure((s, s), args.tile, args.overlap, args.batch_size, args.repeats, skip, *extra)
        for s in args.sizes
    ]
    results += [
        measure(
            (s, s, s), args.tile_3d, args.overlap_3d, args.batch_size, args.repeats, skip, *extra
        )
        for s in args.volumes
    ]
    argv_used = argv if argv is not None else sys.argv[1:]
    payload = {
        "config": vars(args),
        "commit": git_commit(),
        "machine": machine(),
        "command": ("python -m benchmarks.engine_speed " + " ".join(argv_used)).strip(),
        "results": results,
    }
    text = markdown(payload)
    print(text)
    if not args.no_write:
        print("wrote", *write_results("speed", payload, text, run_suffix(args)))
    return payload


if __name__ == "__main__":
    main()
