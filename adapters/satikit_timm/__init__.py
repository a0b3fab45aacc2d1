"""timm-backbone generators for satikit: any ``features_only`` timm model as a U-Net encoder.

Registered through the ``satikit`` entry-point group. Needs the optional ``timm`` package
(``pip install 'satikit[timm]'``); without it only this adapter is disabled. 2D only.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
