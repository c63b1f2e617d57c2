"""Pruning inside trials: stop a hopeless trial after an epoch, decided by the oracle.

KerasTuner passes no intermediate result to its oracle (``Tuner.on_epoch_end`` is a no-op; keras-tuner
#3, open since 2019). Here the tuner reports the objective after every epoch through the oracle's own
``update_trial`` call, marked with :data:`INTERMEDIATE_KEY`, so it travels unchanged over KerasTuner's
chief/worker gRPC; :func:`install` wraps that call on the oracle (local or chief) to record the value
under ``epoch_<objective>`` in the trial's metrics (saved in ``trial.json``, so a resumed search keeps
the history) and to answer ``STOPPED`` when the pruner says so. The tuner then ends the epoch loop; the
trial ends COMPLETED (scored on the epochs it ran, as Optuna scores a pruned trial on its last value)
with a ``pruned_at_epoch`` metric, and the reports show it as ``PRUNED``.

Two rules, both Optuna's (``optuna.pruners``):

- ``median`` (MedianPruner): after ``warmup_epochs``, prune when the trial's best value so far is worse
  than the median of the best-so-far values at the same epoch of the completed, unpruned trials (at
  least ``startup_trials`` of them).
- ``halving`` (SuccessiveHalvingPruner, asynchronous: ASHA, Li et al. 2018): rungs at epochs
  ``min_epochs · factor**k``; at a rung a trial goes on only if its best value so far is within the top
  ``1/factor`` of every trial that has reached that rung (the best one when fewer than ``factor`` have).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
from typing import Any

__all__ = ["PRUNERS", "INTERMEDIATE_KEY", "PRUNED_METRIC", "Pruner", "make_pruner", "install", "pruned_epoch",
           "intermediate_name"]

from tuning.choices import PRUNERS  # noqa: E402  (none, median, halving)
INTERMEDIATE_KEY = "tuner/intermediate"
PRUNED_METRIC = "pruned_at_epoch"


def intermediate_name(objective_name: str) -> str:
    """The trial metric that holds the per-epoch objective values reported for pruning."""
    return f"epoch_{objective_name}"


@dataclasses.dataclass(frozen=True)
class Pruner:
    """A pruning rule. ``epoch`` below is 1-based (the epoch just finished)."""

    rule: str                 # "median" | "halving"
    warmup_epochs: int = 2    # median: never prune before this many epochs; halving: the first rung
    startup_trials: int = 3   # median: completed trials needed before any pruning
    factor: int = 3           # halving: the reduction factor

    def rungs(self, max_epochs: int) -> list[int]:
        """The epochs at which ``halving`` decides (``min_epochs · factor**k`` below ``max_epochs``)."""
        out, epoch = [], max(1, self.warmup_epochs)
        while epoch < max_epochs:
            out.append(epoch)
            epoch *= self.factor
        return out

    def decide(self, trial_id: str, epoch: int, curves: dict[str, dict[int, float]], completed: set[str],
               maximize: bool) -> str | None:
        """The reason to prune trial ``trial_id`` after ``epoch``, or None to go on.

        ``curves``: trial id -> {epoch: value} for every trial with reported epochs (this one included);
        ``completed``: the ids of completed, unpruned trials.
        """
        mine = _best_so_far(curves.get(trial_id, {}), epoch, maximize)
        if mine is None:
            return None
        if self.rule == "median":
            if epoch <= self.warmup_epochs:
                return None
            others = [_best_so_far(curves[t], epoch, maximize) for t in completed if t != trial_id and t in curves]
            others = [v for v in others if v is not None]
            if len(others) < self.startup_trials:
                return None
            median = statistics.median(others)
            worse = mine < median if maximize else mine > median
            return (f"best {mine:.4f} after epoch {epoch} is worse than the median {median:.4f} of "
                    f"{len(others)} completed trials") if worse else None
        if epoch < self.warmup_epochs or not _is_rung(epoch, self.warmup_epochs, self.factor):
            return None
        rivals = [_best_so_far(c, epoch, maximize) for t, c in curves.items() if max(c, default=0) >= epoch]
        rivals = sorted((v for v in rivals if v is not None), reverse=maximize)
        keep = max(1, len(rivals) // self.factor)
        cutoff = rivals[keep - 1]
        promoted = mine >= cutoff if maximize else mine <= cutoff
        return None if promoted else (f"best {mine:.4f} at rung epoch {epoch} is outside the top {keep} of "
                                      f"{len(rivals)} trials there (cut-off {cutoff:.4f})")


def _is_rung(epoch: int, first: int, factor: int) -> bool:
    rung = max(1, first)
    while rung < epoch:
        rung *= factor
    return rung == epoch


def _best_so_far(curve: dict[int, float], epoch: int, maximize: bool) -> float | None:
    values = [v for e, v in curve.items() if e <= epoch and math.isfinite(v)]
    if not values:
        return None
    return max(values) if maximize else min(values)


def make_pruner(rule: str, *, warmup_epochs: int = 2, startup_trials: int = 3, factor: int = 3) -> Pruner | None:
    """``"none"`` -> None; ``"median"`` / ``"halving"`` -> a :class:`Pruner`; ValueError otherwise."""
    if rule not in PRUNERS:
        raise ValueError(f"--prune must be one of {', '.join(PRUNERS)}, got {rule!r}")
    for name, value, low in (("prune_warmup", warmup_epochs, 1), ("prune_startup", startup_trials, 1),
                             ("prune_factor", factor, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return None if rule == "none" else Pruner(rule, warmup_epochs, startup_trials, factor)


def pruned_epoch(trial: Any) -> int | None:
    """The epoch a trial was pruned after (1-based), or None."""
    if trial.metrics.exists(PRUNED_METRIC):
        value = trial.metrics.get_last_value(PRUNED_METRIC)
        if value is not None and math.isfinite(float(value)):
            return int(value)
    return None


def _curves(oracle: Any, name: str) -> dict[str, dict[int, float]]:
    out = {}
    for trial_id, trial in oracle.trials.items():
        if trial.metrics.exists(name):
            out[trial_id] = {int(obs.step) + 1: float(obs.mean()) for obs in trial.metrics.get_history(name)}
    return out


def install(oracle: Any, pruner: Pruner | None) -> None:
    """Wrap ``oracle.update_trial`` (on this instance) to record intermediate values, and prune with
    ``pruner`` (None: record only, so every search keeps its per-epoch curves)."""
    import functools

    import keras_tuner as kt

    original = oracle.update_trial
    objective = oracle.objective
    name = intermediate_name(objective.name)
    maximize = objective.direction == "max"

    def update_trial(_oracle, trial_id, metrics, step=0):
        if INTERMEDIATE_KEY not in metrics:
            return original(trial_id, metrics, step=step)
        trial = oracle.trials[trial_id]
        if not trial.metrics.exists(name):
            trial.metrics.register(name, direction=objective.direction)
        trial.metrics.update(name, float(metrics[objective.name]), step=int(step))
        completed = set() if pruner is None else {t for t, other in oracle.trials.items()
                     if other.status == "COMPLETED" and pruned_epoch(other) is None}
        epoch = int(step) + 1
        reason = None if pruner is None else pruner.decide(trial_id, epoch, _curves(oracle, name), completed,
                                                           maximize)
        answer = trial
        if reason is not None:
            if not trial.metrics.exists(PRUNED_METRIC):
                trial.metrics.register(PRUNED_METRIC, direction="min")
            trial.metrics.update(PRUNED_METRIC, float(epoch), step=int(step))
            trial.message = f"pruned ({pruner.rule}) after epoch {epoch}: {reason}"
            answer = copy.copy(trial)
            answer.status = "STOPPED"
        oracle._save_trial(trial)
        return answer

    oracle.update_trial = functools.partial(kt.synchronized(update_trial), oracle)  # KerasTuner's oracle lock
    oracle.pruner = pruner
