"""Checkpoints: safetensors weights plus a JSON config, written atomically; no pickle anywhere.

A run directory holds:

* ``config.json``: adapter name, plugin and options, data layout, domain encoding, SATI
  settings, training settings and the inference defaults (strategy, tile, overlap), so
  ``satikit translate RUN IN OUT`` needs no other flag;
* ``model.safetensors``: the adapter's weights (:meth:`Adapter.state_dict`);
* ``state.safetensors`` + ``state.json``: what ``--resume`` needs (optimizers, schedulers,
  RNG states, step, host training state). Nested state is split by :func:`pack` into tensors
  and a JSON skeleton that names them.

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
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from satikit import __version__
from satikit.data.io import atomic_path, read_json, write_json
from satikit.plugins import create_adapter
from satikit.protocols import Adapter

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "PENDING_NAME",
    "STATE_JSON",
    "STATE_NAME",
    "WEIGHTS_NAME",
    "build_adapter",
    "load_adapter",
    "load_config",
    "load_train_state",
    "load_weights",
    "pack",
    "restore_weights",
    "save_as_run",
    "save_checkpoint",
    "save_weights",
    "unpack",
]

FORMAT = "satikit-run/1"
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
    config: Mapping[str, Any],
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
        config: JSON-serialisable run config (see :mod:`satikit.training`).
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
    config: Mapping[str, Any],
    train_state: Mapping[str, Any] | None,
) -> None:
    """All files of one checkpoint into ``folder``, flushed to disk, config.json last."""
    info = {"format": "pt", "satikit": __version__}
    save_weights(
        folder / WEIGHTS_NAME,
        adapter.state_dict(),
        {**info, "adapter": str(config["adapter"]["name"])},
    )
    if train_state is not None:
        skeleton, tensors = pack(dict(train_state))
        save_weights(folder / STATE_NAME, tensors, info)
        write_json(folder / STATE_JSON, skeleton)
    files = {name: _sha256(folder / name) for name in _DATA_FILES if (folder / name).is_file()}
    write_json(folder / CONFIG_NAME, {**config, "checkpoint": {"files": files}})
    for name in (*files, CONFIG_NAME):
        _fsync(folder / name)
    _fsync(folder)


def _commit(staging: Path, pending: Path) -> None:
    """The commit point: one atomic rename of the complete staging folder."""
    os.rename(staging, pending)
    _fsync(pending.parent)


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
    listed = read_json(run_dir / CONFIG_NAME).get("checkpoint", {}).get("files", {})
    for name in _DATA_FILES:  # e.g. a resume state older than a checkpoint saved without one
        if name not in listed:
            (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(pending, ignore_errors=True)
    _fsync(run_dir)


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; folders are skipped where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (IsADirectoryError, PermissionError):  # folders on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_REQUIRED = (
    ("adapter", "name"),
    ("adapter", "options"),
    ("data", "dims"),
    ("data", "in_channels"),
    ("data", "out_channels"),
    ("encoding", "domain_encoding"),
    ("inference", "strategy"),
    ("inference", "tile"),
    ("inference", "overlap"),
)


def load_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
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
    try:
        config = read_json(path)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise ValueError(f"{path}: unknown checkpoint format {found!r}")
    for section, key in _REQUIRED:
        if not isinstance(config.get(section), dict) or key not in config[section]:
            raise ValueError(f"{path}: missing field {section}.{key}")
    return config


def _checked(run_dir: Path, name: str, config: Mapping[str, Any]) -> Path:
    """``run_dir / name``, verified against the SHA-256 that ``config.json`` records.

    Raises:
        FileNotFoundError: the file is missing, or this checkpoint has none.
        ValueError: the checksum differs (modified, truncated, or from another checkpoint).
    """
    path = run_dir / name
    listed = config.get("checkpoint", {}).get("files")
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


def restore_weights(
    adapter: Adapter, run_dir: str | os.PathLike[str], config: Mapping[str, Any] | None = None
) -> None:
    """Load a run's checked weights into ``adapter`` (built from the run's ``config``).

    Raises:
        ValueError: the weights file is damaged, from another checkpoint, or does not fit the
            adapter the config describes (e.g. an edited option).
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir) if config is None else config
    path = _checked(run_dir, WEIGHTS_NAME, config)
    _load_into(adapter, load_weights(path), str(path), f"that {CONFIG_NAME} describes")


def load_adapter(
    run_dir: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[Adapter, dict[str, Any]]:
    """Rebuild a run's adapter with its trained weights, in eval mode, on ``device``."""
    config = load_config(run_dir)
    adapter = build_adapter(config)
    restore_weights(adapter, run_dir, config)
    adapter.to(device)
    adapter.train(False)
    return adapter, config


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
    skeleton = read_json(_checked(run_dir, STATE_JSON, config))
    state = unpack(skeleton, load_weights(_checked(run_dir, STATE_NAME, config)))
    if step is not None and state.get("step") != step:
        raise ValueError(
            f"{run_dir}: resume state is at step {state.get('step')}, config at step {step}"
        )
    return state


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
    from satikit.plugins import get_adapter_info

    source = Path(path)
    weights = source / WEIGHTS_NAME if source.is_dir() else source
    if source.is_dir() and (source / CONFIG_NAME).is_file():  # a run: check its checksums
        weights = _checked(source, WEIGHTS_NAME, load_config(source))
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
    from satikit.training import SATISettings, SATITrainer, TrainConfig

    encoding = bool(getattr(adapter, "domain_encoding", True))
    config = TrainConfig(
        adapter=adapter.name,
        options=dict(adapter.options),
        dims=adapter.dims,
        crop=crop,
        steps=1,
        device="cpu",
        amp=False,
        sati=SATISettings(enabled=False, domain_encoding=encoding),
    )
    run = SATITrainer(adapter, config).run_config()
    run["data"].update(in_channels=int(in_channels), out_channels=int(out_channels))
    run["training"]["step"] = 0
    return save_checkpoint(run_dir, adapter, run)
