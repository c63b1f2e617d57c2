"""Search reports: the trial table (text and trials.csv), the JSON files and search.png."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from typing import Any, Iterable, Mapping, Sequence

from tuning.pruning import pruned_epoch

__all__ = ["TrialRecord", "trial_records", "format_table", "format_value", "write_trials_csv",
           "write_json", "plot_search", "progress_line", "epoch_line", "repeat_metrics", "save_figure", "PLOT_PANELS"]

STATUS_ORDER = {"COMPLETED": 0, "PRUNED": 1, "RUNNING": 1, "INVALID": 2, "FAILED": 3, "STOPPED": 4, "IDLE": 5}
# search.png: one panel per hyperparameter, in this order, with a log x axis where marked.
PLOT_PANELS = (("lambda", "λ (L2, or L1 when only L1 is on)", True), ("keep_prob", "keep-prob", False),
               ("learning_rate", "learning rate", True))


@dataclasses.dataclass
class TrialRecord:
    """One row of the trial table.

    ``score`` is the objective's best value over the trial's epochs (None unless COMPLETED);
    ``best_epoch`` the epoch (1-based) it was reached at; ``epochs`` the last epoch trained (early
    stopping may end a trial before its budget); ``budget`` Hyperband's ``tuner/epochs`` (else None);
    ``continued_from`` the trial whose weights Hyperband resumed (else None); ``worker`` the tuner id that
    ran it when known; ``message`` the first line of a failure; ``scores`` the per-fold (``--folds``) or
    per-execution (``--executions-per-trial``) scores whose mean ``score`` is, ``score_se`` their standard
    error. ``status`` is KerasTuner's, except
    ``PRUNED``: a trial the pruner stopped (scored on the epochs it ran).
    """

    trial_id: str
    status: str
    score: float | None
    best_epoch: int | None
    epochs: int | None
    values: dict[str, Any]
    budget: int | None = None
    continued_from: str | None = None
    worker: str | None = None
    message: str = ""
    scores: list[float] = dataclasses.field(default_factory=list)
    score_se: float | None = None

    @property
    def lam(self) -> float | None:
        """The λ for plots: L2's, or L1's when the trial has no L2."""
        l2 = self.values.get("l2")
        if l2:
            return float(l2)
        l1 = self.values.get("l1")
        return float(l1) if l1 else (0.0 if l2 is not None or l1 is not None else None)


def repeat_metrics(runs: Sequence[Mapping[str, Sequence[float]]], objective: str, direction: str,
                   kind: str) -> dict[str, float]:
    """One trial's metrics from several trainings (``kind`` "fold" or "execution"): each training's values
    at its best epoch by ``objective``, averaged, plus ``<objective>_se`` (standard error of the mean)
    and ``<objective>_<kind><i>`` for each training — what trials.csv shows and the mean the best is
    chosen by."""
    best = []
    for history in runs:
        values = [float(v) for v in history[objective]]
        finite = [i for i, v in enumerate(values) if math.isfinite(v)]
        if not finite:
            raise ValueError(f"no finite {objective} in a {kind}")
        pick = max if direction == "max" else min
        at = pick(finite, key=lambda i: values[i])
        best.append({k: float(v[at]) for k, v in history.items() if len(v) > at})
    names = set.intersection(*(set(b) for b in best))
    out = {k: sum(b[k] for b in best) / len(best) for k in names}
    scores = [b[objective] for b in best]
    mean = out[objective]
    spread = math.sqrt(sum((x - mean) ** 2 for x in scores) / (len(scores) - 1)) if len(scores) > 1 else 0.0
    out[f"{objective}_se"] = spread / math.sqrt(len(scores))
    out.update({f"{objective}_{kind}{i}": x for i, x in enumerate(scores)})
    return out


def _repeats(trial: Any, objective: str) -> tuple[list[float], float | None]:
    """The per-fold or per-execution scores of a trial and their standard error (``repeat_metrics``)."""
    scores = []
    for kind in ("fold", "execution"):
        i = 0
        while trial.metrics.exists(f"{objective}_{kind}{i}"):
            scores.append(float(trial.metrics.get_last_value(f"{objective}_{kind}{i}")))
            i += 1
        if scores:
            break
    se = trial.metrics.get_last_value(f"{objective}_se") if trial.metrics.exists(f"{objective}_se") else None
    return scores, None if se is None else float(se)


def _failure_line(message: str | None) -> str:
    """The most telling line of a KerasTuner failure message (a traceback): its last non-empty line."""
    if not message:
        return ""
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def trial_records(trials: Iterable[Any], objective_name: str, workers: Mapping[str, str] | None = None,
                  ) -> list[TrialRecord]:
    """KerasTuner ``Trial`` objects -> :class:`TrialRecord` rows, by trial id."""
    records = []
    for trial in sorted(trials, key=lambda t: str(t.trial_id)):
        values = dict(trial.hyperparameters.values)
        budget = values.pop("tuner/epochs", None)
        continued = values.pop("tuner/trial_id", None)
        for key in list(values):
            if str(key).startswith("tuner/"):
                values.pop(key)
        status = str(trial.status)
        score = trial.score if status == "COMPLETED" else None
        pruned_at = pruned_epoch(trial)
        if status == "COMPLETED" and pruned_at is not None:
            status = "PRUNED"  # KerasTuner's status stays COMPLETED: the oracle scores it on the epochs it ran
        score = None if score is None or not math.isfinite(float(score)) else float(score)
        epochs = None
        if trial.metrics.exists("epochs"):
            last = trial.metrics.get_last_value("epochs")
            if last is not None and math.isfinite(float(last)):
                epochs = int(round(float(last)))
        best_epoch = None
        scores, score_se = _repeats(trial, objective_name)
        if score is not None and trial.best_step is not None and not scores:  # a mean has no one best epoch
            best_epoch = int(trial.best_step) + 1
        records.append(TrialRecord(
            trial_id=str(trial.trial_id), status=status, score=score, best_epoch=best_epoch, epochs=epochs,
            values=values, budget=None if budget is None else int(budget),
            continued_from=None if continued is None else str(continued),
            worker=(workers or {}).get(str(trial.trial_id)),
            message="" if status == "COMPLETED" else (f"pruned after epoch {pruned_at}" if status == "PRUNED"
                                                         else _failure_line(trial.message)),
            scores=scores, score_se=score_se,
        ))
    return records


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value == 0:
            return "0"
        return f"{value:.2e}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def sort_records(records: Sequence[TrialRecord], direction: str) -> list[TrialRecord]:
    """Best first: completed trials by score, then the rest by status and id."""
    done = [r for r in records if r.score is not None]
    done.sort(key=lambda r: r.score, reverse=direction == "max")
    rest = sorted((r for r in records if r.score is None), key=lambda r: (STATUS_ORDER.get(r.status, 9), r.trial_id))
    return done + rest


def format_table(records: Sequence[TrialRecord], columns: Sequence[str], objective: str, *,
                 direction: str = "max", top: int | None = None, sort: bool = True) -> str:
    """A fixed-width text table: trial, status, objective, best epoch, epochs, then ``columns``."""
    rows = sort_records(records, direction) if sort else list(records)
    if top is not None:
        rows = rows[:top]
    show_budget = any(r.budget is not None for r in rows)
    show_worker = any(r.worker for r in rows)
    header = ["trial", "status", objective, "best_epoch", "epochs"] + (["budget"] if show_budget else []) \
        + list(columns) + (["worker"] if show_worker else [])
    body = []
    for r in rows:
        score = "-" if r.score is None else f"{r.score:.4f}" + ("" if r.score_se is None else f"±{r.score_se:.4f}")
        row = [r.trial_id, r.status, score, format_value(r.best_epoch),
               format_value(r.epochs)] + ([format_value(r.budget)] if show_budget else []) \
            + [format_value(r.values.get(c)) for c in columns] + ([r.worker or "-"] if show_worker else [])
        body.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)] if body else [len(h) for h in header]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in body]
    return "\n".join(lines)


def write_trials_csv(records: Sequence[TrialRecord], path: str, objective: str) -> str:
    """``trials.csv``: one row a trial, every hyperparameter a column (Hyperband's budget included)."""
    names: list[str] = []
    for r in records:
        for key in r.values:
            if key not in names:
                names.append(key)
    header = ["trial_id", "status", objective, f"{objective}_se", "scores", "best_epoch", "epochs", "budget",
              "continued_from", "worker"] + names + ["message"]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for r in records:
            writer.writerow([r.trial_id, r.status, "" if r.score is None else repr(r.score),
                             "" if r.score_se is None else repr(r.score_se), ";".join(repr(x) for x in r.scores),
                             "" if r.best_epoch is None else r.best_epoch, "" if r.epochs is None else r.epochs,
                             "" if r.budget is None else r.budget, r.continued_from or "", r.worker or ""]
                            + [_csv_value(r.values.get(n)) for n in names] + [r.message])
    os.replace(tmp, path)
    return path


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(data: Mapping[str, Any], path: str) -> str:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(_jsonable(dict(data)), handle, indent=2, sort_keys=False)
        handle.write("\n")
    os.replace(tmp, path)
    return path


def plot_search(records: Sequence[TrialRecord], path: str, objective: str, *, direction: str = "max",
                title: str = "") -> str:
    """``search.png``: the validation score against λ (log axis), keep-prob and learning rate (log axis).

    One panel each; completed trials only; the best trial is ringed. A hyperparameter that was fixed
    (one value in every trial) still gets its panel, marked "fixed".
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    done = [r for r in records if r.score is not None]
    best = sort_records(done, direction)[0] if done else None
    fig, axes = plt.subplots(1, len(PLOT_PANELS), figsize=(4.2 * len(PLOT_PANELS), 3.6), sharey=True)
    for ax, (key, label, log) in zip(axes, PLOT_PANELS):
        pairs = []
        for r in done:
            x = r.lam if key == "lambda" else r.values.get(key)
            if x is None or isinstance(x, bool):
                continue
            pairs.append((float(x), r.score, r is best))
        positive = [p for p in pairs if p[0] > 0]
        use_log = log and len(positive) == len(pairs) and pairs
        xs = [p[0] for p in pairs]
        ax.scatter(xs, [p[1] for p in pairs], s=28, alpha=0.8, color="tab:blue")
        for x, y, is_best in pairs:
            if is_best:
                ax.scatter([x], [y], s=120, facecolors="none", edgecolors="tab:red", linewidths=1.5,
                           label="best")
        if use_log:
            ax.set_xscale("log")
        distinct = sorted(set(xs))
        note = ""
        if not pairs:
            note = "not in this search"
        elif len(distinct) == 1:
            note = f"fixed at {format_value(distinct[0])}"
        if note:
            ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", color="gray")
        ax.set_xlabel(label + (" (log)" if use_log else ""))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(objective)
    if best is not None:
        axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(title or f"{len(done)} completed trials of {len(records)}", fontsize=10)
    return save_figure(fig, path)


def save_figure(fig: Any, path: str) -> str:
    """A search figure (tight layout, 110 dpi) written to ``path`` through a temporary file, then closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def progress_line(trial: Any, objective: str, *, best_score: float | None = None, names: Sequence[str] = (),
                  max_trials: int | None = None, seconds: float | None = None, worker: str | None = None) -> str:
    """One line per finished trial: ``trial 03/20 COMPLETED val_accuracy=0.9512 (best 0.9612) epochs=4
    12.3s l2=1.20e-04 keep_prob=0.73 learning_rate=3.10e-03``; a failed trial ends with its reason."""
    values = dict(trial.hyperparameters.values)
    pruned_at = pruned_epoch(trial)
    status = "PRUNED" if str(trial.status) == "COMPLETED" and pruned_at is not None else str(trial.status)
    parts = [f"trial {trial.trial_id}{f'/{max_trials}' if max_trials else ''}", status]
    score = trial.score if str(trial.status) == "COMPLETED" else None
    if score is not None and math.isfinite(float(score)):
        parts.append(f"{objective}={float(score):.4f}")
    if best_score is not None and math.isfinite(float(best_score)):
        parts.append(f"(best {float(best_score):.4f})")
    if trial.metrics.exists("epochs"):
        last = trial.metrics.get_last_value("epochs")
        if last is not None and math.isfinite(float(last)):
            parts.append(f"epochs={int(round(float(last)))}")
    if "tuner/epochs" in values:
        parts.append(f"budget={values['tuner/epochs']}")
    if seconds is not None:
        parts.append(f"{seconds:.1f}s")
    shown = " ".join(f"{n}={format_value(values.get(n))}" for n in names if n in values)
    if shown:
        parts.append(shown)
    if worker:
        parts.append(f"[{worker}]")
    if str(trial.status) != "COMPLETED":
        reason = _failure_line(trial.message)
        if reason:
            parts.append(f"| {reason[:200]}")
    return " ".join(parts)


def epoch_line(label: str, epoch: int, epochs: int | None, logs: Mapping[str, Any], seconds: float,
               pruned: str | None = None) -> str:
    """One line per epoch of a trial (``label`` "trial 03") or the final training: ``  trial 03 epoch 2/10
    accuracy=0.8123 loss=0.5123 val_accuracy=0.8011 val_loss=0.5510 4.1s``, ending with the pruner's reason
    when it stopped the trial."""
    shown = [f"{k}={float(v):.4f}" for k, v in sorted(logs.items()) if k in ("loss", "accuracy", "val_loss",
                                                                             "val_accuracy")]
    line = f"  {label} epoch {epoch}{f'/{epochs}' if epochs else ''} {' '.join(shown)} {seconds:.1f}s"
    return line + (f" | {pruned}" if pruned else "")
