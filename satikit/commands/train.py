"""``satikit train``: train any registered adapter, with or without SATI."""

from __future__ import annotations

import time
from pathlib import Path

import click

from satikit.checkpoint import CONFIG_NAME
from satikit.commands.errors import user_errors
from satikit.commands.options import threads_option

__all__ = ["train"]


def _silent(*args: object, **kwargs: object) -> None:
    """``click.echo`` on ranks other than 0."""


class _TrainCommand(click.Command):
    """``train`` plus what the registered adapters declare: the shorthand flags of their
    options (``Option(..., flag=...)``, e.g. the timm adapter's ``--backbone``) and, in
    ``--init``'s help, the reference formats their importers read."""

    _extended = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._extended:
            self._extended = True
            self._extend()
        return super().get_params(ctx)

    def _extend(self) -> None:
        from satikit.plugins import get_adapter_info, list_adapters

        infos = [get_adapter_info(name) for name in list_adapters()]
        formats: dict[str, list[str]] = {}
        for info in infos:
            if info.importer is not None and info.importer_help:
                formats.setdefault(info.importer_help, []).append(info.name)
        for param in self.params:
            if param.name == "init_path" and formats:
                listed = "; ".join(f"{'/'.join(names)}: {text}" for text, names in formats.items())
                param.help = _INIT_HELP.format(
                    formats=f", or the adapter's reference checkpoint ({listed})"
                )
        flags: dict[str, tuple[str, list[str], str]] = {}
        for info in infos:
            for key, option in info.options.items():
                if option.flag and flags.get(option.flag, (key,))[0] == key:
                    names = flags.get(option.flag, (key, [], option.help))[1]
                    flags[option.flag] = (key, [*names, info.name], option.help)
        for flag, (key, names, text) in flags.items():
            self.params.append(
                click.Option(
                    [f"--{flag}", f"{_FLAG_PREFIX}{key}"],
                    help=f"Shorthand for -o {key} VALUE ({'/'.join(names)}: {text}).",
                )
            )


_FLAG_PREFIX = "adapter_option_"
_INIT_HELP = (
    "Start from existing weights: a satikit run folder or .safetensors file{formats}, e.g. to "
    "fine-tune with SATI."
)


def _flag_options(flags: dict[str, str | None]) -> tuple[tuple[str, str], ...]:
    """``-o KEY VALUE`` pairs of the adapter flags given (see :class:`_TrainCommand`)."""
    return tuple(
        (name.removeprefix(_FLAG_PREFIX), value)
        for name, value in flags.items()
        if name.startswith(_FLAG_PREFIX) and value is not None
    )


def _dims_of(x_dirs: tuple[str, ...]) -> int:
    from satikit.arrays import open_array
    from satikit.crops import infer_dims
    from satikit.training import domain_images

    return infer_dims(open_array(domain_images(x_dirs, "x")[0]).shape)


@click.command(cls=_TrainCommand)
@click.option(
    "--adapter",
    default="cyclegan",
    show_default=True,
    help="Registered adapter (see `satikit adapters`).",
)
@click.option(
    "--x",
    "x_dirs",
    multiple=True,
    type=click.Path(exists=True),
    help="Folder (or file) of domain X TIFFs; repeatable.",
)
@click.option(
    "--y",
    "y_dirs",
    multiple=True,
    type=click.Path(exists=True),
    help="Folder (or file) of domain Y TIFFs; repeatable.",
)
@click.option(
    "--out",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Run folder: config.json, model.safetensors, log.jsonl, samples/.",
)
@click.option(
    "--sati/--no-sati",
    default=True,
    show_default=True,
    help="Add the SATI terms (--no-sati: plain host GAN, the baseline).",
)
@click.option("--steps", type=click.IntRange(min=1), help="Training steps [default: 1000].")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    help="Alternative to --steps: one crop per X image and epoch.",
)
@click.option(
    "--crop",
    type=click.IntRange(min=4),
    help="Crop size in px [default: 256 in 2D, 64 in 3D (paper IV)].",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option("--dims", type=click.Choice(["2", "3"]), help="Spatial dims [default: inferred].")
@click.option(
    "-o",
    "--option",
    "options",
    type=(str, str),
    multiple=True,
    metavar="KEY VALUE",
    help="Adapter hyperparameter, e.g. -o ngf 8 (see `satikit adapters --options`).",
)
@click.option(
    "--overlap",
    type=click.IntRange(min=1),
    help="SATI overlap in training crops [default: 25% of the crop].",
)
@click.option("--lambda-stitch", type=float, help="Final λ_stitch [default: 10 in 2D, 20 in 3D].")
@click.option("--overlap-sampling/--no-overlap-sampling", default=True, show_default=True)
@click.option(
    "--domain-encoding/--no-domain-encoding",
    default=None,
    help="X in [-1, 0], Y in [0, 1] (paper III-C) [default: on with --sati, off with --no-sati].",
)
@click.option("--loss-ramping/--no-loss-ramping", default=True, show_default=True)
@click.option("--pixel-weighting/--no-pixel-weighting", default=True, show_default=True)
@click.option(
    "--strip-source",
    type=click.Choice(["crop", "neighbour"]),
    default="crop",
    show_default=True,
    help="Merged strips from the crop's own translation (paper Alg. 1) or, beyond the paper, "
    "from its neighbour's, shifted by crop - overlap as at inference (samples X crops "
    "2 * crop - overlap wide).",
)
@click.option(
    "--lambda-consistency",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Beyond the paper: weight of the continuation term (the output for z should match the "
    "output for x outside the merged strips too; ramped like λ_stitch). 0: the paper's loss.",
)
@click.option(
    "--lambda-d-sati",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Weight of D_Y's SATI fake term (paper Alg. 1: 1; 0.5 weighs it like the host's fake).",
)
@click.option(
    "--sati-start",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.0,
    show_default=True,
    help="Fraction of the steps trained as the plain host before the SATI terms start.",
)
@click.option("--amp/--no-amp", default=True, show_default=True, help="Mixed precision (CUDA).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the networks.")
@click.option("--log-every", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--sample-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Write samples/step_N.png every N steps (0: never).",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Checkpoint every N steps (0: at the end only).",
)
@click.option(
    "--init",
    "init_path",
    type=click.Path(exists=True),
    help=_INIT_HELP.format(formats=""),
)
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@threads_option
def train(
    adapter: str,
    x_dirs: tuple[str, ...],
    y_dirs: tuple[str, ...],
    run_dir: str,
    sati: bool,
    steps: int | None,
    epochs: int | None,
    crop: int | None,
    batch_size: int,
    seed: int,
    device: str,
    dims: str | None,
    options: tuple[tuple[str, str], ...],
    overlap: int | None,
    lambda_stitch: float | None,
    overlap_sampling: bool,
    domain_encoding: bool | None,
    loss_ramping: bool,
    pixel_weighting: bool,
    strip_source: str,
    lambda_consistency: float,
    lambda_d_sati: float,
    sati_start: float,
    amp: bool,
    compile_: bool,
    log_every: int,
    sample_every: int,
    checkpoint_every: int,
    init_path: str | None,
    resume: bool,
    quiet: bool,
    **flags: str | None,
) -> None:
    """Train a GAN adapter on unpaired TIFFs, with SATI (default) or without.

    \b
    Example:
      satikit train --adapter cyclegan --x data/train/x --y data/train/y \\
          --out runs/sati --steps 2000 --crop 128 -o ngf 32 -o n_blocks 6
    """
    from satikit import distributed
    from satikit.checkpoint import load_init
    from satikit.training import SATISettings, SATITrainer, TrainConfig

    started = time.perf_counter()
    note = f"the last complete checkpoint in {run_dir} is kept; --resume continues from it"
    with user_errors(note), distributed.session(device) as (ctx, device):
        say = click.echo if ctx.is_main else _silent
        if resume:
            trainer = SATITrainer.resume(
                run_dir, steps=steps, device=None if device == "auto" else device
            )
        else:
            if not x_dirs or not y_dirs:
                raise click.UsageError("--x and --y are required (unless --resume)")
            if steps is not None and epochs is not None:
                raise click.UsageError("give --steps or --epochs, not both")
            if (Path(run_dir) / CONFIG_NAME).exists():
                raise click.UsageError(
                    f"{run_dir!r} already holds a run; pass --resume or choose another --out"
                )
            options = (*options, *_flag_options(flags))
            n_dims = int(dims) if dims else _dims_of(x_dirs)
            config = TrainConfig(
                adapter=adapter,
                options=dict(options),
                dims=n_dims,
                crop=crop,
                batch_size=batch_size,
                steps=steps or 1000,
                seed=seed,
                device=device,
                amp=amp,
                compile=compile_,
                log_every=log_every,
                sample_every=sample_every,
                checkpoint_every=checkpoint_every,
                sati=SATISettings(
                    enabled=sati,
                    overlap=overlap,
                    lambda_stitch=lambda_stitch,
                    overlap_sampling=overlap_sampling,
                    domain_encoding=domain_encoding,
                    loss_ramping=loss_ramping,
                    pixel_weighting=pixel_weighting,
                    strip_source=strip_source,
                    lambda_consistency=lambda_consistency,
                    lambda_d_sati=lambda_d_sati,
                    start=sati_start,
                ),
            )
            if epochs is not None:
                from satikit.training import domain_images

                per_epoch = -(-len(domain_images(x_dirs, "x")) // batch_size)
                config.steps = epochs * per_epoch
            trainer = SATITrainer.from_dirs(config, x_dirs, y_dirs, run_dir)
            if init_path:
                loaded = load_init(trainer.adapter, init_path)
                say(f"initialised from {init_path}: {', '.join(loaded)}", err=True)
        mode = "SATI" if trainer.sati.enabled else "standard"
        where = (
            f"{trainer.device} x {ctx.world_size} processes" if ctx.distributed else trainer.device
        )
        say(
            f"training {trainer.config.adapter} ({mode}) on {where} for "
            f"{trainer.config.steps - trainer.step} steps, crop {list(trainer.crop)}",
            err=True,
        )
        losses = trainer.fit(progress=not quiet)
    summary = ", ".join(
        f"{k} {v:.4g}" for k, v in losses.items() if k in ("g_total", "d_total", "stitch")
    )
    say(
        f"done: step {trainer.step} in {time.perf_counter() - started:.1f} s ({summary}); "
        f"run saved in {run_dir}"
    )
