"""Checkpoints: safetensors weights plus a JSON config, written atomically; no pickle anywhere.

A run directory holds:

* ``config.json``: adapter name, plugin and options, data layout, domain encoding, SATI
  settings, training settings and the inference defaults (strategy, tile, overlap), so
  ``satikit translate RUN IN OUT`` needs no other flag;
* ``model.safetensors``: the adapter's weights (:meth:`Adapter.state_dict`);
* ``state.safetensors`` + ``state.json``: what ``--resume`` needs (optimizers, schedulers,
  RNG states, step, host training state). Nested state is split by :func:`pack` into tensors
  and a JSON skeleton that names them.

Every file goes through a temporary file and :func:`os.replace`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from satikit import __version__
from satikit.data.io import atomic_path, read_json, write_json
from satikit.plugins import create_adapter
from satikit.protocols import Adapter

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "STATE_JSON",
    "STATE_NAME",
    "WEIGHTS_NAME",
    "build_adapter",
    "load_adapter",
    "load_config",
    "load_train_state",
    "load_weights",
    "pack",
    "save_checkpoint",
    "save_weights",
    "unpack",
]

FORMAT = "satikit-run/1"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "state.safetensors"
STATE_JSON = "state.json"

_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"


def pack(obj: Any, prefix: str = "state") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state (dicts, lists, tuples, tensors, JSON scalars) into a JSON skeleton
    and a flat ``name -> tensor`` mapping (CPU, contiguous) for safetensors.

    Dicts with non-string keys (e.g. optimizer state keyed by parameter index) and tuples are
    tagged so :func:`unpack` restores them exactly.

    Raises:
        TypeError: naming the path of a value that is neither.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().cpu().contiguous().clone()
            return {_TENSOR: path}
        if isinstance(value, Mapping):
            if all(isinstance(key, str) for key in value):
                return {key: walk(item, f"{path}.{key}") for key, item in value.items()}
            return {
                _ITEMS: [
                    [walk(k, f"{path}.k{i}"), walk(v, f"{path}.{i}")]
                    for i, (k, v) in enumerate(value.items())
                ]
            }
        if isinstance(value, tuple):
            return {_TUPLE: [walk(item, f"{path}.{i}") for i, item in enumerate(value)]}
        if isinstance(value, list):
            return [walk(item, f"{path}.{i}") for i, item in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot store {type(value).__name__} at {path!r} in a checkpoint")

    return walk(obj, prefix), tensors


def unpack(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {_TENSOR}:
            return tensors[skeleton[_TENSOR]]
        if set(skeleton) == {_TUPLE}:
            return tuple(unpack(item, tensors) for item in skeleton[_TUPLE])
        if set(skeleton) == {_ITEMS}:
            return {unpack(k, tensors): unpack(v, tensors) for k, v in skeleton[_ITEMS]}
        return {key: unpack(item, tensors) for key, item in skeleton.items()}
    if isinstance(skeleton, list):
        return [unpack(item, tensors) for item in skeleton]
    return skeleton


def save_weights(
    path: str | os.PathLike[str],
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``tensors`` as a safetensors file, atomically (copies to CPU first)."""
    flat = {key: value.detach().cpu().contiguous().clone() for key, value in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata=dict(metadata or {}))
    return Path(path)


def load_weights(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Read a safetensors file (never unpickles)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no weights file {str(path)!r}")
    return load_file(str(path), device=str(device))


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    adapter: Adapter,
    config: Mapping[str, Any],
    train_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write weights, (optionally) the resume state, and the config of a run, atomically.

    The config is written last and carries ``step``; :func:`load_train_state` refuses a state
    whose step does not match it.

    Args:
        run_dir: run directory (created if missing).
        adapter: the trained adapter.
        config: JSON-serialisable run config (see :mod:`satikit.training`).
        train_state: nested resume state (tensors allowed), or None.

    Returns:
        ``run_dir`` as a path.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "pt", "satikit": __version__, "adapter": str(config["adapter"]["name"])}
    save_weights(run_dir / WEIGHTS_NAME, adapter.state_dict(), metadata)
    if train_state is not None:
        skeleton, tensors = pack(dict(train_state))
        save_weights(run_dir / STATE_NAME, tensors, {"format": "pt", "satikit": __version__})
        write_json(run_dir / STATE_JSON, skeleton)
    write_json(run_dir / CONFIG_NAME, dict(config))
    return run_dir


def load_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run's ``config.json``.

    Raises:
        FileNotFoundError: if ``run_dir`` holds no satikit run.
    """
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(run_dir)!r} is not a satikit run directory (no {CONFIG_NAME})"
        )
    config = read_json(path)
    if config.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown checkpoint format {config.get('format')!r}")
    return config


def build_adapter(config: Mapping[str, Any]) -> Adapter:
    """Create (untrained) the adapter a run config describes."""
    data = config["data"]
    return create_adapter(
        config["adapter"]["name"],
        dims=int(data["dims"]),
        in_channels=int(data["in_channels"]),
        out_channels=int(data["out_channels"]),
        domain_encoding=bool(config["encoding"]["domain_encoding"]),
        **config["adapter"]["options"],
    )


def load_adapter(
    run_dir: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[Adapter, dict[str, Any]]:
    """Rebuild a run's adapter with its trained weights, in eval mode, on ``device``."""
    config = load_config(run_dir)
    adapter = build_adapter(config)
    adapter.load_state_dict(load_weights(Path(run_dir) / WEIGHTS_NAME))
    adapter.to(device)
    adapter.train(False)
    return adapter, config


def load_train_state(run_dir: str | os.PathLike[str], step: int | None = None) -> dict[str, Any]:
    """Read the resume state of a run.

    Raises:
        FileNotFoundError: no resume state in ``run_dir``.
        ValueError: the state's step differs from ``step`` (an interrupted save).
    """
    run_dir = Path(run_dir)
    if not (run_dir / STATE_JSON).is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} holds no resume state ({STATE_JSON})")
    state = unpack(read_json(run_dir / STATE_JSON), load_weights(run_dir / STATE_NAME))
    if step is not None and state.get("step") != step:
        raise ValueError(
            f"{run_dir}: resume state is at step {state.get('step')}, config at step {step}"
        )
    return state


def load_init(adapter: Adapter, path: str | os.PathLike[str]) -> list[str]:
    """Initialise ``adapter`` from existing weights (``satikit train --init PATH``).

    ``path`` is a satikit run folder or ``.safetensors`` file, or a checkpoint in the adapter
    family's own reference format, read by the adapter package's ``importer.load_init`` (the
    package named ``satikit_<adapter name>``, e.g. pytorch-CycleGAN-and-pix2pix files for
    ``cyclegan``, reference ``gen_*.pt`` for ``unit`` / ``munit``).

    Returns:
        what was loaded, for a log line.

    Raises:
        ValueError: the path is neither, or the adapter has no importer for foreign files.
    """
    import importlib

    source = Path(path)
    weights = source / WEIGHTS_NAME if source.is_dir() else source
    if weights.suffix == ".safetensors" and weights.is_file():
        adapter.load_state_dict(load_weights(weights))
        return ["all weights"]
    try:
        importer = importlib.import_module(f"satikit_{adapter.name}.importer")
    except ModuleNotFoundError:
        raise ValueError(
            f"--init {source}: adapter {adapter.name!r} reads only satikit weights "
            "(a run folder or .safetensors file)"
        ) from None
    return list(importer.load_init(adapter, source))
