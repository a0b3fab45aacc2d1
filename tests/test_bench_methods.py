"""The benchmarks' inference methods: names, grids, costs and the seam reference."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks.bench_config import InferenceConfig
from benchmarks.methods import parse_method

INFERENCE = InferenceConfig(
    tile=128, overlap=32, simple_overlap=0, weighted_shift=32, gaussian_overlap=64, margin=0
)


@pytest.mark.parametrize(
    "name, strategy, overlap, window, margin, seam",
    [
        ("none", "none", 0, None, 0, "middle"),
        ("simple", "simple", 0, None, 0, "middle"),
        ("weighted", "weighted", 96, "pyramid", 0, "middle"),  # the paper's shift T/4
        ("weighted-gaussian", "weighted", 64, "gaussian", 0, "middle"),
        ("sati", "sati", 32, None, 0, "middle"),
        ("sati-wo-stitching-strategy", "sati", 32, None, 0, "start"),
        ("sati-consistency", "sati", 32, None, 0, "middle"),  # a SATI model variant's own name
        ("simple@25", "simple", 32, None, 0, "middle"),
        ("gaussian@12.5", "weighted", 16, "gaussian", 0, "middle"),
        ("pyramid@75", "weighted", 96, "pyramid", 0, "middle"),
        ("sati@25+m8", "sati", 32, None, 8, "middle"),
    ],
)
def test_names_resolve_to_strategies_on_grids(name, strategy, overlap, window, margin, seam):
    method = parse_method(name, INFERENCE)
    assert (method.strategy, method.overlap, method.window, method.margin, method.seam) == (
        strategy,
        overlap,
        window,
        margin,
        seam,
    )


def test_cost_counts_forward_pixels_per_image_pixel():
    shape = (512, 512)
    assert parse_method("none", INFERENCE).cost(shape) == 1.0
    assert parse_method("simple", INFERENCE).tiles(shape) == 16  # 4 x 4, no overlap
    assert parse_method("simple", INFERENCE).cost(shape) == 1.0
    # step 96: 5 x 5 tiles of 128^2 (the last ones reflect-padded past the image)
    assert parse_method("sati", INFERENCE).tiles(shape) == 25
    assert parse_method("gaussian@25", INFERENCE).cost(shape) == pytest.approx(25 * 128**2 / 512**2)
    # a margin shortens the step (128 - 32 - 8 = 88): 6 x 6 tiles
    assert parse_method("sati@25+m8", INFERENCE).tiles(shape) == 36


def test_seam_reference_is_the_methods_own_grid_for_named_overlaps():
    assert parse_method("pyramid@50", INFERENCE).seam_grid(INFERENCE) == (64, 0)
    assert parse_method("sati@25+m8", INFERENCE).seam_grid(INFERENCE) == (32, 8)
    # the quality report's names share the SATI grid as their reference
    assert parse_method("weighted", INFERENCE).seam_grid(replace(INFERENCE, margin=4)) == (32, 4)


@pytest.mark.parametrize(
    "name, message",
    [
        ("bilinear", "unknown method 'bilinear'"),
        ("gaussian@x", "unknown method"),
        ("pyramid@25+m4", "a margin is a SATI setting"),
    ],
)
def test_bad_names_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        parse_method(name, INFERENCE)


def test_norm_suffix_adds_tin_or_kin_and_counts_its_pass_in_the_cost():
    shape = (512, 512)
    plain = parse_method("gaussian@25", INFERENCE)
    kernel = parse_method("gaussian@25/kernel", INFERENCE)
    assert (kernel.strategy, kernel.overlap, kernel.window, kernel.norm) == (
        "weighted",
        32,
        "gaussian",
        "kernel",
    )
    assert kernel.cost(shape) == pytest.approx(2 * plain.cost(shape))  # the caching pass
    dense = parse_method("sati@25+m8/dense", INFERENCE)
    assert (dense.strategy, dense.margin, dense.norm, dense.settings().norm) == (
        "sati",
        8,
        "dense",
        "dense",
    )
    assert dense.cost(shape) == pytest.approx(2 * parse_method("sati@25+m8", INFERENCE).cost(shape))
    with pytest.raises(ValueError, match="takes no value"):
        parse_method("gaussian@25/dense:3", INFERENCE)
    thumb = parse_method("simple@0/thumbnail:0.5", INFERENCE)
    assert thumb.cost(shape) == pytest.approx(1.0 + 0.25)  # + a half-scale thumbnail
    names = ("strategy", "norm", "thumbnail_scale", "norm_kernel", "window", "batch_size")
    assert thumb.settings(4).to_dict(names) == {
        "strategy": "simple",
        "norm": "thumbnail",
        "thumbnail_scale": 0.5,
        "norm_kernel": 3,
        "window": "gaussian",
        "batch_size": 4,
    }
    sati = parse_method("sati/kernel:5:gaussian", INFERENCE).settings()
    assert (sati.strategy, sati.norm, sati.norm_kernel) == ("sati", "kernel", "5:gaussian")
    assert (sati.tile, sati.overlap, sati.seam) == (128, 32, "middle")
    assert plain.settings().to_dict(("strategy", "window", "overlap", "margin")) == {
        "strategy": "weighted",
        "window": "gaussian",
        "overlap": 32,
        "margin": 0,
    }
    assert parse_method("pyramid@25", INFERENCE).settings().window == "pyramid"
    with pytest.raises(ValueError, match="needs a tiled method"):
        parse_method("none/kernel", INFERENCE)


@pytest.mark.parametrize(
    "method",
    [
        "none",
        "simple",
        "weighted",
        "weighted-gaussian",
        "sati",
        "sati-wo-stitching-strategy",
        "sati@25+m4",
        "gaussian@25/kernel",
        "simple@0/thumbnail:0.5",
    ],
)
def test_translate_with_equals_the_engine_on_the_methods_grid(method):
    """The benchmark translates through satikit.translation.translate.translate_array; for its
    settings that is exactly the engine on the method's grid (the benchmark's former own path)."""
    import numpy as np
    import torch

    from benchmarks.scoring import translate_with
    from satikit.checkpoint import DataSpec, RunConfig, SATISettings
    from satikit.encoding import decode, encode
    from satikit.plugins import create_adapter, get_adapter_info
    from satikit.stitching import stitch_on_grid

    torch.manual_seed(0)
    adapter = create_adapter("cyclegan", **get_adapter_info("cyclegan").test_options)
    adapter.train(False)
    config = RunConfig(
        data=DataSpec(dims=2, in_channels=3, out_channels=3),
        sati=SATISettings(domain_encoding=True),
    )
    inference = InferenceConfig(tile=32, overlap=8, batch_size=3)
    image = np.random.default_rng(2).integers(0, 256, (72, 64, 3), dtype=np.uint8)
    spec = parse_method(method, inference)
    x = np.moveaxis(encode(image, "x"), -1, 0)
    options = {"window": spec.window} if spec.window else {}
    if spec.norm != "tile":
        options.update(norm=spec.norm, norm_layers=adapter)
        key = "thumbnail_scale" if spec.norm == "thumbnail" else "norm_kernel"
        if spec.norm_value is not None:
            options[key] = float(spec.norm_value) if spec.norm == "thumbnail" else spec.norm_value
    grid = spec.grid(x.shape[1:])
    y = stitch_on_grid(x, adapter.translate, grid, strategy=spec.strategy, batch_size=3, **options)
    expected = np.moveaxis(decode(y, "y"), 0, -1)
    assert np.array_equal(translate_with(adapter, config, image, method, inference), expected)


@pytest.mark.parametrize(
    "name",
    [
        "gaussian@25+tile-styles",
        "sati@25+m8+tile-styles/kernel:5",
        "sati@25+m8/kernel:5+tile-styles",
    ],
)
def test_tile_styles_suffix_keeps_the_grid_and_statistics(name):
    method = parse_method(name, INFERENCE)
    base = parse_method(name.replace("+tile-styles", ""), INFERENCE)
    assert method.styles == "tile" and base.styles == "image"
    assert replace(method, name=base.name, styles="image") == base


def test_the_styles_field_leaves_the_repr_that_keys_cached_scores_unchanged():
    # cached scores are keyed by repr(method): one style per image must keep the old keys
    assert repr(parse_method("gaussian@25", INFERENCE)) == (
        "Method(name='gaussian@25', strategy='weighted', tile=128, overlap=32, "
        "window='gaussian', margin=0, seam='middle', norm='tile', norm_value=None)"
    )


def test_tile_styles_need_a_tiled_method():
    with pytest.raises(ValueError, match="tiled method"):
        parse_method("none+tile-styles", INFERENCE)


def _translate_setup(adapter_name: str):
    import numpy as np
    import torch

    from satikit.checkpoint import DataSpec, RunConfig, SATISettings
    from satikit.plugins import create_adapter, get_adapter_info

    torch.manual_seed(0)
    adapter = create_adapter(adapter_name, **get_adapter_info(adapter_name).test_options)
    adapter.train(False)
    config = RunConfig(
        data=DataSpec(dims=2, in_channels=3, out_channels=3),
        sati=SATISettings(domain_encoding=True),
    )
    image = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return adapter, config, image


def test_tile_styles_decode_each_tile_with_its_own_seeded_draw():
    """MUNIT, simple tiling without overlap, one tile per call: tile i (raster order) is the
    adapter's translation with the i-th N(0, I) draw of a generator seeded 0."""
    import numpy as np
    import torch

    from benchmarks.scoring import translate_with
    from satikit.encoding import decode, encode

    adapter, config, image = _translate_setup("munit")
    inference = InferenceConfig(tile=32, overlap=8, batch_size=1)
    styled = translate_with(adapter, config, image, "simple@0+tile-styles", inference)
    assert np.array_equal(
        styled, translate_with(adapter, config, image, "simple@0+tile-styles", inference)
    )
    one_style = translate_with(adapter, config, image, "simple@0", inference)
    assert not np.array_equal(styled, one_style)

    generator = torch.Generator().manual_seed(0)
    x = torch.from_numpy(np.moveaxis(encode(image, "x"), -1, 0))[None]
    for i, (r, c) in enumerate([(0, 0), (0, 32), (32, 0), (32, 32)]):
        style = torch.randn(1, adapter.style_dim, generator=generator)
        y = adapter.translate(x[..., r : r + 32, c : c + 32], style=style)
        expected = np.moveaxis(decode(y[0].numpy(), "y"), 0, -1)
        assert np.array_equal(styled[r : r + 32, c : c + 32], expected), f"tile {i}"


def test_tile_styles_refuse_an_adapter_without_style_codes():
    from benchmarks.scoring import translate_with

    adapter, config, image = _translate_setup("cyclegan")
    with pytest.raises(ValueError, match="style code per tile.*no style codes"):
        translate_with(
            adapter, config, image, "gaussian@25+tile-styles", InferenceConfig(tile=32, overlap=8)
        )
