"""The benchmark scripts: bad input is one line and status 2 (fast); each ``--quick`` run writes its results (slow)."""

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, assert_one_line_error

sys.path.insert(0, REPO)

from bench import ablation, accuracy, common, scaling, speed, techniques, tta, tuning as tuning_bench  # noqa: E402


def _fashion_on_disk() -> bool:
    from recipes.data import DataError, load_data

    try:
        load_data("fashion_mnist", limit=20, test_limit=10, download=False)
    except DataError:
        return False
    return True


needs_fashion = pytest.mark.skipif(not _fashion_on_disk(), reason="Fashion-MNIST IDX files not on disk "
                                   "(apt-get install dataset-fashion-mnist, or ZOO_DATA_DIR)")


class _Result:
    def __init__(self, code, err):
        self.returncode, self.stderr = code, err


@pytest.mark.parametrize("module, argv, needles", [
    (accuracy, ["--models", "vgg16"], ["--models", "vgg16", "lenet5"]),
    (accuracy, ["--budget-minutes", "0"], ["--budget-minutes", "'0'", "> 0"]),
    (accuracy, ["--out", "/proc/nope"], ["--out", "/proc/nope"]),
    (accuracy, ["--precision", "fp16"], ["--precision", "fp16", "mixed_bfloat16"]),
    (accuracy, ["--ensemble", "0"], ["--ensemble", "'0'", "two or more"]),
    (ablation, ["--seeds", "0,x"], ["--seeds", "0,x"]),
    (ablation, ["--presets", "baseline,heavy"], ["--presets", "heavy", "early_stopping"]),
    (ablation, ["--train-images", "-5"], ["--train-images", "-5"]),
    (techniques, ["--techniques", "base,dropout"], ["--techniques", "dropout", "cutmix"]),
    (techniques, ["--models", "vgg16"], ["--models", "vgg16", "resnet20"]),
    (techniques, ["--seeds", "-1"], ["--seeds", "-1"]),
    (tuning_bench, ["--epochs", "2"], ["--epochs", "2", ">= 3"]),
    (speed, ["--parts", "mfu,flops"], ["--parts", "flops", "resnet50"]),
    (speed, ["--resnet50-size", "16"], ["--resnet50-size", "16", ">= 32"]),
    (speed, ["--rounds", "0"], ["--rounds", "'0'"]),
    (scaling, ["--devices", "1"], ["--devices", "at least 2", "got 1"]),
    (scaling, ["--models", "vgg16"], ["--models", "vgg16", "resnet20"]),
    (scaling, ["--engine", "ddp"], ["--engine", "ddp", "mirrored"]),
    (tta, ["/nonexistent-run"], ["RUN_DIR", "/nonexistent-run", "config.json"]),
], ids=lambda v: v.__name__.split(".")[-1] if hasattr(v, "__name__") else None)
def test_bad_input_is_one_line(module, argv, needles, capsys, tmp_path):
    code = module.main(argv)
    assert_one_line_error(_Result(code, capsys.readouterr().err), *needles)


def test_common_helpers(tmp_path):
    path = common.write_json(tmp_path / "a" / "r.json", {"x": 1.5})
    assert json.loads(path.read_text()) == {"x": 1.5}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left
    assert common.read_json(tmp_path / "missing.json", {"rows": []}) == {"rows": []}
    assert common.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert common.mean_std([4.0]) == (4.0, 0.0)
    assert common.result_path("x.json", True, None).parts[-2:] == ("quick", "x.json")
    assert "| a | b |" in common.markdown_table(["a", "b"], [[1, 2]])


def test_calibration_clock_times_the_batches_after_the_warm_up():
    clock = accuracy._BatchClock()
    for t in (10.0, 11.0, 12.0, 14.0, 16.0):  # batch end times: 3 warm-up batches, then 2 s per batch
        clock.train.append(t)
    assert clock.seconds_per_batch(clock.train, 3) == 2.0
    assert clock.seconds_per_batch(clock.train, 0) == 1.5
    assert clock.seconds_per_batch([5.0], 0) == 0.0
    # steps_per_execution 4 on 10 batches: the hooks fire after steps 4, 8 and 10 (Keras says batch 3, 7, 11)
    for batch in (3, 7, 11):
        clock.params = {"steps": 10}
        clock.on_train_batch_end(batch)
    assert clock.train_steps == [4, 8, 10]
    assert clock.seconds_per_batch([10.0, 18.0, 26.0, 30.0], 4, [4, 8, 12, 14]) == 2.0  # per step, not per call
    assert clock.seconds_per_batch([10.0, 18.0], 4, [4, 8]) == 2.0
    assert clock.seconds_per_batch([10.0], 3, [4]) == 0.0  # one call: nothing timed after the warm-up


def test_the_device_column_says_the_onednn_state_where_recorded():
    row = {"device": "cpu", "machine": {"cpus": 2, "cpu": "AMD EPYC 7B13 Processor"}}
    assert accuracy._device(row) == "2-core CPU (AMD EPYC 7B13)"  # an old row: nothing said
    for state, text in ((True, "on"), (False, "off")):
        row["machine"]["numeric_setup"] = {"onednn": state}
        assert accuracy._device(row) == f"2-core CPU (AMD EPYC 7B13), oneDNN {text}"
    row["machine"]["numeric_setup"] = {"onednn": None}  # not TensorFlow, or no probe
    assert accuracy._device(row) == "2-core CPU (AMD EPYC 7B13)"


def test_a_partial_speed_run_replaces_only_its_parts(tmp_path):
    out = tmp_path / "speed.json"
    common.write_json(out, {"mfu": {"lenet5": {"mfu": 0.1}}, "matmul": {"median_gflops": -1.0}, "command": "full"})
    assert speed.main(["--parts", "matmul", "--rounds", "1", "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["mfu"] == {"lenet5": {"mfu": 0.1}} and data["command"] == "full"
    assert data["matmul"]["median_gflops"] > 0 and "--parts matmul" in data["partial_runs"]["matmul"]["command"]


def test_published_rows_match_the_fashion_mnist_readme():
    table = accuracy.published_accuracies()
    if not table:
        pytest.skip("dataset-fashion-mnist's README is not installed")
    assert accuracy.check_published(list(accuracy.BENCH_RECIPES.values()), table) == []
    assert 0.916 in table["2 Conv+pooling"]


def test_hyperband_trials_is_one_iteration_of_brackets():
    assert tuning_bench.hyperband_trials(18) == 30
    assert tuning_bench.hyperband_trials(3) == 6  # 3 trials of 1 epoch, the best continued to 3; 2 of 3


def test_accuracy_rows_are_replaced_per_name_device_processor_precision_and_seed():
    def row(name, seed=0, precision="float32", acc=0.5):
        return {"name": name, "device": "cpu", "precision": precision, "seed": seed, "test_accuracy": acc}
    rows = accuracy.merge_row([], row("resnet20"))
    rows = accuracy.merge_row(rows, row("lenet5", seed=1))
    rows = accuracy.merge_row(rows, row("lenet5"))
    rows = accuracy.merge_row(rows, row("lenet5", precision="mixed_bfloat16"))
    rows = accuracy.merge_row(rows, row("lenet5", seed=1, acc=0.9))  # a rerun replaces its own row only
    assert [(r["name"], r["precision"], r["seed"], r["test_accuracy"]) for r in rows] == [
        ("lenet5", "float32", 0, 0.5), ("lenet5", "float32", 1, 0.9), ("lenet5", "mixed_bfloat16", 0, 0.5),
        ("resnet20", "float32", 0, 0.5)]
    other_cpu = dict(row("lenet5", seed=1, acc=0.7), machine={"cpu": "Intel Xeon"})
    rows = accuracy.merge_row(rows, other_cpu)  # the same seed on another processor: kept beside it
    assert [r["test_accuracy"] for r in rows if r["name"] == "lenet5" and r["seed"] == 1] == [0.9, 0.7]


def test_an_ensemble_row_sorts_after_its_members_and_reuses_only_a_matching_recorded_run(tmp_path):
    spec = accuracy.BENCH_RECIPES["lenet5"]
    recipe = {"model": "lenet5", "seed": 1, "epochs": 30, "erasing": 0.0}
    folder = tmp_path / "run"
    folder.mkdir()
    row = {"name": "lenet5", "device": "cpu", "precision": "float32", "seed": 1, "run_folder": str(folder),
           "recipe": dict(recipe, epochs=12)}  # fewer epochs fitted to the budget: still the same recipe
    machine = {"device": "cpu", "cpu": "AMD EPYC"}
    row["machine"] = machine
    find = functools.partial(accuracy.reusable_row, spec=spec, seed=1, machine=machine, precision="float32")
    assert find([row], recipe=recipe) is None  # no model in the folder
    (folder / "model.keras").write_bytes(b"")
    assert find([row], recipe=recipe) is row
    assert find([row], recipe=dict(recipe, erasing=0.25)) is None  # the row's recipe changed since
    # a field added since the row was recorded, at the default that trains what was trained then: the same
    assert find([row], recipe=dict(recipe, steps_per_execution=1, distribute="none")) is row
    assert find([row], recipe=dict(recipe, steps_per_execution=4)) is None
    assert accuracy.reusable_row([row], spec, 2, machine=machine, precision="float32", recipe=recipe) is None
    assert find([row], recipe=recipe, machine={"device": "cpu", "cpu": "Intel Xeon"}) is None  # another processor
    ensemble = {"name": "lenet5 ensemble of 2", "base": "lenet5", "device": "cpu", "precision": "float32",
                "seed": 0, "seeds": [0, 1]}
    rows = accuracy.merge_row([], ensemble)
    for r in ({"name": "resnet20", "device": "cpu", "precision": "float32", "seed": 0}, row,
              {"name": "lenet5", "device": "cpu", "precision": "float32", "seed": 0}):
        rows = accuracy.merge_row(rows, r)
    assert [(r["name"], r["seed"]) for r in rows] == [("lenet5", 0), ("lenet5", 1), ("lenet5 ensemble of 2", 0),
                                                       ("resnet20", 0)]


@pytest.mark.slow
@needs_fashion
def test_accuracy_quick_ensemble_of_two_seeds_then_reuses_them(tmp_path, capsys):
    out, runs = tmp_path / "acc.json", tmp_path / "runs"
    argv = ["--quick", "--models", "lenet5-ls-ema-tta", "--ensemble", "0,1", "--out", str(runs), "--output", str(out),
            "--verbose", "0"]
    assert accuracy.main(argv) == 0
    members, ensemble = (rows := json.loads(out.read_text())["rows"])[:2], rows[2]
    assert [(r["name"], r["seed"]) for r in rows] == [("lenet5-ls-ema-tta", 0), ("lenet5-ls-ema-tta", 1),
                                                       ("lenet5-ls-ema-tta ensemble of 2", 0)]
    assert ensemble["seeds"] == [0, 1] and ensemble["tta"] == "flip"  # the members' TTA
    assert ensemble["member_test_accuracy"] == [r["test_accuracy"] for r in members]
    assert ensemble["member_run_folders"] == [r["run_folder"] for r in members]
    metrics = json.loads((Path(ensemble["run_folder"]) / "metrics.json").read_text())
    assert [m["test_accuracy_tta"] for m in metrics["members"]] == pytest.approx(
        [r["test_accuracy"] for r in members], abs=5e-5)  # each member's TTA score, scored again
    assert "| lenet5-ls-ema-tta ensemble of 2 |" in out.with_suffix(".md").read_text()
    assert " (ensemble) |" in out.with_suffix(".md").read_text()
    before = sorted(p.name for p in runs.iterdir())
    capsys.readouterr()
    assert accuracy.main(argv) == 0
    assert capsys.readouterr().out.count("reusing the recorded run") == 2
    assert len(sorted(p.name for p in runs.iterdir())) == len(before) + 1  # one more ensemble, no member trained


@pytest.mark.slow
@needs_fashion
def test_accuracy_quick(tmp_path):
    out = tmp_path / "acc.json"
    assert accuracy.main(["--quick", "--models", "lenet5", "--out", str(tmp_path / "runs"), "--output", str(out),
                          "--verbose", "0"]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["name"] == "lenet5" and row["quick"] and 0.0 <= row["test_accuracy"] <= 1.0
    assert row["epochs_run"] >= 1 and row["machine"]["cpus"] >= 1 and "accuracy.py" in row["command"]
    assert "| lenet5 |" in out.with_suffix(".md").read_text()
    assert row["precision"] == "float32"  # the recipe's default
    assert row["test_accuracy_by_tta"]["none"] == row["test_accuracy_plain"]  # the saved model, scored again
    assert sorted(row["test_accuracy_by_tta"]) == ["flip", "flip+shift", "none"]  # clothes allow mirrors
    assert accuracy.main(["--quick", "--models", "lenet5", "--precision", "mixed_bfloat16", "--out",
                          str(tmp_path / "runs"), "--output", str(out), "--verbose", "0"]) == 0
    rows = json.loads(out.read_text())["rows"]  # keyed by precision too
    assert [r["precision"] for r in rows] == ["float32", "mixed_bfloat16"]


@pytest.mark.slow
@needs_fashion
def test_ablation_quick(tmp_path):
    out = tmp_path / "abl.json"
    argv = ["--quick", "--models", "lenet5", "--presets", "baseline,l1", "--out", str(tmp_path / "runs"),
            "--output", str(out)]
    assert ablation.main(argv) == 0
    data = json.loads(out.read_text())
    assert [r["preset"] for r in data["summary"]] == ["baseline", "l1"]
    assert out.with_suffix(".png").stat().st_size > 1000
    assert (tmp_path / "abl_weights.png").stat().st_size > 1000
    assert all(sum(r["weight_histogram"]) > 0 and 0 <= r["kernel_sparsity"] <= 1 for r in data["runs"])
    assert ablation.main(argv) == 0  # everything already there: nothing trained again
    assert len(json.loads(out.read_text())["runs"]) == 2


@pytest.mark.slow
@needs_fashion
def test_techniques_quick(tmp_path):
    out = tmp_path / "tech.json"
    argv = ["--quick", "--techniques", "base,mixup", "--out", str(tmp_path / "runs"), "--output", str(out)]
    assert techniques.main(argv) == 0
    data = json.loads(out.read_text())
    assert [r["technique"] for r in data["summary"]] == ["base", "mixup"]
    assert data["summary"][0]["delta"] == 0 and "test_accuracy_tta" in data["runs"][0]
    assert data["runs"][1]["recipe"]["mixup"] == 0.2 and data["runs"][1]["recipe"]["tta"] == "flip"
    assert out.with_suffix(".png").stat().st_size > 1000
    assert techniques.main(argv) == 0  # everything already there: nothing trained again
    assert len(json.loads(out.read_text())["runs"]) == 2


def test_the_all_technique_turns_every_technique_on():
    fields = {k for name, f in techniques.TECHNIQUES.items() if name != "all" for k in f}
    assert set(techniques.TECHNIQUES["all"]) == fields


@pytest.mark.slow
@needs_fashion
def test_tuning_quick(tmp_path):
    out = tmp_path / "tun.json"
    assert tuning_bench.main(["--quick", "--directory", str(tmp_path / "t"), "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["hyperband"]["epochs_spent"] == data["budget_epochs"] > 0
    assert data["random"]["trials"] == round(data["budget_epochs"] / data["epochs"])
    assert os.path.getsize(out.with_suffix(".png")) > 1000


@pytest.mark.slow
def test_speed_quick(tmp_path):
    out = tmp_path / "speed.json"
    assert speed.main(["--quick", "--parts", "resnet50,mfu", "--rounds", "1", "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["matmul"]["median_gflops"] > 0
    assert data["resnet50"]["ratio_zoo_over_keras"] > 0
    assert set(data["mfu"]) == set(speed.MFU_MODELS)
    assert all(0 < row["mfu"] for row in data["mfu"].values())


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs the jax extra")
def test_scaling_quick(tmp_path):
    """In a fresh interpreter: the script picks the JAX backend and the host devices before Keras loads."""
    out = tmp_path / "scaling.json"
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "XLA_FLAGS")}
    result = subprocess.run([sys.executable, "bench/scaling.py", "--quick", "--models", "lenet5", "--output", str(out)],
                            capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert len(row["devices"]) == 2 and row["ratio"] > 0 and len(row["seconds"]["data_parallel"]) == 2


def test_tta_scores_a_run_folder_under_each_mode_its_data_allows(tmp_path):
    """bench/tta.py on a hand-made run folder: each mode equals the hand-computed mean of the views' softmax."""
    import keras

    from recipes import pipeline
    from recipes.recipe import Recipe

    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"  # a natural-image set: flips allowed
    np.savez(data, x_train=rng.uniform(0, 255, (30, 6, 6, 1)).astype("float32"), y_train=np.arange(30) % 3,
             x_test=rng.uniform(0, 255, (12, 6, 6, 1)).astype("float32"), y_test=np.arange(12) % 3)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(Recipe(model="lenet5", data=str(data), tta="flip").to_json())
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Rescaling(1 / 255, name="tta_scale"),
                              keras.layers.Flatten(name="tta_flat"),
                              keras.layers.Dense(3, activation="softmax", name="tta_out")])
    model.save(folder / "model.keras")
    out = tmp_path / "tta.json"
    assert tta.main([str(folder), "--output", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert sorted(row["scores"]) == ["flip", "flip+shift", "none"] and row["recipe_tta"] == "flip"
    splits = pipeline.load_splits(Recipe(model="lenet5", data=str(data)))
    x, y = splits.x_test, splits.y_test
    views = {"none": [x], "flip": [x, x[:, :, ::-1]]}
    left, right = np.zeros_like(x), np.zeros_like(x)
    left[:, :, :-2], right[:, :, 2:] = x[:, :, 2:], x[:, :, :-2]
    views["flip+shift"] = views["flip"] + [left, right]
    for mode, xs in views.items():
        p = np.mean([model.predict(v, verbose=0) for v in xs], axis=0)
        assert row["scores"][mode]["accuracy"] == pytest.approx(float((p.argmax(-1) == y).mean()))
        loss = float(-np.log(p[np.arange(len(y)), y]).mean())
        assert row["scores"][mode]["loss"] == pytest.approx(loss, rel=1e-4)  # float32 views
    assert "| 0." in out.with_suffix(".md").read_text()


def test_budget_stop_flags_a_cut_only_when_epochs_were_left():
    import time

    class _Model:
        stop_training = False

    for epoch, cut in ((0, True), (2, False)):  # deadline passed: epoch 1 of 3 is cut, the last one is not
        callback = accuracy.BudgetStop(time.monotonic() - 1.0, reserve_s=0.0)
        callback.set_params({"epochs": 3})
        callback.set_model(_Model())
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch)
        assert callback.stopped is cut and callback.model.stop_training is cut
