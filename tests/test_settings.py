"""One settings object from the command line to the engine, and the strategy registry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from satikit.settings import NORMS, ORDERS, SEAMS, STRATEGIES, WINDOWS, InferenceSettings
from satikit.stitching import REGISTRY, StitchCall, get_strategy, stitch, stitch_on_grid
from satikit.translation.translate import tile_grid


def test_registry_holds_every_strategy_name_once():
    assert tuple(REGISTRY) == STRATEGIES
    assert all(strategy.name == name for name, strategy in REGISTRY.items())


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown strategy 'diagonal'; choose one of \('none'"):
        get_strategy("diagonal")


@pytest.mark.parametrize(
    "field, value, choices",
    [("strategy", "tiled", STRATEGIES), ("order", "zigzag", ORDERS), ("window", "box", WINDOWS),
     ("seam", "end", SEAMS), ("norm", "batch", NORMS)],
)  # fmt: skip
def test_settings_refuse_a_value_outside_its_choices(field, value, choices):
    with pytest.raises(ValueError, match=f"unknown {field} '{value}'; choose one of"):
        InferenceSettings(**{field: value})
    for good in choices:
        assert getattr(InferenceSettings(**{field: good}), field) == good


@pytest.mark.parametrize("batch_size", [0, -2])
def test_settings_refuse_a_batch_below_one(batch_size):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        InferenceSettings(batch_size=batch_size)


def test_every_setting_is_an_option_of_translate():
    from satikit.commands.translate import translate

    options = {p.name for p in translate.params}
    assert set(InferenceSettings.names()) <= options
    by_name = {p.name: p for p in translate.params}
    for f in dataclasses.fields(InferenceSettings):
        if "choices" in f.metadata:
            assert tuple(by_name[f.name].type.choices) == f.metadata["choices"]


def _fn(tiles: torch.Tensor) -> torch.Tensor:
    return torch.tanh(3 * tiles) + tiles.mean(dim=(2, 3), keepdim=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_settings_object_and_keywords_give_the_same_output(strategy):
    image = np.random.default_rng(0).random((2, 40, 36), dtype=np.float32)
    settings = InferenceSettings(strategy=strategy, tile=16, overlap=4, batch_size=3)
    by_object = stitch(image, _fn, settings)
    by_keywords = stitch(image, _fn, strategy=strategy, tile=16, overlap=4, batch_size=3)
    np.testing.assert_array_equal(by_object, by_keywords)
    grid = tile_grid(settings, image.shape[1:])
    on_grid = stitch_on_grid(image, _fn, grid, settings, call=StitchCall(read_ahead=0))
    np.testing.assert_array_equal(on_grid, by_object)


def test_stitch_refuses_unknown_keywords_and_a_missing_strategy():
    image = np.zeros((1, 8, 8), np.float32)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['tiles'\]"):
        stitch(image, _fn, strategy="simple", tile=8, overlap=0, tiles=4)
    with pytest.raises(ValueError, match="no strategy given"):
        stitch(image, _fn, tile=8, overlap=0)
    with pytest.raises(ValueError, match="needs a tile size and an overlap"):
        stitch(image, _fn, strategy="weighted")
