"""The run folder: where one training run works, resumes after a kill, and ends complete or not at all.

A run works in ``<out>/.inprogress/<config hash>/`` — the hash of the Recipe's JSON
(``Recipe.config_hash()``), so the same command always maps to the same work folder — and only when
everything is written is that folder renamed to its final name ``<model>-<data>-<preset>-<YYYYmmdd-HHMMSS>``.
A folder without a leading dot is therefore always complete; a failed or killed run leaves only the hidden
work folder. ``keras.callbacks.BackupAndRestore`` backs the training state (weights, optimizer, epoch) up into
``<work>/backup/`` at the very end of every epoch, after the epoch's other files (two copies, so that a kill
while it writes leaves the previous one): running the same command again resumes at the first unfinished
epoch. A ``LOCK`` file keeps two processes off one work folder. ``best.keras`` (the inference model at the
lowest val_loss so far) is written to a temporary file and renamed, so it is never half-written.

:class:`RunFolder` is that life cycle (open -> the fit's callbacks -> finish -> publish); the rest are its
pieces (the lock, the backup epoch, history.csv, JSON writes, curves.png).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import keras
import numpy as np

from zoo._quiet import numeric_setup

__all__ = ["RunFolder", "OutputFolderError", "check_output_folder", "work_dir_for", "read_history", "write_json",
           "config_record", "plot_curves", "BestCheckpoint", "INPROGRESS", "RUN_FILES", "best_val_loss_index", "publish"]

INPROGRESS = ".inprogress"
BACKUP = "backup"
LOCK = "LOCK"
STATE = "state.json"
ES_WEIGHTS = "early_stopping_best.npz"
ES_WEIGHTS_PREVIOUS = "early_stopping_best.previous.npz"
RUN_FILES = ("config.json", "history.csv", "metrics.json", "model.keras", "curves.png", "weights.png", "verdict.txt")


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


def work_dir_for(recipe, out: str | os.PathLike = "runs") -> Path:
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
def locked(work: Path):
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


def backup_epoch(work: Path) -> int:
    """The epoch BackupAndRestore will resume at (0 without a backup)."""
    meta = work / BACKUP / "training_metadata.json"
    if not (work / BACKUP / "latest.weights.h5").exists() or not meta.exists():
        return 0
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def backup_and_restore(folder: Path) -> keras.callbacks.BackupAndRestore:
    """BackupAndRestore keeping the previous backup too where Keras can (``double_checkpoint``, Keras 3.6+)."""
    import inspect

    kwargs = {}
    if "double_checkpoint" in inspect.signature(keras.callbacks.BackupAndRestore).parameters:
        kwargs["double_checkpoint"] = True
    return keras.callbacks.BackupAndRestore(backup_dir=os.fspath(folder), **kwargs)


class RestoreOnly(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that restores a backup another process writes, and writes or deletes nothing."""

    def on_train_begin(self, logs=None):
        self._load_model()

    def _save_model(self):
        pass

    def on_train_end(self, logs=None):
        pass


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


def best_val_loss_index(history: dict[str, list[float]]) -> int | None:
    """The row of history.csv with the lowest finite val_loss (the first of equals), or None."""
    finite = [(loss, i) for i, loss in enumerate(history.get("val_loss", [])) if math.isfinite(loss)]
    return min(finite)[1] if finite else None


def truncate_history(path: Path, epochs_done: int) -> None:
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


def config_record(recipe) -> dict[str, Any]:
    """config.json: the Recipe's fields (``Recipe.from_dict`` reads them back) and a ``machine`` block, the
    numeric set-up this attempt ran on (``zoo._quiet.numeric_setup``: backend, oneDNN, threads, CPU and its
    vector flags, versions), which ``Recipe.from_dict`` leaves out (``recipes.recipe.RUN_RECORD_KEYS``)."""
    return {**recipe.to_dict(), "machine": numeric_setup()}


def final_name(out: Path, recipe, started: str) -> Path:
    base = f"{recipe.model}-{recipe.data_label}-{recipe.preset}-{started}"
    candidate, n = out / base, 1
    while candidate.exists():
        n += 1
        candidate = out / f"{base}-{n}"
    return candidate


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=json_default) + "\n")
    os.replace(tmp, path)


def json_default(value: Any) -> Any:
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


def plot_weights(values, path: str | os.PathLike, threshold: float, title: str = "") -> None:
    """weights.png: the histogram of log10 |w| over the kernel weights, the sparsity threshold marked
    (L1 piles weights up at 0, left of the line; L2 shrinks them all but leaves few below it)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    floor = threshold / 1e4   # exact zeros and anything below this share the first bin
    if magnitude.size:
        axis.hist(np.log10(np.maximum(magnitude, floor)), bins=80, color="#6a8fbf")
        below = float((magnitude < threshold).mean())
        axis.axvline(np.log10(threshold), color="#c44", linestyle="--", linewidth=1,
                     label=f"|w| < {threshold:g}: {below:.1%} of {magnitude.size:,}")
        axis.legend(fontsize=8)
    axis.set_xlabel("log10 |w| (kernel weights)")
    axis.set_ylabel("weights")
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(os.fspath(path))




class BestCheckpoint(keras.callbacks.Callback):
    """Saves ``model`` (the inference model, not the one ``fit`` trains) to ``path`` whenever val_loss
    improves on ``threshold`` (inf: any finite first value), through a temporary file and a rename."""

    def __init__(self, model: keras.Model, path: str | os.PathLike, threshold: float = math.inf) -> None:
        super().__init__()
        self.target, self.path, self.best = model, Path(path), float(threshold)

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is not None and math.isfinite(float(loss)) and float(loss) < self.best:
            self.best = float(loss)
            tmp = self.path.with_name(self.path.stem + ".tmp.keras")
            self.target.save(tmp)
            os.replace(tmp, self.path)


class RunFolder:
    """One run's work folder: ``open`` it (lock, resume state), train with ``callbacks``, ``finish``, ``publish``."""

    def __init__(self, recipe, out: Path) -> None:
        self.recipe, self.out, self.work = recipe, Path(out), work_dir_for(recipe, out)
        self.state: dict[str, Any] = {}
        self.initial_epoch = 0
        self.history: dict[str, list[float]] = {}

    @property
    def early_stopping_path(self) -> Path:
        return self.work / ES_WEIGHTS

    @contextlib.contextmanager
    def open(self, verbose: int = 1) -> Iterator["RunFolder"]:
        """Create and lock the work folder; read what a killed attempt left (or clear it for a fresh start)."""
        try:
            self.work.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # e.g. a read-only file system, or a file put there since the check
            raise OutputFolderError(f"--out {self.out}: cannot create the work folder {self.work} "
                                    f"({error.strerror or error}); --out must be a folder (created if missing) "
                                    f"that you can write to") from None
        with locked(self.work):
            self._load_state()
            write_json(self.work / "config.json", config_record(self.recipe))
            truncate_history(self.work / "history.csv", self.initial_epoch)
            self.history = read_history(self.work / "history.csv")
            if verbose and self.initial_epoch:
                print(f"Resuming {self.work} at epoch {self.initial_epoch + 1} of {self.recipe.epochs}", flush=True)
            yield self

    def _load_state(self) -> None:
        path = self.work / STATE
        self.state = json.loads(path.read_text()) if path.exists() else {}
        self.initial_epoch = backup_epoch(self.work)
        if self.initial_epoch == 0:  # a fresh start: nothing of an earlier attempt counts
            for name in ("history.csv", "best.keras", ES_WEIGHTS, ES_WEIGHTS_PREVIOUS, "FAILED.txt"):
                (self.work / name).unlink(missing_ok=True)
            shutil.rmtree(self.work / "logs", ignore_errors=True)
            shutil.rmtree(self.work / BACKUP, ignore_errors=True)  # a backup without readable metadata
            self.state = {}
        self.state.setdefault("started", time.strftime("%Y%m%d-%H%M%S"))
        self.state.setdefault("wall_time_s", 0.0)
        self.state["attempts"] = int(self.state.get("attempts", 0)) + 1
        self.save_state()

    def save_state(self, add_seconds: float = 0.0) -> None:
        self.state["wall_time_s"] = self.state.get("wall_time_s", 0.0) + add_seconds
        write_json(self.work / STATE, self.state)

    def callbacks(self, model: keras.Model, tensorboard: bool = False) -> list[keras.callbacks.Callback]:
        """The checkpoint of ``model``, history.csv, TensorBoard, and (last) the backup."""
        best = self.work / "best.keras"
        index = best_val_loss_index(self.history)
        threshold = self.history["val_loss"][index] if index is not None and best.exists() else math.inf
        listed: list[keras.callbacks.Callback] = [
            BestCheckpoint(model, best, threshold),
            keras.callbacks.CSVLogger(os.fspath(self.work / "history.csv"), append=True)]
        if tensorboard:
            listed.append(keras.callbacks.TensorBoard(log_dir=os.fspath(self.work / "logs")))
        # Last, so that an epoch counts as finished only once its history row, checkpoint and early-stopping
        # state are on disk (a kill in between reruns that epoch instead of losing its row).
        listed.append(backup_and_restore(self.work / BACKUP))
        return listed

    def interrupted(self, error: BaseException, seconds: float, verbose: int) -> None:
        """After an exception in fit: keep what resumes, or leave nothing behind when nothing would."""
        self.save_state(seconds)
        if backup_epoch(self.work) == 0 and not isinstance(error, KeyboardInterrupt):
            shutil.rmtree(self.work, ignore_errors=True)
            with contextlib.suppress(OSError):
                (self.out / INPROGRESS).rmdir()
        elif verbose:
            print(f"\nStopped after epoch {backup_epoch(self.work)}; run the same command again to resume "
                  f"from {self.work}", file=sys.stderr, flush=True)

    def diverged(self, message: str, seconds: float) -> str:
        """After a NaN loss: no backup (the same command starts afresh), FAILED.txt; the full message."""
        shutil.rmtree(self.work / BACKUP, ignore_errors=True)
        best = self.work / "best.keras"
        kept = (f"the last good checkpoint is {best}" if best.exists()
                else "no epoch ended with a finite validation loss, so there is no checkpoint")
        head, _, advice = message.partition("; ")
        message = f"{head}; {kept}; {advice}"
        (self.work / "FAILED.txt").write_text(message + "\n")
        self.save_state(seconds)
        return message

    def finish(self, model: keras.Model, metrics: dict[str, Any], verdict_text: str, title: str) -> None:
        """Write model.keras, curves.png, weights.png, verdict.txt and metrics.json; drop the resume state."""
        from zoo.regularize import SPARSITY_THRESHOLD, kernel_values

        model.save(self.work / "model.keras")
        plot_curves(read_history(self.work / "history.csv"), self.work / "curves.png", title=title,
                    best_epoch=metrics.get("best_epoch"))
        plot_weights(kernel_values(model), self.work / "weights.png", SPARSITY_THRESHOLD, title=title)
        (self.work / "verdict.txt").write_text(verdict_text + "\n")
        write_json(self.work / "metrics.json", metrics)
        for name in (STATE, ES_WEIGHTS, ES_WEIGHTS_PREVIOUS):
            (self.work / name).unlink(missing_ok=True)
        shutil.rmtree(self.work / BACKUP, ignore_errors=True)

    def publish(self) -> Path:
        """Rename the finished work folder to its final name: the last step of a run."""
        return publish(self.work, self.out, self.recipe, self.state["started"])


def publish(work: Path, out: Path, label, started: str) -> Path:
    """Rename the complete ``work`` folder to ``final_name(out, label, started)``; drop an empty ``.inprogress``.

    ``label`` has ``model``, ``data_label`` and ``preset`` (a Recipe, or the name parts of a cross-validation
    or an ensemble folder).
    """
    folder = final_name(Path(out), label, started)
    os.replace(work, folder)
    with contextlib.suppress(OSError):
        (Path(out) / INPROGRESS).rmdir()
    return folder
