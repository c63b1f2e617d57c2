"""``ZooHyperModel``: a KerasTuner HyperModel over any registered zoo model.

``build(hp)`` draws the space (λ, keep-prob, learning rate, …), makes a ``zoo.Regularization`` of it,
builds the model — through ``recipes.modeling.build_model`` when it has data splits, so the model carries
its Normalization (adapted on the training split only) and augmentation; with the bare registry builder
otherwise — and compiles it with the drawn optimizer and learning rate. ``fit(hp, model, ...)`` trains
with the drawn batch size, stops a diverging trial (NaN loss) and reports it as failed.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Mapping, Sequence

import keras
import keras_tuner as kt
import numpy as np

import zoo
from tuning.space import BUILDER_RESERVED, SearchSpace, make_space

__all__ = ["ZooHyperModel", "builder_defaults", "TUNER_KEYS", "strip_tuner_keys"]

# What Hyperband adds to a trial's hyperparameters (not the model's own).
TUNER_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")


def strip_tuner_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without Hyperband's ``tuner/...`` bookkeeping entries."""
    return {k: v for k, v in values.items() if not str(k).startswith("tuner/")}


def builder_defaults(model_name: str) -> dict[str, Any]:
    """The keyword arguments of ``model_name``'s builder that a search may tune, with their defaults.

    The keras.applications arguments (``BUILDER_RESERVED``) and a variant's fixed arguments are left out.
    """
    entry = zoo.get_entry(model_name)
    out = {}
    for name, param in inspect.signature(entry.builder).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or name in BUILDER_RESERVED \
                or name in entry.fixed_kwargs:
            continue
        out[name] = None if param.default is inspect.Parameter.empty else param.default
    return out


def _policies() -> tuple[str, ...]:
    from recipes.augment import POLICIES

    return tuple(dict.fromkeys(["none", "auto", *POLICIES]))


def _optimizers() -> tuple[str, ...]:
    from recipes.optim import OPTIMIZERS

    return tuple(OPTIMIZERS)


class ZooHyperModel(kt.HyperModel):
    """A zoo model whose regularization, optimizer and learning rate a KerasTuner tuner draws.

    Either give data splits (the model gets its Normalization and augmentation, via
    ``recipes.modeling.build_model``)::

        splits = recipes.data.load_data("digits")
        hm = ZooHyperModel("lenet5", splits=splits, space={"keep_prob": (0.6, 0.9)},
                           fixed={"batch_norm": False})

    or only a shape and a class count (the bare builder; you bring normalized data)::

        hm = ZooHyperModel("lenet5", (28, 28, 1), 10, activation="tanh")

    Args:
        model_name: a registered zoo name (``zoo.list_models()``).
        input_shape, classes: the bare model's input shape and class count (taken from ``splits`` when
            given; ``input_shape`` defaults to the registry's ``small_input_shape``).
        splits: a ``recipes.data.DataSplits``.
        recipe: a ``recipes.recipe.Recipe`` whose settings (optimizer, schedule, batch size, epochs,
            augmentation, regularization, clip norm, …) are the fixed values of the space and the rest
            of the training set-up. Without one: Adam, constant rate, batch 64, no batch norm.
        space, fixed: change the default space (see :mod:`tuning.space`): ``space={"keep_prob": (0.6,
            0.9)}`` narrows a range, ``space={"optimizer": ["adam", "momentum"]}`` opens a choice,
            ``fixed={"batch_norm": False}`` fixes one, and any builder argument (``activation`` …)
            extends the space.
        grid: give every range a step (what the grid tuner needs).
        epochs: the training length a learning-rate schedule spans (default: the recipe's, else 1).
        n_train: the number of training examples, for the schedule's steps per epoch (default: from
            ``splits``).
        seed: the seed of the augmentation layers.
        **fixed_builder_kwargs: fixed keyword arguments for the builder (``activation="tanh"`` …).

    Attributes:
        space: the :class:`tuning.space.SearchSpace`.
        last_values: the values of the last ``build(hp)`` call.
    """

    def __init__(self, model_name: str, input_shape: Sequence[int] | None = None, classes: int | None = None,
                 *, splits: Any = None, recipe: Any = None, space: Mapping[str, Any] | None = None,
                 fixed: Mapping[str, Any] | None = None, grid: bool = False, epochs: int | None = None,
                 n_train: int | None = None, seed: int = 0, name: str | None = None,
                 **fixed_builder_kwargs: Any) -> None:
        super().__init__(name=name or f"zoo_{model_name}")
        self.model_name = model_name
        self.entry = zoo.get_entry(model_name)
        tunable_args = builder_defaults(model_name)
        reserved = sorted(set(fixed_builder_kwargs) & set(BUILDER_RESERVED))
        if reserved:
            raise ValueError(f"ZooHyperModel sets {', '.join(reserved)} itself; pass input_shape/classes or splits")
        unknown = sorted(set(fixed_builder_kwargs) - set(tunable_args))
        if unknown:
            raise ValueError(f"{model_name}'s builder has no argument(s) {', '.join(unknown)}; "
                             f"it takes {', '.join(tunable_args) or 'none besides the keras.applications ones'}")
        self.splits = splits
        self.recipe = recipe
        if splits is not None:
            self.input_shape = tuple(splits.input_shape)
            self.classes = int(splits.classes)
            self.n_train = int(len(splits.x_train)) if n_train is None else int(n_train)
        else:
            self.input_shape = tuple(input_shape) if input_shape is not None else tuple(self.entry.small_input_shape)
            self.classes = 10 if classes is None else int(classes)
            self.n_train = n_train
        self.seed = int(seed)
        self.fixed_builder_kwargs = dict(fixed_builder_kwargs)
        self.epochs = int(epochs if epochs is not None else getattr(recipe, "epochs", 1) or 1)
        open_args = {k: v for k, v in tunable_args.items() if k not in fixed_builder_kwargs}
        allowed = {"optimizer": _optimizers(), "augmentation": _policies()}
        self.space: SearchSpace = make_space(space, fixed, defaults=self._recipe_defaults(),
                                             builder_defaults=open_args, allowed=allowed, owner=model_name)
        if grid:
            self.space = self.space.for_grid()
        aug = self.space["augmentation"]
        for policy in (aug.values if hasattr(aug, "values") else (aug.value,)):
            if policy == "none":
                continue
            if splits is None:
                raise ValueError("hyperparameter augmentation needs data splits (ZooHyperModel(..., splits=...)); "
                                 "a bare model has no augmentation layers")
            from recipes.augment import check_policy

            check_policy(self._augmentation(policy), splits.domain)
        self.last_values: dict[str, Any] = {}

    # -- pickling (a trial in a child process gets the hypermodel pickled) -------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("build", "_build"):  # bound methods, set again by __setstate__
            state.pop(key, None)
        recipe = state.get("recipe")
        if recipe is not None and hasattr(recipe, "to_dict"):  # Recipe.model_kwargs is a mappingproxy
            state["recipe"] = ("__recipe__", type(recipe), recipe.to_dict())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        recipe = state.get("recipe")
        if isinstance(recipe, tuple) and len(recipe) == 3 and recipe[0] == "__recipe__":
            state["recipe"] = recipe[1].from_dict(recipe[2])
        self.__dict__.update(state)
        self._build = self.build
        self.build = self._build_wrapper

    # -- the recipe's fixed values ----------------------------------------------------------------
    def _recipe_defaults(self) -> dict[str, Any]:
        recipe = self.recipe
        if recipe is None:
            return {"optimizer": "adam", "batch_norm": False, "augmentation": "none", "batch_size": 64}
        reg = getattr(recipe, "regularization", None)
        return {
            "optimizer": getattr(recipe, "optimizer", "adam"),
            "batch_norm": bool(getattr(reg, "batch_norm", False)),
            "augmentation": getattr(recipe, "augmentation", "none") or "none",
            "batch_size": int(getattr(recipe, "batch_size", 64)),
        }

    # -- one trial's values -----------------------------------------------------------------------
    @staticmethod
    def regularization_of(values: Mapping[str, Any]) -> zoo.Regularization:
        """The ``zoo.Regularization`` of a trial's values (l1/l2 are 0 when the penalty leaves them out)."""
        penalty = values.get("penalty", "l2")
        l2 = float(values.get("l2") or 0.0) if penalty in ("l2", "l1_l2") else 0.0
        l1 = float(values.get("l1") or 0.0) if penalty in ("l1", "l1_l2") else 0.0
        return zoo.Regularization(l1=l1, l2=l2, keep_prob=float(values.get("keep_prob", 1.0)),
                                  batch_norm=bool(values.get("batch_norm", False)))

    def _augmentation(self, name: str) -> str:
        """A policy name; ``auto`` is the data's default policy (``recipes.augment.default_policy``)."""
        if name == "auto" and self.splits is not None:
            from recipes.augment import default_policy

            return default_policy(self.splits.domain)
        return name

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        values = self.space.draw(hp)
        self.last_values = dict(values)
        reg = self.regularization_of(values)
        kwargs = dict(self.fixed_builder_kwargs)
        kwargs.update({name: values[name] for name in self.space.builder_args})
        if self.splits is not None:
            from recipes.modeling import build_model

            precision = self.recipe.precision if self.recipe is not None else "float32"
            model = build_model(self.model_name, self.splits, reg, augmentation=self._augmentation(values["augmentation"]),
                                seed=self.seed, precision=precision, **kwargs)
        else:
            model = self.entry.build(input_shape=self.input_shape, classes=self.classes, regularization=reg,
                                     **kwargs)
        self._compile(model, values, reg)
        return model

    def _steps_per_epoch(self, batch_size: int) -> int:
        return max(1, math.ceil((self.n_train or batch_size) / batch_size))

    def _compile(self, model: keras.Model, values: Mapping[str, Any], reg: zoo.Regularization) -> None:
        steps = self._steps_per_epoch(int(values["batch_size"]))
        recipe = self.recipe
        if recipe is not None:
            try:
                from recipes.train import compile_model
            except ImportError:
                compile_model = None
            if compile_model is not None:
                changes = {"regularization": reg, "optimizer": values["optimizer"],
                           "learning_rate": float(values["learning_rate"]), "batch_size": int(values["batch_size"]),
                           "augmentation": values["augmentation"], "epochs": self.epochs}
                fields = {f.name for f in dataclasses.fields(recipe)}
                trial_recipe = dataclasses.replace(recipe, **{k: v for k, v in changes.items() if k in fields})
                compile_model(model, trial_recipe, steps)
                return
        from recipes.optim import make_optimizer

        optimizer = make_optimizer(values["optimizer"], float(values["learning_rate"]),
                                   schedule=getattr(recipe, "schedule", "constant") or "constant",
                                   epochs=self.epochs, steps_per_epoch=steps,
                                   weight_decay=float(getattr(recipe, "weight_decay", 0.0) or 0.0),
                                   clipnorm=getattr(recipe, "clipnorm", None))
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    # -- training -----------------------------------------------------------------------------------
    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any):
        """``model.fit`` with the drawn batch size; a NaN/inf loss fails the trial (it is not retried).

        With data splits and no ``x``, trains on ``recipes.data.train_dataset`` (shuffled, augmented with
        the drawn policy when augmentation runs in the pipeline) and validates on the validation split
        unless ``validation_data`` is given (``None``: no validation).
        Returns the History, with an ``epochs`` entry (the last epoch reached) for the trial table.
        """
        batch_size = int(hp.get("batch_size")) if "batch_size" in hp.values else int(self._recipe_defaults()["batch_size"])
        if not args and kwargs.get("x") is None and self.splits is not None:
            from recipes.data import make_dataset, train_dataset

            policy = self._augmentation(hp.values.get("augmentation", "none"))
            kwargs.pop("x", None)
            kwargs.pop("y", None)
            args = (train_dataset(self.splits, batch_size, augmentation=policy, seed=self.seed),)
            kwargs["shuffle"] = False  # the pipeline shuffles (seeded, every epoch)
            if "validation_data" not in kwargs:
                kwargs["validation_data"] = make_dataset(self.splits.x_val, self.splits.y_val, batch_size)
        else:
            x = args[0] if args else kwargs.get("x")
            if _is_dataset(x):
                kwargs.setdefault("shuffle", False)
            else:
                kwargs["batch_size"] = batch_size
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if not any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in callbacks):
            callbacks.append(keras.callbacks.TerminateOnNaN())
        schedule = getattr(self.recipe, "schedule", "constant") or "constant"
        if schedule == "plateau" and not any(isinstance(c, keras.callbacks.ReduceLROnPlateau) for c in callbacks):
            from recipes.optim import schedule_callbacks

            patience = getattr(self.recipe, "patience", None)
            monitor = "val_loss" if kwargs.get("validation_data") is not None else "loss"
            callbacks.extend(schedule_callbacks(schedule, monitor=monitor,
                                                **({"patience": max(1, patience // 2)} if patience else {})))
        history = model.fit(*args, callbacks=callbacks, **kwargs)
        losses = [float(v) for v in history.history.get("loss", [])]
        bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
        first = int(kwargs.get("initial_epoch", 0))
        if bad or not losses:
            epoch = first + (bad[0] if bad else 0) + 1
            raise kt.errors.FailedTrialError(
                f"diverged: the training loss became {'NaN/inf' if bad else 'unavailable'} at epoch {epoch} "
                f"(learning_rate={hp.values.get('learning_rate')}); trial recorded as FAILED"
            )
        history.history["epochs"] = [float(first + len(losses))] * len(losses)
        return history


def _is_dataset(x: Any) -> bool:
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict)):
        return False
    return hasattr(x, "element_spec") or hasattr(x, "__next__") or isinstance(x, keras.utils.PyDataset)
