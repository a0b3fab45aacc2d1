"""``satikit demo``: the whole method on a laptop CPU in a few minutes.

Makes a circle benchmark (``--preset small``: the paper's, scaled by 1/4; ``large-objects``:
circles as wide as the tile overlap) or the re-staining task with a known truth (``restain``:
scikit-image's bundled immunohistochemistry slide, re-stained), takes a small CycleGAN trained
without SATI (standard) and the same CycleGAN fine-tuned from it with SATI -- by default the
pretrained pair shipped in ``satikit/pretrained/`` (chosen by ``benchmarks.ship_demo``), with
``--train`` trained here -- translates one large held-out image with every strategy, prints
the error table (circles: the colour error of paper II; restain: the mean absolute error
against the truth and the tile-level deviation) and writes a side-by-side PNG around a tile
corner.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

if TYPE_CHECKING:
    from satikit.checkpoint import RunConfig

__all__ = ["PRETRAINED", "DemoPlan", "demo"]

#: Shipped demo models: ``<name>/config.json`` + ``<name>/model.safetensors`` per model.
PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs; ``full`` fits about 10 min on 2 CPU cores, ``quick`` about 1 min."""

    size: int  # test/train image edge, px (small preset: 512)
    n_images: int  # training images per domain
    crop: int  # training crop (small preset: 64, i.e. paper 256 / 4)
    steps: int
    batch_size: int
    ngf: int
    n_blocks: int

    @property
    def options(self) -> dict[str, Any]:
        return {"ngf": self.ngf, "ndf": self.ngf, "n_blocks": self.n_blocks, "n_layers": 3}


FULL = DemoPlan(size=512, n_images=16, crop=64, steps=1200, batch_size=4, ngf=16, n_blocks=3)
QUICK = DemoPlan(size=256, n_images=2, crop=32, steps=100, batch_size=2, ngf=4, n_blocks=1)


@dataclass(frozen=True)
class DemoPreset:
    """What the demo runs for one circle preset.

    Attributes:
        standard / sati: the shipped standard and SATI models (folders of ``PRETRAINED``).
        tiles: inference tile and overlap recorded in models trained here (None: the run's
            own defaults).
        weighted: the standard model's weighted tiling (``overlap_fraction`` of the tile).
        finetune: :class:`~satikit.checkpoint.SATISettings` of the SATI fine-tune trained here
            (the protocol each preset's benchmark chose on its validation images).
        shared: extra rows with shared instance-norm statistics, as ``(label, model, strategy,
            settings)``.
        kind: ``circles`` (scored by the colour error) or ``restain`` (a known true Y).
    """

    standard: str
    sati: str
    tiles: tuple[int, int] | None
    weighted: dict[str, Any]
    finetune: dict[str, Any]
    shared: tuple[tuple[str, str, str, dict[str, Any]], ...] = ()
    kind: str = "circles"


# whole-image statistics (TIN at full resolution): every tile normalised like the whole image
_TIN = {"norm": "thumbnail", "thumbnail_scale": 1.0}
# kernel-averaged statistics over 5 x 5 neighbouring tiles (KIN)
_KIN = {"norm": "kernel", "norm_kernel": "5"}

PRESETS: dict[str, DemoPreset] = {
    # the paper's weighted baseline: pyramid window shifted by a quarter tile (overlap 3/4);
    # the fine-tune with the continuation term (docs/benchmarks.md); and the tiling without
    # training that the benchmark's validation images chose for the shipped standard model
    # (gaussian window, 25 % overlap, neighbourhood statistics), which SATI does not beat here
    "small": DemoPreset(
        "demo-standard",
        "demo-sati",
        None,
        {"window": "pyramid", "overlap_fraction": 0.75},
        {"domain_encoding": False, "lambda_consistency": 10.0},
        (
            (
                "Standard + weighted 25% + KIN 5",
                "standard",
                "weighted",
                {"window": "gaussian", "overlap_fraction": 0.25, **_KIN},
            ),
        ),
    ),
    # tiles of 64 px with circles as wide as their 25 % overlap; weighted tiling on the very
    # tiles SATI uses (gaussian window, 25 % overlap); the fine-tune with the paper's terms, the
    # discriminator's SATI term at half weight (chosen on the benchmark's validation images);
    # and shared statistics, which per-tile statistics on 64 px tiles need
    "large-objects": DemoPreset(
        "large-objects-standard",
        "large-objects-sati",
        (64, 16),
        {"window": "gaussian", "overlap_fraction": 0.25},
        {"domain_encoding": False, "lambda_d_sati": 0.5},
        (
            (
                "Standard + weighted 50% + TIN",
                "standard",
                "weighted",
                {"window": "gaussian", "overlap_fraction": 0.5, **_TIN},
            ),
            ("SATI + TIN", "sati", "sati", dict(_TIN)),
            ("SATI + KIN 5", "sati", "sati", dict(_KIN)),
        ),
    ),
    # a real slide whose colours vary across it: per-tile statistics against whole-image (TIN),
    # neighbourhood (KIN) and per-pixel (dense) statistics, on 128 px tiles side by side and
    # blended, and SATI with them
    "restain": DemoPreset(
        "restain-standard",
        "restain-sati",
        (128, 32),
        {"window": "gaussian", "overlap_fraction": 0.25},
        {"domain_encoding": False},
        (
            ("Standard + simple + TIN", "standard", "simple", {"overlap": 0, **_TIN}),
            ("Standard + simple + KIN 5", "standard", "simple", {"overlap": 0, **_KIN}),
            ("Standard + simple + dense", "standard", "simple", {"overlap": 0, "norm": "dense"}),
            (
                "Standard + weighted + dense",
                "standard",
                "weighted",
                {"window": "gaussian", "overlap_fraction": 0.25, "norm": "dense"},
            ),
            ("SATI + dense", "sati", "sati", {"norm": "dense"}),
        ),
        kind="restain",
    ),
}


# (label, run, strategy, settings): the standard model with the classic strategies as the paper
# ran them -- simple tiling without overlap (Fig. 2d), weighted tiling with a pyramid window
# shifted by a quarter tile (overlap 3/4 of the tile) -- the SATI model with SATI inference
# (overlap 1/4, cut in the middle), and the SATI model without tiling (its best case); then the
# preset's rows with shared statistics.
def rows_for(preset: str) -> tuple[tuple[str, str, str, dict[str, Any]], ...]:
    """The table's rows for a preset (see :data:`PRESETS`)."""
    return (
        ("Standard + no tiling", "standard", "none", {}),
        ("Standard + simple tiling", "standard", "simple", {"overlap": 0}),
        ("Standard + weighted tiling", "standard", "weighted", dict(PRESETS[preset].weighted)),
        ("SATI", "sati", "sati", {}),
        ("SATI model + no tiling", "sati", "none", {}),
        *PRESETS[preset].shared,
    )


ROWS = rows_for("small")
PAPER = {
    "Standard + no tiling": 0.39,
    "Standard + simple tiling": 6.59,
    "Standard + weighted tiling": 3.53,
    "SATI": 0.52,
}  # Table 1, median %


def _make_data(root: Path, plan: DemoPlan, seed: int, preset: str) -> tuple[Path, Path]:
    """The preset's data in ``root/data/<preset>``, made unless a dataset with the same
    parameters and seed is there; returns the training folder and the folder of the held-out
    image (circles: drawn like the preset's test images; restain: the mirrored mosaic of the
    slide's test part, with its true Y in ``y_true``)."""
    from satikit.data.datasets import MANIFEST, make_circle_dataset, make_restain_dataset
    from satikit.data.presets import get_preset
    from satikit.io.atomic import read_json

    data = root / "data" / preset
    if PRESETS[preset].kind == "restain":
        wanted = {"crop": plan.crop, "n_images": 6 * plan.n_images}  # crops are cheap
        manifest = read_json(data / MANIFEST) if (data / MANIFEST).is_file() else {}
        known = {k: manifest.get("params", {}).get(k) for k in wanted}
        if known != wanted or manifest.get("seed") != seed:
            make_restain_dataset(data, seed=seed, force=True, tile=128, **wanted)
        return data / "train", data / "mosaic"
    # the preset's 512^2 images; smaller sizes keep its density
    params = get_preset(preset)
    count = round(params.count * (plan.size / params.size) ** 2)
    wanted = params.replace(size=plan.size, count=count, n_images=plan.n_images, n_test=1)
    manifest = read_json(data / MANIFEST) if (data / MANIFEST).is_file() else {}
    if manifest.get("params") != wanted.as_dict() or manifest.get("seed") != seed:
        make_circle_dataset(data, wanted, seed=seed, force=True)
    return data / "train", data / "test"


def _train(
    runs: Path,
    name: str,
    train: Path,
    plan: DemoPlan,
    seed: int,
    device: str,
    preset: DemoPreset,
) -> tuple[Any, float]:
    """Train the standard model in ``runs/standard``, or fine-tune the SATI model from it in
    ``runs/sati`` (the shipped protocol: half the steps, the preset's SATI settings;
    docs/benchmarks.md)."""
    from satikit.checkpoint import (
        AdapterSpec,
        RunConfig,
        SATISettings,
        TrainingSettings,
        load_config,
        load_init,
    )
    from satikit.training import SATITrainer

    sati = name == "sati"
    steps = max(1, plan.steps // 2) if sati else plan.steps
    settings = SATISettings(**preset.finetune) if sati else SATISettings(enabled=False)
    config = RunConfig(
        adapter=AdapterSpec("cyclegan", plan.options),
        training=TrainingSettings(
            crop=plan.crop, steps=steps, batch_size=plan.batch_size, seed=seed, log_every=10
        ),
        sati=settings,
    )
    run = runs / name
    if (run / "config.json").is_file():
        if load_config(run).training.step >= steps:
            click.echo(f"  reusing the trained {name} model in {run}")
            return run, 0.0
        trainer = SATITrainer.resume(run, steps=steps, device=device)
    else:
        trainer = SATITrainer.from_dirs(config, [train / "x"], [train / "y"], run, device=device)
        if sati:
            load_init(trainer.adapter, runs / "standard")
    started = time.perf_counter()
    trainer.fit(progress=True)
    if preset.tiles is not None:  # the preset's tiles, recorded as the run's defaults
        _record_tiles(run, *preset.tiles)
    return run, time.perf_counter() - started


def _record_tiles(run: Path, tile: int, overlap: int) -> None:
    from dataclasses import replace

    from satikit.checkpoint import load_config, rewrite_config

    config = load_config(run)
    inference = replace(config.run_inference, tile=(tile, tile), overlap=(overlap, overlap))
    rewrite_config(run, replace(config, inference=inference))


def _use_pretrained(runs: Path, preset: str) -> bool:
    """Copy the shipped standard and SATI models into ``runs``; False if none ship."""
    names = {"standard": PRESETS[preset].standard, "sati": PRESETS[preset].sati}
    if not all((PRETRAINED / n / "model.safetensors").is_file() for n in names.values()):
        return False
    for name, shipped in names.items():
        target = runs / name
        target.mkdir(parents=True, exist_ok=True)
        for item in ("config.json", "model.safetensors"):
            shutil.copyfile(PRETRAINED / shipped / item, target / item)
    return True


def _translate_all(
    root: Path, runs: Path, test: Path, device: str, diameter: float, preset: str
) -> tuple[list[dict[str, Any]], dict]:
    from satikit.checkpoint import load_adapter
    from satikit.io.images import list_images, read_image, write_image
    from satikit.io.reading import open_array
    from satikit.metrics import colour_error
    from satikit.translation.translate import translate_array

    source = list_images(test / "x")[0]  # one held-out image
    restain = PRESETS[preset].kind == "restain"
    truth = read_image(test / ("y_true" if restain else "labels") / source.name)
    raw = open_array(source)
    models = {name: load_adapter(runs / name, device=device) for name in ("standard", "sati")}
    rows, images = [], {"X input": np.asarray(raw)}
    if restain:
        images["Y truth"] = truth
    for label, run, strategy, settings in rows_for(preset):
        adapter, config = models[run]
        started = time.perf_counter()
        # every row says its statistics: a shipped run records the ones its own strategy is
        # best run with, which would otherwise replace the per-tile baselines
        settings = {"norm": "tile", **settings}
        if "overlap_fraction" in settings:
            tile = config.run_inference.tile
            fraction = settings.pop("overlap_fraction")
            settings["overlap"] = [round(t * fraction) for t in tile]
        image = translate_array(adapter, config, raw, strategy=strategy, **settings)
        seconds = time.perf_counter() - started
        slug = label.lower().replace(" + ", "-").replace(" ", "-")
        write_image(root / "translated" / f"{slug}.tif", image)
        row = {"method": label, "model": run, "strategy": strategy}
        if restain:
            row.update(_truth_scores(image, truth, config, strategy, settings))
        else:
            result = colour_error(image, truth, diameter=diameter)
            row["error_percent"] = round(100 * result.error_rate, 2)
            row["errors"], row["objects"] = int(result.n_errors), int(result.n_objects)
            row["paper_median_percent"] = PAPER.get(label) if preset == "small" else None
        rows.append({**row, "seconds": round(seconds, 2)})
        images[label.removeprefix("Standard + ")] = image
    return rows, {"images": images, "config": models["sati"][1]}


def _truth_scores(
    image: np.ndarray, truth: np.ndarray, config: RunConfig, strategy: str, settings: dict
) -> dict[str, Any]:
    """Mean absolute error against the truth (0-255), the tile-level deviation on the run's
    tile grid and the seam score (tiled strategies) of one translation."""
    from satikit.metrics import mean_absolute_error, seam_score, tile_deviation
    from satikit.translation.translate import tile_grid

    resolved = config.inference_settings({"strategy": strategy, **settings})
    grid = tile_grid(resolved, truth.shape[:-1])
    cells = tile_grid(config.inference_settings({"strategy": "simple"}), truth.shape[:-1])
    return {
        "mae": round(mean_absolute_error(image, truth), 2),
        "tile_deviation": round(tile_deviation(image, truth, cells), 2),
        "seam_score": None if grid is None else round(seam_score(image, grid, channel_axis=-1), 2),
    }


def _number(key: str, digits: int) -> Any:
    """A column cell: ``row[key]`` with ``digits`` decimals, blank where it is None."""
    return lambda r: "" if r.get(key) is None else f"{r[key]:.{digits}f}"


#: The table's columns per kind of data: (header, width, cell).
_COLUMNS: dict[str, list[tuple[str, int, Any]]] = {
    "circles": [
        ("error %", 8, _number("error_percent", 2)),
        ("errors", 9, lambda r: f"{r['errors']}/{r['objects']}"),
        ("seconds", 8, _number("seconds", 1)),
        ("paper %", 8, _number("paper_median_percent", 2)),
    ],
    "restain": [
        ("MAE", 6, _number("mae", 2)),
        ("tile dev", 9, _number("tile_deviation", 2)),
        ("seam", 6, _number("seam_score", 2)),
        ("seconds", 8, _number("seconds", 1)),
    ],
}


def _table(rows: list[dict[str, Any]]) -> str:
    columns = _COLUMNS["restain" if "mae" in rows[0] else "circles"]
    label = max(30, *(len(r["method"]) for r in rows))  # the longest row label
    lines = [f"{'method':<{label}}" + "".join(f" {h:>{w}}" for h, w, _ in columns)]
    for r in rows:
        cells = "".join(f" {cell(r):>{w}}" for _, w, cell in columns)
        lines.append(f"{r['method']:<{label}}" + cells)
    return "\n".join(lines)


def _seam_png(path: Path, images: dict[str, np.ndarray], config: RunConfig) -> Path:
    """Side by side crops centred on the first interior tile corner (where 4 tiles meet)."""
    from PIL import Image, ImageDraw

    from satikit.io.atomic import atomic_path

    tile, overlap = config.run_inference.tile, config.run_inference.overlap
    tile = tile if isinstance(tile, int) else tile[0]
    overlap = overlap if isinstance(overlap, int) else overlap[0]
    corner = tile - overlap + overlap // 2  # the cut sits in the middle of the overlap
    half = max(tile // 3, 16)
    scale = 2
    panels = []
    for label, image in images.items():
        crop = image[max(corner - half, 0) : corner + half, max(corner - half, 0) : corner + half]
        if crop.ndim == 2:
            crop = np.repeat(crop[..., None], 3, axis=-1)
        panel = Image.fromarray(crop[..., :3].astype(np.uint8)).resize(
            (crop.shape[1] * scale, crop.shape[0] * scale), Image.NEAREST
        )
        canvas = Image.new("RGB", (panel.width, panel.height + 14), "white")
        canvas.paste(panel, (0, 14))
        ImageDraw.Draw(canvas).text((2, 1), label, fill="black")
        panels.append(canvas)
    gap = 6
    sheet = Image.new(
        "RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1), panels[0].height), "white"
    )
    x = 0
    for panel in panels:
        sheet.paste(panel, (x, 0))
        x += panel.width + gap
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


@click.command()
@click.option(
    "--out",
    "out_dir",
    default="./satikit-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where data, runs and results go.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    help=f"Training steps per model [default: {FULL.steps}; --quick {QUICK.steps}].",
)
@click.option(
    "--train",
    "train_models",
    is_flag=True,
    help="Train both models here (about 10 minutes) instead of using the shipped ones.",
)
@click.option("--quick", is_flag=True, help="About one minute, tiny model (numbers meaningless).")
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default="small",
    show_default=True,
    help="small: the paper's circles scaled by 1/4 (10 px, tiles 128); large-objects: 16 px "
    "circles as wide as the overlap of 64 px tiles, where overlapping tiling cuts them; "
    "restain: a real stained slide re-stained, scored against its known truth (128 px tiles).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, auto, ...")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPU threads for torch (1 is fastest for small models on a busy machine).",
)
def demo(
    out_dir: str,
    steps: int | None,
    train_models: bool,
    quick: bool,
    preset: str,
    seed: int,
    device: str,
    threads: int,
) -> None:
    """Train CycleGAN with and without SATI (on circles, or a re-stained slide) and compare
    tiling strategies.

    \b
    Example:
      satikit demo --out ./satikit-demo
    """
    import torch

    from satikit.data.presets import get_preset

    plan = QUICK if quick else FULL
    if steps is not None:
        plan = DemoPlan(**{**plan.__dict__, "steps": steps})
    root = Path(out_dir)
    shipped = root / "pretrained" / preset
    pretrained = not (quick or train_models or steps is not None) and _use_pretrained(
        shipped, preset
    )
    _announce(plan, pretrained, quick, out_dir)
    torch.set_num_threads(threads)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    restain = PRESETS[preset].kind == "restain"
    click.echo(
        "[1/4] making the re-staining task from scikit-image's immunohistochemistry slide"
        if restain
        else f"[1/4] making the {preset} circle dataset ({get_preset(preset).diameter} px circles)"
    )
    train, test = _make_data(root, plan, seed, preset)
    times = {}
    for index, name in enumerate(("standard", "sati"), start=2):
        if pretrained:
            click.echo(f"[{index}/4] using the shipped {name} CycleGAN")
            continue
        what = (
            "training the standard" if name == "standard" else "fine-tuning it with SATI: the sati"
        )
        click.echo(f"[{index}/4] {what} CycleGAN")
        _, times[name] = _train(
            root / "runs" / preset, name, train, plan, seed, device, PRESETS[preset]
        )
    click.echo("[4/4] translating one held-out image with every strategy")
    (root / "translated").mkdir(exist_ok=True)
    runs = shipped if pretrained else root / "runs" / preset
    diameter = 0.0 if restain else get_preset(preset).diameter
    rows, extra = _translate_all(root, runs, test, device, diameter, preset)
    png = _seam_png(root / "seams.png", extra["images"], extra["config"])
    _report(root, plan, preset, rows, times, started, png, quick)


def _announce(plan: DemoPlan, pretrained: bool, quick: bool, out_dir: str) -> None:
    """What the demo is about to do and how long it takes."""
    if pretrained:
        click.echo(
            "satikit demo: about 2 minutes on 2 CPU cores, with the CycleGAN pair shipped in "
            f"{PRETRAINED} (satikit demo --train trains them here); writing to {out_dir}"
        )
        return
    click.echo(
        f"satikit demo: this takes {'under a minute' if quick else 'about 10 minutes'} on 2 CPU "
        f"cores ({plan.steps} steps per model, 2 models, crop {plan.crop}, ngf {plan.ngf}); "
        f"writing to {out_dir}"
    )


def _report(
    root: Path,
    plan: DemoPlan,
    preset: str,
    rows: list[dict[str, Any]],
    times: dict[str, float],
    started: float,
    png: Path,
    quick: bool,
) -> None:
    """Write ``results.json`` and print the table."""
    from satikit.io.atomic import write_json

    ratio = times["sati"] / times["standard"] if times.get("standard") else None
    results = {
        "plan": plan.__dict__,
        "preset": preset,
        "rows": rows,
        "train_seconds": times,
        "sati_vs_standard_train_time": ratio,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(root / "results.json", results)
    click.echo("")
    click.echo(_table(rows))
    click.echo("")
    if ratio:
        click.echo(f"SATI fine-tune time / standard training time: {ratio:.2f}")
    click.echo(
        f"seams: {png}   results: {root / 'results.json'}   total {results['total_seconds']:.0f} s"
    )
    if quick:
        click.echo("(--quick trains for seconds: the errors above say nothing about SATI)")
