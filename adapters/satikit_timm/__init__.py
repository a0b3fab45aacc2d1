"""timm-backbone generators for satikit: any ``features_only`` timm model as a U-Net encoder.

Registered through the ``satikit`` entry-point group. Needs the optional ``timm`` package
(``pip install 'satikit[timm]'``); without it only this adapter is disabled. 2D only.
"""

from __future__ import annotations

__all__ = ["TIMM_MISSING", "__version__"]

__version__ = "0.1.0"

#: What building the adapter says when timm is not installed (the plugin module and the
#: networks both need it; here it costs neither of them an import of the other).
TIMM_MISSING = (
    "the 'timm' adapter needs the timm package, which is not installed: "
    "pip install 'satikit[timm]' (or pip install timm)"
)
