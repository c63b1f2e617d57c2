"""Does tuning beat the hand preset? Hyperband, random, TPE and TPE + median pruning over 3 search seeds.

    python bench/tuning.py                       # seeds 0,1,2 (about 90 minutes on 2 CPU cores)
    python bench/tuning.py --seeds 0 --epochs 9  # one seed, shorter trials
    python bench/tuning.py --quick               # smoke run: 300 images, max_epochs 3, seed 0

Data: 2,000 Fashion-MNIST training images and a 1,000-image validation carve-out (one fixed subset,
data seed 0; at 85 % accuracy a 1,000-image validation score has a standard error of 1.1 points, against
2.3 for the 250 images used before), the full 10,000-image test set. Model: LeNet-5. The search is
``tuning``'s default: it starts from the ``best`` recipe (batch norm, flips, label smoothing, EMA,
warm-up, erasing, flip TTA at test) and draws L2 λ (log 1e-6 … 1e-2), keep-prob (0.5 … 1.0) and the
learning rate (log, a decade either side of the recipe's 3e-3), ``--epochs`` epochs a trial with the
family's early stopping.

Per search seed (the oracle's seed and every trial's training seed): Hyperband runs first
(``max_epochs = --epochs``, factor 3, one iteration); the epochs it trained are the budget, and random
search and TPE get ``round(budget / epochs)`` trials of ``--epochs`` epochs each. TPE + median pruning
gets the same number of trials as TPE (pruned trials end early; the epochs it saved are reported).
Each search's best configuration is retrained on train + validation for ``--epochs`` epochs and tested
once. The references are the ``full`` and ``best`` presets with nothing searched, trained the same way
(train + validation, ``--epochs`` epochs) over the same seeds. A curve is the best validation accuracy
found so far against the epochs spent so far.

Writes ``bench/results/tuning.json`` (every run; a run already there is not run again, so a stopped
benchmark resumes), ``bench/results/tuning.md`` (mean ± std per method) and ``bench/results/tuning.png``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]  # bench/tuning.py is not `tuning`
sys.path.insert(0, os.path.dirname(HERE))

from bench import common  # noqa: E402

TRAIN_IMAGES, VAL_IMAGES = 2000, 1000
SEARCHES = ("hyperband", "random", "tpe", "tpe+median")
REFERENCES = ("full", "best")
METHODS = SEARCHES + tuple(f"{name} preset" for name in REFERENCES)
DEFAULT_EPOCHS = 12


class EpochLog:
    """Keras callback factory whose epochs land in one shared list (``search`` deep-copies callbacks)."""

    events: list[tuple[str, float]] = []

    def __new__(cls, label: str):
        import keras

        class _Log(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                EpochLog.events.append((label, float((logs or {}).get("val_accuracy", float("nan")))))

        return _Log()


def hyperband_trials(max_epochs: int, factor: int = 3) -> int:
    """Trials in one iteration of KerasTuner's Hyperband brackets (its oracle's own bracket arithmetic)."""
    import keras_tuner as kt

    oracle = kt.oracles.HyperbandOracle(objective=kt.Objective("val_accuracy", "max"), max_epochs=max_epochs,
                                        factor=factor)
    return sum(oracle._get_size(b, r) for b in range(oracle._get_num_brackets())
               for r in range(oracle._get_num_rounds(b)))


def curve(label: str) -> list[tuple[int, float]]:
    """(epochs spent, best validation accuracy so far) after every epoch of ``label``'s search."""
    best, points = float("-inf"), []
    for spent, (_, value) in enumerate((e for e in EpochLog.events if e[0] == label), 1):
        if value == value:  # not NaN
            best = max(best, value)
        points.append((spent, best))
    return points


def epochs_to_reach(points: Sequence[Sequence[float]], target: float) -> int | None:
    """The first number of epochs spent at which a curve's best so far is >= ``target`` (None: never)."""
    return next((int(spent) for spent, best in points if best >= target - 1e-12), None)


def _searched(method: str, seed: int, splits, epochs: int, trials: int, args) -> dict[str, Any]:
    from tuning import search

    tuner, _, prune = method.partition("+")
    label = f"{method}/{seed}"
    EpochLog.events[:] = [e for e in EpochLog.events if e[0] != label]
    result = search(_preset("best", args), splits, tuner=tuner, prune=prune or "none", max_trials=trials, epochs=epochs,
                    seed=seed, directory=args.directory, overwrite=True, verbose=1, callbacks=[EpochLog(label)],
                    project_name=f"lenet5_fm{TRAIN_IMAGES}_{method.replace('+', '_')}_s{seed}_e{epochs}"
                                 + ("_quick" if args.quick else ""))
    points = curve(label)
    return {"trials": len(result.trials), "pruned": sum(r.status == "PRUNED" for r in result.trials),
            "epochs_spent": len(points), "epochs_saved": result.epochs_saved, "best_val_accuracy": result.best_score,
            "best_hyperparameters": result.best_hyperparameters, "importance": result.importance,
            "curve": points, "directory": result.directory, **_tested(result.test_metrics)}


def _reference(preset_name: str, seed: int, splits, epochs: int, args) -> dict[str, Any]:
    """A preset with nothing searched: one trial (its validation score) and the same retraining."""
    from tuning import search

    recipe = _preset(preset_name, args)
    values = {"l2": recipe.regularization.l2, "keep_prob": recipe.regularization.keep_prob,
              "learning_rate": recipe.learning_rate}
    result = search(recipe, splits, tuner="random", max_trials=1, epochs=epochs, seed=seed,
                    fixed=values, directory=args.directory, overwrite=True, verbose=0,
                    project_name=f"lenet5_fm{TRAIN_IMAGES}_{preset_name}_preset_s{seed}_e{epochs}"
                                 + ("_quick" if args.quick else ""))
    return {"best_val_accuracy": result.best_score, "hyperparameters": values, "directory": result.directory,
            **_tested(result.test_metrics)}


def _preset(name: str, args):
    """LeNet-5's ``name`` preset for Fashion-MNIST (the best one's flips and flip TTA need the data's name)."""
    from recipes.recipe import preset

    return preset("lenet5", name, data="fashion_mnist", data_dir=args.data_dir)


def _tested(metrics: dict[str, Any] | None) -> dict[str, Any]:
    metrics = metrics or {}
    return {"test_accuracy": metrics.get("test_accuracy"), "test_accuracy_tta": metrics.get("test_accuracy_tta"),
            "retrain_epochs": metrics.get("epochs_run"), "test_examples": metrics.get("test_examples")}


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std per method over seeds; for TPE + median also its epochs against TPE's, seed by seed."""
    rows = []
    for method in METHODS:
        group = sorted((r for r in runs if r["method"] == method), key=lambda r: r["seed"])
        if not group:
            continue
        row: dict[str, Any] = {"method": method, "seeds": [r["seed"] for r in group]}
        for key in ("test_accuracy", "test_accuracy_tta", "best_val_accuracy", "epochs_spent", "trials", "minutes"):
            values = [r[key] for r in group if r.get(key) is not None]
            if values:
                row[key], row[key + "_std"] = common.mean_std(values)
        rows.append(row)
    pruned = next((r for r in rows if r["method"] == "tpe+median"), None)
    if pruned is not None:
        ratios, reached = [], []
        for seed in pruned["seeds"]:
            plain = next((r for r in runs if r["method"] == "tpe" and r["seed"] == seed), None)
            mine = next(r for r in runs if r["method"] == "tpe+median" and r["seed"] == seed)
            if plain is None:
                continue
            ratios.append(mine["epochs_spent"] / plain["epochs_spent"])
            when = epochs_to_reach(mine["curve"], plain["best_val_accuracy"])
            reached.append(None if when is None else when / plain["epochs_spent"])
        pruned["epochs_vs_tpe"] = ratios
        pruned["reached_tpe_best_at"] = reached
    return rows


def _cell(row: dict[str, Any], key: str, digits: int = 4) -> str:
    if key not in row:
        return "-"
    return f"{row[key]:.{digits}f} ± {row[key + '_std']:.{digits}f}"


def markdown(summary: Sequence[dict[str, Any]]) -> str:
    head = ["method", "seeds", "test (flip TTA)", "test (plain)", "best val", "trials", "epochs", "minutes"]
    rows = [[r["method"], ",".join(map(str, r["seeds"])), _cell(r, "test_accuracy_tta"), _cell(r, "test_accuracy"),
             _cell(r, "best_val_accuracy"), _cell(r, "trials", 1), _cell(r, "epochs_spent", 0), _cell(r, "minutes", 1)]
            for r in summary]
    text = common.markdown_table(head, rows)
    pruned = next((r for r in summary if r.get("epochs_vs_tpe")), None)
    if pruned:
        ratios = ", ".join(f"{x:.2f}" for x in pruned["epochs_vs_tpe"])
        reached = ", ".join("never" if x is None else f"{x:.2f}" for x in pruned["reached_tpe_best_at"])
        text += (f"\nTPE + median pruning spent {ratios} of TPE's epochs (per seed); it reached TPE's best "
                 f"validation score at {reached} of TPE's epochs.\n")
    return text


def plot(data: dict[str, Any], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours = dict(zip(SEARCHES, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    for run in data["runs"]:
        if run["method"] in colours and run.get("curve"):
            points = run["curve"]
            ax.step([p[0] for p in points], [p[1] for p in points], where="post", color=colours[run["method"]],
                    alpha=0.8, label=run["method"] if run["seed"] == min(r["seed"] for r in data["runs"]) else None)
    for style, name in zip(("--", ":"), REFERENCES):
        row = next((r for r in data["summary"] if r["method"] == f"{name} preset"), None)
        if row and "best_val_accuracy" in row:
            ax.axhline(row["best_val_accuracy"], color="gray", linestyle=style,
                       label=f"{name} preset, val {row['best_val_accuracy']:.3f}")
    finite = [p[1] for r in data["runs"] for p in r.get("curve", []) if p[1] > 0]
    if finite:
        ax.set_ylim(max(0.0, sorted(finite)[len(finite) // 20] - 0.02), min(1.0, max(finite) + 0.01))
    ax.set_xlabel("training epochs spent")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(f"LeNet-5, {TRAIN_IMAGES:,} Fashion-MNIST images: λ, keep-prob, lr (one line per seed)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    common.save_figure(fig, path)


def _parser():
    from zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="bench/tuning.py", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=common.positive_int, default=None,
                        help=f"Hyperband's max_epochs and every other trial's epochs (default {DEFAULT_EPOCHS}; "
                             f"quick 3)")
    parser.add_argument("--seeds", type=common.seed_list, default=None, help="search seeds (default 0,1,2; quick 0)")
    parser.add_argument("--methods", type=common.names_in(METHODS, "methods"), default=None,
                        help=f"which of {', '.join(METHODS)} (default all)")
    parser.add_argument("--data-dir", default=None, help="where the Fashion-MNIST IDX files are")
    parser.add_argument("--directory", default="bench/runs/tuning", help="KerasTuner's folders go here")
    parser.add_argument("--output", default=None, help="the JSON (default bench/results/tuning.json)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 images, max_epochs 3, seed 0")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    from recipes.data import load_data
    from recipes.train import check_output_folder

    args = _parser().parse_args(argv)
    epochs = args.epochs or (3 if args.quick else DEFAULT_EPOCHS)
    if epochs < 3:
        raise ValueError(f"--epochs must be >= 3 (Hyperband needs rounds of 1 and 3 epochs at least), got {epochs}")
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    methods = args.methods or list(METHODS)
    check_output_folder(args.directory, "--directory")
    output = common.result_path("tuning.json", args.quick, args.output)
    total = 300 if args.quick else TRAIN_IMAGES + VAL_IMAGES
    splits = load_data("fashion_mnist", data_dir=args.data_dir, limit=total, validation_fraction=VAL_IMAGES / (TRAIN_IMAGES + VAL_IMAGES),
                       test_limit=100 if args.quick else None, seed=0)
    data = common.read_json(output, {"runs": []})
    if data.get("epochs") not in (None, epochs):
        data = {"runs": []}  # another budget: start over
    watch = common.Stopwatch()
    for seed in seeds:
        for method in [m for m in METHODS if m in methods]:
            if any(r["method"] == method and r["seed"] == seed for r in data["runs"]):
                continue
            start = time.perf_counter()
            if method.endswith(" preset"):
                row = _reference(method.split()[0], seed, splits, epochs, args)
            else:
                budget = next((r["epochs_spent"] for r in data["runs"] if r["method"] == "hyperband"
                               and r["seed"] == seed), None)
                tpe_trials = next((r["trials"] for r in data["runs"] if r["method"] == "tpe" and r["seed"] == seed),
                                  None)
                if method == "hyperband":
                    trials = hyperband_trials(epochs)
                elif method == "tpe+median" and tpe_trials:
                    trials = tpe_trials
                elif budget is None:
                    raise ValueError(f"{method} takes its trial count from the hyperband run of seed {seed}: "
                                     f"include hyperband in --methods")
                else:
                    trials = max(1, round(budget / epochs))
                row = _searched(method, seed, splits, epochs, trials, args)
            row.update(method=method, seed=seed, minutes=round((time.perf_counter() - start) / 60, 2))
            data["runs"].append(row)
            tta = row.get("test_accuracy_tta")
            print(f"{method} seed {seed}: best val {row['best_val_accuracy']:.4f}, test {row['test_accuracy']:.4f}"
                  + (f" (TTA {tta:.4f})" if tta is not None else "") + f", {row['minutes']:.1f} min", flush=True)
            data.update(epochs=epochs, train_examples=len(splits.x_train), val_examples=len(splits.x_val),
                        test_examples=len(splits.x_test), command=common.command("tuning.py", argv),
                        machine=common.machine(), quick=args.quick, finished=time.strftime("%Y-%m-%d %H:%M:%S"))
            data["summary"] = summarize(data["runs"])
            common.write_json(output, data)  # after every run: a stopped benchmark resumes where it was
    common.publish_summary(data, output, summarize, markdown, lambda summary, path: plot(data, path), watch())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(run, argv, "bench/tuning.py")


if __name__ == "__main__":
    sys.exit(main())
