"""Load CycleGAN weights trained with the widely used pytorch-CycleGAN-and-pix2pix code.

That code saves one plain state dict per network: ``<epoch>_net_G_A.pth`` (A -> B),
``<epoch>_net_G_B.pth`` (B -> A), ``<epoch>_net_D_A.pth`` (scores B images: it judges G_A's
fakes) and ``<epoch>_net_D_B.pth``; a single-direction test model saves ``<epoch>_net_G.pth``.
Their ResNet generator (``--netG resnet_9blocks`` / ``resnet_6blocks``, ``--norm instance``,
reflection padding) and PatchGAN discriminator (``--netD basic`` / ``n_layers``) have exactly the
layer order of :mod:`satikit.gan.resnet` and :mod:`satikit.gan.discriminators`, so the conversion
only renames residual-block keys (``conv_block.<i>`` -> ``body.<i>``; with ``--use_dropout`` the
second conv moves from index 6 to 5) and drops running statistics of instance norms saved by
old versions.

Files are read with ``torch.load(..., weights_only=True)``: never arbitrary unpickling; a file
that is not a plain (nested) dict of tensors gives a ValueError.

Those models map both domains to [-1, 1], so imported adapters are built with
``domain_encoding=False`` (see :func:`import_cyclegan`); fine-tuning with SATI from them works
with or without domain encoding (``satikit train --init PATH``), the generator adapts.

To translate with SATI right away, write the imported adapter as a run
(:func:`satikit.checkpoint.save_as_run`) and fine-tune it (``satikit train --init RUN``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from torch import Tensor, nn

from satikit.gan.importing import PathLike, load_into, load_state_dict_file

__all__ = [
    "convert_discriminator",
    "convert_generator",
    "cyclegan_files",
    "discriminator_options",
    "generator_options",
    "import_cyclegan",
    "load_cyclegan",
    "load_init",
]

Direction = Literal["AtoB", "BtoA"]


# -- CycleGAN layout ----------------------------------------------------------------------
_TOP = re.compile(r"model\.(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)")
_BLOCK = re.compile(
    r"model\.(\d+)\.conv_block\.(\d+)\.(weight|bias|running_mean|running_var|"
    r"num_batches_tracked)"
)
_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _layers(
    sd: Mapping[str, Tensor], source: str
) -> tuple[dict[int, dict[str, Tensor]], dict[int, dict[int, dict[str, Tensor]]]]:
    if any(key.startswith("model.model.") for key in sd):
        raise ValueError(
            f"{source}: a U-Net generator (--netG unet_*); only the ResNet "
            "generators (resnet_9blocks / resnet_6blocks) are supported"
        )
    top: dict[int, dict[str, Tensor]] = {}
    blocks: dict[int, dict[int, dict[str, Tensor]]] = {}
    for key, value in sd.items():
        if match := _TOP.fullmatch(key):
            top.setdefault(int(match[1]), {})[match[2]] = value
        elif match := _BLOCK.fullmatch(key):
            blocks.setdefault(int(match[1]), {}).setdefault(int(match[2]), {})[match[3]] = value
        else:
            raise ValueError(
                f"{source}: unexpected key {key!r}; not a pytorch-CycleGAN-and-"
                "pix2pix ResNet generator / PatchGAN discriminator state dict"
            )
    for layer in [*top.values(), *(lay for block in blocks.values() for lay in block.values())]:
        if "weight" in layer and layer["weight"].ndim == 1:
            raise ValueError(
                f"{source}: normalisation layers with parameters (--norm batch); "
                "satikit's networks use instance norm without affine parameters "
                "(--norm instance)"
            )
    return top, blocks


def _convs(layers: Mapping[int, Mapping[str, Tensor]]) -> list[int]:
    return sorted(index for index, layer in layers.items() if "weight" in layer)


def generator_options(sd: Mapping[str, Tensor], source: str = "generator") -> dict[str, int]:
    """Infer ``ngf``, ``n_blocks``, ``n_downsampling`` and the in / out channels of a
    pytorch-CycleGAN-and-pix2pix ResNet generator state dict."""
    top, blocks = _layers(sd, source)
    convs = _convs(top)
    if not convs or not blocks:
        raise ValueError(f"{source}: no ResNet generator layers found")
    first_block = min(blocks)
    stem = top[convs[0]]["weight"]
    return {
        "ngf": int(stem.shape[0]),
        "n_blocks": len(blocks),
        "n_downsampling": sum(1 for i in convs if i < first_block) - 1,
        "in_channels": int(stem.shape[1]),
        "out_channels": int(top[convs[-1]]["weight"].shape[0]),
    }


def convert_generator(sd: Mapping[str, Tensor], source: str = "generator") -> dict[str, Tensor]:
    """pytorch-CycleGAN-and-pix2pix ResNet generator keys ->
    :class:`~satikit.gan.resnet.ResnetGenerator` keys.

    Raises:
        ValueError: U-Net or batch-norm generators, zero-padded residual blocks, unknown keys.
    """
    top, blocks = _layers(sd, source)
    out: dict[str, Tensor] = {}
    for index, layer in top.items():
        out.update({f"model.{index}.{kind}": v for kind, v in layer.items() if kind not in _STATS})
    for index, block in blocks.items():
        convs = _convs(block)
        if convs not in ([1, 5], [1, 6]):
            raise ValueError(
                f"{source}: residual block {index} has convs at {convs}; only "
                "reflection-padded blocks (--padding_type reflect) are supported"
            )
        for position, new in zip(convs, (1, 5)):
            out.update(
                {
                    f"model.{index}.body.{new}.{kind}": v
                    for kind, v in block[position].items()
                    if kind not in _STATS
                }
            )
    return out


def discriminator_options(
    sd: Mapping[str, Tensor], source: str = "discriminator"
) -> dict[str, int]:
    """Infer ``ndf``, ``n_layers`` and the input channels of a PatchGAN state dict."""
    top, blocks = _layers(sd, source)
    convs = _convs(top)
    if blocks or len(convs) < 3:
        raise ValueError(f"{source}: not a PatchGAN (--netD basic / n_layers) state dict")
    first = top[convs[0]]["weight"]
    return {
        "ndf": int(first.shape[0]),
        "n_layers": len(convs) - 2,
        "in_channels": int(first.shape[1]),
    }


def convert_discriminator(
    sd: Mapping[str, Tensor], source: str = "discriminator"
) -> dict[str, Tensor]:
    """PatchGAN keys -> :class:`~satikit.gan.discriminators.PatchDiscriminator` keys (the
    same, minus norm statistics)."""
    discriminator_options(sd, source)
    return {key: value for key, value in sd.items() if not key.endswith(_STATS)}


def cyclegan_files(path: PathLike, epoch: str = "latest") -> dict[str, Path]:
    """The networks saved in a pytorch-CycleGAN-and-pix2pix checkpoint directory.

    Args:
        path: the directory (``checkpoints/<name>``), or one ``*_net_G*.pth`` file.
        epoch: file prefix, ``"latest"`` or an epoch number.

    Returns:
        role (``G_A``, ``G_B``, ``D_A``, ``D_B`` or ``G``) -> file, for the files that exist.

    Raises:
        FileNotFoundError: no generator file.
    """
    path = Path(path)
    if path.is_file():
        match = re.search(r"net_(G_A|G_B|D_A|D_B|G)\.pth$", path.name)
        return {match[1] if match else "G": path}
    files = {role: path / f"{epoch}_net_{role}.pth" for role in ("G_A", "G_B", "D_A", "D_B", "G")}
    found = {role: file for role, file in files.items() if file.is_file()}
    if not any(role.startswith("G") for role in found):
        raise FileNotFoundError(f"no {epoch}_net_G_A.pth / {epoch}_net_G.pth in {str(path)!r}")
    return found


def _roles(direction: Direction) -> dict[str, str]:
    if direction not in ("AtoB", "BtoA"):
        raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
    if direction == "AtoB":  # X = A, Y = B; D_A judges B images (G_A's fakes)
        return {
            "G_A": "generator_xy.net.",
            "G": "generator_xy.net.",
            "G_B": "generator_yx.net.",
            "D_A": "discriminator_y.",
            "D_B": "discriminator_x.",
        }
    return {
        "G_B": "generator_xy.net.",
        "G": "generator_xy.net.",
        "G_A": "generator_yx.net.",
        "D_B": "discriminator_y.",
        "D_A": "discriminator_x.",
    }


def load_cyclegan(
    adapter: nn.Module, path: PathLike, *, epoch: str = "latest", direction: Direction = "AtoB"
) -> list[str]:
    """Load pytorch-CycleGAN-and-pix2pix weights into an existing CycleGAN adapter.

    Args:
        adapter: a :class:`~satikit_cyclegan.adapter.CycleGANAdapter` with matching sizes.
        path: checkpoint directory or single generator file (see :func:`cyclegan_files`).
        epoch: file prefix in a directory.
        direction: ``"AtoB"``: X = their A (``G_A`` becomes ``generator_xy``); ``"BtoA"``: the
            reverse.

    Returns:
        the roles loaded, e.g. ``["G_A", "G_B", "D_A", "D_B"]``; the others keep their weights.
    """
    roles = _roles(direction)
    loaded = []
    for role, file in cyclegan_files(path, epoch).items():
        sd = load_state_dict_file(file)
        source = str(file)
        convert = convert_generator if role.startswith("G") else convert_discriminator
        load_into(adapter, roles[role], convert(sd, source), source)
        loaded.append(role)
    return loaded


def import_cyclegan(
    path: PathLike,
    *,
    epoch: str = "latest",
    direction: Direction = "AtoB",
    domain_encoding: bool = False,
    **options: Any,
) -> nn.Module:
    """Build a CycleGAN adapter sized like a pytorch-CycleGAN-and-pix2pix checkpoint and load it.

    ``ngf``, ``n_blocks``, ``n_downsampling``, ``ndf``, ``n_layers`` and the channels are read
    from the files; ``options`` override the remaining hyperparameters (e.g. ``lambda_idt=0``
    when the channel counts differ, which is set automatically). The result translates right
    away with ``simple`` / ``weighted`` tiling, and fine-tunes with SATI
    (:func:`satikit.checkpoint.save_as_run`,
    then ``satikit train --init RUN``).

    Args:
        path: checkpoint directory or a single ``*_net_G*.pth`` file.
        epoch: file prefix in a directory.
        direction: see :func:`load_cyclegan`.
        domain_encoding: keep False for models trained on [-1, 1] in both domains (theirs).

    Returns:
        the adapter, in evaluation mode, on the CPU.
    """
    from satikit.plugins import create_adapter

    files = cyclegan_files(path, epoch)
    wanted = ("G_A", "G") if direction == "AtoB" else ("G_B", "G")
    xy_role = next((role for role in wanted if role in files), None)
    if xy_role is None:
        raise FileNotFoundError(
            f"no generator for direction {direction} ({' / '.join(wanted)}) in {str(path)!r}"
        )
    g = generator_options(load_state_dict_file(files[xy_role]), str(files[xy_role]))
    in_ch, out_ch = g.pop("in_channels"), g.pop("out_channels")
    sizes: dict[str, Any] = dict(g)
    d_role = next((role for role in ("D_A", "D_B") if role in files), None)
    if d_role is not None:
        d = discriminator_options(load_state_dict_file(files[d_role]), str(files[d_role]))
        sizes.update(ndf=d["ndf"], n_layers=d["n_layers"])
    if in_ch != out_ch:
        sizes["lambda_idt"] = 0.0
    adapter = create_adapter(
        "cyclegan",
        dims=2,
        in_channels=in_ch,
        out_channels=out_ch,
        domain_encoding=domain_encoding,
        **{**sizes, **options},
    )
    load_cyclegan(adapter, path, epoch=epoch, direction=direction)
    adapter.train(False)
    return adapter


def load_init(adapter: nn.Module, path: PathLike) -> list[str]:
    """``satikit train --init PATH`` for CycleGAN: a pytorch-CycleGAN-and-pix2pix directory
    or ``.pth`` file (``latest``, ``AtoB``). Returns the roles loaded."""
    return load_cyclegan(adapter, path)
