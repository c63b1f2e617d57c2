"""``tuning.search``: run a KerasTuner search over a zoo model, retrain the best on train+validation,
evaluate it once on the test split, and write the reports.

Outputs in ``<directory>/<project_name>/``: KerasTuner's own files (``oracle.json``, ``tuner0.json``,
``trial_*/trial.json`` and checkpoints), plus ``search_config.json`` (what a resume is checked against),
``trials.csv``, ``best_hyperparameters.json``, ``best_model.keras``, ``test_metrics.json`` and
``search.png``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import keras
import keras_tuner as kt
import numpy as np

import zoo
from tuning.distributed import LOCALHOST, SearchError, kerastuner_env, parse_address, serve
from tuning.hypermodel import ZooHyperModel, strip_tuner_keys
from tuning.report import (TrialRecord, format_table, plot_search, progress_line, sort_records, trial_records,
                           write_json, write_trials_csv)
from tuning.tuners import TUNERS, tuner_class

__all__ = ["search", "SearchResult", "SearchError", "make_objective", "OBJECTIVES", "OUTPUT_FILES",
           "DEFAULT_DIRECTORY"]

DEFAULT_DIRECTORY = "tuning_runs"
# The metrics every compiled zoo model reports, with the direction to optimize them in.
OBJECTIVES = {"val_accuracy": "max", "val_loss": "min", "accuracy": "max", "loss": "min"}
OUTPUT_FILES = ("trials.csv", "best_hyperparameters.json", "best_model.keras", "test_metrics.json", "search.png")
CONFIG_FILE = "search_config.json"


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
        test_metrics: its one evaluation on the test split (``loss``, ``accuracy``, ``error`` …).
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

    @property
    def columns(self) -> tuple[str, ...]:
        """The hyperparameters the table shows: the searched ones (``space.tuned``)."""
        return tuple(self.space.tuned)

    @property
    def completed(self) -> list[TrialRecord]:
        return [r for r in self.trials if r.status == "COMPLETED"]

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
                 f"{len(self.trials_run)} run now, {self.seconds:.0f} s",
                 f"best {min(top, len(self.trials))} by {self.objective} ({self.direction}):", self.table(top)]
        if self.test_metrics:
            m = self.test_metrics
            lines.append(f"best trial {self.best_trial_id} retrained on train+validation for {m.get('epochs')} "
                         f"epochs: test accuracy {m.get('accuracy', float('nan')):.4f}, test loss "
                         f"{m.get('loss', float('nan')):.4f} ({m.get('test_examples')} test examples)")
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
        recipe = preset(recipe_or_model, preset_name)
    else:
        raise ValueError(f"search needs a registered model name or a recipes.recipe.Recipe, "
                         f"got {recipe_or_model!r}")
    changes = {k: v for k, v in overrides.items() if v is not None}
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
    """Train + validation as the training split (validation kept only for the record)."""
    return dataclasses.replace(splits, x_train=np.concatenate([splits.x_train, splits.x_val]),
                               y_train=np.concatenate([splits.y_train, splits.y_val]))


def _retrain(hypermodel: ZooHyperModel, values: Mapping[str, Any], epochs: int, seed: int, verbose: int):
    """The best configuration trained on train+validation for ``epochs``, evaluated once on test."""
    from recipes.data import make_dataset

    splits = hypermodel.splits
    final = copy.copy(hypermodel)
    final.splits = _merged_splits(splits)
    final.n_train = len(final.splits.x_train)
    final.epochs = epochs
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    hp = kt.HyperParameters()
    hp.values = dict(values)
    model = final.build(hp)
    t0 = time.perf_counter()
    try:
        history = final.fit(hp, model, epochs=epochs, validation_data=None, verbose=verbose)
    except kt.errors.FailedTrialError as error:
        raise SearchError(f"retraining the best trial on train+validation failed: {error}") from None
    seconds = time.perf_counter() - t0
    batch = int(values.get("batch_size", 64))
    metrics = model.evaluate(make_dataset(splits.x_test, splits.y_test, batch), verbose=0, return_dict=True)
    metrics = {k: float(v) for k, v in metrics.items()}
    if "accuracy" in metrics:
        metrics["error"] = 1.0 - metrics["accuracy"]
    metrics.update({
        "epochs": int(history.history["epochs"][-1]) if history.history.get("epochs") else epochs,
        "train_loss_last_epoch": float(history.history["loss"][-1]),
        "trained_on": "train+validation", "train_examples": int(len(final.splits.x_train)),
        "test_examples": int(len(splits.x_test)), "train_seconds": round(seconds, 2),
    })
    return model, metrics


# -- the search ------------------------------------------------------------------------------------------

def search(recipe_or_model_name: Any, data: Any = None, *, tuner: str = "hyperband", max_trials: int = 10,
           executions_per_trial: int = 1, epochs: int | None = None, objective: str | kt.Objective = "val_accuracy",
           directory: str | os.PathLike = DEFAULT_DIRECTORY, project_name: str | None = None,
           overwrite: bool = False, space: Mapping[str, Any] | None = None, fixed: Mapping[str, Any] | None = None,
           preset: str = "baseline", quick: bool = False, batch_size: int | None = None,
           patience: int | None = None, seed: int | None = None, limit: int | None = None,
           test_limit: int | None = None, data_dir: str | None = None, validation_fraction: float | None = None,
           final_epochs: int | None = None, retrain: bool = True, hyperband_factor: int = 3,
           isolate_trials: bool = False, max_consecutive_failed_trials: int = 3,
           chief: str | None = None, worker: str | None = None, trial_timeout: float | None = None,
           idle_timeout: float | None = None, verbose: int = 1, fit_verbose: int = 0,
           callbacks: Sequence[keras.callbacks.Callback] | None = None,
           progress: Callable[[str], None] | None = None, **builder_kwargs: Any) -> SearchResult:
    """Search λ, keep-prob, the learning rate (and whatever else the space opens) for a zoo model.

    Args:
        recipe_or_model_name: a registered model name (its ``preset`` recipe gives the fixed settings:
            optimizer, schedule, batch size, epochs …) or a ``recipes.recipe.Recipe``.
        data: a data set name or path (default: the recipe's), or a ``recipes.data.DataSplits``.
        tuner: ``"hyperband"``, ``"bayesian"``, ``"random"`` or ``"grid"`` (KerasTuner's).
        max_trials: the most trials (Hyperband too: its brackets repeat until this many have run).
        executions_per_trial: trainings per trial, averaged.
        epochs: epochs per trial (Hyperband: its ``max_epochs``); default the recipe's.
        objective: one of ``OBJECTIVES`` (``"val_loss:min"`` style also), or a ``kt.Objective``.
        directory, project_name: outputs go to ``directory/project_name`` (default name
            ``<model>_<data>_<tuner>``).
        overwrite: start afresh; otherwise the same call resumes (finished trials are not run again).
        space, fixed: change the search space (``tuning.space``).
        preset: the recipe preset when a model name is given (``recipes.recipe.PRESETS``; default
            ``baseline``: no regularization besides what is searched). ``quick``: ``Recipe.quick()`` (a
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
        verbose: 1 prints a line per trial and the summary; 0 is silent. ``fit_verbose``: Keras's.
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
    max_trials = _check_int("max_trials", max_trials)
    executions_per_trial = _check_int("executions_per_trial", executions_per_trial)
    epochs = _check_int("epochs", epochs, optional=True)
    final_epochs = _check_int("final_epochs", final_epochs, optional=True)
    hyperband_factor = _check_int("hyperband_factor", hyperband_factor, 2)
    max_consecutive_failed_trials = _check_int("max_consecutive_failed_trials", max_consecutive_failed_trials)
    trial_timeout = _check_seconds("trial_timeout", trial_timeout)
    idle_timeout = _check_seconds("idle_timeout", idle_timeout)
    objective_obj = make_objective(objective)
    from recipes.train import check_output_folder

    directory = os.fspath(check_output_folder(directory, "--directory"))  # before anything is loaded or written
    role, address = "local", None
    if worker is not None:
        if chief is None:
            raise ValueError("a worker needs the chief's address: --worker ID --chief HOST:PORT")
        if not isinstance(worker, str) or not worker.strip() or "chief" in worker:
            raise ValueError(f"--worker takes an id such as worker0 (not containing 'chief'), got {worker!r}")
        role, address = "worker", parse_address(chief)
    elif chief is not None:
        role, address = "chief", parse_address(chief)
    if role == "worker" and trial_timeout is not None:
        raise ValueError("--trial-timeout is the chief's option (it fails the trials of silent workers)")

    recipe = _recipe_for(recipe_or_model_name, preset, {
        "data": data if isinstance(data, str) else None, "epochs": epochs, "batch_size": batch_size,
        "patience": patience, "seed": seed, "limit": limit, "test_limit": test_limit,
        "data_dir": os.fspath(data_dir) if data_dir is not None else None,
        "validation_fraction": validation_fraction,
    })
    if quick:
        recipe = recipe.quick()
    epochs = recipe.epochs
    final_epochs = final_epochs or epochs
    splits = _load_splits(data, recipe)
    model_name = recipe.model
    fixed_kwargs = {k: v for k, v in dict(recipe.model_kwargs).items()
                    if k not in (space or {}) and k not in (fixed or {})}
    fixed_kwargs.update(builder_kwargs)
    hypermodel = ZooHyperModel(model_name, splits=splits, recipe=recipe, space=space, fixed=fixed,
                               grid=tuner == "grid", epochs=epochs, seed=recipe.seed, **fixed_kwargs)
    _check_dependencies(tuner)

    # A dry build with the default values: a builder that refuses its arguments fails here, not in a trial.
    keras.backend.clear_session()
    hypermodel.build(kt.HyperParameters())
    keras.backend.clear_session()

    data_label = splits.name if isinstance(data, str) or data is None else getattr(splits, "name", "data")
    data_label = os.path.basename(os.path.normpath(str(data_label)))
    project_name = project_name or f"{model_name}_{_safe_name(data_label)}_{tuner}"
    if not isinstance(project_name, str) or os.sep in project_name or project_name in ("", ".", ".."):
        raise ValueError(f"project_name must be a plain folder name, got {project_name!r}")
    project_dir = os.path.join(directory, project_name)
    config = {
        "model": model_name, "data": splits.name, "train_examples": int(len(splits.x_train)),
        "tuner": tuner, "objective": [objective_obj.name, objective_obj.direction],
        "space": hypermodel.space.to_dict(), "builder_kwargs": {k: repr(v) for k, v in fixed_kwargs.items()},
        "executions_per_trial": executions_per_trial,
    }
    if tuner == "hyperband":
        config["epochs"] = epochs
        config["hyperband_factor"] = hyperband_factor
    overwrite = bool(overwrite) and role != "worker"  # a worker never deletes the chief's files
    if not overwrite:
        _check_config(os.path.join(project_dir, CONFIG_FILE), config)

    say = progress or (lambda line: print(line, flush=True))
    if not verbose:
        say = lambda line: None  # noqa: E731
    keras.utils.set_random_seed(recipe.seed)

    env = kerastuner_env("chief" if role == "chief" else worker, *address) if address else contextlib.nullcontext()
    with env:
        common = dict(hypermodel=hypermodel, objective=objective_obj, executions_per_trial=executions_per_trial,
                      directory=directory, project_name=project_name, overwrite=overwrite, seed=recipe.seed,
                      max_consecutive_failed_trials=max_consecutive_failed_trials)
        cls = tuner_class(tuner)
        if tuner == "hyperband":
            tuner_obj = cls(max_epochs=epochs, factor=hyperband_factor, hyperband_iterations=None, **common)
        else:
            tuner_obj = cls(max_trials=max_trials, **common)
        if role != "worker":
            tuner_obj.oracle.max_trials = max_trials  # Hyperband has no max_trials argument of its own
            tuner_obj.oracle.verbose = 0              # our own one line per trial instead of KerasTuner's
        tuner_obj.configure(isolate_trials=isolate_trials, progress=say,
                            progress_names=hypermodel.space.tuned, max_trials=max_trials)
        if role != "worker":
            os.makedirs(project_dir, exist_ok=True)  # KerasTuner's overwrite removed it
            write_json(config, os.path.join(project_dir, CONFIG_FILE))

        early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=recipe.patience,
                                              restore_best_weights=True)
        fit_kwargs = dict(epochs=epochs, callbacks=[early, *(callbacks or [])], verbose=fit_verbose)
        workers: dict[str, str] = {}
        done_before = _finished(tuner_obj) if role != "worker" else 0
        if role == "local" and verbose:
            say(f"search: {tuner} over {hypermodel.space.describe() or 'nothing (every value fixed)'}; "
                f"{model_name} on {splits.describe()}; up to {max_trials} trials"
                + (f", {done_before} already finished (resuming)" if done_before else "")
                + f"; outputs in {project_dir}")
        try:
            if role == "chief":
                say(f"chief: serving the oracle on {address[0]}:{address[1]} for {max_trials} trials "
                    f"({done_before} already finished); start workers with --worker ID --chief "
                    f"{address[0]}:{address[1]}")
                tuner_obj.save()
                best_so_far: list[float] = []

                def report(trial, worker_id):
                    if trial.status == "COMPLETED" and trial.score is not None:
                        best_so_far.append(float(trial.score))
                    pick = max if objective_obj.direction == "max" else min
                    say(progress_line(trial, objective_obj.name,
                                      best_score=pick(best_so_far) if best_so_far else None,
                                      names=hypermodel.space.tuned, max_trials=max_trials, worker=worker_id))

                workers = serve(tuner_obj.oracle, address[0], address[1], trial_timeout=trial_timeout,
                                idle_timeout=idle_timeout, on_trial_end=report)
            else:
                if role == "worker":
                    say(f"worker {worker}: asking the chief at {address[0]}:{address[1]} for trials")
                    if idle_timeout is not None:
                        from keras_tuner.src.distribute import oracle_client

                        oracle_client.TIMEOUT = idle_timeout
                tuner_obj.search(**fit_kwargs)
        except RuntimeError as error:
            if isinstance(error, SearchError):
                raise
            if "consecutive failures" in str(error):
                lines = [line for line in str(error).splitlines() if line.strip()]
                raise SearchError(f"{lines[0]} (max_consecutive_failed_trials); last failure: {lines[-1]}") from None
            raise
        except Exception as error:  # noqa: BLE001
            if role == "worker" and type(error).__module__.startswith("grpc"):
                raise SearchError(f"worker {worker} lost the chief at {address[0]}:{address[1]}: "
                                  f"{getattr(error, 'code', lambda: '')()} {getattr(error, 'details', lambda: '')()}"
                                  ) from None
            raise

    trials_run = list(getattr(tuner_obj, "trials_run", []))
    direction = objective_obj.direction
    if role == "worker":
        ran = []
        for trial_id in trials_run:
            with contextlib.suppress(Exception):
                with kerastuner_env(worker, *address):
                    ran.append(tuner_obj.oracle.get_trial(trial_id))
        records = trial_records(ran, objective_obj.name, {t: worker for t in trials_run})
        say(f"worker {worker}: ran {len(trials_run)} trial(s): {', '.join(trials_run) or 'none'}")
        return SearchResult(model=model_name, data=splits.name, tuner=tuner, objective=objective_obj.name,
                            direction=direction, directory=project_dir, role=role, space=hypermodel.space,
                            trials=records, trials_run=trials_run, seconds=time.perf_counter() - t_start,
                            tuner_object=tuner_obj)

    oracle = tuner_obj.oracle
    if role == "chief":
        trials_run = [t for t in workers]
    records = trial_records(oracle.trials.values(), objective_obj.name, workers or None)
    files = {"trials.csv": write_trials_csv(records, os.path.join(project_dir, "trials.csv"), objective_obj.name)}
    result = SearchResult(model=model_name, data=splits.name, tuner=tuner, objective=objective_obj.name,
                          direction=direction, directory=project_dir, role=role, space=hypermodel.space,
                          trials=records, trials_run=trials_run, files=files, tuner_object=tuner_obj)
    completed = [r for r in records if r.status == "COMPLETED" and r.score is not None]
    if not completed:
        statuses = ", ".join(f"{r.trial_id} {r.status}" for r in records) or "none ran"
        first = next((r.message for r in records if r.message), "")
        raise SearchError(f"no trial completed in {project_dir} ({statuses}); no best model to report"
                          + (f"; first failure: {first}" if first else ""))

    best_trial = oracle.get_best_trials(1)[0]
    best_values = strip_tuner_keys(best_trial.hyperparameters.values)
    result.best_hyperparameters = best_values
    result.best_trial_id = str(best_trial.trial_id)
    result.best_score = float(best_trial.score)
    reg = ZooHyperModel.regularization_of(best_values)
    files["best_hyperparameters.json"] = write_json({
        "model": model_name, "data": splits.name, "tuner": tuner, "trial_id": result.best_trial_id,
        "objective": objective_obj.name, "direction": direction, "score": result.best_score,
        "hyperparameters": best_values, "regularization": reg.to_dict(),
        "completed_trials": len(completed), "trials": len(records),
    }, os.path.join(project_dir, "best_hyperparameters.json"))
    files["search.png"] = plot_search(records, os.path.join(project_dir, "search.png"), objective_obj.name,
                                      direction=direction,
                                      title=f"{model_name} on {splits.name}: {tuner}, {len(completed)} of "
                                            f"{len(records)} trials completed")
    if retrain:
        say(f"retraining trial {result.best_trial_id} on train+validation for {final_epochs} epochs ...")
        model, metrics = _retrain(hypermodel, best_values, final_epochs, recipe.seed, fit_verbose)
        metrics.update({"model": model_name, "data": splits.name, "best_trial": result.best_trial_id,
                        "validation_score": result.best_score, "objective": objective_obj.name,
                        "hyperparameters": best_values})
        path = os.path.join(project_dir, "best_model.keras")
        model.save(path)
        files["best_model.keras"] = path
        files["test_metrics.json"] = write_json(metrics, os.path.join(project_dir, "test_metrics.json"))
        result.best_model = model
        result.test_metrics = metrics
    result.files = files
    result.seconds = time.perf_counter() - t_start
    return result


def _finished(tuner_obj) -> int:
    try:
        return sum(1 for t in tuner_obj.oracle.trials.values() if t.status in ("COMPLETED", "FAILED", "INVALID"))
    except AttributeError:
        return 0
