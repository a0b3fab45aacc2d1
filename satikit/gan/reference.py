"""The checkpoint layout of the UNIT / MUNIT authors' 2018 reference code, mapped onto
:mod:`satikit.gan.autoencoder` and :class:`~satikit.gan.discriminators.MultiScaleDiscriminator`.

That code saves ``gen_<iter>.pt = {"a": gen_a.state_dict(), "b": gen_b.state_dict()}`` and
``dis_<iter>.pt`` likewise. This module holds what the UNIT and MUNIT importers share: the
key-renaming rules of their encoders, upsampling paths and multi-scale discriminators, size
inference, file discovery and the loading skeleton. Files are read with ``weights_only=True``
(:func:`satikit.gan.importing.load_state_dict_file`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from torch import Tensor, nn

from satikit.gan.importing import PathLike, Rule, load_modules, load_state_dict_file, rename

__all__ = [
    "STATS",
    "Direction",
    "body_index",
    "discriminator_options",
    "discriminator_rules",
    "domain_map",
    "encoder_options",
    "encoder_rules",
    "import_reference",
    "load_domain_file",
    "load_reference",
    "newest_pair",
    "upsampling_rules",
]

Direction = Literal["a2b", "b2a"]
#: Norm running statistics: dropped, satikit normalises with each tile's own (paper III-B).
STATS = r".*\.(running_mean|running_var|num_batches_tracked)"


def body_index(j: str) -> int:
    """Index in :class:`~satikit.gan.resnet.ResnetBlock`'s ``body`` of their residual block's
    conv ``j`` (``"0"`` or ``"1"``)."""
    return 1 if j == "0" else 5


def encoder_rules(theirs: str, ours: str) -> list[Rule]:
    """Rules for a reference ``ContentEncoder`` at ``theirs`` ->
    :class:`~satikit.gan.autoencoder.Encoder` at ``ours``."""
    return [
        (STATS, lambda m: None),
        (
            rf"{re.escape(theirs)}model\.(\d+)\.conv\.(weight|bias)",
            lambda m: f"{ours}layers.{m[1]}.conv.{m[2]}",
        ),
        (
            rf"{re.escape(theirs)}model\.(\d+)\.model\.(\d+)\.model\.([01])\.conv\.(weight|bias)",
            lambda m: f"{ours}layers.{int(m[1]) + int(m[2])}.body.{body_index(m[3])}.{m[4]}",
        ),
    ]


def upsampling_rules(theirs: str, ours: str, n_upsampling: int) -> list[Rule]:
    """Rules for the reference decoder's upsampling stages and last conv (``theirs``
    ``model.<1..>``) -> :func:`satikit.gan.autoencoder.upsampling_path` at ``ours``."""

    def conv(m: re.Match[str]) -> str:
        index = int(m[1])
        if index == 1 + 2 * n_upsampling:
            return f"{ours}{n_upsampling}.conv.{m[2]}"
        return f"{ours}{(index - 2) // 2}.1.conv.{m[2]}"

    return [
        (rf"{re.escape(theirs)}model\.([1-9]\d*)\.conv\.(weight|bias)", conv),
        (
            rf"{re.escape(theirs)}model\.([1-9]\d*)\.norm\.(gamma|beta)",
            lambda m: (
                f"{ours}{(int(m[1]) - 2) // 2}.1.norm.{'weight' if m[2] == 'gamma' else 'bias'}"
            ),
        ),
    ]


def _count(sd: Mapping[str, Tensor], pattern: str) -> set[str]:
    regex = re.compile(pattern)
    return {match[1] for key in sd if (match := regex.fullmatch(key))}


def encoder_options(sd: Mapping[str, Tensor], prefix: str, source: str) -> dict[str, int]:
    """``dim``, ``n_downsampling``, ``n_res`` and input channels of a reference encoder."""
    stem = sd.get(f"{prefix}model.0.conv.weight")
    if stem is None:
        raise ValueError(f"{source}: no {prefix}model.0.conv.weight (not a reference checkpoint)")
    convs = _count(sd, rf"{re.escape(prefix)}model\.(\d+)\.conv\.weight")
    blocks = _count(sd, rf"{re.escape(prefix)}model\.\d+\.model\.(\d+)\.model\.0\.conv\.weight")
    return {
        "dim": int(stem.shape[0]),
        "n_downsampling": len(convs) - 1,
        "n_res": len(blocks),
        "in_channels": int(stem.shape[1]),
    }


def discriminator_options(sd: Mapping[str, Tensor], source: str) -> dict[str, int]:
    """``ndf``, ``d_layers``, ``n_scales`` of a reference multi-scale discriminator."""
    first = sd.get("cnns.0.0.conv.weight")
    if first is None:
        raise ValueError(f"{source}: no cnns.0.0.conv.weight (not a reference discriminator)")
    return {
        "ndf": int(first.shape[0]),
        "d_layers": len(_count(sd, r"cnns\.0\.(\d+)\.conv\.weight")),
        "n_scales": len(_count(sd, r"cnns\.(\d+)\.0\.conv\.weight")),
    }


def discriminator_rules(ours: str) -> list[Rule]:
    """Rules for a reference ``MsImageDis`` ->
    :class:`~satikit.gan.discriminators.MultiScaleDiscriminator` at ``ours``."""
    return [
        (STATS, lambda m: None),
        (
            r"cnns\.(\d+)\.(\d+)\.conv\.(weight|bias)",
            lambda m: f"{ours}scales.{m[1]}.{m[2]}.conv.{m[3]}",
        ),
        (r"cnns\.(\d+)\.(\d+)\.(weight|bias)", lambda m: f"{ours}scales.{m[1]}.{m[2]}.{m[3]}"),
    ]


def load_domain_file(path: PathLike) -> dict[str, dict[str, Tensor]]:
    """Read a reference ``gen_*.pt`` / ``dis_*.pt``: ``{"a": state dict, "b": state dict}``.

    Raises:
        ValueError: not a plain state dict, or without both per-domain keys.
    """
    state = load_state_dict_file(path)
    if not {"a", "b"} <= set(state) or not all(isinstance(state[k], Mapping) for k in "ab"):
        raise ValueError(
            f"{path}: expected {{'a': state_dict, 'b': state_dict}} as saved by the "
            f"MUNIT / UNIT reference code, got keys {sorted(state)[:5]}"
        )
    return {"a": dict(state["a"]), "b": dict(state["b"])}


def domain_map(direction: Direction) -> dict[str, str]:
    """Their domain (``a`` / ``b``) -> ours (``x`` / ``y``) for ``direction``."""
    if direction not in ("a2b", "b2a"):
        raise ValueError(f"direction must be 'a2b' or 'b2a', got {direction!r}")
    return {"a": "x", "b": "y"} if direction == "a2b" else {"a": "y", "b": "x"}


def load_reference(
    adapter: nn.Module,
    gen: PathLike,
    dis: PathLike | None,
    *,
    direction: Direction,
    load_generator: Callable[[nn.Module, dict[str, Tensor], str, str], None],
) -> list[str]:
    """Load reference UNIT / MUNIT files into an adapter: what the UNIT and MUNIT importers share.

    Args:
        adapter: a UNIT or MUNIT adapter with matching sizes.
        gen / dis: the reference files (``dis`` optional); direction: see :func:`domain_map`.
        load_generator: ``(adapter, state dict, our domain, source)`` loads one generator.

    Returns:
        the parts loaded, e.g. ``["gen", "dis"]``.
    """
    domains = domain_map(direction)
    for their, sd in load_domain_file(gen).items():
        load_generator(adapter, sd, domains[their], f"{gen} [{their}]")
    if dis is None:
        return ["gen"]
    for their, sd in load_domain_file(dis).items():
        ours, source = domains[their], f"{dis} [{their}]"
        weights = rename(sd, discriminator_rules(f"discriminator_{ours}."), source)
        load_modules(adapter, weights, [f"discriminator_{ours}."], source)
    return ["gen", "dis"]


def import_reference(
    name: str,
    gen: PathLike,
    dis: PathLike | None,
    *,
    generator_options: Callable[[dict[str, Tensor], str], dict[str, int]],
    load: Callable[..., list[str]],
    direction: Direction,
    domain_encoding: bool,
    options: Mapping[str, Any],
) -> nn.Module:
    """Build adapter ``name`` sized like a reference ``gen_*.pt`` (and ``dis_*.pt``), load it.

    Args:
        name: ``"unit"`` or ``"munit"``.
        gen / dis: the reference files (``dis`` optional).
        generator_options: a generator state dict and its source name -> its sizes, with
            ``in_channels``.
        load: ``load(adapter, gen, dis, direction=...)`` loads the weights.
        direction: see :func:`domain_map`; domain_encoding: False for their models
            (both domains in [-1, 1]).
        options: override the sizes read from the files and the other hyperparameters.

    Returns:
        the adapter in evaluation mode on the CPU.
    """
    from satikit.plugins import create_adapter

    gens = load_domain_file(gen)
    domains = domain_map(direction)
    sizes = {domains[k]: generator_options(sd, f"{gen} [{k}]") for k, sd in gens.items()}
    found: dict[str, Any] = {k: v for k, v in sizes["x"].items() if k != "in_channels"}
    if dis is not None:
        found.update(discriminator_options(load_domain_file(dis)["a"], str(dis)))
    adapter = create_adapter(
        name,
        dims=2,
        in_channels=sizes["x"]["in_channels"],
        out_channels=sizes["y"]["in_channels"],
        domain_encoding=domain_encoding,
        **{**found, **options},
    )
    load(adapter, gen, dis, direction=direction)
    adapter.train(False)
    return adapter


def newest_pair(path: PathLike) -> tuple[Path, Path | None]:
    """``gen_*.pt`` and its ``dis_*.pt`` (if present) from a file or a checkpoint directory.

    Raises:
        FileNotFoundError: no ``gen_*.pt``.
    """
    path = Path(path)
    if path.is_dir():
        gens = sorted(path.glob("gen_*.pt"))
        if not gens:
            raise FileNotFoundError(f"no gen_*.pt in {str(path)!r}")
        path = gens[-1]
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {str(path)!r}")
    dis = path.with_name(path.name.replace("gen_", "dis_", 1))
    return path, (dis if dis.is_file() and dis != path else None)
