"""Faults a user will meet: a training run and a tuner search killed with SIGKILL, then run again.

Real subprocesses, real ``kill -9``: nothing in the killed process gets to clean up, so what is on disk is
exactly what a power cut or the OOM killer would leave. The NaN run is in test_recipes.py and a dead
distributed worker in test_tuning_distributed.py (slow).
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, kill_process_group

POLL_S = 0.02


def _start(args, out_log):
    """Start ``python -m <args>`` in its own process group, stdout+stderr to ``out_log``."""
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED="1")
    handle = open(out_log, "w")
    process = subprocess.Popen([sys.executable, "-m", *args], stdout=handle, stderr=subprocess.STDOUT,
                               cwd=REPO, env=env, start_new_session=True)
    process.log_handle = handle
    return process


def _kill(process):
    """SIGKILL the process (and its group, in case it spawned children) and reap it."""
    kill_process_group(process)
    process.log_handle.close()


def _wait_for(process, condition, timeout, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            raise AssertionError(f"the process ended ({process.returncode}) before the kill point:\n"
                                 + Path(log).read_text()[-3000:])
        time.sleep(POLL_S)
    raise AssertionError(f"no kill point within {timeout} s:\n" + Path(log).read_text()[-3000:])


def _history_epochs(path):
    try:
        with open(path, newline="") as handle:
            return [int(row["epoch"]) for row in csv.DictReader(handle) if row.get("epoch", "").isdigit()]
    except (OSError, KeyError):
        return []


def _backup_epoch(work):
    try:
        return json.loads((work / "backup" / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def _complete_looking(out):
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []


# -- a training run ----------------------------------------------------------------------------------------
EPOCHS = 3
TRAIN_ARGS = ["recipes.lenet5", "--data", "digits", "--limit", "400", "--test-limit", "60", "--epochs",
              str(EPOCHS), "--batch-size", "8", "--patience", "none", "--seed", "3", "--verbose", "2"]


def test_training_killed_mid_epoch_resumes_from_its_last_finished_epoch(tmp_path):
    """SIGKILL during epoch 2; the same command again resumes at epoch 2 and ends with all epochs."""
    out = tmp_path / "runs"
    command = [*TRAIN_ARGS, "--out", str(out)]
    inprogress = out / ".inprogress"
    first = _start(command, tmp_path / "first.log")
    try:
        def one_epoch_backed_up():
            works = list(inprogress.iterdir()) if inprogress.exists() else []
            return len(works) == 1 and _backup_epoch(works[0]) >= 1 and len(_history_epochs(works[0] / "history.csv")) >= 1

        _wait_for(first, one_epoch_backed_up, timeout=240, log=tmp_path / "first.log")
    finally:
        _kill(first)
    assert first.returncode == -signal.SIGKILL

    (work,) = inprogress.iterdir()
    assert _complete_looking(out) == [], "a killed run must leave no folder without a leading dot"
    assert not (work / "metrics.json").exists() and not (work / "model.keras").exists()
    finished = _backup_epoch(work)
    assert 1 <= finished < EPOCHS, "killed mid-run, after at least one finished epoch"
    assert (work / "LOCK").exists(), "the killed process could not remove its lock (a stale lock to get past)"
    history_at_kill = _history_epochs(work / "history.csv")
    assert history_at_kill[: finished] == list(range(finished))

    second = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, timeout=300,
                            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    assert f"Resuming {work} at epoch {finished + 1} of {EPOCHS}" in second.stdout
    assert second.stdout.count("/step") == EPOCHS - finished, "only the unfinished epochs ran again"
    (name,) = _complete_looking(out)
    folder = out / name
    assert not inprogress.exists()
    metrics = json.loads((folder / "metrics.json").read_text())
    # an uninterrupted run (early stopping off) runs exactly EPOCHS epochs: so does the resumed one
    assert metrics["epochs_run"] == EPOCHS and metrics["resumed_from_epoch"] == finished
    assert _history_epochs(folder / "history.csv") == list(range(EPOCHS)), "one history row per epoch"
    assert not (folder / "backup").exists() and not (folder / "LOCK").exists()
    for file in ("config.json", "history.csv", "metrics.json", "model.keras", "best.keras", "curves.png",
                 "weights.png", "verdict.txt"):
        assert (folder / file).is_file(), file


def _run_to_end(command, log):
    result = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, timeout=300,
                            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _finished_folder(out):
    (name,) = _complete_looking(out)
    folder = out / name
    metrics = json.loads((folder / "metrics.json").read_text())
    return (folder / "history.csv").read_text(), metrics


def test_a_resumed_run_ends_exactly_as_the_uninterrupted_run(tmp_path):
    """The main job's recipe (dropout, batch norm, augmentation, early stopping, a cosine schedule) killed
    with SIGKILL once its second epoch is backed up, then rerun: the same history.csv, byte for byte, and
    the same metrics.json numbers as an uninterrupted run of the same command (wall time aside, and
    ``resumed_from_epoch``, which says what happened)."""
    command = ["recipes.lenet5", "--epochs", "6", "--verbose", "2"]
    _run_to_end([*command, "--out", str(tmp_path / "straight")], tmp_path / "straight.log")
    out = tmp_path / "killed"
    inprogress = out / ".inprogress"
    first = _start([*command, "--out", str(out)], tmp_path / "first.log")
    try:
        def two_epochs_backed_up():
            works = list(inprogress.iterdir()) if inprogress.exists() else []
            return len(works) == 1 and _backup_epoch(works[0]) >= 2

        _wait_for(first, two_epochs_backed_up, timeout=240, log=tmp_path / "first.log")
    finally:
        _kill(first)
    (work,) = inprogress.iterdir()
    assert 2 <= _backup_epoch(work) < 6
    second = _run_to_end([*command, "--out", str(out)], tmp_path / "second.log")
    assert "Resuming" in second.stdout
    history, metrics = _finished_folder(out)
    expected_history, expected = _finished_folder(tmp_path / "straight")
    assert history == expected_history
    assert metrics["resumed_from_epoch"] >= 2 and expected["resumed_from_epoch"] == 0
    aside = ("wall_time_s", "resumed_from_epoch")
    assert {k: v for k, v in metrics.items() if k not in aside} == {k: v for k, v in expected.items() if k not in aside}


# -- a tuner search ----------------------------------------------------------------------------------------
MAX_TRIALS = 3


def _trial_states(project):
    states = {}
    for path in sorted(project.glob("trial_*/trial.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            states[path.parent.name] = "UNREADABLE"
            continue
        states[data["trial_id"]] = data["status"]
    return states


def test_search_killed_mid_search_runs_only_the_missing_trials(tmp_path):
    directory = tmp_path / "tuning"
    command = ["tuning", "--model", "lenet5", "--data", "digits", "--tuner", "random", "--max-trials",
               str(MAX_TRIALS), "--epochs", "1", "--limit", "300", "--test-limit", "60", "--batch-size", "8",
               "--no-retrain", "--seed", "1", "--directory", str(directory), "--project-name", "killed"]
    project = directory / "killed"
    first = _start(command, tmp_path / "first.log")
    try:
        _wait_for(first, lambda: list(_trial_states(project).values()).count("COMPLETED") >= 1,
                  timeout=240, log=tmp_path / "first.log")
    finally:
        _kill(first)
    assert first.returncode == -signal.SIGKILL

    before = _trial_states(project)
    done = [t for t, s in before.items() if s == "COMPLETED"]
    assert 1 <= len(done) < MAX_TRIALS, before
    assert set(before.values()) <= {"COMPLETED", "RUNNING"}, before
    assert not (project / "trials.csv").exists(), "a killed search writes no report"
    kept = {t: (project / f"trial_{t}" / "trial.json").read_text() for t in done}

    second = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, timeout=300,
                            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    assert f"{len(done)} already finished (resuming)" in second.stdout, second.stdout[-2000:]
    missing = MAX_TRIALS - len(done)
    assert f"{MAX_TRIALS} trials ({MAX_TRIALS} completed), {missing} run now" in second.stdout, second.stdout[-2000:]
    after = _trial_states(project)
    assert len(after) == MAX_TRIALS and set(after.values()) == {"COMPLETED"}, after
    assert len(list(project.glob("trial_*"))) == MAX_TRIALS
    for trial_id, text in kept.items():
        assert (project / f"trial_{trial_id}" / "trial.json").read_text() == text, "finished trials untouched"
    with open(project / "trials.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == MAX_TRIALS


# -- a kill at the worst moments of an epoch's end, reproduced in-process --------------------------------
# SIGKILL cannot be aimed at one line, so these put the work folder in the state such a kill leaves.
def _small_recipe():
    import zoo
    from recipes.recipe import Recipe

    return Recipe(model="lenet5", data="digits", limit=200, test_limit=60, batch_size=32, epochs=4, patience=3,
                  regularization=zoo.Regularization(batch_norm=False), optimizer="momentum", learning_rate=0.02)


class _Epochs:
    def __new__(cls):
        import keras

        class Seen(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.epochs = []

            def on_epoch_begin(self, epoch, logs=None):
                self.epochs.append(epoch)

        return Seen()


def _stop_at_end_of_epoch(epoch):
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, at, logs=None):
            if at == epoch:
                raise RuntimeError(f"killed at the end of epoch {at}")

    return Stop()


def test_a_kill_while_the_backup_is_written_resumes_from_the_previous_copy(tmp_path):
    """Killed while BackupAndRestore overwrote its weights (the file is cut short) and while ModelCheckpoint
    wrote best.keras: the same command resumes from the previous backup and rewrites best.keras."""
    import shutil

    from recipes.train import run, work_dir_for

    recipe = _small_recipe()
    with pytest.raises(RuntimeError, match="killed at the end of epoch 2"):
        run(recipe, out=tmp_path, verbose=0, callbacks=[_stop_at_end_of_epoch(2)])
    backup = work_dir_for(recipe, tmp_path) / "backup"
    weights, meta = backup / "latest.weights.h5", backup / "training_metadata.json"
    assert json.loads(meta.read_text())["epoch"] == 2
    assert json.loads(Path(f"{meta}.bkp").read_text())["epoch"] == 1, "two copies kept (double_checkpoint)"
    # what Keras does first when it backs epoch 2 up (double_checkpoint), then the kill mid-write:
    shutil.copy(weights, str(weights) + ".bkp")
    shutil.copy(meta, str(meta) + ".bkp")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    best = backup.parent / "best.keras"
    best.write_bytes(best.read_bytes()[:100])

    seen = _Epochs()
    result = run(recipe, out=tmp_path, verbose=0, callbacks=[seen])
    assert seen.epochs[0] == 2 and result.metrics["resumed_from_epoch"] == 2
    assert _history_epochs(result.folder / "history.csv") == list(range(result.metrics["epochs_run"]))
    import keras

    keras.models.load_model(result.folder / "best.keras")  # a whole file again


def test_a_kill_right_after_an_epochs_backup_loses_no_history_row(tmp_path, monkeypatch):
    """The backup is the last thing an epoch writes: when it says an epoch finished, that epoch's history row,
    checkpoint and early-stopping state are already on disk."""
    import keras

    from recipes.train import run

    save = keras.callbacks.BackupAndRestore._save_model

    def save_then_die(self):
        save(self)
        if self._current_epoch == 2:
            raise RuntimeError("killed just after backing up epoch 2")

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "_save_model", save_then_die)
    recipe = _small_recipe()
    with pytest.raises(RuntimeError, match="killed just after"):
        run(recipe, out=tmp_path, verbose=0)
    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "_save_model", save)
    seen = _Epochs()
    result = run(recipe, out=tmp_path, verbose=0, callbacks=[seen])
    assert seen.epochs[0] == 2 and result.metrics["resumed_from_epoch"] == 2
    assert _history_epochs(result.folder / "history.csv") == list(range(result.metrics["epochs_run"]))
    assert result.metrics["epochs_run"] >= 3
