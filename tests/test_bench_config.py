"""The typed benchmark configs: checked once, given back as written, cache folders kept."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from benchmarks import planning
from benchmarks.bench_config import BenchConfig, ConfigError

# the cache folder of every shipped config (benchmarks/cache/<name>-<hash>): a change here
# orphans every cached training and evaluation of that config
WORKDIRS = {
    "cpu-small": "cpu-small-04f4375af0",
    "gpu-quick": "gpu-quick-9a09e60584",
    "large-objects": "large-objects-b9f883170e",
    "paper": "paper-c0e2617446",
    "restain": "restain-23491ce78a",
    "textured": "textured-79ebe78399",
}


def test_every_shipped_config_has_a_pinned_cache_folder():
    assert sorted(p.stem for p in planning.CONFIGS.glob("*.toml")) == sorted(WORKDIRS)


@pytest.mark.parametrize("name", sorted(WORKDIRS))
def test_cache_folder_of_each_config_is_unchanged(name):
    config = planning.load_config(name)
    assert planning.workdir(config, Path("cache")) == Path("cache") / WORKDIRS[name]


# the hash of every whole config (the quality report's ``config_hash``): it changes with any
# edit of the file (update it then); the cache folders above must not
HASHES = {
    "cpu-small": "e4194968fd",
    "gpu-quick": "b5f65e6f9c",
    "large-objects": "d7e093dc29",
    "paper": "f9153cd902",
    "restain": "7685018c33",
    "textured": "d15b1e3cd8",
}


@pytest.mark.parametrize("name", sorted(WORKDIRS))
def test_each_config_gives_its_file_back_as_written(name):
    config = planning.load_config(name)
    with (planning.CONFIGS / f"{name}.toml").open("rb") as handle:
        table = tomllib.load(handle)
    assert json.dumps(config.as_dict()) == json.dumps(table)  # same keys, order and values
    assert planning.config_hash(config.as_dict()) == HASHES[name]
    assert BenchConfig.from_dict(config.as_dict()) == config


TINY = """
name = "tiny"
adapters = ["cyclegan"]
seeds = [0]

[data]
preset = "small"
diameter = 6

[train]
crop = 32
batch_size = 2
steps = 2

[inference]
tile = 32
overlap = 8
"""


def _load(tmp_path: Path, text: str) -> BenchConfig:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return planning.load_config(str(path))


def test_a_small_config_takes_the_defaults(tmp_path):
    config = _load(tmp_path, TINY)
    assert (config.jobs, config.threads_per_job, config.snapshots) == (1, 1, False)
    assert config.data.kind == "circles" and config.data.params == {"diameter": 6}
    assert config.train.device == "auto" and config.train.ema == 0.0
    assert config.finetune is None and config.ship.sati == "demo-sati"
    assert config.as_dict() == tomllib.loads(TINY)


@pytest.mark.parametrize(
    "change, message",
    [
        (("steps = 2", "steps = 2\nstepz = 3"), r"\[train\] has unknown key\(s\) \['stepz'\]"),
        (("tile = 32", 'tile = "big"'), r"key 'inference.tile' must be an integer, got 'big'"),
        (("seeds = [0]", "seeds = [0, true]"), r"key 'seeds\[1\]' must be an integer"),
        (("crop = 32\n", ""), r"missing key 'train.crop'"),
        (("diameter = 6", "radius = 6"), r"\[data\] has unknown key\(s\) \['radius'\]"),
        (('preset = "small"', 'kind = "stars"'), r"key 'data.kind' must be circles, textured"),
        (("[inference]", "[train.sati]\nlamda = 1\n\n[inference]"), r"\['lamda'\]"),
        (("[inference]", "[per_adapter.cyclegan]\nseed = [1]\n\n[inference]"), r"\['seed'\]"),
        (("[inference]", '[frontier]\nfast = ["none"]\n\n[inference]'), r"\['fast'\]"),
        (("[inference]", "[ship]\nstandard = 1\n\n[inference]"), r"'ship.standard' must be a"),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_file_and_the_key(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message) as error:
        _load(tmp_path, TINY.replace(*change))
    assert str(error.value).startswith(str(tmp_path / "bad.toml") + ": ")


def test_data_keys_follow_the_kind(tmp_path):
    textured = TINY.replace(
        'preset = "small"\ndiameter = 6', 'kind = "textured"\nwavelength = [2, 4]'
    )
    assert _load(tmp_path, textured).data.generator_options() == {"wavelength": [2, 4]}
    with pytest.raises(ConfigError, match=r"\['preset'\]"):
        _load(tmp_path, textured.replace("wavelength = [2, 4]", 'preset = "small"'))
    restain = TINY.replace('preset = "small"\ndiameter = 6', 'kind = "restain"\nn_test = 2')
    with pytest.raises(ConfigError, match=r"\['n_test'\]"):
        _load(tmp_path, restain)


def test_variant_config_changes_a_copy_and_shows_in_as_dict(tmp_path):
    from benchmarks import variants

    config = _load(tmp_path, TINY)
    changed = variants.variant_config(
        config, "sati", {"lambda_stitch": 5.0}, 4, {"ngf": 8}, "standard"
    )
    train = changed.as_dict()["train"]
    assert train["steps"] == 4 and train["init"] == "standard"
    assert train["options"] == {"cyclegan": {"ngf": 8}} and train["sati"] == {"lambda_stitch": 5.0}
    assert config.as_dict() == tomllib.loads(TINY)  # the base is left alone
    assert planning.workdir(changed, tmp_path) != planning.workdir(config, tmp_path)
