"""Adapters from runs: build the one a config describes, load a run's weights into it,
initialise one from existing weights (``satikit train --init``), write one as a run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from satikit import __version__
from satikit.checkpoint.config import (
    AdapterSpec,
    DataSpec,
    RunConfig,
    SATISettings,
    TrainingSettings,
)
from satikit.checkpoint.files import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    checked_file,
    load_config,
    load_weights,
    save_checkpoint,
)
from satikit.plugins import create_adapter, get_adapter_info
from satikit.protocols import Adapter

__all__ = ["build_adapter", "load_adapter", "load_init", "restore_weights", "save_as_run"]


def _load_into(
    adapter: Adapter, tensors: Mapping[str, torch.Tensor], source: str, built_from: str
) -> None:
    """``adapter.load_state_dict(tensors)`` with a one-line error when they do not fit.

    Args:
        adapter: the adapter to fill.
        tensors: the weights.
        source: where the weights come from, for the message.
        built_from: what the adapter was built from, for the message.

    Raises:
        ValueError: missing, unexpected or differently shaped tensors (first of each named).
    """
    expected = adapter.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    shapes = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    problems = []
    if shapes:
        k = shapes[0]
        problems.append(
            f"{len(shapes)} tensor(s) of another shape, e.g. {k!r}: "
            f"{tuple(tensors[k].shape)} stored, {tuple(expected[k].shape)} expected"
        )
    problems += [f"{len(missing)} missing, e.g. {missing[0]!r}"] if missing else []
    problems += [f"{len(unexpected)} unexpected, e.g. {unexpected[0]!r}"] if unexpected else []
    if problems:
        raise ValueError(
            f"{source} does not fit the {adapter.name!r} adapter {built_from}: "
            + "; ".join(problems)
        )
    adapter.load_state_dict(tensors)


def build_adapter(config: RunConfig) -> Adapter:
    """Create (untrained) the adapter a run config describes.

    Raises:
        ValueError: the config lacks the channel counts (a run not trained yet), or the
            adapter refuses its options.
    """
    data = config.data
    if data.in_channels is None or data.out_channels is None:
        raise ValueError("the run config records no channel counts (is it a trained run?)")
    return create_adapter(
        config.adapter.name,
        dims=int(data.dims),
        in_channels=int(data.in_channels),
        out_channels=int(data.out_channels),
        domain_encoding=config.encoding,
        **config.adapter.options,
    )


def restore_weights(
    adapter: Adapter, run_dir: str | os.PathLike[str], config: RunConfig | None = None
) -> None:
    """Load a run's checked weights into ``adapter`` (built from the run's ``config``).

    Raises:
        ValueError: the weights file is damaged, from another checkpoint, or does not fit the
            adapter the config describes (e.g. an edited option).
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir) if config is None else config
    path = checked_file(run_dir, WEIGHTS_NAME, config)
    _load_into(adapter, load_weights(path), str(path), f"that {CONFIG_NAME} describes")


def load_adapter(
    run_dir: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[Adapter, RunConfig]:
    """Rebuild a run's adapter with its trained weights, in eval mode, on ``device``; returns
    it with the run's config."""
    config = load_config(run_dir)
    adapter = build_adapter(config)
    restore_weights(adapter, run_dir, config)
    adapter.to(device)
    adapter.train(False)
    return adapter, config


def load_init(adapter: Adapter, path: str | os.PathLike[str]) -> list[str]:
    """Initialise ``adapter`` from existing weights (``satikit train --init PATH``).

    ``path`` is a satikit run folder or ``.safetensors`` file, or a checkpoint in the adapter
    family's own reference format, read by the ``importer`` its plugin registered (e.g.
    pytorch-CycleGAN-and-pix2pix files for ``cyclegan``, reference ``gen_*.pt`` for ``unit`` /
    ``munit``).

    Returns:
        what was loaded, for a log line.

    Raises:
        ValueError: the path is neither, or the adapter has no importer for foreign files.
    """
    source = Path(path)
    weights = source / WEIGHTS_NAME if source.is_dir() else source
    if source.is_dir() and (source / CONFIG_NAME).is_file():  # a run: check its checksums
        weights = checked_file(source, WEIGHTS_NAME, load_config(source))
    if weights.suffix == ".safetensors" and weights.is_file():
        _load_into(adapter, load_weights(weights), str(weights), "of this run's options")
        return ["all weights"]
    importer = get_adapter_info(adapter.name).importer
    if importer is None:
        raise ValueError(
            f"--init {source}: adapter {adapter.name!r} reads only satikit weights "
            "(a run folder or .safetensors file)"
        )
    return list(importer(adapter, source))


def save_as_run(
    adapter: Adapter,
    run_dir: str | os.PathLike[str],
    *,
    in_channels: int,
    out_channels: int,
    crop: int | None = None,
) -> Path:
    """Write a built (e.g. imported) ``adapter`` as a satikit run directory (config + weights,
    no resume state), so ``satikit translate RUN IN OUT`` works right away (default strategy
    ``weighted``, as for every run trained without SATI) and ``satikit train --init RUN``
    fine-tunes it.

    Args:
        adapter: a built adapter whose ``name`` is registered.
        run_dir: directory to create or overwrite.
        in_channels / out_channels: channels of X / Y images.
        crop: training crop the inference tile defaults derive from (None: satikit's default).
    """
    info = get_adapter_info(adapter.name)
    encoding = bool(getattr(adapter, "domain_encoding", True))
    config = RunConfig(
        adapter=AdapterSpec(adapter.name),
        data=DataSpec(dims=int(adapter.dims)),  # type: ignore[attr-defined]
        sati=SATISettings(enabled=False, domain_encoding=encoding),
        training=TrainingSettings(steps=1, crop=crop, amp=False),
    ).resolved(
        options=adapter.options,  # type: ignore[attr-defined]
        plugin=info.plugin,
        plugin_version=info.version,
        channels=(int(in_channels), int(out_channels)),
        output_dtype="uint8",
        input_dtype="uint8",  # the convention of the GANs' reference code: 8-bit images
        world_size=1,
        version=__version__,
    )
    return save_checkpoint(run_dir, adapter, config)
