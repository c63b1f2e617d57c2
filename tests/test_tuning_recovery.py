"""tuning.recovery: KerasTuner's JSON files written atomically, and a project whose oracle.json or a
trial.json was cut short by a kill mid-write resumes instead of stopping with a JSONDecodeError.

Tiny on purpose: LeNet-5 on a few hundred 8×8 digits, 1 epoch a trial; one finished search is copied for
each test that damages it.
"""

import glob
import json
import os
import shutil

import keras
import pytest

import tuning
from recipes.data import load_data
from tuning.recovery import TRUNCATED_TRIAL_MESSAGE, atomic_write_json, make_writes_atomic
from tuning.tuners import ZooRandomSearch

PROJECT = "recover"


@pytest.fixture(scope="module")
def splits():
    return load_data("digits", limit=200, test_limit=60, seed=0)


def run(splits, directory, **overrides):
    kwargs = dict(tuner="random", directory=directory, project_name=PROJECT, retrain=False, max_trials=2,
                  epochs=1, batch_size=32, verbose=0)
    kwargs.update(overrides)
    return tuning.search("lenet5", splits, **kwargs)


@pytest.fixture(scope="module")
def finished(splits, tmp_path_factory):
    """A finished 2-trial random search (not to be changed: copy it)."""
    directory = tmp_path_factory.mktemp("finished")
    run(splits, directory)
    return directory / PROJECT


@pytest.fixture
def project(finished, tmp_path):
    shutil.copytree(finished, tmp_path / PROJECT)
    return tmp_path / PROJECT


def trial_texts(folder):
    return {os.path.basename(os.path.dirname(p))[len("trial_"):]: open(p).read()
            for p in glob.glob(os.path.join(folder, "trial_*", "trial.json"))}


def cut(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return data[:int(len(data) * fraction)]


def no_temp_files(folder):
    return [p for p in glob.glob(os.path.join(folder, "**", "*.tmp-*"), recursive=True)]


# -- a truncated oracle.json -------------------------------------------------------------------------

@pytest.mark.parametrize("fraction, max_trials", [pytest.param(0.5, 3, marks=pytest.mark.slow),  # half its bytes (~50 s)
                                                 (0.0, 2)])  # empty
def test_a_truncated_oracle_json_is_rebuilt_from_the_trial_files(splits, project, capsys, fraction, max_trials):
    before = trial_texts(project)
    bad = cut(project / "oracle.json", fraction)

    result = run(splits, project.parent, max_trials=max_trials)
    assert "tuning: recovered" in capsys.readouterr().out
    assert result.trials_run == [str(i) for i in range(2, max_trials)]  # no finished trial ran again
    assert len(result.trials) == max_trials and len(result.completed) == max_trials
    oracle = result.tuner_object.oracle
    assert dict(oracle._run_times) == {str(i): 1 for i in range(max_trials)}
    assert oracle.end_order == [str(i) for i in range(max_trials)]
    assert all(trial_texts(project)[t] == text for t, text in before.items())  # finished trials untouched
    drawn = [tuple(sorted(r.values.items())) for r in result.trials]
    assert len(set(drawn)) == max_trials  # the new trial's draw repeats no finished one
    assert (project / "oracle.json.corrupt").read_bytes() == bad
    json.loads((project / "oracle.json").read_text())

    again = run(splits, project.parent, max_trials=max_trials)  # finished: nothing to run, nothing recovered
    assert again.trials_run == [] and "tuning: recovered" not in capsys.readouterr().out


# -- a truncated trial.json ----------------------------------------------------------------------------

def test_a_truncated_trial_json_becomes_a_failed_trial_and_the_search_goes_on(splits, project, capsys):
    before = trial_texts(project)
    bad = cut(project / "trial_0" / "trial.json", 0.5)

    result = run(splits, project.parent, max_trials=3)
    assert "tuning: recovered" in capsys.readouterr().out
    assert result.trials_run == ["2"]  # trial 1 did not run again, and id 0 was not drawn again
    by_id = {r.trial_id: r for r in result.trials}
    assert sorted(by_id) == ["0", "1", "2"]
    assert by_id["0"].status == "FAILED" and "truncated" in by_id["0"].message
    assert result.tuner_object.oracle.trials["0"].message == TRUNCATED_TRIAL_MESSAGE
    assert by_id["1"].status == by_id["2"].status == "COMPLETED"
    assert trial_texts(project)["1"] == before["1"]
    assert (project / "trial_0" / "trial.json.corrupt").read_bytes() == bad
    assert result.tuner_object.oracle._run_times["0"] == 1


# -- Hyperband ---------------------------------------------------------------------------------------------

@pytest.mark.slow  # ~25 s; the random-search cases above cover the same repair
def test_hyperband_with_a_truncated_oracle_json_resumes(splits, tmp_path, capsys):
    """Its brackets live only in oracle.json: they restart, and the search goes on without an error."""
    kwargs = dict(tuner="hyperband", epochs=2)
    first = run(splits, tmp_path, **kwargs)
    assert first.trials_run == ["0", "1"]
    cut(tmp_path / PROJECT / "oracle.json", 0.5)

    result = run(splits, tmp_path, max_trials=3, **kwargs)
    assert "brackets restart" in capsys.readouterr().out
    assert result.trials_run == ["2"] and len(result.trials) == 3 and len(result.completed) == 3
    assert result.tuner_object.oracle._brackets  # a new bracket holds the new trial


# -- atomic writes -----------------------------------------------------------------------------------------

class Crash(Exception):
    pass


def crash(*args, **kwargs):
    raise Crash


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_a_crash_mid_write_leaves_the_previous_file_and_no_temp_file(tmp_path, monkeypatch, where):
    path = tmp_path / "state.json"
    atomic_write_json(str(path), {"n": 1})
    monkeypatch.setattr(os, where, crash)
    with pytest.raises(Crash):
        atomic_write_json(str(path), {"n": 2, "padding": "x" * 100_000})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"n": 1}
    assert os.listdir(tmp_path) == ["state.json"]


def _tiny_model(hp):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(hp.Int("units", 1, 64))])
    model.compile(loss="mse")
    return model


@pytest.mark.parametrize("how", ["make_writes_atomic", "reload"])
def test_the_tuners_writes_are_atomic(tmp_path, monkeypatch, how):
    """oracle.json, trial.json and tuner0.json: a crash in a write leaves each previous file whole."""
    def tuner():
        return ZooRandomSearch(hypermodel=_tiny_model, objective="val_loss", max_trials=5,
                               directory=str(tmp_path), project_name="p")

    tuner_obj = tuner()
    make_writes_atomic(tuner_obj)
    trial = tuner_obj.oracle.create_trial("tuner0")  # trial.json and oracle.json
    tuner_obj.save()
    if how == "reload":  # a second tuner on the same project: the reload hook does it
        tuner_obj = tuner()
        trial = tuner_obj.oracle.trials[trial.trial_id]
    project = tmp_path / "p"
    files = [project / "oracle.json", project / f"trial_{trial.trial_id}" / "trial.json", project / "tuner0.json"]
    texts = [f.read_text() for f in files]

    tuner_obj.oracle._seed_state += 1  # something new to write
    trial.status, trial.message = "FAILED", "x" * 100_000
    writes = [tuner_obj.oracle.save, lambda: tuner_obj.oracle._save_trial(trial), tuner_obj.save]
    replace = os.replace
    for path, text, write in zip(files, texts, writes):
        monkeypatch.setattr(os, "replace", lambda src, dst: crash() if dst == str(path) else replace(src, dst))
        with pytest.raises(Crash):
            write()
        monkeypatch.undo()
        assert path.read_text() == text, path
        assert no_temp_files(project) == []
