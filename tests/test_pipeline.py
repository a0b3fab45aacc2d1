"""Sharing one image between processes: rows of simple/weighted, SATI pipelined over a ring.

The ring here links threads through queues, so the engine's side of the multi-process cases is
tested without starting processes (tests/test_translate_distributed.py starts real ones).
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

import satikit.stitching.pipeline as pipeline_module
from satikit.stitching import Pipeline, stitch_on_grid
from satikit.stitching.grid import TileGrid
from satikit.stitching.pipeline import BandPlan, saved_band
from satikit.stitching.registry import count_tiles

CASES_2D = ((45, 38), 12, 4)
CASES_3D = ((21, 18, 15), 8, 2)


class Interrupted(Exception):
    """Stands for a crash."""


class Net:
    """A small context-dependent net that counts the tiles it sees and can crash."""

    def __init__(self, ndim: int, crash_at: int | None = None):
        torch.manual_seed(0)
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.net = nn.Sequential(conv(2, 4, 3, padding=1), nn.Tanh(), conv(4, 2, 3, padding=1))
        self.crash_at, self.calls, self.tiles = crash_at, 0, 0
        self.lock = threading.Lock()

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        with self.lock:
            self.calls += 1
            if self.calls == self.crash_at:
                raise Interrupted
            self.tiles += len(tiles)
        return self.net(tiles)


class QueueRing:
    """Rank ``rank`` of a ring of threads: sends into the next rank's queue."""

    def __init__(self, queues: list[queue.Queue], rank: int, stop: threading.Event):
        self.queues, self.rank, self.size, self.stop = queues, rank, len(queues), stop

    def send(self, array: np.ndarray) -> None:
        self.queues[(self.rank + 1) % self.size].put(np.array(array, np.float32, copy=True))

    def recv(self, shape) -> np.ndarray:
        while True:
            try:
                array = self.queues[self.rank].get(timeout=0.05)
            except queue.Empty:
                if self.stop.is_set():
                    raise Interrupted from None  # another rank failed
                continue
            assert array.shape == tuple(shape), (array.shape, shape)
            return array

    def flush(self) -> None:
        pass


class Recording:
    """A rank's view of one shared ``out``: records which rows it writes."""

    def __init__(self, array: np.ndarray, rank: int, log: list):
        self.array, self.rank, self.log = array, rank, log
        self.shape, self.ndim = array.shape, array.ndim

    def __setitem__(self, key, value) -> None:
        self.log.append((self.rank, key[1].start, key[1].stop))
        self.array[key] = value


def run_ranks(size: int, work: Callable[[int, QueueRing], None]) -> None:
    """Run ``work(rank, ring)`` in ``size`` threads; re-raise the first error."""
    queues = [queue.Queue() for _ in range(size)]
    stop, errors = threading.Event(), []

    def target(rank: int) -> None:
        try:
            work(rank, QueueRing(queues, rank, stop))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=target, args=(r,)) for r in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a rank hangs"
    if errors:
        raise errors[0]


def setup(ndim: int, sati: bool, margin: int = 0) -> tuple[np.ndarray, TileGrid]:
    shape, tile, overlap = CASES_2D if ndim == 2 else CASES_3D
    image = np.random.default_rng(ndim).standard_normal((2, *shape)).astype(np.float32)
    return image, TileGrid.create(shape, tile, overlap, sati=sati, margin=margin)


def pipelined(image, grid, net, size, order, batch_size, align=1, log=None, **pipe) -> np.ndarray:
    out = np.full(image.shape, np.nan, np.float32)
    log = [] if log is None else log

    def work(rank: int, ring: QueueRing) -> None:
        stitch_on_grid(
            image,
            net,
            grid,
            strategy="sati",
            order=order,
            batch_size=batch_size,
            out=Recording(out, rank, log),
            pipeline=Pipeline(ring, align=align, **pipe),
        )

    run_ranks(size, work)
    return out


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize(
    "size,order,batch_size,align",
    [(2, "raster", 1, 1), (3, "wavefront", 1, 5), (2, "wavefront", 3, 7), (1, "wavefront", 2, 4)],
)
def test_pipelined_sati_equals_one_process_and_writes_whole_chunks(
    ndim, size, order, batch_size, align
):
    image, grid = setup(ndim, sati=True)
    reference = Net(ndim)
    expected = stitch_on_grid(
        image, reference, grid, strategy="sati", order=order, batch_size=batch_size
    )
    net, log = Net(ndim), []
    out = pipelined(image, grid, net, size, order, batch_size, align, log)
    np.testing.assert_array_equal(out, expected)  # bit-identical, every row written
    assert net.tiles == grid.n_tiles and net.calls == reference.calls  # no tile twice
    height = image.shape[1]
    owner: dict[int, set[int]] = {}
    for rank, start, stop in log:
        for chunk in range(start // align, (stop - 1) // align + 1):
            owner.setdefault(chunk, set()).add(rank)
    assert all(len(ranks) == 1 for ranks in owner.values())  # no chunk shared by two ranks
    assert sorted(owner) == list(range(-(-height // align)))
    if size > 1 and len(BandPlan(grid, order, batch_size).bands) > 1:
        assert len({rank for rank, _, _ in log}) > 1


def test_pipelined_sati_with_a_margin_and_thumbnail_statistics():
    image, grid = setup(2, sati=True, margin=1)
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.InstanceNorm2d(4), nn.Conv2d(4, 2, 1))
    kwargs = dict(strategy="sati", norm="thumbnail", thumbnail_scale=0.5)
    expected = stitch_on_grid(image, net, grid, **kwargs)
    out = np.full(image.shape, np.nan, np.float32)

    def work(rank: int, ring: QueueRing) -> None:
        own = copy.deepcopy(net)  # the statistics hooks are per module: one net per "process"
        stitch_on_grid(image, own, grid, **kwargs, out=out, pipeline=Pipeline(ring, align=3))

    run_ranks(2, work)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("resume_size", [1, 2, 3])
def test_interrupted_pipeline_resumes_with_any_number_of_ranks(tmp_path, monkeypatch, resume_size):
    image, grid = setup(2, sati=True)
    reference = Net(2)
    expected = stitch_on_grid(image, reference, grid, strategy="sati", order="raster")
    crashing = Net(2, crash_at=reference.calls * 2 // 3)
    out = np.full(image.shape, np.nan, np.float32)

    def work(rank: int, ring: QueueRing) -> None:
        pipe = Pipeline(ring, align=4, state_dir=tmp_path)
        stitch_on_grid(
            image, crashing, grid, strategy="sati", order="raster", out=out, pipeline=pipe
        )

    with pytest.raises(Interrupted):
        run_ranks(2, work)
    states = sorted(p.name for p in tmp_path.iterdir())
    assert states and len(states) <= 2  # older bands' states are deleted

    # The rank of the band after the first resumed one starts only once that band is saved:
    # it must still start where the others do (the band rank 0 read before any started).
    after = saved_band(tmp_path)
    assert after is not None
    first_saved, save = threading.Event(), pipeline_module._States.save

    def saving(self, band, strip, tail):
        save(self, band, strip, tail)
        if band == after + 1:
            first_saved.set()

    monkeypatch.setattr(pipeline_module._States, "save", saving)
    resumed = Net(2)

    def again(rank: int, ring: QueueRing) -> None:
        if resume_size > 1 and rank == (after + 2) % resume_size:
            assert first_saved.wait(timeout=30)
        pipe = Pipeline(ring, align=4, state_dir=tmp_path, resume_after=after)
        stitch_on_grid(
            image, resumed, grid, strategy="sati", order="raster", out=out, pipeline=pipe
        )

    run_ranks(resume_size, again)
    np.testing.assert_array_equal(out, expected)
    assert 0 < resumed.tiles < reference.tiles  # saved bands are not run again


def test_pipeline_refuses_a_state_of_another_setup(tmp_path):
    image, grid = setup(2, sati=True)
    out = np.zeros(image.shape, np.float32)

    def work(rank: int, ring: QueueRing) -> None:
        pipe = Pipeline(ring, state_dir=tmp_path)
        stitch_on_grid(image, Net(2), grid, strategy="sati", out=out, pipeline=pipe)

    run_ranks(2, work)
    other = TileGrid.create(grid.shape, 14, 4, sati=True)

    def again(rank: int, ring: QueueRing) -> None:
        pipe = Pipeline(ring, state_dir=tmp_path, resume_after=saved_band(tmp_path))
        stitch_on_grid(image, Net(2), other, strategy="sati", out=out, pipeline=pipe)

    with pytest.raises(ValueError, match=r"different setup: tile \[12, 12\] \(now \[14, 14\]\)"):
        run_ranks(1, again)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("strategy,batch_size", [("simple", 1), ("simple", 4), ("weighted", 3)])
def test_row_ranges_add_up_to_one_run(ndim, strategy, batch_size):
    image, grid = setup(ndim, sati=False)
    expected = stitch_on_grid(image, Net(ndim), grid, strategy=strategy, batch_size=batch_size)
    height = image.shape[1]
    cuts = [0, 7, height // 2, height - 3, height]
    out = np.full(image.shape, np.nan, np.float32)
    for start, stop in zip(cuts, cuts[1:]):
        part = np.full(image.shape, np.nan, np.float32)
        net = Net(ndim)
        kwargs = dict(strategy=strategy, batch_size=batch_size, rows=(start, stop))
        stitch_on_grid(image, net, grid, **kwargs, out=part)
        assert np.isnan(np.delete(part, np.s_[start:stop], axis=1)).all()  # nothing else written
        assert net.tiles == count_tiles(grid, strategy, batch_size, (start, stop)) < grid.n_tiles
        out[:, start:stop] = part[:, start:stop]
    np.testing.assert_array_equal(out, expected)  # bit-identical


@pytest.mark.parametrize("strategy", ["simple", "weighted"])
def test_interrupted_row_range_resumes(tmp_path, strategy):
    image, grid = setup(2, sati=False)
    rows = (20, 45)
    kwargs = dict(strategy=strategy, batch_size=2, rows=rows)
    expected = stitch_on_grid(image, Net(2), grid, **kwargs, out=np.zeros_like(image))
    out, state = np.zeros_like(image), tmp_path / "state.safetensors"
    with pytest.raises(Interrupted):
        stitch_on_grid(image, Net(2, crash_at=5), grid, **kwargs, out=out, state_path=state)
    assert state.exists()
    resumed = Net(2)
    stitch_on_grid(image, resumed, grid, **kwargs, out=out, state_path=state, resume=True)
    np.testing.assert_array_equal(out[:, 20:45], expected[:, 20:45])
    assert 0 < resumed.tiles < count_tiles(grid, strategy, 2, rows)
    with pytest.raises(ValueError, match=r"rows \[20, 45\] \(now \[20, 44\]\)"):
        stitch_on_grid(
            image, Net(2), grid, **{**kwargs, "rows": (20, 44)}, state_path=state, resume=True
        )


@pytest.mark.parametrize("strategy", ["simple", "weighted"])
def test_a_finished_row_range_resumes_to_nothing(tmp_path, strategy):
    # a process killed after its share, before the job's end, leaves the state of its last band
    image, grid = setup(2, sati=False)
    kwargs = dict(strategy=strategy, batch_size=2, rows=(0, 20))
    out, state = np.zeros_like(image), tmp_path / "state.safetensors"
    stitch_on_grid(image, Net(2), grid, **kwargs, out=out, state_path=state)
    assert state.exists()
    before = out.copy()
    again = Net(2)
    stitch_on_grid(image, again, grid, **kwargs, out=out, state_path=state, resume=True)
    assert again.tiles < count_tiles(grid, strategy, 2, (0, 20))
    np.testing.assert_array_equal(out, before)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(strategy="sati", rows=(0, 5)), "rows apply to the simple and weighted"),
        (dict(strategy="simple", rows=(5, 5)), "0 <= start < stop"),
        (dict(strategy="weighted", rows=(0, 99)), "0 <= start < stop <= 45"),
        (dict(strategy="simple", rows=(0, 9), norm="kernel"), "cannot be shared out"),
        (dict(strategy="simple", pipeline=True), "a pipeline runs the sati strategy"),
        (dict(strategy="sati", pipeline=True, state_path="x"), "keeps its own resume state"),
    ],
)
def test_sharing_options_are_checked(kwargs, match):
    image, _ = setup(2, sati=False)
    grid = TileGrid.create(image.shape[1:], 12, 4, sati=kwargs["strategy"] == "sati")
    if kwargs.pop("pipeline", False):
        kwargs["pipeline"] = Pipeline(QueueRing([queue.Queue()], 0, threading.Event()))
    with pytest.raises(ValueError, match=match):
        stitch_on_grid(image, Net(2).net, grid, **kwargs)
