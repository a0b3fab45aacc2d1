"""Old module paths keep working: each imports the module that holds the code now."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

from satikit import MOVED, MOVED_PACKAGES, moved_to


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_is_the_new_module_object(old: str) -> None:
    new = importlib.import_module(MOVED[old])
    assert importlib.import_module(old) is new
    assert sys.modules[old] is new
    assert new.__name__ == MOVED[old]  # the new module keeps its own name and spec
    assert new.__spec__ is not None and new.__spec__.name == MOVED[old]


@pytest.mark.parametrize("old", sorted(MOVED_PACKAGES))
def test_an_old_package_s_submodules_are_the_new_ones(old: str) -> None:
    package = importlib.import_module(MOVED[old])
    subs = [info.name for info in pkgutil.iter_modules(package.__path__)]
    assert subs
    for sub in subs:
        new = importlib.import_module(f"{MOVED[old]}.{sub}")
        assert importlib.import_module(f"{old}.{sub}") is new


def test_modules_that_did_not_move_are_not_redirected() -> None:
    assert moved_to("satikit.stitching") is None
    assert moved_to("satikit.cli") is None
    assert moved_to("satikit.settings") is None
    for old in MOVED:
        assert moved_to(old + "_other") is None  # a longer name is another module


def test_import_satikit_imports_no_moved_module_nor_torch() -> None:
    watched = ("torch", "numpy", *MOVED, *MOVED.values())
    code = f"import sys, satikit; print(sorted(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_old_paths_work_in_a_fresh_process() -> None:
    """``import a.b`` and ``from a.b import c`` through the old paths, nothing imported before."""
    lines = ["import importlib, satikit"]
    for old, new in sorted(MOVED.items()):
        lines.append(f"assert importlib.import_module({old!r}) is importlib.import_module({new!r})")
    subprocess.run([sys.executable, "-c", "\n".join(lines)], check=True)


def test_the_finder_is_installed_once() -> None:
    code = (
        "import importlib, sys, satikit; importlib.reload(satikit); "
        "print([type(f).__name__ for f in sys.meta_path].count('MovedModuleFinder'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
