"""KerasTuner's project files, safe against a kill mid-write: atomic writes, and repair on reload.

KerasTuner 1.4 writes three kinds of JSON file with a plain ``open(path, "w")`` + ``write``
(``keras_tuner.src.utils.save_json``): ``oracle.json`` (``Oracle.save`` -> ``Stateful.save``), every
``trial_<id>/trial.json`` (``Oracle._save_trial`` -> ``Trial.save`` -> ``Stateful.save``) and the tuner's
own ``<tuner_id>.json`` (``BaseTuner.save`` -> ``Stateful.save``). A process killed in such a write leaves
the file empty or cut short, and the next run's ``Oracle.reload`` stops with a ``JSONDecodeError``.

- :func:`make_writes_atomic`: those writes, on this tuner's own objects, go through
  :func:`atomic_write_json` (a temp file in the same folder, flushed and fsynced, then ``os.replace``):
  a kill leaves the previous file or the new one, never half of one.
- :func:`repair_project`: before KerasTuner reads a project, a file that is not valid JSON (written by an
  older version, a full disk …) is kept as ``<name>.corrupt`` and replaced:

  * ``trial.json``: by a FAILED trial of the same id (ids are ``len(trials)``-based: a dropped id would be
    drawn again for a new trial) whose message says its values are lost;
  * ``oracle.json``: by the state of a fresh oracle, i.e. an ``oracle.json`` behind every trial file,
    which ``tuning.tuners._reconcile_oracle`` then brings level (finished trials counted once, unfinished
    ones queued again, every trial's values recorded so random draws do not repeat them). Whatever else
    the oracle kept there is lost: Hyperband's brackets restart (a trial of a lost bracket is not
    continued to a longer budget), the seed state starts over (draws that repeat a trial are skipped);
  * the tuner's file: rewritten from the tuner (KerasTuner's tuners keep no state in it).

``tuning.tuners._ZooTunerMixin.reload`` calls both; a tuner that starts a new project is not reloaded, so
whoever builds it calls :func:`make_writes_atomic` once.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import uuid
from typing import Any

from keras_tuner.src import utils as kt_utils
from keras_tuner.src.engine import base_tuner, hyperparameters as hp_module, oracle as oracle_module
from keras_tuner.src.engine import trial as trial_module

__all__ = ["atomic_write_json", "make_writes_atomic", "repair_project", "TRUNCATED_TRIAL_MESSAGE"]

TRUNCATED_TRIAL_MESSAGE = "trial.json was truncated (killed mid-write?); its values are lost"
CORRUPT_SUFFIX = ".corrupt"
_TMP_MARK = ".tmp-"
_BAD = "not valid JSON (killed mid-write?)"


def atomic_write_json(path: str, obj: Any) -> str:
    """Write ``obj`` as JSON to ``path`` atomically (KerasTuner's format); return the JSON text."""
    if _remote(path):  # a gs:// or other remote path (KerasTuner writes it with tf.io.gfile): no os.replace
        return kt_utils.save_json(path, obj)
    text = json.dumps(obj)
    tmp = f"{path}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask's mode, as open(path, "w")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_folder(os.path.dirname(os.path.abspath(path)))
    return text


def make_writes_atomic(tuner: Any) -> None:
    """Route ``tuner``'s writes of oracle.json, trial.json and its own file through :func:`atomic_write_json`.

    Done on the instances (``oracle.save``, ``oracle._save_trial``, ``tuner.save``), and only where the class
    still has KerasTuner's own method: a subclass that overrides one keeps it. A worker's oracle is the
    chief's, so a worker only gets its own tuner file. Calling it again changes nothing.
    """
    if getattr(tuner, "_atomic_writes", False):
        return
    if not tuner._is_worker():
        oracle = tuner.oracle
        if type(oracle).save is oracle_module.Oracle.save:
            oracle.save = functools.partial(_save_oracle, oracle)
        if type(oracle)._save_trial is oracle_module.Oracle._save_trial:
            oracle._save_trial = functools.partial(_save_trial, oracle)
    if type(tuner).save is base_tuner.BaseTuner.save:
        tuner.save = functools.partial(_save_tuner, tuner)
    tuner._atomic_writes = True


def _save_oracle(oracle: Any) -> str:  # Oracle.save
    return atomic_write_json(oracle._get_oracle_fname(), oracle.get_state())


def _save_trial(oracle: Any, trial: Any) -> str:  # Oracle._save_trial
    return atomic_write_json(os.path.join(oracle._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state())


def _save_tuner(tuner: Any) -> str:  # BaseTuner.save (the oracle first, as there)
    if not tuner._is_worker():
        tuner.oracle.save()
    return atomic_write_json(tuner._get_tuner_fname(), tuner.get_state())


# -- repair ------------------------------------------------------------------------------------------

def repair_project(tuner: Any) -> list[str]:
    """Replace the project's files that are not valid JSON (see the module docstring); one line each.

    Called before KerasTuner reloads the project; a worker repairs only its own tuner file.
    """
    lines = []
    tuner_file = tuner._get_tuner_fname()
    if _remote(tuner_file):
        return lines
    _remove_temps(glob.escape(tuner_file))
    if _broken(tuner_file):
        _keep_corrupt(tuner_file)
        atomic_write_json(tuner_file, tuner.get_state())
        lines.append(_say(tuner_file, f"{_BAD}; kept as {_corrupt_name(tuner_file)}, rewritten (it holds no "
                                      f"search state)"))
    if tuner._is_worker():
        return lines
    oracle = tuner.oracle
    _remove_temps(os.path.join(glob.escape(oracle._project_dir), "trial_*", "trial.json"))
    for path in sorted(glob.glob(os.path.join(oracle._project_dir, "trial_*", "trial.json"))):
        if _broken(path):
            lines.append(_replace_trial(path))
    oracle_file = oracle._get_oracle_fname()
    _remove_temps(glob.escape(oracle_file))
    if not os.path.exists(oracle_file) or _broken(oracle_file):
        lines.append(_rebuild_oracle(tuner, oracle_file))
    return lines


def _replace_trial(path: str) -> str:
    """A FAILED trial, with the folder's id, in place of a broken trial.json."""
    trial_id = os.path.basename(os.path.dirname(path))[len("trial_"):]
    trial = trial_module.Trial(hp_module.HyperParameters(), trial_id=trial_id, status=trial_module.TrialStatus.FAILED)
    trial.message = TRUNCATED_TRIAL_MESSAGE
    _keep_corrupt(path)
    atomic_write_json(path, trial.get_state())
    return _say(path, f"{_BAD}; kept as trial.json.corrupt, trial {trial_id} marked FAILED (its hyperparameter "
                      f"values are lost)")


def _rebuild_oracle(tuner: Any, path: str) -> str:
    """A fresh oracle's state (its search space populated) in place of a broken or missing oracle.json."""
    what = "missing"
    if os.path.exists(path):
        _keep_corrupt(path)
        what = f"{_BAD}; kept as oracle.json.corrupt"
    tuner._populate_initial_space()  # what a fresh search does; the reload would leave the space empty
    atomic_write_json(path, tuner.oracle.get_state())
    extra = "; Hyperband's brackets restart" if hasattr(tuner.oracle, "_brackets") else ""
    return _say(path, f"{what}; the oracle's state is rebuilt from the trial files{extra}")


def _broken(path: str) -> bool:
    """An existing file that does not hold a JSON object (empty, cut short, not text)."""
    if not os.path.exists(path):
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            return not isinstance(json.load(handle), dict)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return True


def _keep_corrupt(path: str) -> None:
    os.replace(path, path + CORRUPT_SUFFIX)  # an older .corrupt is overwritten


def _corrupt_name(path: str) -> str:
    return os.path.basename(path) + CORRUPT_SUFFIX


def _say(path: str, what: str) -> str:
    line = f"tuning: recovered {path}: {what}"
    print(line, flush=True)
    return line


def _remove_temps(pattern: str) -> None:
    """The temp files a kill left next to the files ``pattern`` (a glob) names; KerasTuner never reads them."""
    for tmp in glob.glob(pattern + _TMP_MARK + "*"):
        with contextlib.suppress(OSError):
            os.remove(tmp)


def _remote(path: str) -> bool:
    """A path KerasTuner would write with tf.io.gfile (``gs://`` …), where ``os.replace`` cannot go."""
    return "://" in str(path)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
