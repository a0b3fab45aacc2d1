"""Normalisation-aware tiling: thumbnail (TIN), kernelized (KIN) and dense instance-norm
statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import satikit.stitching.resume as resume_module
from satikit.protocols import DeclaresNormLayers, NormWithStatistics
from satikit.stitching import NormKernel, stitch, stitch_on_grid
from satikit.stitching.grid import TileGrid, read_tile
from satikit.stitching.norm import DenseTable, NormTable, find_norm_layers
from satikit.stitching.statistics import statistics_state_path
from satikit.stitching.thumbnail import thumbnail, thumbnail_shape

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
NORM = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


def in_net(ndim: int, channels: int = 2, seed: int = 0) -> nn.Module:
    """Convolutions and instance norms (one affine); receptive field radius 3."""
    torch.manual_seed(seed)
    conv, norm = CONV[ndim], NORM[ndim]
    net = nn.Sequential(
        conv(channels, 4, 3, padding=1),
        norm(4),
        nn.ReLU(),
        conv(4, 4, 3, padding=1),
        norm(4, affine=True),
        nn.ReLU(),
        conv(4, channels, 3, padding=1),
    ).eval()
    with torch.no_grad():
        net[4].weight.uniform_(0.5, 1.5)
        net[4].bias.uniform_(-0.5, 0.5)
    return net


RADIUS = 3  # receptive field radius of in_net


def gradient_image(shape, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Noise on a ramp along the first dim, so tiles' statistics differ."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 3, shape[0], dtype=np.float32).reshape((-1,) + (1,) * (len(shape) - 1))
    return (rng.standard_normal((channels, *shape)) + ramp).astype(np.float32)


def whole(net: nn.Module, image: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(image)[None])[0].numpy()


# -- the properties -------------------------------------------------------------------------------
@settings(max_examples=15)
@given(
    ndim=st.sampled_from([1, 2, 3]),
    batch_size=st.integers(1, 4),
    data=st.data(),
)
def test_full_resolution_thumbnail_reproduces_the_whole_image(ndim, batch_size, data):
    """TIN at scale 1: every layer normalised with the whole image's statistics, so where the
    tile sees the pixel's whole receptive field (the middle cut is >= the radius from the tile
    border), the tiled output equals one pass over the whole image."""
    limit = {1: 24, 2: 12, 3: 8}[ndim]
    overlap = tuple(data.draw(st.integers(2 * RADIUS, 2 * RADIUS + 2)) for _ in range(ndim))
    tile = tuple(data.draw(st.integers(o + 1, max(o + 1, limit))) for o in overlap)
    counts = tuple(data.draw(st.integers(1, 3)) for _ in range(ndim))
    # the grid fits the image exactly, so no tile reaches into reflect padding
    shape = tuple((n - 1) * (t - o) + t for n, t, o in zip(counts, tile, overlap))
    net = in_net(ndim)
    image = gradient_image(shape)
    result = stitch(
        image,
        net,
        tile=tile,
        overlap=overlap,
        strategy="simple",
        norm="thumbnail",
        thumbnail_scale=1.0,
        batch_size=batch_size,
    )
    np.testing.assert_allclose(result, whole(net, image), atol=1e-4, rtol=0)


def test_per_tile_statistics_do_not_reproduce_the_whole_image():
    """The control: the same setup with per-tile statistics shows the tiles."""
    net, image = in_net(2), gradient_image((40, 40))
    tiled = stitch(image, net, tile=16, overlap=8, strategy="simple")
    assert np.abs(tiled - whole(net, image)).max() > 0.1


class FixedStatistics:
    """Reference semantics, independent of the engine: record each IN layer's statistics per
    call, or normalise every call with given ones."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.layers = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
        self.recorded: list[list[tuple[np.ndarray, np.ndarray]]] = []
        self.fixed: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def hook(self, k):
        def run(module, args, output):
            x = args[0]
            if self.fixed is None:
                var, mean = torch.var_mean(x.double(), dim=(2, 3), correction=0)
                self.recorded[-1].append((mean.numpy(), var.numpy()))
                return None
            mean, var = (s.to(x.dtype).reshape(1, -1, 1, 1) for s in self.fixed[k])
            y = (x - mean) * torch.rsqrt(var + module.eps)
            if module.affine:
                y = y * module.weight.reshape(1, -1, 1, 1) + module.bias.reshape(1, -1, 1, 1)
            return y

        return run

    def __call__(self, x):
        handles = [m.register_forward_hook(self.hook(k)) for k, m in enumerate(self.layers)]
        try:
            self.recorded.append([])
            with torch.no_grad():
                return self.net(x)
        finally:
            for h in handles:
                h.remove()


@pytest.mark.parametrize("strategy", ["simple", "weighted"])
@pytest.mark.parametrize("weights", ["constant", "gaussian"])
def test_a_kernel_over_the_whole_grid_equals_the_mean_of_all_tiles_statistics(strategy, weights):
    net, image = in_net(2), gradient_image((45, 38))
    grid = TileGrid.create((45, 38), 16, 6)
    n = max(grid.counts)
    reference = FixedStatistics(net)
    for index in grid.raster():  # the plain per-tile pass
        reference(torch.from_numpy(read_tile(image, grid.window(index), grid.shape))[None])
    reference.fixed = [  # per layer, the mean over all tiles of their (mean, var)
        tuple(torch.from_numpy(np.mean([s[i] for s in layer], axis=0)) for i in (0, 1))
        for layer in zip(*reference.recorded)
    ]
    # reaches every tile from every tile; a very wide gaussian is constant
    kernel = 2 * n - 1 if weights == "constant" else (2 * n - 1, "gaussian", 1e6)
    expected = stitch(image, reference, tile=16, overlap=6, strategy=strategy)
    result = stitch(
        image, net, tile=16, overlap=6, strategy=strategy, norm="kernel", norm_kernel=kernel
    )
    np.testing.assert_allclose(result, expected, atol=1e-5, rtol=0)
    assert np.abs(result - stitch(image, net, tile=16, overlap=6, strategy=strategy)).max() > 0.01


@pytest.mark.parametrize(
    "strategy,ndim", [("simple", 2), ("weighted", 2), ("sati", 2), ("sati", 3), ("simple", 1)]
)
def test_a_one_tile_kernel_equals_per_tile_statistics(strategy, ndim):
    shape = {1: (70,), 2: (45, 38), 3: (20, 18, 17)}[ndim]
    tile, overlap = (16, 4) if ndim < 3 else (8, 2)
    net, image = in_net(ndim), gradient_image(shape)
    common = dict(tile=tile, overlap=overlap, strategy=strategy, batch_size=3)
    plain = stitch(image, net, **common)
    one = stitch(image, net, norm="kernel", norm_kernel=1, **common)
    np.testing.assert_allclose(one, plain, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "norm,extra",
    [
        ("kernel", {"norm_kernel": 3}),
        ("kernel", {"norm_kernel": "3:gaussian"}),
        ("thumbnail", {}),
        ("dense", {}),
    ],
)
@pytest.mark.parametrize("ndim", [2, 3])
def test_sati_gives_the_same_result_in_raster_and_wavefront_order(norm, extra, ndim):
    shape, tile, overlap = ((50, 41), 16, 4) if ndim == 2 else ((20, 18, 17), 8, 2)
    net, image = in_net(ndim), gradient_image(shape)
    common = dict(tile=tile, overlap=overlap, strategy="sati", norm=norm, **extra)
    raster = stitch(image, net, order="raster", **common)
    for batch_size in (1, 4, 64):
        wave = stitch(image, net, order="wavefront", batch_size=batch_size, **common)
        np.testing.assert_allclose(wave, raster, atol=1e-5, rtol=0)
    plain = stitch(image, net, tile=tile, overlap=overlap, strategy="sati", order="raster")
    assert np.abs(plain - raster).max() > 1e-3  # the statistics changed something


def test_thumbnail_statistics_come_from_the_downscaled_image():
    """At scale 1/2 every tile is normalised as the box-downscaled image is."""
    net, image = in_net(2), gradient_image((32, 32))
    small = thumbnail(image, (16, 16))
    np.testing.assert_allclose(small, image.reshape(2, 16, 2, 16, 2).mean(axis=(2, 4)), atol=1e-6)
    reference = FixedStatistics(net)
    reference(torch.from_numpy(small)[None])
    reference.fixed = [
        tuple(torch.from_numpy(s[0]) for s in layer) for layer in reference.recorded[0]
    ]
    expected = stitch(image, reference, tile=16, overlap=4, strategy="weighted")
    result = stitch(
        image, net, tile=16, overlap=4, strategy="weighted", norm="thumbnail", thumbnail_scale=0.5
    )
    np.testing.assert_allclose(result, expected, atol=1e-5, rtol=0)


def test_tile_is_the_default_and_hooks_are_removed():
    net, image = in_net(2), gradient_image((30, 30))
    plain = stitch(image, net, tile=16, overlap=4, strategy="weighted")
    np.testing.assert_array_equal(
        stitch(image, net, tile=16, overlap=4, strategy="weighted", norm="tile"), plain
    )
    stitch(image, net, tile=16, overlap=4, strategy="weighted", norm="kernel")
    assert not any(m._forward_hooks for m in net.modules())
    np.testing.assert_array_equal(
        stitch(image, net, tile=16, overlap=4, strategy="weighted"), plain
    )


def test_kernel_costs_one_extra_pass_and_thumbnail_one_call():
    net, image = in_net(2), gradient_image((45, 38))
    calls = []

    def fn(t):
        calls.append(t.shape[0])
        return net(t)

    for norm, expected in [("tile", 1), ("kernel", 2)]:
        calls.clear()
        stitch(image, fn, tile=16, overlap=4, strategy="simple", norm=norm, norm_layers=net)
        assert sum(calls) == expected * TileGrid.create((45, 38), 16, 4).n_tiles
    calls.clear()
    stitch(image, fn, tile=16, overlap=4, strategy="simple", norm="thumbnail", norm_layers=net)
    assert sum(calls) == TileGrid.create((45, 38), 16, 4).n_tiles + 1


# -- dense normalisation --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "strategy,ndim", [("simple", 2), ("weighted", 2), ("sati", 2), ("sati", 3), ("weighted", 3)]
)
def test_dense_on_one_tile_equals_per_tile_statistics(strategy, ndim):
    """An image that is one tile: every pixel interpolates between that tile's own entries."""
    shape = {2: (16, 14), 3: (8, 7, 8)}[ndim]
    tile, overlap = (16, 4) if ndim == 2 else (8, 2)
    net, image = in_net(ndim), gradient_image(shape)
    common = dict(tile=tile, overlap=overlap, strategy=strategy, batch_size=2)
    assert TileGrid.create(shape, tile, overlap, sati=strategy == "sati").n_tiles == 1
    np.testing.assert_allclose(
        stitch(image, net, norm="dense", **common), stitch(image, net, **common), atol=1e-5
    )


def point_net(ndim: int, seed: int) -> nn.Module:
    """``in_net`` with 1-px convolutions: each layer's statistics are those of the pixels the
    call sees, whatever the borders."""
    net = in_net(ndim, seed=seed)
    conv = CONV[ndim]
    torch.manual_seed(seed)
    for k, (cin, cout) in ((0, (2, 4)), (3, (4, 4)), (6, (4, 2))):
        net[k] = conv(cin, cout, 1)
    return net


@settings(max_examples=12, deadline=None)
@given(
    ndim=st.sampled_from([1, 2, 3]),
    strategy=st.sampled_from(["simple", "weighted"]),
    norm=st.sampled_from(["thumbnail", "kernel", "dense"]),
    seed=st.integers(0, 3),
)
def test_constant_statistics_give_the_same_output_in_every_mode(ndim, strategy, norm, seed):
    """A periodic image whose period divides the tile size and every tile start, and a network
    of 1-px convolutions: every tile and the whole image have the same statistics, so every
    mode's output equals per-tile statistics'."""
    period, tile, overlap = (4, 16, 4) if ndim < 3 else (2, 8, 2)
    rng = np.random.default_rng(seed)
    cell = rng.standard_normal((2, *(period,) * ndim)).astype(np.float32)
    image = np.tile(cell, (1, *((3 * (tile - overlap) + tile) // period,) * ndim))
    net = point_net(ndim, seed)
    common = dict(tile=tile, overlap=overlap, strategy=strategy, batch_size=3)
    extra = {"thumbnail_scale": 1.0} if norm == "thumbnail" else {}
    plain = stitch(image, net, **common)
    np.testing.assert_allclose(stitch(image, net, norm=norm, **common, **extra), plain, atol=1e-4)
    # the control: a ramp makes the tiles' statistics differ, and the modes with them
    ramp = np.linspace(0, 2, image.shape[1], dtype=np.float32).reshape(-1, *(1,) * (ndim - 1))
    ramped = image + ramp
    assert (
        np.abs(
            stitch(ramped, net, norm=norm, **common, **extra) - stitch(ramped, net, **common)
        ).max()
        > 1e-3
    )


def test_dense_statistics_interpolate_between_tile_centres():
    """Tiles of 8 px every 6 px over 20 px: centres at 4, 10, 16 (the last tile ends at the
    border). A pixel at a centre takes that tile's entry, halfway between two centres their
    mean, beyond the outer centres the outer entry."""
    grid = TileGrid.create((20,), 8, 2)
    table = NormTable(grid.counts)
    means = np.array([[0.0], [6.0], [12.0]])
    table.layers, table.means, table.variances = [0], [means], [means + 1]
    dense = DenseTable(table, grid, [nn.InstanceNorm1d(1)])
    x = torch.zeros(1, 1, 8)  # a layer input at full resolution: pixel j at start + j + 0.5
    mean, var = dense.statistics_for(0, 0, [(1,)], x)  # tile 1 starts at 6
    np.testing.assert_allclose(mean[0, 0], np.arange(6, 14) + 0.5 - 4)  # linear: value = u - 4
    np.testing.assert_allclose(var[0, 0], mean[0, 0] + 1)
    first, _ = dense.statistics_for(0, 0, [(0,)], x)
    np.testing.assert_allclose(first[0, 0, :4], 0.0)  # before the first centre: constant
    last, _ = dense.statistics_for(0, 0, [(2,)], torch.zeros(1, 1, 4))  # half resolution
    np.testing.assert_allclose(last[0, 0], [9.0, 11.0, 12.0, 12.0])  # u = 13, 15, 17, 19


def test_dense_refuses_layers_with_other_statistics():
    class Grouped(nn.Module):  # statistics of shape (B, 2, 2): not one per channel
        def forward(self, x):
            return x

        def norm_statistics(self, x):
            return x.new_zeros(x.shape[0], 2, 2), x.new_ones(x.shape[0], 2, 2)

        def normalize_with(self, x, mean, var):
            return x

    grid = TileGrid.create((20, 20), 8, 2)
    table = NormTable(grid.counts)
    table.layers = [0]
    table.means = [np.zeros((*grid.counts, 2, 2))]
    table.variances = [np.ones((*grid.counts, 2, 2))]
    with pytest.raises(ValueError, match=r"norm='dense'.*Grouped.*\(2, 2\)"):
        DenseTable(table, grid, [Grouped()])


def test_dense_smooths_the_jumps_between_tiles():
    net, image = in_net(2), gradient_image((64, 40))
    common = dict(tile=16, overlap=0, strategy="simple")
    plain = stitch(image, net, **common)
    dense = stitch(image, net, norm="dense", **common)
    reference = whole(net, image)
    jump = lambda out: np.abs(np.diff(out, axis=1))[:, 15::16].mean()  # noqa: E731
    assert jump(dense) < jump(plain)
    assert np.abs(dense - reference).mean() < np.abs(plain - reference).mean()


# -- the table and the kernel ---------------------------------------------------------------------
def test_kernel_average_on_a_known_table():
    table = NormTable((3, 4))
    values = np.arange(12, dtype=np.float64).reshape(3, 4, 1)
    table.layers, table.means, table.variances = [0], [values], [values * 2]
    same = table.smoothed(NormKernel(1))
    np.testing.assert_array_equal(same.means[0], values)
    everything = table.smoothed(NormKernel(7))
    np.testing.assert_allclose(everything.means[0], np.full((3, 4, 1), values.mean()))
    np.testing.assert_allclose(everything.variances[0], np.full((3, 4, 1), 2 * values.mean()))
    three = table.smoothed(NormKernel(3)).means[0][..., 0]
    assert three[1, 1] == pytest.approx(values[0:3, 0:3].mean())  # a full neighbourhood
    assert three[0, 0] == pytest.approx(values[0:2, 0:2].mean())  # cut at the corner
    rows = table.smoothed(NormKernel((3, 1))).means[0][..., 0]
    np.testing.assert_allclose(rows[1], values[:, :, 0].mean(axis=0))
    gauss = NormKernel(5, "gaussian").array(2)
    assert gauss.shape == (5, 5) and gauss[2, 2] == 1 and gauss[2, 3] == pytest.approx(math.e**-0.5)
    np.testing.assert_allclose(gauss, gauss.T)


@pytest.mark.parametrize(
    "value,expected",
    [
        (3, NormKernel(3)),
        ((3, 5), NormKernel((3, 5))),
        ((5, "gaussian"), NormKernel(5, "gaussian")),
        (((3, 5), "gaussian", 2.0), NormKernel((3, 5), "gaussian", 2.0)),
        ("5:gaussian", NormKernel(5, "gaussian")),
        ("3,5", NormKernel((3, 5))),
        ("7:gaussian:1.5", NormKernel(7, "gaussian", 1.5)),
    ],
)
def test_norm_kernel_forms(value, expected):
    kernel = NormKernel.parse(value)
    assert kernel == expected
    assert NormKernel.parse(str(kernel)) == kernel


# -- layers found ---------------------------------------------------------------------------------
class PerSampleNorm(nn.Module):
    """A layer norm over (C, *spatial) implementing NormWithStatistics."""

    def forward(self, x):
        return torch.nn.functional.layer_norm(x, x.shape[1:])

    def norm_statistics(self, x):
        var, mean = torch.var_mean(x, dim=tuple(range(1, x.ndim)), correction=0)
        return mean[:, None], var[:, None]

    def normalize_with(self, x, mean, var):
        view = (-1,) + (1,) * (x.ndim - 1)
        return (x - mean.reshape(view)) * torch.rsqrt(var.reshape(view) + 1e-5)


class Declaring:
    """An adapter-like object that declares its layers."""

    def __init__(self, net, layers):
        self.net, self.layers = net, layers

    def norm_layers(self):
        return self.layers

    def translate(self, x):
        return self.net(x)


def test_layers_are_found_by_walking_or_declared():
    net = in_net(2)
    found = find_norm_layers(net)
    assert found == [net[1], net[4]]
    tracking = nn.InstanceNorm2d(4, track_running_stats=True).eval()  # tile-independent
    assert find_norm_layers(nn.Sequential(net, tracking)) == found
    custom = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), PerSampleNorm(), nn.Conv2d(3, 2, 1))
    assert isinstance(custom[1], NormWithStatistics)
    assert find_norm_layers(custom) == [custom[1]]
    declaring = Declaring(custom, [custom[1]])
    assert isinstance(declaring, DeclaresNormLayers)
    assert find_norm_layers(declaring.translate) == [custom[1]]  # via the bound method's object
    # a declared layer is used: at full resolution the whole image is reproduced
    image = gradient_image((20, 20))  # the grid fits: no reflect padding
    result = stitch(
        image,
        declaring.translate,
        tile=12,
        overlap=4,
        strategy="simple",
        norm="thumbnail",
        thumbnail_scale=1.0,
    )
    np.testing.assert_allclose(result, whole(custom, image), atol=1e-4, rtol=0)


def test_unit_layer_norms_take_part():
    from satikit.plugins import create_adapter, get_adapter_info

    info = get_adapter_info("unit")
    adapter = create_adapter("unit", dims=2, in_channels=3, out_channels=3, **info.test_options)
    layers = find_norm_layers(adapter)
    kinds = {type(layer).__name__ for layer in layers}
    assert "InstanceNorm2d" in kinds and "LayerNorm" in kinds
    for layer in layers:  # the protocol reproduces the layer's own output
        if type(layer).__name__ == "LayerNorm":
            x = torch.randn(2, layer.weight.shape[0], 8, 8) * 3 + 1
            with torch.no_grad():
                layer.weight.uniform_(0.5, 1.5)
                own = layer(x)
                np.testing.assert_allclose(
                    layer.normalize_with(x, *layer.norm_statistics(x)), own, atol=1e-5
                )


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,fn,match",
    [
        (dict(norm="batch"), None, "unknown norm"),
        (dict(norm="kernel", norm_kernel=2), None, "odd integer"),
        (dict(norm="kernel", norm_kernel=0), None, "odd integer"),
        (dict(norm="kernel", norm_kernel=-3), None, "odd integer"),
        (dict(norm="kernel", norm_kernel=(3, 3, 3)), None, "3 entries but the image has 2"),
        (dict(norm="kernel", norm_kernel=(3, "box")), None, "weights must be one of"),
        (dict(norm="kernel", norm_kernel="three"), None, "SIZE"),
        (dict(norm="kernel", norm_kernel=(3, "constant", 1.0)), None, "sigma is a setting"),
        (dict(norm="kernel", norm_kernel=(3, "gaussian", 0)), None, "sigma must be"),
        (dict(norm="kernel", norm_kernel=2.5), None, "norm kernel 2.5"),
        (dict(norm="thumbnail", thumbnail_scale=0), None, r"in \(0, 1\]"),
        (dict(norm="thumbnail", thumbnail_scale=1.5), None, r"in \(0, 1\]"),
        (dict(norm="thumbnail", thumbnail_scale=-0.5), None, r"in \(0, 1\]"),
        (dict(norm="thumbnail", thumbnail_scale=float("nan")), None, r"in \(0, 1\]"),
        (dict(norm="thumbnail", thumbnail_scale="half"), None, r"in \(0, 1\]"),
        (dict(norm="kernel"), nn.Conv2d(2, 2, 3, padding=1), "no instance-norm layers"),
        (dict(norm="thumbnail"), lambda t: t, "cannot find the normalisation layers"),
        (dict(norm="kernel", strategy="none"), None, "strategy 'none'"),
        (dict(norm="kernel", norm_layers=in_net(2, seed=1)), None, "never ran"),
        (dict(norm="dense", strategy="none"), None, "strategy 'none'"),
        (dict(norm="dense"), lambda t: t, "cannot find the normalisation layers"),
    ],
)
def test_bad_norm_settings_raise_clear_errors(kwargs, fn, match):
    params = dict(tile=8, overlap=2, strategy="simple")
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        stitch(gradient_image((20, 20)), in_net(2) if fn is None else fn, **params)


# -- thumbnail --------------------------------------------------------------------------------
def test_thumbnail_shape_and_slabs(monkeypatch):
    assert thumbnail_shape((100, 37), 0.25) == (25, 9)
    assert thumbnail_shape((100, 37), 0.25, multiple=4) == (24, 8)
    assert thumbnail_shape((5, 3), 0.1, multiple=4) == (4, 4)  # at least one multiple
    image = np.random.default_rng(0).random((2, 37, 23, 5)).astype(np.float32)
    np.testing.assert_array_equal(thumbnail(image, image.shape[1:]), image)
    whole_read = thumbnail(image, (10, 7, 2))
    import satikit.stitching.thumbnail as module

    monkeypatch.setattr(module, "SLAB_ROWS", 4)
    np.testing.assert_allclose(thumbnail(image, (10, 7, 2)), whole_read, atol=1e-6)
    np.testing.assert_allclose(
        thumbnail(image, (1, 1, 1))[:, 0, 0, 0], image.mean(axis=(1, 2, 3)), atol=1e-6
    )


# -- resume -----------------------------------------------------------------------------------
class Interrupted(Exception):
    pass


class Counting:
    def __init__(self, net, crash_at=None):
        self.net, self.crash_at, self.calls, self.tiles = net, crash_at, 0, 0

    def __call__(self, tiles):
        self.calls += 1
        if self.calls == self.crash_at:
            raise Interrupted
        self.tiles += len(tiles)
        return self.net(tiles)


CASES = {  # name -> strategy, order, batch size, norm settings
    "simple kernel": ("simple", "wavefront", 3, dict(norm="kernel", norm_kernel=3)),
    "weighted kernel": ("weighted", "wavefront", 2, dict(norm="kernel", norm_kernel="3:gaussian")),
    "sati raster kernel": ("sati", "raster", 1, dict(norm="kernel", norm_kernel=5)),
    "sati wavefront kernel": ("sati", "wavefront", 2, dict(norm="kernel", norm_kernel=3)),
    "sati thumbnail": ("sati", "wavefront", 2, dict(norm="thumbnail", thumbnail_scale=0.5)),
    "weighted dense": ("weighted", "wavefront", 2, dict(norm="dense")),
    "sati dense": ("sati", "wavefront", 2, dict(norm="dense")),
}


def _run(image, fn, net, grid, case, out, **kwargs):
    strategy, order, batch_size, norm = CASES[case]
    return stitch_on_grid(
        image,
        fn,
        grid,
        strategy=strategy,
        order=order,
        batch_size=batch_size,
        out=out,
        norm_layers=net,
        **norm,
        **kwargs,
    )


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("where", ["statistics pass", "inference pass"])
def test_resumed_run_equals_one_run(tmp_path, monkeypatch, case, where):
    if where == "statistics pass" and "thumbnail" in case:
        pytest.skip("the thumbnail pass is one call")
    net = in_net(2)
    image = gradient_image((45, 30))
    grid = TileGrid.create((45, 30), 12, 4, sati=CASES[case][0] == "sati")
    reference = Counting(net)
    expected = _run(image, reference, net, grid, case, np.zeros(image.shape, np.float32))
    kernel = CASES[case][3]["norm"] in ("kernel", "dense")
    per_pass = reference.calls // 2 if kernel else reference.calls - 1
    crash = per_pass // 2 + 1 if where == "statistics pass" else reference.calls - per_pass // 2
    saves: list[str] = []
    real_save = resume_module.Resumer.save

    def save(self, out, progress):
        real_save(self, out, progress)
        saves.append(self.path.name)

    monkeypatch.setattr(resume_module.Resumer, "save", save)
    state = tmp_path / "state.safetensors"
    out = np.full(image.shape, np.nan, np.float32)
    with pytest.raises(Interrupted):
        _run(image, Counting(net, crash_at=crash), net, grid, case, out, state_path=state)
    cache = statistics_state_path(state)
    if where == "statistics pass":
        assert cache.exists() and not state.exists()
    else:
        assert state.exists() and not cache.exists()
        assert saves.count(state.name) >= 2  # the table alone, then inference progress
    resumed = Counting(net)
    result = _run(image, resumed, net, grid, case, out, state_path=state, resume=True)
    np.testing.assert_array_equal(result, expected)  # bit-identical
    assert resumed.tiles < reference.tiles  # finished work is not redone
    assert not cache.exists()


def test_resume_refuses_other_norm_settings(tmp_path):
    net, image = in_net(2), gradient_image((45, 30))
    grid = TileGrid.create((45, 30), 12, 4)
    state = tmp_path / "state.safetensors"
    out = np.zeros(image.shape, np.float32)
    with pytest.raises(Interrupted):
        _run(image, Counting(net, crash_at=14), net, grid, "simple kernel", out, state_path=state)
    common = dict(strategy="simple", batch_size=3, out=out, state_path=state, resume=True)
    with pytest.raises(ValueError, match=r"norm_kernel '3' \(now '5'\)"):
        stitch_on_grid(image, net, grid, norm="kernel", norm_kernel=5, **common)
    with pytest.raises(ValueError, match=r"norm 'kernel' \(now None\)"):
        stitch_on_grid(image, net, grid, **common)


# -- a model imported from a pytorch-CycleGAN-and-pix2pix checkpoint, and the CLI ------------------
class TheirGenerator(nn.Module):
    """The key layout of pytorch-CycleGAN-and-pix2pix's ``resnet_*blocks`` generator (written
    for this test from that layout): ngf 4, two downsamplings, one reflection-padded block."""

    def __init__(self, ngf: int = 4):
        super().__init__()

        class Block(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.conv_block = nn.Sequential(
                    nn.ReflectionPad2d(1),
                    nn.Conv2d(dim, dim, 3),
                    nn.InstanceNorm2d(dim),
                    nn.ReLU(),
                    nn.ReflectionPad2d(1),
                    nn.Conv2d(dim, dim, 3),
                    nn.InstanceNorm2d(dim),
                )

        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU()]
        layers += [nn.Conv2d(ngf, 2 * ngf, 3, 2, 1), nn.InstanceNorm2d(2 * ngf), nn.ReLU()]
        layers += [nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 1), nn.InstanceNorm2d(4 * ngf), nn.ReLU()]
        layers += [Block(4 * ngf)]
        layers += [nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, output_padding=1)]
        layers += [nn.InstanceNorm2d(2 * ngf), nn.ReLU()]
        layers += [nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, output_padding=1)]
        layers += [nn.InstanceNorm2d(ngf), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)


@pytest.fixture
def imported(tmp_path):
    """A CycleGAN adapter imported from a checkpoint in the reference code's format."""
    from satikit_cyclegan.importer import import_cyclegan

    net = TheirGenerator()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    (tmp_path / "ckpt").mkdir()
    torch.save(net.state_dict(), tmp_path / "ckpt" / "latest_net_G_A.pth")
    return import_cyclegan(tmp_path / "ckpt")


def test_imported_cyclegan_translates_with_thumbnail_and_kernel_statistics(imported):
    layers = find_norm_layers(imported.translate)
    assert len(layers) == 7 and all(isinstance(m, nn.InstanceNorm2d) for m in layers)
    x = np.clip(gradient_image((72, 56), channels=3) / 4 - 0.5, -1, 1)
    common = dict(tile=32, overlap=8, strategy="weighted", batch_size=4)
    plain = stitch(x, imported.translate, **common)
    one = stitch(x, imported.translate, norm="kernel", norm_kernel=1, **common)
    np.testing.assert_allclose(one, plain, atol=1e-4, rtol=0)
    kernel = stitch(x, imported.translate, norm="kernel", norm_kernel="3:gaussian", **common)
    small = stitch(x, imported.translate, norm="thumbnail", thumbnail_scale=0.3, **common)
    for result in (kernel, small):
        assert result.shape == x.shape and np.isfinite(result).all()
        assert np.abs(result).max() <= 1 and np.abs(result - plain).max() > 1e-3
    # the thumbnail (72 x 56 at 0.3 -> 20 x 16) is sized to the generator's multiple of 4
    calls = []
    stitch(
        x,
        lambda t: (calls.append(tuple(t.shape)), imported.translate(t))[1],
        norm="thumbnail",
        thumbnail_scale=0.3,
        norm_layers=imported,
        **common,
    )
    assert calls[0] == (1, 3, 20, 16)


def _cli(run, source, target, *extra):
    from click.testing import CliRunner

    from satikit.cli import cli

    args = ["translate", str(run), str(source), str(target), "--device", "cpu", "--quiet"]
    return CliRunner().invoke(cli, [*args, "--tile", "32", "--overlap", "8", *extra])


def test_cli_offers_every_norm_mode():
    from satikit.commands.translate import translate
    from satikit.stitching.norm import NORMS

    (option,) = [p for p in translate.params if p.name == "norm"]
    assert tuple(option.type.choices) == NORMS


def test_cli_norm_options_and_resume(imported, tmp_path, monkeypatch):
    from satikit.checkpoint import load_adapter, save_as_run
    from satikit.io.arrays import partial_files
    from satikit.io.images import read_image, write_image
    from satikit.translation.translate import translate_array

    run = save_as_run(imported, tmp_path / "run", in_channels=3, out_channels=3)
    image = np.random.default_rng(0).integers(0, 256, (72, 56, 3), dtype=np.uint8)
    image[36:] //= 3  # a darker half: tiles' statistics differ
    write_image(tmp_path / "in.tif", image)
    adapter, config = load_adapter(run, device="cpu")
    for extra, kwargs in [
        (
            ["--norm", "kernel", "--norm-kernel", "3:gaussian"],
            dict(norm="kernel", norm_kernel=(3, "gaussian")),
        ),
        (
            ["--norm", "thumbnail", "--thumbnail-scale", "0.5"],
            dict(norm="thumbnail", thumbnail_scale=0.5),
        ),
        (["--norm", "dense"], dict(norm="dense")),
    ]:
        target = tmp_path / f"{extra[1]}.tif"
        result = _cli(run, tmp_path / "in.tif", target, "--strategy", "sati", *extra)
        assert result.exit_code == 0, result.output
        expected = translate_array(
            adapter, config, image, strategy="sati", tile=32, overlap=8, **kwargs
        )
        np.testing.assert_array_equal(read_image(target), expected)
    bad = _cli(
        run, tmp_path / "in.tif", tmp_path / "bad.tif", "--norm", "kernel", "--norm-kernel", "4"
    )
    assert bad.exit_code == 2 and "odd integer" in bad.output
    bad = _cli(
        run, tmp_path / "in.tif", tmp_path / "bad.tif", "--strategy", "none", "--norm", "thumbnail"
    )
    assert bad.exit_code == 2 and "--strategy none" in bad.output

    # interrupted in the caching pass; --resume refuses another --norm, then finishes
    real, saves = resume_module.Resumer.save, [0]

    def save(self, out, progress):
        real(self, out, progress)
        saves[0] += 1
        if saves[0] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(resume_module.Resumer, "save", save)
    target = tmp_path / "out.tif"
    options = ("--strategy", "weighted", "--norm", "kernel", "--batch-size", "2")
    result = _cli(run, tmp_path / "in.tif", target, *options)
    assert result.exit_code == 1 and "--resume" in result.output, result.output
    files = partial_files(target)
    assert files.norm_state.exists() and not files.state.exists()
    monkeypatch.undo()
    result = _cli(run, tmp_path / "in.tif", target, "--resume", "--norm", "tile")
    assert result.exit_code == 2 and "--norm tile (it used kernel)" in result.output
    result = _cli(run, tmp_path / "in.tif", target, "--resume")
    assert result.exit_code == 0, result.output
    reference = _cli(run, tmp_path / "in.tif", tmp_path / "ref.tif", *options)
    assert reference.exit_code == 0
    np.testing.assert_array_equal(read_image(target), read_image(tmp_path / "ref.tif"))
    assert not any(p.name.startswith(".out.tif") for p in tmp_path.iterdir())


# -- normalisations the engine cannot reach -------------------------------------------------------
class FunctionalNorms(nn.Module):
    """A conv net whose ``inner`` block normalises with a functional call (``kind``)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.first = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.InstanceNorm2d(4))
        self.inner = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4).eval()
        self.last = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        h = self.inner(self.first(x))
        if self.kind == "instance":
            h = nn.functional.instance_norm(h)
        elif self.kind == "group":
            h = nn.functional.group_norm(h, 2)
        elif self.kind == "layer-channels":  # per position: tile-independent
            h = nn.functional.layer_norm(h.movedim(1, -1), (4,)).movedim(-1, 1)
        elif self.kind == "batch-eval":  # running statistics: tile-independent
            h = self.bn(h)
        return self.last(h)


@pytest.mark.parametrize("norm", ["thumbnail", "kernel", "dense"])
@pytest.mark.parametrize("kind", ["instance", "group"])
def test_normalisations_outside_the_found_layers_are_refused(norm, kind):
    net = FunctionalNorms(kind).eval()
    with pytest.raises(
        ValueError, match=rf"cannot reach.*: FunctionalNorms \(torch.nn.functional.{kind}_norm\)"
    ):
        stitch(gradient_image((40, 40)), net, tile=16, overlap=4, strategy="simple", norm=norm)


@pytest.mark.parametrize("kind", ["layer-channels", "batch-eval", "none"])
def test_tile_independent_normalisations_are_accepted(kind):
    net = FunctionalNorms(kind).eval()
    image = gradient_image((40, 40))
    shared = stitch(image, net, tile=16, overlap=4, strategy="simple", norm="thumbnail")
    assert shared.shape == image.shape
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_the_uncovered_module_is_named():
    outer = nn.Sequential(nn.Conv2d(2, 2, 1), nn.InstanceNorm2d(2), FunctionalNorms("group"))
    with pytest.raises(ValueError, match=r": 2 \(torch.nn.functional.group_norm\)"):
        stitch(
            gradient_image((40, 40)),
            outer.eval(),
            tile=16,
            overlap=4,
            strategy="simple",
            norm="kernel",
        )


def test_munit_adain_takes_shared_statistics():
    """MUNIT's AdaIN normalisations are instance-norm modules the engine finds, so shared
    statistics reach the decoder too (no uncovered normalisation is left)."""
    from satikit.plugins import create_adapter

    torch.manual_seed(0)
    adapter = create_adapter(
        "munit", dims=2, in_channels=2, out_channels=2, dim=4, n_res=1, mlp_dim=8, ndf=4
    ).eval()
    layers = find_norm_layers(adapter)
    adain = [m.norm for m in adapter.decoder_y.modules() if type(m).__name__ == "AdaIN"]
    assert adain and all(any(m is layer for layer in layers) for m in adain)
    image = gradient_image((64, 48))
    with torch.no_grad():
        plain = stitch(image, adapter.translate, tile=32, overlap=8, strategy="weighted")
        shared = stitch(
            image, adapter.translate, tile=32, overlap=8, strategy="weighted", norm="thumbnail"
        )
    assert np.abs(shared - plain).max() > 1e-4
