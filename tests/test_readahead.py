"""Read-ahead (tiles read on a worker thread while fn runs) and the ``order="auto"`` rule."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_stitching import small_net

from satikit.stitching import STRATEGIES, resolve_order, stitch
from satikit.stitching.grid import TileGrid
from satikit.stitching.readahead import TileReader


@settings(max_examples=25, deadline=None)
@given(
    ndim=st.sampled_from([2, 3]),
    strategy=st.sampled_from([s for s in STRATEGIES if s != "none"]),
    order=st.sampled_from(["raster", "wavefront"]),
    batch_size=st.integers(1, 4),
    depth=st.integers(1, 3),
    size=st.integers(9, 30),
)
def test_read_ahead_gives_the_same_output_bit_for_bit(
    ndim, strategy, order, batch_size, depth, size
):
    shape = (size,) * ndim if ndim == 2 else (min(size, 14),) * 3
    image = np.random.default_rng(size).standard_normal((2, *shape)).astype(np.float32)
    net = small_net(ndim)
    common = dict(tile=8, overlap=2, strategy=strategy, order=order, batch_size=batch_size)
    without = stitch(image, net, read_ahead=0, **common)
    with_ahead = stitch(image, net, read_ahead=depth, **common)
    np.testing.assert_array_equal(with_ahead, without)


class GatedImage:
    """An image whose reads are recorded; reading the tile at ``gate_row`` opens an event."""

    def __init__(self, array: np.ndarray, gate_row: int):
        self.array, self.gate_row = array, gate_row
        self.shape, self.ndim, self.dtype = array.shape, array.ndim, array.dtype
        self.second_read = threading.Event()

    def __getitem__(self, key):
        if key[1].start == self.gate_row:
            self.second_read.set()
        return self.array[key]


def test_the_next_batch_is_read_while_fn_runs_the_current_one():
    # 2 x 1 tiles of 8 rows without overlap; batch 1: the read of tile row 1 must start while fn
    # is still running tile row 0 (fn waits for it; without read-ahead it would time out)
    image = GatedImage(np.zeros((1, 16, 8), np.float32), gate_row=8)
    seen_during_first_call = []

    def fn(batch: torch.Tensor) -> torch.Tensor:
        if not seen_during_first_call:
            seen_during_first_call.append(image.second_read.wait(timeout=30))
        return batch.clone()

    stitch(image, fn, tile=8, overlap=0, strategy="simple", batch_size=1, read_ahead=1)
    assert seen_during_first_call == [True]

    image = GatedImage(np.zeros((1, 16, 8), np.float32), gate_row=8)
    calls = []

    def fn_sync(batch: torch.Tensor) -> torch.Tensor:
        calls.append(image.second_read.is_set())
        return batch.clone()

    stitch(image, fn_sync, tile=8, overlap=0, strategy="simple", batch_size=1, read_ahead=0)
    assert calls == [False, True]  # without read-ahead: read, run, read, run


@pytest.mark.parametrize("strategy", ["simple", "weighted", "sati"])
def test_a_bad_tile_read_ahead_still_fails_with_a_clear_error(strategy):
    image = np.zeros((1, 32, 32), np.float32)
    image[0, 30, 30] = np.nan  # in the last tile: found by the worker thread
    with pytest.raises(ValueError, match="non-finite"):
        stitch(image, lambda t: t.clone(), tile=8, overlap=2, strategy=strategy, read_ahead=2)


def test_reader_refuses_a_batch_out_of_plan_and_a_negative_depth():
    grid = TileGrid.create((16, 16), 8, 0)
    image = np.zeros((1, 16, 16), np.float32)
    plan = [[(0, 0)], [(0, 1)]]
    for depth in (0, 1):
        reader = TileReader(image, grid, plan, depth)
        assert reader.read([(0, 0)]).shape == (1, 1, 8, 8)
        with pytest.raises(RuntimeError, match="out of step"):
            reader.read([(1, 1)])
        reader.close()
    with pytest.raises(ValueError, match="depth"):
        TileReader(image, grid, plan, -1)
    with pytest.raises(ValueError, match="read_ahead"):
        stitch(image, lambda t: t, tile=8, overlap=0, strategy="simple", read_ahead=-1)


def test_auto_order_is_wavefront_on_a_gpu_or_for_volumes_with_batches_else_raster():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_order("auto", cpu, 8) == "raster"
    assert resolve_order("auto", cuda, 8) == "wavefront"
    assert resolve_order("auto", cuda, 1) == "raster"
    assert resolve_order("wavefront", cpu, 8) == "wavefront"
    assert resolve_order("raster", cuda, 8) == "raster"
    assert resolve_order("auto", cpu, 8, ndim=3) == "wavefront"  # volumes: batching pays
    assert resolve_order("auto", cpu, 1, ndim=3) == "raster"
    with pytest.raises(ValueError, match="unknown order"):
        resolve_order("zigzag", cpu, 1)


def test_auto_order_on_cpu_runs_raster_order():
    image = np.random.default_rng(0).standard_normal((2, 40, 40)).astype(np.float32)
    net = small_net(2)
    batches = {}
    for order in ("auto", "raster"):
        sizes = []

        def fn(t, sizes=sizes):
            sizes.append(t.shape[0])
            return net(t)

        out = stitch(image, fn, tile=12, overlap=3, strategy="sati", order=order, batch_size=4)
        batches[order] = (sizes, out)
    assert batches["auto"][0] == batches["raster"][0] == [1] * len(batches["raster"][0])
    np.testing.assert_array_equal(batches["auto"][1], batches["raster"][1])


class SlowSink:
    """A ``(C, *spatial)`` output that is not a numpy array (like a TIFF or zarr sink): records
    the thread of every write and can fail on the ``fail_at``-th one."""

    def __init__(self, shape, fail_at: int | None = None):
        self.array = np.full(shape, np.nan, np.float32)
        self.shape, self.ndim = self.array.shape, self.array.ndim
        self.threads: list[str] = []
        self.fail_at = fail_at

    def __setitem__(self, key, value):
        self.threads.append(threading.current_thread().name)
        if self.fail_at is not None and len(self.threads) >= self.fail_at:
            raise OSError("disk full")
        self.array[key] = value


@pytest.mark.parametrize("strategy", ["weighted", "sati"])
def test_write_behind_fills_a_slow_sink_on_a_worker_with_the_same_values(strategy):
    image = np.random.default_rng(1).standard_normal((2, 150, 40)).astype(np.float32)
    net = small_net(2)
    common = dict(tile=16, overlap=4, strategy=strategy, batch_size=2)
    expected = stitch(image, net, **common)
    sink = SlowSink(image.shape)
    stitch(image, net, out=sink, **common)
    np.testing.assert_array_equal(sink.array, expected)
    assert sink.threads and all(name.startswith("satikit-write") for name in sink.threads)


@pytest.mark.parametrize("strategy", ["weighted", "sati"])
def test_a_failing_write_behind_is_raised_by_stitch(strategy):
    image = np.zeros((1, 150, 40), np.float32)
    with pytest.raises(OSError, match="disk full"):
        stitch(
            image,
            lambda t: t.clone(),
            tile=16,
            overlap=4,
            strategy=strategy,
            out=SlowSink(image.shape, fail_at=2),
        )


def test_no_resume_state_is_saved_behind_a_failed_write(tmp_path):
    from satikit.stitching import stitch_on_grid

    image = np.zeros((1, 150, 40), np.float32)
    grid = TileGrid.create(image.shape[1:], 16, 4, sati=True)
    state = tmp_path / "state.safetensors"
    with pytest.raises(OSError, match="disk full"):
        stitch_on_grid(
            image,
            lambda t: t.clone(),
            grid,
            strategy="sati",
            out=SlowSink(image.shape, fail_at=1),  # the first band's first write fails
            state_path=state,
        )
    assert not state.exists()
