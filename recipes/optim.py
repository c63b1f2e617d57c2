"""Optimizers and learning-rate schedules by name: the ones the course notes compare.

    opt = make_optimizer("momentum", 0.1, schedule="cosine", epochs=30, steps_per_epoch=100)
    callbacks = schedule_callbacks("plateau", patience=3)   # [] for every schedule but "plateau"

Optimizers (``OPTIMIZERS``):

=============  ==========================================================================
``sgd``        plain SGD, ``w -= lr·g``
``momentum``   SGD with momentum 0.9 (heavy ball)
``nesterov``   SGD with Nesterov momentum 0.9
``rmsprop``    RMSprop (Keras defaults: rho 0.9)
``adam``       Adam (β1 0.9, β2 0.999)
``adamw``      Adam with decoupled weight decay (``weight_decay``)
``adagrad``    Adagrad
``adadelta``   Adadelta
=============  ==========================================================================

Schedules (``SCHEDULES``), over ``epochs·steps_per_epoch`` optimizer steps:

=============  ==========================================================================
``constant``   the learning rate all along
``step``       ×0.1 at 50 % and again at 75 % of training (``PiecewiseConstantDecay``),
               the ResNet paper's 32k/48k-of-64k iterations
``cosine``     ``CosineDecay`` from ``lr`` to 0 over the whole run
``plateau``    constant in the optimizer; a ``ReduceLROnPlateau`` callback (from
               :func:`schedule_callbacks`) divides it by 10 when ``val_loss`` stalls
=============  ==========================================================================

Warm-up (``warmup_steps``): the rate rises linearly from 0 over the first steps into the schedule — for
``cosine`` Keras' own ``CosineDecay(warmup_target=, warmup_steps=)`` (the decay then spans the remaining
steps), for ``constant`` and ``step`` :class:`LinearWarmup` (the step boundaries stay where they were);
``plateau`` takes none. EMA (``ema``): the optimizer keeps an exponential moving average of the weights
(Keras' ``use_ema`` / ``ema_momentum``); ``recipes.pipeline`` evaluates and saves the averaged weights.
The decay warms up as in TensorFlow's ``ExponentialMovingAverage(num_updates=)``: step t uses
``min(ema, (1 + t) / (10 + t))``, so the average forgets the initial weights in a few hundred steps
instead of ``1 / (1 - ema)`` (Keras' fixed 0.999 keeps 65 % of the first step's weights after 430 steps:
the validation of a run's first epochs, and of every short run, then looked at an untrained model).

Weight decay. ``weight_decay`` is accepted by ``sgd``, ``momentum``, ``nesterov`` (as Keras's decoupled
decay, ``w -= lr·wd·w`` after the gradient step) and ``adamw``. For plain SGD that update equals an L2
penalty ``λ·Σw²`` with **λ = wd / 2** (``d(λw²)/dw = 2λw``), so ``zoo.Regularization(l2=wd/2)`` and
``make_optimizer("sgd", lr, weight_decay=wd)`` train the same model. With momentum the two differ
slightly (the L2 gradient goes through the momentum buffer, Keras's decay does not); the papers'
Caffe/Torch "weight decay" was the L2 (coupled) form, which is why the recipe presets translate a
paper's weight decay into ``Regularization.l2 = wd / 2`` and leave the optimizer's at 0. Biases and
batch-norm γ/β are excluded from the optimizer's decay, as they are from the L2 penalty. Adaptive
optimizers other than AdamW refuse ``weight_decay`` (for them decoupled decay is AdamW; use it, or an L2 λ).
"""

from __future__ import annotations

import math
import types
from typing import Any, Mapping, Sequence

import keras

from recipes.choices import (CONVENTIONAL_LEARNING_RATES, OPTIMIZERS, SCHEDULES,  # noqa: F401
                             WEIGHT_DECAY_OPTIMIZERS, _check_name, _check_positive_int, check_learning_rate)

__all__ = ["OPTIMIZERS", "SCHEDULES", "WEIGHT_DECAY_OPTIMIZERS", "CONVENTIONAL_LEARNING_RATES", "make_optimizer", "make_schedule",
           "schedule_callbacks", "check_learning_rate", "LinearWarmup", "PlateauSchedule"]


MOMENTUM = 0.9
STEP_FRACTIONS = (0.5, 0.75)   # where the "step" schedule multiplies the rate by STEP_FACTOR
STEP_FACTOR = 0.1
PLATEAU_FACTOR = 0.1
PLATEAU_PATIENCE = 3
NO_DECAY_NAMES = ("bias", "gamma", "beta")


@keras.saving.register_keras_serializable(package="recipes")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``after(step)`` scaled by ``min(1, (step + 1) / warmup_steps)``: a linear rise into a schedule or rate."""

    def __init__(self, after: Any, warmup_steps: int) -> None:
        self.after, self.warmup_steps = after, int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rate = self.after(step) if callable(self.after) else keras.ops.cast(self.after, "float32")
        return rate * keras.ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))

    def get_config(self) -> dict[str, Any]:
        after = keras.optimizers.schedules.serialize(self.after) if callable(self.after) else self.after
        return {"after": after, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LinearWarmup":
        after = config["after"]
        if isinstance(after, dict):
            after = keras.optimizers.schedules.deserialize(after)
        return cls(after, config["warmup_steps"])


def make_schedule(learning_rate: float, schedule: str = "constant", *, epochs: int = 1,
                  steps_per_epoch: int = 1,
                  warmup_steps: int = 0) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate an optimizer is given: a float (``constant``, ``plateau``) or a Keras schedule,
    with ``warmup_steps`` of linear warm-up (none for ``plateau``)."""
    lr = check_learning_rate(learning_rate)
    _check_name("schedule", schedule, SCHEDULES)
    total = _check_positive_int("epochs", epochs) * _check_positive_int("steps_per_epoch", steps_per_epoch)
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or not 0 <= warmup_steps < total:
        raise ValueError(f"warmup_steps must be an integer in [0, {total}) (the run's steps), got {warmup_steps!r}")
    if warmup_steps and schedule == "plateau":
        raise ValueError("the plateau schedule takes no warm-up (ReduceLROnPlateau changes a plain rate)")
    if schedule == "plateau":
        return lr
    if schedule == "cosine":
        if warmup_steps:
            return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=total - warmup_steps, alpha=0.0,
                                                          warmup_target=lr, warmup_steps=warmup_steps)
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total, alpha=0.0)
    if schedule == "constant":
        rate = lr
    else:  # step: boundaries strictly increasing even for a very short run
        first = max(1, int(round(STEP_FRACTIONS[0] * total)))
        second = max(first + 1, int(round(STEP_FRACTIONS[1] * total)))
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries=[first, second], values=[lr, lr * STEP_FACTOR, lr * STEP_FACTOR ** 2])
    return LinearWarmup(rate, warmup_steps) if warmup_steps else rate


def make_optimizer(name: str, learning_rate: float, *, schedule: str = "constant", epochs: int = 1,
                   steps_per_epoch: int = 1, weight_decay: float = 0.0, clipnorm: float | None = None,
                   warmup_steps: int = 0, ema: float = 0.0) -> keras.optimizers.Optimizer:
    """A fresh Keras optimizer by name (see ``OPTIMIZERS``) with its learning-rate schedule.

    Args:
        name: one of ``OPTIMIZERS``.
        learning_rate: the initial learning rate, a finite number > 0.
        schedule: one of ``SCHEDULES``; ``plateau`` also needs :func:`schedule_callbacks` in ``fit``.
        epochs, steps_per_epoch: the length of training, for the ``step`` and ``cosine`` schedules.
        weight_decay: decoupled decay ``>= 0`` for ``sgd``/``momentum``/``nesterov`` (= L2 λ·2 for plain
            SGD) and ``adamw``; ``adamw`` with 0 uses Keras's default 0.004.
        clipnorm: clip each gradient to this L2 norm (``> 0``) or None.
        warmup_steps: linear warm-up steps into the schedule (see :func:`make_schedule`).
        ema: decay in [0, 1) of the weights' moving average the optimizer keeps (0: none).
    """
    _check_name("optimizer", name, OPTIMIZERS)
    rate = make_schedule(learning_rate, schedule, epochs=epochs, steps_per_epoch=steps_per_epoch,
                         warmup_steps=warmup_steps)
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) \
            or not math.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    weight_decay = float(weight_decay)
    if weight_decay > 0 and name not in WEIGHT_DECAY_OPTIMIZERS:
        raise ValueError(
            f"weight_decay applies to {', '.join(WEIGHT_DECAY_OPTIMIZERS)}, not {name!r}; "
            f"use adamw, or an L2 penalty (Regularization.l2 = weight_decay / 2)"
        )
    if clipnorm is not None:
        if isinstance(clipnorm, bool) or not isinstance(clipnorm, (int, float)) \
                or not math.isfinite(clipnorm) or clipnorm <= 0:
            raise ValueError(f"clipnorm must be a finite number > 0 or None, got {clipnorm!r}")
        clipnorm = float(clipnorm)
    common: dict[str, Any] = {"learning_rate": rate, "clipnorm": clipnorm}
    if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 <= ema < 1:
        raise ValueError(f"ema must be a number in [0, 1) (0: off), got {ema!r}")
    if ema:
        common.update(use_ema=True, ema_momentum=float(ema))
    if weight_decay > 0:
        common["weight_decay"] = weight_decay

    if name == "sgd":
        optimizer = keras.optimizers.SGD(**common)
    elif name == "momentum":
        optimizer = keras.optimizers.SGD(momentum=MOMENTUM, **common)
    elif name == "nesterov":
        optimizer = keras.optimizers.SGD(momentum=MOMENTUM, nesterov=True, **common)
    elif name == "rmsprop":
        optimizer = keras.optimizers.RMSprop(**common)
    elif name == "adam":
        optimizer = keras.optimizers.Adam(**common)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(**common)
    elif name == "adagrad":
        optimizer = keras.optimizers.Adagrad(**common)
    else:
        optimizer = keras.optimizers.Adadelta(**common)
    if optimizer.weight_decay:
        # Biases and BN γ/β are not decayed, as they are not L2-penalized (DESIGN.md).
        optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    if ema:
        # this instance only: its config (hence saving and loading) stays the Keras optimizer's own
        optimizer._update_model_variables_moving_average = types.MethodType(_warm_ema_update, optimizer)
    return optimizer


def _warm_ema_update(self: keras.optimizers.Optimizer, trainable_variables) -> None:
    """Keras' EMA update (the first step copies the weights) with the decay ``min(ema, (1 + t) / (10 + t))``."""
    ops = keras.ops
    step = ops.cast(self.iterations, "float32")
    decay = ops.cast(ops.not_equal(self.iterations, 0), "float32") * ops.minimum(
        self.ema_momentum, (1.0 + step) / (10.0 + step))
    for var, average in zip(trainable_variables, self._model_variables_moving_average):
        if average is not None:
            rate = ops.cast(decay, var.dtype)
            average.assign(ops.add(ops.multiply(rate, average), ops.multiply(ops.subtract(1, rate), var)))


def schedule_callbacks(schedule: str, *, monitor: str = "val_loss", patience: int = PLATEAU_PATIENCE,
                       factor: float = PLATEAU_FACTOR, min_lr: float = 0.0,
                       verbose: int = 0) -> list[keras.callbacks.Callback]:
    """The callbacks a schedule needs in ``fit``: ``[PlateauSchedule]`` (a ReduceLROnPlateau that can resume)
    for ``plateau``, else ``[]``."""
    _check_name("schedule", schedule, SCHEDULES)
    if schedule != "plateau":
        return []
    _check_positive_int("plateau patience", patience)
    return [PlateauSchedule(monitor=monitor, mode="min", factor=factor, patience=patience, min_lr=min_lr,
                            verbose=verbose)]


class PlateauSchedule(keras.callbacks.ReduceLROnPlateau):
    """The ``plateau`` schedule: lr ÷ 10 when val_loss stalls; :meth:`resume` replays its counters."""

    def resume(self, history: Mapping[str, Sequence[float]], epochs_done: int) -> None:
        self._reset()
        if self.monitor_op is None:
            self._set_monitor_op()
        for loss in history.get(self.monitor, [])[:epochs_done]:  # Keras' on_epoch_end, the lr left alone
            if self.in_cooldown():
                self.cooldown_counter -= 1
                self.wait = 0
            if self._is_improvement(loss, self.best):
                self.best, self.wait = loss, 0
            elif not self.in_cooldown():
                self.wait += 1
                if self.wait >= self.patience:
                    self.cooldown_counter, self.wait = self.cooldown, 0
        self._resumed = epochs_done > 0

    def on_train_begin(self, logs=None):
        if not getattr(self, "_resumed", False):
            super().on_train_begin(logs)

