from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from satikit.stitching import STRATEGIES, stitch
from satikit.stitching.grid import TileGrid, read_tile


def identity(t: torch.Tensor) -> torch.Tensor:
    return t.clone()


def small_net(ndim: int, channels: int = 2, seed: int = 0) -> nn.Module:
    """A context-dependent fn: two convs, so every output pixel sees its neighbours."""
    torch.manual_seed(seed)
    conv = nn.Conv2d if ndim == 2 else nn.Conv3d
    return nn.Sequential(
        conv(channels, 6, 3, padding=1), nn.Tanh(), conv(6, channels, 3, padding=1)
    ).eval()


class Recorder:
    """Wraps fn and records every batch it receives and returns."""

    def __init__(self, fn):
        self.fn, self.inputs, self.outputs = fn, [], []

    def __call__(self, t):
        out = self.fn(t)
        self.inputs.extend(t.clone())
        self.outputs.extend(out.clone())
        return out


@given(
    ndim=st.sampled_from([1, 2, 3]),
    strategy=st.sampled_from(STRATEGIES),
    order=st.sampled_from(["raster", "wavefront"]),
    batch_size=st.integers(1, 5),
    data=st.data(),
)
def test_identity_fn_reproduces_input_exactly(ndim, strategy, order, batch_size, data):
    max_size = {1: 90, 2: 40, 3: 18}[ndim]
    shape = tuple(data.draw(st.integers(1, max_size)) for _ in range(ndim))
    tile = tuple(data.draw(st.integers(2, 16)) for _ in range(ndim))
    limit = [(t - 1) // 2 if strategy == "sati" else t - 1 for t in tile]  # SATI: T > 2 O
    overlap = tuple(data.draw(st.integers(0, lim)) for lim in limit)
    # SATI may add a margin to the window overlap: T > 2 (O + m)
    extra = {}
    if strategy == "sati":
        extra["margin"] = tuple(
            data.draw(st.integers(0, lim - o)) for lim, o in zip(limit, overlap)
        )
    image = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    result = stitch(
        image,
        identity,
        tile=tile,
        overlap=overlap,
        strategy=strategy,
        order=order,
        batch_size=batch_size,
        **extra,
    )
    assert result.dtype == np.float32 and result.shape == image.shape
    np.testing.assert_array_equal(result, image)


@pytest.mark.parametrize(
    "ndim,shape,tile,overlap,margin",
    [(2, (70, 53), 16, 6, 0), (3, (21, 30, 17), 10, 4, 0), (2, (70, 53), 16, 4, 3)],
)
def test_wavefront_equals_raster_for_a_context_dependent_net(ndim, shape, tile, overlap, margin):
    net = small_net(ndim)
    image = np.random.default_rng(1).standard_normal((2, *shape)).astype(np.float32)
    sati = dict(tile=tile, overlap=overlap, strategy="sati", margin=margin)
    raster = stitch(image, net, order="raster", **sati)
    for batch_size in (1, 3, 64):
        wave = stitch(image, net, order="wavefront", batch_size=batch_size, **sati)
        np.testing.assert_allclose(wave, raster, atol=1e-5, rtol=0)
    simple = stitch(image, net, tile=tile, overlap=overlap, strategy="simple")
    assert np.abs(simple - raster).max() > 1e-3  # the conditioning changes the result


def _last_writer_map(grid: TileGrid, upto: int, outputs, channels) -> np.ndarray:
    """Reference semantics: canvas after the first ``upto`` raster tiles wrote from their seams."""
    canvas = np.full((channels, *grid.padded_shape), np.nan, dtype=np.float32)
    for index, out in list(zip(grid.raster(), outputs))[:upto]:
        written = grid.written(index)
        local = tuple(slice(w.start - s, w.stop - s) for w, s in zip(written, grid.start(index)))
        canvas[(slice(None), *written)] = out[(slice(None), *local)]
    return canvas


@pytest.mark.parametrize(
    "ndim,shape,tile,overlap,margin",
    [(2, (40, 35), 12, 4, 0), (3, (20, 17, 15), 8, 3, 0), (2, (40, 35), 12, 3, 2)],
)
def test_z_holds_predecessors_outputs_in_leading_strips_and_input_elsewhere(
    ndim, shape, tile, overlap, margin
):
    image = np.random.default_rng(2).standard_normal((2, *shape)).astype(np.float32)
    rec = Recorder(small_net(ndim))
    result = stitch(
        image, rec, tile=tile, overlap=overlap, strategy="sati", order="raster", margin=margin
    )
    grid = TileGrid.create(shape, tile, overlap, sati=True, margin=margin)
    outputs = [o.numpy() for o in rec.outputs]
    assert len(rec.inputs) == grid.n_tiles
    for t, (index, z) in enumerate(zip(grid.raster(), rec.inputs)):
        z = z.numpy()
        x = read_tile(image, grid.window(index), grid.shape)
        canvas = _last_writer_map(grid, t, outputs, 2)[(slice(None), *grid.window(index))]
        strips = np.zeros(grid.tile, bool)
        for k, lead in enumerate(grid.leading(index)):
            if lead:
                sl = [slice(None)] * ndim
                sl[k] = slice(0, grid.overlap[k])
                strips[tuple(sl)] = True
        np.testing.assert_array_equal(z[:, ~strips], x[:, ~strips])
        np.testing.assert_array_equal(z[:, strips], canvas[:, strips])
        # the half of each strip before the seam is final (unless a later tile row/column will
        # still own it): there z is the stitched output
        final = np.zeros(grid.tile, bool)
        for k, lead in enumerate(grid.leading(index)):
            if lead:
                sl = [slice(None)] * ndim
                sl[k] = slice(0, grid.cut[k])
                final[tuple(sl)] = True
        start = grid.start(index)
        inside = np.zeros(grid.tile, bool)
        inside[tuple(slice(0, max(0, s - b)) for s, b in zip(shape, start))] = True
        later = np.zeros(grid.tile, bool)
        for k, i in enumerate(index):
            if i < grid.counts[k] - 1:
                following = list(index)
                following[k] = i + 1
                sl = [slice(None)] * ndim
                sl[k] = slice(grid.start(tuple(following))[k] - start[k] + grid.cut[k], None)
                later[tuple(sl)] = True
        sel = final & inside & ~later
        assert sel.any() or not any(grid.leading(index))
        stitched = np.zeros((2, *grid.tile), np.float32)
        box = tuple(slice(b, min(b + tt, s)) for b, tt, s in zip(start, grid.tile, shape))
        stitched[(slice(None), *(slice(0, b.stop - b.start) for b in box))] = result[
            (slice(None), *box)
        ]
        np.testing.assert_array_equal(z[:, sel], stitched[:, sel])
    # and the result is the last writer everywhere
    full = _last_writer_map(grid, grid.n_tiles, outputs, 2)
    np.testing.assert_array_equal(result, full[(slice(None), *(slice(0, s) for s in shape))])


def test_call_counts_match_formulas():
    n = 5
    shape = (n * 12 + 4, n * 12 + 4)
    image = np.zeros((1, *shape), np.float32)
    for strategy, order, batch, expected in [
        ("none", "raster", 1, 1),
        ("simple", "raster", 1, n * n),
        ("simple", "raster", 4, math.ceil(n * n / 4)),
        ("weighted", "raster", 10, math.ceil(n * n / 10)),  # bands of 2 tile rows
        ("sati", "raster", 8, n * n),
        ("sati", "wavefront", 64, 3 * (n - 1) + 1),
    ]:
        rec = Recorder(identity)
        calls = []
        stitch(
            image,
            lambda t, calls=calls, rec=rec: (calls.append(1), rec(t))[1],
            tile=16,
            overlap=4,
            strategy=strategy,
            order=order,
            batch_size=batch,
        )
        assert len(calls) == expected, (strategy, order, batch)
    n3 = 3
    calls = []
    stitch(
        np.zeros((1,) + (n3 * 12 + 4,) * 3, np.float32),
        lambda t: (calls.append(1), t)[1],
        tile=16,
        overlap=4,
        strategy="sati",
        order="wavefront",
        batch_size=100,
    )
    assert len(calls) == 7 * (n3 - 1) + 1


def test_weighted_blends_and_none_sees_whole_image():
    image = np.random.default_rng(0).standard_normal((1, 30, 30)).astype(np.float32)
    shapes = []
    stitch(
        image, lambda t: (shapes.append(tuple(t.shape)), t)[1], tile=8, overlap=2, strategy="none"
    )
    assert shapes == [(1, 1, 30, 30)]
    # a constant-per-tile fn: weighted output varies smoothly between tile values
    counter = iter(range(1000))
    out = stitch(
        image,
        lambda t: torch.full_like(t, float(next(counter))),
        tile=10,
        overlap=5,
        strategy="weighted",
        window="pyramid",
    )
    assert out.min() >= 0 and len(np.unique(out)) > 9


def test_memmap_input_and_output(tmp_path):
    image = np.lib.format.open_memmap(
        tmp_path / "in.npy", mode="w+", dtype=np.float32, shape=(3, 33, 29)
    )
    image[:] = np.random.default_rng(3).random((3, 33, 29))
    out = np.lib.format.open_memmap(
        tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=(3, 33, 29)
    )
    result = stitch(image, identity, tile=16, overlap=4, strategy="sati", out=out)
    assert result is out
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), image)


def test_module_device_and_progress_bar(capsys):
    net = small_net(2, channels=1)
    image = np.zeros((1, 20, 20), np.float32)
    result = stitch(image, net, tile=8, overlap=2, strategy="simple", progress=True, device="cpu")
    assert result.shape == (1, 20, 20)
    assert "stitch[simple]" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs,fn,match",
    [
        (dict(strategy="bogus"), identity, "unknown strategy"),
        (dict(strategy="sati", order="zigzag"), identity, "unknown order"),
        (dict(strategy="weighted", window="hann"), identity, "unknown window"),
        (dict(strategy="simple", batch_size=0), identity, "batch_size"),
        (dict(strategy="sati", overlap=5), identity, "tile > 2 x overlap"),
        (dict(strategy="sati", overlap=4), identity, "tile > 2 x overlap"),
        (dict(strategy="simple", overlap=8), identity, "smaller than the tile"),
        (dict(strategy="sati"), lambda t: t[:, :1], "channels"),
        (dict(strategy="simple"), lambda t: t[..., 1:], "spatial size"),
        (dict(strategy="simple"), lambda t: t * float("nan"), "non-finite"),
        (dict(strategy="simple"), lambda t: t.numpy(), "torch.Tensor"),
        (dict(strategy="simple", out=np.zeros((2, 5, 5), np.float32)), identity, "out has shape"),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, fn, match):
    params = dict(tile=8, overlap=2, strategy="simple")
    params.update(kwargs)
    image = np.ones((2, 20, 20), np.float32)
    with pytest.raises((ValueError, TypeError), match=match):
        stitch(image, fn, **params)


def test_wrong_ndim_raises():
    with pytest.raises(ValueError, match=r"\(C, \*spatial\)"):
        stitch(np.ones(5, np.float32), identity, tile=4, overlap=1, strategy="simple")
    with pytest.raises(ValueError, match="3 entries"):
        stitch(
            np.ones((1, 8, 8), np.float32), identity, tile=(4, 4, 4), overlap=1, strategy="simple"
        )


class LazyImage:
    """A sliceable ``(C, *spatial)`` image computed on demand; records every read's size."""

    def __init__(self, shape):
        self.shape, self.ndim, self.reads = tuple(shape), len(shape), []

    def __getitem__(self, key):
        grids = np.meshgrid(*[np.arange(n)[k] for n, k in zip(self.shape, key)], indexing="ij")
        block = (sum(g * (i + 1) for i, g in enumerate(grids)) % 97 / 97.0).astype(np.float32)
        self.reads.append(block.size)
        return block


@pytest.mark.parametrize(
    "strategy,order",
    [("simple", "raster"), ("weighted", "raster"), ("sati", "raster"), ("sati", "wavefront")],
)
def test_memory_stays_bounded_by_a_band_of_tiles(tmp_path, strategy, order):
    import tracemalloc

    shape = (1, 4000, 1000)
    image = LazyImage(shape)
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=shape)
    tracemalloc.start()
    stitch(
        image, identity, tile=64, overlap=16, strategy=strategy, order=order, batch_size=4, out=out
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    image_bytes = 4 * np.prod(shape)
    assert max(image.reads) <= 64 * 64  # only tile-sized reads
    assert peak < image_bytes / 4, (
        f"peak {peak / 1e6:.1f} MB for a {image_bytes / 1e6:.1f} MB image"
    )
    out.flush()
    np.testing.assert_array_equal(
        np.load(tmp_path / "out.npy"), image[(slice(None), slice(0, 4000), slice(0, 1000))]
    )


@pytest.mark.parametrize("strategy", ["simple", "sati"])
def test_seam_at_start_of_overlap_ablation(strategy):
    from satikit.stitching import stitch_on_grid

    image = np.random.default_rng(4).standard_normal((2, 45, 38)).astype(np.float32)
    start = TileGrid.create((45, 38), 16, 6, sati=True, seam="start")
    assert start.cut == (0, 0)
    same = stitch_on_grid(image, identity, start, strategy=strategy)
    np.testing.assert_array_equal(same, image)
    net = small_net(2)
    raster = stitch_on_grid(image, net, start, strategy=strategy, order="raster")
    wave = stitch_on_grid(image, net, start, strategy=strategy, order="wavefront", batch_size=8)
    np.testing.assert_allclose(wave, raster, atol=1e-5, rtol=0)
    middle = stitch(image, net, tile=16, overlap=6, strategy=strategy)
    assert np.abs(middle - raster).max() > 1e-3


def test_stitch_on_grid_checks_the_grid():
    from satikit.stitching import stitch_on_grid

    image = np.zeros((1, 20, 20), np.float32)
    with pytest.raises(ValueError, match="does not match"):
        stitch_on_grid(image, identity, TileGrid.create((20, 21), 8, 2), strategy="simple")
    with pytest.raises(ValueError, match="tile > 2 x overlap"):
        stitch_on_grid(image, identity, TileGrid.create((20, 20), 8, 6), strategy="sati")
    with pytest.raises(ValueError, match="tile > 2 x overlap"):
        stitch_on_grid(image, identity, TileGrid.create((20, 20), 8, 4), strategy="sati")
    with pytest.raises(ValueError, match="seam"):
        TileGrid.create((20, 20), 8, 2, seam="edge")


def test_sati_margin_widens_the_window_overlap_but_not_the_strip():
    grid = TileGrid.create((100, 60), 32, 8, sati=True, margin=(4, 0))
    assert grid.window_overlap == (12, 8) and grid.step == (20, 24)
    assert grid.cut == (4, 4)  # the seam stays in the middle of the strip
    # a tile's strip (O = 8 rows) ends 4 rows before its predecessor's last row
    above, below = grid.window((0, 0))[0], grid.window((1, 0))[0]
    assert below.start + grid.overlap[0] == above.stop - 4
    assert TileGrid.create((100, 60), 32, 8, sati=True).margin is None  # 0: the paper's grid
    with pytest.raises(ValueError, match=r"tile > 2 x \(overlap \+ margin\)"):
        TileGrid.create((100, 60), 32, 8, sati=True, margin=8)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        TileGrid.create((100, 60), 32, 8, sati=True, margin=-1)
    with pytest.raises(ValueError, match="margin is a SATI setting"):
        TileGrid.create((100, 60), 32, 8, margin=2)
    image = np.zeros((1, 100, 60), np.float32)
    with pytest.raises(ValueError, match="margin is a SATI setting"):
        stitch(image, identity, tile=32, overlap=8, strategy="weighted", margin=2)


def test_sati_margin_changes_what_a_context_dependent_net_makes():
    image = np.random.default_rng(5).standard_normal((2, 60, 50)).astype(np.float32)
    net = small_net(2)
    paper = stitch(image, net, tile=16, overlap=4, strategy="sati")
    wider = stitch(image, net, tile=16, overlap=4, strategy="sati", margin=2)
    assert np.abs(paper - wider).max() > 1e-3
