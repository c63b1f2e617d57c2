"""Transfer from the shipped Fashion-MNIST weights to a few labelled digits, against the same model from scratch.

    python bench/transfer.py                              # lenet5 and resnet20, seeds 0-2, 10 digits a class
    python bench/transfer.py --models lenet5 --seeds 0 --per-class 10

For each model and seed two recipes train through the one training path on the same digits: the family's
``full`` preset from a random start, and the same recipe started from ``weights="fashion_mnist"`` (every
layer copied but the Normalization, which is adapted on the digits: both data sets have 10 classes, so
``recipes.modeling.start_from_weights`` copies the clothes classifier too, and fine-tuning retrains it). The
training split is
``--per-class`` images a class of the 8×8 digits (``limit``, stratified and seeded), the validation split a
tenth of it, the test split the 359 held-out digits. The digits stay 8×8: LeNet-5 resizes them to 32×32
inside the model (its backbone's shapes are those of its 28×28 form), ResNet-20's convolutions take any size.

Writes ``bench/results/transfer.json`` and ``transfer.md``: test accuracy per seed, mean ± standard deviation
for both starts.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402

MODELS = ("lenet5", "resnet20")
STARTS = ("scratch", "fashion_mnist")


def transfer_recipe(model: str, start: str, *, seed: int, per_class: int, epochs: int):
    """The recipe of one cell: the family's full preset on ``per_class`` digits a class (plus a tenth for
    validation), from a random start or the shipped weights."""
    from recipes.recipe import preset

    limit = round(per_class * 10 / 0.9)  # 10 classes; a tenth of the limit becomes the validation split
    recipe = preset(model, "full", data="digits", seed=seed, limit=limit, epochs=epochs, patience=None)
    return recipe if start == "scratch" else recipe.replace(weights=start)


def run_cell(model: str, start: str, *, seed: int, per_class: int, epochs: int, out: str) -> dict[str, Any]:
    from recipes.train import run

    recipe = transfer_recipe(model, start, seed=seed, per_class=per_class, epochs=epochs)
    result = run(recipe, out=out, verbose=0)
    m = result.metrics
    return {"model": model, "start": start, "seed": seed, "test_accuracy": round(m["test_accuracy"], 4),
            "train_examples": m["train_examples"], "val_examples": m["val_examples"],
            "test_examples": m["test_examples"], "epochs": m["epochs_run"], "wall_time_s": m["wall_time_s"],
            "run_folder": str(result.folder)}


def summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation of the test accuracy per (model, start)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for start in STARTS:
            acc = [r["test_accuracy"] for r in rows if r["model"] == model and r["start"] == start]
            if acc:
                out.append({"model": model, "start": start, "seeds": len(acc), "mean": round(statistics.mean(acc), 4),
                            "std": round(statistics.stdev(acc), 4) if len(acc) > 1 else 0.0, "each": acc})
    return out


def _parser():
    from zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="bench/transfer.py", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=common.names_in(MODELS, "models"), default=list(MODELS))
    parser.add_argument("--seeds", type=common.names_in([str(i) for i in range(100)], "seeds"),
                        default=["0", "1", "2"], help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--per-class", type=common.positive_int, default=10, help="labelled digits a class")
    parser.add_argument("--epochs", type=common.positive_int, default=30)
    parser.add_argument("--out", default="bench/runs", help="parent folder of the run folders")
    parser.add_argument("--output", default=None, help="the JSON (default bench/results/transfer.json)")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    output = common.result_path("transfer.json", False, args.output)
    watch = common.Stopwatch()
    rows = []
    for model in args.models:
        for seed in map(int, args.seeds):
            for start in STARTS:
                rows.append(run_cell(model, start, seed=seed, per_class=args.per_class, epochs=args.epochs,
                                     out=args.out))
                print(f"{model} {start} seed {seed}: {rows[-1]['test_accuracy']:.4f}", flush=True)
    table = summary(rows)
    common.write_json(output, {"rows": rows, "summary": table, "per_class": args.per_class, "epochs": args.epochs,
                               "command": common.command("transfer.py", argv), "machine": common.machine(),
                               "wall_time_s": round(watch(), 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
    text = common.markdown_table(["model", "start", "seeds", "test accuracy (mean ± std)", "each seed"],
                                 [[t["model"], t["start"], t["seeds"], f"{t['mean']:.4f} ± {t['std']:.4f}",
                                   ", ".join(f"{a:.4f}" for a in t["each"])] for t in table])
    common.write_text(output.with_suffix(".md"), text)
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(run, argv, "bench/transfer.py")


if __name__ == "__main__":
    sys.exit(main())
