"""The UNIT, MUNIT and timm-backbone adapters: registration, options, architecture details."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from satikit.cli import cli
from satikit.gan.autoencoder import upsampling_path
from satikit.plugins import create_adapter, get_adapter_info

NEW = ("unit", "munit", "timm")


def _tiny(name: str, **overrides):
    torch.manual_seed(0)
    return create_adapter(name, **{**get_adapter_info(name).test_options, **overrides})


def test_plugin_modules_import_neither_torch_nor_timm() -> None:
    code = (
        "import sys, satikit_unit.plugin, satikit_munit.plugin, satikit_timm.plugin; "
        "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registered_with_their_dims_and_listed() -> None:
    assert get_adapter_info("unit").dims == (2, 3)
    assert get_adapter_info("munit").dims == (2, 3)
    assert get_adapter_info("timm").dims == (2,)
    result = CliRunner().invoke(cli, ["adapters", "--json"])
    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry["dims"] for entry in json.loads(result.output)}
    assert listed["unit"] == [2, 3] and listed["munit"] == [2, 3] and listed["timm"] == [2]


@pytest.mark.parametrize("name", NEW)
def test_every_option_has_help_and_test_options_are_declared(name: str) -> None:
    info = get_adapter_info(name)
    assert all(option.help for option in info.options.values())
    assert set(info.test_options) <= set(info.options)
    result = CliRunner().invoke(cli, ["adapters", "--options", name])
    assert result.exit_code == 0 and "lr" in result.output


def test_timm_backbone_is_a_cli_option_string() -> None:
    # satikit train ... -o backbone resnet18 passes strings; they are parsed like any option
    adapter = create_adapter(
        "timm", backbone="resnet18", depth="3", decoder_channels="4", ndf="4", n_layers="2"
    )
    assert adapter.options["backbone"] == "resnet18" and adapter.options["depth"] == 3
    assert type(adapter.generator_xy.net.encoder).__name__ == "FeatureListNet"
    out = adapter.translate(torch.rand(1, 3, 40, 56) - 1)  # any size: features are resized
    assert out.shape == (1, 3, 40, 56)


def test_timm_rejects_unknown_backbones_3d_and_explains() -> None:
    with pytest.raises(ValueError, match="unknown timm backbone 'resnet_nope'"):
        create_adapter("timm", backbone="resnet_nope")
    with pytest.raises(ValueError, match="supports dims \\[2\\]"):
        create_adapter("timm", dims=3)


def test_missing_timm_disables_only_that_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from satikit_timm import plugin

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "timm" else real(name, *a)
    )
    registered = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on every command of a plain install
        plugin.register_adapters(lambda name, *a, **k: registered.append(name))
    assert registered == ["timm"]
    with pytest.raises(ValueError, match="pip install 'satikit\\[timm\\]'"):
        plugin._build(dims=2, in_channels=3, out_channels=3)
    # and if timm breaks at build time, the error says how to fix it
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises((ImportError, ValueError), match="needs the timm package"):
        _tiny("timm")


def test_timm_local_checkpoint_initialises_the_encoder(tmp_path: Path) -> None:
    import timm

    torch.manual_seed(1)
    full = timm.create_model("test_resnet", pretrained=False)
    torch.save({"state_dict": full.state_dict()}, tmp_path / "backbone.pth")
    adapter = _tiny("timm", checkpoint=str(tmp_path / "backbone.pth"))
    encoder = adapter.generator_xy.net.encoder.state_dict()
    assert torch.equal(encoder["conv1.0.weight"], full.state_dict()["conv1.0.weight"])
    # the file only initialises: a run rebuilt from its saved options does not need it
    assert adapter.options["checkpoint"] == "" and adapter.backbone_checkpoint.endswith(".pth")
    torch.save(full, tmp_path / "pickled.pth")  # a whole pickled model: refused
    with pytest.raises(ValueError, match="never unpickles"):
        _tiny("timm", checkpoint=str(tmp_path / "pickled.pth"))


def test_timm_stem_adapts_to_other_channel_counts(tmp_path: Path) -> None:
    import timm
    from satikit_timm.networks import TimmUNet

    full = timm.create_model("test_resnet", pretrained=False)
    torch.save(full.state_dict(), tmp_path / "rgb.pth")
    net = TimmUNet(
        "test_resnet", 1, 1, decoder_channels=4, depth=3, checkpoint=str(tmp_path / "rgb.pth")
    )
    stem = net.encoder.state_dict()["conv1.0.weight"]
    torch.testing.assert_close(stem, full.state_dict()["conv1.0.weight"].sum(1, keepdim=True))


def test_timm_checkpoint_keys_of_flattened_feature_wrappers(tmp_path: Path) -> None:
    import timm
    from satikit_timm.networks import create_backbone, load_backbone_checkpoint

    full = timm.create_model("test_convnext", pretrained=False)  # "stem.0" -> wrapper "stem_0"
    torch.save(full.state_dict(), tmp_path / "convnext.pth")
    encoder = create_backbone("test_convnext", 3)
    assert load_backbone_checkpoint(encoder, tmp_path / "convnext.pth") > 0
    torch.testing.assert_close(
        encoder.state_dict()["stem_0.weight"], full.state_dict()["stem.0.weight"]
    )
    torch.save({"stem.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="shape|lacks"):
        load_backbone_checkpoint(encoder, tmp_path / "other.pth")


def test_unit_shares_high_level_layers_without_duplicate_weights() -> None:
    unit = _tiny("unit")
    xy, yx = unit.generator_xy, unit.generator_yx
    assert xy.shared_encoder is yx.shared_encoder and xy.shared_decoder is yx.shared_decoder
    keys = list(unit.state_dict())
    assert len(keys) == len(set(keys))
    assert any(key.startswith("shared_encoder.") for key in keys)
    assert not any(key.startswith("generator_") for key in keys)  # views are not state


def test_unit_samples_the_latent_in_training_only() -> None:
    unit = _tiny("unit")
    x = torch.rand(1, 3, 32, 32) - 1
    with torch.no_grad():
        assert not torch.equal(unit.generator_xy(x), unit.generator_xy(x))  # z = mu + N(0, I)
        assert torch.equal(unit.translate(x), unit.translate(x))  # inference: the mean
        unit.train(False)
        assert torch.equal(unit.generator_xy(x), unit.translate(x))


@pytest.mark.parametrize("name", ["unit", "munit"])
def test_sizes_must_divide_the_downsampling(name: str) -> None:
    adapter = _tiny(name)
    assert adapter.size_multiple == 4
    with pytest.raises(ValueError, match="divisible by 4"):
        adapter.translate(torch.rand(1, 3, 30, 32) - 1)


@pytest.mark.parametrize("name", ["unit", "munit"])
def test_3d_variants_build_and_step(name: str) -> None:
    adapter = create_adapter(name, dims=3, **get_adapter_info(name).test_options)
    x, y = torch.rand(1, 3, 16, 16, 16) - 1, torch.rand(1, 3, 16, 16, 16)
    loss, y_hat = adapter.generator_step(x, y)
    assert torch.isfinite(loss) and y_hat.shape == x.shape
    assert isinstance(adapter.discriminator_y(y), list)  # one score map per scale


@pytest.mark.parametrize("name", ["unit", "munit"])
@pytest.mark.parametrize("dims", [2, 3])
def test_patch_discriminator_option_gives_one_score_map_and_trains(name: str, dims: int) -> None:
    options = {**get_adapter_info(name).test_options, "discriminator": "patch"}
    adapter = create_adapter(name, dims=dims, **options)
    size = 32 if dims == 2 else 16
    x = torch.rand(1, 3, *(size,) * dims) * 2 - 1
    y = torch.rand(1, 3, *(size,) * dims) * 2 - 1
    loss, y_hat = adapter.generator_step(x, y)
    d_loss = adapter.discriminator_step(x, y, y_hat)
    assert torch.isfinite(loss) and torch.isfinite(d_loss)
    scores = adapter.discriminator_y(y)
    assert isinstance(scores, torch.Tensor) and scores.shape[:2] == (1, 1)  # one PatchGAN map
    with pytest.raises(ValueError, match="discriminator must be"):
        adapter.options["discriminator"] = "pyramid"
        adapter._discriminators(3)


@pytest.mark.parametrize("name", ["unit", "munit"])
@pytest.mark.parametrize("dims", [2, 3])
def test_transposed_upsampling_option_keeps_shapes_and_trains(name: str, dims: int) -> None:
    options = {**get_adapter_info(name).test_options, "upsampling": "transposed"}
    adapter = create_adapter(name, dims=dims, **options)
    kinds = (torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    assert any(isinstance(m, kinds) for m in adapter.decoder_y.modules())
    assert not any(isinstance(m, torch.nn.Upsample) for m in adapter.decoder_y.modules())
    size = 32 if dims == 2 else 16
    x = torch.rand(2, 3, *(size,) * dims) * 2 - 1
    loss, y_hat = adapter.generator_step(x, x.flip(0))
    assert y_hat.shape == x.shape and torch.isfinite(loss)
    with pytest.raises(ValueError, match="upsampling must be one of"):
        upsampling_path(dims, 8, 3, 1, "bilinear")


@pytest.mark.parametrize("dims", [2, 3])
def test_unit_up_norm_option_puts_instance_norm_in_the_decoders(dims: int) -> None:
    from satikit.gan.layers import LayerNorm

    def norms(adapter, kind) -> int:
        return sum(isinstance(m, kind) for m in adapter.decoder_y.up.modules())

    instance = (torch.nn.InstanceNorm2d, torch.nn.InstanceNorm3d)
    options = get_adapter_info("unit").test_options
    paper = create_adapter("unit", dims=dims, **options)
    assert norms(paper, LayerNorm) == 2 and norms(paper, instance) == 0  # two upsamplings
    adapter = create_adapter("unit", dims=dims, **{**options, "up_norm": "in"})
    assert norms(adapter, LayerNorm) == 0 and norms(adapter, instance) == 2
    size = 32 if dims == 2 else 16
    x = torch.rand(2, 3, *(size,) * dims) * 2 - 1
    loss, y_hat = adapter.generator_step(x, x.flip(0))
    assert y_hat.shape == x.shape and torch.isfinite(loss)
    with pytest.raises(ValueError, match="up_norm"):
        create_adapter("unit", dims=dims, **{**options, "up_norm": "bn"})


@pytest.mark.parametrize("name", ["unit", "munit"])
def test_identity_loss_option_maps_each_domain_through_the_other_generator(name: str) -> None:
    options = dict(get_adapter_info(name).test_options)
    if name == "unit":
        options["latent_noise"] = 0.0
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = torch.rand(2, 3, 32, 32) * 2 - 1
    plain = _tiny(name, dims=2, **options)
    plain.generator_step(x, y)
    assert not {"idt_x", "idt_y"} & set(plain.loss_terms)  # the paper's loss by default
    adapter = _tiny(name, dims=2, **options, lambda_idt=2.0)
    adapter.generator_step(x, y)
    xy, yx = adapter.generator_xy, adapter.generator_yx
    with torch.no_grad():
        if name == "unit":  # no latent noise: the training-mode path is deterministic
            through = xy.decode(xy.encode(y)), yx.decode(yx.encode(x))
        else:  # each image's own style
            through = (
                xy.decode(adapter.content_encoder_x(y), adapter.style_encoder_y(y)),
                yx.decode(adapter.content_encoder_y(x), adapter.style_encoder_x(x)),
            )
    for key, out, target in (("idt_y", through[0], y), ("idt_x", through[1], x)):
        expected = 2.0 * (out - target).abs().mean()
        assert torch.allclose(adapter.loss_terms[key], expected, atol=1e-6)
    with pytest.raises(ValueError, match="lambda_idt 0"):
        create_adapter(name, dims=2, in_channels=1, out_channels=3, **options, lambda_idt=1.0)


def test_unit_latent_noise_zero_makes_training_mode_deterministic() -> None:
    torch.manual_seed(0)
    unit = create_adapter(
        "unit", dims=2, **{**get_adapter_info("unit").test_options, "latent_noise": 0.0}
    )
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(unit.generator_xy(x), unit.generator_xy(x))  # z = mu
        assert torch.allclose(unit.generator_xy(x), unit.translate(x))


def test_timm_batchnorm_uses_running_statistics_at_inference_so_only_the_decoder_is_per_tile():
    """The timm encoders' BatchNorm layers normalise with their running statistics once the
    adapter is in evaluation mode (as every loaded run is): a tile's translation does not
    depend on the tiles beside it in a batch, and the statistics that ``--norm
    thumbnail|kernel|dense`` share are the decoder's instance norms only."""
    from satikit.stitching.norm import find_norm_layers

    torch.manual_seed(0)
    adapter = create_adapter("timm", dims=2, **get_adapter_info("timm").test_options)
    batchnorms = [m for m in adapter.generator_xy.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batchnorms  # the resnet encoder has them
    with torch.no_grad():  # give them running statistics that differ from any batch's
        for bn in batchnorms:
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    adapter.train(False)
    tiles = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        alone = adapter.generator_xy(tiles[:1])
        together = adapter.generator_xy(tiles)[:1]
        torch.testing.assert_close(alone, together)
        adapter.train(True)  # in training the batch's statistics are used: they differ
        assert not torch.allclose(adapter.generator_xy(tiles)[:1], alone, atol=1e-4)
    layers = find_norm_layers(adapter)
    assert layers and all(
        isinstance(m, torch.nn.modules.instancenorm._InstanceNorm) for m in layers
    )
    decoder = {id(m) for part in adapter.generator_xy.net.decoder_modules() for m in part.modules()}
    assert all(id(m) in decoder for m in layers)  # none in the timm encoder
