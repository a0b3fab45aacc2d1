"""Runs on disk: safetensors weights plus a JSON config, written atomically; no pickle.

A run directory holds:

* ``config.json``: the :class:`RunConfig`: adapter name, plugin and options, data layout,
  domain encoding, SATI settings, training settings and the inference defaults (strategy,
  tile, overlap), so ``satikit translate RUN IN OUT`` needs no other flag;
* ``model.safetensors``: the adapter's weights (:meth:`Adapter.state_dict`);
* ``state.safetensors`` + ``state.json``: what ``--resume`` needs (optimizers, schedulers,
  RNG states, step, host training state). Nested state is split by :func:`pack` into tensors
  and a JSON skeleton that names them.

Modules: :mod:`~satikit.checkpoint.config` (the typed config and inference settings),
:mod:`~satikit.checkpoint.files` (atomic, checksummed checkpoint files),
:mod:`~satikit.checkpoint.loading` (adapters from runs and runs from adapters).
"""

from __future__ import annotations

from satikit.checkpoint.config import (
    FORMAT,
    FORMAT_VERSION,
    AdapterSpec,
    DataSpec,
    InferenceSettings,
    RunConfig,
    SATISettings,
    TrainingSettings,
    default_crop,
)
from satikit.checkpoint.files import (
    CONFIG_NAME,
    PENDING_NAME,
    STATE_JSON,
    STATE_NAME,
    WEIGHTS_NAME,
    load_config,
    load_train_state,
    load_weights,
    pack,
    read_config,
    rewrite_config,
    save_checkpoint,
    save_weights,
    unpack,
)
from satikit.checkpoint.loading import (
    build_adapter,
    load_adapter,
    load_init,
    restore_weights,
    save_as_run,
)

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "PENDING_NAME",
    "STATE_JSON",
    "STATE_NAME",
    "WEIGHTS_NAME",
    "AdapterSpec",
    "DataSpec",
    "InferenceSettings",
    "RunConfig",
    "SATISettings",
    "TrainingSettings",
    "build_adapter",
    "default_crop",
    "load_adapter",
    "load_config",
    "load_init",
    "load_train_state",
    "load_weights",
    "pack",
    "read_config",
    "restore_weights",
    "rewrite_config",
    "save_as_run",
    "save_checkpoint",
    "save_weights",
    "unpack",
]
