"""Tests of ``satikit dataset`` and ``satikit evaluate`` through the root CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from satikit.cli import cli
from satikit.data import list_images, read_image, write_image
from satikit.io.atomic import read_json

SMALL = "--preset small --size 64 --count 12 --n-images 2 --n-test 2 --no-progress".split()
# 3D circles, one training volume per domain; the tests add --n-test
SMALL_3D = "--dims 3 --preset small --size 24 --count 10 --diameter 6 --n-images 1".split()


def run(*args: str) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "ds"
    result = run("dataset", "circles", out, *SMALL)
    assert result.exit_code == 0, result.output
    return out


def test_dataset_circles_writes_the_layout(dataset_dir: Path) -> None:
    manifest = read_json(dataset_dir / "manifest.json")
    assert manifest["params"] == {
        "size": 64,
        "count": 12,
        "diameter": 10,
        "noise_sigma": 58.0,
        "n_images": 2,
        "n_test": 2,
        "dims": 2,
    }
    for folder in ("train/x", "train/y", "train/labels", "test/x", "test/labels"):
        assert len(list_images(dataset_dir / folder)) == 2
    assert read_image(dataset_dir / "test/x/00001.tif").shape == (64, 64, 3)


def test_dataset_refuses_non_empty_dir_unless_force(dataset_dir: Path) -> None:
    result = run("dataset", "circles", dataset_dir, *SMALL)
    assert result.exit_code == 1
    assert "not empty" in result.output and "--force" in result.output
    result = run("dataset", "circles", dataset_dir, *SMALL, "--force", "--seed", "0")
    assert result.exit_code == 0, result.output


def test_dataset_seed_is_reproducible(tmp_path: Path, dataset_dir: Path) -> None:
    assert run("dataset", "circles", tmp_path / "again", *SMALL).exit_code == 0
    for name in ("train/y/00001.tif", "test/labels/00000.tif"):
        assert (tmp_path / "again" / name).read_bytes() == (dataset_dir / name).read_bytes()


def test_dataset_circles_3d(tmp_path: Path) -> None:
    result = run("dataset", "circles", tmp_path, *SMALL_3D, "--n-test", "1", "--no-progress")
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "train/x/00000.tif").shape == (24, 24, 24, 3)


def test_dataset_circles_density_gradient(tmp_path: Path) -> None:
    args = ["--preset", "density-gradient", "--size", "64", "--count", "12", "--n-images", "1"]
    args += ["--n-test", "1", "--no-progress", "--density-gradient", "0.5"]
    result = run("dataset", "circles", tmp_path / "g", *args)
    assert result.exit_code == 0, result.output
    assert read_json(tmp_path / "g" / "manifest.json")["params"]["density_gradient"] == 0.5
    bad = run("dataset", "circles", tmp_path / "b", *args[:-1], "1.0")
    assert bad.exit_code == 2 and "density-gradient" in bad.output


def test_dataset_rejects_bad_parameters(tmp_path: Path) -> None:
    result = run("dataset", "circles", tmp_path / "a", "--size", "8", "--diameter", "10")
    assert result.exit_code == 2 and "exceeds" in result.output
    result = run(
        "dataset",
        "circles",
        tmp_path / "b",
        "--preset",
        "small",
        "--size",
        "32",
        "--count",
        "400",
        "--n-images",
        "1",
        "--n-test",
        "0",
        "--no-progress",
    )
    assert result.exit_code == 1 and "could place only" in result.output


def test_dataset_ellipsoids(tmp_path: Path) -> None:
    result = run(
        "dataset",
        "ellipsoids",
        tmp_path,
        "--size",
        "32",
        "--count",
        "6",
        "--semi-axes",
        "3",
        "5",
        "--n-images",
        "1",
        "--n-test",
        "1",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    volume = read_image(tmp_path / "train/x/00000.tif")
    assert volume.shape == (32, 32, 32) and volume.dtype == np.uint8
    assert read_json(tmp_path / "manifest.json")["params"]["semi_axes"] == [3.0, 5.0]


def test_evaluate_ground_truth_is_zero(dataset_dir: Path, tmp_path: Path) -> None:
    result = run(
        "evaluate",
        dataset_dir / "train/y",
        dataset_dir / "train/y_labels",
        "--no-progress",
        "--png",
        tmp_path / "png",
    )
    assert result.exit_code == 0, result.output
    assert "00000.tif" in result.output and "total" in result.output
    report = json.loads((dataset_dir / "train/y/evaluation.json").read_text())
    assert report["total"] == {
        "n_images": 2,
        "n_objects": 24,
        "n_errors": 0,
        "error_rate": 0.0,
        "n_no_colour": 0,
        "n_multi_colour": 0,
    }
    assert report["settings"]["diameter"] == 10.0  # read from the manifest
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == ["00000.png", "00001.png"]
    assert np.asarray(Image.open(tmp_path / "png/00000.png")).shape == (64, 64, 3)


def test_evaluate_counts_errors_and_marks_them(dataset_dir: Path, tmp_path: Path) -> None:
    preds = tmp_path / "preds"
    preds.mkdir()
    for path in list_images(dataset_dir / "test/x"):  # white X circles: all three colours
        write_image(preds / path.name, read_image(path))
    result = run(
        "evaluate",
        preds,
        dataset_dir / "test/labels",
        "--json",
        tmp_path / "r.json",
        "--png",
        tmp_path / "png",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "r.json")
    assert report["total"]["n_errors"] == report["total"]["n_objects"] == 24
    assert report["images"][0]["error_ids"] == list(range(1, 13))
    picture = np.asarray(Image.open(tmp_path / "png/00000.png"))
    assert (picture == 255).all(axis=-1).sum() > 0  # white rings drawn
    assert "100.00%" in result.output


def test_evaluate_3d(tmp_path: Path) -> None:
    run("dataset", "circles", tmp_path / "ds", *SMALL_3D, "--n-test", "0", "--no-progress")
    result = run(
        "evaluate",
        tmp_path / "ds/train/y",
        tmp_path / "ds/train/y_labels",
        "--png",
        tmp_path / "png",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert read_json(tmp_path / "ds/train/y/evaluation.json")["total"]["n_errors"] == 0
    assert np.asarray(Image.open(tmp_path / "png/00000.png")).shape == (24, 24, 3)


def test_evaluate_pairs_by_name(dataset_dir: Path, tmp_path: Path) -> None:
    preds = tmp_path / "preds"
    preds.mkdir()
    write_image(preds / "00001.tif", read_image(dataset_dir / "train/y/00001.tif"))
    write_image(preds / "extra.tif", read_image(dataset_dir / "train/y/00000.tif"))
    result = CliRunner().invoke(
        cli, ["evaluate", str(preds), str(dataset_dir / "train/y_labels"), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    report = read_json(preds / "evaluation.json")
    assert [r["name"] for r in report["images"]] == ["00001.tif"]
    assert report["unmatched"] == {"predictions": ["extra"], "labels": ["00000"]}
    assert "without a partner" in result.output


def test_evaluate_errors(dataset_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("evaluate", empty, dataset_dir / "test/labels")
    assert result.exit_code == 1 and "no file name" in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    write_image(bad / "00000.tif", np.zeros((32, 32, 3), np.uint8))
    result = run("evaluate", bad, dataset_dir / "test/labels", "--no-progress")
    assert result.exit_code == 1 and "00000.tif" in result.output and "differs" in result.output
