"""Load MUNIT weights saved by the authors' reference code (``gen_*.pt``, ``dis_*.pt``).

``gen_<iter>.pt = {"a": gen_a.state_dict(), "b": gen_b.state_dict()}``; each generator holds a
style encoder ``enc_style``, a content encoder ``enc_content``, an AdaIN decoder ``dec`` and the
``mlp`` that maps styles to AdaIN parameters (per AdaIN layer, in module order: shift, then
scale, as :class:`satikit_munit.networks.StyleDecoder` consumes them). The conversion renames:

* ``enc_content.*`` like UNIT's encoder (:func:`satikit.gan.reference.encoder_rules`);
* ``enc_style.model.<i>.conv`` -> ``style_encoder_*.layers.<i>.conv``, the 1x1 conv after the
  pooling -> ``style_encoder_*.head``;
* ``dec.model.0.model.<b>.model.<j>.conv`` -> ``decoder_*.blocks.<b>.conv<j+1>.conv``, the
  upsampling stages and last conv as for UNIT, ``mlp.model.<i>.fc`` -> ``decoder_*.mlp.<2i>``;
* discriminators as for UNIT; instance-norm running statistics and AdaIN's unused buffers are
  dropped (satikit uses each tile's own statistics).

The adapter is built with ``domain_encoding=False`` (their models map both domains to
[-1, 1]). Files are read with ``weights_only=True``.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor, nn

from satikit.gan.importing import PathLike, Rule, load_modules, rename
from satikit.gan.reference import (
    STATS,
    Direction,
    encoder_options,
    encoder_rules,
    import_reference,
    load_reference,
    newest_pair,
    upsampling_rules,
)

__all__ = ["generator_options", "import_munit", "load_init", "load_munit"]


def generator_options(sd: dict[str, Tensor], source: str) -> dict[str, int]:
    """Sizes of a reference MUNIT generator: ``dim``, ``n_downsampling``, ``n_res``,
    ``style_dim``, ``style_downsampling``, ``mlp_dim``, ``mlp_layers``, ``in_channels``."""
    found = encoder_options(sd, "enc_content.", source)
    style_convs = sorted(
        int(m[1])
        for key in sd
        if (m := re.fullmatch(r"enc_style\.model\.(\d+)\.conv\.weight", key))
    )
    head = [key for key in sd if re.fullmatch(r"enc_style\.model\.\d+\.weight", key)]
    fcs = [key for key in sd if re.fullmatch(r"mlp\.model\.\d+\.fc\.weight", key)]
    if not style_convs or len(head) != 1 or not fcs:
        raise ValueError(f"{source}: no style encoder / MLP (not a MUNIT generator)")
    found.update(
        style_dim=int(sd[head[0]].shape[0]),
        style_downsampling=len(style_convs) - 1,
        mlp_dim=int(sd["mlp.model.0.fc.weight"].shape[0]),
        mlp_layers=len(fcs),
    )
    return found


def _generator_rules(domain: str, n_upsampling: int, n_style: int) -> list[Rule]:
    return [
        *encoder_rules("enc_content.", f"content_encoder_{domain}."),
        (
            r"enc_style\.model\.(\d+)\.conv\.(weight|bias)",
            lambda m: f"style_encoder_{domain}.layers.{m[1]}.conv.{m[2]}",
        ),
        (
            rf"enc_style\.model\.{n_style + 2}\.(weight|bias)",
            lambda m: f"style_encoder_{domain}.head.{m[1]}",
        ),
        (STATS, lambda m: None),
        (
            r"dec\.model\.0\.model\.(\d+)\.model\.([01])\.conv\.(weight|bias)",
            lambda m: f"decoder_{domain}.blocks.{m[1]}.conv{int(m[2]) + 1}.conv.{m[3]}",
        ),
        *upsampling_rules("dec.", f"decoder_{domain}.up.", n_upsampling),
        (
            r"mlp\.model\.(\d+)\.fc\.(weight|bias)",
            lambda m: f"decoder_{domain}.mlp.{2 * int(m[1])}.{m[2]}",
        ),
    ]


def load_munit(
    adapter: nn.Module,
    gen: PathLike,
    dis: PathLike | None = None,
    *,
    direction: Direction = "a2b",
) -> list[str]:
    """Load reference MUNIT weights into an existing MUNIT adapter of matching sizes.

    Args:
        adapter: a :class:`~satikit_munit.adapter.MUNITAdapter`.
        gen: ``gen_<iter>.pt``; dis: ``dis_<iter>.pt`` (optional).
        direction: ``"a2b"``: X = their domain a; ``"b2a"``: X = b.

    Returns:
        the parts loaded, e.g. ``["gen", "dis"]``.
    """
    return load_reference(adapter, gen, dis, direction=direction, load_generator=_load_generator)


def _load_generator(adapter: nn.Module, sd: dict[str, Tensor], ours: str, source: str) -> None:
    sizes = generator_options(sd, source)
    rules = _generator_rules(ours, sizes["n_downsampling"], sizes["style_downsampling"])
    modules = [f"content_encoder_{ours}.", f"style_encoder_{ours}.", f"decoder_{ours}."]
    load_modules(adapter, rename(sd, rules, source), modules, source)


def import_munit(
    gen: PathLike,
    dis: PathLike | None = None,
    *,
    direction: Direction = "a2b",
    domain_encoding: bool = False,
    **options: Any,
) -> nn.Module:
    """Build a MUNIT adapter sized like a reference ``gen_*.pt`` (and ``dis_*.pt``), load it.

    Sizes and channels are read from the files; ``options`` override the other hyperparameters
    (e.g. ``style_seed``). Returns the adapter in evaluation mode on the CPU: translate right away
    with ``simple`` / ``weighted`` tiling (one style per image) or fine-tune with SATI.
    """
    return import_reference(
        "munit",
        gen,
        dis,
        generator_options=generator_options,
        load=load_munit,
        direction=direction,
        domain_encoding=domain_encoding,
        options=options,
    )


def load_init(adapter: nn.Module, path: PathLike) -> list[str]:
    """``satikit train --init PATH`` for MUNIT: a reference ``gen_*.pt`` file, or a directory
    whose newest ``gen_*.pt`` (and matching ``dis_*.pt``) are loaded (direction ``a2b``)."""
    gen, dis = newest_pair(path)
    return load_munit(adapter, gen, dis)
