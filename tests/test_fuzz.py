"""Fuzz the engine's arguments: every valid combination works (an identity generator gives the
input back), every invalid one fails with a clear ValueError, and which is which follows the
documented rules (:func:`satikit.stitching.stitch`, :meth:`satikit.stitching.grid.TileGrid.create`).
Fuzz ``satikit translate`` the same way over its options and inputs (dtypes, value ranges,
shapes, file types): a complete output, or one line and nothing left behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from satikit.stitching import stitch

DTYPES = [np.float32, np.float64, np.uint8, np.int16, np.uint16]
STRATEGIES = ("none", "simple", "weighted", "sati")


def _per_dim(value, ndim: int) -> list[int] | None:
    """An int or per-dim list broadcast to ``ndim`` ints (None: the wrong number of entries)."""
    values = [value] * ndim if isinstance(value, int) else list(value)
    return values if len(values) == ndim else None


def valid(shape, strategy, order, window, batch_size, tile, overlap) -> bool:
    """Whether ``stitch`` must accept these arguments: at least one spatial dim; a known
    strategy, order and window; batch size >= 1; and for the tiled strategies a non-empty image,
    a tile and an overlap per dim (or one for all) with 1 <= tile, 0 <= overlap < tile, and for
    SATI tile > 2 x overlap."""
    if len(shape) < 1 or strategy not in STRATEGIES or batch_size < 1:
        return False
    if order not in ("auto", "raster", "wavefront") or window not in ("gaussian", "pyramid"):
        return False
    if strategy == "none":
        return True
    tiles, overlaps = _per_dim(tile, len(shape)), _per_dim(overlap, len(shape))
    if tiles is None or overlaps is None or min(shape) < 1:
        return False
    limit = 2 if strategy == "sati" else 1
    return all(t >= 1 and 0 <= o and limit * o < t for t, o in zip(tiles, overlaps))


@settings(max_examples=150)
@given(
    ndim=st.integers(0, 3),
    data=st.data(),
    strategy=st.sampled_from(["none", "simple", "weighted", "sati", "other"]),
    order=st.sampled_from(["auto", "raster", "wavefront", "diagonal"]),
    window=st.sampled_from(["gaussian", "pyramid", "box"]),
    batch_size=st.integers(-1, 5),
    dtype=st.sampled_from(DTYPES),
    channels=st.integers(1, 3),
)
def test_engine_accepts_exactly_the_valid_arguments(
    ndim, data, strategy, order, window, batch_size, dtype, channels
):
    shape = tuple(data.draw(st.integers(0, 24)) for _ in range(ndim))
    tile = data.draw(
        st.one_of(st.integers(-2, 20), st.lists(st.integers(-1, 20), min_size=1, max_size=3))
    )
    overlap = data.draw(
        st.one_of(st.integers(-2, 20), st.lists(st.integers(-1, 20), min_size=1, max_size=3))
    )
    image = (np.random.default_rng(0).random((channels, *shape)) * 100).astype(dtype)
    try:
        result = stitch(
            image,
            lambda t: t,
            tile=tile,
            overlap=overlap,
            strategy=strategy,
            order=order,
            window=window,
            batch_size=batch_size,
        )  # type: ignore[arg-type]
    except ValueError as exc:
        assert str(exc)  # a message, raised by satikit's own checks
        assert not valid(shape, strategy, order, window, batch_size, tile, overlap), exc
        return
    assert valid(shape, strategy, order, window, batch_size, tile, overlap)
    np.testing.assert_array_equal(result, image.astype(np.float32))


@settings(max_examples=60)
@given(
    data=st.data(),
    shape=st.lists(st.integers(1, 30), min_size=1, max_size=3).map(tuple),
    strategy=st.sampled_from(STRATEGIES),
    order=st.sampled_from(["raster", "wavefront"]),
    window=st.sampled_from(["gaussian", "pyramid"]),
    batch_size=st.integers(1, 5),
    dtype=st.sampled_from(DTYPES),
)
def test_every_valid_combination_is_accepted(
    data, shape, strategy, order, window, batch_size, dtype
):
    """Drawn valid by construction (int or per-dim tiles, any overlap the rules allow), so a
    wrongly refused input cannot hide among the invalid ones."""
    tiles = [data.draw(st.integers(1, 20)) for _ in shape]
    limit = 2 if strategy == "sati" else 1
    overlaps = [data.draw(st.integers(0, (t - 1) // limit)) for t in tiles]
    per_dim = data.draw(st.booleans()) or len(set(tiles)) > 1 or len(set(overlaps)) > 1
    tile, overlap = (tiles, overlaps) if per_dim else (tiles[0], overlaps[0])
    assert valid(shape, strategy, order, window, batch_size, tile, overlap)
    image = (np.random.default_rng(1).random((2, *shape)) * 100).astype(dtype)
    result = stitch(
        image,
        lambda t: t,
        tile=tile,
        overlap=overlap,
        strategy=strategy,  # type: ignore[arg-type]
        order=order,  # type: ignore[arg-type]
        window=window,  # type: ignore[arg-type]
        batch_size=batch_size,
    )
    np.testing.assert_array_equal(result, image.astype(np.float32))


@pytest.mark.parametrize("strategy", ["none", "simple", "weighted", "sati"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_named_as_the_problem(strategy, bad):
    image = np.zeros((1, 20, 20), np.float32)
    image[0, 13, 7] = bad
    with pytest.raises(ValueError, match="image contains non-finite"):
        stitch(image, lambda t: t, tile=8, overlap=2, strategy=strategy)


# -- satikit translate: options and inputs ---------------------------------------------------
#: What the fuzzed run records: tile 32, overlap 8 (weighted; simple tiles side by side).
RUN_TILE, RUN_OVERLAP = 32, 8
GOOD_OUTPUTS = (".tif", ".tiff", ".npy", ".zarr", ".ome.tif", ".ome.zarr")


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory):
    """An untrained RGB CycleGAN (the tiny test options) saved as a run: weighted, tile 32,
    overlap 8, trained on uint8 images."""
    from satikit_cyclegan.plugin import TEST_OPTIONS

    from satikit.checkpoint import load_config, save_as_run
    from satikit.plugins import create_adapter

    adapter = create_adapter("cyclegan", dims=2, in_channels=3, out_channels=3, **TEST_OPTIONS)
    run = save_as_run(adapter, tmp_path_factory.mktemp("fuzz") / "run", in_channels=3,
                      out_channels=3, crop=16)  # fmt: skip
    settings = load_config(run).run_inference
    assert (settings.tile, settings.overlap) == ((RUN_TILE,) * 2, (RUN_OVERLAP,) * 2)
    return run


def _mostly(good, *bad, one_in: int = 8):
    """``good`` (or one of several), but about one draw in ``one_in`` one of ``bad``."""
    good = good if isinstance(good, list) else [good]
    return st.sampled_from([*good * max(1, (one_in - 1) * len(bad) // len(good)), *bad])


@st.composite
def translations(draw):
    """An input image (dtype, values, shape, file type), an output path and options, each
    mostly valid so that the valid combinations are drawn often."""
    dtype = draw(_mostly("uint8", "uint16", "int16", "float32", "float64", "bool", one_in=2))
    case = {
        "dtype": dtype,
        "values": draw(_mostly("0,1", "0,1000", "-1,1", "constant", one_in=3)),
        "spatial": (draw(st.integers(1, 40)), draw(st.integers(1, 40))),
        "layout": draw(_mostly("rgb", "grey", "one", "rgba", "volume")),
        "source": draw(st.sampled_from([".tif", ".npy"])),
        "target": draw(_mostly(list(GOOD_OUTPUTS), ".png", "", ".jpg")),
        "missing_folder": draw(_mostly(False, True)),
        "quiet": draw(st.booleans()),
    }
    sizes = _mostly([8, 12, 16, 24, 32, 40], *range(1, 41), one_in=3)
    options = {
        "strategy": st.sampled_from(["none", "simple", "weighted", "sati"]),
        "tile": sizes,
        "overlap": st.integers(0, 20),
        "margin": st.integers(0, 6),
        "input-range": _mostly(["auto", "0,1000", "0,1"], "5,1", "a,b", one_in=4),
        "norm": st.sampled_from(["tile", "thumbnail", "kernel"]),
        "seam": st.sampled_from(["middle", "start"]),
        "batch-size": st.integers(1, 3),
    }
    case["options"] = {
        name: draw(values) for name, values in options.items() if draw(st.integers(0, 2)) == 0
    }
    return case


def _image(case) -> np.ndarray:
    h, w = case["spatial"]
    shape = {"rgb": (h, w, 3), "grey": (h, w), "one": (h, w, 1), "rgba": (h, w, 4),
             "volume": (4, h, w, 3)}[case["layout"]]  # fmt: skip
    rng = np.random.default_rng(0)
    dtype = np.dtype(case["dtype"])
    if case["values"] == "constant":
        return np.zeros(shape, dtype)
    if dtype.kind == "f":
        low, high = map(float, case["values"].split(","))
        return (low + rng.random(shape) * (high - low)).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) > 0.5
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def _expected_errors(case, image: np.ndarray) -> list[str] | None:
    """What ``satikit translate`` must say, in the order it checks (the option, the output
    path, the input's layout and values, the settings, the network's sizes): one of these
    substrings, or None where it must succeed."""
    from satikit.stitching.thumbnail import thumbnail_shape

    given = case["options"]
    value_range = given.get("input-range")
    if value_range in ("5,1", "a,b"):
        return ["Invalid value for '--input-range'"]
    if case["target"] not in GOOD_OUTPUTS:
        return ["unsupported output type"]
    if case["missing_folder"]:
        return ["does not exist"]
    if case["layout"] == "volume":
        return ["expected 2 spatial axes"]
    if case["layout"] != "rgb":
        return ["channels; the run was trained on 3"]
    kind, low, high = image.dtype.kind, float(image.min()), float(image.max())
    if value_range is None and not (
        image.dtype == np.uint8 or (kind == "f" and 0 <= low <= high <= 1)
    ):
        return ["--input-range LO,HI"]
    if value_range == "auto" and low == high:
        return ["found only the value"]
    strategy, norm = given.get("strategy", "weighted"), given.get("norm", "tile")
    if strategy == "none":
        if norm != "tile":
            return ["shares statistics between tiles"]
        padded = [-(-s // 4) * 4 for s in case["spatial"]]
        return ["ResnetGenerator needs"] if min(padded) < 8 else None
    tile = given.get("tile", RUN_TILE)
    overlap = given.get("overlap", 0 if strategy == "simple" else RUN_OVERLAP)
    margin = given.get("margin", 0)
    if overlap >= tile:
        return ["overlap must be smaller than the tile"]
    if margin and strategy != "sati":
        return ["margin is a SATI setting"]
    if strategy == "sati" and 2 * (overlap + margin) >= tile:
        return ["SATI needs tile > 2 x"]
    network = []
    if norm == "thumbnail" and min(thumbnail_shape(case["spatial"], 0.25, 4)) < 8:
        network.append("thumbnail (scale 0.25): ResnetGenerator needs")
    if tile % 4 or tile < 8:
        network.append("ResnetGenerator needs")
    return network or None


def _read_output(path: Path) -> np.ndarray:
    import tifffile
    import zarr

    if path.name.endswith(".ome.zarr"):
        return np.asarray(zarr.open_group(str(path), mode="r")["0"])
    if path.suffix == ".zarr":
        return np.asarray(zarr.open_array(str(path), mode="r"))
    if path.suffix == ".npy":
        return np.load(path)
    return tifffile.imread(path)


@settings(max_examples=150, deadline=None)
@given(case=translations())
def test_translate_succeeds_completely_or_fails_with_one_line(fuzz_run, case):
    """Every combination either writes a complete output (readable, the input's size in RGB
    uint8) or fails with one line naming the problem and leaves nothing behind; which one,
    and why, follows the documented rules."""
    import tifffile
    from click.testing import CliRunner

    from satikit.cli import cli

    image = _image(case)
    expected = _expected_errors(case, image)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "out"
        folder.mkdir()
        source = Path(tmp) / f"in{case['source']}"
        if case["source"] == ".npy":
            np.save(source, image)
        else:
            rgb = image.shape[-1] == 3 and image.ndim > 2
            tifffile.imwrite(source, image, photometric="rgb" if rgb else "minisblack")
        target = (folder / "missing" if case["missing_folder"] else folder) / f"out{case['target']}"
        args = ["translate", str(fuzz_run), str(source), str(target), "--device", "cpu"]
        for name, value in case["options"].items():
            args += [f"--{name}", str(value)]
        result = CliRunner().invoke(cli, [*args, *(["--quiet"] if case["quiet"] else [])])
        left = sorted(p.name for p in folder.iterdir() if p.name != target.name)
        event("translated" if result.exit_code == 0 else f"refused: {(expected or ['?'])[0]}")
        if result.exit_code == 0:
            assert expected is None, (expected, result.output)
            output = _read_output(target)
            assert output.dtype == np.uint8 and sorted(output.shape) == sorted(
                (*case["spatial"], 3)
            )
            assert left == [], left  # no partial or sidecar file left
            assert ("strategy " in result.output) is not case["quiet"], result.output
            return
    assert isinstance(result.exception, SystemExit), result.output  # no traceback
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert expected is not None and any(text in errors[0] for text in expected), (expected, errors)
    assert not target.exists() and left == [], left
    assert ".partial" not in errors[0] and f"/.{target.name}" not in errors[0]
