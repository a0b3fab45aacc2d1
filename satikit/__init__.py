"""satikit: seamless tiled translation of large 2D/3D images with any unpaired GAN.

Implements SATI, Stitching Aware Training and Inference (Böhland et al., IEEE Access).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("satikit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from satikit.hookspecs import hookimpl  # noqa: E402  (plugins write @satikit.hookimpl)

__all__ = ["__version__", "hookimpl"]
