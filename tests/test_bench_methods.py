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
