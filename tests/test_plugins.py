"""Plugin manager, adapter registry, hookspecs and the ``satikit adapters`` command."""

from __future__ import annotations

import inspect
import json
import sys
import textwrap
import warnings

import numpy as np
import pluggy
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import satikit
from satikit import hookspecs, plugins
from satikit.cli import cli
from satikit.io.images import write_image
from satikit.protocols import Adapter, Optimizers, Option, parse_bool


# -- a complete adapter defined inside the test: one conv per network, LSGAN, no cycle --------
class TinyAdapter(nn.Module):
    name = "tiny"

    def __init__(self, *, dims, in_channels, out_channels, domain_encoding=True, width=4, lr=1e-3):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.dims, self.options = dims, {"width": width, "lr": lr}
        self.encoding = domain_encoding
        self.generator_xy = nn.Sequential(
            conv(in_channels, width, 3, padding=1),
            nn.ReLU(),
            conv(width, out_channels, 3, padding=1),
            nn.Tanh(),
        )
        self.discriminator_y = conv(out_channels, 1, 3, padding=1)
        self.loss_terms: dict[str, torch.Tensor] = {}

    def _g(self, x):
        return satikit.encoding.to_domain(self.generator_xy(x), "y", enabled=self.encoding)

    def criterion(self, prediction, target_is_real):
        return F.mse_loss(prediction, torch.full_like(prediction, float(target_is_real)))

    def generator_step(self, x, y):
        y_hat = self._g(x)
        loss = self.criterion(self.discriminator_y(y_hat), True)
        self.loss_terms = {"adv": loss.detach()}
        return loss, y_hat

    def discriminator_step(self, x, y, y_hat_x):
        return 0.5 * (
            self.criterion(self.discriminator_y(y), True)
            + self.criterion(self.discriminator_y(y_hat_x), False)
        )

    def configure_optimizers(self, total_steps):
        lr = self.options["lr"]
        return Optimizers(
            torch.optim.Adam(self.generator_xy.parameters(), lr=lr),
            torch.optim.Adam(self.discriminator_y.parameters(), lr=lr),
        )

    @torch.no_grad()
    def translate(self, x, *, seed=None):
        return self._g(x)

    def training_state(self):
        return {}

    def load_training_state(self, state):
        pass


class TinyPlugin:
    __version__ = "9.9"

    @satikit.hookimpl
    def register_adapters(self, register):
        register(
            "tiny",
            TinyAdapter,
            dims=(2, 3),
            options={"width": Option(4, "channels"), "lr": Option(1e-3, "Adam lr")},
            test_options={"width": 2},
        )


@pytest.fixture
def pm(monkeypatch):
    """A freshly loaded plugin manager for this test alone: what a test registers on it never
    reaches the process-wide one (restored, with its adapter registry, afterwards)."""
    fresh = plugins._create_plugin_manager()
    monkeypatch.setattr(plugins, "_plugin_manager", fresh)
    monkeypatch.setattr(plugins, "_registry_cache", None)
    return fresh


@pytest.fixture
def tiny_plugin(pm):
    plugin = TinyPlugin()
    pm.register(plugin, name="tiny-plugin")
    return plugin


@pytest.fixture
def fresh_pm(monkeypatch):
    """Swap in a freshly loaded plugin manager, made after the test set its env vars."""

    def make():
        pm = plugins._create_plugin_manager()
        monkeypatch.setattr(plugins, "_plugin_manager", pm)
        monkeypatch.setattr(plugins, "_registry_cache", None)
        return pm

    return make


# -- hookspecs and markers -----------------------------------------------------------------
def test_hookimpl_is_reexported_marker():
    assert satikit.hookimpl is hookspecs.hookimpl
    assert isinstance(satikit.hookimpl, pluggy.HookimplMarker)
    assert hookspecs.PROJECT_NAME == "satikit"


@pytest.mark.parametrize("name", ["register_adapters", "register_commands"])
def test_every_hookspec_is_documented(name):
    function = getattr(hookspecs, name)
    doc = inspect.getdoc(function) or ""
    for param in inspect.signature(function).parameters:
        assert f":param {param}:" in doc


def test_builtin_cyclegan_comes_through_the_entry_point_group():
    from importlib.metadata import entry_points

    assert "satikit_cyclegan.plugin" in {ep.value for ep in entry_points(group="satikit")}
    info = plugins.get_adapter_info("cyclegan")
    assert info.plugin == "cyclegan" and info.version and info.dims == (2, 3)
    assert plugins.is_adapter("cyclegan") and "cyclegan" in plugins.list_adapters("cycle")


# -- registry ------------------------------------------------------------------------------
def test_unknown_adapter_lists_known_ones():
    with pytest.raises(ValueError, match="unknown adapter 'nope'.*cyclegan"):
        plugins.create_adapter("nope")


def test_create_adapter_validates_options_and_dims(tiny_plugin):
    adapter = plugins.create_adapter("tiny", dims=2, width="3")
    assert isinstance(adapter, Adapter) and adapter.options["width"] == 3
    with pytest.raises(ValueError, match="no option 'depth'.*lr, width"):
        plugins.create_adapter("tiny", depth=2)
    with pytest.raises(ValueError, match="invalid value 'x' for option 'width'"):
        plugins.create_adapter("tiny", width="x")
    with pytest.raises(ValueError, match="supports dims"):
        plugins.create_adapter("cyclegan", dims=4)


def test_option_parsing():
    assert Option(True).parse("no") is False and parse_bool("ON") is True
    assert Option(1).parse("7") == 7 and Option(0.5).parse("1e-3") == 1e-3
    assert Option("a", choices=("a", "b")).parse("b") == "b"
    with pytest.raises(ValueError, match="choose from"):
        Option("a", choices=("a", "b")).parse("c", name="mode")
    with pytest.raises(ValueError, match="'depth'"):
        Option(1).parse("1.5", name="depth")


def test_duplicate_name_warns_and_keeps_first(tiny_plugin, pm):
    class Duplicate:
        @satikit.hookimpl
        def register_adapters(self, register):
            register("tiny", lambda **kw: None)

    pm.register(Duplicate(), name="dup-plugin")
    try:
        with pytest.warns(
            plugins.PluginWarning, match="'tiny' from plugin 'dup-plugin'.*'tiny-plugin'"
        ):
            info = plugins.get_adapter_info("tiny")
        assert info.plugin == "tiny-plugin"
    finally:
        pm.unregister(name="dup-plugin")


def test_override_replaces(tiny_plugin, pm):
    class Override:
        @satikit.hookimpl
        def register_adapters(self, register):
            register("tiny", TinyAdapter, dims=(2,), override=True)

    pm.register(Override(), name="override-plugin")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert plugins.get_adapter_info("tiny").plugin == "override-plugin"
    finally:
        pm.unregister(name="override-plugin")


def test_registered_importer_serves_train_init(tiny_plugin, tmp_path, pm):
    from satikit.checkpoint import load_init

    seen = []

    def importer(adapter, path):
        if path.suffix != ".ref":
            raise ValueError(f"{path}: not a tiny reference checkpoint")
        seen.append((adapter.name, path.name))
        return ["generator_xy"]

    class WithImporter:
        @satikit.hookimpl
        def register_adapters(self, register):
            register("tiny", TinyAdapter, dims=(2,), override=True, importer=importer)

    adapter = plugins.create_adapter("tiny", dims=2, in_channels=1, out_channels=1)
    (tmp_path / "weights.ref").write_bytes(b"ref")
    with pytest.raises(ValueError, match="reads only satikit weights"):
        load_init(adapter, tmp_path / "weights.ref")  # tiny-plugin registered no importer
    pm.register(WithImporter(), name="importer-plugin")
    try:
        assert load_init(adapter, tmp_path / "weights.ref") == ["generator_xy"]
        assert seen == [("tiny", "weights.ref")]
        with pytest.raises(ValueError, match="not a tiny reference"):
            load_init(adapter, tmp_path / "other.bin")
    finally:
        pm.unregister(name="importer-plugin")
    with pytest.raises(TypeError, match="importer must be callable"):
        plugins._Registrar()("bad", TinyAdapter, importer="not callable")


def test_plugin_failing_in_hook_warns_and_others_survive(pm):
    class Broken:
        @satikit.hookimpl
        def register_adapters(self, register):
            raise RuntimeError("boom")

    pm.register(Broken(), name="broken-plugin")
    try:
        with pytest.warns(plugins.PluginWarning, match="'broken-plugin'.*boom"):
            assert "cyclegan" in plugins.list_adapters()
    finally:
        pm.unregister(name="broken-plugin")


def _fake_distribution(tmp_path, name: str, module: str, source: str | None) -> None:
    """A dist-info with a ``satikit`` entry point, found through sys.path like an install."""
    info = tmp_path / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[satikit]\n{name} = {module}\n")
    if source is not None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))


def test_broken_entry_point_warns_naming_it(tmp_path, monkeypatch, fresh_pm):
    _fake_distribution(tmp_path, "brokenplug", "brokenplug_missing_module", None)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(plugins.PluginWarning, match="'brokenplug'.*failed to load"):
        fresh_pm()
    assert "cyclegan" in plugins.list_adapters()


def test_third_party_entry_point_plugin_is_loaded(tmp_path, monkeypatch, fresh_pm):
    _fake_distribution(
        tmp_path,
        "extplug",
        "extplug_module",
        """
        import satikit

        @satikit.hookimpl
        def register_adapters(register):
            register("ext", lambda **kw: None, dims=(2,))
    """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "extplug_module", raising=False)
    fresh_pm()
    info = plugins.get_adapter_info("ext")
    assert (info.plugin, info.version, info.dims) == ("extplug", "1.2.3", (2,))


def test_block_and_allow_lists(monkeypatch, fresh_pm):
    monkeypatch.setenv("SATIKIT_DISABLE_PLUGINS", "cyclegan")
    fresh_pm()
    assert "cyclegan" not in plugins.list_adapters()
    monkeypatch.delenv("SATIKIT_DISABLE_PLUGINS")
    monkeypatch.setenv("SATIKIT_PLUGINS", "")
    fresh_pm()
    assert plugins.list_adapters() == []
    monkeypatch.setenv("SATIKIT_PLUGINS", "cyclegan")
    fresh_pm()
    assert plugins.list_adapters() == ["cyclegan"]


def test_trace_switch_prints_hook_calls(monkeypatch, fresh_pm, capsys):
    monkeypatch.setenv("SATIKIT_TRACE_PLUGINS", "1")
    fresh_pm()
    plugins.list_adapters()
    assert "register_adapters" in capsys.readouterr().err


# -- conformance of every registered adapter (timm-style: new entries are tested for free) ----
@pytest.mark.parametrize("name", plugins.list_adapters())
def test_registered_adapter_conforms(name):
    info = plugins.get_adapter_info(name)
    for dims in info.dims:
        adapter = plugins.create_adapter(
            name, dims=dims, in_channels=3, out_channels=3, **info.test_options
        )
        assert isinstance(adapter, Adapter)
        size = 32 if dims == 2 else 16  # 2D backbones may downsample 32x
        x = torch.rand(2, 3, *(size,) * dims) - 1
        y = torch.rand(2, 3, *(size,) * dims)
        loss, y_hat = adapter.generator_step(x, y)
        assert loss.ndim == 0 and loss.requires_grad and y_hat.shape == y.shape
        assert y_hat.min() >= 0 and y_hat.max() <= 1  # encoded Y
        d_loss = adapter.discriminator_step(x, y, y_hat.detach())
        assert d_loss.ndim == 0 and torch.isfinite(d_loss)
        out = adapter.translate(x, seed=0)
        assert out.shape == y.shape and not out.requires_grad


# -- CLI -----------------------------------------------------------------------------------
def test_adapters_command_lists_builtin_and_test_plugin(tiny_plugin):
    result = CliRunner().invoke(cli, ["adapters"])
    assert result.exit_code == 0, result.output
    assert "cyclegan" in result.output and "2D,3D" in result.output
    assert any(
        line.split()[:3] == ["tiny", "tiny-plugin", "9.9"] for line in result.output.splitlines()
    )
    records = json.loads(CliRunner().invoke(cli, ["adapters", "--json"]).output)
    assert {"name": "tiny", "plugin": "tiny-plugin", "version": "9.9", "dims": [2, 3]} in records


def test_adapters_options(tiny_plugin):
    result = CliRunner().invoke(cli, ["adapters", "--options", "cyclegan"])
    assert result.exit_code == 0 and "ngf" in result.output and "96" in result.output
    records = json.loads(
        CliRunner().invoke(cli, ["adapters", "--options", "tiny", "--json"]).output
    )
    assert records[0] == {
        "name": "width",
        "default": 4,
        "help": "channels",
        "choices": None,
        "test": 2,
    }
    result = CliRunner().invoke(cli, ["adapters", "--options", "nope"])
    assert result.exit_code == 2 and "unknown adapter 'nope'" in result.output


def test_plugin_adds_a_command(monkeypatch, pm):
    import click

    class Commands:
        @satikit.hookimpl
        def register_commands(self, cli):
            @cli.command(name="hello-plugin")
            def hello() -> None:
                click.echo("hello from a plugin")

    monkeypatch.setattr(cli, "commands", dict(cli.commands))
    monkeypatch.setattr(cli, "_plugin_commands_loaded", False, raising=False)
    pm.register(Commands(), name="commands-plugin")
    try:
        result = CliRunner().invoke(cli, ["hello-plugin"])
        assert result.exit_code == 0 and "hello from a plugin" in result.output
    finally:
        pm.unregister(name="commands-plugin")


def test_test_plugin_can_be_trained_and_translated(tiny_plugin, tmp_path):
    rng = np.random.default_rng(0)
    for domain in "xy":
        (tmp_path / domain).mkdir()
        write_image(tmp_path / domain / "a.tif", rng.integers(0, 256, (40, 40, 3), np.uint8))
    run = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--adapter",
            "tiny",
            "--x",
            str(tmp_path / "x"),
            "--y",
            str(tmp_path / "y"),
            "--out",
            str(run),
            "--steps",
            "3",
            "--crop",
            "16",
            "--device",
            "cpu",
            "--quiet",
            "-o",
            "width",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["adapter"]["name"] == "tiny" and config["adapter"]["plugin"] == "tiny-plugin"
    assert config["adapter"]["options"]["width"] == 3
    result = CliRunner().invoke(
        cli,
        [
            "translate",
            str(run),
            str(tmp_path / "x" / "a.tif"),
            str(tmp_path / "out.tif"),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.tif").is_file()
