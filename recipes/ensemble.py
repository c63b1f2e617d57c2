"""Ensembles (course notes, seeds 002 and 004): one Keras model that averages its members' class probabilities.

    python -m recipes.ensemble runs/A runs/B runs/C              # run folders, or a --folds folder
    python -m recipes.ensemble --model lenet5 --seeds 0,1,2      # train the members first (recipe options apply)

    from recipes.ensemble import build_ensemble, ensemble_model
    result = build_ensemble(["runs/A", "runs/B"], out="runs")   # result.metrics["test_accuracy"], result.folder
    model = ensemble_model([model_a, model_b])                  # Input -> members -> softmax -> Average

A member is a run folder's inference model (``model.keras``); a cross-validation folder (``cv_summary.json``)
gives its K fold models. Members must take the same input and predict the same classes; they must have been
tested on the same data (the same ``data``, ``data_dir`` and ``test_limit`` in their ``config.json``), on
which the ensemble and every member are evaluated once. The ensemble is one functional model — the members
are sub-models ``member_1`` … ``member_N``, a softmax after those that output logits, then ``Average`` — and
it loads with ``keras.models.load_model(path, safe_mode=True)`` after ``import zoo``.

Where every member's recipe used the same test-time augmentation (``tta`` in ``config.json``, e.g. ``flip``),
the ensemble and each member are also scored with it (``test_accuracy_tta``: the mean over the views of the
averaged softmax); the saved ensemble stays the plain inference model, like a run's.

The folder ``<out>/ensemble-<model>-<data>-<YYYYmmdd-HHMMSS>/`` holds ``model.keras`` and ``metrics.json``
(the ensemble's test accuracy and loss beside each member's); it is written in ``<out>/.inprogress/`` and
renamed when complete.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence


__all__ = ["ensemble_model", "build_ensemble", "member_folders", "score_model", "parse_seeds", "EnsembleResult", "main"]


@dataclasses.dataclass
class EnsembleResult:
    """What :func:`build_ensemble` returns: the folder, the metrics written and the ensemble model."""

    folder: Path
    metrics: dict[str, Any]
    model: Any


def ensemble_model(members: Sequence[Any], name: str = "ensemble"):
    """One model averaging the class probabilities of ``members`` (single-input Keras models)."""
    import keras

    from zoo.layers import outputs_logits

    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    shapes = {tuple(m.input.shape[1:]) for m in members}
    classes = {int(m.output.shape[-1]) for m in members}
    if len(shapes) > 1 or len(classes) > 1:
        raise ValueError(f"ensemble members must agree on input shape and classes; got input shapes "
                         f"{sorted(shapes)} and class counts {sorted(classes)}")
    inputs = keras.Input(shape=shapes.pop(), dtype=members[0].input.dtype, name="inputs")
    outputs = []
    for index, member in enumerate(members, start=1):
        sub = keras.Model(member.input, member.output, name=f"member_{index}")
        y = sub(inputs)
        if outputs_logits(member):
            y = keras.layers.Softmax(name=f"member_{index}_softmax")(y)
        outputs.append(y)
    return keras.Model(inputs, keras.layers.Average(name="average")(outputs), name=name)


def member_folders(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Run folders from run folders and cross-validation folders (their fold runs); ValueError naming a bad one."""
    folders: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if (path / "cv_summary.json").is_file():
            summary = json.loads((path / "cv_summary.json").read_text())
            folders += [path / row["run_folder"] for row in summary["per_fold"]]
        elif (path / "model.keras").is_file() and (path / "config.json").is_file():
            folders.append(path)
        else:
            raise ValueError(f"member {path} is neither a run folder (model.keras, config.json) nor a "
                             f"cross-validation folder (cv_summary.json)")
    return folders


def _test_data(folders: Sequence[Path]):
    """The members' first recipe, their common test split and their common TTA mode (``none`` if they differ)."""
    from recipes import pipeline
    from recipes.recipe import Recipe

    configs = [json.loads((f / "config.json").read_text()) for f in folders]
    keys = ("data", "data_dir", "test_limit")
    seen = {tuple(c.get(k) for k in keys) for c in configs}
    if len(seen) > 1:
        raise ValueError(f"ensemble members were tested on different data ({', '.join(keys)}: {sorted(seen, key=str)}); "
                         f"give members of one data set")
    modes = {c.get("tta", "none") for c in configs}
    recipe = Recipe.from_dict(configs[0])
    return recipe, pipeline.load_splits(recipe), modes.pop() if len(modes) == 1 else "none"


def score_model(probabilities, x, y, tta: str = "none", fill: float = 0.0) -> dict[str, float]:
    """``test_loss`` and ``test_accuracy`` of ``probabilities`` (inputs -> class probabilities) on ``x``, ``y``;
    with ``tta`` (a mode of ``recipes.recipe.TTA_MODES``) also ``test_loss_tta`` and ``test_accuracy_tta``."""
    from recipes.pipeline import mean_over_views, probability_scores

    scores = {f"test_{k}": v for k, v in probability_scores(probabilities(x), y).items()}
    if tta != "none":
        p = mean_over_views(probabilities, x, tta, fill)
        scores.update({f"test_{k}_tta": v for k, v in probability_scores(p, y).items()})
    return scores


def build_ensemble(paths: Sequence[str | os.PathLike], out: str | os.PathLike = "runs", *,
                   verbose: int = 1) -> EnsembleResult:
    """Average the members of ``paths``, evaluate it and each member on their test split, write the folder."""
    import keras

    import zoo

    zoo.load()  # registers the zoo's layers for loading
    from recipes.pipeline import class_probabilities
    from recipes.runfolder import INPROGRESS, check_output_folder, publish, write_json

    out = check_output_folder(out)
    folders = member_folders(paths)
    members = [keras.models.load_model(f / "model.keras") for f in folders]
    model = ensemble_model(members)
    recipe, splits, tta = _test_data(folders)
    score = functools.partial(score_model, x=splits.x_test, y=splits.y_test, tta=tta, fill=splits.value_range[0])
    rows = [{"run_folder": str(folder), **score(functools.partial(class_probabilities, member))}
            for folder, member in zip(folders, members)]
    metrics = {"model": recipe.model, "data": recipe.data, "tta": tta, "members": rows,
               **score(functools.partial(class_probabilities, model)),
               "test_examples": int(len(splits.x_test))}
    metrics["best_member_test_accuracy"] = max(r["test_accuracy"] for r in rows)
    if tta != "none":
        metrics["best_member_test_accuracy_tta"] = max(r["test_accuracy_tta"] for r in rows)
    digest = hashlib.sha256("\n".join(sorted(str(f.resolve()) for f in folders)).encode()).hexdigest()[:16]
    work = out / INPROGRESS / f"ensemble-{digest}"
    work.mkdir(parents=True, exist_ok=True)
    model.save(work / "model.keras")
    write_json(work / "metrics.json", metrics)
    label = SimpleNamespace(model="ensemble", data_label=recipe.model, preset=recipe.data_label)
    folder = publish(work, out, label, time.strftime("%Y%m%d-%H%M%S"))
    if verbose:
        print(summary_line(metrics, folder), flush=True)
    return EnsembleResult(folder=folder, metrics=metrics, model=model)


def summary_line(metrics: dict[str, Any], folder: Path | str | None = None) -> str:
    members = ", ".join(f"{r['test_accuracy']:.4f}" for r in metrics["members"])
    line = (f"ensemble of {len(metrics['members'])} {metrics['model']} on {metrics['data']}: test accuracy "
            f"{metrics['test_accuracy']:.4f} (loss {metrics['test_loss']:.4f}); members {members}")
    if metrics.get("tta", "none") != "none":
        members = ", ".join(f"{r['test_accuracy_tta']:.4f}" for r in metrics["members"])
        line += f"\nwith {metrics['tta']} TTA: test accuracy {metrics['test_accuracy_tta']:.4f}; members {members}"
    return line + (f"\nEnsemble folder: {folder}" if folder is not None else "")


# -- the command line --------------------------------------------------------------------------------------
def parse_seeds(text: str) -> list[int]:
    """An argparse type: two or more different seeds >= 0, comma-separated (``0,1,2``)."""
    import argparse

    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if len(seeds) < 2 or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"must be two or more different integers >= 0 such as 0,1,2, got {text!r}")
    return seeds


def _parser():
    from recipes.cli import add_training_options
    from recipes.recipe import PRESETS
    from zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="python -m recipes.ensemble", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", metavar="RUN_DIR", help="run folders or cross-validation folders")
    parser.add_argument("--seeds", type=parse_seeds, default=None, help="train one member per seed first, e.g. 0,1,2")
    parser.add_argument("--model", default=None, help="with --seeds: a registered zoo model")
    parser.add_argument("--preset", choices=PRESETS, default="full", help="with --seeds: the preset")
    add_training_options(parser)
    return parser


def _run(argv: Sequence[str] | None) -> int:
    from recipes.cli import overrides_from_args
    from recipes.recipe import preset
    from zoo.cli import load_zoo

    args = _parser().parse_args(argv)
    if bool(args.folders) == bool(args.seeds):
        raise ValueError("give either RUN_DIR folders or --seeds (with --model), not both and not neither")
    folders = list(args.folders)
    base = None
    if args.seeds:
        if not args.model:
            raise ValueError("--seeds needs --model (a registered zoo model)")
        base = preset(args.model, args.preset, **overrides_from_args(args))
    load_zoo()  # every option checked: now Keras
    from recipes.train import run

    if base is not None:
        for seed in args.seeds:
            result = run(base.with_overrides(seed=seed), out=args.out, verbose=args.verbose, quick=args.quick,
                         deterministic=args.deterministic)
            folders.append(result.folder)
    build_ensemble(folders, out=args.out, verbose=1)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from zoo.cli import cli_main

    return cli_main(_run, argv, "python -m recipes.ensemble")


if __name__ == "__main__":
    sys.exit(main())
