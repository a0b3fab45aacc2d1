"""Write benchmark datasets to disk in the one layout every satikit command reads.

Layout::

    OUT/manifest.json       parameters, seed, counts, satikit version, layout (written last)
    OUT/train/x/00000.tif   domain X images, (*spatial, 3) uint8   [ellipsoids: (*spatial) uint8]
    OUT/train/labels/       instance labels of train/x, (*spatial) uint16 / uint32
    OUT/train/y/            domain Y images (circles only), independent draws from X
    OUT/train/y_labels/     instance labels of train/y (circles only; to check the metric)
    OUT/test/x/             held-out X images, drawn apart from every training image
    OUT/test/labels/        their instance labels (what ``satikit evaluate`` compares against)
    OUT/test/y_true/        textured / restain: the true Y of each test/x image (no labels)
    OUT/mosaic/x/           restain: a larger mosaic of the test part
    OUT/mosaic/y_true/      restain: its true Y

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
from satikit.data.circles import make_circle_image
from satikit.data.ellipsoids import EllipsoidParams, make_ellipsoid_volume
from satikit.data.presets import CirclePreset, get_preset
from satikit.data.restain import (
    STAIN_MAPS,
    Source,
    load_source,
    mirror_mosaic,
    restain,
    split_geometry,
    stain_matrices,
)
from satikit.data.textured import (
    INTENSITY_COLOURS,
    TexturedParams,
    colour_by_intensity,
    make_textured_image,
)
from satikit.io.atomic import write_json
from satikit.io.images import IMAGE_SUFFIXES, write_image

__all__ = [
    "LAYOUT",
    "MANIFEST",
    "TRUTH_KINDS",
    "image_name",
    "image_rng",
    "make_circle_dataset",
    "make_ellipsoid_dataset",
    "make_restain_dataset",
    "make_textured_dataset",
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
    "test_y_true": "test/y_true",
    "mosaic_x": "mosaic/x",
    "mosaic_y_true": "mosaic/y_true",
}
#: File name of the dataset manifest in the dataset root.
MANIFEST = "manifest.json"

_SPLITS = {"train": 0, "test": 1}
_DOMAINS = {"x": 0, "y": 1}
_KINDS = {"circles": 0, "ellipsoids": 1, "textured": 2, "restain": 3}
#: Dataset kinds whose test images come with their true Y (scored by ``satikit evaluate``
#: against it rather than by the colour error).
TRUTH_KINDS: tuple[str, ...] = ("textured", "restain")
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
        kind: ``"circles"``, ``"ellipsoids"``, ``"textured"`` or ``"restain"``.
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


_PLACEMENT = (
    "uniform random centres; no two objects share a pixel (touching allowed); clipped at the "
    "image border"
)


def _manifest(
    kind: str,
    params: dict[str, Any],
    seed: int,
    counts: dict[str, int],
    placement: str = _PLACEMENT,
    **extra: Any,
) -> dict:
    return {
        "kind": kind,
        "satikit_version": satikit.__version__,
        "seed": int(seed),
        "params": params,
        "counts": counts,
        "layout": {key: LAYOUT[key] for key in counts},
        "placement": placement,
        **extra,
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


def make_textured_dataset(
    out_dir: str | os.PathLike[str],
    params: TexturedParams | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    force: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Generate the ``textured`` data (:mod:`satikit.data.textured`) into ``out_dir``.

    Writes ``n_images`` X and ``n_images`` Y training images (independent draws: every Y is the
    colour map of an X image of its own, never written), ``n_test`` held-out X test images and
    their true Y (``test/y_true``), then the manifest.

    Args:
        out_dir: Dataset root; created if missing, must be empty unless ``force``.
        params: :class:`TexturedParams` (default: 512 px images for 128 px tiles, 48 + 8).
        seed: Makes the dataset reproducible byte for byte, >= 0.
        progress: Show a progress bar (stderr).
        force: Write into a non-empty folder (stale images there are removed).
        **overrides: Fields of :class:`TexturedParams` to change; ``None`` values are ignored.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).
    """
    unknown = set(overrides) - set(TexturedParams.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown textured parameters {sorted(unknown)}")
    params = (TexturedParams() if params is None else params).replace(**overrides)
    image_rng(seed, "textured", "train", "x", 0)
    root = prepare_output_dir(out_dir, force=force)

    def job(split: str, domain: str, index: int) -> Callable[[], dict[str, np.ndarray]]:
        def make() -> dict[str, np.ndarray]:
            image = make_textured_image(params, image_rng(seed, "textured", split, domain, index))
            if split == "test":
                return {"test_x": image, "test_y_true": colour_by_intensity(image)}
            return {f"train_{domain}": image if domain == "x" else colour_by_intensity(image)}

        return make

    jobs = [("train", i, job("train", d, i)) for d in ("x", "y") for i in range(params.n_images)]
    jobs += [("test", i, job("test", "x", i)) for i in range(params.n_test)]
    _write_all(root, jobs, progress, "textured")
    counts = {
        "train_x": params.n_images,
        "train_y": params.n_images,
        "test_x": params.n_test,
        "test_y_true": params.n_test,
    }
    manifest = _manifest(
        "textured",
        params.as_dict(),
        seed,
        counts,
        placement="disc clusters: uniform random centres, Poisson discs per cluster at Gaussian "
        "offsets, overlaps keep the darker disc",
        y_map={
            "intensity": "(r + g + b + 1) // 3 of the X pixel",
            "anchors": [[v, list(c)] for v, c in INTENSITY_COLOURS],
            "interpolation": "linear between anchors, rounded",
        },
    )
    write_json(root / MANIFEST, manifest)
    return manifest


def _crops(
    region: tuple[int, int, int, int], crop: int, count: int, seed: int, domain: str
) -> list[tuple[int, int]]:
    """``count`` random ``crop`` px boxes inside ``region``: their top-left corners."""
    top, left, height, width = region
    corners = []
    for index in range(count):
        rng = image_rng(seed, "restain", "train", domain, index)
        row, col = rng.integers(0, [height - crop + 1, width - crop + 1])
        corners.append((top + int(row), left + int(col)))
    return corners


def make_restain_dataset(
    out_dir: str | os.PathLike[str],
    source: str | os.PathLike[str] | Source | None = None,
    *,
    box: tuple[int, int, int, int] | None = None,
    crop: int = 128,
    n_images: int = 48,
    test_fraction: float = 0.5,
    mosaic: int = 2,
    tile: int = 128,
    stain_map: str = "dab-to-eosin",
    seed: int = 0,
    progress: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Generate the ``restain`` task (:mod:`satikit.data.restain`) into ``out_dir``.

    Writes ``n_images`` X crops (``train/x``, from the left half of the training rows) and
    ``n_images`` Y crops (``train/y``: the re-stained image, from the right half), the test part
    (``test/x``) and its true Y (``test/y_true``), the mirrored mosaic of the test part
    (``mosaic/x``, ``mosaic/y_true``), then the manifest (source with its SHA-256, stain map,
    split geometry and every crop's corner).

    Args:
        out_dir: Dataset root; created if missing, must be empty unless ``force``.
        source: A bundled image name or an RGB image file (see
            :func:`~satikit.data.restain.load_source`), or a
            :class:`~satikit.data.restain.Source` already loaded; default: the bundled
            immunohistochemistry slide.
        box: ``(top, left, height, width)`` part of the source to use (default: the bundled
            image's own box, else all of it); not with a loaded ``source``.
        crop: Edge length of the training crops, px.
        n_images: Training crops per domain.
        test_fraction: Share of the rows, at the bottom, kept for testing.
        mosaic: The mosaic holds ``mosaic x mosaic`` mirrored copies of the test part.
        tile: Inference tile (px) the task is meant for; recorded for ``satikit evaluate``.
        stain_map: A name of :data:`~satikit.data.restain.STAIN_MAPS`.
        seed: Makes the crops reproducible, >= 0.
        progress: Show a progress bar (stderr).
        force: Write into a non-empty folder (stale images there are removed).

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        FileNotFoundError: An unknown source.
        ValueError: A grey or non-RGB source, a bad box, an unknown stain map, or a source too
            small for the crops.
        FileExistsError: If ``out_dir`` is not empty and ``force`` is False.
    """
    if stain_map not in STAIN_MAPS:
        raise ValueError(f"no stain map {stain_map!r}; known: {', '.join(STAIN_MAPS)}")
    for name, value, low in (("n_images", n_images, 0), ("mosaic", mosaic, 1), ("tile", tile, 1)):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    image_rng(seed, "restain", "train", "x", 0)
    if isinstance(source, Source):
        if box is not None:
            raise ValueError("box applies to a source still to load, not to a loaded Source")
        loaded = source
    else:
        loaded = load_source(source, box)
    geometry = split_geometry(loaded.image.shape[:2], crop, test_fraction)
    root = prepare_output_dir(out_dir, force=force)
    truth = restain(loaded.image, stain_map)
    corners = {d: _crops(getattr(geometry, f"train_{d}"), crop, n_images, seed, d) for d in "xy"}

    def cut(image: np.ndarray, region: tuple[int, ...]) -> np.ndarray:
        top, left, height, width = region
        return np.ascontiguousarray(image[top : top + height, left : left + width])

    def train_job(domain: str, index: int) -> Callable[[], dict[str, np.ndarray]]:
        image = loaded.image if domain == "x" else truth
        return lambda: {f"train_{domain}": cut(image, (*corners[domain][index], crop, crop))}

    def test_job() -> dict[str, np.ndarray]:
        return {
            "test_x": cut(loaded.image, geometry.test),
            "test_y_true": cut(truth, geometry.test),
        }

    def mosaic_job() -> dict[str, np.ndarray]:
        return {
            "mosaic_x": mirror_mosaic(cut(loaded.image, geometry.test), mosaic),
            "mosaic_y_true": mirror_mosaic(cut(truth, geometry.test), mosaic),
        }

    jobs = [("train", i, train_job(d, i)) for d in ("x", "y") for i in range(n_images)]
    jobs += [("test", 0, test_job), ("mosaic", 0, mosaic_job)]
    _write_all(root, jobs, progress, "restain")
    counts = {
        "train_x": n_images,
        "train_y": n_images,
        "test_x": 1,
        "test_y_true": 1,
        "mosaic_x": 1,
        "mosaic_y_true": 1,
    }
    separate, combine = stain_matrices(stain_map)
    params = {
        "crop": int(crop),
        "n_images": int(n_images),
        "test_fraction": float(test_fraction),
        "mosaic": int(mosaic),
        "tile": int(tile),
        "stain_map": stain_map,
    }
    test_h, test_w = geometry.test[2:]
    manifest = _manifest(
        "restain",
        params,
        seed,
        counts,
        placement="train/x: crops of the left half of the training rows; train/y: crops of the "
        "re-stained right half; test: the bottom rows, kept apart; mosaic: the test part "
        "mirrored",
        source=loaded.describe(),
        stain_map={
            "name": stain_map,
            "recipe": "rint(255 * skimage.color.combine_stains("
            "skimage.color.separate_stains(x, separate), combine)), pixel by pixel",
            "separate": separate.tolist(),
            "combine": combine.tolist(),
        },
        geometry={
            "frame": "boxes (top, left, height, width) and corners (top, left) in the source "
            "box's pixels",
            **geometry.as_dict(),
            "train_x_corners": [list(c) for c in corners["x"]],
            "train_y_corners": [list(c) for c in corners["y"]],
            "mosaic_shape": [mosaic * test_h, mosaic * test_w],
        },
    )
    write_json(root / MANIFEST, manifest)
    return manifest
