"""Write benchmark datasets to disk in the one layout every satikit command reads.

Layout (issue 4)::

    OUT/manifest.json       parameters, seed, counts, satikit version, layout (written last)
    OUT/train/x/00000.tif   domain X images, (*spatial, 3) uint8   [ellipsoids: (*spatial) uint8]
    OUT/train/labels/       instance labels of train/x, (*spatial) uint16 / uint32
    OUT/train/y/            domain Y images (circles only), independent draws from X
    OUT/train/y_labels/     instance labels of train/y (circles only; to check the metric)
    OUT/test/x/             held-out X images, drawn apart from every training image
    OUT/test/labels/        their instance labels (what ``satikit evaluate`` compares against)

Files in matching folders share their name. Every image has its own random stream, derived from
``(seed, split, domain, index)`` through :class:`numpy.random.SeedSequence`, so a dataset is
reproducible byte for byte and no test image can repeat a training image's draw.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import satikit
from satikit.atomic import write_json
from satikit.data.circles import make_circle_image
from satikit.data.ellipsoids import EllipsoidParams, make_ellipsoid_volume
from satikit.data.io import IMAGE_SUFFIXES, write_image
from satikit.data.presets import CirclePreset, get_preset

__all__ = [
    "LAYOUT",
    "MANIFEST",
    "image_name",
    "image_rng",
    "make_circle_dataset",
    "make_ellipsoid_dataset",
    "prepare_output_dir",
]

#: Folder (relative to the dataset root) of each kind of file.
LAYOUT: dict[str, str] = {
    "train_x": "train/x",
    "train_labels": "train/labels",
    "train_y": "train/y",
    "train_y_labels": "train/y_labels",
    "test_x": "test/x",
    "test_labels": "test/labels",
}
#: File name of the dataset manifest in the dataset root.
MANIFEST = "manifest.json"

_SPLITS = {"train": 0, "test": 1}
_DOMAINS = {"x": 0, "y": 1}
_KINDS = {"circles": 0, "ellipsoids": 1}
# (split, domain) -> layout keys of the image and of its labels
_CIRCLE_KEYS = {
    ("train", "x"): ("train_x", "train_labels"),
    ("train", "y"): ("train_y", "train_y_labels"),
    ("test", "x"): ("test_x", "test_labels"),
}


def image_name(index: int) -> str:
    """File name of image ``index`` (the same in every folder): ``00000.tif``."""
    return f"{index:05d}.tif"


def image_rng(seed: int, kind: str, split: str, domain: str, index: int) -> np.random.Generator:
    """The independent random stream of one dataset image.

    Args:
        seed: Dataset seed, >= 0.
        kind: ``"circles"`` or ``"ellipsoids"``.
        split: ``"train"`` or ``"test"``.
        domain: ``"x"`` or ``"y"``.
        index: Image index, >= 0.

    Returns:
        A PCG64 generator seeded by ``SeedSequence([seed, kind, split, domain, index])``.
    """
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    key = [int(seed), _KINDS[kind], _SPLITS[split], _DOMAINS[domain], int(index)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))


def prepare_output_dir(out_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Create the dataset folders; refuse a non-empty ``out_dir`` unless ``force``.

    With ``force``, stale images in the layout folders and the old manifest are deleted so the
    folder holds exactly the new dataset afterwards; nothing else is touched.

    Args:
        out_dir: Dataset root.
        force: Allow writing into a non-empty folder.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: If ``out_dir`` is non-empty and ``force`` is False, or is a file.
    """
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{str(root)!r} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise FileExistsError(
            f"{str(root)!r} is not empty; choose another folder or pass force=True (--force)"
        )
    for sub in LAYOUT.values():
        folder = root / sub
        if folder.is_dir():
            for stale in folder.iterdir():
                if stale.is_file() and stale.suffix.lower() in IMAGE_SUFFIXES:
                    stale.unlink()
    (root / MANIFEST).unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _write_all(
    root: Path,
    jobs: list[tuple[str, int, Callable[[], dict[str, np.ndarray]]]],
    progress: bool,
    desc: str,
) -> None:
    """Run each ``(split, index, make)`` job and write the arrays it returns by layout key."""
    for _, index, make in tqdm(jobs, desc=desc, unit="img", disable=not progress):
        for key, array in make().items():
            folder = root / LAYOUT[key]
            folder.mkdir(parents=True, exist_ok=True)
            write_image(folder / image_name(index), array)


def _manifest(kind: str, params: dict[str, Any], seed: int, counts: dict[str, int]) -> dict:
    return {
        "kind": kind,
        "satikit_version": satikit.__version__,
        "seed": int(seed),
        "params": params,
        "counts": counts,
        "layout": {key: LAYOUT[key] for key in counts},
        "placement": "uniform random centres; no two objects share a pixel (touching allowed); "
        "clipped at the image border",
    }


def make_circle_dataset(
    out_dir: str | os.PathLike[str],
    preset: str | CirclePreset = "paper",
    *,
    seed: int = 0,
    progress: bool = False,
    force: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Generate the circle benchmark (paper section II) into ``out_dir``.

    Writes ``n_images`` X and ``n_images`` Y training images (independent draws), ``n_test``
    held-out X test images, and every image's instance labels, then the manifest.

    Args:
        out_dir: Dataset root; created if missing, must be empty unless ``force``.
        preset: ``"paper"`` / ``"small"`` or a :class:`CirclePreset`.
        seed: Makes the dataset reproducible byte for byte, >= 0.
        progress: Show a progress bar (stderr).
        force: Write into a non-empty folder (stale images there are removed).
        **overrides: Fields of :class:`CirclePreset` to change (``size``, ``count``,
            ``diameter``, ``noise_sigma``, ``n_images``, ``n_test``, ``dims``,
            ``density_gradient``); ``None`` values are ignored. ``dims`` also selects the named preset's 3D variant.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        ValueError: On an unknown preset, bad parameters or an unplaceable circle count.
        FileExistsError: If ``out_dir`` is not empty and ``force`` is False.
    """
    unknown = set(overrides) - set(CirclePreset.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown circle parameters {sorted(unknown)}")
    dims = overrides.get("dims") or (preset.dims if isinstance(preset, CirclePreset) else 2)
    params = get_preset(preset, dims).replace(**overrides)
    image_rng(seed, "circles", "train", "x", 0)  # validates the seed before touching the disk
    root = prepare_output_dir(out_dir, force=force)

    def job(split: str, domain: str, index: int) -> Callable[[], dict[str, np.ndarray]]:
        def make() -> dict[str, np.ndarray]:
            image, labels = make_circle_image(
                domain,
                shape=params.shape,
                count=params.count,
                diameter=params.diameter,
                noise_sigma=params.noise_sigma,
                rng=image_rng(seed, "circles", split, domain, index),
                density_gradient=params.density_gradient,
            )
            image_key, labels_key = _CIRCLE_KEYS[(split, domain)]
            return {image_key: image, labels_key: labels}

        return make

    jobs = [("train", i, job("train", d, i)) for d in ("x", "y") for i in range(params.n_images)]
    jobs += [("test", i, job("test", "x", i)) for i in range(params.n_test)]
    _write_all(root, jobs, progress, "circles")
    counts = {
        "train_x": params.n_images,
        "train_labels": params.n_images,
        "train_y": params.n_images,
        "train_y_labels": params.n_images,
        "test_x": params.n_test,
        "test_labels": params.n_test,
    }
    manifest = _manifest("circles", params.as_dict(), seed, counts)
    write_json(root / MANIFEST, manifest)
    return manifest


def make_ellipsoid_dataset(
    out_dir: str | os.PathLike[str],
    params: EllipsoidParams | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    force: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Generate synthetic nucleus volumes (paper section IV-C) into ``out_dir``.

    Writes ``train/x`` + ``train/labels`` (``n_images`` volumes) and ``test/x`` +
    ``test/labels`` (``n_test`` volumes), then the manifest. The Y domain (real microscopy)
    is the user's.

    Args:
        out_dir: Dataset root; created if missing, must be empty unless ``force``.
        params: :class:`EllipsoidParams` (default: the paper's 256^3 setting).
        seed: Makes the dataset reproducible byte for byte, >= 0.
        progress: Show a progress bar (stderr).
        force: Write into a non-empty folder (stale images there are removed).
        **overrides: Fields of :class:`EllipsoidParams` to change; ``None`` values are ignored.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).
    """
    unknown = set(overrides) - set(EllipsoidParams.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown ellipsoid parameters {sorted(unknown)}")
    params = (EllipsoidParams() if params is None else params).replace(**overrides)
    image_rng(seed, "ellipsoids", "train", "x", 0)
    root = prepare_output_dir(out_dir, force=force)

    def job(split: str, index: int) -> Callable[[], dict[str, np.ndarray]]:
        def make() -> dict[str, np.ndarray]:
            volume, labels = make_ellipsoid_volume(
                params, rng=image_rng(seed, "ellipsoids", split, "x", index)
            )
            return {f"{split}_x": volume, f"{split}_labels": labels}

        return make

    jobs = [("train", i, job("train", i)) for i in range(params.n_images)]
    jobs += [("test", i, job("test", i)) for i in range(params.n_test)]
    _write_all(root, jobs, progress, "ellipsoids")
    counts = {
        "train_x": params.n_images,
        "train_labels": params.n_images,
        "test_x": params.n_test,
        "test_labels": params.n_test,
    }
    manifest = _manifest("ellipsoids", params.as_dict(), seed, counts)
    write_json(root / MANIFEST, manifest)
    return manifest
