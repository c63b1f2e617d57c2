"""Which searched hyperparameter mattered: fANOVA importance of a finished search (through Optuna).

fANOVA (Hutter et al. 2014) fits a random forest from the values to the score and splits the score's
variance into the part each hyperparameter explains; Optuna's ``FanovaImportanceEvaluator`` is a
maintained implementation. The completed (unpruned) trials are replayed into an in-memory study; the
importances are normalised to sum to 1 over the searched names (a name that no trial varied gets 0).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

__all__ = ["MIN_TRIALS", "parameter_importance", "importance_note", "plot_importance"]

MIN_TRIALS = 5


def _usable(trials: Sequence[Any]) -> list[Any]:
    from tuning.pruning import pruned_epoch

    return [t for t in trials if str(t.status) == "COMPLETED" and pruned_epoch(t) is None
            and t.score is not None and math.isfinite(float(t.score))]


def parameter_importance(trials: Sequence[Any], space: Any, names: Sequence[str], direction: str,
                         seed: int = 0) -> dict[str, float]:
    """name -> importance (summing to 1) over ``names`` from KerasTuner ``trials`` of ``space``.

    Raises:
        ValueError: Optuna missing (the message names the install command), or fewer than
            :data:`MIN_TRIALS` completed trials.
    """
    from tuning.tpe import distributions, require_optuna

    optuna = require_optuna("parameter importance")
    usable = _usable(trials)
    if len(usable) < MIN_TRIALS:
        raise ValueError(f"parameter importance needs at least {MIN_TRIALS} completed trials, got {len(usable)}")
    dists = {k: v for k, v in distributions(space).items() if k in names}
    study = optuna.create_study(direction="maximize" if direction == "max" else "minimize")
    for trial in usable:
        params = {k: v for k, v in trial.hyperparameters.values.items() if k in dists}
        try:
            study.add_trial(optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                                      value=float(trial.score)))
        except ValueError:  # a value outside today's space
            continue
    varied = [n for n in dists if len({repr(t.params.get(n)) for t in study.trials}) > 1
              and all(n in t.params for t in study.trials)]
    out = {n: 0.0 for n in names}
    if varied:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator, params=varied, normalize=True)
        out.update({n: float(v) for n, v in found.items()})
    total = sum(out.values())
    if total > 0:
        out = {n: v / total for n, v in out.items()}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def importance_note(importance: Mapping[str, float]) -> str:
    """``learning_rate 0.71, l2 0.18, keep_prob 0.11``."""
    return ", ".join(f"{name} {value:.2f}" for name, value in importance.items())


def plot_importance(importance: Mapping[str, float], path: str, title: str = "") -> str:
    """``importance.png``: one horizontal bar per searched hyperparameter."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from tuning.report import save_figure

    names = list(importance)[::-1]
    fig, ax = plt.subplots(figsize=(5.5, 0.5 * len(names) + 1.2))
    ax.barh(names, [importance[n] for n in names], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_xlabel("fANOVA importance (sums to 1)")
    ax.set_title(title or "hyperparameter importance", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return save_figure(fig, path)
