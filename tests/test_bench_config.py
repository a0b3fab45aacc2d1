"""The benchmark configs: every shipped config keeps its cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import planning

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
