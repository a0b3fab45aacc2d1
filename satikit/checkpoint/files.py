"""Checkpoint files: safetensors weights plus a JSON config, written atomically; no pickle.

Crash safety: a checkpoint is written whole into a hidden staging folder, flushed to disk, and
committed by renaming that folder to ``.checkpoint.pending`` (one atomic rename); its files are
then moved into place, ``config.json`` last, and the folder removed. A process killed before
the rename leaves the previous checkpoint untouched (the stale staging folder is removed by the
next save); one killed after it leaves a pending checkpoint that every reader
(:func:`load_config`) finishes moving first. So weights, resume state and config always come
from the same checkpoint. ``config.json`` also records the SHA-256 of the other files
(``checkpoint.files``), which the loaders check: a truncated, tampered or swapped weights file
is refused with a message instead of loaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from satikit import __version__
from satikit.checkpoint.config import RunConfig
from satikit.io.atomic import atomic_path, fsync_path, read_json, write_json
from satikit.protocols import Adapter

__all__ = [
    "CONFIG_NAME",
    "PENDING_NAME",
    "STATE_JSON",
    "STATE_NAME",
    "WEIGHTS_NAME",
    "checked_file",
    "load_config",
    "load_train_state",
    "load_weights",
    "pack",
    "read_config",
    "rewrite_config",
    "save_checkpoint",
    "save_weights",
    "unpack",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "state.safetensors"
STATE_JSON = "state.json"
PENDING_NAME = ".checkpoint.pending"  # a committed checkpoint whose files are being moved in
_STAGING_PREFIX = ".checkpoint-"  # a checkpoint being written (not committed yet)
_DATA_FILES = (WEIGHTS_NAME, STATE_NAME, STATE_JSON)  # moved in this order, config.json last

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
    """Read a safetensors file (never unpickles).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a (complete) safetensors file.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no weights file {str(path)!r}")
    try:
        return load_file(str(path), device=str(device))
    except SafetensorError as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    adapter: Adapter,
    config: RunConfig,
    train_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write weights, (optionally) the resume state, and the config of a run as one atomic
    checkpoint (see the module docstring): a kill at any moment leaves either the previous or
    the new checkpoint, never a mix.

    The config carries ``step``; :func:`load_train_state` refuses a state whose step does not
    match it. ``checkpoint.files`` (SHA-256 per file) is added to the stored config.

    Args:
        run_dir: run directory (created if missing).
        adapter: the trained adapter.
        config: the run's config.
        train_state: nested resume state (tensors allowed), or None.

    Returns:
        ``run_dir`` as a path.

    Raises:
        OSError: the disk is full or not writable; the previous checkpoint stays as it was.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _finish_pending(run_dir)
    for stale in run_dir.glob(f"{_STAGING_PREFIX}*.tmp"):  # left by a killed save
        shutil.rmtree(stale, ignore_errors=True)
    staging = run_dir / f"{_STAGING_PREFIX}{uuid.uuid4().hex}.tmp"
    staging.mkdir()
    try:
        _write_checkpoint(staging, adapter, config, train_state)
        _commit(staging, run_dir / PENDING_NAME)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _finish_pending(run_dir)
    return run_dir


def _write_checkpoint(
    folder: Path,
    adapter: Adapter,
    config: RunConfig,
    train_state: Mapping[str, Any] | None,
) -> None:
    """All files of one checkpoint into ``folder``, flushed to disk, config.json last."""
    info = {"format": "pt", "satikit": __version__}
    save_weights(
        folder / WEIGHTS_NAME,
        adapter.state_dict(),
        {**info, "adapter": config.adapter.name},
    )
    if train_state is not None:
        skeleton, tensors = pack(dict(train_state))
        save_weights(folder / STATE_NAME, tensors, info)
        write_json(folder / STATE_JSON, skeleton)
    files = {name: _sha256(folder / name) for name in _DATA_FILES if (folder / name).is_file()}
    write_json(folder / CONFIG_NAME, replace(config, files=files).to_dict())
    for name in (*files, CONFIG_NAME):
        fsync_path(folder / name)
    fsync_path(folder)


def _commit(staging: Path, pending: Path) -> None:
    """The commit point: one atomic rename of the complete staging folder."""
    os.rename(staging, pending)
    fsync_path(pending.parent)


def _move_into_place(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except FileNotFoundError:  # another process finishing the same checkpoint moved it
        pass


def _finish_pending(run_dir: Path) -> None:
    """Move a committed checkpoint's files into place (config last); idempotent."""
    pending = run_dir / PENDING_NAME
    if not pending.is_dir():
        return
    for name in (*_DATA_FILES, CONFIG_NAME):
        if (pending / name).exists():
            _move_into_place(pending / name, run_dir / name)
    listed = read_config(run_dir / CONFIG_NAME).files
    for name in _DATA_FILES:  # e.g. a resume state older than a checkpoint saved without one
        if name not in listed:
            (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(pending, ignore_errors=True)
    fsync_path(run_dir)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_config(run_dir: str | os.PathLike[str]) -> RunConfig:
    """Read a run's ``config.json`` (finishing a checkpoint a killed save committed).

    Raises:
        FileNotFoundError: if ``run_dir`` holds no satikit run.
        ValueError: the file is not valid JSON, of another format, or lacks required fields.
    """
    run_dir = Path(run_dir)
    try:
        _finish_pending(run_dir)
    except OSError:  # a read-only run folder: the checksums below still catch a mix
        pass
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(run_dir)!r} is not a satikit run directory (no {CONFIG_NAME})"
        )
    return read_config(path)


def read_config(path: str | os.PathLike[str]) -> RunConfig:
    """Parse a ``config.json`` as it is (never writes: no pending checkpoint is finished).

    Raises:
        ValueError: not valid JSON, of another format, or lacking required fields.
    """
    try:
        config = read_json(path)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    return RunConfig.from_dict(config, source=str(path))


def rewrite_config(run_dir: str | os.PathLike[str], config: RunConfig) -> Path:
    """Replace a run's ``config.json`` atomically, keeping the checksums it records of the
    weights (for changes that leave the weights alone, e.g. other inference defaults)."""
    current = load_config(run_dir)
    path = Path(run_dir) / CONFIG_NAME
    return write_json(path, replace(config, files=current.files).to_dict())


def checked_file(run_dir: Path, name: str, config: RunConfig) -> Path:
    """``run_dir / name``, verified against the SHA-256 that ``config.json`` records.

    Raises:
        FileNotFoundError: the file is missing, or this checkpoint has none.
        ValueError: the checksum differs (modified, truncated, or from another checkpoint).
    """
    path = run_dir / name
    listed = config.files or None
    if listed is not None and name not in listed:
        raise FileNotFoundError(f"{str(run_dir)!r}: this checkpoint has no {name}")
    if not path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r}: missing {name}")
    if listed is not None and _sha256(path) != listed[name]:
        raise ValueError(
            f"{path} does not match {run_dir / CONFIG_NAME}: its checksum differs (the file "
            f"was modified, truncated or comes from another checkpoint)"
        )
    return path


def load_train_state(run_dir: str | os.PathLike[str], step: int | None = None) -> dict[str, Any]:
    """Read the resume state of a run (checked against the checksums in ``config.json``).

    Raises:
        FileNotFoundError: no resume state in ``run_dir``.
        ValueError: damaged files, or the state's step differs from ``step``.
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    if not (run_dir / STATE_JSON).is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} holds no resume state ({STATE_JSON})")
    skeleton = read_json(checked_file(run_dir, STATE_JSON, config))
    state = unpack(skeleton, load_weights(checked_file(run_dir, STATE_NAME, config)))
    if step is not None and state.get("step") != step:
        raise ValueError(
            f"{run_dir}: resume state is at step {state.get('step')}, config at step {step}"
        )
    return state
