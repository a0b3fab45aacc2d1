"""Importing checkpoints written by other codebases (pytorch-CycleGAN-and-pix2pix, the
MUNIT / UNIT reference code) without unpickling arbitrary objects.

The "foreign" models here are test-local modules that mirror those codebases' state-dict key
layouts (module names, layer order, norm buffers); written for these tests from the layouts,
they compute the same functions as our networks, so an imported adapter must reproduce them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from satikit_cyclegan.importer import import_cyclegan, load_cyclegan, load_init
from satikit_munit.importer import import_munit
from satikit_munit.importer import load_init as munit_init
from satikit_unit.importer import import_unit
from satikit_unit.importer import load_init as unit_init
from torch import nn

from satikit.checkpoint import AdapterSpec, RunConfig, TrainingSettings, load_adapter, save_as_run
from satikit.gan.importing import load_state_dict_file
from satikit.gan.reference import newest_pair
from satikit.plugins import create_adapter, get_adapter_info
from satikit.stitching import stitch
from satikit.training import SATITrainer


def _randomize(module: nn.Module, seed: int) -> nn.Module:
    """Non-trivial weights everywhere (so a swapped or missing tensor shows)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    return module


# -- pytorch-CycleGAN-and-pix2pix layout ------------------------------------------------------
class _TheirBlock(nn.Module):
    def __init__(self, dim: int, dropout: bool) -> None:
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU()]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class TheirResnetGenerator(nn.Module):
    def __init__(self, cin: int, cout: int, ngf: int = 4, n_blocks: int = 2, dropout=False):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU()]
        for i in range(2):
            c = ngf * 2**i
            layers += [
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
                nn.InstanceNorm2d(2 * c),
                nn.ReLU(),
            ]
        layers += [_TheirBlock(ngf * 4, dropout) for _ in range(n_blocks)]
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1),
                nn.InstanceNorm2d(c // 2),
                nn.ReLU(),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class TheirPatchGAN(nn.Module):
    def __init__(self, cin: int, ndf: int = 4, n_layers: int = 2):
        super().__init__()
        layers = [nn.Conv2d(cin, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        prev = ndf
        for n in range(1, n_layers + 1):
            nf = ndf * min(2**n, 8)
            layers += [
                nn.Conv2d(prev, nf, 4, 2 if n < n_layers else 1, 1),
                nn.InstanceNorm2d(nf),
                nn.LeakyReLU(0.2),
            ]
            prev = nf
        layers.append(nn.Conv2d(prev, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


@pytest.fixture
def cyclegan_dir(tmp_path: Path) -> tuple[Path, dict[str, nn.Module]]:
    nets = {
        "G_A": _randomize(TheirResnetGenerator(3, 3), 1),
        "G_B": _randomize(TheirResnetGenerator(3, 3), 2),
        "D_A": _randomize(TheirPatchGAN(3), 3),
        "D_B": _randomize(TheirPatchGAN(3), 4),
    }
    for role, net in nets.items():
        torch.save(net.state_dict(), tmp_path / f"latest_net_{role}.pth")
    return tmp_path, nets


def _x(shape=(2, 3, 32, 32), seed=0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_cyclegan_import_reproduces_their_networks(cyclegan_dir) -> None:
    directory, nets = cyclegan_dir
    adapter = import_cyclegan(directory)
    assert adapter.options["ngf"] == 4 and adapter.options["n_blocks"] == 2
    assert adapter.options["ndf"] == 4 and adapter.options["n_layers"] == 2
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(adapter.translate(x), nets["G_A"](x))
        torch.testing.assert_close(adapter.generator_yx(x), nets["G_B"](x))
        torch.testing.assert_close(adapter.discriminator_y(x), nets["D_A"](x))
        torch.testing.assert_close(adapter.discriminator_x(x), nets["D_B"](x))


def test_cyclegan_import_direction_b_to_a(cyclegan_dir) -> None:
    directory, nets = cyclegan_dir
    adapter = import_cyclegan(directory, direction="BtoA")
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(adapter.translate(x), nets["G_B"](x))
        torch.testing.assert_close(adapter.discriminator_y(x), nets["D_B"](x))


def test_cyclegan_import_dropout_generator_and_channels(tmp_path: Path) -> None:
    net = _randomize(TheirResnetGenerator(1, 3, dropout=True), 5).eval()
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    adapter = import_cyclegan(tmp_path / "latest_net_G.pth")
    assert (adapter.in_channels, adapter.out_channels) == (1, 3)
    assert adapter.options["lambda_idt"] == 0  # identity loss needs equal channels
    x = _x((1, 1, 32, 32))
    with torch.no_grad():
        torch.testing.assert_close(adapter.translate(x), net(x))


def test_cyclegan_imported_model_tiles_right_away(cyclegan_dir) -> None:
    directory, nets = cyclegan_dir
    adapter = import_cyclegan(directory)
    image = _x((1, 3, 80, 72), seed=3)[0].numpy()
    for strategy in ("simple", "weighted"):
        out = stitch(image, adapter.translate, tile=32, overlap=8, strategy=strategy)
        assert out.shape == image.shape and np.isfinite(out).all()
    with torch.no_grad():
        first = nets["G_A"](torch.from_numpy(image[None, :, :32, :32]))[0].numpy()
    simple = stitch(image, adapter.translate, tile=32, overlap=8, strategy="simple")
    np.testing.assert_allclose(simple[:, :28, :28], first[:, :28, :28], atol=1e-5)


@pytest.mark.parametrize("bad", ["batchnorm", "unet", "unknown"])
def test_cyclegan_import_rejects_other_architectures(tmp_path: Path, bad: str) -> None:
    if bad == "batchnorm":
        state = {
            "model.1.weight": torch.zeros(4, 3, 7, 7),
            "model.2.weight": torch.ones(4),
            "model.10.conv_block.1.weight": torch.zeros(16, 16, 3, 3),
        }
    elif bad == "unet":
        state = {"model.model.0.weight": torch.zeros(4, 3, 4, 4)}
    else:
        state = {"encoder.weight": torch.zeros(1)}
    torch.save(state, tmp_path / "latest_net_G_A.pth")
    with pytest.raises(ValueError, match="norm batch|U-Net|unexpected key"):
        import_cyclegan(tmp_path)


def test_pickled_objects_are_refused_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "latest_net_G_A.pth"
    torch.save(TheirResnetGenerator(3, 3), path)  # a whole pickled module, not a state dict
    with pytest.raises(ValueError, match="not a plain state dict"):
        load_state_dict_file(path)
    with pytest.raises(ValueError, match="weights_only"):
        import_cyclegan(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_state_dict_file(tmp_path / "missing.pth")


def test_cyclegan_size_mismatch_names_the_tensor(cyclegan_dir) -> None:
    directory, _ = cyclegan_dir
    adapter = create_adapter("cyclegan", ngf=8, n_blocks=2, ndf=4, n_layers=2)
    with pytest.raises(ValueError, match="shape"):
        load_cyclegan(adapter, directory)


def test_imported_run_translates_from_the_cli_path_and_fine_tunes_with_sati(
    cyclegan_dir, tmp_path: Path
) -> None:
    from satikit.io.images import write_image
    from satikit.translation.translate import translate_path

    directory, _ = cyclegan_dir
    adapter = import_cyclegan(directory)
    run = save_as_run(adapter, tmp_path / "run", in_channels=3, out_channels=3, crop=32)
    reloaded, config = load_adapter(run)
    assert config.run_inference.strategy == "weighted"
    assert config.encoding is False
    image = (np.random.default_rng(0).random((70, 60, 3)) * 255).astype(np.uint8)
    write_image(tmp_path / "in.tif", image)
    written = translate_path(
        run, tmp_path / "in.tif", tmp_path / "out.tif", device="cpu", strategy="simple"
    )
    assert written and written[0].is_file()

    # satikit train --init: load into a freshly built (domain-encoded) adapter, then SATI steps
    info = get_adapter_info("cyclegan")
    fresh = create_adapter(
        "cyclegan", **{**info.test_options, "ngf": 4, "n_blocks": 2, "ndf": 4, "n_layers": 2}
    )
    assert load_init(fresh, directory) == ["G_A", "G_B", "D_A", "D_B"]
    config = RunConfig(training=TrainingSettings(crop=32, steps=2, amp=False))
    trainer = SATITrainer(fresh, config, device="cpu")
    terms = trainer.train_step(_x(seed=1) * 0.5 - 0.5, _x(seed=2) * 0.5 + 0.5)
    assert torch.isfinite(terms["g_total"]) and torch.isfinite(terms["stitch"])


# -- MUNIT / UNIT reference-code layout --------------------------------------------------------
class _TheirLayerNorm(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        x = F.layer_norm(x, x.shape[1:])
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class _TheirAdaIN(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.num_features = channels
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.weight = self.bias = None

    def forward(self, x):
        return F.instance_norm(x) * self.weight[:, :, None, None] + self.bias[:, :, None, None]


class _TheirConvBlock(nn.Module):
    def __init__(self, cin, cout, k, s, p, norm="none", act="relu"):
        super().__init__()
        self.pad = nn.ReflectionPad2d(p)
        self.norm = {
            "in": lambda: nn.InstanceNorm2d(cout, track_running_stats=True),
            "ln": lambda: _TheirLayerNorm(cout),
            "adain": lambda: _TheirAdaIN(cout),
            "none": lambda: None,
        }[norm]()
        self.activation = {
            "relu": nn.ReLU(),
            "lrelu": nn.LeakyReLU(0.2),
            "tanh": nn.Tanh(),
            "none": None,
        }[act]
        self.conv = nn.Conv2d(cin, cout, k, s)

    def forward(self, x):
        x = self.conv(self.pad(x))
        x = self.norm(x) if self.norm is not None else x
        return self.activation(x) if self.activation is not None else x


class _TheirResBlocks(nn.Module):
    def __init__(self, n, dim, norm):
        super().__init__()

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.model = nn.Sequential(
                    _TheirConvBlock(dim, dim, 3, 1, 1, norm),
                    _TheirConvBlock(dim, dim, 3, 1, 1, norm, "none"),
                )

            def forward(self, x):
                return x + self.model(x)

        self.model = nn.Sequential(*[Block() for _ in range(n)])

    def forward(self, x):
        return self.model(x)


class _TheirContentEncoder(nn.Module):
    def __init__(self, n_down, n_res, cin, dim):
        super().__init__()
        layers = [_TheirConvBlock(cin, dim, 7, 1, 3, "in")]
        for _ in range(n_down):
            layers.append(_TheirConvBlock(dim, 2 * dim, 4, 2, 1, "in"))
            dim *= 2
        layers.append(_TheirResBlocks(n_res, dim, "in"))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x):
        return self.model(x)


class _TheirDecoder(nn.Module):
    def __init__(self, n_up, n_res, dim, cout, res_norm):
        super().__init__()
        layers = [_TheirResBlocks(n_res, dim, res_norm)]
        for _ in range(n_up):
            layers += [nn.Upsample(scale_factor=2), _TheirConvBlock(dim, dim // 2, 5, 1, 2, "ln")]
            dim //= 2
        layers.append(_TheirConvBlock(dim, cout, 7, 1, 3, "none", "tanh"))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class TheirVAEGen(nn.Module):  # UNIT
    def __init__(self, cin, dim=4, n_down=2, n_res=2):
        super().__init__()
        self.enc = _TheirContentEncoder(n_down, n_res, cin, dim)
        self.dec = _TheirDecoder(n_down, n_res, self.enc.output_dim, cin, "in")


class TheirAdaINGen(nn.Module):  # MUNIT
    def __init__(self, cin, dim=4, n_down=2, n_res=2, style_dim=3, mlp_dim=8, n_style_down=3):
        super().__init__()
        style = [_TheirConvBlock(cin, dim, 7, 1, 3)]
        d = dim
        for i in range(n_style_down):
            style.append(_TheirConvBlock(d, 2 * d if i < 2 else d, 4, 2, 1))
            d = 2 * d if i < 2 else d
        style += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(d, style_dim, 1)]
        self.enc_style = nn.Sequential()
        self.enc_style.model = nn.Sequential(*style)
        self.enc_content = _TheirContentEncoder(n_down, n_res, cin, dim)
        self.dec = _TheirDecoder(n_down, n_res, self.enc_content.output_dim, cin, "adain")
        n_adain = sum(2 * m.num_features for m in self.dec.modules() if isinstance(m, _TheirAdaIN))

        class Linear(nn.Module):
            def __init__(self, i, o, act):
                super().__init__()
                self.fc, self.act = nn.Linear(i, o), act

            def forward(self, x):
                return F.relu(self.fc(x)) if self.act else self.fc(x)

        self.mlp = nn.Sequential()
        self.mlp.model = nn.Sequential(
            Linear(style_dim, mlp_dim, True),
            Linear(mlp_dim, mlp_dim, True),
            Linear(mlp_dim, n_adain, False),
        )

    def style(self, x):
        return self.enc_style.model(x).flatten(1)

    def decode(self, content, style):
        params = self.mlp.model(style)
        for m in self.dec.modules():
            if isinstance(m, _TheirAdaIN):
                c = m.num_features
                m.bias, m.weight = params[:, :c], params[:, c : 2 * c]
                params = params[:, 2 * c :]
        return self.dec(content)


class TheirMsImageDis(nn.Module):
    def __init__(self, cin, dim=4, n_layer=2, num_scales=2):
        super().__init__()

        def net():
            layers, d = [_TheirConvBlock(cin, dim, 4, 2, 1, "none", "lrelu")], dim
            for _ in range(n_layer - 1):
                layers.append(_TheirConvBlock(d, 2 * d, 4, 2, 1, "none", "lrelu"))
                d *= 2
            return nn.Sequential(*layers, nn.Conv2d(d, 1, 1, 1, 0))

        self.cnns = nn.ModuleList([net() for _ in range(num_scales)])
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)

    def forward(self, x):
        outputs = []
        for model in self.cnns:
            outputs.append(model(x))
            x = self.downsample(x)
        return outputs


def _save_pair(tmp_path: Path, gens: dict, dis: dict, iteration: int = 100) -> tuple[Path, Path]:
    gen_path, dis_path = tmp_path / f"gen_{iteration:08d}.pt", tmp_path / f"dis_{iteration:08d}.pt"
    torch.save({k: v.state_dict() for k, v in gens.items()}, gen_path)
    torch.save({k: v.state_dict() for k, v in dis.items()}, dis_path)
    return gen_path, dis_path


def test_unit_import_reproduces_reference_layout(tmp_path: Path) -> None:
    gens = {"a": _randomize(TheirVAEGen(3), 1), "b": _randomize(TheirVAEGen(3), 2)}
    dis = {"a": _randomize(TheirMsImageDis(3), 3), "b": _randomize(TheirMsImageDis(3), 4)}
    gen_path, dis_path = _save_pair(tmp_path, gens, dis)
    adapter = import_unit(gen_path, dis_path)
    assert adapter.options["n_shared"] == 0 and adapter.options["n_res"] == 2
    assert adapter.options["n_scales"] == 2 and adapter.options["d_layers"] == 2
    x = _x()
    with torch.no_grad():  # their modules in train mode: instance statistics, as satikit uses
        expected = gens["b"].dec(gens["a"].enc(x))
        torch.testing.assert_close(adapter.translate(x), expected)
        for ours, theirs in zip(adapter.discriminator_y(x), dis["b"](x)):
            torch.testing.assert_close(ours, theirs)
    with pytest.raises(ValueError, match="n_shared 0"):
        unit_init(create_adapter("unit", **get_adapter_info("unit").test_options), gen_path)


def test_munit_import_reproduces_reference_layout(tmp_path: Path) -> None:
    gens = {"a": _randomize(TheirAdaINGen(3), 1), "b": _randomize(TheirAdaINGen(3), 2)}
    dis = {"a": _randomize(TheirMsImageDis(3), 3), "b": _randomize(TheirMsImageDis(3), 4)}
    gen_path, dis_path = _save_pair(tmp_path, gens, dis)
    adapter = import_munit(gen_path, dis_path)
    o = adapter.options
    assert (o["style_dim"], o["style_downsampling"], o["mlp_dim"], o["n_res"]) == (3, 3, 8, 2)
    x, y = _x(), _x(seed=1)
    style = torch.randn(1, 3, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = gens["b"].decode(gens["a"].enc_content(x), style.expand(2, -1))
        torch.testing.assert_close(adapter.translate(x, style=style), expected)
        torch.testing.assert_close(adapter.style_encoder_y(y), gens["b"].style(y))
        torch.testing.assert_close(adapter.discriminator_x(x)[1], dis["a"](x)[1])
    # b2a swaps the domains
    swapped = import_munit(gen_path, direction="b2a")
    with torch.no_grad():
        expected = gens["a"].decode(gens["b"].enc_content(x), style.expand(2, -1))
        torch.testing.assert_close(swapped.translate(x, style=style), expected)


def test_reference_init_into_built_adapters_then_sati_step(tmp_path: Path) -> None:
    gens = {"a": _randomize(TheirAdaINGen(3), 1), "b": _randomize(TheirAdaINGen(3), 2)}
    dis = {"a": _randomize(TheirMsImageDis(3), 3), "b": _randomize(TheirMsImageDis(3), 4)}
    _save_pair(tmp_path, gens, dis, iteration=50)
    gen_path, dis_path = _save_pair(tmp_path, gens, dis, iteration=100)
    assert newest_pair(tmp_path) == (gen_path, dis_path)
    sizes = dict(
        dim=4, n_res=2, style_dim=3, style_downsampling=3, mlp_dim=8, ndf=4, d_layers=2, n_scales=2
    )
    adapter = create_adapter("munit", **sizes)  # domain encoding on: fine-tuning adapts to it
    assert munit_init(adapter, tmp_path) == ["gen", "dis"]
    config = RunConfig(
        adapter=AdapterSpec("munit"), training=TrainingSettings(crop=32, steps=2, amp=False)
    )
    trainer = SATITrainer(adapter, config, device="cpu")
    terms = trainer.train_step(_x(seed=1) * 0.5 - 0.5, _x(seed=2) * 0.5 + 0.5)
    assert torch.isfinite(terms["g_total"]) and torch.isfinite(terms["stitch"])


def test_reference_files_need_both_domains(tmp_path: Path) -> None:
    torch.save({"a": TheirVAEGen(3).state_dict()}, tmp_path / "gen_00000001.pt")
    with pytest.raises(ValueError, match="'a': state_dict, 'b'"):
        import_unit(tmp_path / "gen_00000001.pt")


def test_train_cli_init_from_reference_checkpoint_and_from_a_run(
    cyclegan_dir, tmp_path: Path, tiny_xy
) -> None:
    from click.testing import CliRunner

    from satikit.checkpoint import load_weights
    from satikit.cli import cli

    directory, nets = cyclegan_dir
    tiny = "-o ngf 4 -o n_blocks 2 -o ndf 4 -o n_layers 2".split()
    base = tiny_xy("--threads", "1", "--no-domain-encoding", *tiny)
    runner = CliRunner()
    first = runner.invoke(cli, [*base, "--out", str(tmp_path / "a"), "--init", str(directory)])
    assert first.exit_code == 0, first.output
    assert "initialised from" in first.output and "G_A" in first.output
    trained = load_weights(tmp_path / "a" / "model.safetensors")
    assert len(trained) > len(nets["G_A"].state_dict())  # all four networks were saved
    second = runner.invoke(
        cli, [*base, "--out", str(tmp_path / "b"), "--init", str(tmp_path / "a")]
    )
    assert second.exit_code == 0, second.output
    assert "all weights" in second.output
    bad = runner.invoke(
        cli, [*base, "--out", str(tmp_path / "c"), "--init", str(tmp_path / "x" / "0.tif")]
    )
    assert bad.exit_code != 0 and "Traceback" not in bad.output, bad.output
    assert "0.tif" in bad.output
