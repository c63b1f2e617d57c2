"""``ZooHyperModel``: a KerasTuner HyperModel over any registered zoo model, trained by the one training path.

``build(hp)`` draws the space (λ, keep-prob, learning rate, …); the drawn values are Recipe field names and
become the trial's Recipe through ``Recipe.with_overrides`` (:meth:`ZooHyperModel.trial_recipe`), which
``recipes.pipeline.prepare`` turns into a compiled model — with its Normalization (adapted on the training
split only) and augmentation when the hypermodel has data splits, the bare registry builder otherwise.
``fit(hp, model, ...)`` is ``recipes.pipeline.fit`` (the recipe's early stopping and schedule, the
seeded shuffle); a diverging trial (NaN loss) is reported as failed.

A trial's randomness is a function of the recipe's seed alone (``prepare`` seeds before building, the
shuffle and the random layers are keyed by (seed, epoch)), so a trial that KerasTuner reruns after a kill
(it starts an unfinished trial again from its first epoch) ends as the uninterrupted one would have.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping, Sequence

import keras
import keras_tuner as kt

import zoo
from recipes import pipeline
from recipes.recipe import Recipe
EXECUTION_SEED_STRIDE = 1009  # execution i of a trial trains with seed + i * this

from tuning.space import BUILDER_RESERVED, FLOAT_NAMES, INT_NAMES, SearchSpace, make_space

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


def _check_not_distributed(recipe: Recipe) -> None:
    if recipe.distribute != "none":
        raise ValueError(f"Recipe.distribute={recipe.distribute!r} inside a trial is not supported: a search "
                         f"spreads over devices with KerasTuner's chief and workers (one trial per process); "
                         f"use distribute='none'")


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
            augmentation, regularization, clip norm, early-stopping patience, …) are the fixed values of
            the space and the rest of the training set-up. Without one: ``Recipe(model_name,
            batch_size=64)`` (Adam 1e-3, constant rate, no regularization, no early stopping).
        space, fixed: change the default space (see :mod:`tuning.space`): ``space={"keep_prob": (0.6,
            0.9)}`` narrows a range, ``space={"optimizer": ["adam", "momentum"]}`` opens a choice,
            ``fixed={"batch_norm": False}`` fixes one, and any builder argument (``activation`` …)
            extends the space.
        grid: give every range a step (what the grid tuner needs).
        epochs: the training length a learning-rate schedule spans (default: the recipe's, else 1).
        n_train: the number of training examples, for the schedule's steps per epoch (default: from
            ``splits``).
        seed: the recipe's seed (weights, shuffle, dropout and augmentation); default the recipe's, else 0.
        **fixed_builder_kwargs: fixed keyword arguments for the builder (``activation="tanh"`` …).

    Attributes:
        space: the :class:`tuning.space.SearchSpace`.
        last_values: the values of the last ``build(hp)`` call.
    """

    def __init__(self, model_name: str, input_shape: Sequence[int] | None = None, classes: int | None = None,
                 *, splits: Any = None, recipe: Any = None, space: Mapping[str, Any] | None = None,
                 fixed: Mapping[str, Any] | None = None, grid: bool = False, epochs: int | None = None,
                 n_train: int | None = None, seed: int | None = None, name: str | None = None,
                 folds: int = 1, objective: tuple[str, str] = ("val_accuracy", "max"),
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
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1 or (folds > 1 and splits is None):
            raise ValueError(f"folds must be an integer >= 1 (> 1 needs data splits), got {folds!r}")
        self.folds, self.objective = folds, tuple(objective)
        self.execution = 0  # which execution of a trial is built (the tuner sets it)
        if recipe is not None and not isinstance(recipe, Recipe):
            raise ValueError(f"recipe must be a recipes.recipe.Recipe or None, got {type(recipe).__name__}")
        self.epochs = int(epochs if epochs is not None else getattr(recipe, "epochs", 1) or 1)
        self.recipe = recipe if recipe is not None else Recipe(model=model_name, batch_size=64, epochs=self.epochs)
        if seed is not None:
            self.recipe = self.recipe.with_overrides(seed=seed)
        _check_not_distributed(self.recipe)
        self._prepared: pipeline.Prepared | None = None
        if splits is not None:
            self.input_shape = tuple(splits.input_shape)
            self.classes = int(splits.classes)
            self.n_train = int(len(splits.x_train)) if n_train is None else int(n_train)
        else:
            self.input_shape = tuple(input_shape) if input_shape is not None else tuple(self.entry.small_input_shape)
            self.classes = 10 if classes is None else int(classes)
            self.n_train = n_train
        self.seed = self.recipe.seed
        self.fixed_builder_kwargs = dict(fixed_builder_kwargs)
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
            from recipes.augment import check_policy, default_policy

            check_policy(default_policy(splits.domain) if policy == "auto" else policy, splits.domain)
        self.last_values: dict[str, Any] = {}

    # -- pickling (a trial in a child process gets the hypermodel pickled) -------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("build", "_build", "_prepared"):  # bound methods (set again by __setstate__), tf objects
            state.pop(key, None)
        state["recipe"] = ("__recipe__", self.recipe.to_dict())  # Recipe.model_kwargs is a mappingproxy
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        recipe = state.get("recipe")
        if isinstance(recipe, tuple) and len(recipe) == 2 and recipe[0] == "__recipe__":
            state["recipe"] = Recipe.from_dict(recipe[1])
        self.__dict__.update(state)
        self._prepared = None
        self._build = self.build
        self.build = self._build_wrapper

    # -- the recipe's fixed values ----------------------------------------------------------------
    def _recipe_defaults(self) -> dict[str, Any]:
        recipe = self.recipe
        return {"optimizer": recipe.optimizer, "batch_norm": recipe.regularization.batch_norm,
                "augmentation": recipe.augmentation, "batch_size": recipe.batch_size,
                "learning_rate": recipe.learning_rate}

    # -- one trial --------------------------------------------------------------------------------
    def trial_recipe(self, values: Mapping[str, Any]) -> Recipe:
        """The Recipe of a trial's values: ``Recipe.with_overrides`` of them (``penalty`` is the space's own
        name, already resolved into l1/l2 by the draw; builder arguments go to ``model_kwargs``)."""
        changes = {k: v for k, v in strip_tuner_keys(values).items() if k != "penalty"}
        builder = {k: changes.pop(k) for k in list(changes) if k in self.space.builder_args}
        changes["model_kwargs"] = {**self.fixed_builder_kwargs, **builder}
        for name in FLOAT_NAMES:
            if name in changes:
                changes[name] = float(changes[name])
        for name in INT_NAMES:
            if name in changes:
                changes[name] = int(changes[name])
        return self.recipe.with_overrides(epochs=self.epochs, **changes)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """The compiled model ``fit`` trains (``recipes.pipeline.prepare`` of :meth:`trial_recipe`)."""
        values = self.space.draw(hp)
        self.last_values = dict(values)
        recipe = self.trial_recipe(values)
        _check_not_distributed(recipe)
        if self.execution:  # --executions-per-trial: every execution after the first on its own seed
            recipe = recipe.with_overrides(seed=recipe.seed + EXECUTION_SEED_STRIDE * self.execution)
        if self.splits is not None:
            prepared = pipeline.prepare(recipe, self.splits)
        else:
            prepared = pipeline.prepare_bare(recipe, self.input_shape, self.classes, self.n_train)
        self._prepared = prepared
        return prepared.trainer

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any):
        """``recipes.pipeline.fit`` of the model :meth:`build` returned; a NaN/inf loss fails the trial.

        With data splits and no ``x``, trains on the recipe's training pipeline (seeded shuffle, the drawn
        augmentation) and validates on the validation split unless ``validation_data`` is given (``None``:
        no validation). Takes ``epochs``, ``initial_epoch``, ``callbacks``, ``verbose`` as ``model.fit``.
        Returns the History, with an ``epochs`` entry (the last epoch reached) for the trial table.
        """
        prepared = self._prepared
        if prepared is None or prepared.trainer is not model:
            raise ValueError("ZooHyperModel.fit trains the model its own build(hp) returned last")
        names = ("x", "y", "validation_data", "epochs", "initial_epoch", "callbacks", "verbose")
        given = dict(zip(names, args))
        unknown = sorted(set(kwargs) - set(names) - {"shuffle", "batch_size"})  # the recipe sets those two
        if unknown:
            raise ValueError(f"ZooHyperModel.fit takes {', '.join(names)}; not {', '.join(unknown)}")
        given.update({k: v for k, v in kwargs.items() if k in names})
        if given.get("x") is None and prepared.splits is None:
            raise ValueError("a ZooHyperModel without data splits needs training data: search(x, y, ...)")
        first = int(given.get("initial_epoch", 0))
        if self.folds > 1 and given.get("x") is None:
            return self._fit_folds(hp, prepared.recipe, given)
        try:
            history = pipeline.fit(prepared, callbacks=list(given.get("callbacks") or []),
                                   epochs=given.get("epochs"), initial_epoch=first, x=given.get("x"),
                                   y=given.get("y"), validation_data=given.get("validation_data", "prepared"),
                                   verbose=given.get("verbose", 1))
        except pipeline.TrainingDiverged as error:
            raise kt.errors.FailedTrialError(f"diverged: {error} (learning_rate={hp.values.get('learning_rate')}); "
                                             f"trial recorded as FAILED") from None
        losses = history.history.get("loss", [])
        if not losses:
            raise kt.errors.FailedTrialError("the training loss was unavailable; trial recorded as FAILED")
        history.history["epochs"] = [float(first + len(losses))] * len(losses)
        return history

    def _fit_folds(self, hp: kt.HyperParameters, recipe: Recipe, given: Mapping[str, Any]) -> dict[str, float]:
        """K-fold cross-validation on train + validation (``recipes.crossval.fold_splits``: stratified,
        seeded, as ``python -m recipes.lenet5 --folds K``): a fresh model per fold,
        the fold's best epoch scored; returns the mean (what the oracle ranks by), its standard error
        and every fold's score (``tuning.report.repeat_metrics``)."""
        from recipes.crossval import fold_splits
        from tuning.report import repeat_metrics

        runs = []
        for fold in fold_splits(self.splits, self.folds, recipe.seed):  # the recipes' own K-fold cut
            prepared = pipeline.prepare(recipe, fold)
            try:
                history = pipeline.fit(prepared, callbacks=list(given.get("callbacks") or []),
                                       epochs=given.get("epochs"), verbose=given.get("verbose", 1))
            except pipeline.TrainingDiverged as error:
                raise kt.errors.FailedTrialError(f"diverged in a fold: {error} (learning_rate="
                                                 f"{hp.values.get('learning_rate')}); trial recorded as FAILED") from None
            losses = history.history.get("loss", [])
            history.history["epochs"] = [float(len(losses))] * len(losses)
            runs.append(history.history)
        return repeat_metrics(runs, *self.objective, kind="fold")
