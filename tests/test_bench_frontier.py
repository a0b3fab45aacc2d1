"""Fine-tunes, the validation split and the error-versus-cost frontier on a tiny config."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from test_bench import TINY

from benchmarks import frontier, planning, training_runs, variants
from benchmarks.bench_config import BenchConfig, InferenceConfig
from satikit.checkpoint import load_adapter

FINETUNE = """
[finetune]
steps = 1

[finetune.sati]
domain_encoding = false
lambda_consistency = 5.0

[frontier]
standard = ["none", "simple@0", "gaussian@25", "pyramid@50", "gaussian@25/kernel"]
sati = ["none", "sati@25"]
"""


@pytest.fixture()
def config_path(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    text = TINY.replace("ablation_seeds = [0]", "ablation_seeds = []")
    text = text.replace("seed = 3\n", "seed = 3\nvalidation_seed = 5\nn_validation = 1\n")
    path.write_text(text + FINETUNE)
    return path


def test_finetunes_are_planned_from_the_standard_model_of_their_seed(config_path):
    config = planning.load_config(str(config_path))
    runs = planning.plan_runs(config)
    finetune = planning.Run("cyclegan", planning.FINETUNE, 0)
    assert runs == [
        planning.Run("cyclegan", "standard", 0),
        planning.Run("cyclegan", "sati", 0),
        finetune,
    ]
    assert planning.init_run(config, finetune) == runs[0]
    assert planning.init_run(config, runs[1]) is None and planning.init_run(config, runs[0]) is None
    settings = training_runs.train_config(config, finetune)
    assert settings.training.steps == 1 and planning.run_steps(config, runs[1]) == 2
    assert settings.sati.lambda_consistency == 5.0 and settings.sati.domain_encoding is False
    assert training_runs.train_config(config, runs[1]).sati.lambda_consistency == 0.0
    assert planning.methods_for(finetune) == ["sati", "none"]


def test_finetune_starts_from_the_trained_standard_weights(config_path, tmp_path, monkeypatch):
    from satikit import checkpoint

    config = planning.load_config(str(config_path))
    standard, _, finetune = planning.plan_runs(config)
    root = tmp_path / "root"
    data = planning.ensure_dataset(config, root)
    loaded: list[Path] = []
    real = checkpoint.load_init
    monkeypatch.setattr(checkpoint, "load_init", lambda a, p: loaded.append(Path(p)) or real(a, p))
    training_runs.train_one(config, standard, str(root), str(data))
    training_runs.train_one(config, finetune, str(root), str(data))
    assert loaded == [planning.run_dir(root, standard)]
    saved = json.loads((planning.run_dir(root, finetune) / "config.json").read_text())
    assert saved["training"]["step"] == 1 and saved["sati"]["lambda_consistency"] == 5.0
    # one step of fine-tuning moved the weights away from the standard model's, not from scratch
    base = load_adapter(planning.run_dir(root, standard))[0].state_dict()
    tuned = load_adapter(planning.run_dir(root, finetune))[0].state_dict()
    gap = max((base[k].float() - tuned[k].float()).abs().max().item() for k in base)
    assert 0 < gap < 0.05
    # the parent trained for more steps: the fine-tune of its old weights is stale, retrained
    steps = planning.run_steps(config, finetune)
    assert training_runs.is_trained(root, finetune, steps, config)
    longer = replace(config, train=replace(config.train, steps=config.train.steps + 1))
    assert not training_runs.is_stale(root, finetune, longer)  # until the parent changes
    training_runs.train_one(longer, standard, str(root), str(data))
    assert training_runs.is_stale(root, finetune, longer)
    assert not training_runs.is_trained(root, finetune, steps, longer)
    training_runs.train_one(longer, finetune, str(root), str(data))
    assert loaded[-1] == planning.run_dir(root, standard)
    assert training_runs.is_trained(root, finetune, steps, longer)


def test_validation_split_scores_other_images_and_is_refused_on_the_test_seed(
    config_path, tmp_path
):
    config = planning.load_config(str(config_path))
    root = tmp_path / "root"
    data = planning.ensure_dataset(config, root)
    validation = planning.split_data(config, root, data, "validation")
    assert (
        validation == root / "validation-5" / "data"
        and planning.split_data(config, root, data, "test") == data
    )
    assert len(list((validation / "test" / "x").glob("*.tif"))) == 1
    test_image = (data / "test" / "x" / "00000.tif").read_bytes()
    assert (validation / "test" / "x" / "00000.tif").read_bytes() != test_image
    same_seed = replace(config, data=replace(config.data, validation_seed=3))
    with pytest.raises(ValueError, match="is the seed of the test set"):
        planning.validation_data(same_seed, tmp_path / "other")
    with pytest.raises(ValueError, match="split must be one of test, validation"):
        planning.split_data(config, root, data, "train")
    # the validation keys do not move the cache folder (the training data is the same)
    raw = config.as_dict()
    raw["data"] = {k: v for k, v in raw["data"].items() if "validation" not in k}
    plain = BenchConfig.from_dict(raw)
    assert planning.workdir(config, tmp_path) == planning.workdir(plain, tmp_path)


def test_frontier_scores_every_method_with_its_cost_and_caches(config_path, tmp_path):
    payload = frontier.run_frontier(
        str(config_path), cache=tmp_path / "cache", echo=lambda _: None, write=False
    )
    by_key = {(s["model"], s["method"]): s for s in payload["summary"]}
    assert set(by_key) == {
        ("standard", m)
        for m in ("none", "simple@0", "gaussian@25", "pyramid@50", "gaussian@25/kernel")
    } | {(model, m) for model in ("sati", planning.FINETUNE) for m in ("none", "sati@25")}
    # 64 px images, tile 32: overlap 8 -> step 24 -> 3 x 3 tiles (the last ones padded)
    assert by_key[("standard", "gaussian@25")]["tiles"] == 9
    assert by_key[("standard", "gaussian@25")]["cost"] == pytest.approx(9 * 32**2 / 64**2)
    assert by_key[("standard", "simple@0")]["cost"] == by_key[("standard", "none")]["cost"] == 1.0
    assert by_key[("standard", "pyramid@50")]["tiles"] == 9  # step 16: 3 x 3 from 0..32
    for row in payload["rows"]:
        assert row["n_seam_objects"] + row["n_interior_objects"] == row["n_objects"] > 0
        assert row["n_errors"] == row["n_seam_errors"] + row["n_interior_errors"]
    assert by_key[("standard", "none")]["family"] == "none"
    assert by_key[("sati", "sati@25")]["family"] == "sati"
    root = planning.workdir(planning.load_config(str(config_path)), tmp_path / "cache")
    cached = list(
        (root / "runs" / "cyclegan" / "standard-seed0" / "evaluations" / "test").glob("*.json")
    )
    assert len(cached) == 5
    kin = by_key[("standard", "gaussian@25/kernel")]
    assert kin["cost"] == pytest.approx(2 * by_key[("standard", "gaussian@25")]["cost"])
    assert kin["family"] == "gaussian/kernel"
    table = frontier.markdown_table(payload["summary"])
    assert "| cyclegan | standard | gaussian@25 | 9 | 2.25 |" in table
    assert by_key[("standard", "none")]["seam_score"] is None
    assert by_key[("standard", "simple@0")]["seam_score"] > 0


def test_frontier_scores_only_the_models_asked_for(config_path, tmp_path):
    payload = frontier.run_frontier(
        str(config_path),
        models=["standard"],
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    assert {s["model"] for s in payload["summary"]} == {"standard"}
    assert payload["command"].endswith("--model standard")
    root = planning.workdir(planning.load_config(str(config_path)), tmp_path / "cache")
    assert not (root / "runs" / "cyclegan" / "sati-seed0").exists()  # nothing else trained
    only = frontier.run_frontier(
        str(config_path),
        models=["standard"],
        methods=["none", "simple@0"],
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    assert {s["method"] for s in only["summary"]} == {"none", "simple@0"}
    assert only["command"].endswith("--method none --method simple@0")
    with pytest.raises(ValueError, match="not in the config's"):
        frontier.run_frontier(str(config_path), methods=["gaussian@99"], write=False)


def test_frontier_refuses_a_bad_method_before_any_work(config_path, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(config_path.read_text().replace('"pyramid@50"', '"pyramid@fifty"'))
    with pytest.raises(ValueError, match="unknown method 'pyramid@fifty'"):
        frontier.run_frontier(str(bad), cache=tmp_path / "cache", echo=lambda _: None, write=False)
    assert not (tmp_path / "cache").exists()


def test_variant_fine_tunes_the_configs_standard_model_and_scores_validation(config_path, tmp_path):
    payload = variants.run_variant(
        str(config_path),
        "sati",
        [0],
        {"lambda_consistency": 2.0, "domain_encoding": False},
        steps=1,
        init="standard",
        split="validation",
        methods=["sati@25"],
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    assert payload["label"].endswith("-1steps-from-standard")
    assert payload["command"].endswith("--init standard --split validation --method sati@25")
    assert {r["split"] for r in payload["rows"]} == {"validation"}
    assert {r["method"] for r in payload["rows"]} == {
        "sati",
        "sati-wo-stitching-strategy",
        "none",
        "sati@25",
    }
    home = planning.workdir(planning.load_config(str(config_path)), tmp_path / "cache")
    assert training_runs.is_trained(home, planning.Run("cyclegan", "standard", 0), 2)
    with pytest.raises(ValueError, match="--init takes 'standard'"):
        variants.variant_config(planning.load_config(str(config_path)), "sati", {}, None, None, "x")
    control = variants.variant_config(
        planning.load_config(str(config_path)), "standard", {}, 1, None, "standard"
    )
    assert planning.init_run(control, planning.Run("cyclegan", "standard", 0)) == planning.Run(
        "cyclegan", "standard", 0
    )


def test_models_pick_what_each_seed_trains(config_path):
    config = planning.load_config(str(config_path))
    only_finetunes = replace(config, models=("standard", planning.FINETUNE))
    assert [r.variant for r in planning.plan_runs(only_finetunes)] == [
        "standard",
        planning.FINETUNE,
    ]
    with pytest.raises(ValueError, match="unknown model"):
        planning.plan_runs(replace(config, models=("sati-fast",)))
    no_table = replace(config, finetune=None)
    assert [r.variant for r in planning.plan_runs(no_table)] == ["standard", "sati"]
    with pytest.raises(ValueError, match=r"needs a \[finetune\] table"):
        planning.plan_runs(replace(no_table, models=(planning.FINETUNE,)))


def test_repeated_finetunes_train_from_the_same_parent_with_another_seed(config_path):
    config = planning.load_config(str(config_path))
    repeats = replace(config, models=("standard", "sati-finetune-2", "control-2", "control-12"))
    runs = planning.plan_runs(repeats)
    assert [r.variant for r in runs] == ["standard", "sati-finetune-2", "control-2", "control-12"]
    parent = planning.Run("cyclegan", "standard", 0)
    for run in runs[1:]:
        assert planning.init_run(repeats, run) == parent
        assert planning.run_steps(repeats, run) == 1
    stride = planning.REPEAT_SEED_STRIDE
    seeds = [training_runs.train_config(repeats, r).training.seed for r in runs]
    assert seeds == [0, stride, stride, 11 * stride]
    sati, control = (training_runs.train_config(repeats, r).sati for r in runs[1:3])
    assert sati.enabled and sati.lambda_consistency == 5.0 and not control.enabled
    assert [planning.training_free(r.variant) for r in runs] == [True, False, True, True]
    assert frontier.frontier_methods(repeats, runs[2]) == frontier.frontier_methods(
        repeats, planning.Run("cyclegan", "standard", 0)
    )
    assert frontier.frontier_methods(repeats, runs[1]) == ["none", "sati@25"]
    for bad in ("control-1", "control-02", "standard-2", "sati-2"):
        with pytest.raises(ValueError, match="unknown model"):
            planning.plan_runs(replace(config, models=(bad,)))
    with pytest.raises(ValueError, match=r"needs a \[finetune\] table"):
        planning.plan_runs(replace(config, finetune=None, models=("control-2",)))
    # a lineage seeded at the stride would train with a repeat's seed of lineage 0
    with pytest.raises(ValueError, match=r"seeds \[1000\] of cyclegan: repeated fine-tunes"):
        planning.plan_runs(replace(repeats, seeds=(0, stride)))
    with pytest.raises(ValueError, match=r"seeds \[-1\] of cyclegan"):
        planning.plan_runs(replace(repeats, seeds=(-1,)))
    assert {r.seed for r in planning.plan_runs(replace(config, seeds=(0, stride)))} == {0, stride}


def test_lineages_choose_among_repeated_finetunes_and_controls():
    from benchmarks.lineages import compare_lineages

    test = [
        _row("standard", "none", 0.01, 1.0),
        _row("standard", "gaussian@75", 0.10, 10.0),
        _row("control", "gaussian@50", 0.06, 5.0),
        _row("control-2", "gaussian@50", 0.05, 5.0),
        _row("sati-finetune", "none", 0.04, 1.0),
        _row("sati-finetune", "sati@25", 0.08, 2.0),
        _row("sati-finetune-2", "none", 0.02, 1.0),
        _row("sati-finetune-2", "sati@25", 0.03, 2.0),
    ]
    (lineage,) = compare_lineages(test, INFERENCE, test)["lineages"]
    assert (lineage["baseline_model"], lineage["sati_model"]) == ("control-2", "sati-finetune-2")
    assert lineage["ratio"] == pytest.approx(0.03 / 0.05)
    assert lineage["none_sati"] == pytest.approx(2.0)  # the chosen fine-tune's own pass


def test_norm_seams_scores_tile_thumbnail_and_kernel_statistics(config_path, tmp_path):
    from benchmarks import norm_seams

    payload = norm_seams.run_norm_seams(
        str(config_path),
        bases=["simple@0"],
        seed=11,
        n_test=1,
        seeds=[0],
        cache=tmp_path / "cache",
        echo=lambda _: None,
        write=False,
    )
    by_norm = {s["norm"]: s for s in payload["summary"]}
    assert list(by_norm) == ["tile", "thumbnail", "kernel", "thumbnail:1.0"]
    assert by_norm["tile"]["ratio_to_tile"] == 1.0
    assert by_norm["kernel"]["cost"] == pytest.approx(2 * by_norm["tile"]["cost"])
    assert all(s["seam_score"] > 0 for s in payload["summary"])
    assert {r["split"] for r in payload["rows"]} == {"density-gradient-11"}
    assert {r["seed"] for r in payload["rows"]} == {0} and payload["command"].endswith("--seeds 0")
    # the density images differ from the config's own test images
    home = planning.workdir(planning.load_config(str(config_path)), tmp_path / "cache")
    assert (home / "density-gradient-11" / "data" / "test" / "x" / "00000.tif").is_file()
    assert "| simple@0 | kernel |" in norm_seams.markdown_table(payload["summary"])


def test_ship_table_names_the_models_and_methods_that_ship():
    from benchmarks.ship_demo import shipped_models

    assert shipped_models(planning.load_config("gpu-quick"), "cyclegan") == {
        "standard": ("demo-standard", "standard", "weighted"),
        "sati": ("demo-sati", "sati", "sati"),
    }
    small = planning.load_config("cpu-small")
    assert shipped_models(small, "cyclegan")["sati"] == (
        "demo-sati",
        planning.FINETUNE,
        "sati@25+m16",
    )
    large = planning.load_config("large-objects")
    assert shipped_models(large, "cyclegan")["standard"] == (
        "large-objects-standard",
        "standard",
        "gaussian@25",
    )
    # the config's other adapters ship beside CycleGAN's models, named after themselves
    assert shipped_models(large, "timm")["sati"][0] == "large-objects-timm-sati"


def test_shipped_names_of_other_adapters_insert_the_adapter_before_the_kind():
    from benchmarks.ship_demo import shipped_name

    large = planning.load_config("large-objects")
    assert shipped_name("large-objects-control", "cyclegan", large) == "large-objects-control"
    assert shipped_name("large-objects-control", "timm", large) == "large-objects-timm-control"
    assert shipped_name("standard", "timm", large) == "timm-standard"


def _row(model, method, error, cost, seed=0):
    return {
        "adapter": "cyclegan",
        "model": model,
        "method": method,
        "seed": seed,
        "error": error,
        "cost": cost,
    }


INFERENCE = InferenceConfig(tile=32, overlap=8, weighted_shift=8, gaussian_overlap=16)


def test_lineages_pick_each_side_on_validation_within_the_cost_cap():
    from benchmarks.lineages import compare_lineages

    test = [
        _row("standard", "none", 0.01, 1.0),
        _row("standard", "gaussian@75", 0.10, 10.0),
        _row("standard", "gaussian@25", 0.08, 2.0),
        _row("control+ema", "gaussian@50/thumbnail:1", 0.04, 5.0),
        _row("control", "gaussian@25/kernel:5", 0.01, 30.0),  # above gaussian@75's cost
        _row("sati-finetune", "sati@25", 0.03, 2.0),
        _row("sati-finetune", "sati@25+m8", 0.02, 3.0),
        _row("sati-finetune", "gaussian@25", 0.001, 2.0),  # not SATI inference
        _row("sati-finetune", "none", 0.05, 1.0),
    ]
    validation = [{**r, "error": {"sati@25+m8": 0.09}.get(r["method"], r["error"])} for r in test]
    result = compare_lineages(test, INFERENCE, validation)
    (lineage,) = result["lineages"]
    assert (lineage["baseline_model"], lineage["baseline_method"]) == (
        "control+ema",
        "gaussian@50/thumbnail:1",
    )
    assert lineage["sati_method"] == "sati@25"  # m8 is best on test, not on validation
    assert lineage["ratio"] == pytest.approx(0.03 / 0.04)
    assert lineage["best_test_ratio"] == pytest.approx(0.02 / 0.04)
    assert lineage["none_standard"] == pytest.approx(1.0)
    assert lineage["none_sati"] == pytest.approx(5.0)
    assert lineage["chosen_on"] == "validation"
    second = compare_lineages(
        test + [{**r, "seed": 1, "error": 2 * r["error"]} for r in test], INFERENCE
    )
    assert second["summary"]["cyclegan"]["n_lineages"] == 2
    assert second["summary"]["cyclegan"]["median_ratio"] == pytest.approx(0.02 / 0.04)
    only_standard = compare_lineages([r for r in test if "sati" not in r["model"]], INFERENCE)
    assert only_standard["lineages"][0]["missing"] == ["sati"] and not only_standard["summary"]


def test_control_and_averaged_models_join_the_frontier_per_lineage(config_path, tmp_path):
    text = config_path.read_text().replace("steps = 2\n", "steps = 2\nema = 0.9\n", 1)
    text = text.replace(
        'standard = ["none", "simple@0"', 'standard = ["none", "gaussian@75", "simple@0"'
    )
    text = text.replace("[data]", 'models = ["standard", "sati-finetune", "control"]\n\n[data]', 1)
    path = tmp_path / "lineage.toml"
    path.write_text(text)
    config = planning.load_config(str(path))
    control = planning.Run("cyclegan", planning.CONTROL, 0)
    assert planning.init_run(config, control) == planning.Run("cyclegan", "standard", 0)
    settings = training_runs.train_config(config, control)
    assert settings.sati.enabled is False and settings.training.steps == 1
    assert settings.training.ema == 0.9
    payload = frontier.run_frontier(
        str(path), cache=tmp_path / "cache", echo=lambda _: None, write=False
    )
    models = {s["model"] for s in payload["summary"]}
    assert models == {
        m + w for m in ("standard", "control", planning.FINETUNE) for w in ("", "+ema")
    }
    assert {r["split"] for r in payload["choice_rows"]} == {"validation"}
    (lineage,) = payload["lineages"]["lineages"]
    assert lineage["chosen_on"] == "validation"
    assert lineage["sati_method"] == "sati@25" and lineage["sati_model"].startswith(
        planning.FINETUNE
    )
    assert lineage["baseline_model"].split("+")[0] in planning.TRAINING_FREE
    home = planning.workdir(config, tmp_path / "cache")
    assert (
        planning.run_dir(home, planning.Run("cyclegan", "control", 0, "ema")) / "config.json"
    ).is_file()


TEXTURED = """
name = "tiny-textured"
adapters = ["cyclegan"]
seeds = [0]
models = ["standard", "sati-finetune"]
jobs = 1
threads_per_job = 1

[data]
kind = "textured"
dims = 2
size = 64
tile = 32
n_images = 2
n_test = 1
seed = 3
validation_seed = 5
n_validation = 1

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

[finetune]
steps = 1

[inference]
tile = 32
overlap = 8
batch_size = 4

[frontier]
standard = ["none", "simple@0", "simple@0/dense", "gaussian@75"]
sati = ["none", "sati@25"]
"""


def test_datasets_with_a_known_truth_are_scored_against_it(tmp_path):
    path = tmp_path / "textured.toml"
    path.write_text(TEXTURED)
    payload = frontier.run_frontier(
        str(path), cache=tmp_path / "cache", echo=lambda _: None, write=False
    )
    rows = {(r["model"], r["method"]): r for r in payload["rows"]}
    plain = rows[("standard", "simple@0")]
    assert 0 < plain["mae"] <= 255 and plain["error"] == pytest.approx(plain["mae"] / 255)
    assert plain["tile_deviation"] >= 0 and plain["seam_score"] > 0
    assert rows[("standard", "none")]["seam_score"] is None
    assert rows[("standard", "simple@0/dense")]["cost"] == pytest.approx(2 * plain["cost"])
    table = frontier.markdown_table(payload["summary"])
    assert "MAE (0-255) | tile deviation (0-255)" in table
    (lineage,) = payload["lineages"]["lineages"]
    assert lineage["sati_method"] == "sati@25" and lineage["chosen_on"] == "validation"


def test_averaged_weights_get_only_the_configs_averaged_methods():
    tables = {"standard": ["none", "gaussian@25"], "sati": ["none", "sati@25"]}
    base = planning.load_config("gpu-quick").as_dict()

    def methods(run: planning.Run) -> list[str]:
        config = BenchConfig.from_dict({**base, "frontier": tables})
        return frontier.frontier_methods(config, run)

    ema = planning.Run("cyclegan", planning.CONTROL, 0, "ema")
    assert methods(ema) == ["none", "gaussian@25"]
    tables["averaged"] = ["none"]
    assert methods(ema) == ["none"]
    assert methods(planning.Run("cyclegan", "control", 0)) == [
        "none",
        "gaussian@25",
    ]
    sati = planning.Run("cyclegan", planning.FINETUNE, 0, "ema")
    assert methods(sati) == ["none"]
    tables["control"] = ["gaussian@25"]  # a list named after the model wins
    assert methods(planning.Run("cyclegan", "control", 0)) == ["gaussian@25"]
    assert methods(planning.Run("cyclegan", "standard", 0)) == [
        "none",
        "gaussian@25",
    ]


def test_a_partial_report_scores_nothing_new(config_path, tmp_path):
    kwargs = dict(cache=tmp_path / "cache", echo=lambda _: None, write=False)
    frontier.run_frontier(str(config_path), models=["standard"], methods=["none"], **kwargs)
    partial = frontier.run_frontier(
        str(config_path), models=["standard"], cached_only=True, **kwargs
    )
    assert partial["partial"] and {r["method"] for r in partial["rows"]} == {"none"}
    assert partial["command"].endswith("--cached-only")


def test_restain_validation_part_can_be_cut_from_the_test_slide(tmp_path):
    config = planning.load_config("restain")
    data = replace(
        config.data,
        params={**config.data.params, "n_images": 2, "crop": 32, "tile": 32, "mosaic": 1},
        validation_source="immunohistochemistry",
        validation_box=(0, 0, 128, 256),
    )
    validation = planning.validation_data(replace(config, data=data), tmp_path)
    assert validation.parent.name == "validation-777-immunohistochemistry-0-0-128-256"
    manifest = json.loads((validation / "manifest.json").read_text())
    assert manifest["source"]["name"] == "immunohistochemistry"
    assert manifest["source"]["box"] == [0, 0, 128, 256]
    # its scored part is the bottom half of the box: rows 64-128, above the slide's test part
    assert manifest["geometry"]["test"] == [64, 0, 64, 256]
    # another box is another folder: no stale cached score of the old part is reused
    other = replace(data, validation_box=(0, 0, 128, 128))
    assert planning.validation_data(replace(config, data=other), tmp_path) != validation


def test_frontier_scores_each_runs_snapshot_chosen_on_validation(
    config_path, tmp_path, monkeypatch
):
    from benchmarks import scoring, snapshot_choice

    text = config_path.read_text().replace(
        "[train]\ncrop = 32\nbatch_size = 2\nsteps = 2",
        "[train]\ncrop = 32\nbatch_size = 2\nsteps = 4",
    )
    text = "snapshots = true\n" + text.replace(
        'sati = ["none", "sati@25"]\n', 'sati = ["none", "sati@25"]\nbest = ["none", "sati@25"]\n'
    )
    path = tmp_path / "snap.toml"
    path.write_text(text)
    config = planning.load_config(str(path))
    root = planning.workdir(config, tmp_path / "cache")
    standard = planning.Run("cyclegan", "standard", 0)
    best = planning.Run("cyclegan", "standard", 0, "best")
    assert best.model == "standard+best"
    payload = frontier.run_frontier(
        str(path), models=["standard", "sati"], cache=tmp_path / "cache", echo=lambda _: None,
        write=False,
    )  # fmt: skip
    models = {(r["model"], r["method"]) for r in payload["rows"]}
    # [frontier] best keeps only its methods of each model's list
    assert ("standard+best", "none") in models and ("standard+best", "gaussian@25") not in models
    assert {("sati+best", "none"), ("sati+best", "sati@25")} <= models
    record = json.loads(
        (planning.run_dir(root, standard) / "snapshots" / "chosen.json").read_text()
    )
    kept = training_runs.snapshots(root, standard)
    assert len(kept) == 4  # one per step of the 4
    assert sorted(int(s) for s in record["errors"]) == [step for step, _ in kept]
    lowest = min((e, int(s)) for s, e in record["errors"].items())[1]
    assert record["step"] == lowest and record["split"] == "validation"
    assert planning.run_dir(root, best) == dict(kept)[lowest]
    # the chosen snapshot's validation row is the error it was chosen by
    (row,) = [
        r for r in payload["choice_rows"] if r["model"] == "standard+best" and r["method"] == "none"
    ]
    assert row["error"] == pytest.approx(record["errors"][str(lowest)])
    # a run that kept no snapshots has no +best model
    shutil.rmtree(planning.run_dir(root, planning.Run("cyclegan", "sati", 0)) / "snapshots")
    said = []
    again = frontier.run_frontier(
        str(path), models=["standard", "sati"], cache=tmp_path / "cache", echo=said.append,
        write=False,
    )  # fmt: skip
    assert "sati+best" not in {r["model"] for r in again["rows"]}
    assert any("cyclegan/sati/seed0 kept no snapshots" in line for line in said)
    # a second choice reuses the recorded errors: nothing is scored again
    monkeypatch.setattr(scoring, "score_method", lambda *a, **k: pytest.fail("scored again"))
    data = planning.ensure_dataset(config, root)
    assert snapshot_choice.choose(config, root, root, data, standard, lambda _: None) == lowest
    # a chosen snapshot that holds the run's last weights shares the run's scores
    step, folder = kept[-1]
    record.update(step=step, snapshot=folder.name)
    (planning.run_dir(root, standard) / "snapshots" / "chosen.json").write_text(json.dumps(record))
    assert planning.scored_run(root, best) == standard
    (plain,) = scoring.evaluate_run(config, root, data, standard, methods=["none"])
    (shared,) = scoring.evaluate_run(config, root, data, best, methods=["none"])  # not scored
    assert shared["model"] == "standard+best" and shared["error"] == plain["error"]
    # an earlier snapshot holds other weights: it is a model of its own
    record.update(step=kept[0][0], snapshot=kept[0][1].name)
    (planning.run_dir(root, standard) / "snapshots" / "chosen.json").write_text(json.dumps(record))
    assert planning.scored_run(root, best) == best


def test_a_chosen_snapshot_is_asked_for_before_it_is_chosen(tmp_path):
    with pytest.raises(FileNotFoundError, match="no snapshot of .* was chosen yet"):
        planning.run_dir(tmp_path, planning.Run("cyclegan", "standard", 0, "best"))
    with pytest.raises(ValueError, match="weights must be one of"):
        planning.Run("cyclegan", "standard", 0, "last")


def test_a_report_of_part_of_the_plan_is_named_after_its_selection():
    assert frontier.selection_suffix(None, None, None, None) == ""
    assert frontier.selection_suffix(["timm"], None, [0], None) == "-timm-seeds0"
    named = frontier.selection_suffix(["cyclegan", "timm"], ["sati-finetune"], [1, 2], ["none"])
    assert named == "-cyclegan-timm-sati-finetune-seeds1-2-1methods"
    # a report that joins earlier lineages is named after all the lineages it holds
    assert frontier.named_seeds([4], [{("cyclegan", 0), ("cyclegan", 3)}, set()]) == [0, 3, 4]
    assert frontier.named_seeds(None, [{("cyclegan", 0)}]) is None


def test_an_earlier_report_adds_the_lineages_this_run_does_not_score(config_path, tmp_path):
    cache = tmp_path / "cache"
    first = frontier.run_frontier(str(config_path), cache=cache, echo=lambda _: None, write=False)
    assert [lin["seed"] for lin in first["lineages"]["lineages"]] == [0]
    # an earlier report holding lineage 0 (other errors) and lineage 1
    other = [{**row, "error": row["error"] + 0.5} for row in first["rows"]]
    other_choice = [{**row, "error": row["error"] + 0.5} for row in first["choice_rows"]]
    earlier = {
        **first,
        "rows": other + [{**row, "seed": 1} for row in first["rows"]],
        "choice_rows": other_choice + [{**row, "seed": 1} for row in first["choice_rows"]],
    }
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(earlier))
    joined = frontier.run_frontier(
        str(config_path), cache=cache, echo=lambda _: None, write=False, include=[path]
    )
    assert joined["command"].endswith(f"--include {path}")
    assert joined["included"][0]["lineages"] == [{"adapter": "cyclegan", "seed": 1}]
    assert [lin["seed"] for lin in joined["lineages"]["lineages"]] == [0, 1]
    # lineage 0 comes whole from this run, lineage 1 whole from the earlier report
    own = [r for r in joined["rows"] if r["seed"] == 0]
    assert sorted(r["error"] for r in own) == sorted(r["error"] for r in first["rows"])
    assert len(joined["rows"]) == 2 * len(first["rows"])
    assert len(joined["choice_rows"]) == 2 * len(first["choice_rows"])
    assert joined["lineages"]["lineages"][1]["sati_error"] == pytest.approx(
        joined["lineages"]["lineages"][0]["sati_error"]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"config": "other"}, "of config 'other'"),
        ({"split": "validation"}, "on the validation split, not test"),
        ({"choice_rows": []}, "without rows on the validation split"),
        ({"variant": "label"}, "of a variant's models"),
        ({"rows": None, "settings": None}, None),
    ],
)
def test_an_earlier_report_that_does_not_match_is_refused(config_path, tmp_path, change, message):
    config = planning.load_config(str(config_path))
    report = {
        "config": config.name,
        "split": "test",
        "variant": None,
        "settings": config.as_dict(),
        "rows": [],
        "choice_rows": [{"seed": 0}],
    }
    path = tmp_path / "earlier.json"
    if message is None:  # not a report at all
        path.write_text("[1, 2]")
        message = "not a frontier report"
    else:
        path.write_text(json.dumps({**report, **change}))
    with pytest.raises(ValueError, match=message):
        frontier.included_reports([path], config, "test", "validation")
    longer = {**config.as_dict(), "train": {**config.as_dict()["train"], "steps": 99}}
    path.write_text(json.dumps({**report, "settings": longer}))
    with pytest.raises(ValueError, match="with other settings"):
        frontier.included_reports([path], config, "test", "validation")
    more_seeds = {**config.as_dict(), "seeds": [0, 1, 2]}
    path.write_text(json.dumps({**report, "settings": more_seeds}))
    assert frontier.included_reports([path], config, "test", "validation")[0]["path"] == str(path)
    with pytest.raises(ValueError, match="not a readable frontier report"):
        frontier.included_reports([tmp_path / "missing.json"], config, "test", "validation")


def test_lineages_show_the_error_counts_each_ratio_rests_on():
    from benchmarks.lineages import compare_lineages, counting_interval, lineage_table

    low, high = counting_interval(25, 29)
    assert low < 25 / 29 < high and low * high == pytest.approx((25 / 29) ** 2)
    assert high / low > counting_interval(2500, 2900)[1] / counting_interval(2500, 2900)[0]
    assert counting_interval(0, 4)[0] > 0  # a zero count stays finite
    test = [
        {**_row("standard", "gaussian@75", 0.05, 10.0), "n_errors": 40},
        {**_row("sati-finetune", "sati@25", 0.025, 2.0), "n_errors": 20},
    ]
    result = compare_lineages(test, INFERENCE)
    (lineage,) = result["lineages"]
    assert (lineage["sati_errors"], lineage["baseline_errors"]) == (20, 40)
    assert lineage["ratio_interval"] == pytest.approx(counting_interval(20, 40))
    assert "| 20 / 40 (0.29-0.86) |" in lineage_table(result)
    # rows without counts (errors against a known truth) leave the column empty
    plain = compare_lineages(
        [{k: v for k, v in r.items() if k != "n_errors"} for r in test], INFERENCE
    )
    assert "ratio_interval" not in plain["lineages"][0]
    assert lineage_table(plain).splitlines()[2].endswith("| - |")
