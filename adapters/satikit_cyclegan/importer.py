"""Load CycleGAN weights trained with the widely used pytorch-CycleGAN-and-pix2pix code.

That code saves one plain state dict per network: ``<epoch>_net_G_A.pth`` (A -> B),
``<epoch>_net_G_B.pth`` (B -> A), ``<epoch>_net_D_A.pth`` (scores B images: it judges G_A's
fakes) and ``<epoch>_net_D_B.pth``; a single-direction test model saves ``<epoch>_net_G.pth``.
Their ResNet generator (``--netG resnet_9blocks`` / ``resnet_6blocks``, ``--norm instance``,
reflection padding) and PatchGAN discriminator (``--netD basic`` / ``n_layers``) have exactly the
layer order of :mod:`satikit_cyclegan.networks`, so the conversion only renames residual-block
keys (``conv_block.<i>`` -> ``body.<i>``; with ``--use_dropout`` the second conv moves from index 6
to 5) and drops running statistics of instance norms saved by old versions.

Files are read with ``torch.load(..., weights_only=True)``: never arbitrary unpickling; a file
that is not a plain (nested) dict of tensors gives a ValueError.

Those models map both domains to [-1, 1], so imported adapters are built with
``domain_encoding=False`` (see :func:`import_cyclegan`); fine-tuning with SATI from them works
with or without domain encoding (``satikit train --init PATH``), the generator adapts.

Also home of the helpers the UNIT / MUNIT importers share: :func:`load_state_dict_file`,
:func:`load_into` and :func:`save_as_run`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

__all__ = [
    "convert_discriminator",
    "convert_generator",
    "cyclegan_files",
    "discriminator_options",
    "generator_options",
    "import_cyclegan",
    "load_cyclegan",
    "load_init",
    "load_into",
    "load_state_dict_file",
    "save_as_run",
]

Direction = Literal["AtoB", "BtoA"]
PathLike = str | os.PathLike[str]


# -- shared helpers -----------------------------------------------------------------------
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
    """Copy ``weights`` (keys relative to ``prefix``) into ``module``'s state.

    Raises:
        ValueError: a key the module does not have or a shape mismatch, naming ``source`` and
            the key (typically: the adapter was built with other sizes than the checkpoint).
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


def save_as_run(
    adapter: Any,
    run_dir: PathLike,
    *,
    in_channels: int,
    out_channels: int,
    crop: int | None = None,
) -> Path:
    """Write ``adapter`` as a satikit run directory (config + safetensors weights, no resume
    state), so ``satikit translate RUN IN OUT`` works right away (default strategy ``weighted``,
    as for every run trained without SATI).

    Args:
        adapter: a built adapter whose ``name`` is registered.
        run_dir: directory to create or overwrite.
        in_channels / out_channels: channels of X / Y images.
        crop: training crop the inference tile defaults derive from (None: satikit's default).
    """
    from satikit.checkpoint import save_checkpoint
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
    """pytorch-CycleGAN-and-pix2pix ResNet generator keys -> :class:`ResnetGenerator` keys.

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
    """PatchGAN keys -> :class:`PatchDiscriminator` keys (the same, minus norm statistics)."""
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
    away with ``simple`` / ``weighted`` tiling, and fine-tunes with SATI (:func:`save_as_run`,
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
