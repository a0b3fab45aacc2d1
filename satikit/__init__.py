"""satikit: seamless tiled translation of large 2D/3D images with any unpaired GAN.

Implements SATI, Stitching Aware Training and Inference (Böhland et al., IEEE Access).

Modules that moved keep their old import paths (:data:`MOVED`): importing an old path imports
the module that holds the code now, only then, and gives that very module object.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType

try:
    __version__ = version("satikit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from satikit.hookspecs import hookimpl  # noqa: E402  (plugins write @satikit.hookimpl)

__all__ = ["MOVED", "MOVED_PACKAGES", "MovedModuleFinder", "__version__", "hookimpl", "moved_to"]

#: Old module path -> the module that holds its code now. An old package's submodules moved
#: with it (see :func:`moved_to`).
MOVED: dict[str, str] = {
    "satikit.arrays": "satikit.io",
    "satikit.atomic": "satikit.io.atomic",
    "satikit.comm": "satikit.translation.comm",
    "satikit.crops": "satikit.training.crops",
    "satikit.data.io": "satikit.io.images",
    "satikit.distributed": "satikit.training.distributed",
    "satikit.grid": "satikit.stitching.grid",
    "satikit.inputs": "satikit.io.input_range",
    "satikit.losses": "satikit.training.losses",
    "satikit.merger": "satikit.training.sati_merge",
    "satikit.ome": "satikit.io.ome",
    "satikit.optim": "satikit.training.optim",
    "satikit.translate": "satikit.translation.translate",
    "satikit.translate_distributed": "satikit.translation.distributed",
    "satikit.weights": "satikit.stitching.windows",
}
#: The old paths in :data:`MOVED` that were packages.
MOVED_PACKAGES: tuple[str, ...] = ("satikit.ome",)


def moved_to(name: str) -> str | None:
    """The module path that the old module path ``name`` imports now (None: not moved)."""
    if name in MOVED:
        return MOVED[name]
    for old in MOVED_PACKAGES:
        if name.startswith(old + "."):
            return MOVED[old] + name[len(old) :]
    return None


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module that holds its code now (:data:`MOVED`)."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if moved_to(fullname) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default placeholder; exec_module puts the new module in its place

    def exec_module(self, module: ModuleType) -> None:
        # The import system hands out whatever sys.modules holds under the old name once the
        # loader is done: the new module object itself, its own __spec__ untouched.
        new = moved_to(module.__name__)
        assert new is not None
        sys.modules[module.__name__] = importlib.import_module(new)


if not any(type(finder).__name__ == MovedModuleFinder.__name__ for finder in sys.meta_path):
    # First, so that an old submodule path is never found as a second copy of the new file.
    sys.meta_path.insert(0, MovedModuleFinder())
