"""K-fold cross-validation of a recipe (course notes, seed 002): K runs, each validated on its own fold.

    from recipes.crossval import cross_validate
    result = cross_validate(preset("lenet5", "full"), folds=5, out="runs")
    result.summary["val_accuracy_mean"], result.summary["val_accuracy_std"], result.folder

    python -m recipes.lenet5 --folds 5

The recipe's training split *and* its validation split (the validation was carved from the training data)
are pooled and cut into K stratified folds (scikit-learn's ``StratifiedKFold``, shuffled with the recipe's
seed); fold k trains on the other K-1 folds and validates on fold k. The test split is never part of a
fold: every fold model is still evaluated on it once, as any run is. Each fold is an ordinary run
(:func:`recipes.train.run`, the one training path) with its own run folder.

The parent folder ``<out>/<model>-<data>-<preset>-cv<K>-<YYYYmmdd-HHMMSS>/`` holds ``fold-1/`` …
``fold-K/`` (each with its run folder, ``model.keras`` among the files: the K fold models are kept),
``cv_summary.json`` (per fold: validation and test accuracy and loss, epochs; mean ± sample standard
deviation over the folds) and ``cv_summary.csv``. It is built in ``<out>/.inprogress/cv-<hash>-k<K>/`` and
renamed when complete; the same command after a kill skips finished folds and resumes the unfinished one.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import statistics
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from recipes import pipeline
from recipes.recipe import Recipe
from recipes.runfolder import INPROGRESS, check_output_folder, publish, write_json

__all__ = ["cross_validate", "fold_splits", "CrossValidation"]

SUMMARY_KEYS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss")


@dataclasses.dataclass
class CrossValidation:
    """What :func:`cross_validate` returns: the parent folder, the fold results and the summary."""

    folder: Path
    folds: list[Any]
    summary: dict[str, Any]


def fold_splits(splits, folds: int, seed: int) -> list:
    """K ``DataSplits``: fold k validates on the k-th stratified fold of train ∪ validation, trains on the rest."""
    from sklearn.model_selection import StratifiedKFold

    x = np.concatenate([splits.x_train, splits.x_val])
    y = np.concatenate([splits.y_train, splits.y_val])
    smallest = int(np.bincount(y.astype(np.int64)).min()) if len(y) else 0
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if folds > smallest:
        raise ValueError(f"folds={folds} is more than the smallest class has examples ({smallest} in "
                         f"{splits.name}'s train+validation split); use folds <= {smallest}")
    cutter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(seed))
    return [dataclasses.replace(splits, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val])
            for train, val in cutter.split(np.zeros(len(y)), y)]


def _finished_run(fold_dir: Path):
    """The complete run folder inside ``fold_dir`` (a name without a leading dot), or None."""
    done = [p for p in fold_dir.iterdir() if p.is_dir() and not p.name.startswith(".")] if fold_dir.exists() else []
    return done[0] if done else None


def _summary(recipe: Recipe, folds: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"model": recipe.model, "data": recipe.data, "preset": recipe.preset,
                               "folds": folds, "seed": recipe.seed, "per_fold": rows}
    for key in SUMMARY_KEYS:
        values = [row[key] for row in rows]
        summary[f"{key}_mean"] = statistics.fmean(values)
        summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return summary


def cross_validate(recipe: Recipe, folds: int, out: str | os.PathLike = "runs", *, verbose: int = 1,
                   quick: bool = False, deterministic: bool = False) -> CrossValidation:
    """Train ``recipe`` on each of ``folds`` stratified folds; write the fold runs and their summary.

    Raises ValueError for ``folds`` < 2 or above the smallest class count (before anything is written),
    and whatever :func:`recipes.train.run` raises for a fold.
    """
    import json

    from recipes.train import run

    recipe = recipe.quick() if quick else recipe
    out = check_output_folder(out)
    parts = fold_splits(pipeline.load_splits(recipe), folds, recipe.seed)
    work = out / INPROGRESS / f"cv-{recipe.config_hash()}-k{folds}"
    work.mkdir(parents=True, exist_ok=True)
    started = _started(work)
    rows = []
    for index, part in enumerate(parts, start=1):
        if verbose:
            print(f"fold {index} of {folds}: train {len(part.x_train)}, validate {len(part.x_val)}", flush=True)
        fold_dir = work / f"fold-{index}"
        done = _finished_run(fold_dir)
        if done is None:
            result = run(recipe, out=fold_dir, verbose=verbose, deterministic=deterministic, splits=part)
            done, metrics = result.folder, result.metrics
        else:
            metrics = json.loads((done / "metrics.json").read_text())
        rows.append({"fold": index, "run_folder": f"fold-{index}/{done.name}",
                     "epochs_run": metrics["epochs_run"], **{k: metrics[k] for k in SUMMARY_KEYS}})
    summary = _summary(recipe, folds, rows)
    write_json(work / "cv_summary.json", summary)
    _write_csv(work / "cv_summary.csv", rows)
    (work / "STARTED").unlink()
    label = SimpleNamespace(model=recipe.model, data_label=recipe.data_label, preset=f"{recipe.preset}-cv{folds}")
    folder = publish(work, out, label, started)
    if verbose:
        print(summary_line(summary, folder), flush=True)
    return CrossValidation(folder=folder, folds=[folder / r["run_folder"] for r in rows], summary=summary)


def _started(work: Path) -> str:
    import time

    stamp = work / "STARTED"
    if not stamp.exists():
        stamp.write_text(time.strftime("%Y%m%d-%H%M%S"))
    return stamp.read_text().strip()


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def summary_line(summary: dict[str, Any], folder: Path | str | None = None) -> str:
    """One line: the mean ± std of the validation and test accuracy over the folds."""
    line = (f"{summary['model']} on {summary['data']} ({summary['preset']}), {summary['folds']}-fold "
            f"cross-validation: val accuracy {summary['val_accuracy_mean']:.4f} ± {summary['val_accuracy_std']:.4f}, "
            f"val loss {summary['val_loss_mean']:.4f} ± {summary['val_loss_std']:.4f}; test accuracy "
            f"{summary['test_accuracy_mean']:.4f} ± {summary['test_accuracy_std']:.4f}")
    return line + (f"\nCross-validation folder: {folder}" if folder is not None else "")
