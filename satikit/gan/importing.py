"""Helpers for importers of checkpoints written by other codebases: a safe state-dict reader
and key-checked loading into a built adapter. Never unpickles arbitrary objects."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["PathLike", "Rule", "load_into", "load_modules", "load_state_dict_file", "rename"]

PathLike = str | os.PathLike[str]
#: ``(regex, target)``: a key matching ``regex`` in full is renamed to ``target(match)``
#: (None: dropped); see :func:`rename`.
Rule = tuple[str, Callable[[re.Match[str]], str | None]]


def _check_tree(obj: Any, path: Path, where: str = "") -> None:
    if isinstance(obj, Tensor):
        return
    if isinstance(obj, Mapping) and all(isinstance(key, str) for key in obj):
        for key, value in obj.items():
            _check_tree(value, path, f"{where}.{key}" if where else key)
        return
    raise ValueError(
        f"{path} is not a plain state dict: {where or 'the top level'} holds a "
        f"{type(obj).__name__}, expected tensors in (nested) dicts with string keys"
    )


def _strip_module(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {key.removeprefix("module."): _strip_module(value) for key, value in obj.items()}
    return obj


def load_state_dict_file(path: PathLike) -> dict[str, Any]:
    """Read a ``torch.save``-d (nested) state dict safely, or a ``.safetensors`` file.

    Loads with ``torch.load(path, map_location="cpu", weights_only=True)``, so no arbitrary
    object is ever unpickled; a ``module.`` prefix (DataParallel) is removed from every key.

    Returns:
        ``name -> tensor`` or, for files such as MUNIT's ``gen_*.pt``, ``name -> dict``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds anything but tensors in dicts with string keys (e.g. a
            pickled module or optimizer object), naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {str(path)!r}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, ... all mean "not ours"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path} is not a plain state dict that can be loaded with weights_only=True "
            f"(satikit never unpickles arbitrary objects; save net.state_dict(), not the "
            f"net): {reason}"
        ) from None
    _check_tree(state, path)
    return _strip_module(state)


def load_into(module: nn.Module, prefix: str, weights: Mapping[str, Tensor], source: str) -> None:
    """Copy ``weights`` (keys relative to ``prefix``) into ``module``'s state; every tensor of
    ``module`` under ``prefix`` must be given.

    Raises:
        ValueError: a key the module does not have, a shape mismatch, or a missing tensor,
            naming ``source`` and the key (typically: the adapter was built with other sizes
            than the checkpoint).
    """
    own = module.state_dict()
    update = {}
    for key, value in weights.items():
        name = prefix + key
        if name not in own:
            raise ValueError(
                f"{source}: {key!r} has no counterpart {name!r} in the adapter "
                "(another architecture or number of blocks?)"
            )
        if own[name].shape != value.shape:
            raise ValueError(
                f"{source}: {key!r} has shape {tuple(value.shape)}, the adapter's {name!r} has "
                f"{tuple(own[name].shape)} (build the adapter with the checkpoint's sizes)"
            )
        update[name] = value.to(own[name].dtype)
    missing = [key for key in own if key.startswith(prefix) and key not in update]
    if missing:
        raise ValueError(
            f"{source} lacks {len(missing)} tensors of {prefix.rstrip('.')!r}, e.g. {missing[:3]}"
        )
    module.load_state_dict(update, strict=False)


def load_modules(
    adapter: nn.Module, weights: Mapping[str, Tensor], prefixes: list[str], source: str
) -> None:
    """Load adapter-relative ``weights`` module by module (each prefix must be complete).

    Raises:
        ValueError: a weight outside ``prefixes``, or a module's key / shape mismatch.
    """
    stray = [key for key in weights if not key.startswith(tuple(prefixes))]
    if stray:
        raise ValueError(f"{source}: {stray[:3]} belong to no module of {prefixes}")
    for prefix in prefixes:
        part = {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}
        load_into(adapter, prefix, part, source)


def rename(sd: Mapping[str, Tensor], rules: list[Rule], source: str) -> dict[str, Tensor]:
    """Rename every key by the first rule whose regex matches it in full (None: drop it).

    Raises:
        ValueError: a key no rule matches, naming ``source``.
    """
    compiled = [(re.compile(pattern), target) for pattern, target in rules]
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        for pattern, target in compiled:
            if match := pattern.fullmatch(key):
                new = target(match)
                if new is not None:
                    out[new] = value
                break
        else:
            raise ValueError(
                f"{source}: unexpected key {key!r} (not the reference code's "
                "layout, or a norm / padding this importer does not support)"
            )
    return out
