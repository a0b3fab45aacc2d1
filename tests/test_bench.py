"""The quality benchmark harness end to end on a tiny config (tiny data, a few steps)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import planning, quality, report, scoring, training_runs, variants
from benchmarks.bench_config import BenchConfig, InferenceConfig

TINY = """
name = "tiny"
adapters = ["cyclegan"]
seeds = [0]
ablation_seeds = [0]
ablations = ["domain_encoding"]
jobs = 1
threads_per_job = 1

[data]
preset = "small"
size = 64
count = 12
n_images = 2
n_test = 1
seed = 3

[train]
crop = 32
batch_size = 2
steps = 2
device = "cpu"

[train.options.cyclegan]
ngf = 4
n_blocks = 1
ndf = 4
n_layers = 2

[inference]
tile = 32
overlap = 8
weighted_shift = 8
gaussian_overlap = 16
batch_size = 4
"""


@pytest.fixture()
def tiny_config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_plan_covers_standard_sati_and_ablations(tiny_config):
    config = planning.load_config(str(tiny_config))
    runs = planning.plan_runs(config)
    assert [r.variant for r in runs] == ["standard", "sati", "sati-wo-domain-encoding"]
    assert planning.methods_for(runs[0]) == ["none", "simple", "weighted", "weighted-gaussian"]
    assert training_runs.train_config(config, runs[2]).sati.domain_encoding is False
    standard = training_runs.train_config(config, runs[0]).sati
    assert standard.enabled is False and standard.domain_encoding is False  # plain CycleGAN
    assert training_runs.train_config(config, runs[1]).sati.domain_encoding is True


def test_per_adapter_plan_overrides_seeds_and_ablations(tiny_config):
    raw = planning.load_config(str(tiny_config)).as_dict()
    raw["adapters"] = ["cyclegan", "munit"]
    raw["per_adapter"] = {"munit": {"seeds": [1, 2], "ablation_seeds": []}}
    config = BenchConfig.from_dict(raw)
    munit = [r for r in planning.plan_runs(config) if r.adapter == "munit"]
    assert [(r.variant, r.seed) for r in munit] == [
        ("standard", 1),
        ("sati", 1),
        ("standard", 2),
        ("sati", 2),
    ]
    assert [r.adapter for r in planning.plan_runs(config, ["munit"])] == ["munit"] * 4
    with pytest.raises(ValueError, match="unit.*not in config"):
        planning.plan_runs(config, ["unit"])
    raw["per_adapter"]["munit"]["seed"] = [0]
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['seed'\]"):
        planning.plan_runs(BenchConfig.from_dict(raw))


def test_per_adapter_steps_and_finetune_settings(tiny_config):
    raw = planning.load_config(str(tiny_config)).as_dict()
    raw["adapters"] = ["cyclegan", "munit"]
    raw["models"] = ["standard", "sati-finetune", "control"]
    raw["ablation_seeds"] = []
    raw["finetune"] = {"steps": 3, "sati": {"lambda_d_sati": 0.5}}
    raw["per_adapter"] = {
        "munit": {"steps": 7, "finetune_steps": 5, "finetune_sati": {"lambda_consistency": 1.0}}
    }
    config = BenchConfig.from_dict(raw)
    steps = {
        (r.adapter, r.variant): planning.run_steps(config, r) for r in planning.plan_runs(config)
    }
    assert steps == {
        ("cyclegan", "standard"): 2,
        ("cyclegan", "sati-finetune"): 3,
        ("cyclegan", "control"): 3,
        ("munit", "standard"): 7,
        ("munit", "sati-finetune"): 5,
        ("munit", "control"): 5,
    }
    settings = {
        (r.adapter, r.variant): training_runs.train_config(config, r).sati
        for r in planning.plan_runs(config)
    }
    munit, cyclegan = settings["munit", "sati-finetune"], settings["cyclegan", "sati-finetune"]
    assert (munit.lambda_consistency, munit.lambda_d_sati) == (1.0, 0.5)  # on top of [finetune]
    assert (cyclegan.lambda_consistency, cyclegan.lambda_d_sati) == (0.0, 0.5)
    assert settings["munit", "control"].enabled is False
    assert (
        training_runs.train_config(config, planning.Run("munit", "control", 0)).training.steps == 5
    )
    # a variant's --steps applies to every adapter, also one with its own steps
    varied = variants.variant_config(config, "standard", {}, 11)
    assert planning.run_steps(varied, planning.Run("munit", "standard", 0)) == 11
    raw["per_adapter"]["munit"]["finetune_sati"] = {"lambda_stitchh": 1.0}
    with pytest.raises(ValueError, match=r"finetune_sati.*lambda_stitchh"):
        BenchConfig.from_dict(raw)
    raw["per_adapter"]["munit"] = {"steps": 0}
    with pytest.raises(ValueError, match=r"per_adapter.munit.steps.*>= 1"):
        BenchConfig.from_dict(raw)


def test_bench_cli_names_an_adapter_the_config_lacks(tiny_config, tmp_path):
    from click.testing import CliRunner

    from satikit.cli import cli

    with pytest.raises(ValueError, match="adapter"):
        quality.run_benchmark(str(tiny_config), adapters=["unit"], cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # refused before any data or training
    args = ["bench", "quality", "--config", str(tiny_config), "--adapter", "unit"]
    result = CliRunner().invoke(cli, args)  # fails in the same place: no files written
    assert result.exit_code != 0 and "adapter(s) unit not in config 'tiny'" in result.output


def test_adapter_options_and_sati_overrides_do_not_move_the_cache_folder(tiny_config, tmp_path):
    config = planning.load_config(str(tiny_config))
    before = planning.workdir(config, tmp_path)
    options = {**config.train.options, "munit": {"dim": 8}}
    sati = {"lambda_stitch": 5.0}  # checked per run: standard runs stay
    config = replace(config, train=replace(config.train, options=options, sati=sati))
    assert planning.workdir(config, tmp_path) == before
    sati = planning.plan_runs(config)[1]
    assert training_runs.train_config(config, sati).sati.lambda_stitch == 5.0
    config = replace(config, train=replace(config.train, steps=3))
    assert planning.workdir(config, tmp_path) != before


def test_reports_without_matplotlib_are_refused_before_any_work(tiny_config, tmp_path, monkeypatch):
    from benchmarks import common

    check = common.require_plotting
    with pytest.raises(ValueError, match=r"no_such_plotter.*\[bench\]"):
        check("no_such_plotter")
    check("json")  # an installed module passes
    monkeypatch.setattr(common, "require_plotting", lambda: check("no_such_plotter"))
    with pytest.raises(ValueError, match="no_such_plotter"):
        quality.run_benchmark(str(tiny_config), cache=tmp_path / "cache", echo=lambda _: None)
    assert not (tmp_path / "cache").exists()  # no data made, nothing trained


def test_unknown_config_lists_known_ones():
    with pytest.raises(ValueError, match="cpu-small"):
        planning.load_config("no-such-config")


def test_seam_objects_marks_circles_crossing_the_middle_of_an_overlap():
    labels = np.zeros((64, 64), np.int32)
    labels[10:14, 10:14] = 1  # interior
    labels[26:31, 3:6] = 2  # crosses the seam at 24 + 4 = 28 (tile 32, overlap 8)
    crossing = scoring.seam_objects(labels, 32, 8)
    assert crossing.tolist() == [False, False, True]
    # with a SATI margin of 4 the tiles start every 20 px: the seam moves to 20 + 4 = 24
    labels[22:26, 40:44] = 3
    assert scoring.seam_objects(labels, 32, 8, margin=4).tolist() == [False, False, False, True]
    config = InferenceConfig(tile=32, overlap=8, simple_overlap=0, margin=4)
    assert scoring.seam_grid("simple", config) == (0, 0)  # simple tiling's own grid
    assert scoring.seam_grid("weighted", config) == scoring.seam_grid("sati", config) == (8, 4)


def test_border_objects_marks_circles_near_the_image_edge():
    labels = np.zeros((64, 64), np.int32)
    labels[20:24, 20:24] = 1  # interior
    labels[2:6, 30:34] = 2  # 2 px from the top
    labels[30:34, 58:62] = 3  # ends 2 px before the right edge
    labels[30:34, 50:55] = 4  # ends 9 px before it
    assert scoring.border_objects(labels, 8).tolist() == [False, False, True, True, False]


def test_benchmark_runs_end_to_end_and_resumes_from_cache(tiny_config, tmp_path, monkeypatch):
    from benchmarks import common

    payload = quality.run_benchmark(
        str(tiny_config), cache=tmp_path / "cache", echo=lambda _: None, write=False
    )
    methods = {(r["model"], r["method"]) for r in payload["rows"]}
    assert ("standard", "weighted-gaussian") in methods and (
        "sati",
        "sati-wo-stitching-strategy",
    ) in methods
    assert ("sati-wo-domain-encoding", "sati-wo-domain-encoding") in methods
    for row in payload["rows"]:
        assert row["n_objects"] > 0 and row["error"] == row["n_errors"] / row["n_objects"]
        assert row["n_seam_objects"] + row["n_interior_objects"] == row["n_objects"]
        assert row["n_seam_errors"] + row["n_interior_errors"] == row["n_errors"]
        border = row["n_border_errors"] / max(row["n_border_objects"], 1)
        assert row["error_border"] == border and row["n_border_objects"] <= row["n_objects"]
    # a second call reuses the cached runs and evaluations: same numbers, now written out
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    # the box plot needs matplotlib (the bench extra, not the test one): record where it goes
    monkeypatch.setattr(common, "require_plotting", lambda: None)
    monkeypatch.setattr(quality, "box_plot", lambda rows, path, title: path.write_bytes(b""))
    again = quality.run_benchmark(
        str(tiny_config),
        adapters=["cyclegan"],
        cache=tmp_path / "cache",
        echo=lambda _: None,
    )
    assert json.dumps(again["rows"], sort_keys=True) == json.dumps(payload["rows"], sort_keys=True)
    (written,) = (tmp_path / "results" / "tiny").glob("*-cyclegan.json")
    stem = str(written.with_suffix(""))
    for tail in (".md", "-boxplot.png", "-montage-cyclegan.png"):
        assert Path(stem + tail).is_file()
    saved = json.loads(written.read_text())
    assert saved["command"].endswith("--adapter cyclegan") and saved["rows"] == again["rows"]
    assert {"config", "commit", "machine"} <= set(saved)
    table = report.markdown_table(payload["summary"])
    assert "| cyclegan | standard | simple |" in table


def _trained(tiny_config, tmp_path, n_runs: int):
    """The tiny config, its cache root and dataset, and its first ``n_runs`` runs trained."""
    config = planning.load_config(str(tiny_config))
    runs = planning.plan_runs(config)[:n_runs]
    root = tmp_path / "cache" / "root"
    data = planning.ensure_dataset(config, root)
    training_runs.train_all(config, root, data, runs, echo=lambda _: None)
    return config, root, data, runs


def test_cached_run_with_other_sati_settings_is_retrained(tiny_config, tmp_path):
    config, root, data, (standard,) = _trained(tiny_config, tmp_path, 1)
    assert training_runs.is_trained(root, standard, 2, config)
    path = planning.run_dir(root, standard) / "config.json"
    saved = json.loads(path.read_text())
    saved["sati"]["domain_encoding"] = True  # as an older harness trained the baseline
    path.write_text(json.dumps(saved))
    assert training_runs.is_stale(root, standard, config)
    assert not training_runs.is_trained(root, standard, 2, config)
    said: list[str] = []
    training_runs.train_all(config, root, data, [standard], echo=said.append)
    assert any("retraining" in line for line in said)
    assert training_runs.is_trained(root, standard, 2, config)
    assert json.loads(path.read_text())["sati"]["domain_encoding"] is False


def test_dropped_option_or_other_steps_make_a_cached_run_stale(tiny_config, tmp_path):
    config, root, data, (standard,) = _trained(tiny_config, tmp_path, 1)
    assert not training_runs.is_stale(root, standard, config)
    path = planning.run_dir(root, standard) / "config.json"
    saved = json.loads(path.read_text())
    del saved["adapter"]["options"]["pool_size"]  # an option the run predates: its default
    path.write_text(json.dumps(saved))
    assert not training_runs.is_stale(root, standard, config)
    raw = config.as_dict()
    del raw["train"]["options"]["cyclegan"]["ngf"]  # back to the default ngf (64)
    dropped = BenchConfig.from_dict(raw)
    assert training_runs.is_stale(root, standard, dropped)
    # same folder (a variant label), another target
    longer = replace(config, train=replace(config.train, steps=3))
    assert training_runs.is_stale(root, standard, longer)
    assert not training_runs.is_trained(root, standard, 3, longer)


def test_found_runs_can_skip_partial_runs(tiny_config, tmp_path):
    config, root, _, (standard, sati) = _trained(tiny_config, tmp_path, 2)
    path = planning.run_dir(root, sati) / "config.json"
    saved = json.loads(path.read_text())
    saved["training"]["step"] = 1  # as a checkpoint of an unfinished run leaves it
    path.write_text(json.dumps(saved))
    assert training_runs.found_runs(root) == sorted([standard, sati], key=lambda r: r.name)
    assert training_runs.found_runs(root, finished=True) == [standard]


def test_variant_trains_with_its_overrides_and_reports_under_its_label(tiny_config, tmp_path):
    payload = variants.run_variant(
        str(tiny_config),
        "sati",
        [0],
        {"domain_encoding": False, "lambda_d_sati": 0.5},
        steps=3,
        options={"lambda_idt": 2.5},
        adapters=["cyclegan"],
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    label = "sati-domain-encoding-false-lambda-d-sati-0.5-lambda-idt-2.5-3steps"
    assert payload["label"] == label and {r["model"] for r in payload["rows"]} == {label}
    assert payload["command"].endswith("--steps 3 --adapter cyclegan")  # the default label
    assert {r["method"] for r in payload["rows"]} == {"sati", "sati-wo-stitching-strategy", "none"}
    (run,) = (tmp_path / "cache").glob(f"tiny-*/variants/{label}/runs/cyclegan/sati-seed0")
    saved = json.loads((run / "config.json").read_text())
    assert saved["sati"]["domain_encoding"] is False and saved["sati"]["lambda_d_sati"] == 0.5
    assert saved["training"]["step"] == 3 and saved["adapter"]["options"]["lambda_idt"] == 2.5
    with pytest.raises(ValueError, match="unknown SATI setting"):
        variants.variant_config(planning.load_config(str(tiny_config)), "sati", {"lamda": 1}, None)
    assert variants.parse_value("false") is False and variants.parse_value("0.5") == 0.5


def test_ship_demo_picks_the_median_seed():
    from benchmarks.ship_demo import median_seed

    rows = [
        {"model": "sati", "method": "sati", "error": e, "seed": s}
        for s, e in [(0, 0.08), (1, 0.04), (2, 0.027), (3, 0.5)]
    ]
    rows.append({"model": "sati", "method": "none", "error": 0.0, "seed": 9})
    assert median_seed(rows, "sati", "sati") == 1  # errors 2.7, 4, 8, 50: lower middle
    with pytest.raises(ValueError, match="no standard"):
        median_seed(rows, "standard", "weighted")


def test_engine_speed_skips_methods_and_drops_the_ratios_that_need_them():
    from benchmarks import engine_speed

    result = engine_speed.measure((40, 40), 16, 4, 2, 1, skip=("none", "monai weighted"))
    methods = {row["method"] for row in result["rows"]}
    assert "none" not in methods and "sati raster" in methods
    assert all(row["ratio_to_none"] is None for row in result["rows"])
    assert "weighted_over_monai" not in result["ratios"]
    assert "weighted_over_monai_same_forward" not in result["ratios"]
    # every strategy spends part of its time outside the net, the net the rest
    assert all(0 < row["outside_forward"] < 1 for row in result["rows"])
    # 40 px at tile 16: overlap 4 -> 3 x 3 tiles, side by side -> 3 x 3, 50 % -> 4 x 4
    assert result["tiles"] == {"overlap": 9, "no_overlap": 9, "half": 16}
    assert result["ratios"]["sati_over_simple_tile_count"] == 1.0
    with pytest.raises(ValueError, match="unknown method"):
        engine_speed.measure((40, 40), 16, 4, 2, 1, skip=("fastest",))


def test_snapshots_at_every_checkpoint_give_learning_curves(tiny_config, tmp_path, monkeypatch):
    from benchmarks import common, learning_curve
    from satikit.checkpoint import load_adapter

    with_snapshots = tmp_path / "snap.toml"
    text = tiny_config.read_text().replace("steps = 2", "steps = 4")
    with_snapshots.write_text("snapshots = true\n" + text)
    config = planning.load_config(str(with_snapshots))
    root = planning.workdir(config, tmp_path / "cache")
    standard, sati = planning.plan_runs(config)[:2]
    data = planning.ensure_dataset(config, root)
    training_runs.train_all(config, root, data, [standard, sati], echo=lambda _: None)
    kept = training_runs.snapshots(root, sati)
    assert [step for step, _ in kept] == [1, 2, 3, 4]  # checkpoint_every = steps // 6 -> 1
    # the last snapshot holds the final weights; an earlier one does not
    final = load_adapter(planning.run_dir(root, sati))[0].state_dict()
    last, first = (load_adapter(kept[i][1])[0].state_dict() for i in (-1, 0))
    assert all(torch.equal(final[k], last[k]) for k in final)
    assert not all(torch.equal(final[k], first[k]) for k in final)

    payload = learning_curve.run_learning_curve(
        str(with_snapshots), 1, cache=tmp_path / "cache", echo=lambda _: None, write=False
    )
    curves = payload["curves"]
    assert set(curves) == {
        "cyclegan standard + none",
        "cyclegan sati + none",
        "cyclegan sati + sati",
    }
    assert all(list(c) == ["1", "2", "3", "4"] for c in curves.values())
    from satikit.io.images import list_images, read_image

    labels = read_image(list_images(data / "test" / "labels")[0])  # the one image scored
    n_objects = len(np.unique(labels[labels > 0]))
    for row in payload["rows"]:
        errors = row["error"] * n_objects
        assert row["n_objects"] == n_objects and abs(errors - round(errors)) < 1e-9
    assert "| 4 |" in learning_curve.markdown(learning_curve.medians(payload["rows"]))

    # a variant's runs keep snapshots too, and are scored under their label
    variants.run_variant(
        str(with_snapshots),
        "sati",
        [0],
        {},
        steps=2,
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    payload = learning_curve.run_learning_curve(
        str(with_snapshots),
        1,
        variant="sati-2steps",
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    assert set(payload["curves"]) == {"cyclegan sati + none", "cyclegan sati + sati"}
    assert list(payload["curves"]["cyclegan sati + sati"]) == ["1", "2"]
    assert payload["command"].endswith("--variant sati-2steps")
    # on the validation images (where a snapshot may be chosen): other images, other counts
    on_validation = learning_curve.run_learning_curve(
        str(with_snapshots),
        1,
        variant="sati-2steps",
        split="validation",
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    assert (
        on_validation["split"] == "validation" and "--split validation" in on_validation["command"]
    )
    validation = planning.validation_data(config, root)
    v_labels = read_image(list_images(validation / "test" / "labels")[0])
    assert {r["n_objects"] for r in on_validation["rows"]} == {
        len(np.unique(v_labels[v_labels > 0]))
    }
    # each run's snapshot with the lowest validation error, then scored on the test images
    (chosen,) = on_validation["chosen"]
    lowest = min((r["error"], r["step"]) for r in on_validation["rows"] if r["method"] == "none")[1]
    assert chosen["step"] == lowest and chosen["split"] == "test" and chosen["n_objects"] > 0
    assert chosen["chosen_on"] == "validation"

    # written as JSON + markdown + picture under one stem
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    # the picture needs matplotlib (the bench extra, not the test one): record where it goes
    monkeypatch.setattr(common, "require_plotting", lambda: None)
    monkeypatch.setattr(learning_curve, "plot", lambda curves, path, title: path.write_bytes(b""))
    learning_curve.run_learning_curve(
        str(with_snapshots), 1, variant="sati-2steps", cache=tmp_path / "cache", echo=print
    )
    written = sorted(p.name for p in (tmp_path / "results" / "tiny").iterdir())
    assert [n.rsplit(".", 1)[1] for n in written] == ["json", "md", "png"]
    assert all(
        n.endswith(f"-learning-curve-variant-sati-2steps.{n.rsplit('.', 1)[1]}") for n in written
    )
    text = (tmp_path / "results" / "tiny" / written[1]).read_text()
    assert text.startswith("# Learning curves of `tiny`") and "| 2 |" in text


def test_chosen_snapshot_is_the_lowest_none_error_and_the_earliest_on_a_tie():
    from benchmarks.learning_curve import chosen_snapshots

    def row(step, error, method="none", seed=0):
        return {"adapter": "a", "model": "m", "seed": seed, "step": step, "error": error,
                "method": method}  # fmt: skip

    rows = [row(1, 0.5), row(2, 0.2), row(3, 0.2), row(4, 0.1, "sati"), row(1, 0.3, seed=1)]
    assert chosen_snapshots(rows) == {("a", "m", 0): 2, ("a", "m", 1): 1}


def test_learning_curve_without_snapshots_says_how_to_get_them(tiny_config, tmp_path):
    from benchmarks import learning_curve

    with pytest.raises(ValueError, match="snapshots = true"):
        learning_curve.run_learning_curve(
            str(tiny_config), 1, cache=tmp_path / "cache", echo=lambda _: None, write=False
        )


def test_shipped_config_drops_local_paths_and_unshipped_checksums():
    from benchmarks.ship_demo import shipped_config
    from satikit.checkpoint import DataSpec, RunConfig

    run = RunConfig(
        data=DataSpec(dims=2, in_channels=3, out_channels=3, x=("/home/me/x",), y=("/home/me/y",)),
        files={"model.safetensors": "aa", "state.safetensors": "bb"},
    )
    shipped = shipped_config(run).to_dict()
    assert shipped["data"] == {
        "dims": 2,
        "in_channels": 3,
        "out_channels": 3,
        "output_dtype": "uint8",
    }
    assert shipped["checkpoint"]["files"] == {"model.safetensors": "aa"}
    assert run.data.x == ("/home/me/x",)  # the run's own config is left alone


def test_edge_distance_is_the_centre_offset_from_the_nearest_leading_tile_edge():
    from benchmarks.seam_profile import edge_distance

    labels = np.zeros((72, 72), dtype=np.int32)
    # 3x3 squares centred at (10, 10), (30, 10), (30, 50), (10, 26), (30, 66);
    # tile 32, overlap 8: step 24, image border band 8 px
    centres = [(10, 10), (30, 10), (30, 50), (10, 26), (30, 66)]
    for i, (r, c) in enumerate(centres, start=1):
        labels[r - 1 : r + 2, c - 1 : c + 2] = i
    distance = edge_distance(labels, tile=32, overlap=8)
    assert distance.shape == (6,)
    assert np.isinf(distance[0]) and np.isinf(distance[1])  # first tile in both dims
    assert distance[2] == 6  # 30 mod 24 in dim 0; dim 1 has no leading edge
    assert distance[3] == 2  # min(30 mod 24, 50 mod 24)
    assert distance[4] == 2  # dim 0 none; 26 mod 24
    assert np.isinf(distance[5])  # reaches the image border band (column 67 > 72 - 8)
    # with a margin of 4 the tiles start every 20 px
    assert list(edge_distance(labels, tile=32, overlap=8, margin=4)[2:5]) == [10, 10, 6]
    assert np.isinf(edge_distance(np.zeros((8, 8), np.int32), 4, 1)).all()


def test_seam_profile_bins_every_circle_outside_the_first_tile(tiny_config, tmp_path, monkeypatch):
    from benchmarks import common, seam_profile
    from satikit.io.images import list_images, read_image

    config = planning.load_config(str(tiny_config))
    root = planning.workdir(config, tmp_path / "cache")
    data = planning.ensure_dataset(config, root)
    training_runs.train_all(config, root, data, planning.plan_runs(config)[:2], echo=lambda _: None)
    payload = seam_profile.run_seam_profile(
        str(tiny_config),
        bin_width=8,
        margins=[2],
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    assert (
        set(payload["profiles"])
        == set(payload["whole_image"])
        == {
            "cyclegan standard + none",
            "cyclegan standard + weighted",
            "cyclegan sati + none",
            "cyclegan sati + sati",
            "cyclegan sati + sati-margin-2",
        }
    )
    # tile 32, overlap 8: step 24 in bins of 8 -> 0, 8, 16; with margin 2, step 22 -> same
    assert all(list(p) == ["0", "8", "16"] for p in payload["profiles"].values())
    expected, everything = {}, 0
    for path in list_images(data / "test" / "x"):
        label = read_image(data / "test" / "labels" / path.name)
        for margin in (0, 2):
            distance = seam_profile.edge_distance(label, 32, 8, margin)
            expected[margin] = expected.get(margin, 0) + int(np.isfinite(distance[1:]).sum())
        everything += len(distance) - 1
    assert 0 < expected[0] < everything
    for key in payload["profiles"]:
        model, method = key.split(" ", 1)[1].split(" + ")
        rows = [r for r in payload["rows"] if (r["model"], r["method"]) == (model, method)]
        binned = sum(r["n"] for r in rows if r["bin_start"] is not None)
        assert binned == expected[2 if method.endswith("margin-2") else 0]
        assert [r["n"] for r in rows if r["bin_start"] is None] == [everything]
        assert all(0 <= r["errors"] <= r["n"] for r in rows)
    # a validation set: same parameters, another seed (not the test set's)
    other = seam_profile.run_seam_profile(
        str(tiny_config),
        validation_seed=4,
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    assert other["images"] == "validation seed 4"
    assert other["command"].endswith("--validation-seed 4")
    validation = root / "validation-4" / "data" / "test" / "x"
    first = list_images(validation)[0]
    assert not np.array_equal(read_image(first), read_image(data / "test" / "x" / first.name))
    with pytest.raises(ValueError, match="seed of the test set"):
        seam_profile.run_seam_profile(
            str(tiny_config), validation_seed=3, cache=tmp_path / "cache", write=False
        )

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(common, "require_plotting", lambda: None)  # matplotlib: bench extra
    monkeypatch.setattr(seam_profile, "plot", lambda *args: args[1].write_bytes(b""))
    seam_profile.run_seam_profile(
        str(tiny_config), bin_width=8, cache=tmp_path / "cache", echo=lambda _: None
    )
    written = sorted(p.name for p in (tmp_path / "results" / "tiny").iterdir())
    assert [n.rsplit(".", 1)[1] for n in written] == ["json", "md", "png"]
    text = (tmp_path / "results" / "tiny" / written[1]).read_text()
    assert "| 0-8 (seam) | 8-16 (strip edge) | 16-24 |" in text


def test_seam_profile_without_trained_runs_says_how_to_get_them(tiny_config, tmp_path):
    from benchmarks import seam_profile

    with pytest.raises(ValueError, match="satikit bench quality"):
        seam_profile.run_seam_profile(
            str(tiny_config), cache=tmp_path / "cache", echo=lambda _: None, write=False
        )


def test_strip_swap_shows_the_generator_the_source_in_every_leading_strip():
    from benchmarks.strip_probe import StripSwap, sati_with_source
    from satikit.stitching.grid import TileGrid
    from satikit.stitching.windows import strip_mask

    grid = TileGrid.create((40, 36), 16, 4, sati=True)
    x = np.full((3, 40, 36), -1.0, dtype=np.float32)
    source = np.full_like(x, 0.5)
    seen: list[torch.Tensor] = []

    def identity(tiles: torch.Tensor) -> torch.Tensor:
        seen.append(tiles.clone())
        return tiles

    sati_with_source(x, identity, grid, source)
    order = list(grid.raster())
    assert len(seen) == len(order) == grid.n_tiles > 4
    for tiles, index in zip(seen, order):
        strip = strip_mask(grid.tile, grid.overlap, grid.leading(index))
        expected = np.where(strip, 0.5, -1.0)
        np.testing.assert_array_equal(tiles[0].numpy(), np.broadcast_to(expected, (3, 16, 16)))
    assert not strip_mask(grid.tile, grid.overlap, grid.leading(order[0])).any()
    # without a source it is plain SATI: the identity's canvas is x everywhere
    np.testing.assert_array_equal(sati_with_source(x, identity, grid, None), x)
    with pytest.raises(ValueError, match="batch_size=1"):
        StripSwap(identity, grid, source)(torch.zeros(2, 3, 16, 16))
    swap = StripSwap(identity, grid, None)
    for _ in order:
        swap(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="more often"):
        swap(torch.zeros(1, 3, 16, 16))


def test_strip_probe_real_condition_is_the_quality_benchmarks_sati(
    tiny_config, tmp_path, monkeypatch
):
    from benchmarks import common, strip_probe
    from satikit.io.images import list_images, read_image

    config = planning.load_config(str(tiny_config))
    with pytest.raises(ValueError, match="satikit bench quality"):
        strip_probe.run_strip_probe(str(tiny_config), cache=tmp_path / "cache", write=False)
    root = planning.workdir(config, tmp_path / "cache")
    data = planning.ensure_dataset(config, root)
    standard, sati = planning.plan_runs(config)[:2]
    training_runs.train_all(config, root, data, [standard, sati], echo=lambda _: None)
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    payload = strip_probe.run_strip_probe(
        str(tiny_config), ["cyclegan"], cache=tmp_path / "cache", echo=lambda _: None
    )
    rows = {r["condition"]: r for r in payload["rows"]}
    assert list(rows) == ["none", *strip_probe.CONDITIONS]  # the standard run is not probed
    assert {r["model"] for r in payload["rows"]} == {"sati"}
    reference = {r["method"]: r for r in scoring.evaluate_run(config, root, data, sati)}
    for condition, method in (("real", "sati"), ("none", "none")):
        assert rows[condition]["n_errors"] == reference[method]["n_errors"]
        assert rows[condition]["n_objects"] == reference[method]["n_objects"]
    far = sum(
        int(strip_probe.far_objects(read_image(p), 32, 8, 10)[1:].sum())
        for p in list_images(data / "test" / "labels")
    )
    for r in rows.values():
        assert r["n_objects"] == rows["none"]["n_objects"] > 0
        assert r["n_far_objects"] == far and 0 <= r["n_far_errors"] <= far
        assert 0 <= r["n_seam_errors"] <= r["n_seam_objects"] < r["n_objects"]
        assert r["n_seam_errors"] <= r["n_errors"] <= r["n_objects"]
    assert payload["command"].endswith("--config " + str(tiny_config) + " --adapter cyclegan")
    written = sorted(p.name for p in (tmp_path / "results" / "tiny").iterdir())
    assert [n.rsplit(".", 1)[1] for n in written] == ["json", "md"]
    table = (tmp_path / "results" / "tiny" / written[1]).read_text()
    assert table.count("| adapter | seeds | none | real | other-image |") == 2  # far, all
    assert "| cyclegan | 1 |" in table


def test_far_objects_are_a_diameter_past_the_strip_edge():
    from benchmarks.strip_probe import far_objects

    labels = np.zeros((72, 72), dtype=np.int32)
    # tile 32, overlap 8 (step 24): centres at 30 and 44 in dim 0 are 6 and 20 px past an edge
    for i, (r, c) in enumerate([(30, 10), (44, 10), (10, 10)], start=1):
        labels[r - 1 : r + 2, c - 1 : c + 2] = i
    assert far_objects(labels, 32, 8, 10).tolist() == [False, False, True, False]
    assert far_objects(labels, 32, 8, 14).tolist() == [False] * 4


def test_engine_speed_times_a_unet_and_a_channels_last_forward():
    from benchmarks import engine_speed

    net = engine_speed.MODELS["unet"](2)
    x = torch.zeros(2, 3, 16, 16)
    assert net(x).shape == x.shape
    result = engine_speed.measure(
        (40, 40), 16, 4, 2, 1, skip=("monai weighted",), model="unet", variants=("channels-last",)
    )
    methods = {row["method"] for row in result["rows"]}
    assert {"weighted (channels-last)", "forward only (channels-last)", "sati auto"} <= methods
    ratios = result["ratios"]
    assert ratios["forward_channels-last_over_forward"] > 0
    assert ratios["sati_auto_over_raster"] > 0 and ratios["forward_batch_over_batch_1"] > 0
    with pytest.raises(ValueError, match="unknown forward variant"):
        engine_speed.measure((40, 40), 16, 4, 2, 1, variants=("fp4",))


def test_engine_speed_runs_of_one_commit_keep_their_own_files():
    from argparse import Namespace

    from benchmarks.engine_speed import run_suffix

    assert run_suffix(Namespace(sizes=[2048], volumes=[128], model="unet")) == (
        "-2048-128x128x128-unet"
    )
    assert run_suffix(Namespace(sizes=[8192], volumes=[], model="small")) == "-8192"


def test_ship_lineage_picks_the_median_lineage_and_each_models_tiled_method():
    from benchmarks.ship_demo import chosen_model, median_lineage

    comparison = {
        "lineages": [
            {"adapter": "cyclegan", "seed": s, "ratio": r}
            for s, r in [(0, 0.9), (1, 0.4), (2, 0.6)]
        ]
        + [{"adapter": "cyclegan", "seed": 3, "missing": ["sati"]}]
    }
    assert median_lineage(comparison, "cyclegan")["seed"] == 2
    with pytest.raises(ValueError, match="no compared lineage"):
        median_lineage(comparison, "unit")
    inference = InferenceConfig(tile=64, overlap=16, weighted_shift=16, gaussian_overlap=32)
    rows = [
        {"model": m, "method": x, "error": e, "cost": c, "seed": 2}
        for m, x, e, c in [
            ("standard", "none", 0.01, 1.0),  # no tiling is no choice
            ("standard", "gaussian@25", 0.08, 1.9),
            ("standard+ema", "gaussian@50/thumbnail:1", 0.05, 4.5),
            ("control", "gaussian@25", 0.04, 1.9),
            ("sati-finetune", "gaussian@25", 0.01, 1.9),  # not SATI inference
            ("sati-finetune+ema", "sati@25+m12", 0.06, 3.1),
            ("sati-finetune", "sati@25+m8", 0.07, 2.6),
        ]
    ]
    assert chosen_model(rows, "standard", 2, inference)["model"] == "standard+ema"
    assert chosen_model(rows, "control", 2, inference)["method"] == "gaussian@25"
    sati = chosen_model(rows, "sati-finetune", 2, inference)
    assert (sati["model"], sati["method"]) == ("sati-finetune+ema", "sati@25+m12")
    with pytest.raises(ValueError, match="no tiled rows"):
        chosen_model(rows, "control", 0, inference)
    # a repeated fine-tune competes with its first run; another model's rows do not
    rows += [
        {"model": "control-2+best", "method": "gaussian@50", "error": 0.03, "cost": 4.0, "seed": 2},
        {"model": "sati-finetune-2", "method": "sati@25", "error": 0.02, "cost": 2.6, "seed": 2},
    ]
    assert chosen_model(rows, "control", 2, inference)["model"] == "control-2+best"
    assert chosen_model(rows, "sati-finetune", 2, inference)["model"] == "sati-finetune-2"
    assert chosen_model(rows, "standard", 2, inference)["model"] == "standard+ema"


def test_variant_tables_of_data_with_a_known_truth_show_its_scores():
    from benchmarks.report import markdown_table, summarise

    rows = [
        {"adapter": "cyclegan", "model": "sati", "method": "sati", "seed": s, "error": e,
         "mae": 255 * e, "seam_score": seam, "tile_deviation": dev}
        for s, e, seam, dev in ((0, 0.10, 1.5, 4.0), (1, 0.12, 2.5, 6.0))
    ]  # fmt: skip
    (summary,) = summarise(rows)
    assert summary["seam"] is None and summary["seam_score"] == 2.0
    assert summary["tile_deviation"] == 5.0
    table = markdown_table([summary])
    assert "| seam score | tile deviation |" in table
    assert "| cyclegan | sati | sati | 2 | 11.00 | 11.00 | 1.00 | 10.00 | 2.00 | 5.00 |" in table


def test_scores_are_reused_through_a_linked_cache_folder(tiny_config, tmp_path, monkeypatch):
    """A second checkout reaching the same cache through a symbolic link scores nothing again."""
    config, root, data, runs = _trained(tiny_config, tmp_path, 1)
    first = scoring.evaluate_run(config, root, data, runs[0], methods=["none"])
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "cache")

    def rescored(*args, **kwargs):
        raise AssertionError("scored again")

    monkeypatch.setattr(scoring, "score_method", rescored)
    linked_root, linked_data = (
        link / root.relative_to(tmp_path / "cache"),
        link / data.relative_to(tmp_path / "cache"),
    )
    again = scoring.evaluate_run(config, linked_root, linked_data, runs[0], methods=["none"])
    assert again == first


def test_learning_curves_score_sati_only_on_models_trained_with_it():
    from benchmarks import learning_curve

    assert learning_curve.methods_for("standard") == ("none",)
    assert learning_curve.methods_for("control") == ("none",)  # a fine-tune without SATI
    assert learning_curve.methods_for("sati-finetune") == ("none", "sati")
    assert learning_curve.methods_for("sati-wo-domain-encoding") == ("none", "sati")


def test_colour_shares_sort_each_circle_by_its_colours():
    from benchmarks.colour_shares import shares_of

    present = np.array(
        [[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=bool
    )
    assert shares_of(present) == {"red": 1, "green": 0, "blue": 2, "none": 1, "several": 2}


def test_colour_shares_count_every_circle_once_and_agree_with_the_paper_error(
    tiny_config, tmp_path
):
    from benchmarks import colour_shares

    config = planning.load_config(str(tiny_config))
    root = planning.workdir(config, tmp_path / "cache")
    data = planning.ensure_dataset(config, root)
    standard = planning.plan_runs(config)[0]
    training_runs.train_all(config, root, data, [standard], echo=lambda _: None)
    folder = str(planning.run_dir(root, standard).relative_to(root))
    with pytest.raises(ValueError, match="no run folder"):
        colour_shares.run_colour_shares(
            str(tiny_config),
            [("x", "nowhere")],
            split="test",
            cache=tmp_path / "cache",
            write=False,
        )
    payload = colour_shares.run_colour_shares(
        str(tiny_config),
        [("standard", folder)],
        split="test",
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    (row,) = payload["rows"]
    (reference,) = [
        r for r in scoring.evaluate_run(config, root, data, standard) if r["method"] == "none"
    ]
    assert row["n_objects"] == reference["n_objects"] == sum(row[s] for s in colour_shares.SHARES)
    assert row["none"] + row["several"] == reference["n_errors"]
    assert payload["command"].endswith(f"--split test --model standard={folder}")


def test_colour_shares_picture_shows_x_and_every_model(tmp_path):
    pytest.importorskip("matplotlib")
    from benchmarks.colour_shares import picture

    x = np.zeros((40, 40, 3), np.uint8)
    picture(x, {"a": x + 10, "b": x + 20}, tmp_path / "p.png", size=32)
    assert (tmp_path / "p.png").stat().st_size > 0
