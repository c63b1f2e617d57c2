"""The one training path: a Recipe -> data splits -> a built and compiled model -> callbacks -> fit -> evaluation.

    prepared = prepare(recipe)                  # or prepare(recipe, splits=ready_splits)
    history = fit(prepared)                     # TrainingDiverged when the loss turns NaN or infinite
    metrics = evaluate_splits(prepared)         # train / val / test loss and accuracy (test touched here only)
    prepared.model.save("model.keras")          # the inference model

Everything that trains a recipe model goes through this module: ``recipes.train.run`` (the run folder),
``recipes.compare``, every trial of ``tuning.ZooHyperModel`` and the search's final retraining, and the
``bench/`` accuracy rows. A training technique is added here once and every one of them has it.

Two models share one set of weights (``recipes.modeling``): ``prepared.model``, the inference model
(``Input -> Normalization -> zoo model``, what is saved), and ``prepared.trainer``, what ``fit`` trains
(the inference model behind ``TrainingAugmentation`` when augmentation runs in the model; the inference
model itself otherwise).

The loss is sparse categorical cross-entropy, ``from_logits`` when the head has no softmax
(``zoo.layers.outputs_logits``, the rule ``zoo.gradcheck`` uses too), with accuracy; label smoothing and
MixUp / CutMix (soft targets on the training batches only) use :class:`SmoothedCrossentropy`.

Randomness is a function of ``(seed, epoch)``: the model is built after ``keras.utils.set_random_seed(seed)``,
and at the start of every epoch :class:`EpochSeeds` sets the shuffle order's key (``recipes.data.make_dataset``)
and the state of every random layer (dropout, augmentation) from the seed and the epoch. A run resumed at
epoch 7 therefore draws exactly what the uninterrupted run drew there; the weights, the optimizer (its
step, hence the schedule) and the batch-norm statistics come back from the backup, early stopping's and
the plateau schedule's counters from the history (:func:`fit`'s ``history``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import numpy as np

import zoo
from recipes.augment import allow_jit_on_jax
from recipes.data import DataSplits, load_data, make_dataset, pipeline_augmentation
from recipes.distribute import LocalCopy, data_parallel, is_writer, scope, without_distribution
from recipes.modeling import build_model, start_from_weights, training_model
from recipes.optim import PLATEAU_PATIENCE, make_optimizer, schedule_callbacks
from recipes.recipe import Recipe
from recipes.runfolder import best_val_loss_index

__all__ = ["Prepared", "TrainingDiverged", "prepare", "prepare_bare", "load_splits", "loss_for", "compile_model",
           "fit", "evaluate", "evaluate_splits", "EpochSeeds", "EarlyStopping", "LocalValidation",
           "ensure_finite", "SmoothedCrossentropy", "label_accuracy", "label_mixing", "EMAWeights", "check_tta", "tta_views",
           "tta_probabilities", "mean_over_views", "evaluate_tta", "class_probabilities", "probability_scores"]

_GOLDEN = 0x9E3779B1  # spreads the epochs over the seed space (Knuth's multiplicative hash)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; ``epoch`` (from 1) and ``batch`` say where."""

    def __init__(self, message: str, epoch: int | None = None, batch: int | None = None) -> None:
        super().__init__(message)
        self.epoch, self.batch = epoch, batch


@dataclasses.dataclass
class Prepared:
    """A recipe made ready to train: its data, its two models (compiled trainer) and its datasets.

    Under ``Recipe.distribute = "data_parallel"``, ``trainer`` is the distributed one, ``local`` holds its
    one-device copy (:class:`recipes.distribute.LocalCopy`) and ``model`` is the copy's inference model:
    what is evaluated and saved, with the trained weights after every epoch.
    """

    recipe: Recipe
    splits: DataSplits | None
    augmentation: str
    model: keras.Model
    trainer: keras.Model
    steps_per_epoch: int
    epoch_seeds: "EpochSeeds"
    train_data: Any = None
    validation_data: Any = None
    distribution: Any = None
    local: LocalCopy | None = None

    @property
    def evaluator(self) -> keras.Model:
        """The compiled model that evaluates: the trainer, or its one-device copy when distributed."""
        return self.trainer if self.local is None else self.local.trainer

    def distributed(self):
        """The block the trainer runs in: its Keras distribution's scope (nothing when not distributed)."""
        return scope(self.distribution)


def load_splits(recipe: Recipe) -> DataSplits:
    """The recipe's data, split into train / validation / test (``recipes.data.load_data``)."""
    return load_data(recipe.data, data_dir=recipe.data_dir, validation_fraction=recipe.validation_fraction,
                     seed=recipe.seed, limit=recipe.limit, test_limit=recipe.test_limit)


def prepare(recipe: Recipe, splits: DataSplits | None = None, *, placement: str | None = None) -> Prepared:
    """Load (or take) the splits, build both models under the recipe's seed, compile, make the datasets.

    ``splits``: ready splits (a search's, cross-validation folds, train+validation for a final training);
    default: the recipe's data. A split without validation examples gets no validation data.
    """
    if not isinstance(recipe, Recipe):
        raise ValueError(f"prepare needs a recipes.recipe.Recipe, got {type(recipe).__name__}")
    distribution = data_parallel(recipe)  # before the data: a refusal loads nothing
    splits = load_splits(recipe) if splits is None else splits
    keras.utils.set_random_seed(recipe.seed)
    policy = recipe.resolved_augmentation(splits.domain)
    check_tta(recipe.tta, splits.domain)
    whole = len(splits.x_train) // recipe.batch_size
    if distribution is not None and whole == 0:
        raise ValueError(f"Recipe.batch_size ({recipe.batch_size}) is larger than the {len(splits.x_train)} training "
                         f"examples: data_parallel trains on whole batches only")
    steps = whole if distribution is not None else max(1, math.ceil(len(splits.x_train) / recipe.batch_size))
    with scope(distribution):
        model, trainer = _build_and_compile(recipe, splits, policy, steps, placement)
    local = None
    if distribution is not None:
        with without_distribution():
            local = LocalCopy(*_build_and_compile(recipe, splits, policy, steps, placement))
    layer = pipeline_augmentation(splits, policy, seed=recipe.seed, placement=placement, erasing=recipe.erasing)
    mixing = label_mixing(recipe, splits)
    seeds = EpochSeeds(recipe.seed, trainer, layer)
    train = make_dataset(splits.x_train, splits.y_train, recipe.batch_size, shuffle=True, seed=recipe.seed,
                         augmentation=layer, epoch=seeds.epoch, mixing=mixing, drop_remainder=distribution is not None)
    val = make_dataset(splits.x_val, splits.y_val, recipe.batch_size) if len(splits.x_val) else None
    return Prepared(recipe, splits, policy, model if local is None else local.model, trainer, steps, seeds, train,
                    val, distribution, local)


def _build_and_compile(recipe: Recipe, splits: DataSplits, policy: str, steps: int,
                       placement: str | None) -> tuple[keras.Model, keras.Model]:
    model = build_model(recipe.model, splits, recipe.regularization, precision=recipe.precision,
                        **dict(recipe.model_kwargs))
    if recipe.weights is not None:
        start_from_weights(model, recipe.model, recipe.weights, freeze_backbone=recipe.freeze_backbone)
    trainer = training_model(model, splits, policy, seed=recipe.seed, placement=placement, erasing=recipe.erasing)
    compile_model(trainer, recipe, steps)
    return model, trainer


def prepare_bare(recipe: Recipe, input_shape: Sequence[int], classes: int, n_train: int | None = None) -> Prepared:
    """The bare zoo model (no data, no Normalization: you bring normalized data to :func:`fit`), compiled."""
    keras.utils.set_random_seed(recipe.seed)
    model = zoo.build(recipe.model, input_shape=tuple(input_shape), classes=int(classes),
                      regularization=recipe.regularization, **dict(recipe.model_kwargs))
    steps = max(1, math.ceil((n_train or recipe.batch_size) / recipe.batch_size))
    compile_model(model, recipe, steps)
    return Prepared(recipe, None, "none", model, model, steps, EpochSeeds(recipe.seed, model))


def loss_for(model: keras.Model, label_smoothing: float = 0.0, soft_targets: bool = False) -> keras.losses.Loss:
    """Sparse categorical cross-entropy, from logits unless the model ends in a softmax; with
    ``label_smoothing`` ε > 0 or ``soft_targets`` (training batches of MixUp / CutMix targets),
    :class:`SmoothedCrossentropy`."""
    from_logits = zoo.layers.outputs_logits(model)
    if label_smoothing or soft_targets:
        return SmoothedCrossentropy(label_smoothing, from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def _is_soft(y_true, y_pred) -> bool:
    """Targets that are class distributions (batch, K) rather than class ids (batch,) or (batch, 1)."""
    return len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1] != 1


@keras.saving.register_keras_serializable(package="recipes")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy against ``(1 - ε)·t + ε / K`` (label smoothing, Szegedy et al. 2016, §7), where the
    target ``t`` is ``onehot(y)`` for integer labels or the given distribution for soft targets (MixUp /
    CutMix batches, ``recipes.augment.mix_batch``); validation batches keep their integer labels.

    ``-(1 - ε)·Σ_k t_k log p_k + ε·mean_k(-log p_k)``: on one-hot labels what
    ``CategoricalCrossentropy(label_smoothing=ε)`` gives (Keras 3.15's sparse loss has no ``label_smoothing``).
    """

    def __init__(self, label_smoothing: float, from_logits: bool = False, name: str = "smoothed_crossentropy",
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing, self.from_logits = float(label_smoothing), bool(from_logits)

    def call(self, y_true, y_pred):
        ops = keras.ops
        if self.from_logits:
            log_p = ops.log_softmax(y_pred, axis=-1)
        else:
            log_p = ops.log(ops.clip(y_pred, keras.config.epsilon(), 1.0))
        if _is_soft(y_true, y_pred):
            nll = -ops.sum(ops.cast(y_true, log_p.dtype) * log_p, axis=-1)
        else:
            labels = ops.cast(ops.reshape(y_true, (-1, 1)), "int32")
            nll = -ops.squeeze(ops.take_along_axis(log_p, labels, axis=-1), axis=-1)
        return (1.0 - self.label_smoothing) * nll - self.label_smoothing * ops.mean(log_p, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="recipes")
class SmoothedSparseCrossentropy(SmoothedCrossentropy):
    """The earlier name of :class:`SmoothedCrossentropy` (kept so that run folders written before load)."""


@keras.saving.register_keras_serializable(package="recipes")
def label_accuracy(y_true, y_pred):
    """Accuracy for integer labels and for soft targets alike (the target's arg-max is the label)."""
    ops = keras.ops
    if _is_soft(y_true, y_pred):
        y_true = ops.argmax(y_true, axis=-1)
    labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
    return ops.cast(ops.equal(labels, ops.cast(ops.argmax(y_pred, axis=-1), "int32")), "float32")


def label_mixing(recipe: Recipe, splits: DataSplits):
    """The training batches' MixUp / CutMix (``recipes.augment.mix_batch`` with the recipe's α), or None."""
    from recipes.augment import check_mixing, mix_batch

    mixup, cutmix = check_mixing(recipe.mixup, recipe.cutmix, splits.domain, splits.input_shape)
    if not (mixup or cutmix):
        return None
    return functools.partial(mix_batch, classes=splits.classes, mixup=mixup, cutmix=cutmix)


def compile_model(model: keras.Model, recipe: Recipe, steps_per_epoch: int) -> keras.Model:
    """Compile ``model`` with the recipe's optimizer (schedule, warm-up, EMA), :func:`loss_for` and accuracy
    (:func:`label_accuracy` when MixUp / CutMix give the training batches soft targets), running
    ``recipe.steps_per_execution`` steps per call of the compiled train (and test, predict) function."""
    steps = max(1, int(steps_per_epoch))
    optimizer = make_optimizer(
        recipe.optimizer, recipe.learning_rate, schedule=recipe.schedule, epochs=recipe.epochs,
        steps_per_epoch=steps, weight_decay=recipe.weight_decay, clipnorm=recipe.clipnorm,
        warmup_steps=recipe.warmup_epochs * steps, ema=recipe.ema,
    )
    soft = bool(recipe.mixup or recipe.cutmix)
    accuracy = keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy") if soft else "accuracy"
    allow_jit_on_jax(model)  # else an in-model shift makes JAX run the step op by op
    model.compile(optimizer=optimizer, loss=loss_for(model, recipe.label_smoothing, soft), metrics=[accuracy],
                  steps_per_execution=recipe.steps_per_execution)
    return model


# -- callbacks ---------------------------------------------------------------------------------------------
class EpochSeeds(keras.callbacks.Callback):
    """At each epoch's start: the shuffle key and every random layer's seed state from ``(seed, epoch)``.

    ``epoch`` is the integer variable the training dataset's order is keyed by; the random layers are those
    of ``model`` (dropout, in-model augmentation) and of ``pipeline_layer`` (tf.data augmentation).
    """

    def __init__(self, seed: int, model: keras.Model, pipeline_layer: keras.layers.Layer | None = None) -> None:
        super().__init__()
        import tensorflow as tf

        self.seed = int(seed)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="shuffle_epoch")
        layers = [model] + ([pipeline_layer] if pipeline_layer is not None else [])
        self.states = [v for layer in layers for v in layer.variables if v.name == "seed_generator_state"]
        self.initial = [np.asarray(keras.ops.convert_to_numpy(v)) for v in self.states]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(int(epoch))
        for state, initial in zip(self.states, self.initial):
            key = (int(initial[0]) + (self.seed + 1) * 7919 + int(epoch) * _GOLDEN) % (2**31 - 1)
            state.assign(np.array([key, 0], dtype=initial.dtype))


class EMAWeights:
    """The optimizer's averaged weights where they are looked at: validation, checkpoints, early stopping.

    :attr:`swap_in` (first in the callback list) puts the averaged weights into the model for the epoch's
    validation and again at the epoch's end, for the callbacks that follow (checkpoint, early stopping's
    best weights); :attr:`swap_out` (just before the backup) puts the trained weights back, exactly (copies,
    not arithmetic), so the backup and the next epoch continue from them. ``fit`` itself leaves the averaged
    weights in the model at the end (``optimizer.finalize_variable_values``).
    """

    def __init__(self) -> None:
        owner = self

        class _In(keras.callbacks.Callback):
            def on_test_begin(self, logs=None):
                owner.put_average(self.model)

            def on_test_end(self, logs=None):
                owner.put_trained(self.model)

            def on_epoch_end(self, epoch, logs=None):
                owner.put_average(self.model)

        class _Out(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                owner.put_trained(self.model)

        self.swap_in, self.swap_out = _In(), _Out()
        self._trained: list[np.ndarray] | None = None

    @staticmethod
    def _pairs(model: keras.Model):
        optimizer = model.optimizer
        return list(zip(optimizer._trainable_variables, optimizer._model_variables_moving_average))

    def put_average(self, model: keras.Model) -> None:
        if self._trained is None and getattr(model.optimizer, "built", False):
            pairs = self._pairs(model)
            self._trained = [np.array(keras.ops.convert_to_numpy(v)) for v, _ in pairs]
            for variable, average in pairs:
                variable.assign(average)

    def put_trained(self, model: keras.Model) -> None:
        if self._trained is not None:
            for (variable, _), value in zip(self._pairs(model), self._trained):
                variable.assign(value)
            self._trained = None


class _Watch(keras.callbacks.Callback):
    """Where the loss first went NaN/inf; the current learning rate into the logs (history.csv)."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.diverged_at: tuple[int, int] | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and self.diverged_at is None and not math.isfinite(float(loss)):
            # ``batch``: the last step of the call (steps_per_execution > 1: of N steps, and past the epoch's
            # last step in its final, shorter call)
            steps = (self.params or {}).get("steps")
            self.diverged_at = (self.epoch, min(batch, steps - 1) if steps else batch)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping on val_loss restoring the best weights; with ``weights_path`` it survives a kill.

    The best weights go to ``weights_path`` (two copies) whenever val_loss improves; :meth:`resume` takes
    the best value, best epoch and wait from the history of the finished epochs and the best weights back.
    """

    def __init__(self, patience: int, weights_path: str | os.PathLike | None = None, verbose: int = 0,
                 read_only: bool = False) -> None:
        super().__init__(monitor="val_loss", mode="min", patience=patience, restore_best_weights=True,
                         verbose=verbose)
        self.weights_path = None if weights_path is None else Path(weights_path)
        self.read_only = read_only  # another process writes weights_path (a data-parallel run's process 0)
        self.resumed: dict | None = None

    @property
    def previous_path(self) -> Path:
        return self.weights_path.with_name(self.weights_path.stem + ".previous.npz")

    def resume(self, history: Mapping[str, Sequence[float]], epochs_done: int) -> None:
        best_index = best_val_loss_index(history)
        if epochs_done and best_index is not None:
            best, index = history["val_loss"][best_index], best_index
            self.resumed = {"best": best, "best_epoch": int(history["epoch"][index]),
                            "wait": epochs_done - 1 - index}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not self.resumed:
            return
        self.best, self.best_epoch, self.wait = (self.resumed[k] for k in ("best", "best_epoch", "wait"))
        # The previous copy too: a kill after this file was written for a new best epoch but before that
        # epoch's backup leaves the best of the finished epochs in the previous copy.
        for path in (self.weights_path, self.previous_path) if self.weights_path else ():
            if path.exists():
                with np.load(path) as saved:
                    if int(saved["epoch"]) == self.best_epoch:
                        count = len([k for k in saved.files if k.startswith("w")])
                        self.best_weights = [saved[f"w{i}"] for i in range(count)]
                        break

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if (self.weights_path is not None and not self.read_only and self.best_epoch == epoch
                and self.best_weights is not None):
            tmp = self.weights_path.with_name(self.weights_path.name + ".tmp.npz")
            np.savez(tmp, epoch=np.int64(epoch), **{f"w{i}": w for i, w in enumerate(self.best_weights)})
            if self.weights_path.exists():
                os.replace(self.weights_path, self.previous_path)
            os.replace(tmp, self.weights_path)


def _schedule_callbacks(prepared: Prepared, monitor: str, verbose: int) -> list[keras.callbacks.Callback]:
    recipe = prepared.recipe
    patience = max(1, recipe.patience // 2) if recipe.patience else PLATEAU_PATIENCE
    return schedule_callbacks(recipe.schedule, monitor=monitor, patience=patience, verbose=verbose)


# -- fit and evaluate --------------------------------------------------------------------------------------
def fit(prepared: Prepared, *, callbacks: Sequence[keras.callbacks.Callback] = (),
        folder_callbacks: Sequence[keras.callbacks.Callback] = (), epochs: int | None = None,
        initial_epoch: int = 0, history: Mapping[str, Sequence[float]] | None = None, epochs_done: int = 0,
        early_stopping_path: str | os.PathLike | None = None, x: Any = None, y: Any = None,
        validation_data: Any = "prepared", verbose: int = 1) -> keras.callbacks.History:
    """Train ``prepared.trainer`` for the recipe's epochs (or ``epochs``) with the standard callbacks.

    Callbacks, in order: :class:`EpochSeeds`, ``callbacks`` (yours, KerasTuner's), the NaN watch and
    ``TerminateOnNaN``, :class:`EarlyStopping` (when ``recipe.patience``; kept at ``early_stopping_path``),
    the plateau schedule, then ``folder_callbacks`` (a run folder's checkpoint, history and backup, last so
    that an epoch is finished only once they are written). ``history``/``epochs_done``: the finished epochs
    of a resumed run, for early stopping's and the plateau's counters. ``x``/``y``: other training data
    (arrays or a dataset) instead of ``prepared.train_data``; ``validation_data=None``: no validation.
    Raises :class:`TrainingDiverged` when the loss turns NaN or infinite.
    """
    recipe = prepared.recipe
    validation = prepared.validation_data if isinstance(validation_data, str) else validation_data
    monitor = "val_loss" if validation is not None else "loss"
    watch = _Watch()
    ema = EMAWeights() if recipe.ema else None
    listed = [prepared.epoch_seeds, *([ema.swap_in] if ema else [])]
    if prepared.local is not None:  # exact validation on the one-device copy, before anything reads val_loss
        listed.append(LocalValidation(prepared.local, validation))
        validation = None
    listed += [*callbacks, watch, keras.callbacks.TerminateOnNaN()]
    if recipe.patience is not None and validation is not None:
        listed.append(EarlyStopping(recipe.patience, early_stopping_path, verbose=1 if verbose else 0,
                                    read_only=not is_writer()))
    listed += _schedule_callbacks(prepared, monitor, 1 if verbose else 0)
    for callback in listed:
        if history is not None and hasattr(callback, "resume"):
            callback.resume(history, epochs_done)
    folder = list(folder_callbacks)
    if ema is not None:  # the trained weights back before the backup (or last)
        at = next((i for i, c in enumerate(folder) if isinstance(c, keras.callbacks.BackupAndRestore)), len(folder))
        folder.insert(at, ema.swap_out)
    if prepared.distribution is not None and folder:  # saving makes variables: on one device, in process 0 only
        pause = PauseDistribution()
        folder = [pause, *folder, pause.resume]
    listed += folder
    data: dict[str, Any] = {"x": prepared.train_data if x is None else x, "shuffle": False}
    if x is not None and not _is_dataset(x):
        data.update(y=y, batch_size=recipe.batch_size, shuffle=True)
    with prepared.distributed():
        result = prepared.trainer.fit(**data, validation_data=validation, epochs=epochs or recipe.epochs,
                                      initial_epoch=initial_epoch, callbacks=listed, verbose=verbose)
    if prepared.local is not None:  # early stopping's best weights, EMA's average: into the copy too
        prepared.local.sync(prepared.trainer)
    ensure_finite(result.history.get("loss", []), watch.diverged_at, recipe, initial_epoch)
    return result


class PauseDistribution(keras.callbacks.Callback):
    """No Keras distribution from this callback's hooks to :attr:`resume`'s (train begin, epoch end, train end).

    A run folder's callbacks save models, and Keras' saving makes a throwaway optimizer whose variables a
    distribution would place on every process's devices, a step the other processes never take; between
    the two they run on one device (the distributed variables keep their own placement).
    """

    def __init__(self) -> None:
        super().__init__()
        paused = self._paused = contextlib.ExitStack()  # holds recipes.distribute.without_distribution

        class _Resume(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                paused.close()

            def on_epoch_end(self, epoch, logs=None):
                paused.close()

            def on_train_end(self, logs=None):
                paused.close()

        self.resume = _Resume()

    def _pause(self) -> None:
        self._paused.enter_context(without_distribution())

    def on_train_begin(self, logs=None):
        self._pause()

    def on_epoch_end(self, epoch, logs=None):
        self._pause()

    def on_train_end(self, logs=None):
        self._pause()


class LocalValidation(keras.callbacks.Callback):
    """At every epoch's end: the trained weights into the one-device copy, and its exact ``val_*`` metrics
    into the epoch's logs (a distributed run validates here instead of inside ``fit``)."""

    def __init__(self, local: LocalCopy, validation_data: Any = None) -> None:
        super().__init__()
        self.local, self.validation_data = local, validation_data

    def on_epoch_end(self, epoch, logs=None):
        self.local.sync(self.model)
        if self.validation_data is None or logs is None:
            return
        with without_distribution():
            result = self.local.trainer.evaluate(self.validation_data, verbose=0, return_dict=True)
        logs.update({f"val_{key}": float(value) for key, value in result.items()})


def ensure_finite(losses: Sequence[float], diverged_at: tuple[int, int] | None, recipe: Recipe,
                  initial_epoch: int = 0) -> None:
    """Raise :class:`TrainingDiverged` when the watch saw a NaN/inf loss or an epoch's loss is not finite."""
    bad = [i for i, v in enumerate(losses) if not math.isfinite(float(v))]
    if diverged_at is None and not bad:
        return
    epoch, batch = diverged_at if diverged_at is not None else (initial_epoch + bad[0], None)
    where = f"epoch {epoch + 1}" + (f", batch {batch}" if batch is not None else "")
    raise TrainingDiverged(f"training diverged: the loss became NaN or infinite at {where}; lower the learning "
                           f"rate (now {recipe.learning_rate:g}) or set a clipnorm", epoch + 1, batch)


def _is_dataset(x: Any) -> bool:
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict)):
        return False
    return hasattr(x, "element_spec") or hasattr(x, "__next__") or isinstance(x, keras.utils.PyDataset)


def evaluate(prepared: Prepared, x: np.ndarray, y: np.ndarray,
             callbacks: Sequence[keras.callbacks.Callback] = ()) -> dict[str, float]:
    """Loss and accuracy of the (trained) model on ``x``, ``y`` (NaN for an empty split)."""
    if len(x) == 0:
        return {"loss": float("nan"), "accuracy": float("nan")}
    data = make_dataset(x, y, prepared.recipe.batch_size)
    with without_distribution() if prepared.local is not None else contextlib.nullcontext():
        result = prepared.evaluator.evaluate(data, verbose=0, return_dict=True, callbacks=list(callbacks))
    return {"loss": float(result["loss"]), "accuracy": float(result["accuracy"])}


def evaluate_splits(prepared: Prepared, splits: DataSplits | None = None) -> dict[str, float]:
    """``train_loss`` … ``test_accuracy`` of the trained model (and ``test_loss_tta``/``test_accuracy_tta``
    with the recipe's test-time augmentation); the test split is touched here only."""
    splits = splits or prepared.splits
    out: dict[str, float] = {}
    for name, x, y in (("train", splits.x_train, splits.y_train), ("val", splits.x_val, splits.y_val),
                       ("test", splits.x_test, splits.y_test)):
        for key, value in evaluate(prepared, x, y).items():
            out[f"{name}_{key}"] = value
    if prepared.recipe.tta != "none" and len(splits.x_test):
        for key, value in evaluate_tta(prepared, splits.x_test, splits.y_test, splits.value_range).items():
            out[f"test_{key}_tta"] = value
    return out


# -- test-time augmentation --------------------------------------------------------------------------------
TTA_SHIFT_PIXELS = 2


def check_tta(mode: str, domain: str) -> str:
    """``mode`` if its transforms fit ``domain`` (flips: clothes and natural images only), else a ValueError."""
    from recipes.augment import check_policy
    from recipes.recipe import TTA_MODES

    if mode not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {mode!r}")
    if mode != "none":
        try:
            check_policy("flip", domain)
        except ValueError:
            raise ValueError(f"tta={mode!r} does not fit {domain} data: it mirrors the inputs, which only clothes "
                             f"and natural images allow; use tta='none'") from None
    return mode


def tta_views(x: np.ndarray, mode: str, fill: float = 0.0) -> list[np.ndarray]:
    """The inputs TTA averages over: x and its mirror (``flip``), and x shifted ±2 px (``flip+shift``)."""
    views = [x, x[:, :, ::-1]]
    if mode == "flip+shift":
        k = TTA_SHIFT_PIXELS
        left, right = np.full_like(x, fill), np.full_like(x, fill)
        left[:, :, :-k], right[:, :, k:] = x[:, :, k:], x[:, :, :-k]
        views += [left, right]
    return views


def class_probabilities(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's class probabilities on ``x`` in float64 (a softmax of its logits when it outputs logits)."""
    p = model.predict(x, batch_size=batch_size, verbose=0).astype(np.float64)
    if zoo.layers.outputs_logits(model):
        p = np.exp(p - p.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
    return p


def tta_probabilities(model: keras.Model, x: np.ndarray, mode: str, batch_size: int = 256,
                      fill: float = 0.0) -> np.ndarray:
    """The mean over :func:`tta_views` of the model's class probabilities."""
    return mean_over_views(functools.partial(class_probabilities, model, batch_size=batch_size), x, mode, fill)


def mean_over_views(probabilities, x: np.ndarray, mode: str, fill: float = 0.0) -> np.ndarray:
    """The mean over :func:`tta_views` of ``probabilities`` (inputs -> class probabilities)."""
    views = tta_views(np.asarray(x), mode, fill)
    return sum(probabilities(view) for view in views) / len(views)


def evaluate_tta(prepared: Prepared, x: np.ndarray, y: np.ndarray,
                 value_range: tuple[float, float] = (0.0, 255.0)) -> dict[str, float]:
    """Loss and accuracy of the recipe's test-time augmentation on ``x``, ``y``."""
    p = tta_probabilities(prepared.model, x, prepared.recipe.tta, prepared.recipe.batch_size, value_range[0])
    return probability_scores(p, y)


def probability_scores(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Cross-entropy loss and accuracy of class probabilities ``p`` against integer labels ``y``."""
    y = np.asarray(y).astype(int).ravel()
    picked = np.clip(p[np.arange(len(y)), y], keras.config.epsilon(), 1.0)
    return {"loss": float(-np.log(picked).mean()), "accuracy": float((p.argmax(axis=-1) == y).mean())}
