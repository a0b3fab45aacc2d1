"""Load UNIT weights saved by the authors' 2018 reference code (shared with MUNIT).

That code saves ``gen_<iter>.pt = {"a": gen_a.state_dict(), "b": gen_b.state_dict()}`` and
``dis_<iter>.pt`` likewise, one VAE generator (``enc`` + ``dec``) and one multi-scale
discriminator (``cnns``) per domain, without explicitly shared layers. Their layers are those of
:mod:`satikit.gan.autoencoder` (reflection padding assumed, as in their configs), so the
conversion renames keys:

* ``enc.model.<i>.conv`` -> ``encoder_*.layers.<i>.conv``; residual blocks
  ``enc.model.<n+1>.model.<b>.model.<j>.conv`` -> ``encoder_*.layers.<n+1+b>.body.<1|5>``;
* ``dec.model.0.model.<b>.model.<j>.conv`` -> ``decoder_*.blocks.<b>.body.<1|5>``; upsampling
  ``dec.model.<2+2k>.conv`` / ``.norm.gamma|beta`` -> ``decoder_*.up.<k>.1.conv`` /
  ``.norm.weight|bias``; the last conv -> ``decoder_*.up.<n>.conv``;
* ``cnns.<s>.<i>.conv`` -> ``discriminator_*.scales.<s>.<i>.conv``, the 1x1 head likewise;
* running statistics of their instance norms are dropped: satikit normalises with each tile's
  own statistics (SATI III-B), in training and inference alike.

The adapter is built with ``n_shared=0`` (their code shares no layers) and
``domain_encoding=False`` (their models map both domains to [-1, 1]). Files are read with
``weights_only=True`` (:func:`satikit.gan.importing.load_state_dict_file`); the rules shared
with MUNIT are in :mod:`satikit.gan.reference`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from satikit.gan.importing import PathLike, Rule, load_modules, rename
from satikit.gan.reference import (
    Direction,
    body_index,
    encoder_options,
    encoder_rules,
    import_reference,
    load_reference,
    newest_pair,
    upsampling_rules,
)

__all__ = ["import_unit", "load_init", "load_unit"]


def _unit_generator_rules(domain: str, n_upsampling: int) -> list[Rule]:
    return [
        *encoder_rules("enc.", f"encoder_{domain}."),
        (
            r"dec\.model\.0\.model\.(\d+)\.model\.([01])\.conv\.(weight|bias)",
            lambda m: f"decoder_{domain}.blocks.{m[1]}.body.{body_index(m[2])}.{m[3]}",
        ),
        *upsampling_rules("dec.", f"decoder_{domain}.up.", n_upsampling),
    ]


def load_unit(
    adapter: nn.Module,
    gen: PathLike,
    dis: PathLike | None = None,
    *,
    direction: Direction = "a2b",
) -> list[str]:
    """Load reference UNIT weights into an existing UNIT adapter built with ``n_shared=0``.

    Args:
        adapter: a :class:`~satikit_unit.adapter.UNITAdapter` with matching sizes.
        gen: ``gen_<iter>.pt``; dis: ``dis_<iter>.pt`` (optional).
        direction: ``"a2b"``: X = their domain a; ``"b2a"``: X = b.

    Returns:
        the parts loaded, e.g. ``["gen", "dis"]``.
    """
    if getattr(adapter, "options", {}).get("n_shared", 0) != 0:
        raise ValueError(
            "the reference UNIT code shares no layers: build the adapter with "
            "-o n_shared 0 to load its weights"
        )
    return load_reference(adapter, gen, dis, direction=direction, load_generator=_load_generator)


def _load_generator(adapter: nn.Module, sd: dict[str, Tensor], ours: str, source: str) -> None:
    n_up = encoder_options(sd, "enc.", source)["n_downsampling"]
    weights = rename(sd, _unit_generator_rules(ours, n_up), source)
    load_modules(adapter, weights, [f"encoder_{ours}.", f"decoder_{ours}."], source)


def import_unit(
    gen: PathLike,
    dis: PathLike | None = None,
    *,
    direction: Direction = "a2b",
    domain_encoding: bool = False,
    **options: Any,
) -> nn.Module:
    """Build a UNIT adapter sized like a reference ``gen_*.pt`` (and ``dis_*.pt``) and load it.

    Sizes (``dim``, ``n_downsampling``, ``n_res``, discriminator ``ndf`` / ``d_layers`` /
    ``n_scales``) and channels are read from the files, ``n_shared`` is 0; ``options`` override
    the other hyperparameters. Returns the adapter in evaluation mode on the CPU, ready for
    ``simple`` / ``weighted`` tiling or SATI fine-tuning.
    """
    return import_reference(
        "unit",
        gen,
        dis,
        generator_options=lambda sd, source: encoder_options(sd, "enc.", source),
        load=load_unit,
        direction=direction,
        domain_encoding=domain_encoding,
        options={"n_shared": 0, **options},
    )


def load_init(adapter: nn.Module, path: PathLike) -> list[str]:
    """``satikit train --init PATH`` for UNIT: a reference ``gen_*.pt`` file, or a directory
    whose newest ``gen_*.pt`` (and matching ``dis_*.pt``) are loaded (direction ``a2b``)."""
    gen, dis = newest_pair(path)
    return load_unit(adapter, gen, dis)
