"""What-if runs beside a quality config: one model variant with other settings or budget.

Diagnoses a benchmark result without touching its config: trains the variant for the given
seeds (cached under the config's cache folder, ``variants/<label>/``, two at a time like the
benchmark), evaluates it with the config's inference settings and writes
``results/<config>/<date>-<commit>-variant-<label>.{json,md}``. Example (is SATI better after
twice the steps? without domain encoding?); without ``--adapter`` every adapter of the
config gets the variant::

    python -m benchmarks.variants --config cpu-small --variant sati --seeds 1 --steps 4800 \\
        --adapter cyclegan
    python -m benchmarks.variants --config cpu-small --variant sati --seeds 1 \\
        --set domain_encoding=false --adapter cyclegan

``--init standard`` fine-tunes the config's standard model of each seed (trained first if
missing) instead of training from scratch; ``--split validation`` scores the config's
validation images (where choices are made) instead of the test images; ``--method`` adds
inference methods of :mod:`benchmarks.methods` (e.g. ``sati@25+m8``) to the default ones.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from benchmarks import planning, report, scoring, training_runs
from benchmarks.bench_config import BenchConfig


def parse_value(text: str) -> Any:
    """``true``/``false`` -> bool, numbers -> int/float, anything else stays a string."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def variant_config(
    config: BenchConfig,
    variant: str,
    overrides: dict[str, Any],
    steps: int | None,
    options: dict[str, Any] | None = None,
    init: str | None = None,
) -> BenchConfig:
    """The benchmark config with ``overrides`` applied to ``variant``'s SATI settings,
    ``options`` to every adapter's hyperparameters and ``init`` (``"standard"``: fine-tune the
    standard model of each seed) to its training.

    Raises:
        ValueError: an override that is not a :class:`satikit.checkpoint.SATISettings` field.
    """
    from dataclasses import fields

    from satikit.checkpoint import SATISettings

    known = {f.name for f in fields(SATISettings)} - {"enabled"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown SATI setting(s) {unknown}; known: {sorted(known)}")
    train = config.train
    if steps is not None:  # also for adapters whose [per_adapter] table sets their own
        train = replace(train, steps=int(steps))
        per_adapter = {a: replace(o, steps=None) for a, o in config.per_adapter.items()}
        config = replace(config, per_adapter=per_adapter)
    if init is not None:
        if init != "standard":
            raise ValueError(f"--init takes 'standard', got {init!r}")
        train = replace(train, init=init)
    adapter_options = {
        **train.options,
        **{a: {**train.options.get(a, {}), **(options or {})} for a in config.adapters},
    }
    section = "standard" if variant == "standard" else "sati"
    sati = {**getattr(train, section), **overrides}
    return replace(config, train=replace(train, options=adapter_options, **{section: sati}))


def _steps(config: BenchConfig, runs: Sequence[planning.Run]) -> int | dict[str, int]:
    """The runs' training steps: one number, or one per adapter where they differ."""
    steps = {run.adapter: planning.run_steps(config, run) for run in runs}
    values = set(steps.values())
    return values.pop() if len(values) == 1 else steps


def default_label(
    variant: str,
    overrides: dict[str, Any],
    steps: int | None,
    options: dict[str, Any] | None = None,
    init: str | None = None,
) -> str:
    settings = {**overrides, **(options or {})}
    parts = [variant] + [f"{k}={v}" for k, v in sorted(settings.items())]
    if steps is not None:
        parts.append(f"{steps}steps")
    if init is not None:
        parts.append(f"from-{init}")
    return "-".join(str(p).replace("_", "-").replace("=", "-").lower() for p in parts)


def run_variant(
    config_name: str,
    variant: str,
    seeds: Sequence[int],
    overrides: dict[str, Any],
    *,
    steps: int | None = None,
    options: dict[str, Any] | None = None,
    label: str | None = None,
    adapters: Sequence[str] | None = None,
    init: str | None = None,
    split: str = "test",
    methods: Sequence[str] = (),
    cache=planning.CACHE,
    echo: Callable[[str], None] = print,
    write: bool = True,
) -> dict[str, Any]:
    """Train and evaluate one variant; returns the payload written as JSON."""
    from benchmarks.common import git_commit, machine, write_results
    from benchmarks.methods import parse_method

    base = planning.load_config(config_name)
    config = variant_config(base, variant, overrides, steps, options, init)
    label = label or default_label(variant, overrides, steps, options, init)
    chosen = planning.select_adapters(base, adapters)  # before any data is made
    for method in methods:
        parse_method(method, config.inference)  # refuse a bad name before any training
    home = planning.workdir(base, cache)
    data_dir = planning.ensure_dataset(base, home)
    root = planning.runs_root(home, label)
    runs = [planning.Run(adapter, variant, int(s)) for adapter in chosen for s in seeds]
    if init is not None:  # the standard models to start from, in the config's own runs
        sources = {planning.init_run(config, r) for r in runs}
        training_runs.train_all(base, home, data_dir, sorted(sources, key=str), echo)
    training_runs.train_all(config, root, data_dir, runs, echo, home=home)
    rows = []
    for run in planning.scored_models(config, runs):  # with [train] ema also the averages
        wanted = list(dict.fromkeys([*planning.methods_for(run), *methods]))
        for row in scoring.evaluate_run(
            config, root, data_dir, run, methods=wanted, split=split, home=home
        ):
            rows.append({**row, "model": label + run.model.removeprefix(run.variant)})
    summary = report.summarise(rows)
    command = " ".join(
        ["python -m benchmarks.variants", f"--config {config_name}", f"--variant {variant}"]
        + ["--seeds " + " ".join(str(s) for s in seeds)]
        + [f"--set {k}={v}" for k, v in overrides.items()]
        + [f"--option {k}={v}" for k, v in (options or {}).items()]
        + ([f"--steps {steps}"] if steps is not None else [])
        + (
            [f"--label {label}"]
            if label != default_label(variant, overrides, steps, options)
            else []
        )
        + [f"--adapter {a}" for a in adapters or []]
        + ([f"--init {init}"] if init is not None else [])
        + ([f"--split {split}"] if split != "test" else [])
        + [f"--method {m}" for m in methods]
    )
    payload = {
        "config": base.name,
        "variant": variant,
        "label": label,
        "overrides": overrides,
        "options": options or {},
        "steps": _steps(config, runs),
        "init": init,
        "split": split,
        "commit": git_commit(),
        "machine": machine(),
        "command": command,
        "rows": rows,
        "summary": summary,
    }
    table = report.markdown_table(summary)
    if write:
        header = (
            f"# Variant `{label}` of `{base.name}`\n\n`{command}` on {payload['machine']}, "
            f"commit {payload['commit']}, {payload['steps']} steps\n\n"
        )
        suffix = f"-variant-{label}" + ("" if split == "test" else f"-{split}")
        json_path, _ = write_results(base.name, payload, header + table, suffix, 1)
        echo(f"wrote {json_path.with_suffix('')}.*")
    echo(table)
    return payload


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu-small")
    parser.add_argument("--variant", default="sati", help="standard, sati or sati-wo-<name>")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="SATISettings field, e.g. domain_encoding=false or lambda_d_sati=0.5",
    )
    parser.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="adapter hyperparameter, e.g. lambda_cycle=40",
    )
    parser.add_argument("--steps", type=int, help="training steps [default: the config's]")
    parser.add_argument("--label", help="name of the variant [default: from the settings]")
    parser.add_argument(
        "--init",
        choices=["standard"],
        help="fine-tune the config's standard model of each seed instead of training from scratch",
    )
    parser.add_argument(
        "--split",
        choices=planning.SPLITS,
        default="test",
        help="score the test images or the validation images (where choices are made)",
    )
    parser.add_argument(
        "--method",
        dest="methods",
        action="append",
        default=[],
        help="an extra inference method, e.g. sati@25+m8 (repeatable)",
    )
    parser.add_argument(
        "--adapter",
        dest="adapters",
        action="append",
        help="only this adapter of the config (repeatable) [default: all of them]",
    )
    args = parser.parse_args(argv)
    pairs: dict[str, dict[str, Any]] = {"--set": {}, "--option": {}}
    for flag, items in (("--set", args.overrides), ("--option", args.options)):
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                parser.error(f"{flag} needs KEY=VALUE, got {item!r}")
            pairs[flag][key] = parse_value(value)
    run_variant(
        args.config,
        args.variant,
        args.seeds,
        pairs["--set"],
        steps=args.steps,
        options=pairs["--option"],
        label=args.label,
        adapters=args.adapters,
        init=args.init,
        split=args.split,
        methods=args.methods,
    )


if __name__ == "__main__":
    main()
