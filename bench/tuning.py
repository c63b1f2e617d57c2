"""Random search vs Hyperband for LeNet-5's λ, keep-prob and learning rate under the same epoch budget.

    python bench/tuning.py                 # about 10 minutes on 2 CPU cores
    python bench/tuning.py --epochs 27     # Hyperband's max_epochs (and each random trial's epochs)
    python bench/tuning.py --quick         # smoke run: 300 images, max_epochs 3

Data: the ablation's subset (``bench/ablation.py``): 2,000 Fashion-MNIST training images, 250 for
validation, the full 10,000-image test set. The space is ``tuning``'s default (L2 λ log-uniform 1e-6 …
1e-2, keep-prob 0.5 … 1.0, learning rate log-uniform 1e-4 … 1e-1) over the ``baseline`` preset
(Adam, cosine schedule, batch 32, early stopping with the family's patience in every trial).

Hyperband runs first (``max_epochs = --epochs``, factor 3, one iteration of its brackets); the epochs it
trained (each epoch of each trial, continued trials counted from where they resumed) are the budget, and
random search gets ``round(budget / epochs)`` trials of ``--epochs`` epochs each (early stopping may spend
less; both totals are reported). Each best configuration is retrained on train + validation and tested
once; the ``full`` preset on the same subset (seed 0) is the reference. The curve is the best validation
accuracy found so far against the epochs spent so far.

Writes ``bench/results/tuning.json`` and ``bench/results/tuning.png``.
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

TRAIN_IMAGES, VAL_IMAGES = 2000, 250
TUNERS = ("hyperband", "random")


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


def plot(curves: dict[str, list[tuple[int, float]]], reference: float, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, points in curves.items():
        ax.step([p[0] for p in points], [p[1] for p in points], where="post", label=label)
    ax.axhline(reference, color="gray", linestyle="--", label=f"full preset, val acc {reference:.3f}")
    ax.set_xlabel("training epochs spent")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title("LeNet-5 on 2,000 Fashion-MNIST images: λ, keep-prob, lr")
    finite = [p[1] for points in curves.values() for p in points if p[1] > 0]
    if finite:
        ax.set_ylim(max(0.0, min(finite + [reference]) - 0.02), min(1.0, max(finite + [reference]) + 0.02))
    ax.legend(loc="lower right")
    fig.tight_layout()
    common.save_figure(fig, path)


def _parser():
    from zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="bench/tuning.py", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=common.positive_int, default=None,
                        help="Hyperband's max_epochs and each random trial's epochs (default 18; quick 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="where the Fashion-MNIST IDX files are")
    parser.add_argument("--directory", default="bench/runs/tuning", help="KerasTuner's folders go here")
    parser.add_argument("--output", default=None, help="the JSON (default bench/results/tuning.json)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 images, max_epochs 3")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    from recipes.recipe import preset
    from recipes.train import check_output_folder, run as train
    from tuning import search

    args = _parser().parse_args(argv)
    epochs = args.epochs or (3 if args.quick else 18)
    if epochs < 3:
        raise ValueError(f"--epochs must be >= 3 (Hyperband needs rounds of 1 and 3 epochs at least), got {epochs}")
    check_output_folder(args.directory, "--directory")
    output = common.result_path("tuning.json", args.quick, args.output)
    total = TRAIN_IMAGES + VAL_IMAGES
    subset = dict(data="fashion_mnist", data_dir=args.data_dir, limit=total, validation_fraction=VAL_IMAGES / total,
                  seed=args.seed)
    if args.quick:
        subset.update(limit=300, test_limit=100)
    watch = common.Stopwatch()
    EpochLog.events.clear()
    results: dict[str, Any] = {}
    budget = None
    for name in TUNERS:
        start = time.perf_counter()
        trials = hyperband_trials(epochs) if name == "hyperband" else max(1, round(budget / epochs))
        recipe = preset("lenet5", "baseline", epochs=epochs, **subset)
        result = search(recipe, tuner=name, max_trials=trials, epochs=epochs, directory=args.directory,
                        project_name=f"lenet5_fm{TRAIN_IMAGES}_{name}_e{epochs}" + ("_quick" if args.quick else ""),
                        overwrite=True, callbacks=[EpochLog(name)], verbose=1)
        points = curve(name)
        spent = len(points)
        if name == "hyperband":
            budget = spent
        results[name] = {
            "trials": len(result.trials), "completed": len(result.completed), "epochs_spent": spent,
            "best_val_accuracy": result.best_score, "best_hyperparameters": result.best_hyperparameters,
            "test_accuracy": (result.test_metrics or {}).get("test_accuracy"),
            "retrain_epochs": (result.test_metrics or {}).get("epochs_run"), "seconds": round(time.perf_counter() - start, 1),
            "curve": points, "directory": result.directory,
        }
        print(f"{name}: {len(result.trials)} trials, {spent} epochs, best val {result.best_score:.4f}, retrained test "
              f"{results[name]['test_accuracy']:.4f}, {results[name]['seconds']:.0f} s", flush=True)
    reference = train(preset("lenet5", "full", **subset), out=os.path.join(args.directory, "full"), verbose=0)
    m = reference.metrics
    results["full_preset"] = {"val_accuracy": m["val_accuracy"], "test_accuracy": m["test_accuracy"],
                              "epochs_run": m["epochs_run"], "wall_time_s": m["wall_time_s"],
                              "run_folder": str(reference.folder)}
    print(f"full preset: val {m['val_accuracy']:.4f}, test {m['test_accuracy']:.4f}", flush=True)
    results.update(epochs=epochs, budget_epochs=budget, train_examples=m["train_examples"],
                   val_examples=m["val_examples"], test_examples=m["test_examples"],
                   command=common.command("tuning.py", argv), machine=common.machine(), quick=args.quick,
                   wall_time_s=round(watch(), 1), finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    common.write_json(output, results)
    plot({name: results[name]["curve"] for name in TUNERS}, m["val_accuracy"], output.with_suffix(".png"))
    print(f"wrote {output} and {output.with_suffix('.png')} ({watch():.0f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(run, argv, "bench/tuning.py")


if __name__ == "__main__":
    sys.exit(main())
