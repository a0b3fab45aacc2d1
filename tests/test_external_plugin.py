"""A plugin package that lives outside the repository: built into a wheel in a temp dir,
discovered through its entry point, checked by the conformance kit, trained with SATI.

``PLUGIN_FILES`` is the complete minimal plugin of docs/adapters.md ("Writing an adapter");
``test_adapter_doc_example_is_the_tested_plugin`` keeps the two identical, and
``python tests/test_external_plugin.py`` prints the section (:func:`render_adapter_doc`).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from satikit import plugins
from satikit.cli import cli

PLUGIN_FILES: dict[str, str] = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "satikit-tinygan"
version = "0.1.0"
description = "A tiny one-way LSGAN for satikit"
requires-python = ">=3.10"
dependencies = ["satikit", "torch"]

# the entry point satikit discovers: group "satikit", name = plugin name, value = module
[project.entry-points.satikit]
tinygan = "satikit_tinygan.plugin"

[tool.setuptools]
packages = ["satikit_tinygan"]
""",
    "satikit_tinygan/__init__.py": '''\
"""TinyGAN: the smallest complete satikit adapter plugin."""
''',
    "satikit_tinygan/plugin.py": '''\
"""Registers the ``tinygan`` adapter. Cheap to import: torch is imported when it is built."""

import satikit
from satikit.protocols import Option


def build(**kwargs):
    from satikit_tinygan.adapter import TinyGAN

    return TinyGAN(**kwargs)


@satikit.hookimpl
def register_adapters(register):
    register(
        "tinygan",
        build,
        dims=(2, 3),
        options={"width": Option(16, "hidden channels"), "lr": Option(2e-4, "Adam learning rate")},
        test_options={"width": 4},
    )
''',
    "satikit_tinygan/adapter.py": '''\
"""A one-way LSGAN: G_XY = two 3^N convs + tanh, D_Y = a two-layer PatchGAN."""

import torch
import torch.nn.functional as F
from torch import nn

from satikit.encoding import to_domain
from satikit.protocols import Optimizers


def conv(dims, *args, **kwargs):
    return (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1](*args, **kwargs)


class Generator(nn.Module):
    """(B, C_x, *S) encoded X (or SATI's merged z) -> (B, C_y, *S) encoded Y."""

    def __init__(self, dims, in_channels, out_channels, width, encoding):
        super().__init__()
        self.net = nn.Sequential(
            conv(dims, in_channels, width, 3, padding=1),
            nn.ReLU(),
            conv(dims, width, out_channels, 3, padding=1),
            nn.Tanh(),
        )
        self.encoding = encoding

    def forward(self, x):
        # tanh output -> Y's encoded range ([0, 1] with domain encoding, else [-1, 1])
        return to_domain(self.net(x), "y", enabled=self.encoding)


class TinyGAN(nn.Module):
    name = "tinygan"

    def __init__(self, *, dims, in_channels, out_channels, domain_encoding=True, width=16, lr=2e-4):
        super().__init__()
        self.dims, self.options = dims, {"width": width, "lr": lr}
        self.generator_xy = Generator(dims, in_channels, out_channels, width, domain_encoding)
        self.discriminator_y = nn.Sequential(
            conv(dims, out_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            conv(dims, width, 1, 3, padding=1),
        )
        self.loss_terms = {}

    def criterion(self, prediction, target_is_real):  # SATI scores D_Y(z) with it too
        return F.mse_loss(prediction, torch.full_like(prediction, float(target_is_real)))

    def generator_step(self, x, y):  # the host's loss and y_hat_x, both with graph
        y_hat = self.generator_xy(x)
        loss = self.criterion(self.discriminator_y(y_hat), True)
        self.loss_terms = {"adv": loss.detach()}
        return loss, y_hat

    def discriminator_step(self, x, y, y_hat_x):  # y_hat_x arrives detached
        real = self.criterion(self.discriminator_y(y), True)
        return 0.5 * (real + self.criterion(self.discriminator_y(y_hat_x), False))

    def configure_optimizers(self, total_steps):
        def adam(module):
            return torch.optim.Adam(module.parameters(), lr=self.options["lr"], betas=(0.5, 0.999))

        return Optimizers(adam(self.generator_xy), adam(self.discriminator_y))

    @torch.no_grad()
    def translate(self, x, *, seed=None):  # inference on a batch of tiles
        return self.generator_xy(x)

    def training_state(self):  # nothing beyond the weights (an image pool would go here)
        return {}

    def load_training_state(self, state):
        pass
''',
    "tests/test_tinygan.py": """\
import pytest

from satikit.testing import assert_adapter_conforms


@pytest.mark.parametrize("dims", [2, 3])
def test_tinygan_conforms(dims):
    assert_adapter_conforms("tinygan", dims=dims)
""",
}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def installed_plugin(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Build the plugin's wheel offline, unpack it into a private site dir on ``sys.path`` (the
    shared environment is untouched) and give satikit a fresh plugin manager."""
    root = tmp_path_factory.mktemp("plugin")
    source, dist, site = root / "satikit-tinygan", root / "dist", root / "site"
    _write(source, PLUGIN_FILES)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = dist.glob("satikit_tinygan-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert (site / "satikit_tinygan-0.1.0.dist-info" / "entry_points.txt").is_file()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_plugin_manager", None)
    monkeypatch.setattr(plugins, "_registry_cache", None)
    yield source
    for name in [m for m in sys.modules if m.startswith("satikit_tinygan")]:
        del sys.modules[name]


def test_external_plugin_is_discovered_checked_and_trained_with_sati(
    installed_plugin: Path, tmp_path: Path
) -> None:
    from satikit.io.images import write_image

    runner = CliRunner()
    listing = runner.invoke(cli, ["adapters", "--json"])
    assert listing.exit_code == 0, listing.output
    entry = next(e for e in json.loads(listing.output) if e["name"] == "tinygan")
    assert entry == {"name": "tinygan", "plugin": "tinygan", "version": "0.1.0", "dims": [2, 3]}
    assert "tinygan" in runner.invoke(cli, ["adapters"]).output

    # the plugin's own test, as its authors run it
    spec = importlib.util.spec_from_file_location(
        "tinygan_tests", installed_plugin / "tests" / "test_tinygan.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.test_tinygan_conforms(2)
    module.test_tinygan_conforms(3)
    check = runner.invoke(cli, ["check-adapter", "tinygan", "--dims", "2"])
    assert check.exit_code == 0 and "tinygan: conforms" in check.output

    rng = np.random.default_rng(0)
    for domain in ("x", "y"):
        (tmp_path / domain).mkdir()
        for i in range(2):
            image = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
            write_image(tmp_path / domain / f"{i}.tif", image)
    run = tmp_path / "run"
    trained = runner.invoke(
        cli,
        [
            "train",
            "--adapter",
            "tinygan",
            "--x",
            str(tmp_path / "x"),
            "--y",
            str(tmp_path / "y"),
            "--out",
            str(run),
            "--steps",
            "3",
            "--crop",
            "32",
            "--device",
            "cpu",
            "--no-amp",
            "--quiet",
            "-o",
            "width",
            "4",
        ],
    )
    assert trained.exit_code == 0, trained.output
    config = json.loads((run / "config.json").read_text())
    assert config["adapter"]["plugin"] == "tinygan"
    assert config["adapter"]["plugin_version"] == "0.1.0"
    assert config["sati"]["enabled"] is True
    last = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(last["stitch"]) and last["step"] == 3
    out = runner.invoke(
        cli,
        [
            "translate",
            str(run),
            str(tmp_path / "x" / "0.tif"),
            str(tmp_path / "out.tif"),
            "--strategy",
            "sati",
            "--device",
            "cpu",
            "--quiet",
        ],
    )
    assert out.exit_code == 0, out.output
    assert (tmp_path / "out.tif").is_file()


ADAPTER_DOC = Path(__file__).resolve().parent.parent / "docs" / "adapters.md"
DOC_INTRO = """\
An adapter wraps one GAN family so that the SATI trainer and the tiling engine can drive it without
knowing it (`satikit.protocols.Adapter`): `generator_xy` (encoded X, or SATI's merged tile z, to encoded
Y, `(B, C, *spatial)`), `discriminator_y`, the host's adversarial `criterion`,
`generator_step(x, y) -> (loss, y_hat_x)` (the host's own losses; `y_hat_x` keeps its graph because
SATI reuses it), `discriminator_step`, `configure_optimizers`, `translate(x, *, seed=None)` for
inference (one seed per large image, so all its tiles agree) and the weights as a flat state dict.
Generators map their tanh output into the target domain's encoded range with
`satikit.encoding.to_domain`. A plugin registers a factory through the entry-point group `satikit`,
exactly like the built-in `cyclegan`, `unit`, `munit` and `timm` adapters. A complete minimal plugin:
"""
DOC_OUTRO = """\
After `pip install -e .` in that folder, `satikit adapters` lists `tinygan`,
`satikit check-adapter tinygan` prints one PASS / FAIL / SKIP line per check, and
`satikit train --adapter tinygan --x X_DIR --y Y_DIR --out RUN -o width 32` trains it with SATI.

The conformance kit, `satikit.testing`, is what the test above calls:

- `check_adapter(adapter, *, dims=2, in_channels=3, out_channels=None, options=None, size=None,
  batch_size=2, seed=0, device="cpu", domain_encoding=True, checks=None, threads=1)` returns a
  `ConformanceReport` (`.ok`, `.results`, `.failures`, `.to_dict()`, `str()` for the terminal);
  `adapter` is a registered name (its `test_options` apply first), an `AdapterInfo`, or a bare factory;
- `assert_adapter_conforms(adapter, **kwargs)` raises `ConformanceError` (an `AssertionError`) with
  the whole report when a check fails;
- `registered_cases()` gives `(name, dims)` pairs for `pytest.mark.parametrize`;
- checks (`CHECKS`): `build`, `generator_xy` (shape, finite, inside Y's encoded range), `translate`
  (no graph, repeatable, each tile independent of its batch), `discriminator`, `host_step` (finite
  loss, `y_hat_x` with graph into `generator_xy`), `sati_step` (one `SATITrainer.train_step` with SATI:
  finite losses, weights of `generator_xy` and `discriminator_y` move), `state_dict` (safetensors round
  trip into a differently seeded copy translates the same; `training_state` round trip),
  `determinism` (same seed: same weights, same SATI step), `tiling[simple|weighted|sati]` (an image
  larger than a tile through `satikit.stitching.stitch`). SATI checks are skipped when X and Y
  have different channel counts.

Declare an `Option` with a help text for every hyperparameter (they become `-o KEY VALUE` on
`satikit train` and show in `satikit adapters --options NAME`), the smallest configuration as
`test_options`, and the dims the networks support. Keep the plugin module cheap to import (build
the networks inside the factory) and never unpickle files: load weights with
`torch.load(path, weights_only=True)` or safetensors.
"""


def render_adapter_doc() -> str:
    """docs/adapters.md ("Writing an adapter"), built around ``PLUGIN_FILES``."""
    language = {"toml": "toml", "py": "python"}
    parts = ["# Writing an adapter", "", DOC_INTRO]
    for name, text in PLUGIN_FILES.items():
        fence = language[name.rsplit(".", 1)[1]]
        parts += [f"`{name}`:", "", f"```{fence}", text.rstrip("\n"), "```", ""]
    return "\n".join(parts) + DOC_OUTRO


def adapter_doc_section() -> str | None:
    """docs/adapters.md's text below its title, if it has one."""
    text = ADAPTER_DOC.read_text(encoding="utf-8") if ADAPTER_DOC.is_file() else ""
    match = re.search(r"^# Writing an adapter\n(.*?)\Z", text, re.M | re.S)
    return match[1] if match else None


def test_adapter_doc_example_is_the_tested_plugin() -> None:
    section = adapter_doc_section()
    assert section is not None, "docs/adapters.md lost its 'Writing an adapter' title"
    blocks = dict(re.findall(r"^`([\w./-]+)`:?\n\n```\w*\n(.*?)^```", section, re.M | re.S))
    assert blocks == PLUGIN_FILES


if __name__ == "__main__":
    print(render_adapter_doc(), end="")
