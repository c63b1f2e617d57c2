"""tuning: pruning inside trials, the TPE oracle (Optuna), parameter importance, per-epoch progress, and the
noise-aware objectives (cross-validation, several executions a trial).

Tiny on purpose: LeNet-5 on a few hundred 8×8 digits, 1-4 epochs a trial.
"""

import csv
import json
import os
import sys

import pytest

import tuning
from conftest import assert_one_line_error, stop_at_training_run
from recipes.data import load_data
from tuning.__main__ import main as tuning_main
from tuning.pruning import Pruner, make_pruner
from tuning.space import Fixed

FIXED = {"optimizer": "adam", "l2": 1e-4, "keep_prob": 1.0}


@pytest.fixture(scope="module")
def splits():
    return load_data("digits", limit=300, test_limit=60, seed=0)


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# -- the two rules, by hand ------------------------------------------------------------------------------

def test_median_rule_waits_for_warmup_and_startup_then_prunes_below_the_median():
    pruner = Pruner("median", warmup_epochs=2, startup_trials=3)
    done = {"0": {1: 0.5, 2: 0.6, 3: 0.7}, "1": {1: 0.4, 2: 0.8, 3: 0.9}, "2": {1: 0.3, 2: 0.5, 3: 0.5}}
    curves = {**done, "9": {1: 0.2, 2: 0.3, 3: 0.55}}
    assert pruner.decide("9", 2, curves, set(done), maximize=True) is None           # still warming up
    assert pruner.decide("9", 3, curves, {"0", "1"}, maximize=True) is None          # 2 < 3 completed trials
    reason = pruner.decide("9", 3, curves, set(done), maximize=True)                 # best 0.55 < median 0.7
    assert reason and "0.5500" in reason and "0.7000" in reason
    curves["9"][3] = 0.75
    assert pruner.decide("9", 3, curves, set(done), maximize=True) is None
    # minimising (val_loss): lower is better, the best so far counts
    losses = {"0": {3: 0.3}, "1": {3: 0.4}, "2": {3: 0.5}, "9": {1: 0.9, 3: 0.45}}
    assert pruner.decide("9", 3, losses, {"0", "1", "2"}, maximize=False)
    losses["9"][2] = 0.35
    assert pruner.decide("9", 3, losses, {"0", "1", "2"}, maximize=False) is None


def test_halving_rule_decides_only_at_rungs_and_keeps_the_top_third():
    pruner = Pruner("halving", warmup_epochs=2, factor=3)
    assert pruner.rungs(20) == [2, 6, 18]
    curves = {str(i): {1: 0.1, 2: v} for i, v in enumerate([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])}
    assert pruner.decide("0", 2, curves, set(), maximize=True) is None   # top 2 of 6 go on
    assert pruner.decide("1", 2, curves, set(), maximize=True) is None
    assert "top 2 of 6" in pruner.decide("2", 2, curves, set(), maximize=True)
    assert pruner.decide("5", 3, curves, set(), maximize=True) is None   # epoch 3 is no rung
    # fewer trials than the factor at a rung: only the best so far goes on (Optuna's ASHA)
    two = {"a": {2: 0.5}, "b": {2: 0.4}}
    assert pruner.decide("a", 2, two, set(), maximize=True) is None and pruner.decide("b", 2, two, set(), True)


@pytest.mark.parametrize("kwargs, needle", [
    ({"rule": "asha"}, "--prune"), ({"rule": "median", "warmup_epochs": 0}, "prune_warmup"),
    ({"rule": "halving", "factor": 1}, "prune_factor"), ({"rule": "median", "startup_trials": True}, "prune_startup"),
])
def test_make_pruner_refuses_bad_settings(kwargs, needle):
    rule = kwargs.pop("rule")
    with pytest.raises(ValueError, match=needle):
        make_pruner(rule, **kwargs)


# -- pruning in a search ---------------------------------------------------------------------------------

@pytest.mark.slow  # ~40 s; the rules are unit-tested above and the distributed test prunes through a chief
def test_a_hopeless_trial_is_pruned_recorded_as_pruned_and_its_epochs_counted(splits, tmp_path):
    # The grid runs the rates in order: three that learn (the median's startup trials), then one that cannot.
    result = tuning.search("lenet5", splits, tuner="grid", directory=tmp_path, max_trials=4, epochs=4,
                           space={"learning_rate": [3e-3, 1e-2, 5e-3, 1e-9]}, fixed=FIXED, prune="median",
                           prune_warmup=1, patience=10, batch_size=32, retrain=False, verbose=0)
    by_rate = {r.values["learning_rate"]: r for r in result.trials}
    hopeless = by_rate[1e-9]
    assert hopeless.status == "PRUNED" and hopeless.epochs == 2 and "pruned after epoch 2" in hopeless.message
    assert all(by_rate[r].status == "COMPLETED" and by_rate[r].epochs == 4 for r in (3e-3, 1e-2, 5e-3))
    assert result.epochs_saved == 2 and result.epochs_spent == 14
    assert len(result.completed) == 4 and result.best_trial_id != hopeless.trial_id
    rows = {row["trial_id"]: row for row in read_csv(os.path.join(result.directory, "trials.csv"))}
    assert rows[hopeless.trial_id]["status"] == "PRUNED" and rows[hopeless.trial_id]["epochs"] == "2"
    with open(os.path.join(result.directory, f"trial_{hopeless.trial_id}", "trial.json")) as handle:
        saved = json.load(handle)
    assert saved["status"] == "COMPLETED"  # KerasTuner's status: scored on the epochs it ran
    metrics = saved["metrics"]["metrics"]
    assert [o["value"] for o in metrics["pruned_at_epoch"]["observations"]] == [[2.0]]
    assert len(metrics["epoch_val_accuracy"]["observations"]) == 2
    assert "pruning (median) saved 2 of the 16 epochs" in result.summary()


@pytest.mark.parametrize("kwargs, needle", [
    (dict(tuner="hyperband", prune="median"), "hyperband"),
    (dict(tuner="random", prune="median", isolate_trials=True), "--isolate-trials"),
    (dict(tuner="random", prune="sometimes"), "--prune"),
])
def test_prune_refuses_what_it_cannot_do_before_anything_is_written(splits, tmp_path, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        tuning.search("lenet5", splits, directory=tmp_path / "runs", max_trials=2, epochs=2, verbose=0, **kwargs)
    assert not (tmp_path / "runs").exists()


# -- TPE -------------------------------------------------------------------------------------------------

@pytest.mark.slow  # ~60 s; test_tpe_draws_are_a_function_of_the_trials_so_far_and_the_seed checks the draws fast
def test_tpe_proposes_values_inside_the_space_and_resumes_after_a_kill(splits, tmp_path):
    kwargs = dict(tuner="tpe", directory=tmp_path, project_name="tpe", max_trials=6, epochs=1, batch_size=32,
                  retrain=False, verbose=0, preset="baseline")  # the lightest trials
    with pytest.raises(KeyboardInterrupt):  # in the 5th trial: 3 random start-up draws, then TPE's
        tuning.search("lenet5", splits, callbacks=[stop_at_training_run(5)()], **kwargs)
    result = tuning.search("lenet5", splits, **kwargs)
    assert len(result.trials) == 6 and {r.status for r in result.trials} == {"COMPLETED"}
    assert result.trials_run == ["4", "5"]  # the interrupted trial and the last one; nothing ran twice
    assert result.tuner_object.oracle.n_startup_trials == 3
    for r in result.trials:
        assert 1e-6 <= r.values["l2"] <= 1e-2 and 0.5 <= r.values["keep_prob"] <= 1.0
        assert 1e-4 <= r.values["learning_rate"] <= 1e-1
    assert len({tuple(sorted(r.values.items())) for r in result.trials}) == 6


def test_tpe_draws_are_a_function_of_the_trials_so_far_and_the_seed():
    import keras_tuner as kt

    from tuning.tpe import suggest

    space = kt.HyperParameters()
    space.Float("lr", 1e-4, 1e-1, sampling="log")
    space.Choice("opt", ["adam", "sgd"])
    past = []
    for i, (lr, opt, score) in enumerate([(1e-3, "adam", 0.9), (1e-1, "sgd", 0.2), (3e-3, "adam", 0.95),
                                          (5e-2, "sgd", 0.3)]):
        hp = space.copy()
        hp.values = {"lr": lr, "opt": opt}
        trial = kt.engine.trial.Trial(hp, trial_id=str(i), status="COMPLETED")
        trial.score = score
        past.append(trial)
    first = suggest(space, past, kt.Objective("val_accuracy", "max"), seed=7, n_startup_trials=2)
    assert first == suggest(space, past, kt.Objective("val_accuracy", "max"), seed=7, n_startup_trials=2)
    assert set(first) == {"lr", "opt"} and 1e-4 <= first["lr"] <= 1e-1 and first["opt"] in ("adam", "sgd")


def test_tpe_without_optuna_exits_2_with_the_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError
    directory = tmp_path / "runs"
    code = tuning_main(["--model", "lenet5", "--data", "digits", "--tuner", "tpe", "--limit", "100",
                        "--directory", str(directory), "--quiet"])
    captured = capsys.readouterr()

    class Result:
        returncode = code
        stderr = captured.err

    assert_one_line_error(Result, "--tuner tpe", "Optuna", 'pip install -e ".[optuna]"')
    assert not directory.exists()


# -- parameter importance, progress ----------------------------------------------------------------------

@pytest.mark.slow  # ~60 s: five trials of the best recipe
def test_importance_lists_every_searched_name_summing_to_one(splits, tmp_path):
    result = tuning.search("lenet5", splits, tuner="random", directory=tmp_path, max_trials=5, epochs=1,
                           batch_size=32, retrain=False, verbose=0)
    with open(os.path.join(result.directory, "importance.json")) as handle:
        saved = json.load(handle)["importance"]
    assert set(saved) == set(result.space.tuned) == {"l2", "keep_prob", "learning_rate"}
    assert sum(saved.values()) == pytest.approx(1.0) and all(v >= 0 for v in saved.values())
    assert saved == pytest.approx(result.importance)
    assert os.path.exists(os.path.join(result.directory, "importance.png"))
    assert result.importance_note.startswith("importance (fANOVA): ") and result.importance_note in result.summary()
    # the default space centres on the family's best recipe: its batch norm and techniques, lr 3e-3 ×/÷ 10
    recipe = result.tuner_object.hypermodel.recipe
    assert recipe.preset == "best" and recipe.regularization.batch_norm and recipe.ema == 0.999
    rate = result.space["learning_rate"]
    assert (rate.low, rate.high, rate.sampling) == (pytest.approx(3e-4), pytest.approx(3e-2), "log")
    assert result.space["batch_norm"] == Fixed(True)


def test_one_line_per_epoch_at_verbose_2_one_per_trial_at_1_and_no_importance_from_1_trial(splits, tmp_path):
    lines = []
    result = tuning.search("lenet5", splits, tuner="random", directory=tmp_path, project_name="loud", max_trials=1,
                           epochs=2, final_epochs=2, batch_size=32, verbose=2, progress=lines.append,
                           preset="baseline")
    epochs = [line for line in lines if " epoch " in line]
    assert [line.split()[:4] for line in epochs] == [
        ["trial", "0", "epoch", "1/2"], ["trial", "0", "epoch", "2/2"],
        ["final", "training", "epoch", "1/2"], ["final", "training", "epoch", "2/2"]]
    assert all("val_accuracy=" in line for line in epochs[:2]) and epochs[0].rstrip().endswith("s")
    # too few trials for importance: a note, not a crash
    assert result.importance is None and "at least 5 completed trials, got 1" in result.importance_note
    assert not os.path.exists(os.path.join(result.directory, "importance.json"))
    quiet = []
    tuning.search("lenet5", splits, tuner="random", directory=tmp_path, project_name="quiet", max_trials=1,
                  epochs=1, batch_size=32, retrain=False, verbose=1, progress=quiet.append, preset="baseline")
    assert not [line for line in quiet if " epoch " in line]
    assert sum(line.startswith("trial ") for line in quiet) == 1


# -- noise-aware objectives ------------------------------------------------------------------------------

def test_repeat_metrics_takes_each_trainings_best_epoch_and_the_standard_error():
    from tuning.report import repeat_metrics

    runs = [{"val_accuracy": [0.5, 0.7, 0.6], "val_loss": [1.0, 0.8, 0.9]},
            {"val_accuracy": [0.4, 0.5, 0.9], "val_loss": [1.1, 1.0, 0.5]}]
    out = repeat_metrics(runs, "val_accuracy", "max", "fold")
    assert out["val_accuracy"] == pytest.approx(0.8) and out["val_loss"] == pytest.approx((0.8 + 0.5) / 2)
    assert out["val_accuracy_fold0"] == 0.7 and out["val_accuracy_fold1"] == 0.9
    assert out["val_accuracy_se"] == pytest.approx(0.1)  # stdev 0.1414 / sqrt(2)
    assert repeat_metrics(runs, "val_loss", "min", "execution")["val_loss"] == pytest.approx(0.65)


def test_a_cross_validated_objective_is_the_mean_of_its_fold_scores(splits, tmp_path):
    result = tuning.search("lenet5", splits, tuner="random", directory=tmp_path, max_trials=1, epochs=2, folds=3,
                           fixed=FIXED, batch_size=32, retrain=False, verbose=0, preset="baseline")
    [record] = result.trials
    assert len(record.scores) == 3 and record.score == pytest.approx(sum(record.scores) / 3)
    mean = sum(record.scores) / 3
    se = (sum((x - mean) ** 2 for x in record.scores) / 2) ** 0.5 / 3 ** 0.5
    assert record.score_se == pytest.approx(se) and record.best_epoch is None and record.epochs == 2
    [row] = read_csv(os.path.join(result.directory, "trials.csv"))
    assert [float(x) for x in row["scores"].split(";")] == pytest.approx(record.scores)
    assert float(row["val_accuracy_se"]) == pytest.approx(se)
    with open(os.path.join(result.directory, "search_config.json")) as handle:
        assert json.load(handle)["folds"] == 3
    with pytest.raises(ValueError, match="--folds 3 does not combine with --prune"):
        tuning.search("lenet5", splits, tuner="random", directory=tmp_path / "no", folds=3, prune="median", verbose=0)


def test_executions_per_trial_record_each_execution_and_the_standard_error(splits, tmp_path):
    result = tuning.search("lenet5", splits, tuner="random", directory=tmp_path, max_trials=1, epochs=1,
                           executions_per_trial=2, fixed=FIXED, batch_size=32, retrain=False, verbose=0,
                           preset="baseline")
    [record] = result.trials
    assert len(record.scores) == 2 and record.score == pytest.approx(sum(record.scores) / 2)
    assert record.scores[0] != record.scores[1]  # the second execution trains on its own seed
    assert record.score_se == pytest.approx(abs(record.scores[0] - record.scores[1]) / 2)
    assert "±" in result.table()
