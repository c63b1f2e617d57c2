"""``tuning.search``: run a KerasTuner search over a zoo model, retrain the best on train+validation,
evaluate it once on the test split, and write the reports.

Outputs in ``<directory>/<project_name>/``: KerasTuner's own files (``oracle.json``, ``tuner0.json``,
``trial_*/trial.json`` and checkpoints), plus ``search_config.json`` (what a resume is checked against),
``trials.csv``, ``best_hyperparameters.json``, ``best_model.keras``, ``test_metrics.json`` and
``search.png``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Mapping, Sequence

import keras
import keras_tuner as kt
import numpy as np

import zoo
from tuning.distributed import SearchError, kerastuner_env, parse_address, serve
from tuning.hypermodel import ZooHyperModel, strip_tuner_keys
from tuning.pruning import install as install_pruning, make_pruner
from tuning.recovery import make_writes_atomic
from tuning.report import (TrialRecord, epoch_line, format_table, plot_search, progress_line, trial_records,
                           write_json, write_trials_csv)
from tuning.tuners import TUNERS, tuner_class

__all__ = ["search", "SearchResult", "SearchError", "make_objective", "OBJECTIVES", "OUTPUT_FILES",
           "DEFAULT_DIRECTORY"]

DEFAULT_DIRECTORY = "tuning_runs"
# The metrics every compiled zoo model reports, with the direction to optimize them in.
from tuning.choices import OBJECTIVES  # noqa: E402  (val_accuracy, val_loss, accuracy, loss → max/min)
OUTPUT_FILES = ("trials.csv", "best_hyperparameters.json", "best_model.keras", "test_metrics.json", "search.png")
CONFIG_FILE = "search_config.json"
SCORED = ("COMPLETED", "PRUNED")


def make_objective(objective: str | kt.Objective) -> kt.Objective:
    """``"val_accuracy"`` -> ``kt.Objective("val_accuracy", "max")``; ``"val_loss:min"`` also works.

    Only the metrics a zoo model reports (``OBJECTIVES``) are allowed; a ``kt.Objective`` passes through.
    """
    if isinstance(objective, kt.Objective):
        return objective
    if not isinstance(objective, str):
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)} (optionally NAME:max|min) or a "
                         f"keras_tuner.Objective, got {objective!r}")
    name, _, direction = objective.partition(":")
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; allowed: {', '.join(OBJECTIVES)} "
                         f"(the metrics every zoo model reports)")
    direction = direction or OBJECTIVES[name]
    if direction not in ("max", "min"):
        raise ValueError(f"objective direction must be max or min, got {direction!r} in {objective!r}")
    return kt.Objective(name, direction)


@dataclasses.dataclass
class SearchResult:
    """What :func:`search` returns.

    Attributes:
        best_hyperparameters: the best trial's values, without Hyperband's ``tuner/...`` entries
            (None for a worker).
        best_trial_id, best_score: the best trial and its objective value (validation).
        trials: every trial as a :class:`tuning.report.TrialRecord` (hyperparameters, score, epochs, status).
        best_model: the best configuration retrained on train+validation (None without ``retrain``).
        test_metrics: its one evaluation on the test split, named as in a run's metrics.json
            (``test_loss``, ``test_accuracy``, ``test_error``, ``train_loss`` … ``epochs_run``).
        directory: the project folder with every output; ``files``: output name -> path.
        trials_run: the trial ids this process ran (a resumed search skips finished ones).
        role: ``"local"``, ``"chief"`` or ``"worker"``.
    """

    model: str
    data: str
    tuner: str
    objective: str
    direction: str
    directory: str
    role: str
    space: Any
    trials: list[TrialRecord]
    trials_run: list[str]
    best_hyperparameters: dict[str, Any] | None = None
    best_trial_id: str | None = None
    best_score: float | None = None
    best_model: keras.Model | None = None
    test_metrics: dict[str, Any] | None = None
    files: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    tuner_object: Any = None
    epochs_per_trial: int | None = None
    prune: str = "none"
    importance: dict[str, float] | None = None
    importance_note: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """The hyperparameters the table shows: the searched ones (``space.tuned``)."""
        return tuple(self.space.tuned)

    @property
    def completed(self) -> list[TrialRecord]:
        """Trials with a score: completed, and pruned ones (scored on the epochs they ran)."""
        return [r for r in self.trials if r.status in SCORED]

    @property
    def epochs_spent(self) -> int:
        """Training epochs of every trial (as recorded; a trial continued by Hyperband counts in full)."""
        return sum(r.epochs or 0 for r in self.trials)

    @property
    def epochs_saved(self) -> int:
        """Epochs the pruned trials did not train: their budget minus what they ran."""
        return sum(max(0, (self.epochs_per_trial or 0) - (r.epochs or 0)) for r in self.trials if r.status == "PRUNED")

    def table(self, top: int | None = None) -> str:
        """The trial table, best first (``top`` rows)."""
        return format_table(self.trials, self.columns, self.objective, direction=self.direction, top=top)

    def summary(self, top: int = 5) -> str:
        """The best trials, the test result and where the outputs are."""
        counts: dict[str, int] = {}
        for r in self.trials:
            counts[r.status] = counts.get(r.status, 0) + 1
        lines = [f"{self.tuner} search of {self.model} on {self.data}: {len(self.trials)} trials "
                 f"({', '.join(f'{n} {s.lower()}' for s, n in sorted(counts.items()))}), "
                 f"{len(self.trials_run)} run now, {self.seconds:.0f} s"
                 + (f"; pruning ({self.prune}) saved {self.epochs_saved} of the "
                    f"{self.epochs_saved + self.epochs_spent} epochs its trials had" if self.prune != "none" else ""),
                 f"best {min(top, len(self.trials))} by {self.objective} ({self.direction}):", self.table(top)]
        if self.test_metrics:
            m = self.test_metrics
            lines.append(f"best trial {self.best_trial_id} retrained on train+validation for {m.get('epochs_run')} "
                         f"epochs: test accuracy {m.get('test_accuracy', float('nan')):.4f}, test loss "
                         f"{m.get('test_loss', float('nan')):.4f} ({m.get('test_examples')} test examples)")
        if self.importance_note:
            lines.append(self.importance_note)
        lines.append(f"outputs in {self.directory}:")
        for name, path in self.files.items():
            lines.append(f"  {name:<26} {path}")
        return "\n".join(lines)


# -- helpers ---------------------------------------------------------------------------------------------

def _check_int(name: str, value: Any, low: int = 1, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}{' or None' if optional else ''}, got {value!r}")
    return int(value)


def _check_seconds(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a number of seconds > 0 or None, got {value!r}")
    return float(value)


def _check_dependencies(tuner: str) -> None:
    try:
        from tensorboard.plugins.hparams import api  # noqa: F401
    except ImportError:
        raise SearchError("KerasTuner 1.4 needs tensorboard (it imports tensorboard.plugins.hparams in every "
                          "trial; without it every trial fails): pip install tensorboard") from None
    if tuner == "tpe":
        from tuning.tpe import require_optuna

        require_optuna()  # ValueError (exit 2) with the install command
    if tuner == "bayesian":
        missing = []
        for module in ("scipy", "sklearn"):
            try:
                __import__(module)
            except ImportError:
                missing.append(module)
        if missing:
            raise SearchError(f"tuner 'bayesian' needs {' and '.join(missing)}: pip install scipy scikit-learn")


def _recipe_for(recipe_or_model: Any, preset_name: str, overrides: Mapping[str, Any]):
    from recipes.recipe import Recipe, family_defaults, preset

    if isinstance(recipe_or_model, Recipe):
        recipe = recipe_or_model
    elif isinstance(recipe_or_model, str):
        zoo.get_entry(recipe_or_model)  # unknown model: the registry's message, with the names
        data = overrides.get("data")  # the best preset's flips and TTA depend on the data's domain
        recipe = preset(recipe_or_model, preset_name, **({"data": data} if data is not None else {}))
    else:
        raise ValueError(f"search needs a registered model name or a recipes.recipe.Recipe, "
                         f"got {recipe_or_model!r}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "epochs" in changes:
        recipe = recipe.with_epochs(changes.pop("epochs"))
    if changes:
        recipe = recipe.replace(**changes)
    if recipe.patience is None:  # early stopping inside every trial
        recipe = recipe.replace(patience=family_defaults(recipe.model).patience)
    return recipe


def _load_splits(data: Any, recipe):
    from recipes.data import DataSplits, load_data

    if isinstance(data, DataSplits):
        return data
    return load_data(recipe.data, data_dir=recipe.data_dir, validation_fraction=recipe.validation_fraction,
                     seed=recipe.seed, limit=recipe.limit, test_limit=recipe.test_limit)


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "search"


def _check_config(path: str, config: dict[str, Any]) -> None:
    """A resumed search must search the same thing: compare with the saved search_config.json."""
    if not os.path.exists(path):
        return
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except (OSError, ValueError):
        return
    differ = [k for k in config if k in saved and saved[k] != json.loads(json.dumps(config[k]))]
    if differ:
        detail = "; ".join(f"{k}: was {saved[k]!r}, now {config[k]!r}" for k in differ)
        raise ValueError(f"{os.path.dirname(path)} holds a different search ({detail}); resume it with the same "
                         f"settings, or pass --overwrite / another --project-name")


def _merged_splits(splits):
    """Train + validation as the training split, and no validation split (the final training's data)."""
    return dataclasses.replace(splits, x_train=np.concatenate([splits.x_train, splits.x_val]),
                               y_train=np.concatenate([splits.y_train, splits.y_val]),
                               x_val=splits.x_val[:0], y_val=splits.y_val[:0])


def _retrain(hypermodel: ZooHyperModel, values: Mapping[str, Any], epochs: int, verbose: int,
             progress: Callable[[str], None] | None = None):
    """The best configuration trained on train+validation for ``epochs`` (the one training path), tested once.

    ``test_metrics.json`` uses the metric names of a run folder's ``metrics.json``.
    """
    from recipes import pipeline

    splits = hypermodel.splits
    merged = _merged_splits(splits)
    recipe = hypermodel.trial_recipe(values).with_epochs(epochs)
    keras.backend.clear_session()
    prepared = pipeline.prepare(recipe, merged)
    t0 = time.perf_counter()
    try:
        callbacks = [] if progress is None else [_EpochLines("final training", epochs, progress)]
        history = pipeline.fit(prepared, validation_data=None, verbose=verbose, callbacks=callbacks)
    except pipeline.TrainingDiverged as error:
        raise SearchError(f"retraining the best trial on train+validation failed: {error}") from None
    seconds = time.perf_counter() - t0
    evaluated = pipeline.evaluate_splits(prepared, dataclasses.replace(merged, x_test=splits.x_test,
                                                                       y_test=splits.y_test))
    metrics = {k: v for k, v in evaluated.items() if not k.startswith("val_")}
    metrics.update({
        "test_error": 1.0 - metrics["test_accuracy"], "epochs_run": len(history.history["loss"]),
        "epochs": epochs, "trained_on": "train+validation", "train_examples": int(len(merged.x_train)),
        "test_examples": int(len(splits.x_test)), "wall_time_s": round(seconds, 2),
    })
    return prepared.model, metrics


class _EpochLines(keras.callbacks.Callback):
    """``tuning.report.epoch_line`` after every epoch of a training outside a trial (the final one)."""

    def __init__(self, label: str, epochs: int, say: Callable[[str], None]):
        super().__init__()
        self.label, self.epochs, self.say, self.started = label, epochs, say, time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.say(epoch_line(self.label, epoch + 1, self.epochs, logs or {}, time.perf_counter() - self.started))


@dataclasses.dataclass
class _Plan:
    """One search, resolved and checked: who this process is, what it searches, where it writes."""

    tuner: str
    role: str
    address: tuple[str, int] | None
    worker: str | None
    objective: kt.Objective
    recipe: Any
    splits: Any
    hypermodel: ZooHyperModel
    project_dir: str
    directory: str
    project_name: str
    config: dict[str, Any]
    max_trials: int
    say: Callable[[str], None]
    epoch_progress: bool = False


def _check_counts(**counts: Any) -> dict[str, Any]:
    lows = {"hyperband_factor": 2}
    out = {name: _check_int(name, value, lows.get(name, 1), optional=name in ("epochs", "final_epochs"))
           for name, value in counts.items() if name not in ("trial_timeout", "idle_timeout")}
    out.update({name: _check_seconds(name, counts[name]) for name in ("trial_timeout", "idle_timeout")})
    return out


def _role(chief: str | None, worker: str | None, trial_timeout: float | None) -> tuple[str, tuple | None]:
    """``("local" | "chief" | "worker", address)`` from the --chief / --worker options."""
    if worker is not None:
        if chief is None:
            raise ValueError("a worker needs the chief's address: --worker ID --chief HOST:PORT")
        if not isinstance(worker, str) or not worker.strip() or "chief" in worker:
            raise ValueError(f"--worker takes an id such as worker0 (not containing 'chief'), got {worker!r}")
        if trial_timeout is not None:
            raise ValueError("--trial-timeout is the chief's option (it fails the trials of silent workers)")
        return "worker", parse_address(chief)
    if chief is not None:
        return "chief", parse_address(chief)
    return "local", None


def _project(hypermodel: ZooHyperModel, splits, data: Any, tuner: str, objective: kt.Objective,
             project_name: str | None, directory: str, executions_per_trial: int, epochs: int,
             hyperband_factor: int, fixed_kwargs: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The project folder's name and path, and the search_config.json a resume is checked against."""
    data_label = splits.name if isinstance(data, str) or data is None else getattr(splits, "name", "data")
    data_label = os.path.basename(os.path.normpath(str(data_label)))
    project_name = project_name or f"{hypermodel.model_name}_{_safe_name(data_label)}_{tuner}"
    if not isinstance(project_name, str) or os.sep in project_name or project_name in ("", ".", ".."):
        raise ValueError(f"project_name must be a plain folder name, got {project_name!r}")
    config = {
        "model": hypermodel.model_name, "data": splits.name, "train_examples": int(len(splits.x_train)),
        "tuner": tuner, "objective": [objective.name, objective.direction],
        "space": hypermodel.space.to_dict(), "builder_kwargs": {k: repr(v) for k, v in fixed_kwargs.items()},
        "executions_per_trial": executions_per_trial,
    }
    if tuner == "hyperband":
        config.update(epochs=epochs, hyperband_factor=hyperband_factor)
    return project_name, os.path.join(directory, project_name), config


def _make_tuner(plan: _Plan, *, executions_per_trial: int, overwrite: bool, hyperband_factor: int,
                max_consecutive_failed_trials: int, isolate_trials: bool, pruner=None):
    """The KerasTuner tuner of ``plan`` (inside the chief/worker environment when distributed)."""
    common = dict(hypermodel=plan.hypermodel, objective=plan.objective, executions_per_trial=executions_per_trial,
                  directory=plan.directory, project_name=plan.project_name, overwrite=overwrite,
                  seed=plan.recipe.seed, max_consecutive_failed_trials=max_consecutive_failed_trials)
    cls = tuner_class(plan.tuner)
    if plan.tuner == "hyperband":
        tuner_obj = cls(max_epochs=plan.recipe.epochs, factor=hyperband_factor, hyperband_iterations=None, **common)
    else:
        tuner_obj = cls(max_trials=plan.max_trials, **common)
    if plan.role != "worker":
        tuner_obj.oracle.max_trials = plan.max_trials  # Hyperband has no max_trials argument of its own
        tuner_obj.oracle.verbose = 0                   # our own one line per trial instead of KerasTuner's
        install_pruning(tuner_obj.oracle, pruner)      # per-epoch values recorded; pruned if a pruner is set
    make_writes_atomic(tuner_obj)  # a new search too (a resumed one already is, from reload())
    tuner_obj.configure(isolate_trials=isolate_trials, progress=plan.say,
                        progress_names=plan.hypermodel.space.tuned, max_trials=plan.max_trials,
                        epoch_progress=plan.epoch_progress)
    if plan.role != "worker":
        os.makedirs(plan.project_dir, exist_ok=True)  # KerasTuner's overwrite removed it
        write_json(plan.config, os.path.join(plan.project_dir, CONFIG_FILE))
    return tuner_obj


def _serve_chief(plan: _Plan, tuner_obj, trial_timeout: float | None, idle_timeout: float | None) -> dict[str, str]:
    """The chief: serve the oracle to the workers until every trial has ended; trial id -> worker id."""
    host, port = plan.address
    plan.say(f"chief: serving the oracle on {host}:{port} for {plan.max_trials} trials ({_finished(tuner_obj)} "
             f"already finished); start workers with --worker ID --chief {host}:{port}")
    tuner_obj.save()
    best_so_far: list[float] = []
    pick = max if plan.objective.direction == "max" else min

    def report(trial, worker_id):
        if trial.status == "COMPLETED" and trial.score is not None:
            best_so_far.append(float(trial.score))
        plan.say(progress_line(trial, plan.objective.name, best_score=pick(best_so_far) if best_so_far else None,
                               names=plan.hypermodel.space.tuned, max_trials=plan.max_trials, worker=worker_id))

    return serve(tuner_obj.oracle, host, port, trial_timeout=trial_timeout, idle_timeout=idle_timeout,
                 on_trial_end=report)


def _run_trials(plan: _Plan, tuner_obj, fit_kwargs: dict[str, Any], trial_timeout: float | None,
                idle_timeout: float | None, verbose: int) -> dict[str, str]:
    """Run this process's part: the chief serves, a worker or a local search runs trials."""
    if plan.role == "chief":
        return _serve_chief(plan, tuner_obj, trial_timeout, idle_timeout)
    if plan.role == "worker":
        plan.say(f"worker {plan.worker}: asking the chief at {plan.address[0]}:{plan.address[1]} for trials")
        if idle_timeout is not None:
            from keras_tuner.src.distribute import oracle_client

            oracle_client.TIMEOUT = idle_timeout
    elif verbose:
        done = _finished(tuner_obj)
        plan.say(f"search: {plan.tuner} over {plan.hypermodel.space.describe() or 'nothing (every value fixed)'}; "
                 f"{plan.hypermodel.model_name} on {plan.splits.describe()}; up to {plan.max_trials} trials"
                 + (f", {done} already finished (resuming)" if done else "") + f"; outputs in {plan.project_dir}")
    tuner_obj.search(**fit_kwargs)
    return {}


def _search_errors(plan: _Plan):
    """KerasTuner's and gRPC's errors as SearchError with one readable line."""
    @contextlib.contextmanager
    def translated():
        try:
            yield
        except SearchError:
            raise
        except RuntimeError as error:
            if "consecutive failures" in str(error):
                lines = [line for line in str(error).splitlines() if line.strip()]
                raise SearchError(f"{lines[0]} (max_consecutive_failed_trials); last failure: {lines[-1]}") from None
            raise
        except Exception as error:  # noqa: BLE001
            if plan.role == "worker" and type(error).__module__.startswith("grpc"):
                raise SearchError(f"worker {plan.worker} lost the chief at {plan.address[0]}:{plan.address[1]}: "
                                  f"{getattr(error, 'code', lambda: '')()} {getattr(error, 'details', lambda: '')()}"
                                  ) from None
            raise
    return translated()


def _worker_result(plan: _Plan, tuner_obj, seconds: float) -> SearchResult:
    # The trials as the chief scored them when each ended: asking again now could wait on a chief that
    # has already shut down (it stops once every worker has been told the search is over).
    trials_run = list(getattr(tuner_obj, "trials_run", []))
    ended = getattr(tuner_obj, "trials_ended", {})
    ran = [ended[trial_id] for trial_id in trials_run if trial_id in ended]
    records = trial_records(ran, plan.objective.name, {t: plan.worker for t in trials_run})
    plan.say(f"worker {plan.worker}: ran {len(trials_run)} trial(s): {', '.join(trials_run) or 'none'}")
    return SearchResult(model=plan.hypermodel.model_name, data=plan.splits.name, tuner=plan.tuner,
                        objective=plan.objective.name, direction=plan.objective.direction,
                        directory=plan.project_dir, role=plan.role, space=plan.hypermodel.space, trials=records,
                        trials_run=trials_run, seconds=seconds, tuner_object=tuner_obj)


def _report(plan: _Plan, tuner_obj, workers: dict[str, str], retrain: bool, final_epochs: int,
            fit_verbose: int) -> SearchResult:
    """trials.csv, best_hyperparameters.json, search.png and (``retrain``) best_model.keras + test_metrics.json."""
    oracle, objective, name = tuner_obj.oracle, plan.objective, plan.hypermodel.model_name
    trials_run = list(workers) if plan.role == "chief" else list(getattr(tuner_obj, "trials_run", []))
    records = trial_records(oracle.trials.values(), objective.name, workers or None)
    files = {"trials.csv": write_trials_csv(records, os.path.join(plan.project_dir, "trials.csv"), objective.name)}
    result = SearchResult(model=name, data=plan.splits.name, tuner=plan.tuner, objective=objective.name,
                          direction=objective.direction, directory=plan.project_dir, role=plan.role,
                          space=plan.hypermodel.space, trials=records, trials_run=trials_run, files=files,
                          tuner_object=tuner_obj)
    completed = [r for r in records if r.status in SCORED and r.score is not None]
    if not completed:
        statuses = ", ".join(f"{r.trial_id} {r.status}" for r in records) or "none ran"
        first = next((r.message for r in records if r.message), "")
        raise SearchError(f"no trial completed in {plan.project_dir} ({statuses}); no best model to report"
                          + (f"; first failure: {first}" if first else ""))
    best_trial = oracle.get_best_trials(1)[0]
    best_values = strip_tuner_keys(best_trial.hyperparameters.values)
    result.best_hyperparameters = best_values
    result.best_trial_id, result.best_score = str(best_trial.trial_id), float(best_trial.score)
    files["best_hyperparameters.json"] = write_json({
        "model": name, "data": plan.splits.name, "tuner": plan.tuner, "trial_id": result.best_trial_id,
        "objective": objective.name, "direction": objective.direction, "score": result.best_score,
        "hyperparameters": best_values, "regularization": plan.hypermodel.trial_recipe(best_values).regularization.to_dict(),
        "completed_trials": len(completed), "trials": len(records),
    }, os.path.join(plan.project_dir, "best_hyperparameters.json"))
    _write_importance(plan, oracle, result, files)
    files["search.png"] = plot_search(records, os.path.join(plan.project_dir, "search.png"), objective.name,
                                      direction=objective.direction,
                                      title=f"{name} on {plan.splits.name}: {plan.tuner}, {len(completed)} of "
                                            f"{len(records)} trials completed")
    if retrain:
        plan.say(f"retraining trial {result.best_trial_id} on train+validation for {final_epochs} epochs ...")
        model, metrics = _retrain(plan.hypermodel, best_values, final_epochs, fit_verbose,
                                  plan.say if plan.epoch_progress else None)
        metrics.update({"model": name, "data": plan.splits.name, "best_trial": result.best_trial_id,
                        "validation_score": result.best_score, "objective": objective.name,
                        "hyperparameters": best_values})
        path = os.path.join(plan.project_dir, "best_model.keras")
        model.save(path)
        files["best_model.keras"] = path
        files["test_metrics.json"] = write_json(metrics, os.path.join(plan.project_dir, "test_metrics.json"))
        result.best_model, result.test_metrics = model, metrics
    return result


def _write_importance(plan: _Plan, oracle, result: SearchResult, files: dict[str, str]) -> None:
    """importance.json + importance.png (fANOVA, ``tuning.importance``), or the reason there are none."""
    from tuning.importance import importance_note, parameter_importance, plot_importance

    try:
        importance = parameter_importance(list(oracle.trials.values()), oracle.hyperparameters,
                                          list(plan.hypermodel.space.tuned),
                                          plan.objective.direction, seed=plan.recipe.seed)
    except ValueError as error:
        result.importance_note = f"no parameter importance ({error})"
        return
    result.importance = importance
    result.importance_note = f"importance (fANOVA): {importance_note(importance)}"
    files["importance.json"] = write_json({"method": "fANOVA (optuna.importance.FanovaImportanceEvaluator)",
                                           "objective": plan.objective.name, "importance": importance},
                                          os.path.join(plan.project_dir, "importance.json"))
    files["importance.png"] = plot_importance(importance, os.path.join(plan.project_dir, "importance.png"),
                                              f"{plan.hypermodel.model_name} on {plan.splits.name}: {plan.tuner}")


def _plan(recipe_or_model_name: Any, data: Any, *, tuner: str, objective: Any, directory: Any, role: str,
          address: tuple | None, worker: str | None, project_name: str | None, overwrite: bool, space, fixed,
          preset: str, quick: bool, recipe_overrides: Mapping[str, Any], counts: Mapping[str, Any],
          verbose: int, progress, builder_kwargs: Mapping[str, Any], folds: int = 1) -> _Plan:
    """Check and resolve everything a search needs before anything is written (a dry build included)."""
    objective_obj = make_objective(objective)
    from recipes.runfolder import check_output_folder

    directory = os.fspath(check_output_folder(directory, "--directory"))  # before anything is loaded or written
    recipe = _recipe_for(recipe_or_model_name, preset, recipe_overrides)
    recipe = recipe.quick() if quick else recipe
    splits = _load_splits(data, recipe)
    fixed_kwargs = {k: v for k, v in dict(recipe.model_kwargs).items()
                    if k not in (space or {}) and k not in (fixed or {})}
    fixed_kwargs.update(builder_kwargs)
    hypermodel = ZooHyperModel(recipe.model, splits=splits, recipe=recipe, space=space, fixed=fixed,
                               grid=tuner == "grid", epochs=recipe.epochs, folds=folds,
                               objective=(objective_obj.name, objective_obj.direction), **fixed_kwargs)
    _check_dependencies(tuner)
    # A dry build with the default values: a builder that refuses its arguments fails here, not in a trial.
    keras.backend.clear_session()
    hypermodel.build(kt.HyperParameters())
    hypermodel._prepared = None
    keras.backend.clear_session()
    project_name, project_dir, config = _project(
        hypermodel, splits, data, tuner, objective_obj, project_name, directory, counts["executions_per_trial"],
        recipe.epochs, counts["hyperband_factor"], fixed_kwargs)
    if folds > 1:
        config["folds"] = folds  # a cross-validated score is another objective
    if not overwrite:
        _check_config(os.path.join(project_dir, CONFIG_FILE), config)
    say = progress or (lambda line: print(line, flush=True))
    say = say if verbose else (lambda line: None)
    return _Plan(tuner=tuner, role=role, address=address, worker=worker, objective=objective_obj, recipe=recipe,
                 splits=splits, hypermodel=hypermodel, project_dir=project_dir, directory=directory,
                 project_name=project_name, config=config, max_trials=counts["max_trials"], say=say,
                 epoch_progress=verbose >= 2)


# -- the search ------------------------------------------------------------------------------------------

def search(recipe_or_model_name: Any, data: Any = None, *, tuner: str = "hyperband", max_trials: int = 10,
           executions_per_trial: int = 1, epochs: int | None = None, objective: str | kt.Objective = "val_accuracy",
           directory: str | os.PathLike = DEFAULT_DIRECTORY, project_name: str | None = None,
           overwrite: bool = False, space: Mapping[str, Any] | None = None, fixed: Mapping[str, Any] | None = None,
           preset: str = "best", quick: bool = False, batch_size: int | None = None,
           patience: int | None = None, seed: int | None = None, limit: int | None = None,
           test_limit: int | None = None, data_dir: str | None = None, validation_fraction: float | None = None,
           final_epochs: int | None = None, retrain: bool = True, hyperband_factor: int = 3,
           isolate_trials: bool = False, max_consecutive_failed_trials: int = 3,
           chief: str | None = None, worker: str | None = None, trial_timeout: float | None = None,
           idle_timeout: float | None = None, folds: int = 1, prune: str = "none", prune_warmup: int = 2,
           verbose: int = 1, fit_verbose: int = 0,
           callbacks: Sequence[keras.callbacks.Callback] | None = None,
           progress: Callable[[str], None] | None = None, **builder_kwargs: Any) -> SearchResult:
    """Search λ, keep-prob, the learning rate (and whatever else the space opens) for a zoo model.

    Args:
        recipe_or_model_name: a registered model name (its ``preset`` recipe gives the fixed settings:
            optimizer, schedule, batch size, epochs …) or a ``recipes.recipe.Recipe``.
        data: a data set name or path (default: the recipe's), or a ``recipes.data.DataSplits``.
        tuner: ``"hyperband"``, ``"bayesian"``, ``"random"`` or ``"grid"`` (KerasTuner's).
        max_trials: the most trials (Hyperband too: its brackets repeat until this many have run).
        executions_per_trial: trainings per trial (seeds differ), averaged; trials.csv shows each
            execution's score and the standard error.
        folds: K > 1 scores a trial by stratified K-fold cross-validation on train + validation (a fresh
            model per fold): the mean is the objective, trials.csv shows each fold's score and the standard
            error. Not with Hyperband (it continues trials from one checkpoint) nor ``prune``.
        epochs: epochs per trial (Hyperband: its ``max_epochs``); default the recipe's.
        objective: one of ``OBJECTIVES`` (``"val_loss:min"`` style also), or a ``kt.Objective``.
        directory, project_name: outputs go to ``directory/project_name`` (default name
            ``<model>_<data>_<tuner>``).
        overwrite: start afresh; otherwise the same call resumes (finished trials are not run again).
        space, fixed: change the search space (``tuning.space``).
        preset: the recipe preset when a model name is given (``recipes.recipe.PRESETS``; default
            ``best``: the family's best measured recipe — batch norm, the data's augmentation and the
            training techniques at their recipe values — with λ, keep-prob and the learning rate searched
            around it; ``baseline`` starts from no regularization). ``quick``: ``Recipe.quick()`` (a
            small subset, 2 epochs, batch 32).
        batch_size, patience, seed, limit, test_limit, data_dir, validation_fraction: recipe overrides.
            Early stopping (val_loss, best weights restored) runs in every trial with the recipe's patience
            (the family's when the preset has none).
        final_epochs: epochs of the final training on train+validation (default ``epochs``).
        retrain: retrain and test the best configuration (``best_model.keras``, ``test_metrics.json``).
        hyperband_factor: Hyperband's reduction factor.
        isolate_trials: run every trial in a fresh child process (memory back after every trial).
        max_consecutive_failed_trials: stop after this many failed trials in a row (KerasTuner's rule).
        chief: ``"HOST:PORT"``; without ``worker`` this process is the chief (the oracle), with it a
            worker that asks that chief for trials. The chief binds ``HOST`` (127.0.0.1 unless told).
        worker: this worker's id (any name but one containing "chief").
        trial_timeout: chief only: fail a trial whose worker gave no result for this many seconds.
        idle_timeout: chief: give up when no trial runs and no worker asked for this long; worker: give
            up when the chief does not answer for this long (KerasTuner's default: an hour).
        prune: ``"none"``, ``"median"`` or ``"halving"``: stop a trial whose validation score after an
            epoch is worse than the median of the completed trials at that epoch, or outside the top
            third at a successive-halving rung (``tuning.pruning``; Optuna's two rules). The decision is
            the oracle's (the chief's in a distributed search). Not with Hyperband (its brackets already
            stop trials) nor ``isolate_trials``. ``prune_warmup``: epochs before any pruning (the first
            rung for halving).
        verbose: 2 also prints a line per epoch (trials and the final training), 1 a line per trial and
            the summary, 0 nothing. ``fit_verbose``: Keras's.
        callbacks: extra Keras callbacks for every trial (deep-copied per trial).
        progress: where progress lines go (default ``print``).
        **builder_kwargs: fixed builder arguments (``activation="tanh"`` …).

    Raises:
        ValueError: bad input (model, tuner, space, objective, data …), before anything is written.
        SearchError: no trial completed, a missing dependency, a lost chief, a chief that waited too long.
    """
    t_start = time.perf_counter()
    if tuner not in TUNERS:
        raise ValueError(f"unknown tuner {tuner!r}; allowed: {', '.join(TUNERS)}")
    counts = _check_counts(max_trials=max_trials, executions_per_trial=executions_per_trial, epochs=epochs,
                           final_epochs=final_epochs, hyperband_factor=hyperband_factor,
                           max_consecutive_failed_trials=max_consecutive_failed_trials,
                           trial_timeout=trial_timeout, idle_timeout=idle_timeout)
    role, address = _role(chief, worker, counts["trial_timeout"])
    pruner = make_pruner(prune, warmup_epochs=prune_warmup)
    if isinstance(folds, bool) or not isinstance(folds, int) or not 1 <= folds <= 20:
        raise ValueError(f"--folds must be an integer in 1..20, got {folds!r}")
    if folds > 1 and (tuner == "hyperband" or pruner is not None):
        raise ValueError(f"--folds {folds} does not combine with "
                         + ("--tuner hyperband (it continues a trial from one model's checkpoint)"
                            if tuner == "hyperband" else "--prune (a trial's epochs restart in every fold)"))
    if pruner is not None and tuner == "hyperband":
        raise ValueError("--prune does not combine with --tuner hyperband (its brackets already stop trials "
                         "early); use it with random, bayesian, grid or tpe")
    if pruner is not None and isolate_trials:
        raise ValueError("--prune does not combine with --isolate-trials (a trial in a child process reports "
                         "no epoch to the oracle)")
    overwrite = bool(overwrite) and role != "worker"  # a worker never deletes the chief's files
    plan = _plan(recipe_or_model_name, data, tuner=tuner, objective=objective, directory=directory, role=role,
                 address=address, worker=worker, project_name=project_name, overwrite=overwrite, space=space,
                 fixed=fixed, preset=preset, quick=quick, counts=counts, verbose=verbose, progress=progress,
                 builder_kwargs=builder_kwargs, folds=folds, recipe_overrides={
                     "data": data if isinstance(data, str) else None, "epochs": counts["epochs"],
                     "batch_size": batch_size, "patience": patience, "seed": seed, "limit": limit,
                     "test_limit": test_limit, "data_dir": os.fspath(data_dir) if data_dir is not None else None,
                     "validation_fraction": validation_fraction})
    keras.utils.set_random_seed(plan.recipe.seed)
    env = kerastuner_env("chief" if role == "chief" else worker, *address) if address else contextlib.nullcontext()
    with env, _search_errors(plan):
        tuner_obj = _make_tuner(plan, executions_per_trial=counts["executions_per_trial"], overwrite=overwrite,
                                hyperband_factor=counts["hyperband_factor"], isolate_trials=isolate_trials,
                                max_consecutive_failed_trials=counts["max_consecutive_failed_trials"],
                                pruner=pruner)
        fit_kwargs = dict(epochs=plan.recipe.epochs, callbacks=list(callbacks or []), verbose=fit_verbose)
        workers = _run_trials(plan, tuner_obj, fit_kwargs, counts["trial_timeout"], counts["idle_timeout"], verbose)
    if role == "worker":
        return _worker_result(plan, tuner_obj, time.perf_counter() - t_start)
    result = _report(plan, tuner_obj, workers, retrain, counts["final_epochs"] or plan.recipe.epochs, fit_verbose)
    result.seconds = time.perf_counter() - t_start
    result.epochs_per_trial, result.prune = plan.recipe.epochs, prune
    return result


def _finished(tuner_obj) -> int:
    try:
        return sum(1 for t in tuner_obj.oracle.trials.values() if t.status in ("COMPLETED", "FAILED", "INVALID"))
    except AttributeError:
        return 0
