"""The adapter conformance kit (satikit.testing) and ``satikit check-adapter``."""

from __future__ import annotations

import json
import random
import types

import pytest
import torch
from click.testing import CliRunner

from satikit.cli import cli
from satikit.plugins import get_adapter_info
from satikit.testing import (
    CHECKS,
    ConformanceError,
    assert_adapter_conforms,
    check_adapter,
    registered_cases,
)

BUILT_IN = ("cyclegan", "unit", "munit", "timm")


@pytest.mark.parametrize(
    ("name", "dims"), [case for case in registered_cases() if case[0] in BUILT_IN]
)
def test_every_built_in_adapter_conforms(name: str, dims: int) -> None:
    report = assert_adapter_conforms(name, dims=dims)
    assert [r.name for r in report.results] == list(CHECKS)
    assert report.counts() == {"pass": len(CHECKS), "fail": 0, "skip": 0}


def test_registered_cases_cover_the_built_ins() -> None:
    cases = set(registered_cases())
    assert {("cyclegan", 3), ("unit", 3), ("munit", 3), ("timm", 2)} <= cases
    assert ("timm", 3) not in cases


def test_different_channel_counts_skip_the_sati_checks() -> None:
    report = check_adapter("cyclegan", in_channels=1, out_channels=3, options={"lambda_idt": 0.0})
    skipped = {r.name for r in report.results if r.status == "skip"}
    assert skipped == {"sati_step", "tiling[sati]"}
    assert report.ok


# -- the kit catches what SATI cannot work with ------------------------------------------------
def _factory(patch):
    """A cyclegan factory whose adapter is altered by ``patch(adapter)``."""
    info = get_adapter_info("cyclegan")

    def factory(**kwargs):
        adapter = info.factory(**kwargs)
        patch(adapter)
        return adapter

    return factory


def _options() -> dict:
    info = get_adapter_info("cyclegan")
    return info.resolve_options(info.test_options)


def _status(report, name: str) -> str:
    return next(r.status for r in report.results if r.name == name)


def test_kit_catches_generator_outputs_outside_the_encoded_range() -> None:
    def raw_tanh(adapter):
        adapter.generator_xy.encoding = False  # tanh values not mapped to Y's [0, 1]

    report = check_adapter(
        _factory(raw_tanh), options=_options(), checks=["generator_xy", "translate"]
    )
    assert not report.ok
    assert all(r.status == "fail" and "encoded range" in r.detail for r in report.results)


def test_kit_catches_a_detached_y_hat() -> None:
    def detach(adapter):
        step = adapter.generator_step
        adapter.generator_step = lambda x, y: (lambda loss, y_hat: (loss, y_hat.detach()))(
            *step(x, y)
        )

    report = check_adapter(_factory(detach), options=_options(), checks=["host_step"])
    assert _status(report, "host_step") == "fail"
    assert "no graph" in report.results[0].detail


def test_kit_catches_batch_dependent_translation() -> None:
    def mix_batch(adapter):
        translate = adapter.translate
        adapter.translate = types.MethodType(
            lambda self, x, seed=None: translate(x.roll(1, 0), seed=seed), adapter
        )

    report = check_adapter(
        _factory(mix_batch), options=_options(), checks=["translate", "tiling[simple]"]
    )
    assert [r.status for r in report.results] == ["fail", "fail"]
    assert "depends on the other tiles" in report.results[0].detail


def test_kit_catches_unseeded_builds_and_frozen_weights() -> None:
    def unseeded(adapter):
        torch.manual_seed(random.randrange(2**31))
        for param in adapter.generator_xy.parameters():
            torch.nn.init.normal_(param, 0, 0.02)

    report = check_adapter(
        _factory(unseeded), options=_options(), checks=["determinism", "state_dict"]
    )
    assert _status(report, "determinism") == "fail"
    assert _status(report, "state_dict") == "pass"

    frozen = check_adapter("cyclegan", options={"lr": 0.0}, checks=["sati_step"])
    assert _status(frozen, "sati_step") == "fail" and "did not move" in frozen.results[0].detail


def test_a_normalisation_the_engine_cannot_reach_fails_by_name() -> None:
    import torch.nn.functional as F

    def functional_norm(adapter):  # the generator's output normalised by a functional call
        generator = adapter.generator_xy
        forward = generator.forward
        generator.forward = lambda x: torch.tanh(F.instance_norm(forward(x)))

    report = check_adapter(
        _factory(functional_norm), options=_options(), checks=["shared_statistics"]
    )
    assert _status(report, "shared_statistics") == "fail"
    assert "torch.nn.functional.instance_norm" in report.results[0].detail


def test_assert_wrapper_raises_with_the_report() -> None:
    def raw_tanh(adapter):
        adapter.generator_xy.encoding = False

    with pytest.raises(ConformanceError, match=r"FAIL\s+generator_xy"):
        assert_adapter_conforms(
            _factory(raw_tanh), options=_options(), checks=["build", "generator_xy"]
        )
    with pytest.raises(ValueError, match="unknown checks"):
        check_adapter("cyclegan", checks=["nope"])


# -- satikit check-adapter ----------------------------------------------------------------------
def test_check_adapter_command_prints_a_line_per_check() -> None:
    result = CliRunner().invoke(cli, ["check-adapter", "unit", "--dims", "2"])
    assert result.exit_code == 0, result.output
    for check in CHECKS:
        assert f"PASS  {check}" in result.output
    assert f"unit: conforms ({len(CHECKS)} checks)" in result.output


def test_check_adapter_command_json_options_and_errors() -> None:
    result = CliRunner().invoke(
        cli, ["check-adapter", "cyclegan", "--dims", "2", "--json", "-o", "ngf", "2"]
    )
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.output)
    assert report["ok"] and report["options"]["ngf"] == 2
    assert CliRunner().invoke(cli, ["check-adapter", "nope"]).exit_code == 2
    assert CliRunner().invoke(cli, ["check-adapter", "timm", "--dims", "3"]).exit_code == 2
    failing = CliRunner().invoke(cli, ["check-adapter", "cyclegan", "--dims", "2", "-o", "lr", "0"])
    assert failing.exit_code == 1 and "FAIL  sati_step" in failing.output
    assert "does NOT conform" in failing.output
