"""One training run from a :class:`~recipes.recipe.Recipe` to a run folder, resumable after a kill.

    from recipes.recipe import preset
    from recipes.train import run
    result = run(preset("lenet5", "full"), out="runs")
    result.folder, result.metrics["test_accuracy"], result.verdict.kind

The run folder ``<out>/<model>-<data>-<preset>-<YYYYmmdd-HHMMSS>/`` holds:

=================  ==================================================================================
``config.json``    the Recipe (``Recipe.from_json`` reruns it)
``history.csv``    one row per epoch (``epoch`` counts from 0): loss, accuracy, val_loss,
                   val_accuracy, learning_rate
``metrics.json``   train / val / test loss and accuracy, best epoch, epochs run, wall time,
                   parameters and MACs of the zoo model, λ l1/l2, keep-prob, batch norm,
                   augmentation, the optimizer settings and the verdict
``model.keras``    the final model (the best-val_loss weights when early stopping is on)
``best.keras``     ModelCheckpoint: the model at the epoch of lowest val_loss
``curves.png``     train vs. validation loss and accuracy per epoch
``verdict.txt``    the bias/variance verdict and what to try next
``logs/``          TensorBoard logs (with ``tensorboard=True``)
=================  ==================================================================================

Completeness and resuming. A run works in ``<out>/.inprogress/<config hash>/`` — the hash of the
Recipe's JSON (``Recipe.config_hash()``), so the same command always maps to the same work folder —
and only when everything is written is that folder renamed to its final name. A folder without a
leading dot is therefore always complete; a failed or killed run leaves only the hidden work folder.
``keras.callbacks.BackupAndRestore`` backs the training state (weights, optimizer, epoch) up into
``<work>/backup/`` at the very end of every epoch, after the epoch's other files (two copies, so that a
kill while it writes leaves the previous one): running the same command (the same Recipe) again resumes at the
first unfinished epoch, with ``history.csv``, early stopping (its best value, wait and best weights)
and the checkpoint's best value carried over. A ``LOCK`` file keeps two processes off one work folder.
A run whose loss turns NaN or infinite stops (``TerminateOnNaN``) and raises :class:`TrainingDiverged`;
its work folder keeps ``best.keras`` (the last good checkpoint) and ``history.csv`` but not the backup,
so the same command starts afresh (lower the learning rate or set a clipnorm first).

The test split is evaluated once, after training.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

import zoo
from recipes.optim import PLATEAU_PATIENCE, make_optimizer, schedule_callbacks
from recipes.recipe import Recipe
from recipes.verdict import Verdict, diagnose

__all__ = ["RunResult", "TrainingDiverged", "OutputFolderError", "check_output_folder", "compile_model", "run",
           "work_dir_for", "op_determinism", "INPROGRESS"]

INPROGRESS = ".inprogress"
BACKUP = "backup"
LOCK = "LOCK"
STATE = "state.json"
ES_WEIGHTS = "early_stopping_best.npz"
ES_WEIGHTS_PREVIOUS = "early_stopping_best.previous.npz"
RUN_FILES = ("config.json", "history.csv", "metrics.json", "model.keras", "curves.png", "verdict.txt")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says where and what was kept."""


class OutputFolderError(OSError, ValueError):
    """An output folder that cannot be: a file is in the way, or this process may not write there.

    Both an ``OSError`` and a ``ValueError`` (bad input: the command lines print one line, exit status 2).
    """


def check_output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` as a Path if it is a folder this process may write in, or could be created as one.

    Creates nothing. Raises :class:`OutputFolderError` naming ``option``, the path and the problem when a
    file stands where a folder is needed, or the nearest existing folder is not writable.
    """
    path = Path(os.fspath(path))
    probe = path
    while not os.path.exists(probe) and probe.parent != probe:
        probe = probe.parent
    if not os.path.isdir(probe):
        where = "is a file" if probe == path else f"cannot be created: {probe} is a file"
        raise OutputFolderError(f"{option} {path} {where}, not a folder; {option} must be a folder "
                                f"(created if missing) that you can write to")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "is not writable" if probe == path else f"cannot be created: {probe} is not writable"
        raise OutputFolderError(f"{option} {path} {where} by this user; {option} must be a folder "
                                f"(created if missing) that you can write to")
    return path


@dataclasses.dataclass
class RunResult:
    """What :func:`run` returns: the run folder, the metrics written to metrics.json and the verdict."""

    folder: Path
    metrics: dict[str, Any]
    verdict: Verdict
    recipe: Recipe | None = None


# -- compile ---------------------------------------------------------------------------------------
def _ends_in_softmax(model: keras.Model) -> bool:
    layer = model.layers[-1] if model.layers else None
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", str(activation))
    return name not in ("linear", "None") and activation is not None


def compile_model(model: keras.Model, recipe: Recipe, steps_per_epoch: int) -> keras.Model:
    """Compile ``model`` with the recipe's optimizer and schedule, sparse categorical cross-entropy
    (``from_logits`` when the model has no softmax on top) and accuracy. Returns the model."""
    optimizer = make_optimizer(
        recipe.optimizer, recipe.learning_rate, schedule=recipe.schedule, epochs=recipe.epochs,
        steps_per_epoch=max(1, int(steps_per_epoch)), weight_decay=recipe.weight_decay,
        clipnorm=recipe.clipnorm,
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not _ends_in_softmax(model)),
        metrics=["accuracy"],
    )
    return model


# -- callbacks -------------------------------------------------------------------------------------
class _Watch(keras.callbacks.Callback):
    """Records where the loss first went NaN/inf and puts the current learning rate into the logs."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.diverged_at: tuple[int, int] | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and self.diverged_at is None and not math.isfinite(float(loss)):
            self.diverged_at = (self.epoch, batch)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _current_lr(self.model.optimizer)


def _current_lr(optimizer) -> float:
    """The rate the next step uses (a schedule evaluated at the optimizer's iteration count)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class _ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping on val_loss restoring the best weights, whose state survives a kill.

    The best weights go to ``weights_path`` whenever val_loss improves; a resumed run takes its best
    value, best epoch and wait from the history of the finished epochs and its best weights from there.
    """

    def __init__(self, patience: int, weights_path: Path, resume: dict | None = None, verbose: int = 1) -> None:
        super().__init__(monitor="val_loss", mode="min", patience=patience, restore_best_weights=True,
                         verbose=verbose)
        self.weights_path = Path(weights_path)
        self.resume = resume

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not self.resume:
            return
        self.best = self.resume["best"]
        self.best_epoch = self.resume["best_epoch"]
        self.wait = self.resume["wait"]
        # The previous copy too: a kill after this file was written for a new best epoch but before that
        # epoch's backup leaves the best of the finished epochs in the previous copy.
        for path in (self.weights_path, self.previous_path):
            if not path.exists():
                continue
            with np.load(path) as saved:
                if int(saved["epoch"]) == self.best_epoch:
                    count = len([k for k in saved.files if k.startswith("w")])
                    self.best_weights = [saved[f"w{i}"] for i in range(count)]
                    break

    @property
    def previous_path(self) -> Path:
        return self.weights_path.with_name(self.weights_path.stem + ".previous.npz")

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch and self.best_weights is not None:
            tmp = self.weights_path.with_name(self.weights_path.name + ".tmp.npz")
            np.savez(tmp, epoch=np.int64(epoch), **{f"w{i}": w for i, w in enumerate(self.best_weights)})
            if self.weights_path.exists():
                os.replace(self.weights_path, self.previous_path)
            os.replace(tmp, self.weights_path)


# -- the work folder -------------------------------------------------------------------------------
def work_dir_for(recipe: Recipe, out: str | os.PathLike = "runs") -> Path:
    """The hidden folder where ``recipe`` trains (and resumes): ``<out>/.inprogress/<config hash>``."""
    return Path(out) / INPROGRESS / recipe.config_hash()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(work: Path):
    lock = work / LOCK
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and pid != os.getpid() and _pid_alive(pid):
            raise FileExistsError(
                f"another process (pid {pid}) is running this configuration in {work}"
            ) from None
        lock.unlink(missing_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _backup_epoch(work: Path) -> int:
    """The epoch BackupAndRestore will resume at (0 without a backup)."""
    meta = work / BACKUP / "training_metadata.json"
    if not (work / BACKUP / "latest.weights.h5").exists() or not meta.exists():
        return 0
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _backup_and_restore(folder: Path) -> keras.callbacks.BackupAndRestore:
    """BackupAndRestore keeping the previous backup too where Keras can (``double_checkpoint``, Keras 3.6+)."""
    import inspect

    kwargs = {}
    if "double_checkpoint" in inspect.signature(keras.callbacks.BackupAndRestore).parameters:
        kwargs["double_checkpoint"] = True
    return keras.callbacks.BackupAndRestore(backup_dir=os.fspath(folder), **kwargs)


def _readable_zip(path: Path) -> bool:
    """A ``.keras`` file (a zip) whose every member reads back with the right CRC."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def read_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """history.csv as columns of floats (``epoch`` included)."""
    path = Path(path)
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                columns.setdefault(key, []).append(float("nan"))
    return columns


def _truncate_history(path: Path, epochs_done: int) -> None:
    """Keep only the rows of the epochs the backup holds (a kill between two writes leaves extras)."""
    if not path.exists():
        return
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    kept = [row for row in body if row and row[0].isdigit() and int(row[0]) < epochs_done]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(kept)
    os.replace(tmp, path)


def _resume_state(history: dict[str, list[float]], epochs_done: int) -> dict | None:
    losses = history.get("val_loss", [])
    if epochs_done == 0 or not losses:
        return None
    finite = [(loss, i) for i, loss in enumerate(losses) if math.isfinite(loss)]
    if not finite:
        return None
    best, best_epoch = min(finite)
    return {"best": best, "best_epoch": int(history["epoch"][best_epoch]), "wait": epochs_done - 1 - best_epoch}


def _final_name(out: Path, recipe: Recipe, started: str) -> Path:
    base = f"{recipe.model}-{recipe.data_label}-{recipe.preset}-{started}"
    candidate, n = out / base, 1
    while candidate.exists():
        n += 1
        candidate = out / f"{base}-{n}"
    return candidate


def _preprocessing_params(model: keras.Model) -> int:
    """Weights of the input Normalization layer ``build_model`` puts before the zoo model (its statistics)."""
    return int(sum(math.prod(w.shape) for layer in model.layers
                   if isinstance(layer, keras.layers.Normalization) for w in layer.weights))


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def plot_curves(history: dict[str, list[float]], path: str | os.PathLike, title: str = "",
                best_epoch: int | None = None) -> None:
    """curves.png: train vs. validation loss and accuracy per epoch (matplotlib's Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    epochs = [int(e) + 1 for e in history.get("epoch", [])]
    for index, (metric, label) in enumerate((("loss", "loss"), ("accuracy", "accuracy"))):
        axis = figure.add_subplot(1, 2, index + 1)
        for key, name in ((metric, "train"), (f"val_{metric}", "validation")):
            if history.get(key):
                axis.plot(epochs, history[key], marker="o", markersize=3, label=name)
        if best_epoch:
            axis.axvline(best_epoch, color="gray", linestyle="--", linewidth=1, label=f"best epoch {best_epoch}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(os.fspath(path))


# -- the run ---------------------------------------------------------------------------------------
def _evaluate(model: keras.Model, x, y, batch_size: int) -> dict[str, float]:
    from recipes.data import make_dataset

    if len(x) == 0:
        return {"loss": float("nan"), "accuracy": float("nan")}
    result = model.evaluate(make_dataset(x, y, batch_size), verbose=0, return_dict=True)
    return {"loss": float(result["loss"]), "accuracy": float(result["accuracy"])}


@contextlib.contextmanager
def op_determinism(enabled: bool = True):
    """TensorFlow's op determinism (``tf.config.experimental.enable_op_determinism``) inside the block only.

    TensorFlow has no public switch back, so the previous state is restored through
    ``tensorflow.python.framework.config`` when that module offers it (TF 2.21 does); otherwise the
    switch stays on for the rest of the process. Another Keras backend: a no-op (only its tf.data input
    pipeline would be affected, and that is already in order and seeded).
    """
    if not enabled or keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    try:
        from tensorflow.python.framework import config as tf_config
        was_enabled = bool(tf_config.is_op_determinism_enabled())
        disable = tf_config.disable_op_determinism
    except (ImportError, AttributeError):  # a TensorFlow without the private switch: leave it on
        was_enabled, disable = True, None
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was_enabled and disable is not None:
            disable()


def run(recipe: Recipe, out: str | os.PathLike = "runs", *, verbose: int = 1, quick: bool = False,
        tensorboard: bool = False, callbacks: Sequence[keras.callbacks.Callback] = (),
        deterministic: bool = False) -> RunResult:
    """Train ``recipe``, evaluate on train, validation and test, and write the run folder under ``out``.

    Args:
        recipe: what to train.
        out: the parent folder of run folders.
        verbose: Keras's ``fit`` verbosity (1 progress bar, 2 a line per epoch, 0 silent); > 0 also
            prints the result and the verdict at the end.
        quick: train ``recipe.quick()`` instead (a seconds-long smoke run on a small subset).
        tensorboard: also write TensorBoard logs to ``<run folder>/logs``.
        callbacks: extra Keras callbacks; they run before the run's own at every hook.
        deterministic: run under TensorFlow's op determinism (:func:`op_determinism`). On CPU the same
            recipe and seed already give the same metrics.json numbers run after run (tests/
            test_repeatability.py); on a GPU they do not without it (cuDNN convolution and pooling
            gradients, reductions, ``sparse_softmax_cross_entropy_with_logits`` pick nondeterministic
            algorithms), and with it they do on the same GPU model, driver and TensorFlow version, at
            some cost in speed; an op with no deterministic GPU kernel raises ``UnimplementedError``.
            Deterministic and default runs may differ from each other in the last bits.

    Raises:
        ValueError (``recipes.data.DataError`` included) for a bad recipe or data, and
        ``OutputFolderError`` (also a ValueError) for an ``out`` that cannot hold run folders;
        TrainingDiverged when the loss turns NaN; FileExistsError when another process runs the same
        configuration in the same ``out``.
    """
    with op_determinism(bool(deterministic)):
        return _run(recipe, out, verbose=verbose, quick=quick, tensorboard=tensorboard, callbacks=callbacks)


def _run(recipe: Recipe, out: str | os.PathLike, *, verbose: int, quick: bool, tensorboard: bool,
         callbacks: Sequence[keras.callbacks.Callback]) -> RunResult:
    from recipes.data import load_data, make_dataset, train_dataset
    from recipes.modeling import build_model

    if not isinstance(recipe, Recipe):
        raise ValueError(f"run needs a recipes.recipe.Recipe, got {type(recipe).__name__}")
    if quick:
        recipe = recipe.quick()
    t0 = time.perf_counter()
    out = check_output_folder(out)  # before anything is loaded, built or written
    keras.utils.set_random_seed(recipe.seed)

    splits = load_data(recipe.data, data_dir=recipe.data_dir, validation_fraction=recipe.validation_fraction,
                       seed=recipe.seed, limit=recipe.limit, test_limit=recipe.test_limit)
    policy = recipe.resolved_augmentation(splits.domain)
    model = build_model(recipe.model, splits, recipe.regularization, augmentation=policy, seed=recipe.seed,
                        precision=recipe.precision,
                        **dict(recipe.model_kwargs))
    steps_per_epoch = max(1, math.ceil(len(splits.x_train) / recipe.batch_size))
    compile_model(model, recipe, steps_per_epoch)
    size = zoo.summary(model, print_fn=None)  # preprocessing layers have no MACs
    preprocessing_params = _preprocessing_params(model)
    train_ds = train_dataset(splits, recipe.batch_size, augmentation=policy, seed=recipe.seed)
    val_ds = make_dataset(splits.x_val, splits.y_val, recipe.batch_size)

    work = work_dir_for(recipe, out)
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # e.g. a read-only file system, or a file put there since the check
        raise OutputFolderError(f"--out {out}: cannot create the work folder {work} ({error.strerror or error}); "
                                f"--out must be a folder (created if missing) that you can write to") from None
    with _locked(work):
        state_path = work / STATE
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        initial_epoch = _backup_epoch(work)
        if initial_epoch == 0:  # a fresh start: nothing of an earlier attempt counts
            for name in ("history.csv", "best.keras", ES_WEIGHTS, ES_WEIGHTS_PREVIOUS, "FAILED.txt"):
                (work / name).unlink(missing_ok=True)
            shutil.rmtree(work / "logs", ignore_errors=True)
            shutil.rmtree(work / BACKUP, ignore_errors=True)  # a backup without readable metadata: not resumable
            state = {}
        elif (work / "best.keras").exists() and not _readable_zip(work / "best.keras"):
            (work / "best.keras").unlink()  # killed while writing it: the next best epoch writes it anew
        state.setdefault("started", time.strftime("%Y%m%d-%H%M%S"))
        state.setdefault("wall_time_s", 0.0)
        state["attempts"] = int(state.get("attempts", 0)) + 1
        _write_json(state_path, state)
        _write_json(work / "config.json", recipe.to_dict())
        _truncate_history(work / "history.csv", initial_epoch)
        resume = _resume_state(read_history(work / "history.csv"), initial_epoch)
        # no best.keras to beat (removed above as damaged): the next epoch writes one whatever its val_loss
        checkpoint_threshold = resume["best"] if resume and (work / "best.keras").exists() else math.inf
        if verbose and initial_epoch:
            print(f"Resuming {work} at epoch {initial_epoch + 1} of {recipe.epochs}", flush=True)

        watch = _Watch()
        fit_callbacks: list[keras.callbacks.Callback] = [*callbacks, watch, keras.callbacks.TerminateOnNaN()]
        if recipe.patience is not None:
            fit_callbacks.append(_ResumableEarlyStopping(recipe.patience, work / ES_WEIGHTS, resume,
                                                         verbose=1 if verbose else 0))
        fit_callbacks.append(keras.callbacks.ModelCheckpoint(
            os.fspath(work / "best.keras"), monitor="val_loss", mode="min", save_best_only=True,
            # inf, not None: a NaN val_loss must never count as the first "best" (Keras takes any first value)
            initial_value_threshold=checkpoint_threshold))
        plateau = max(1, recipe.patience // 2) if recipe.patience else PLATEAU_PATIENCE
        fit_callbacks += schedule_callbacks(recipe.schedule, patience=plateau, verbose=1 if verbose else 0)
        fit_callbacks.append(keras.callbacks.CSVLogger(os.fspath(work / "history.csv"), append=True))
        if tensorboard:
            fit_callbacks.append(keras.callbacks.TensorBoard(log_dir=os.fspath(work / "logs")))
        # Last, so that an epoch counts as finished only once its history row, checkpoint and early-stopping
        # state are on disk (a kill in between reruns that epoch instead of losing its row). Two copies: a
        # kill while the weights are written leaves the previous epoch's backup to resume from.
        fit_callbacks.append(_backup_and_restore(work / BACKUP))

        try:
            model.fit(train_ds, validation_data=val_ds, epochs=recipe.epochs, callbacks=fit_callbacks,
                      verbose=verbose, shuffle=False)  # the tf.data pipeline reshuffles every epoch
        except BaseException as error:
            state["wall_time_s"] += time.perf_counter() - t0
            _write_json(state_path, state)
            if _backup_epoch(work) == 0 and not isinstance(error, KeyboardInterrupt):
                shutil.rmtree(work, ignore_errors=True)  # nothing to resume: leave nothing behind
                with contextlib.suppress(OSError):
                    (out / INPROGRESS).rmdir()
            elif verbose:
                print(f"\nStopped after epoch {_backup_epoch(work)}; run the same command again to resume "
                      f"from {work}", file=sys.stderr, flush=True)
            raise

        if watch.diverged_at is not None:
            epoch, batch = watch.diverged_at
            shutil.rmtree(work / BACKUP, ignore_errors=True)
            kept = (f"the last good checkpoint is {work / 'best.keras'}" if (work / "best.keras").exists()
                    else "no epoch ended with a finite validation loss, so there is no checkpoint")
            message = (f"training diverged: the loss became NaN or infinite at epoch {epoch + 1}, batch {batch}; "
                       f"{kept}; lower the learning rate (now {recipe.learning_rate:g}) or set a clipnorm")
            (work / "FAILED.txt").write_text(message + "\n")
            state["wall_time_s"] += time.perf_counter() - t0
            _write_json(state_path, state)
            raise TrainingDiverged(message)

        history = read_history(work / "history.csv")
        train_m = _evaluate(model, splits.x_train, splits.y_train, recipe.batch_size)
        val_m = _evaluate(model, splits.x_val, splits.y_val, recipe.batch_size)
        test_m = _evaluate(model, splits.x_test, splits.y_test, recipe.batch_size)  # the one touch of test
        baseline = recipe.baseline_error if recipe.baseline_error is not None else splits.baseline_error
        verdict = diagnose(1.0 - train_m["accuracy"], 1.0 - val_m["accuracy"], baseline)

        val_losses = history.get("val_loss", [])
        finite = [(loss, i) for i, loss in enumerate(val_losses) if math.isfinite(loss)]
        best_index = min(finite)[1] if finite else None
        epochs_run = len(history.get("epoch", []))
        wall = state["wall_time_s"] + time.perf_counter() - t0
        reg = recipe.regularization
        metrics: dict[str, Any] = {
            "model": recipe.model, "data": recipe.data, "preset": recipe.preset,
            "train_loss": train_m["loss"], "train_accuracy": train_m["accuracy"],
            "val_loss": val_m["loss"], "val_accuracy": val_m["accuracy"],
            "test_loss": test_m["loss"], "test_accuracy": test_m["accuracy"],
            "best_epoch": None if best_index is None else best_index + 1,
            "best_val_loss": None if best_index is None else val_losses[best_index],
            "epochs_run": epochs_run, "epochs": recipe.epochs,
            "stopped_early": recipe.patience is not None and epochs_run < recipe.epochs,
            "resumed_from_epoch": initial_epoch,
            "wall_time_s": round(wall, 3),
            "params": size.total_params - preprocessing_params, "trainable_params": size.trainable_params,
            "macs": size.macs,
            "l1": reg.l1, "l2": reg.l2, "keep_prob": reg.keep_prob, "batch_norm": reg.batch_norm,
            "augmentation": policy,
            "optimizer": recipe.optimizer, "learning_rate": recipe.learning_rate, "schedule": recipe.schedule,
            "weight_decay": recipe.weight_decay, "batch_size": recipe.batch_size, "patience": recipe.patience,
            "clipnorm": recipe.clipnorm, "seed": recipe.seed, "precision": recipe.precision,
            "train_examples": len(splits.x_train), "val_examples": len(splits.x_val),
            "test_examples": len(splits.x_test), "input_shape": list(splits.input_shape),
            "classes": splits.classes, "data_source": splits.source, "baseline_error": baseline,
            "verdict": verdict.to_dict(),
        }

        model.save(work / "model.keras")
        plot_curves(history, work / "curves.png",
                    title=f"{recipe.model} on {recipe.data_label} ({recipe.preset})",
                    best_epoch=metrics["best_epoch"])
        (work / "verdict.txt").write_text(verdict.text + "\n")
        _write_json(work / "metrics.json", metrics)
        (work / STATE).unlink(missing_ok=True)
        (work / ES_WEIGHTS).unlink(missing_ok=True)
        (work / ES_WEIGHTS_PREVIOUS).unlink(missing_ok=True)
        shutil.rmtree(work / BACKUP, ignore_errors=True)

    folder = _final_name(out, recipe, state["started"])
    os.replace(work, folder)  # the last step: only now is there a folder without a leading dot
    with contextlib.suppress(OSError):
        (out / INPROGRESS).rmdir()
    if verbose:
        print(summary_line(metrics, folder))
        print(verdict.text, flush=True)
    return RunResult(folder=folder, metrics=metrics, verdict=verdict, recipe=recipe)


def summary_line(metrics: dict[str, Any], folder: Path | str | None = None) -> str:
    """One line with the test accuracy and the rest of a run's headline numbers."""
    line = (f"{metrics['model']} on {metrics['data']} ({metrics['preset']}): "
            f"test accuracy {metrics['test_accuracy']:.4f} (loss {metrics['test_loss']:.4f}); "
            f"train {metrics['train_accuracy']:.4f}, val {metrics['val_accuracy']:.4f}; "
            f"{metrics['epochs_run']} epochs (best {metrics['best_epoch']}), {metrics['wall_time_s']:.1f} s")
    return line + (f"\nRun folder: {folder}" if folder is not None else "")
