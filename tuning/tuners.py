"""KerasTuner's four tuners with what every zoo search needs added (no search algorithm of our own).

- memory freed after every trial (``keras.backend.clear_session`` + ``gc.collect``);
- one progress line per finished trial, and optionally one per epoch;
- every epoch's objective reported to the oracle, which may prune the trial (``tuning.pruning``);
- optionally, every trial in a fresh Python process (``isolate_trials=True``): TensorFlow keeps a few MB
  per trial that ``clear_session`` does not give back (keras-tuner issues #395, #873; measured by
  ``bench/tuning_memory.py``), so a long search may run each trial in a child process instead, at a
  start-up cost of a few seconds a trial.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import time
import traceback
import warnings
from typing import Callable

import keras
import keras_tuner as kt

from tuning.tpe import TPESearch


__all__ = ["TUNERS", "tuner_class", "ZooRandomSearch", "ZooBayesianOptimization", "ZooHyperband",
           "ZooGridSearch", "ZooTPE", "TrialIsolationError"]

from tuning.choices import TUNERS  # noqa: E402  (hyperband, bayesian, random, grid, tpe)

# Hyperband continues a trial of the previous round from its saved weights into a freshly compiled
# model (KerasTuner's design: weights carry over, optimizer state does not); Keras warns about the
# optimizer variables it skips on every such load. Expected here, so not shown.
warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer", category=UserWarning)


class TrialIsolationError(RuntimeError):
    """A trial's child process died without a result (killed, out of memory)."""


class _ZooTunerMixin:
    """Added to each KerasTuner tuner class (first in the MRO)."""

    # set by configure(); class-level defaults keep KerasTuner's own reload paths working
    isolate_trials = False
    progress: Callable[[str], None] | None = None
    progress_names: tuple[str, ...] = ()
    epoch_progress = False
    _planned_epochs: int | None = None

    def configure(self, *, isolate_trials: bool = False, progress: Callable[[str], None] | None = None,
                  progress_names: tuple[str, ...] = (), max_trials: int | None = None,
                  epoch_progress: bool = False) -> None:
        self.isolate_trials = bool(isolate_trials)
        self.epoch_progress = bool(epoch_progress)
        self.progress = progress
        self.progress_names = tuple(progress_names)
        self.max_trials_label = max_trials
        self.trials_run: list[str] = []
        self.trials_ended: dict[str, object] = {}  # trial id -> the trial as the oracle scored it
        self._trial_started: dict[str, float] = {}

    # -- resuming after a kill ----------------------------------------------------------------------
    def on_search_begin(self):
        super().on_search_begin()
        if not self._is_worker():
            # KerasTuner first writes its tuner file when a trial ends, after that trial's trial.json:
            # killed in between, the next run found no tuner file, did not reload, and ran trial 0 again
            # over the finished one. Written now, it is there before any trial file is.
            self.save()

    def reload(self):
        from tuning.recovery import make_writes_atomic, repair_project

        make_writes_atomic(self)  # oracle.json, trial.json, the tuner file: a kill leaves old or new, not half
        repair_project(self)      # a file left cut short by an older kill: kept as *.corrupt, rebuilt
        super().reload()
        if not self._is_worker():
            _reconcile_oracle(self.oracle)

    # -- hooks -----------------------------------------------------------------------------------
    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._trial_started[trial.trial_id] = time.perf_counter()

    def on_epoch_begin(self, trial, model, epoch, logs=None):
        super().on_epoch_begin(trial, model, epoch, logs)
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, trial, model, epoch, logs=None):
        """One progress line per epoch (``epoch_progress``), and the objective to the oracle, which may
        answer STOPPED: the trial is pruned (``tuning.pruning``) and its training ends after this epoch."""
        super().on_epoch_end(trial, model, epoch, logs)
        from tuning.pruning import INTERMEDIATE_KEY
        from tuning.report import epoch_line

        logs = dict(logs or {})
        seconds = time.perf_counter() - getattr(self, "_epoch_started", time.perf_counter())
        name = self.oracle.objective.name
        value = logs.get(name)
        pruned = None
        if value is not None and math.isfinite(float(value)):
            answer = self.oracle.update_trial(trial.trial_id, {name: float(value), INTERMEDIATE_KEY: 1.0},
                                              step=int(epoch))
            if str(getattr(answer, "status", answer)) == "STOPPED":
                model.stop_training = True
                pruned = getattr(answer, "message", None) or "pruned"
        if self.progress is not None and self.epoch_progress:
            self.progress(epoch_line(f"trial {trial.trial_id}", epoch + 1, self._planned_epochs, logs, seconds, pruned))

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle scores and records the trial, the tuner saves its state
        keras.backend.clear_session()
        gc.collect()
        self.trials_run.append(trial.trial_id)
        try:  # asked now, while a chief still waits for this worker (it may be gone once told to stop)
            ended = self.oracle.get_trial(trial.trial_id)
        except Exception:  # noqa: BLE001  (a lost chief: keep what this worker knows)
            ended = trial
        self.trials_ended[trial.trial_id] = ended
        if self.progress is not None:
            self.progress(self.trial_line(ended))

    def trial_line(self, ended) -> str:
        """The progress line of a trial the oracle has scored (see ``tuning.report.progress_line``)."""
        from tuning.report import progress_line

        try:
            best = self.oracle.get_best_trials(1)
            best_score = best[0].score if best and best[0].status == "COMPLETED" else None
        except Exception:  # noqa: BLE001
            best_score = None
        seconds = time.perf_counter() - self._trial_started.get(ended.trial_id, time.perf_counter())
        worker = os.environ.get("KERASTUNER_TUNER_ID") if "KERASTUNER_ORACLE_IP" in os.environ else None
        return progress_line(ended, self.oracle.objective.name, best_score=best_score, names=self.progress_names,
                             max_trials=getattr(self, "max_trials_label", None), seconds=seconds, worker=worker)

    # -- trials in a child process -----------------------------------------------------------------
    def run_trial(self, trial, *args, **kwargs):
        self._planned_epochs = kwargs.get("epochs")
        self._execution = 0
        try:
            if not self.isolate_trials:
                results = super().run_trial(trial, *args, **kwargs)
            else:
                results = self._run_trial_isolated(trial, *args, **kwargs)
        finally:
            self.hypermodel.execution = 0
        return self._combined(results)

    def _build_and_fit_model(self, trial, *args, **kwargs):
        self.hypermodel.execution = self._execution  # each execution on its own seed (ZooHyperModel.build)
        self._execution += 1
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def _combined(self, results):
        """Several executions of a trial as one metrics dict with each execution's score and the standard
        error (``tuning.report.repeat_metrics``); KerasTuner's own average keeps only the mean."""
        from tuning.report import repeat_metrics

        if not isinstance(results, list) or len(results) < 2 or not all(hasattr(r, "history") for r in results):
            return results
        objective = self.oracle.objective
        return repeat_metrics([r.history for r in results], objective.name, objective.direction, "execution")

    def _run_trial_isolated(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        load_from = None
        if "tuner/epochs" in hp.values:  # what Hyperband.run_trial and Hyperband._build_hypermodel do
            kwargs["epochs"] = hp.values["tuner/epochs"]
            kwargs["initial_epoch"] = hp.values["tuner/initial_epoch"]
            if "tuner/trial_id" in hp.values:
                load_from = self._get_checkpoint_fname(hp.values["tuner/trial_id"])
        original_callbacks = kwargs.pop("callbacks", [])
        objective = self.oracle.objective
        best_value = float("-inf") if objective.direction == "max" else float("inf")
        histories = []
        for execution in range(self.executions_per_trial):
            payload = {
                "hypermodel": self.hypermodel,
                "hp_config": hp.get_config(),
                "values": dict(hp.values),
                "args": args,
                "kwargs": dict(kwargs, callbacks=self._deepcopy_callbacks(original_callbacks)),
                "objective": objective,
                "checkpoint": self._get_checkpoint_fname(trial.trial_id),
                "build_config": self._get_build_config_fname(trial.trial_id),
                "best_value": best_value,
                "load_from": load_from,
                "seed": None,
                "execution": execution,
            }
            status, *rest = _run_in_child(payload)
            if status == "failed":
                raise kt.errors.FailedTrialError(rest[0])
            if status == "error":
                raise TrialIsolationError(rest[0])
            history_dict, best_value = rest
            history = keras.callbacks.History()
            history.history = history_dict
            histories.append(history)
        return histories


_ENDED = ("COMPLETED", "FAILED")


def _reconcile_oracle(oracle: kt.Oracle) -> None:
    """Make a reloaded oracle agree with its trial files, which are written first.

    KerasTuner writes a trial's ``trial.json``, then ``oracle.json``, then the tuner's file, each on its
    own. A kill between them leaves ``oracle.json`` behind the trial files: a finished trial still listed
    as running (the reload would queue it to run again) or a started trial not listed at all (it would
    never run, yet count against ``max_trials``). The trial files decide, in trial-id order (an
    ``oracle.json`` rebuilt by ``tuning.recovery`` is behind all of them).
    """
    queue = [t for t in oracle._retry_queue if oracle.trials[t].status not in _ENDED]
    for trial_id, trial in sorted(oracle.trials.items(), key=lambda item: (len(item[0]), item[0])):
        if trial.status in _ENDED:
            if trial_id not in oracle.end_order:
                oracle.end_order.append(trial_id)
                oracle._run_times[trial_id] = max(oracle._run_times[trial_id], 1)
        elif trial_id not in oracle.end_order and trial_id not in queue:
            queue.append(trial_id)
        if trial_id not in oracle.start_order:
            oracle.start_order.append(trial_id)
        if oracle._id_to_hash[trial_id] is None:
            oracle._record_values(trial)  # so a random draw does not repeat its values
    oracle._retry_queue = queue


def _run_in_child(payload: dict) -> tuple:
    """Run one execution in a fresh ``spawn``ed interpreter; ("ok", history, best) | ("failed"|"error", msg)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(sender, payload), daemon=True)
    process.start()
    sender.close()
    try:
        while True:
            if receiver.poll(0.5):
                try:
                    result = receiver.recv()
                except EOFError:
                    result = None
                break
            if not process.is_alive():
                result = receiver.recv() if receiver.poll(0.1) else None
                break
    except BaseException:
        process.kill()
        process.join(5)
        raise
    finally:
        receiver.close()
    process.join(30)
    if process.is_alive():
        process.kill()
        process.join(5)
    if result is None:
        return ("error", f"the trial's child process ended with exit code {process.exitcode} and no result "
                         f"(killed or out of memory?)")
    return result


def _child_main(conn, payload: dict) -> None:  # runs in the child process
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import zoo

        zoo.load()  # quiet TensorFlow start-up, the zoo's layers registered
        import keras as k
        import keras_tuner as ktuner
        from keras_tuner.src import utils as kt_utils
        from keras_tuner.src.engine import tuner_utils

        hp = ktuner.HyperParameters.from_config(payload["hp_config"])
        hp.values = dict(payload["values"])
        hypermodel = payload["hypermodel"]
        hypermodel.execution = payload.get("execution", 0)
        model = hypermodel.build(hp)
        if payload["load_from"]:
            if not model.built:
                model.build_from_config(kt_utils.load_json(payload["build_config"]))
            model.load_weights(payload["load_from"])
        checkpoint = tuner_utils.SaveBestEpoch(objective=payload["objective"], filepath=payload["checkpoint"])
        checkpoint.best_value = payload["best_value"]
        kwargs = dict(payload["kwargs"])
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [checkpoint]
        try:
            history = hypermodel.fit(hp, model, *payload["args"], **kwargs)
        except ktuner.errors.FailedTrialError as error:
            conn.send(("failed", str(error)))
            return
        kt_utils.save_json(payload["build_config"], model.get_build_config())
        history_dict = {key: [float(v) for v in values] for key, values in history.history.items()}
        conn.send(("ok", history_dict, float(checkpoint.best_value)))
        del model
        k.backend.clear_session()
    except BaseException:  # noqa: BLE001
        try:
            conn.send(("error", traceback.format_exc()))
        except Exception:  # noqa: BLE001
            pass
    finally:
        conn.close()


class ZooRandomSearch(_ZooTunerMixin, kt.RandomSearch):
    """``keras_tuner.RandomSearch`` + the zoo's trial hooks."""


class ZooBayesianOptimization(_ZooTunerMixin, kt.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` (Gaussian process; needs scipy and scikit-learn) + hooks."""


class ZooHyperband(_ZooTunerMixin, kt.Hyperband):
    """``keras_tuner.Hyperband`` + hooks. Its budget is ``max_epochs``; ``max_trials`` caps the trials."""


class ZooGridSearch(_ZooTunerMixin, kt.GridSearch):
    """``keras_tuner.GridSearch`` + hooks (every range needs a step: ``SearchSpace.for_grid``)."""


class ZooTPE(_ZooTunerMixin, TPESearch):
    """``tuning.tpe.TPESearch`` (Optuna's TPE sampler behind a KerasTuner oracle; needs optuna) + hooks."""


def tuner_class(name: str) -> type:
    classes = {"hyperband": ZooHyperband, "bayesian": ZooBayesianOptimization, "random": ZooRandomSearch,
               "grid": ZooGridSearch, "tpe": ZooTPE}
    if name not in classes:
        raise ValueError(f"unknown tuner {name!r}; allowed: {', '.join(TUNERS)}")
    return classes[name]
