"""Train one model several ways and print one table: what each regularizer, optimizer or activation buys.

    python -m recipes.compare --model lenet5 --data digits --presets baseline,l2,dropout,full
    python -m recipes.compare --model resnet20 --data fashion_mnist --presets baseline,batchnorm,full --epochs 20
    python -m recipes.compare --optimizers sgd,momentum,adagrad,adadelta,rmsprop,adam   # on --preset (baseline)
    python -m recipes.compare --activations sigmoid,tanh,relu,leaky_relu,elu              # builders that take one

Every run gets the same data, seed and the shared options (``--epochs``, ``--lr`` ...; see
``recipes.cli``); ``--optimizers`` and ``--activations`` vary one thing of ``--preset`` (default
``baseline``). Without ``--lr``, each optimizer trains at its conventional learning rate
(``recipes.optim.CONVENTIONAL_LEARNING_RATES``: one rate for all would favour one of them). Each run
writes its own run folder under ``--out``; the table (train, validation and test accuracy, the
train - validation gap, the share of kernel weights below 1e-3, epochs run, the verdict) is printed and
saved as ``<out>/compare-<model>-<data>-<time>.csv``, and the loss curves of every run (train solid,
validation dashed) beside it as ``.png``.
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
from zoo.cli import ArgumentParser, cli_main, load_zoo

__all__ = ["compare", "compare_recipes", "format_table", "plot_losses", "main", "DEFAULT_PRESETS", "VARIED"]

DEFAULT_PRESETS = ("baseline", "l2", "dropout", "full")
COLUMNS = ("run", "train_acc", "val_acc", "test_acc", "gap", "sparsity", "epochs", "verdict")
VARIED = ("presets", "optimizers", "activations")   # what one comparison varies (one of them)


def _names(option: str, text: str, allowed: Sequence[str]) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(f"--{option} needs a comma-separated list of {', '.join(allowed)}; got {text!r}")
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValueError(f"--{option}: unknown {option[:-1]}(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return list(dict.fromkeys(names))


def _presets(text: str) -> list[str]:
    from recipes.recipe import PRESETS

    return _names("presets", text, PRESETS)


def arms(model: str, varied: str, names: Sequence[str], *, preset_name: str = "baseline",
         **overrides: Any) -> list[tuple[str, Any]]:
    """``(label, Recipe)`` per name: a preset each, or ``preset_name`` with each optimizer (at its
    conventional rate unless ``learning_rate`` is given) or each hidden activation. All validated first."""
    from recipes.choices import CONVENTIONAL_LEARNING_RATES
    from recipes.recipe import preset

    if varied == "presets":
        return [(name, preset(model, name, **overrides)) for name in names]
    if varied == "optimizers":
        return [(name, preset(model, preset_name, **{"learning_rate": CONVENTIONAL_LEARNING_RATES[name],
                                                      **overrides, "optimizer": name})) for name in names]
    if varied == "activations":
        import zoo

        if not zoo.get_entry(model).accepts("activation"):
            takers = [n for n in zoo.list_models() if zoo.get_entry(n).accepts("activation")]
            raise ValueError(f"--activations: {model}'s builder takes no activation; models whose builder "
                             f"does: {', '.join(takers)}")
        kwargs = dict(overrides.pop("model_kwargs", None) or {})
        return [(name, preset(model, preset_name, model_kwargs={**kwargs, "activation": name}, **overrides))
                for name in names]
    raise ValueError(f"varied must be one of {', '.join(VARIED)}, got {varied!r}")


def compare_recipes(labelled: Sequence[tuple[str, Any]], *, out: str = "runs", verbose: int = 2,
                    quick: bool = False, deterministic: bool = False) -> list[dict[str, Any]]:
    """Train each ``(label, Recipe)``; one row of ``COLUMNS`` (plus ``folder``) per run."""
    from recipes.train import run

    rows = []
    for label, recipe in labelled:
        result = run(recipe, out=out, verbose=verbose, quick=quick, deterministic=deterministic)
        m = result.metrics
        rows.append({
            "run": label, "train_acc": m["train_accuracy"], "val_acc": m["val_accuracy"],
            "test_acc": m["test_accuracy"], "gap": m["train_accuracy"] - m["val_accuracy"],
            "sparsity": m["kernel_sparsity"], "epochs": m["epochs_run"], "verdict": result.verdict.kind,
            "folder": str(result.folder),
        })
    return rows


def compare(model: str, presets: Sequence[str], *, out: str = "runs", verbose: int = 2, quick: bool = False,
            deterministic: bool = False, **overrides: Any) -> list[dict[str, Any]]:
    """Run ``preset(model, name, **overrides)`` for each name; one row of ``COLUMNS`` per preset.

    Every recipe is built (and validated) before the first one trains.
    """
    return compare_recipes(arms(model, "presets", presets, **overrides), out=out, verbose=verbose, quick=quick,
                           deterministic=deterministic)


def plot_losses(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Every run's train (solid) and validation (dashed) loss per epoch, one colour a run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from recipes.runfolder import read_history

    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    for index, row in enumerate(rows):
        history = read_history(Path(row["folder"]) / "history.csv")
        epochs = [int(e) + 1 for e in history.get("epoch", [])]
        color = f"C{index % 10}"
        axis.plot(epochs, history.get("loss", []), color=color, label=f"{row['run']} (test {row['test_acc']:.3f})")
        if history.get("val_loss"):
            axis.plot(epochs, history["val_loss"], color=color, linestyle="--")
    axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss (train solid, validation dashed)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    if title:
        axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(str(path))


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

    head = [rows[0].get("varied", "run") if rows else "run", "train acc", "val acc", "test acc", "train-val gap", "|w|<1e-3", "epochs", "verdict"]
    body = [[cell(key, row[key]) for key in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i in (0, 7) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _parser() -> ArgumentParser:
    from recipes.choices import OPTIMIZERS
    from recipes.recipe import PRESETS
    from zoo.catalog import ACTIVATIONS

    parser = ArgumentParser(prog="recipes.compare",
                            description="Train one model several ways (presets, optimizers or activations) and "
                                        "print one table.")
    parser.add_argument("--model", default="lenet5", help="a registered zoo model (default lenet5)")
    varied = parser.add_mutually_exclusive_group()
    varied.add_argument("--presets", default=None,
                        help=f"comma-separated presets (default {','.join(DEFAULT_PRESETS)})")
    varied.add_argument("--optimizers", default=None, help=f"comma-separated, of {','.join(OPTIMIZERS)}")
    varied.add_argument("--activations", default=None,
                        help=f"comma-separated hidden activations, of {','.join(ACTIVATIONS)}")
    parser.add_argument("--preset", choices=PRESETS, default="baseline",
                        help="the preset that --optimizers / --activations vary")
    add_training_options(parser)
    parser.set_defaults(verbose=2)
    return parser


def _what_varies(args) -> tuple[str, list[str]]:
    from recipes.choices import OPTIMIZERS
    from zoo.catalog import ACTIVATIONS

    if args.optimizers is not None:
        return "optimizers", _names("optimizers", args.optimizers, OPTIMIZERS)
    if args.activations is not None:
        return "activations", _names("activations", args.activations, ACTIVATIONS)
    return "presets", _presets(args.presets if args.presets is not None else ",".join(DEFAULT_PRESETS))


def run(argv: Sequence[str] | None = None) -> int:
    from recipes.cli import as_option_names
    from zoo.catalog import check_model_name

    args = _parser().parse_args(argv)
    check_model_name(args.model)
    varied, names = _what_varies(args)
    if varied == "activations":
        load_zoo()  # which builders take an activation: the registry knows
    try:
        labelled = arms(args.model, varied, names, preset_name=args.preset, **overrides_from_args(args))
    except ValueError as error:
        raise ValueError(as_option_names(str(error))) from None
    load_zoo()
    rows = compare_recipes(labelled, out=args.out, verbose=args.verbose, quick=args.quick,
                           deterministic=args.deterministic)
    for row in rows:
        row["varied"] = varied[:-1]
    table = format_table(rows)
    print(f"\n{args.model} on {args.data}:")
    print(table)
    stem = Path(args.out) / f"compare-{args.model}-{Path(args.data).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    with stem.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, "folder"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    plot_losses(rows, stem.with_suffix(".png"), title=f"{args.model} on {args.data}: {varied}")
    print(f"Table saved to {stem.with_suffix('.csv')}, loss curves to {stem.with_suffix('.png')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return cli_main(run, argv, "recipes.compare")
    except Exception as error:  # a diverged run: one line, status 1 (anything else propagates)
        from recipes.pipeline import TrainingDiverged

        if not isinstance(error, TrainingDiverged):
            raise
        print(f"recipes.compare: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
