"""tuning: the search space, ZooHyperModel, every KerasTuner tuner end to end, resume, failures, the CLI.

Tiny on purpose: LeNet-5 on a few hundred 8×8 digits, 1-3 epochs a trial.
"""

import csv
import json
import os
import pickle

import keras
import keras_tuner as kt
import numpy as np
import pytest

import tuning
from conftest import assert_inference_model, assert_one_line_error, stop_at_training_run
from recipes.data import load_data
from tuning.__main__ import main as tuning_main
from tuning.space import Choice, Fixed, Range, make_space, parse_assignment

LENET_ARGS = {"activation": "relu", "subsampling": "max"}


@pytest.fixture(scope="module")
def splits():
    return load_data("digits", limit=200, test_limit=60, seed=0)


def small(**overrides):
    """search() arguments for a seconds-long search."""
    kwargs = dict(max_trials=2, epochs=1, batch_size=32, verbose=0, final_epochs=1)
    kwargs.update(overrides)
    return kwargs


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def trial_states(project_dir):
    states = {}
    for name in sorted(os.listdir(project_dir)):
        path = os.path.join(project_dir, name, "trial.json")
        if name.startswith("trial_") and os.path.exists(path):
            with open(path) as handle:
                data = json.load(handle)
            states[data["trial_id"]] = data["status"]
    return states


# -- the space -------------------------------------------------------------------------------------

def test_default_space_matches_the_issue():
    space = make_space(builder_defaults=LENET_ARGS)
    assert space.tuned == ("l2", "keep_prob", "learning_rate")
    assert space["l2"] == Range(1e-6, 1e-2, "log") and space["l1"] == Range(1e-6, 1e-2, "log")
    assert space["keep_prob"] == Range(0.5, 1.0, "linear")
    assert space["learning_rate"] == Range(1e-4, 1e-1, "log")
    assert space["penalty"] == Fixed("l2")
    for name in ("optimizer", "batch_norm", "augmentation", "batch_size"):
        assert isinstance(space[name], Fixed)


def test_space_narrow_widen_fix_extend():
    space = make_space({"keep_prob": (0.6, 0.9), "l2": (1e-8, 1.0), "penalty": ["l2", "l1", "l1_l2"],
                        "optimizer": ["adam", "momentum"], "activation": ["relu", "tanh"],
                        "batch_size": (16, 128)},
                       {"batch_norm": True, "learning_rate": 1e-3},
                       builder_defaults=LENET_ARGS, allowed={"optimizer": ("adam", "momentum", "sgd")})
    assert space["keep_prob"] == Range(0.6, 0.9, "linear")
    assert space["l2"] == Range(1e-8, 1.0, "log")
    assert space["batch_norm"] == Fixed(True) and space["learning_rate"] == Fixed(1e-3)
    assert space["activation"] == Choice(("relu", "tanh")) and space.builder_args == ("activation",)
    assert space["batch_size"] == Range(16, 128, "log", 2, True)
    assert set(space.tuned) == {"penalty", "l2", "l1", "keep_prob", "optimizer", "activation", "batch_size"}
    grid = space.for_grid()
    assert grid["keep_prob"].step == pytest.approx(0.075) and grid["l2"].step == 10.0


@pytest.mark.parametrize("space, fixed, needles", [
    ({"dropout": (0.1, 0.5)}, None, ["'dropout'", "keep_prob", "learning_rate", "activation"]),
    (None, {"width": 3}, ["'width'", "allowed"]),
    ({"l2": (1e-2, 1e-6)}, None, ["l2", "low must be < high"]),
    ({"keep_prob": (0.5, 0.5)}, None, ["keep_prob", "low must be < high"]),
    ({"l2": (-1e-4, 1e-2)}, None, ["l2", ">= 0"]),
    ({"keep_prob": (0.5, 1.2)}, None, ["keep_prob", "(0, 1]"]),
    (None, {"keep_prob": 0.0}, ["keep_prob", "(0, 1]"]),
    ({"learning_rate": (0.0, 0.1)}, None, ["learning_rate", "> 0"]),
    ({"optimizer": ["adam", "lbfgs"]}, None, ["optimizer", "adam", "lbfgs"]),
    ({"penalty": ["l2", "l3"]}, None, ["penalty", "l1_l2"]),
    ({"batch_norm": [True, "maybe"]}, None, ["batch_norm"]),
    ({"keep_prob": (0.6, 0.9)}, {"keep_prob": 0.8}, ["keep_prob", "both"]),
])
def test_space_errors_name_the_problem(space, fixed, needles):
    with pytest.raises(ValueError) as info:
        make_space(space, fixed, builder_defaults=LENET_ARGS, allowed={"optimizer": ("adam", "sgd")})
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_parse_command_line_assignments():
    assert parse_assignment("l2=1e-6:1e-2", fixed=False) == ("l2", Range(1e-6, 1e-2, "log"))
    assert parse_assignment("keep_prob=0.5:1.0", fixed=False) == ("keep_prob", Range(0.5, 1.0, "linear"))
    assert parse_assignment("learning_rate=1e-4:1e-1:log:10", fixed=False)[1].step == 10.0
    assert parse_assignment("optimizer=adam,sgd", fixed=False) == ("optimizer", Choice(("adam", "sgd")))
    assert parse_assignment("batch_norm=true,false", fixed=False) == ("batch_norm", Choice((True, False)))
    assert parse_assignment("batch_norm=true", fixed=True) == ("batch_norm", True)
    assert parse_assignment("keep_prob=0.8", fixed=True) == ("keep_prob", 0.8)
    assert parse_assignment("activation=tanh", fixed=True, builder_defaults=LENET_ARGS) == ("activation", "tanh")
    for bad, needle in (("l2", "NAME=VALUE"), ("l2=a:b", "number"), ("batch_norm=maybe", "true or false"),
                        ("l2=1:2:3:4:5", "LOW:HIGH")):
        with pytest.raises(ValueError, match=needle):
            parse_assignment(bad, fixed=bad.startswith("batch_norm"))


# -- the hypermodel ----------------------------------------------------------------------------------

def _regularizers(model):
    return [layer.kernel_regularizer for layer in model.layers if getattr(layer, "kernel_regularizer", None)]


def _dropout_rates(model):
    return [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]


def _learning_rate(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def test_hypermodel_builds_what_hp_says(splits):
    hm = tuning.ZooHyperModel("lenet5", splits=splits, space={"penalty": ["l1", "l1_l2"]},
                              fixed={"batch_norm": True, "optimizer": "momentum"})
    hp = kt.HyperParameters()
    hp.values = {"penalty": "l1_l2", "l1": 3e-5, "l2": 2e-3, "keep_prob": 0.6, "learning_rate": 0.02}
    model = hm.build(hp)
    regs = _regularizers(model)
    assert regs and all(isinstance(r, keras.regularizers.L1L2) for r in regs)
    assert all(float(r.l1) == pytest.approx(3e-5) and float(r.l2) == pytest.approx(2e-3) for r in regs)
    assert _dropout_rates(model) == [pytest.approx(0.4)] * 2
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)  # via build_model
    assert isinstance(model.optimizer, keras.optimizers.SGD) and float(model.optimizer.momentum) == 0.9
    assert _learning_rate(model) == pytest.approx(0.02)
    # penalty l1 alone: no L2 part, l2 inactive in the space
    hp = kt.HyperParameters()
    hp.values = {"penalty": "l1", "l1": 1e-4, "keep_prob": 1.0, "learning_rate": 1e-3}
    model = hm.build(hp)
    assert all(isinstance(r, keras.regularizers.L1) and float(r.l1) == pytest.approx(1e-4) for r in _regularizers(model))
    assert _dropout_rates(model) == []  # keep_prob 1: no Dropout layer at all
    assert not hp.is_active("l2") and hp.is_active("l1")

    bare = tuning.ZooHyperModel("lenet5", (28, 28, 1), 3, activation="tanh")
    model = bare.build(kt.HyperParameters())
    assert model.output_shape == (None, 3)
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)
    with pytest.raises(ValueError, match="no argument"):
        tuning.ZooHyperModel("lenet5", (28, 28, 1), 3, depth=3)
    with pytest.raises(ValueError, match="needs data splits"):
        tuning.ZooHyperModel("lenet5", (28, 28, 1), 3, fixed={"augmentation": "digits"})
    with pytest.raises(ValueError, match="does not fit digits"):
        tuning.ZooHyperModel("lenet5", splits=splits, space={"augmentation": ["none", "flip"]})
    # a trial in a child process gets the hypermodel pickled (Recipe holds a mappingproxy)
    from recipes.recipe import preset

    hm2 = pickle.loads(pickle.dumps(tuning.ZooHyperModel("lenet5", splits=splits, recipe=preset("lenet5", "l2"))))
    assert hm2.recipe == preset("lenet5", "l2") and isinstance(hm2.build(kt.HyperParameters()), keras.Model)


class RecordingHyperModel(tuning.ZooHyperModel):
    built: list = []

    def build(self, hp):
        model = super().build(hp)
        type(self).built.append((dict(hp.values), model))
        return model


def test_drawn_values_reach_the_model_in_a_real_search(splits, tmp_path):
    """A plain keras_tuner.RandomSearch over ZooHyperModel: each trial's λ, dropout rate and learning rate
    are the ones inside the model it trained."""
    RecordingHyperModel.built = []
    hm = RecordingHyperModel("lenet5", splits=splits, fixed={"batch_size": 32})
    tuner = kt.RandomSearch(hm, objective="val_accuracy", max_trials=2, directory=str(tmp_path),
                            project_name="p", seed=1)
    tuner.oracle.verbose = 0
    tuner.search(epochs=1, verbose=0)
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    assert len(trials) == 2
    for trial in trials:
        values = trial.hyperparameters.values
        matches = [m for v, m in RecordingHyperModel.built if v == values]
        assert matches, values
        model = matches[-1]
        assert [float(r.l2) for r in _regularizers(model)] == [pytest.approx(values["l2"])] * 5
        assert _dropout_rates(model) == [pytest.approx(1 - values["keep_prob"])] * 2
        assert _learning_rate(model) == pytest.approx(values["learning_rate"])


# -- search end to end -------------------------------------------------------------------------------

def _check_outputs(result, n_trials):
    directory = result.directory
    for name in tuning.OUTPUT_FILES:
        assert os.path.getsize(os.path.join(directory, name)) > 0, name
    with open(os.path.join(directory, "search.png"), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    rows = read_csv(os.path.join(directory, "trials.csv"))
    assert len(rows) == len(result.trials) == n_trials
    assert {"trial_id", "status", "val_accuracy", "epochs", "l2", "keep_prob", "learning_rate"} <= set(rows[0])
    best = json.load(open(os.path.join(directory, "best_hyperparameters.json")))
    assert best["hyperparameters"] == result.best_hyperparameters
    assert not any(k.startswith("tuner/") for k in result.best_hyperparameters)
    assert best["score"] == pytest.approx(max(r.score for r in result.completed))
    metrics = json.load(open(os.path.join(directory, "test_metrics.json")))
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["trained_on"] == "train+validation"
    assert metrics["test_error"] == pytest.approx(1.0 - metrics["test_accuracy"])
    assert metrics["train_examples"] == 200 and metrics["test_examples"] == 60
    loaded = keras.models.load_model(os.path.join(directory, "best_model.keras"))
    x = np.zeros((2, 8, 8, 1), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), result.best_model.predict(x, verbose=0), atol=1e-5)
    assert [float(r.l2) for r in _regularizers(loaded)] == [pytest.approx(result.best_hyperparameters["l2"])] * 5
    from recipes.data import load_data

    assert_inference_model(os.path.join(directory, "best_model.keras"), load_data("digits").x_test[:32],
                           os.path.join(directory, "export"))


def test_a_rerun_trial_trains_exactly_as_the_first_time(splits):
    """KerasTuner reruns a trial killed mid-way from its first epoch; every trial's randomness is a function
    of the recipe's seed (weights, shuffle order, dropout and augmentation by epoch), so the rerun ends as
    the uninterrupted trial would have, whatever ran in the process before."""
    from recipes.recipe import preset

    hm = tuning.ZooHyperModel("lenet5", splits=splits, recipe=preset("lenet5", "full", epochs=2, batch_size=32))
    values = {"l2": 1e-4, "keep_prob": 0.7, "learning_rate": 3e-3}
    histories = []
    for _ in range(2):
        hp = kt.HyperParameters()
        hp.values = dict(values)
        model = hm.build(hp)
        histories.append(hm.fit(hp, model, epochs=2, verbose=0).history)
        keras.utils.set_random_seed(99)  # whatever the process drew in between
    assert histories[0] == histories[1]
    with pytest.raises(ValueError, match="trains the model its own build"):
        hm.fit(hp, keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), epochs=1)


@pytest.mark.parametrize("tuner", [pytest.param("random", marks=pytest.mark.slow),  # the other tests run it
                                   "bayesian", pytest.param("grid", marks=pytest.mark.slow)])  # grid: ~20 s
def test_each_tuner_end_to_end(tuner, splits, tmp_path):
    result = tuning.search("lenet5", splits, tuner=tuner, directory=tmp_path, **small())
    assert result.tuner == tuner and len(result.trials) == 2 and len(result.completed) == 2
    assert result.trials_run == [r.trial_id for r in result.trials]
    _check_outputs(result, 2)
    if tuner == "grid":  # the grid starts at the defaults and walks the last hyperparameter first
        rates = [r.values["learning_rate"] for r in result.trials]  # a decade either side of the best recipe's
        assert rates == [pytest.approx(3e-4), pytest.approx(3e-3)]
        assert [r.values["l2"] for r in result.trials] == [pytest.approx(1e-6)] * 2


@pytest.mark.slow  # ~40 s; each tuner's end-to-end test covers Hyperband's first round
def test_hyperband_end_to_end_with_a_second_round(splits, tmp_path):
    """max_epochs 3: three 1-epoch trials, then the best is trained on to epoch 3 from its checkpoint."""
    result = tuning.search("lenet5", splits, tuner="hyperband", directory=tmp_path, epochs=3, max_trials=4,
                           final_epochs=1, batch_size=32, verbose=0, patience=5)
    assert len(result.trials) == 4 and len(result.completed) == 4
    first, second = result.trials[:3], result.trials[3]
    assert [r.budget for r in first] == [1, 1, 1] and second.budget == 3
    assert second.continued_from in {r.trial_id for r in first} and second.epochs == 3
    raw = result.tuner_object.oracle.trials[second.trial_id].hyperparameters.values
    assert "tuner/trial_id" in raw and "tuner/epochs" in raw
    _check_outputs(result, 4)


def test_diverging_trial_is_failed_and_the_search_goes_on(splits, tmp_path):
    result = tuning.search("lenet5", splits, tuner="random", directory=tmp_path, retrain=False,
                           space={"learning_rate": [0.01, 1e9]},
                           fixed={"optimizer": "sgd", "l2": 1e-4, "keep_prob": 1.0}, **small(max_trials=3))
    by_rate = {r.values["learning_rate"]: r for r in result.trials}
    assert set(by_rate) == {0.01, 1e9}  # two distinct points: the third draw finds nothing new
    assert by_rate[1e9].status == "FAILED" and "diverged" in by_rate[1e9].message
    assert by_rate[0.01].status == "COMPLETED" and result.best_trial_id == by_rate[0.01].trial_id
    assert result.best_model is None and not os.path.exists(os.path.join(result.directory, "best_model.keras"))


def test_no_completed_trial_raises_instead_of_reporting_a_best(splits, tmp_path):
    with pytest.raises(tuning.SearchError, match="no trial completed") as info:
        tuning.search("lenet5", splits, tuner="random", directory=tmp_path, project_name="nan",
                      fixed={"optimizer": "sgd", "learning_rate": 1e9, "l2": 1e-4, "keep_prob": 1.0},
                      **small(max_trials=2))
    assert "diverged" in str(info.value)
    folder = tmp_path / "nan"
    assert not (folder / "best_hyperparameters.json").exists() and not (folder / "best_model.keras").exists()
    assert [row["status"] for row in read_csv(folder / "trials.csv")] == ["FAILED"]


@pytest.mark.slow  # ~40 s; tests/test_faults.py kills a search mid-search and checks the same
def test_an_interrupted_search_resumes_without_rerunning_finished_trials(splits, tmp_path):
    kwargs = dict(tuner="random", directory=tmp_path, project_name="resume", retrain=False,
                  **small(max_trials=3))
    with pytest.raises(KeyboardInterrupt):
        tuning.search("lenet5", splits, callbacks=[stop_at_training_run(3)()], **kwargs)
    folder = str(tmp_path / "resume")
    before = trial_states(folder)
    assert sorted(before.values()) == ["COMPLETED", "COMPLETED", "RUNNING"]
    finished = {t: open(os.path.join(folder, f"trial_{t}", "trial.json")).read()
                for t, s in before.items() if s == "COMPLETED"}

    result = tuning.search("lenet5", splits, **kwargs)  # the same call again
    after = trial_states(folder)
    interrupted = [t for t, s in before.items() if s == "RUNNING"]
    assert result.trials_run == interrupted  # only the interrupted trial ran again
    assert set(after) == set(before) and set(after.values()) == {"COMPLETED"}
    for trial_id, text in finished.items():  # finished trials untouched
        assert open(os.path.join(folder, f"trial_{trial_id}", "trial.json")).read() == text

    again = tuning.search("lenet5", splits, **kwargs)  # finished search: nothing to run
    assert again.trials_run == [] and trial_states(folder) == after

    with pytest.raises(ValueError, match="different search"):
        tuning.search("lenet5", splits, space={"keep_prob": (0.6, 0.9)}, **kwargs)


class KilledAtWrite(BaseException):
    """What a SIGKILL right after one of KerasTuner's file writes leaves: no later write happens."""


@pytest.mark.parametrize("trial_id, status", [
    ("0", "COMPLETED"),  # trial.json says finished; oracle.json still lists it as running, no tuner0.json yet
    pytest.param("1", "RUNNING", marks=pytest.mark.slow),  # trial.json of a started trial; oracle.json never
])                                                          # heard of it (tests/test_tuning_recovery.py too)
def test_a_search_killed_between_kerastuner_writes_resumes(splits, tmp_path, monkeypatch, trial_id, status):
    kwargs = dict(tuner="random", directory=tmp_path, project_name="killed", retrain=False,
                  **small(max_trials=3))
    from tuning import recovery  # our oracles write trial.json through recovery's atomic writer

    save_trial = recovery._save_trial

    def save_then_die(oracle, trial):
        save_trial(oracle, trial)
        if trial.trial_id == trial_id and trial.status == status:
            raise KilledAtWrite

    monkeypatch.setattr(recovery, "_save_trial", save_then_die)
    with pytest.raises(KilledAtWrite):
        tuning.search("lenet5", splits, **kwargs)
    monkeypatch.setattr(recovery, "_save_trial", save_trial)
    folder = str(tmp_path / "killed")
    before = trial_states(folder)
    finished = {t: open(os.path.join(folder, f"trial_{t}", "trial.json")).read()
                for t, s in before.items() if s == "COMPLETED"}
    assert finished and before[trial_id] == status

    result = tuning.search("lenet5", splits, **kwargs)
    after = trial_states(folder)
    assert sorted(after) == ["0", "1", "2"] and set(after.values()) == {"COMPLETED"}, after
    assert not set(result.trials_run) & set(finished), "a finished trial ran again"
    assert sorted(result.trials_run) == sorted(set(after) - set(finished))
    for t, text in finished.items():
        assert open(os.path.join(folder, f"trial_{t}", "trial.json")).read() == text


# -- the command line -----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, needles", [
    (["--model", "lenet6"], ["lenet6", "lenet5"]),
    (["--model", "lenet5", "--tuner", "annealing"], ["annealing", "hyperband", "bayesian", "random", "grid"]),
    (["--model", "lenet5", "--space", "dropout=0.1:0.5"], ["'dropout'", "keep_prob", "learning_rate"]),
    (["--model", "lenet5", "--space", "l2=1e-2:1e-6"], ["l2", "low must be < high"]),
    (["--model", "lenet5", "--space", "l2=-1e-4:1e-2"], ["l2", ">= 0"]),
    (["--model", "lenet5", "--space", "keep_prob=0:0.9"], ["keep_prob", "(0, 1]"]),
    (["--model", "lenet5", "--space", "keep_prob=0.5:1.5"], ["keep_prob", "(0, 1]"]),
    (["--model", "lenet5", "--fix", "learning_rate=0"], ["learning_rate", "> 0"]),
    (["--model", "lenet5", "--space", "learning_rate=-1:0.1"], ["learning_rate", "> 0"]),
    (["--model", "lenet5", "--fix", "batch_norm=maybe"], ["batch_norm", "true or false"]),
    (["--model", "lenet5", "--space", "optimizer=adam,lbfgs"], ["optimizer", "lbfgs", "nesterov"]),
    (["--model", "lenet5", "--space", "l2"], ["--space", "NAME=VALUE"]),
    (["--model", "lenet5", "--objective", "val_f1"], ["val_f1", "val_accuracy", "val_loss"]),
    (["--model", "lenet5", "--data", "no_such_data"], ["no_such_data", "digits"]),
    (["--model", "lenet5", "--max-trials", "0"], ["--max-trials"]),
    (["--model", "lenet5", "--worker", "w0"], ["--worker", "--chief"]),
    (["--model", "lenet5", "--chief", "127.0.0.1:http"], ["--chief", "port"]),
])
def test_cli_bad_input_one_line_exit_2_nothing_written(argv, needles, tmp_path, capsys):
    directory = tmp_path / "runs"
    extra = ["--directory", str(directory), "--limit", "100", "--quiet"]
    if "--data" not in argv:
        extra += ["--data", "digits"]
    code = tuning_main([*argv, *extra])
    captured = capsys.readouterr()

    class Result:
        returncode = code
        stderr = captured.err

    assert_one_line_error(Result, *needles)
    assert not directory.exists()


def test_cli_ctrl_c_exits_130(monkeypatch, capsys):
    import sys

    search_module = sys.modules["tuning.search"]  # `tuning.search` the attribute is the function

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(search_module, "search", interrupted)
    assert tuning_main(["--model", "lenet5", "--data", "digits"]) == 130
    assert capsys.readouterr().err.strip() == "python -m tuning: interrupted"


def test_cli_search_and_rerun(run_cli, tmp_path):
    command = ["python", "-m", "tuning", "--model", "lenet5", "--data", "digits", "--tuner", "random",
               "--max-trials", "2", "--epochs", "1", "--limit", "150", "--test-limit", "50",
               "--space", "l2=1e-5:1e-3", "--fix", "batch_norm=false", "--directory", str(tmp_path)]
    import sys

    command[0] = sys.executable
    first = run_cli(*command, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    assert out.count("COMPLETED") >= 4  # two progress lines + two table rows
    assert "trial 0/2" in out and "trial 1/2" in out and "outputs in" in out and "test accuracy" in out
    assert "Traceback" not in first.stderr
    folder = tmp_path / "lenet5_digits_random"
    rows = read_csv(folder / "trials.csv")
    assert all(1e-5 <= float(r["l2"]) <= 1e-3 and r["batch_norm"] == "false" for r in rows)
    again = run_cli(*command, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 already finished (resuming)" in again.stdout and "0 run now" in again.stdout
    assert len([n for n in os.listdir(folder) if n.startswith("trial_")]) == 2
