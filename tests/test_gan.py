"""satikit.gan, the core GAN building blocks: the built-in adapters depend only on it, and
moving the blocks there kept every state-dict key, so shipped and cached runs still load."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from satikit.checkpoint import load_adapter
from satikit.plugins import create_adapter, get_adapter_info

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = ROOT / "adapters"
PACKAGES = sorted(p.name for p in ADAPTERS.iterdir() if (p / "__init__.py").is_file())
KEYS = json.loads((Path(__file__).parent / "data" / "state_dict_keys.json").read_text())
PRETRAINED = sorted(p for p in (ROOT / "satikit" / "pretrained").iterdir() if p.is_dir())


def _imported_packages(path: Path) -> set[str]:
    """Top-level names of the absolute imports of a module (relative imports are its own)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_an_adapter_package_imports_no_other_adapter_package(package: str) -> None:
    assert {"satikit_cyclegan", "satikit_unit", "satikit_munit", "satikit_timm"} <= set(PACKAGES)
    for path in (ADAPTERS / package).glob("*.py"):
        others = {name for name in _imported_packages(path) if name in PACKAGES} - {package}
        assert not others, f"{path.relative_to(ROOT)} imports {sorted(others)}"


def test_disabled_cyclegan_plugin_is_never_imported() -> None:
    code = (
        "import sys\n"
        "from satikit.cli import cli\n"
        "try:\n"
        "    cli(['adapters'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('MODULES', sorted(m for m in sys.modules if m.startswith('satikit_')))\n"
    )
    env = {**os.environ, "SATIKIT_DISABLE_PLUGINS": "cyclegan"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    listed = out.split("MODULES")[0]
    modules = ast.literal_eval(out.split("MODULES", 1)[1].strip())
    assert "cyclegan" not in listed and "timm" in listed and "unit" in listed
    assert modules and not [m for m in modules if m.startswith("satikit_cyclegan")]


@pytest.mark.parametrize("case", sorted(KEYS))
def test_state_dict_keys_and_shapes_are_those_of_earlier_versions(case: str) -> None:
    name, dims = case.rsplit("-", 1)
    info = get_adapter_info(name)
    adapter = create_adapter(name, dims=int(dims[0]), **info.test_options)
    found = {key: list(value.shape) for key, value in adapter.state_dict().items()}
    assert found == KEYS[case]


@pytest.mark.parametrize("run", PRETRAINED, ids=lambda p: p.name)
def test_shipped_runs_load_strictly(run: Path) -> None:
    adapter, config = load_adapter(run)  # refuses missing, unexpected or reshaped tensors
    x = torch.zeros(1, int(config.data.in_channels), 32, 32) - 0.5
    y = adapter.translate(x)
    assert y.shape == (1, int(config.data.out_channels), 32, 32)
    assert torch.isfinite(y).all()


def test_lazy_exports_resolve_and_unknown_names_raise() -> None:
    import satikit.gan as gan

    assert set(gan.__all__) == set(gan._EXPORTS)
    for name in gan.__all__:
        assert getattr(gan, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        gan.Nope  # noqa: B018


def test_option_modules_are_cheap_to_import() -> None:
    code = (
        "import sys, satikit.gan.options, satikit_cyclegan.plugin; "
        "print(sorted(m for m in ('torch', 'satikit.gan.layers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_adapter_specific_train_flags_come_from_the_adapters() -> None:
    import click
    from click.testing import CliRunner

    from satikit.cli import cli

    train = cli.get_command(click.Context(cli), "train")
    assert train is not None
    result = CliRunner().invoke(cli, ["train", "--help"])
    assert result.exit_code == 0 and "--backbone" in result.output
    params = {p.name: p for p in train.get_params(click.Context(train))}
    backbone = params["adapter_option_backbone"]  # the timm adapter's Option(flag="backbone")
    assert backbone.opts == ["--backbone"] and "(timm:" in backbone.help
    init = params["init_path"].help  # the adapters' importer_help, grouped
    assert "cyclegan: pytorch-CycleGAN-and-pix2pix folder or *_net_G_A.pth" in init
    assert "munit/unit: reference gen_*.pt" in init
