"""Test accuracy of saved run folders under every test-time augmentation their data allows.

    python bench/tta.py bench/runs/lenet5-fashion_mnist-batchnorm-20261203-113658 [RUN_DIR ...]

TTA is evaluation only, so one trained model can be scored under each mode of ``recipes.recipe.TTA_MODES``
without training again: ``none`` (the plain test accuracy), ``flip`` (the mean of the softmax of x and of its
mirror) and ``flip+shift`` (and of x shifted 2 px left and right). For each RUN_DIR (a recipe's run folder:
``config.json`` and ``model.keras``, the inference model the run saved — its EMA weights where the recipe used
EMA) the test split is loaded as the recipe loaded it (``recipes.pipeline.load_splits``) and every mode that
fits its domain is scored once (flips: clothes and natural images only, as the recipes' own check says).

Writes ``bench/results/tta.json`` (rows keyed by run folder; another run's rows are kept) and ``tta.md``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402


def _run_folder(text: str) -> Path:
    import argparse

    path = Path(text)
    for name in ("config.json", "model.keras"):
        if not (path / name).is_file():
            raise argparse.ArgumentTypeError(
                f"RUN_DIR {text!r} has no {name}: give a recipe's run folder (config.json, model.keras)")
    return path


def tta_row(folder: Path) -> dict[str, Any]:
    """One run folder's test loss and accuracy per TTA mode its data allows, beside the recipe's own mode."""
    import keras

    import zoo
    from recipes import pipeline
    from recipes.recipe import TTA_MODES, Recipe

    zoo.load()
    recipe = Recipe.from_dict(json.loads((folder / "config.json").read_text()))
    splits = pipeline.load_splits(recipe)
    model = keras.models.load_model(folder / "model.keras", safe_mode=True)
    scores = {}
    for mode in TTA_MODES:
        try:
            pipeline.check_tta(mode, splits.domain)
        except ValueError:
            continue
        p = (pipeline.class_probabilities(model, splits.x_test) if mode == "none" else
             pipeline.tta_probabilities(model, splits.x_test, mode, fill=splits.value_range[0]))
        scores[mode] = pipeline.probability_scores(p, splits.y_test)
    return {"run_folder": str(folder), "model": recipe.model, "data": recipe.data, "seed": recipe.seed,
            "recipe_tta": recipe.tta, "test_examples": int(len(splits.y_test)), "scores": scores}


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    from recipes.recipe import TTA_MODES

    head = ["run folder", "model", "recipe's TTA", *(f"test acc., {m}" for m in TTA_MODES)]
    body = [[r["run_folder"], r["model"], r["recipe_tta"],
             *(f"{r['scores'][m]['accuracy']:.4f}" if m in r["scores"] else "—" for m in TTA_MODES)]
            for r in rows]
    return common.markdown_table(head, body)


def _parser():
    from zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="bench/tta.py", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=_run_folder, metavar="RUN_DIR", help="recipe run folders")
    parser.add_argument("--output", default=None, help="the JSON (default bench/results/tta.json)")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    output = common.result_path("tta.json", False, args.output)
    for folder in args.folders:
        row = dict(tta_row(folder), command=common.command("tta.py", argv), machine=common.machine())
        data = common.read_json(output, {"rows": []})
        data["rows"] = [r for r in data["rows"] if r["run_folder"] != row["run_folder"]] + [row]
        common.write_json(output, data)
        common.write_text(output.with_suffix(".md"), markdown(data["rows"]))
        print(", ".join(f"{m} {s['accuracy']:.4f}" for m, s in row["scores"].items()) + f"  ({folder})", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(run, argv, "bench/tta.py")


if __name__ == "__main__":
    sys.exit(main())
