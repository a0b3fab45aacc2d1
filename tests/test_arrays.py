from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from satikit.encoding import decode, encode
from satikit.io.arrays import ChannelFirst, ChannelLastSink, NamedReads, output_array
from satikit.io.reading import open_array
from satikit.stitching import stitch


def _rgb(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


@pytest.mark.parametrize("layout", ["plain", "tiled-compressed", "npy", "zarr"])
def test_open_array_reads_lazily_every_layout(tmp_path, layout):
    image = _rgb((70, 50))
    if layout == "plain":
        path = tmp_path / "a.tif"
        tifffile.imwrite(path, image, photometric="rgb")
    elif layout == "tiled-compressed":
        path = tmp_path / "a.tiff"
        tifffile.imwrite(path, image, photometric="rgb", tile=(32, 32), compression="zlib")
    elif layout == "npy":
        path = tmp_path / "a.npy"
        np.save(path, image)
    else:
        import zarr

        path = tmp_path / "a.zarr"
        zarr.open_array(
            str(path), mode="w", shape=image.shape, dtype=image.dtype, chunks=(32, 32, 3)
        )[:] = image
    array = open_array(path)
    assert tuple(array.shape) == image.shape
    np.testing.assert_array_equal(np.asarray(array[5:9, 7:20]), image[5:9, 7:20])


@pytest.mark.parametrize("channel_last", [True, False])
def test_channel_first_view_and_sink_round_trip(channel_last):
    stored = _rgb((9, 11)) if channel_last else _rgb((9, 11))[..., 0]
    view = ChannelFirst(stored, channel_last=channel_last, transform=lambda b: encode(b, "x"))
    assert view.shape == ((3,) if channel_last else (1,)) + (9, 11)
    np.testing.assert_array_equal(
        view[:, 2:4, 3:7],
        np.moveaxis(encode(stored, "x"), -1, 0)[:, 2:4, 3:7]
        if channel_last
        else encode(stored, "x")[None, 2:4, 3:7],
    )
    target = np.zeros_like(stored)
    sink = ChannelLastSink(target, channel_last=channel_last, transform=lambda b: decode(b, "x"))
    sink[...] = view[...]
    np.testing.assert_array_equal(target, stored)


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".npy"])
def test_out_of_core_stitch_equals_in_memory(tmp_path, suffix):
    image = _rgb((90, 77))
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, image, photometric="rgb")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Tanh()).eval()
    fn = lambda t: net(t) * 0.5 + 0.5  # noqa: E731  (tanh -> Y range [0, 1])
    in_memory = decode(
        stitch(np.moveaxis(encode(image, "x"), -1, 0), fn, tile=32, overlap=8, strategy="sati"), "y"
    )
    dst = tmp_path / f"out{suffix}"
    with output_array(dst, image.shape, np.uint8) as stored:
        view = ChannelFirst(open_array(src), channel_last=True, transform=lambda b: encode(b, "x"))
        sink = ChannelLastSink(stored, channel_last=True, transform=lambda b: decode(b, "y"))
        stitch(view, fn, tile=32, overlap=8, strategy="sati", out=sink)
        assert not dst.exists()  # only renamed once complete
    np.testing.assert_array_equal(np.asarray(open_array(dst)[...]), np.moveaxis(in_memory, 0, -1))
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_failed_output_leaves_nothing_behind(tmp_path):
    dst = tmp_path / "out.tif"
    with pytest.raises(RuntimeError), output_array(dst, (8, 8, 3), np.uint8):
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_not_overwritten(tmp_path):
    dst = tmp_path / "out.npy"
    np.save(dst, np.zeros(3))
    with pytest.raises(FileExistsError, match="--force"), output_array(dst, (3,), np.uint8):
        pass
    with output_array(dst, (2, 2), np.uint8, overwrite=True) as a:
        a[:] = 7
    assert np.load(dst).sum() == 28


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("missing.tif", None, "no such file"),
        ("empty.tif", b"", "empty"),
        ("garbage.tif", b"II*\x00garbage" * 10, "cannot read"),
        ("image.png", b"\x89PNG....", "unsupported"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        open_array(path)


def _mapped_kib(path) -> int:
    """Resident KiB of this process's mappings of ``path`` (Linux /proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:
            inside = len(fields) >= 6 and fields[-1] == str(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def test_walking_memory_mapped_files_keeps_their_pages_out_of_rss(tmp_path):
    shape = (2048, 1024, 3)  # 6 MiB in and out
    src, dst = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(
        src, np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8), photometric="rgb"
    )
    stored = open_array(src)
    assert isinstance(stored, np.memmap)
    with output_array(dst, shape, np.uint8) as out:
        view = ChannelFirst(stored, channel_last=True, transform=lambda b: encode(b, "x"))
        sink = ChannelLastSink(out, channel_last=True, transform=lambda b: decode(b, "x"))
        stitch(view, lambda t: t, tile=128, overlap=32, strategy="sati", out=sink)
        partial = next(tmp_path.glob("*partial*"))
        assert _mapped_kib(src) < 1024 and _mapped_kib(partial) < 1024  # < 1 MiB of 6 MiB each
    np.testing.assert_array_equal(np.asarray(open_array(dst)[...]), np.asarray(stored[...]))


def test_truncated_and_damaged_tiffs_name_the_file(tmp_path):
    whole, cut, damaged = tmp_path / "whole.tif", tmp_path / "cut.tif", tmp_path / "damaged.tif"
    tifffile.imwrite(whole, _rgb((40, 40)), photometric="rgb")
    cut.write_bytes(whole.read_bytes()[:3000])
    with pytest.raises(ValueError, match=r"cut\.tif: cannot read image .*truncated"):
        open_array(cut)  # refused when opened, not when a read reaches the missing part
    tifffile.imwrite(damaged, _rgb((64, 64)), photometric="rgb", tile=(32, 32), compression="zlib")
    with tifffile.TiffFile(damaged) as tif:
        start = tif.pages[0].dataoffsets[0]
    data = bytearray(damaged.read_bytes())
    data[start : start + 16] = bytes(16)
    damaged.write_bytes(bytes(data))
    reads = NamedReads(open_array(damaged), str(damaged))
    assert reads.shape == (64, 64, 3) and reads[40:, 40:].shape == (24, 24, 3)  # intact tile
    with pytest.raises(ValueError, match=r"damaged\.tif: cannot read image"):
        reads[:8, :8]


def test_release_pages_sees_through_the_file_naming_wrapper(tmp_path):
    from satikit.io.arrays import NamedReads

    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.zeros((2048, 1024, 3), np.uint8), photometric="rgb")
    view = ChannelFirst(NamedReads(open_array(src), str(src)), channel_last=True)
    for row in range(0, 2048, 256):
        view[:, row : row + 256]
    assert _mapped_kib(src) < 1024
