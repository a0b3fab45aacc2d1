"""Viewer-ready outputs: pyramidal OME-TIFF and OME-Zarr, OME inputs, metadata, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import satikit.io.ome.ngff
import satikit.io.ome.tiff
import satikit.stitching.resume as resume_module
import satikit.translation.translate
from satikit.cli import cli
from satikit.io.arrays import ChannelFirst, partial_files
from satikit.io.images import write_image
from satikit.io.ome import (
    AxesView,
    ImageMetadata,
    PyramidOptions,
    downsample_yx,
    level_shapes,
    read_metadata,
    viewer_output,
)
from satikit.io.reading import open_array
from satikit.stitching import stitch

TINY = "-o ngf 4 -o n_blocks 1 -o ndf 4 -o n_layers 1 -o pool_size 2".split()
UM = "micrometer"


def smooth_rgb(height: int, width: int) -> np.ndarray:
    """A deterministic uint8 RGB image with structure (compresses fast, unlike noise)."""
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    channels = [np.sin(y / 37) * np.cos(x / 23), np.sin((x + y) / 51), np.cos((x - y) / 19)]
    return np.stack([(127.5 + 127.5 * c).astype(np.uint8) for c in channels], axis=-1)


def write_ngff(path: Path, data: np.ndarray, axes: list[dict], scale: list[float], labels=None):
    """An NGFF 0.4 image of one level, written by hand with zarr (not by satikit)."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("s0", data=data, chunks=data.shape)
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [
                {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
            ],
        }
    ]
    if labels is not None:
        group.attrs["omero"] = {"channels": [{"label": label} for label in labels]}


def ngff_levels(path: Path) -> tuple[dict, list[np.ndarray]]:
    """The group attributes and every level of an OME-Zarr, read with zarr alone."""
    group = zarr.open_group(str(path), mode="r")
    attrs = dict(group.attrs)
    paths = [d["path"] for d in attrs["multiscales"][0]["datasets"]]
    return attrs, [np.asarray(group[p][...]) for p in paths]


def tiff_levels(path: Path) -> list[np.ndarray]:
    with tifffile.TiffFile(path) as tif:
        return [level.asarray() for level in tif.series[0].levels]


# --- the pyramid rule --------------------------------------------------------------------------


def test_downsample_yx_is_a_rounded_two_by_two_mean_with_odd_edges():
    block = np.array([[0, 1, 10], [2, 3, 20], [100, 101, 255]], np.uint8)
    np.testing.assert_array_equal(downsample_yx(block), [[2, 15], [101, 255]])  # 1.5 -> 2
    floats = block.astype(np.float32)
    np.testing.assert_allclose(downsample_yx(floats), [[1.5, 15], [100.5, 255]])
    volume = np.zeros((4, 5, 7, 3), np.uint16)
    assert downsample_yx(volume, 1).shape == (4, 3, 4, 3)
    assert level_shapes((4, 1000, 300, 3), 1, 256) == [
        (4, 1000, 300, 3),
        (4, 500, 150, 3),
        (4, 250, 75, 3),
    ]
    assert level_shapes((100, 80), 0, 256) == [(100, 80)]


@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 9), st.integers(1, 9)),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_downsample_yx_halves_rounding_up_and_stays_in_range(shape, dtype, seed):
    block = np.random.default_rng(seed).integers(-50 if dtype == np.int16 else 0, 255, shape)
    block = block.astype(dtype)
    half = downsample_yx(block, 1)
    assert half.dtype == block.dtype
    assert half.shape == (shape[0], -(-shape[1] // 2), -(-shape[2] // 2))
    assert block.min() <= half.min() and half.max() <= block.max()
    np.testing.assert_array_equal(downsample_yx(np.full_like(block, 7), 1), np.full_like(half, 7))


@given(order=st.permutations(["c", "z", "y", "x", "t"]), key=st.integers(0, 3))
def test_axes_view_reads_any_stored_order_as_spatial_then_channels(order, key):
    sizes = {"c": 2, "z": 3, "y": 4, "x": 5, "t": 1}
    stored = np.arange(120).reshape([sizes[a] for a in order])
    view = AxesView(stored, order, "test")
    expected = np.transpose(stored, [order.index(a) for a in "zyxct"])[..., 0]  # (z, y, x, c)
    assert view.shape == expected.shape == (3, 4, 5, 2)
    np.testing.assert_array_equal(view[...], expected)
    np.testing.assert_array_equal(view[key % 3, 1:3, :, 1], expected[key % 3, 1:3, :, 1])


# --- OME-TIFF ------------------------------------------------------------------------------------


def test_ome_tiff_of_a_4096_square_translation_is_a_tiled_pyramid(tmp_path):
    image = smooth_rgb(4096, 4096)
    src, dst = tmp_path / "in.tif", tmp_path / "out.ome.tif"
    tifffile.imwrite(src, image, photometric="rgb")
    fast = PyramidOptions(compression="none")  # zlib: see the layouts below
    decoded = lambda block: block.astype(np.uint8)  # noqa: E731
    with viewer_output(dst, (3, 4096, 4096), np.uint8, transform=decoded, options=fast) as out:
        view = ChannelFirst(open_array(src), channel_last=True)
        stitch(view, lambda t: t, tile=1024, overlap=64, strategy="simple", batch_size=4, out=out)
        assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.ome.tif"]
    with tifffile.TiffFile(dst) as tif:
        assert tif.is_ome
        levels = tif.series[0].levels
        assert [level.shape for level in levels] == [(4096 >> k, 4096 >> k, 3) for k in range(5)]
        for level in levels:
            page = level.pages[0]
            assert page.is_tiled and (page.tilelength, page.tilewidth) == (256, 256)
            assert page.compression == tifffile.COMPRESSION.NONE
        assert levels[1].pages[0].subfiletype == 1  # a reduced image in the sub-IFDs
        np.testing.assert_array_equal(levels[0].asarray(), image)
        np.testing.assert_array_equal(
            levels[1].asarray()[:64, :64], downsample_yx(image[:128, :128])
        )


@pytest.mark.parametrize(
    "shape,dtype,axes",
    [
        ((6, 90, 70, 3), np.uint8, "ZYXS"),  # RGB volume
        ((90, 70, 2), np.uint16, "CYX"),  # two named channels, one page each
        ((5, 90, 70), np.uint8, "ZYX"),  # grey volume
    ],
)
def test_ome_tiff_layouts_metadata_and_reading_back(tmp_path, shape, dtype, axes):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 1000 if dtype == np.uint16 else 256, shape).astype(dtype)
    channel_last = axes in ("ZYXS", "CYX")
    channels = shape[-1] if channel_last else 1
    spatial = shape[:-1] if channel_last else shape
    sizes = {"y": (0.5, UM), "x": (0.25, UM)} | ({"z": (2.0, UM)} if len(spatial) == 3 else {})
    metadata = ImageMetadata(sizes, tuple(f"ch{i}" for i in range(channels)))
    dst = tmp_path / "out.ome.tiff"
    options = PyramidOptions(tile=32, compression="zlib")
    with viewer_output(dst, (channels, *spatial), dtype, metadata=metadata, options=options) as out:
        out[...] = np.moveaxis(image, -1, 0) if channel_last else image[None]
    with tifffile.TiffFile(dst) as tif:
        assert tif.is_ome and tif.series[0].axes == axes
        assert len(tif.series[0].levels) == 3  # 90 -> 45 -> 23 fits a 32 px tile
        pages = [level.pages[0] for level in tif.series[0].levels]
        assert all(
            p.is_tiled and p.compression == tifffile.COMPRESSION.ADOBE_DEFLATE for p in pages
        )
        xml = tif.ome_metadata
    assert 'PhysicalSizeX="0.25"' in xml and 'PhysicalSizeXUnit="µm"' in xml
    assert ('Name="ch1"' in xml) == (axes == "CYX")  # RGB: one OME channel of 3 samples
    back = open_array(dst)
    assert tuple(back.shape) == shape
    np.testing.assert_array_equal(np.asarray(back[...]), image)
    assert dict(read_metadata(dst).pixel_sizes) == sizes


# --- OME-Zarr ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spatial,channels,dtype",
    [((130, 100), 3, np.uint8), ((5, 70, 90), 1, np.uint8), ((4, 40, 66), 2, np.uint16)],
)
def test_ome_zarr_is_an_ngff_multiscale_image(tmp_path, spatial, channels, dtype):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, (channels, *spatial)).astype(dtype)
    sizes = {"y": (0.5, UM), "x": (0.5, UM)} | ({"z": (3.0, UM)} if len(spatial) == 3 else {})
    dst = tmp_path / "out.ome.zarr"
    with viewer_output(
        dst, data.shape, dtype, metadata=ImageMetadata(sizes), options=PyramidOptions(tile=32)
    ) as out:
        out[:, : spatial[0] // 2] = data[:, : spatial[0] // 2]
        out[:, spatial[0] // 2 :] = data[:, spatial[0] // 2 :]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.zarr"]
    attrs, levels = ngff_levels(dst)
    multiscale = attrs["multiscales"][0]
    names = ["c", *(["z"] if len(spatial) == 3 else []), "y", "x"]
    assert multiscale["version"] == "0.4"
    assert [a["name"] for a in multiscale["axes"]] == names
    assert [a["type"] for a in multiscale["axes"]] == ["channel"] + ["space"] * len(spatial)
    assert all(a.get("unit") == UM for a in multiscale["axes"][1:])
    assert len(levels) >= 2
    assert [level.shape for level in levels] == level_shapes(data.shape, len(spatial) - 1, 32)
    for k, dataset in enumerate(multiscale["datasets"]):
        (transform,) = dataset["coordinateTransformations"]
        expected = [1.0, *([3.0] if len(spatial) == 3 else []), 0.5 * 2**k, 0.5 * 2**k]
        assert transform == {"type": "scale", "scale": expected}
        zarray = json.loads((dst / dataset["path"] / ".zarray").read_text())
        assert zarray["zarr_format"] == 2 and zarray["dimension_separator"] == "/"
    assert len(attrs["omero"]["channels"]) == channels
    np.testing.assert_array_equal(levels[0], data)
    np.testing.assert_array_equal(levels[1], downsample_yx(data, len(spatial) - 1))
    back = open_array(dst)  # satikit's own layout: (*spatial[, C])
    expected_back = np.moveaxis(data, 0, -1) if channels > 1 else data[0]
    np.testing.assert_array_equal(np.asarray(back[...]), expected_back)


@pytest.mark.parametrize("spatial,channels", [((130, 100), 3), ((5, 70, 90), 1)])
def test_ome_zarr_output_is_read_by_ome_zarr_py_and_passes_its_schema(tmp_path, spatial, channels):
    """An outside check: ome-zarr-py's reader finds a multiscale image with >= 2 levels
    and the right axes, and ome-zarr-models validates it against the NGFF 0.4 image schema."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader
    from ome_zarr_models.v04.image import Image

    data = np.random.default_rng(3).integers(0, 256, (channels, *spatial)).astype(np.uint8)
    dst = tmp_path / "out.ome.zarr"
    sizes = {"y": (0.5, UM), "x": (0.5, UM)}
    with viewer_output(
        dst, data.shape, np.uint8, metadata=ImageMetadata(sizes), options=PyramidOptions(tile=32)
    ) as out:
        out[...] = data
    (node, *_) = Reader(parse_url(str(dst)))()
    assert any(isinstance(spec, Multiscales) for spec in node.specs)
    assert len(node.data) >= 2
    names = ["c", *(["z"] if len(spatial) == 3 else []), "y", "x"]
    assert [axis["name"] for axis in node.metadata["axes"]] == names
    assert [level.shape for level in node.data] == level_shapes(data.shape, len(spatial) - 1, 32)
    np.testing.assert_array_equal(np.asarray(node.data[0]), data)
    image = Image.from_zarr(zarr.open_group(str(dst), mode="r"))
    assert len(image.attributes.multiscales[0].datasets) == len(node.data)


def test_ome_zarr_inputs_of_other_layouts_and_their_metadata(tmp_path):
    data = np.random.default_rng(3).integers(0, 256, (1, 3, 20, 30), np.uint8)  # t c y x
    axes = [
        {"name": "t", "type": "time"},
        {"name": "c", "type": "channel"},
        {"name": "y", "type": "space", "unit": "nanometer"},
        {"name": "x", "type": "space", "unit": "nanometer"},
    ]
    write_ngff(tmp_path / "in.ome.zarr", data, axes, [1, 1, 80, 40], ["H", "E", "DAB"])
    image = open_array(tmp_path / "in.ome.zarr")
    assert tuple(image.shape) == (20, 30, 3)
    np.testing.assert_array_equal(
        np.asarray(image[5:9, 2:4]), np.moveaxis(data[0], 0, -1)[5:9, 2:4]
    )
    np.testing.assert_array_equal(np.asarray(image[3, :, 1]), data[0, 1, 3])
    metadata = read_metadata(tmp_path / "in.ome.zarr")
    assert metadata == ImageMetadata(
        {"y": (80.0, "nanometer"), "x": (40.0, "nanometer")}, ("H", "E", "DAB")
    )
    assert metadata.for_channels(1).channel_names is None


# --- the command line: format by suffix, metadata carried over, resume -------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ome")
    rng = np.random.default_rng(0)
    images = {
        "x/a.tif": rng.integers(0, 256, (32, 32, 3), np.uint8),
        "y/a.tif": rng.integers(0, 256, (32, 32, 3), np.uint8),
        "big.tif": rng.integers(0, 256, (200, 40, 3), np.uint8),
    }
    for name, image in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(root / name, image)
    big = images["big.tif"]
    tifffile.imwrite(  # the same pixels as an OME-TIFF of 3 named planes, 0.25 um pixels
        root / "planes.ome.tif",
        np.moveaxis(big, -1, 0),
        photometric="minisblack",
        metadata={
            "axes": "CYX",
            "PhysicalSizeX": 0.25,
            "PhysicalSizeY": 0.25,
            "Channel": {"Name": ["H", "E", "DAB"]},
        },
    )
    axes = [{"name": n, "type": t} for n, t in (("c", "channel"), ("y", "space"), ("x", "space"))]
    for axis in axes[1:]:
        axis["unit"] = "micrometer"
    write_ngff(root / "big.ome.zarr", np.moveaxis(big, -1, 0), axes, [1, 0.5, 0.5], "RGB")
    args = ["train", "--x", str(root / "x"), "--y", str(root / "y"), "--out", str(root / "run")]
    args += ["--steps", "1", "--crop", "16", "--device", "cpu", "--quiet", *TINY]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(cli, translate_args(root, "big.tif", root / "ref.tif")).exit_code == 0
    return root


def translate_args(root: Path, source: str, target: Path, *extra: str) -> list[str]:
    args = ["translate", str(root / "run"), str(root / source), str(target), "--device", "cpu"]
    return [*args, "--quiet", "--strategy", "sati", "--batch-size", "2", *extra]


def translate(root: Path, source: str, target: Path, *extra: str):
    return CliRunner().invoke(cli, translate_args(root, source, target, *extra))


def levels(path: Path) -> list[np.ndarray]:
    """Every level of an output, channel last (as satikit stores images)."""
    if path.name.endswith(".ome.zarr"):
        return [np.moveaxis(level, 0, -1) for level in ngff_levels(path)[1]]
    return tiff_levels(path)


@pytest.mark.parametrize("source", ["big.tif", "planes.ome.tif", "big.ome.zarr"])
@pytest.mark.parametrize("suffix", [".ome.tif", ".ome.zarr"])
def test_cli_writes_viewer_outputs_with_the_inputs_metadata(trained, tmp_path, source, suffix):
    target = tmp_path / f"out{suffix}"
    result = translate(trained, source, target, "--pyramid-tile", "32")
    assert result.exit_code == 0, result.output
    written = levels(target)
    assert len(written) == 4  # 200 x 40 -> 100 -> 50 -> 25 x 5
    np.testing.assert_array_equal(written[0], tifffile.imread(trained / "ref.tif"))
    np.testing.assert_array_equal(written[1], downsample_yx(written[0]))
    metadata = read_metadata(target)
    expected = {
        "big.tif": ImageMetadata(),
        "planes.ome.tif": ImageMetadata({"y": (0.25, UM), "x": (0.25, UM)}, ("H", "E", "DAB")),
        "big.ome.zarr": ImageMetadata({"y": (0.5, UM), "x": (0.5, UM)}, ("R", "G", "B")),
    }[source]
    assert metadata.pixel_sizes == expected.pixel_sizes
    if suffix == ".ome.zarr":  # an RGB OME-TIFF has one OME channel of 3 samples: no names
        assert metadata.channel_names == (expected.channel_names or ("red", "green", "blue"))


def interrupt_after(monkeypatch, saves: int) -> None:
    """Ctrl-C right after the ``saves``-th resume state is written."""
    real, calls = resume_module.Resumer.save, [0]

    def save(self, out, progress):
        real(self, out, progress)
        calls[0] += 1
        if calls[0] == saves:
            raise KeyboardInterrupt

    monkeypatch.setattr(resume_module.Resumer, "save", save)


@pytest.mark.parametrize("suffix", [".ome.tif", ".ome.zarr"])
def test_cli_resume_of_a_viewer_output_equals_one_translation(
    trained, tmp_path, monkeypatch, suffix
):
    reference, target = tmp_path / f"ref{suffix}", tmp_path / f"out{suffix}"
    extra = ("--pyramid-tile", "16", "--compression", "none")
    assert translate(trained, "planes.ome.tif", reference, *extra).exit_code == 0
    interrupt_after(monkeypatch, 2)  # in the full-resolution level
    result = translate(trained, "planes.ome.tif", target, *extra)
    assert result.exit_code == 1 and "--resume to continue" in result.output, result.output
    assert not target.exists() and partial_files(target).data.exists()
    monkeypatch.undo()
    result = translate(trained, "planes.ome.tif", target, "--resume")  # options as recorded
    assert result.exit_code == 0, result.output
    for resumed, expected in zip(levels(target), levels(reference), strict=True):
        np.testing.assert_array_equal(resumed, expected)
    assert read_metadata(target) == read_metadata(reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([reference.name, target.name])


@pytest.mark.parametrize("suffix", [".ome.tif", ".ome.zarr"])
def test_cli_resume_after_an_interrupted_pyramid_only_rebuilds_it(
    trained, tmp_path, monkeypatch, suffix
):
    reference, target = tmp_path / f"ref{suffix}", tmp_path / f"out{suffix}"
    assert translate(trained, "big.tif", reference, "--pyramid-tile", "16").exit_code == 0
    module = satikit.io.ome.tiff if suffix == ".ome.tif" else satikit.io.ome.ngff
    real, calls = module.build_level, [0]

    def build_level(*args):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(module, "build_level", build_level)
    assert translate(trained, "big.tif", target, "--pyramid-tile", "16").exit_code == 1
    monkeypatch.undo()

    def no_engine(*args, **kwargs):
        raise AssertionError("the full resolution was complete: the engine must not run again")

    monkeypatch.setattr(satikit.translation.translate, "_stitch", no_engine)
    result = translate(trained, "big.tif", target, "--resume")
    assert result.exit_code == 0, result.output
    for resumed, expected in zip(levels(target), levels(reference), strict=True):
        np.testing.assert_array_equal(resumed, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([reference.name, target.name])


def test_cli_resume_refuses_other_pyramid_settings(trained, tmp_path, monkeypatch):
    target = tmp_path / "out.ome.zarr"
    interrupt_after(monkeypatch, 1)
    assert translate(trained, "big.tif", target, "--pyramid-tile", "16").exit_code == 1
    monkeypatch.undo()
    result = translate(trained, "big.tif", target, "--resume", "--pyramid-tile", "32")
    assert result.exit_code == 2 and "--pyramid-tile 32 (it used 16)" in result.output


def test_bad_viewer_inputs_and_options_give_one_clear_line(trained, tmp_path):
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("a", shape=(4, 4), dtype="u1")
    axes = [{"name": n, "type": t} for n, t in (("t", "time"), ("y", "space"), ("x", "space"))]
    write_ngff(tmp_path / "movie.ome.zarr", np.zeros((2, 20, 20), np.uint8), axes, [1, 1, 1])
    cases = {
        str(tmp_path / "group.zarr"): "without OME-Zarr 'multiscales' metadata",
        str(tmp_path / "movie.ome.zarr"): "a time series",
    }
    for source, message in cases.items():
        result = translate(trained, source, tmp_path / "out.ome.zarr")
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output
    result = translate(trained, "big.tif", tmp_path / "out.tif", "--compression", "none")
    assert result.exit_code == 2 and "apply to .ome.tif and .ome.zarr" in result.output
    result = translate(trained, "big.tif", tmp_path / "out.ome.tif", "--pyramid-tile", "40")
    assert result.exit_code == 2 and "multiple of 16" in result.output
    with pytest.raises(ValueError, match="2 or 3 spatial dims"):
        with viewer_output(tmp_path / "line.ome.zarr", (1, 50), np.uint8):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["group.zarr", "movie.ome.zarr"]
