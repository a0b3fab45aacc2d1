"""`satikit bench`: run the benchmarks of a source checkout (they live in ``benchmarks/``)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import click

from satikit.commands.errors import user_errors

__all__ = ["bench"]


def _benchmarks(module: str) -> ModuleType:
    """Import ``benchmarks.<module>`` from the checkout satikit was installed from."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / f"{module}.py").is_file():
        raise click.UsageError(
            "satikit bench needs the source checkout's benchmarks/ folder "
            "(install with `pip install -e .` from a clone)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"benchmarks.{module}")


@click.group()
def bench() -> None:
    """Quality and speed benchmarks (results go to benchmarks/results/)."""


@bench.command()
@click.option(
    "--config",
    "config_name",
    default="cpu-small",
    show_default=True,
    help="benchmarks/configs/<NAME>.toml or a path to a TOML file",
)
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    help="only this adapter of the config (repeatable) [default: all the config lists]",
)
def quality(config_name: str, adapters: tuple[str, ...]) -> None:
    """Strategies x adapters on the circle dataset; resumes from benchmarks/cache/."""
    module = _benchmarks("quality")
    with user_errors():
        module.run_benchmark(config_name, adapters=adapters, echo=click.echo)


#: ``satikit bench NAME [ARGS...]``: the module under ``benchmarks/`` and what it measures;
#: the arguments go to the module's ``main(argv)`` (``satikit bench NAME --help`` lists them).
BENCHMARKS: dict[str, tuple[str, str]] = {
    "frontier": ("frontier", "Error versus cost per seed lineage: SATI against the best tiling without training."),
    "variants": ("variants", "What-if runs beside a quality config: one model variant with other settings."),
    "learning-curve": ("learning_curve", "Error of the kept weights at every checkpoint of a quality run."),
    "speed": ("engine_speed", "Every strategy timed on the same model and image, as ratios."),
    "memory": ("memory_scaling", "Peak memory and throughput of a TIFF -> TIFF translation as images grow."),
    "ome-memory": ("ome_memory", "Memory of a translation into a pyramidal OME-TIFF versus its size."),
    "distributed": ("distributed_translate", "torchrun with N processes against one process, per case."),
    "norm-seams": ("norm_seams", "Per-tile against shared statistics (TIN / KIN) on circles of varying density."),
    "seam-profile": ("seam_profile", "Error rate by distance from a tile's leading edge on the SATI grid."),
    "strip-probe": ("strip_probe", "What a SATI model takes from its leading strip (strip swapped)."),
    "colour-shares": ("colour_shares", "Which colours models paint the circles: red / green / blue / none / several."),
    "statistics": ("statistics_report", "Shared against per-tile statistics per seed, from a frontier result."),
    "stat-probe": ("stat_probe", "How much per-tile statistics differ on each dataset, before training."),
    "adapter-steps": ("adapter_step_time", "Training step time of every built-in adapter, with and without SATI."),
    "data-timing": ("data_timing", "Time the dataset generators and the colour metric; check the metric."),
    "ship-demo": ("ship_demo", "Copy a benchmark's chosen models into satikit/pretrained/."),
    "results-index": ("results_index", "Regenerate benchmarks/results/README.md, the index of result files."),
}  # fmt: skip


def _passthrough(name: str, module: str, summary: str) -> click.Command:
    @click.command(
        name=name,
        help=f"{summary} (arguments go to benchmarks/{module}.py; try --help)",
        context_settings={"ignore_unknown_options": True, "help_option_names": []},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        sys.argv[0] = f"satikit bench {name}"  # what argparse's usage line names
        with user_errors():
            _benchmarks(module).main(list(args))

    return command


for _name, (_module, _summary) in BENCHMARKS.items():
    bench.add_command(_passthrough(_name, _module, _summary))
