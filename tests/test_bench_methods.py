"""The benchmarks' inference methods: names, grids, costs and the seam reference."""

from __future__ import annotations

import pytest

from benchmarks.methods import parse_method

INFERENCE = {
    "tile": 128,
    "overlap": 32,
    "simple_overlap": 0,
    "weighted_shift": 32,
    "gaussian_overlap": 64,
    "margin": 0,
}


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
    assert parse_method("weighted", INFERENCE).seam_grid({**INFERENCE, "margin": 4}) == (32, 4)


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
