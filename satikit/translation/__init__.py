"""Translating images with a trained run: files, folders and arrays in, translations out.

- :mod:`satikit.translation.translate`: one process: :func:`translate_path` (an image or a
  folder), :func:`translate_file`, :func:`translate_array`, and :class:`Translation`, the job
  of one image (its output, resume files and engine call), re-exported here.
- :mod:`satikit.translation.distributed`: the same job shared out over the processes of a
  ``torchrun`` translation (a folder's files, an image's rows or SATI's bands).
- :mod:`satikit.translation.comm`: the messages between those processes, and what happens when
  one fails.

Images are read and written through :mod:`satikit.io`, tiles stitched by
:mod:`satikit.stitching`.
"""

from __future__ import annotations

from satikit.translation.translate import (
    OUTPUT_SUFFIXES,
    Translation,
    check_target,
    describe,
    open_input,
    tile_grid,
    translate_array,
    translate_file,
    translate_path,
    translation_pairs,
)

__all__ = [
    "OUTPUT_SUFFIXES",
    "Translation",
    "check_target",
    "describe",
    "open_input",
    "tile_grid",
    "translate_array",
    "translate_file",
    "translate_path",
    "translation_pairs",
]
