"""``--tuner tpe``: a KerasTuner Oracle whose values come from Optuna's TPE sampler (ask/tell).

KerasTuner has no Tree-structured Parzen Estimator (Bergstra et al. 2011); Optuna's ``TPESampler`` is the
well-kept one. The oracle stays KerasTuner's — trial files, resume and chief/worker mode are unchanged —
and only ``populate_space`` is Optuna's: for every new trial an in-memory study is rebuilt from the
oracle's own trials (finished ones told with their scores, failed ones as failures, running ones as
running so the constant liar spreads parallel workers), asked once, and discarded. Nothing of Optuna's
is saved, so a resumed search rebuilds the sampler's history from the trial files it already has, and a
draw depends only on the trials so far and the oracle's seed state (saved in ``oracle.json``).

Optuna is an optional extra: ``pip install -e ".[optuna]"``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras_tuner as kt

__all__ = ["TPEOracle", "TPESearch", "require_optuna", "INSTALL_HINT", "suggest", "distributions"]

INSTALL_HINT = 'pip install -e ".[optuna]"'
DUPLICATE_RETRIES = 20


def require_optuna(what: str = "--tuner tpe"):
    """The ``optuna`` module, or ValueError naming the install command."""
    try:
        import optuna
    except ImportError:
        raise ValueError(f"{what} needs Optuna, an optional extra: {INSTALL_HINT} (or pip install optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _distribution(hp: Any):
    """The Optuna distribution of one KerasTuner hyperparameter (None for a Fixed one)."""
    from optuna import distributions as d

    if isinstance(hp, kt.engine.hyperparameters.Fixed):
        return None
    if isinstance(hp, kt.engine.hyperparameters.Boolean):
        return d.CategoricalDistribution([False, True])
    if isinstance(hp, kt.engine.hyperparameters.Choice):
        return d.CategoricalDistribution(list(hp.values))
    log = getattr(hp, "sampling", "linear") == "log"
    step = getattr(hp, "step", None)
    if isinstance(hp, kt.engine.hyperparameters.Int):
        return d.IntDistribution(hp.min_value, hp.max_value, log=log, step=1 if log or not step else int(step))
    if isinstance(hp, kt.engine.hyperparameters.Float):
        return d.FloatDistribution(hp.min_value, hp.max_value, log=log, step=None if log or not step else step)
    raise ValueError(f"hyperparameter {hp.name} of type {type(hp).__name__} has no TPE distribution")


def distributions(space: kt.HyperParameters) -> dict[str, Any]:
    """name -> Optuna distribution for every non-fixed hyperparameter of a KerasTuner space."""
    return {hp.name: dist for hp in space.space if (dist := _distribution(hp)) is not None}


def _replayed(trial: Any, dists: dict[str, Any], optuna):
    """A KerasTuner trial as an Optuna ``FrozenTrial``; None when its values fall outside the space."""
    state = optuna.trial.TrialState
    params = {k: v for k, v in trial.hyperparameters.values.items() if k in dists}
    status, score = str(trial.status), trial.score
    try:
        if status == "COMPLETED" and score is not None and math.isfinite(float(score)):
            return optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                             value=float(score), state=state.COMPLETE)
        return optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                         state=state.RUNNING if status == "RUNNING" else state.FAIL)
    except ValueError:  # a value outside today's space (the space was widened or narrowed on resume)
        return None


def _ask(asked: Any, name: str, dist: Any) -> Any:
    """``asked.suggest_*`` for one Optuna distribution."""
    from optuna import distributions as d

    if isinstance(dist, d.CategoricalDistribution):
        return asked.suggest_categorical(name, list(dist.choices))
    if isinstance(dist, d.IntDistribution):
        return asked.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return asked.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def suggest(space: kt.HyperParameters, trials: list[Any], objective: kt.Objective, *, seed: int,
            n_startup_trials: int) -> dict[str, Any]:
    """One TPE draw over ``space`` given the KerasTuner ``trials`` so far (conditional scopes honoured)."""
    optuna = require_optuna()
    dists = distributions(space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning for constant_liar
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, constant_liar=True)
    study = optuna.create_study(direction="maximize" if objective.direction == "max" else "minimize",
                                sampler=sampler)
    for trial in trials:
        frozen = _replayed(trial, dists, optuna)
        if frozen is not None:
            try:
                study.add_trial(frozen)
            except ValueError:
                pass
    asked = study.ask()
    hps = kt.HyperParameters()
    for hp in space.space:
        hps.merge([hp])
        if not hps.is_active(hp):
            continue
        dist = dists.get(hp.name)
        hps.values[hp.name] = hp.value if dist is None else _ask(asked, hp.name, dist)
    return dict(hps.values)


class TPEOracle(kt.Oracle):
    """A KerasTuner Oracle that asks Optuna's ``TPESampler`` for every new trial.

    Args:
        n_startup_trials: random draws before TPE models the results (default
            ``max(3, min(10, max_trials // 4))``: Optuna's 10 is a third of a 30-trial search).
        Others as ``keras_tuner.Oracle``.
    """

    def __init__(self, objective=None, max_trials=10, seed=None, n_startup_trials: int | None = None, **kwargs):
        require_optuna()
        super().__init__(objective=objective, max_trials=max_trials, seed=seed, **kwargs)
        self.n_startup_trials = n_startup_trials or max(3, min(10, (max_trials or 12) // 4))

    def populate_space(self, trial_id):
        seen = [t for t in self.trials.values() if t.trial_id != trial_id]
        for _ in range(DUPLICATE_RETRIES):
            values = suggest(self.hyperparameters, seen, self.objective, seed=self._seed_state,
                             n_startup_trials=self.n_startup_trials)
            self._seed_state += 1
            if not self._duplicate(values):
                return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}
        values = self._random_values()  # a small discrete space TPE keeps proposing again
        if values is None:
            return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
        return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}

    def get_state(self):
        state = super().get_state()
        state["n_startup_trials"] = self.n_startup_trials
        return state

    def set_state(self, state):
        super().set_state(state)
        self.n_startup_trials = state.get("n_startup_trials", self.n_startup_trials)


class TPESearch(kt.Tuner):
    """A KerasTuner ``Tuner`` over a :class:`TPEOracle` (built like ``keras_tuner.RandomSearch``)."""

    def __init__(self, hypermodel=None, objective=None, max_trials=10, seed=None, hyperparameters=None,
                 tune_new_entries=True, allow_new_entries=True, max_retries_per_trial=0,
                 max_consecutive_failed_trials=3, n_startup_trials=None, **kwargs):
        self.seed = seed
        oracle = TPEOracle(objective=objective, max_trials=max_trials, seed=seed, hyperparameters=hyperparameters,
                           tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
                           max_retries_per_trial=max_retries_per_trial,
                           max_consecutive_failed_trials=max_consecutive_failed_trials,
                           n_startup_trials=n_startup_trials)
        super().__init__(oracle, hypermodel, **kwargs)
