"""``satikit train``: train any registered adapter, with or without SATI."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from satikit.checkpoint import CONFIG_NAME, RunConfig
from satikit.checkpoint.config import BN_RECALIBRATION
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
    from satikit.io.arrays import infer_dims
    from satikit.io.reading import open_array
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
@click.option(
    "--statistics-context",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Beyond the paper: translate the SATI input z with the normalisation statistics of a "
    "region this many crops wide around the crop (as tiling with --norm thumbnail|kernel "
    "does at inference); 1: each crop's own (paper Alg. 1).",
)
@click.option(
    "--ema",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.0,
    show_default=True,
    help="Also keep an exponential moving average of the generator's weights with this decay "
    "(e.g. 0.995: about the last 200 steps), saved as the run OUT/ema; 0: none.",
)
@click.option(
    "--bn-recalibration",
    type=click.IntRange(min=0),
    default=BN_RECALIBRATION,
    show_default=True,
    help="Before each checkpoint, recompute the generators' BatchNorm statistics (e.g. a timm "
    "backbone's) over this many batches of training crops; 0: keep the running averages. "
    "No effect on generators without BatchNorm.",
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
def train(**params: Any) -> None:
    """Train a GAN adapter on unpaired TIFFs, with SATI (default) or without.

    With --resume the run in --out continues exactly; only --steps / --epochs (to extend it),
    --device and --quiet may change, any other option given must agree with the run's.

    \b
    Example:
      satikit train --adapter cyclegan --x data/train/x --y data/train/y \\
          --out runs/sati --steps 2000 --crop 128 -o ngf 32 -o n_blocks 6
    """
    from satikit.devices import session

    run_dir = params["run_dir"]
    started = time.perf_counter()
    note = f"the last complete checkpoint in {run_dir} is kept; --resume continues from it"
    with user_errors(note), session(params["device"]) as (ctx, device):
        say = click.echo if ctx.is_main else _silent
        trainer = _resumed(params, device) if params["resume"] else _new(params, device, say)
        mode = "SATI" if trainer.sati.enabled else "standard"
        where = (
            f"{trainer.device} x {ctx.world_size} processes" if ctx.distributed else trainer.device
        )
        say(
            f"training {trainer.config.adapter.name} ({mode}) on {where} for "
            f"{trainer.config.training.steps - trainer.step} steps, crop {list(trainer.crop)}",
            err=True,
        )
        losses = trainer.fit(progress=not params["quiet"])
    summary = ", ".join(
        f"{k} {v:.4g}" for k, v in losses.items() if k in ("g_total", "d_total", "stitch")
    )
    say(
        f"done: step {trainer.step} in {time.perf_counter() - started:.1f} s ({summary}); "
        f"run saved in {run_dir}"
    )


def _config(params: dict[str, Any], dims: int) -> RunConfig:
    """The run config the options ask for (derived fields left for the trainer)."""
    from satikit.checkpoint import AdapterSpec, DataSpec, SATISettings, TrainingSettings

    options = (*params["options"], *_flag_options(params))
    p = params
    return RunConfig(
        adapter=AdapterSpec(p["adapter"], dict(options)),
        data=DataSpec(dims=dims),
        training=TrainingSettings(
            steps=p["steps"] or 1000,
            crop=p["crop"],
            batch_size=p["batch_size"],
            seed=p["seed"],
            amp=p["amp"],
            compile=p["compile_"],
            log_every=p["log_every"],
            sample_every=p["sample_every"],
            checkpoint_every=p["checkpoint_every"],
            ema=p["ema"],
            bn_recalibration=p["bn_recalibration"],
        ),
        sati=SATISettings(
            enabled=p["sati"],
            overlap=p["overlap"],
            lambda_stitch=p["lambda_stitch"],
            overlap_sampling=p["overlap_sampling"],
            domain_encoding=p["domain_encoding"],
            loss_ramping=p["loss_ramping"],
            pixel_weighting=p["pixel_weighting"],
            strip_source=p["strip_source"],
            lambda_consistency=p["lambda_consistency"],
            lambda_d_sati=p["lambda_d_sati"],
            start=p["sati_start"],
            statistics_context=p["statistics_context"],
        ),
    )


def _epoch_steps(epochs: int, x_dirs: Sequence[str], batch_size: int) -> int:
    """Steps of ``epochs`` epochs: one crop per X image and epoch."""
    from satikit.training import domain_images

    return epochs * -(-len(domain_images(x_dirs, "x")) // batch_size)


def _new(params: dict[str, Any], device: str, say: Callable[..., None]) -> Any:
    """A trainer for a new run in ``--out``."""
    from satikit.checkpoint import load_init
    from satikit.training import SATITrainer

    x_dirs, y_dirs, run_dir = params["x_dirs"], params["y_dirs"], params["run_dir"]
    if not x_dirs or not y_dirs:
        raise click.UsageError("--x and --y are required (unless --resume)")
    if params["steps"] is not None and params["epochs"] is not None:
        raise click.UsageError("give --steps or --epochs, not both")
    if (Path(run_dir) / CONFIG_NAME).exists():
        raise click.UsageError(
            f"{run_dir!r} already holds a run; pass --resume or choose another --out"
        )
    config = _config(params, int(params["dims"]) if params["dims"] else _dims_of(x_dirs))
    if params["epochs"] is not None:
        steps = _epoch_steps(params["epochs"], x_dirs, params["batch_size"])
        config = config.with_training(steps=steps)
    trainer = SATITrainer.from_dirs(config, x_dirs, y_dirs, run_dir, device=device)
    if params["init_path"]:
        loaded = load_init(trainer.adapter, params["init_path"])
        say(f"initialised from {params['init_path']}: {', '.join(loaded)}", err=True)
    return trainer


#: Options ``--resume`` takes as they are; any other one given must agree with the run's.
_RESUME_FREE = ("run_dir", "resume", "steps", "epochs", "device", "quiet")


def _resumed(params: dict[str, Any], device: str) -> Any:
    """A trainer continuing the run in ``--out``.

    Raises:
        click.UsageError: an option that contradicts the run, or both --steps and --epochs.
    """
    from satikit.checkpoint import load_config
    from satikit.training import SATITrainer

    run_dir = params["run_dir"]
    saved = load_config(run_dir)
    context = click.get_current_context()
    given = [
        name
        for name in params
        if name not in _RESUME_FREE
        and context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    ]
    conflicts = _conflicts(saved, params, given, context.command)
    if conflicts:
        raise click.UsageError(
            f"cannot resume the run in {run_dir}: it was started with other settings: "
            + "; ".join(conflicts)
            + " - drop these options, or train a new run without --resume"
        )
    steps = params["steps"]
    if params["epochs"] is not None:
        if steps is not None:
            raise click.UsageError("give --steps or --epochs, not both")
        x_dirs, batch = saved.data.x or (), saved.training.batch_size
        steps = _epoch_steps(params["epochs"], x_dirs, batch)
    return SATITrainer.resume(run_dir, steps=steps, device=None if device == "auto" else device)


def _conflicts(
    saved: RunConfig, params: dict[str, Any], given: Sequence[str], command: click.Command
) -> list[str]:
    """The ``given`` options whose values differ from the run's, spelled as options:
    ``--seed 3 (it used 0)``."""
    dims = int(params["dims"]) if params["dims"] else saved.data.dims
    wanted = _config(params, dims)
    spelled = {p.name: p for p in command.params if isinstance(p, click.Option)}
    found = []
    for name in given:
        if name == "init_path":
            found.append("--init (a resumed run continues from its own weights)")
            continue
        if name in ("options",) or name.startswith(_FLAG_PREFIX):
            found += _option_conflicts(saved, params, name)
            continue
        mine, theirs = _field(name, wanted, saved, params), _field(name, saved, saved, None)
        if mine != theirs:
            option = spelled[name]
            found.append(f"{_spell(option, mine)} (it used {_spell(option, theirs, bare=True)})")
    return found


def _field(name: str, config: RunConfig, saved: RunConfig, params: dict[str, Any] | None) -> Any:
    """The value of CLI option ``name`` in ``config`` (``params``: the given folders)."""
    if name in ("x_dirs", "y_dirs"):
        if params is not None:
            return tuple(str(Path(d).resolve()) for d in params[name])
        return tuple(getattr(saved.data, name[0]) or ())
    if name == "crop":
        return config.training.crop_size(saved.data.dims)
    sati = config.sati.resolve(saved.crop)
    table = {
        "adapter": config.adapter.name,
        "dims": config.data.dims,
        "sati": sati.enabled,
        "compile_": config.training.compile,
        "sati_start": sati.start,
    }
    if name in table:
        return table[name]
    if hasattr(config.training, name):
        return getattr(config.training, name)
    return getattr(sati, name)


def _option_conflicts(saved: RunConfig, params: dict[str, Any], name: str) -> list[str]:
    """``-o KEY VALUE`` (or an adapter flag) given with other values than the run's."""
    from satikit.plugins import get_adapter_info

    pairs = params["options"] if name == "options" else _flag_options({name: params[name]})
    info = get_adapter_info(saved.adapter.name)
    found = []
    for key, value in pairs:
        mine = info.resolve_options({key: value})[key]
        theirs = saved.adapter.options.get(key)
        if mine != theirs:
            found.append(f"-o {key} {value} (it used {theirs})")
    return found


def _spell(option: click.Option, value: Any, *, bare: bool = False) -> str:
    """An option and its value as the CLI writes them (``--no-sati``, ``--crop 64,64``;
    ``bare``: a value without its option, ``64,64``)."""
    if isinstance(value, bool) and option.is_flag:
        if option.secondary_opts:
            return option.opts[0] if value else option.secondary_opts[0]
        return option.opts[0] if value else f"no {option.opts[0]}"
    if isinstance(value, (tuple, list)):
        value = ",".join(map(str, value))
    return str(value) if bare else f"{option.opts[0]} {value}"
