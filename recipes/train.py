"""One training run from a :class:`~recipes.recipe.Recipe` to a run folder, resumable after a kill.

    from recipes.recipe import preset
    from recipes.train import run
    result = run(preset("lenet5", "full"), out="runs")
    result.folder, result.metrics["test_accuracy"], result.verdict.kind

The run folder ``<out>/<model>-<data>-<preset>-<YYYYmmdd-HHMMSS>/`` holds:

=================  ==================================================================================
``config.json``    the Recipe (``Recipe.from_json`` reruns it) and a ``machine`` block: the numeric set-up
                   (``zoo._quiet.numeric_setup``: backend, oneDNN on/off, threads, CPU flags, versions)
``history.csv``    one row per epoch (``epoch`` counts from 0): loss, accuracy, val_loss,
                   val_accuracy, learning_rate
``metrics.json``   train / val / test loss and accuracy, best epoch, epochs run, wall time,
                   parameters and MACs of the zoo model, λ l1/l2, keep-prob, batch norm,
                   augmentation, the optimizer settings, the verdict and ``numeric_setup`` (the same
                   block as config.json's ``machine``: results are bit-identical only for the same set-up)
``model.keras``    the final model (the best-val_loss weights when early stopping is on)
``best.keras``     ModelCheckpoint: the model at the epoch of lowest val_loss
``curves.png``     train vs. validation loss and accuracy per epoch
``weights.png``    histogram of log10 |w| of the kernel weights (``kernel_sparsity`` marked)
``verdict.txt``    the bias/variance verdict and what to try next
``logs/``          TensorBoard logs (with ``tensorboard=True``)
=================  ==================================================================================

Completeness and resuming: see :mod:`recipes.runfolder` (the hidden work folder, the backup after every
epoch, the lock, the atomic rename at the end). Running the same command (the same Recipe) again after a
kill resumes at the first unfinished epoch and ends with the same ``history.csv`` and ``metrics.json``
numbers (wall times aside) as the uninterrupted run: the shuffle order and the random layers are functions
of (seed, epoch), the rest comes back from the backup (see :mod:`recipes.pipeline`).
A run whose loss turns NaN or infinite stops (``TerminateOnNaN``) and raises :class:`TrainingDiverged`;
its work folder keeps ``best.keras`` (the last good checkpoint) and ``history.csv`` but not the backup,
so the same command starts afresh (lower the learning rate or set a clipnorm first).

What is saved (``model.keras``, ``best.keras``) is the inference model: one tensor in, its Normalization
inside, and no augmentation, dropout or batch statistics unless ``training=True`` is passed.

The test split is evaluated once, after training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from typing import Any, Sequence
from pathlib import Path

import keras

import zoo
from zoo._quiet import numeric_setup
from zoo.regularize import SPARSITY_THRESHOLD
from recipes import distribute, pipeline
from recipes.pipeline import TrainingDiverged, compile_model
from recipes.recipe import Recipe
from recipes.runfolder import (BACKUP, INPROGRESS, RUN_FILES, OutputFolderError, RestoreOnly, RunFolder,
                               backup_epoch, best_val_loss_index, check_output_folder, plot_curves, read_history,
                               work_dir_for)
from recipes.verdict import Verdict, diagnose

__all__ = ["RunResult", "TrainingDiverged", "OutputFolderError", "check_output_folder", "compile_model", "run",
           "work_dir_for", "op_determinism", "INPROGRESS", "RUN_FILES", "read_history", "plot_curves",
           "run_metrics", "summary_line"]


@dataclasses.dataclass
class RunResult:
    """What :func:`run` returns: the run folder, the metrics written to metrics.json and the verdict."""

    folder: Path
    metrics: dict[str, Any]
    verdict: Verdict
    recipe: Recipe | None = None


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
        deterministic: bool = False, splits: Any = None) -> RunResult:
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
        splits: ready ``recipes.data.DataSplits`` to train on instead of the recipe's data (a
            cross-validation fold, :mod:`recipes.crossval`); give each its own ``out``, since the work
            folder is named by the Recipe alone.

    Raises:
        ValueError (``recipes.data.DataError`` included) for a bad recipe or data, and
        ``OutputFolderError`` (also a ValueError) for an ``out`` that cannot hold run folders;
        TrainingDiverged when the loss turns NaN; FileExistsError when another process runs the same
        configuration in the same ``out``.
    """
    with op_determinism(bool(deterministic)):
        return _run(recipe, out, verbose=verbose, quick=quick, tensorboard=tensorboard, callbacks=callbacks,
                    splits=splits)


def _run(recipe: Recipe, out: str | os.PathLike, *, verbose: int, quick: bool, tensorboard: bool,
         callbacks: Sequence[keras.callbacks.Callback], splits: Any = None) -> RunResult:
    if not isinstance(recipe, Recipe):
        raise ValueError(f"run needs a recipes.recipe.Recipe, got {type(recipe).__name__}")
    recipe = recipe.quick() if quick else recipe
    t0 = time.perf_counter()
    out = check_output_folder(out)  # before anything is loaded, built or written
    prepared = pipeline.prepare(recipe, splits)
    folder = RunFolder(recipe, out)
    if not distribute.is_writer():
        return _follow(prepared, folder, callbacks, t0)
    with folder.open(verbose) as opened:
        distribute.barrier("run folder open")  # the others read it from here on (a data-parallel run)
        try:
            pipeline.fit(prepared, callbacks=callbacks, folder_callbacks=opened.callbacks(prepared.model, tensorboard),
                         history=opened.history, epochs_done=opened.initial_epoch,
                         early_stopping_path=opened.early_stopping_path, verbose=verbose)
        except TrainingDiverged as error:
            raise TrainingDiverged(opened.diverged(str(error), time.perf_counter() - t0),
                                   error.epoch, error.batch) from None
        except BaseException as error:
            opened.interrupted(error, time.perf_counter() - t0, verbose)
            raise
        history = read_history(opened.work / "history.csv")
        wall = opened.state["wall_time_s"] + time.perf_counter() - t0
        metrics, verdict = run_metrics(prepared, history, wall_time_s=wall, resumed_from_epoch=opened.initial_epoch)
        metrics["smoke_run"] = bool(quick)
        text = verdict.text + (f"\n{smoke_note(metrics)}" if quick else "")
        opened.finish(prepared.model, metrics, text, title=f"{recipe.model} on {recipe.data_label} ({recipe.preset})")
    final = folder.publish()
    distribute.barrier("run folder published")
    if verbose:
        print(summary_line(metrics, final))
        print(text, flush=True)
    return RunResult(folder=final, metrics=metrics, verdict=verdict, recipe=recipe)


def _follow(prepared: pipeline.Prepared, folder: RunFolder, callbacks: Sequence[keras.callbacks.Callback],
            t0: float) -> RunResult:
    """A data-parallel run's process other than 0: train in step, resume from process 0's backup, write nothing.

    Returns the same metrics as process 0 (each process evaluates its own exact copy) and the work
    folder's path; process 0 publishes the run folder.
    """
    distribute.barrier("run folder open")
    epochs_done = backup_epoch(folder.work)
    history = read_history(folder.work / "history.csv") if epochs_done else None
    if history is not None:
        history = {key: values[:epochs_done] for key, values in history.items()}
    fitted = pipeline.fit(prepared, callbacks=callbacks, history=history, epochs_done=epochs_done,
                          folder_callbacks=[RestoreOnly(backup_dir=os.fspath(folder.work / BACKUP))] if epochs_done else [],
                          early_stopping_path=folder.early_stopping_path, verbose=0)
    done = {key: list((history or {}).get(key, [])) + list(values) for key, values in fitted.history.items()}
    done["epoch"] = list(range(len(done.get("loss", []))))
    metrics, verdict = run_metrics(prepared, done, wall_time_s=time.perf_counter() - t0,
                                   resumed_from_epoch=epochs_done)
    distribute.barrier("run folder published")
    return RunResult(folder=folder.work, metrics=metrics, verdict=verdict, recipe=prepared.recipe)


def smoke_note(metrics: dict[str, Any]) -> str:
    """What a ``--quick`` run's verdict.txt and output add: it is a smoke run, not a measurement."""
    return (f"Smoke run (--quick: {metrics['epochs_run']} epochs on {metrics['train_examples']} training "
            f"examples): it checks that the recipe runs end to end; its accuracy and the verdict above say "
            f"nothing about the recipe (metrics.json has smoke_run: true).")


def run_metrics(prepared: pipeline.Prepared, history: dict[str, list[float]], *, wall_time_s: float,
                resumed_from_epoch: int = 0) -> tuple[dict[str, Any], Verdict]:
    """metrics.json of a trained run: the three splits (test evaluated here, once), the epochs, the model's
    size, the recipe's settings and the verdict."""
    recipe, splits = prepared.recipe, prepared.splits
    evaluated = pipeline.evaluate_splits(prepared)
    baseline = recipe.baseline_error if recipe.baseline_error is not None else splits.baseline_error
    verdict = diagnose(1.0 - evaluated["train_accuracy"], 1.0 - evaluated["val_accuracy"], baseline)
    val_losses = history.get("val_loss", [])
    best_index = best_val_loss_index(history)
    epochs_run = len(history.get("epoch", []))
    size = zoo.summary(prepared.model, print_fn=None)  # preprocessing layers have no MACs
    settings = recipe.to_dict()
    metrics: dict[str, Any] = {
        "model": recipe.model, "data": recipe.data, "preset": recipe.preset, **evaluated,
        "best_epoch": None if best_index is None else best_index + 1,
        "best_val_loss": None if best_index is None else val_losses[best_index],
        "epochs_run": epochs_run, "epochs": recipe.epochs,
        "stopped_early": recipe.patience is not None and epochs_run < recipe.epochs,
        "resumed_from_epoch": resumed_from_epoch, "wall_time_s": round(wall_time_s, 3),
        "params": size.total_params - _preprocessing_params(prepared.model),
        "trainable_params": size.trainable_params, "macs": size.macs,
        "kernel_sparsity": zoo.kernel_sparsity(prepared.model), "sparsity_threshold": SPARSITY_THRESHOLD,
        **recipe.regularization.to_dict(), "augmentation": prepared.augmentation,
        **{k: settings[k] for k in ("optimizer", "learning_rate", "schedule", "weight_decay", "batch_size",
                                    "patience", "clipnorm", "seed", "precision", "label_smoothing", "ema",
                                    "warmup_epochs", "tta", "erasing", "mixup", "cutmix", "steps_per_execution")},
        "train_examples": len(splits.x_train), "val_examples": len(splits.x_val),
        "test_examples": len(splits.x_test), "input_shape": list(splits.input_shape),
        "classes": splits.classes, "data_source": splits.source, "baseline_error": baseline,
        "verdict": verdict.to_dict(), "numeric_setup": numeric_setup(),
    }
    return metrics, verdict


def _preprocessing_params(model: keras.Model) -> int:
    """Weights of the input Normalization layer ``build_model`` puts before the zoo model (its statistics)."""
    return int(sum(math.prod(w.shape) for layer in model.layers
                   if isinstance(layer, keras.layers.Normalization) for w in layer.weights))


def summary_line(metrics: dict[str, Any], folder: Path | str | None = None) -> str:
    """One line with the test accuracy and the rest of a run's headline numbers."""
    line = (f"{metrics['model']} on {metrics['data']} ({metrics['preset']}): "
            f"test accuracy {metrics['test_accuracy']:.4f} (loss {metrics['test_loss']:.4f})"
            + (f", {metrics.get('tta')} TTA {metrics['test_accuracy_tta']:.4f}" if "test_accuracy_tta" in metrics else "")
            + "; "
            f"train {metrics['train_accuracy']:.4f}, val {metrics['val_accuracy']:.4f}; "
            f"{metrics['epochs_run']} epochs (best {metrics['best_epoch']}), {metrics['wall_time_s']:.1f} s")
    return line + (f"\nRun folder: {folder}" if folder is not None else "")
