"""Train one model under several presets and print one table: what each regularizer buys.

    python -m recipes.compare --model lenet5 --data digits --presets baseline,l2,dropout,full
    python -m recipes.compare --model resnet20 --data fashion_mnist --presets baseline,batchnorm,full --epochs 20

Every preset gets the same data, seed and the shared options (``--epochs``, ``--lr`` ...; see
``recipes.cli``), each run writes its own run folder under ``--out``, and the table (train, validation
and test accuracy, the train - validation gap, epochs run, the verdict) is printed and saved as
``<out>/compare-<model>-<data>-<time>.csv``.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a file: python recipes/compare.py
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from recipes.cli import ensure_importable

    ensure_importable(__file__)

from recipes.cli import add_training_options, overrides_from_args
from zoo.cli import ArgumentParser, cli_main

__all__ = ["compare", "format_table", "main", "DEFAULT_PRESETS"]

DEFAULT_PRESETS = ("baseline", "l2", "dropout", "full")
COLUMNS = ("preset", "train_acc", "val_acc", "test_acc", "gap", "sparsity", "epochs", "verdict")


def _presets(text: str) -> list[str]:
    from recipes.recipe import PRESETS

    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(f"--presets needs a comma-separated list of {', '.join(PRESETS)}; got {text!r}")
    unknown = [name for name in names if name not in PRESETS]
    if unknown:
        raise ValueError(f"--presets: unknown preset(s) {', '.join(unknown)}; allowed: {', '.join(PRESETS)}")
    return list(dict.fromkeys(names))


def compare(model: str, presets: Sequence[str], *, out: str = "runs", verbose: int = 2, quick: bool = False,
            deterministic: bool = False, **overrides: Any) -> list[dict[str, Any]]:
    """Run ``preset(model, name, **overrides)`` for each name; one row of ``COLUMNS`` per preset.

    Every recipe is built (and validated) before the first one trains.
    """
    from recipes.recipe import preset
    from recipes.train import run

    recipes = [preset(model, name, **overrides) for name in presets]
    rows = []
    for recipe in recipes:
        result = run(recipe, out=out, verbose=verbose, quick=quick, deterministic=deterministic)
        m = result.metrics
        rows.append({
            "preset": recipe.preset, "train_acc": m["train_accuracy"], "val_acc": m["val_accuracy"],
            "test_acc": m["test_accuracy"], "gap": m["train_accuracy"] - m["val_accuracy"],
            "sparsity": m["kernel_sparsity"], "epochs": m["epochs_run"], "verdict": result.verdict.kind, "folder": str(result.folder),
        })
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as an aligned text table (accuracies to 4 places, the gap signed)."""
    def cell(key: str, value: Any) -> str:
        if key == "gap":
            return f"{value:+.4f}"
        if key.endswith("_acc"):
            return f"{value:.4f}"
        if key == "sparsity":
            return f"{100 * value:.1f}%"
        return str(value)

    head = ["preset", "train acc", "val acc", "test acc", "train-val gap", "|w|<1e-3", "epochs", "verdict"]
    body = [[cell(key, row[key]) for key in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i in (0, 7) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="recipes.compare",
                            description="Train one model under several presets and print one table.")
    parser.add_argument("--model", default="lenet5", help="a registered zoo model (default lenet5)")
    parser.add_argument("--presets", default=",".join(DEFAULT_PRESETS),
                        help=f"comma-separated presets (default {','.join(DEFAULT_PRESETS)})")
    add_training_options(parser)
    parser.set_defaults(verbose=2)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    import zoo

    args = _parser().parse_args(argv)
    zoo.get_entry(args.model)
    names = _presets(args.presets)
    rows = compare(args.model, names, out=args.out, verbose=args.verbose, quick=args.quick,
                   deterministic=args.deterministic, **overrides_from_args(args))
    table = format_table(rows)
    print(f"\n{args.model} on {args.data}:")
    print(table)
    out = Path(args.out)
    path = out / f"compare-{args.model}-{Path(args.data).stem}-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, "folder"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"Table saved to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from recipes.train import TrainingDiverged

    try:
        return cli_main(run, argv, "recipes.compare")
    except TrainingDiverged as error:
        print(f"recipes.compare: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
