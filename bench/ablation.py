"""The regularization ablation: every preset on a small Fashion-MNIST subset where over-fitting is real.

    python bench/ablation.py                                  # LeNet-5 and AlexNet-small, 8 presets × 3 seeds
    python bench/ablation.py --models lenet5 --seeds 0,1     # a part (runs already in the JSON are kept)
    python bench/ablation.py --quick                          # smoke run: 300 images, 2 epochs, 1 seed

Data: the first ``--train-images`` (2,000) Fashion-MNIST training images after a seeded shuffle, plus 250
for validation (early stopping and the checkpoints watch them), and the full 10,000-image test set.
Every preset of ``recipes.recipe.REGULARIZATION_PRESETS`` (baseline, l2, l1, dropout, batchnorm, augment, early_stopping,
full) trains as the library ships it (``recipes.recipe.preset``; the family's optimizer, schedule and
epochs; λ of l2, l1 and full sized to the subset by ``recipes.recipe.data_sized_lambda``: ×26.7 on
2,250 of 60,000 images), once per seed. The gap is train accuracy − test accuracy (train accuracy
measured without dropout or augmentation, as the model predicts); sparsity is the share of kernel
weights with |w| < 1e-3 (``zoo.kernel_sparsity``), which L1 raises and L2 does not.

Writes ``bench/results/ablation.json`` (every run, then mean ± std per model and preset; a run already
there with the same recipe and a sparsity figure is not trained again), ``bench/results/ablation.md`` and
``bench/results/ablation.png`` and ``bench/results/ablation_weights.png`` (the log10 |w| histograms of
baseline, l2 and l1).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402

MODELS = ("lenet5", "alexnet_small")
VAL_IMAGES = 250
HISTOGRAM_EDGES = [e / 10 for e in range(-70, 6)]  # log10 |w| bins of the weight histograms, 1e-7 … 3
WEIGHT_PRESETS = ("baseline", "l2", "l1")          # the presets ablation_weights.png overlays


def _presets() -> tuple[str, ...]:
    from recipes.recipe import REGULARIZATION_PRESETS

    return REGULARIZATION_PRESETS


def recipe_for(model: str, preset_name: str, seed: int, train_images: int, quick: bool):
    """The run's recipe: ``preset(model, preset_name)`` on the Fashion-MNIST subset."""
    from recipes.recipe import preset

    total = train_images + VAL_IMAGES
    recipe = preset(model, preset_name, data="fashion_mnist", limit=total, validation_fraction=VAL_IMAGES / total,
                    seed=seed)
    return recipe.quick() if quick else recipe


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std of train/test accuracy and the gap per (model, preset), in the order models × PRESETS."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in runs):
        for name in _presets():
            group = [r for r in runs if r["model"] == model and r["preset"] == name]
            if not group:
                continue
            row: dict[str, Any] = {"model": model, "preset": name, "seeds": sorted(r["seed"] for r in group),
                                   "train_examples": group[0]["train_examples"]}
            for key in ("train_accuracy", "test_accuracy", "gap", "epochs_run", "kernel_sparsity", "l1", "l2"):
                row[key], row[key + "_std"] = common.mean_std([r[key] for r in group])
            rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    head = ["model", "preset", "λ", "train acc.", "test acc.", "gap (train − test)", "\\|w\\| < 1e-3", "epochs",
            "seeds"]
    body = [[r["model"], r["preset"], _lambda(r), f"{r['train_accuracy']:.3f} ± {r['train_accuracy_std']:.3f}",
             f"{r['test_accuracy']:.3f} ± {r['test_accuracy_std']:.3f}", f"{r['gap']:+.3f} ± {r['gap_std']:.3f}",
             f"{r['kernel_sparsity']:.1%}", f"{r['epochs_run']:.0f}", len(r["seeds"])] for r in rows]
    return common.markdown_table(head, body)


def weight_histogram(folder) -> list[int]:
    """Counts of log10 |w| of the run's kernel weights (``model.keras``) in ``HISTOGRAM_EDGES`` (the ends
    take what lies beyond them)."""
    import keras
    import numpy as np

    import zoo

    zoo.load()  # registers the zoo's layers for loading
    from zoo.regularize import kernel_values

    values = kernel_values(keras.models.load_model(os.path.join(folder, "model.keras"), compile=False))
    low, high = HISTOGRAM_EDGES[0], HISTOGRAM_EDGES[-1]
    logs = np.clip(np.log10(np.maximum(np.abs(values), 1e-30)), low, high - 1e-9)
    return [int(c) for c in np.histogram(logs, bins=HISTOGRAM_EDGES)[0]]


def plot_weights(runs: Sequence[dict[str, Any]], path) -> None:
    """ablation_weights.png: per model, the share of kernel weights per log10 |w| bin for baseline, l2
    and l1 (summed over seeds), the 1e-3 sparsity threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in runs))
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 3.8), squeeze=False)
    centers = [(a + b) / 2 for a, b in zip(HISTOGRAM_EDGES, HISTOGRAM_EDGES[1:])]
    for ax, model in zip(axes[0], models):
        for name, color in zip(WEIGHT_PRESETS, ("#777", "#3a7bd5", "#d5573a")):
            group = [r["weight_histogram"] for r in runs if r["model"] == model and r["preset"] == name
                     and r.get("weight_histogram")]
            if not group:
                continue
            counts = [sum(c) for c in zip(*group)]
            total = sum(counts)
            sparsity = [r["kernel_sparsity"] for r in runs if r["model"] == model and r["preset"] == name]
            ax.plot(centers, [c / total for c in counts], color=color, drawstyle="steps-mid",
                    label=f"{name}: |w| < 1e-3 {sum(sparsity) / len(sparsity):.1%}")
        ax.axvline(-3, color="black", linestyle="--", linewidth=0.8)
        ax.set_xlabel("log10 |w| (kernel weights; the left bin holds everything below 1e-7)")
        ax.set_ylabel("share of weights")
        optimizer = next(r["recipe"]["optimizer"] for r in runs if r["model"] == model)
        ax.set_title(f"{model} ({optimizer}): kernel weights after training")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    common.save_figure(fig, path)


def _lambda(row: dict[str, Any]) -> str:
    parts = [f"{name} {row[name]:.2g}" for name in ("l2", "l1") if row[name]]
    return ", ".join(parts) or "-"


def plot(rows: Sequence[dict[str, Any]], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        group = [r for r in rows if r["model"] == model]
        xs = range(len(group))
        width = 0.38
        ax.bar([x - width / 2 for x in xs], [r["train_accuracy"] for r in group], width,
               yerr=[r["train_accuracy_std"] for r in group], label="train", color="#8fb3d9", capsize=2)
        ax.bar([x + width / 2 for x in xs], [r["test_accuracy"] for r in group], width,
               yerr=[r["test_accuracy_std"] for r in group], label="test", color="#d98f8f", capsize=2)
        for x, r in zip(xs, group):
            ax.annotate(f"{r['gap']:+.3f}", (x, max(r["train_accuracy"], r["test_accuracy"]) + 0.01),
                        ha="center", fontsize=7)
        low = min(min(r["train_accuracy"], r["test_accuracy"]) for r in group)
        ax.set_ylim(max(0.0, low - 0.08), 1.03)
        ax.set_xticks(list(xs), [r["preset"] for r in group], rotation=35, ha="right")
        ax.set_ylabel("accuracy (mean ± std over seeds)")
        ax.set_title(f"{model}: {group[0]['train_examples']:,} Fashion-MNIST images, gap = train − test")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    common.save_figure(fig, path)


def _parser():
    from zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="bench/ablation.py", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=common.names_in(MODELS, "models"), default=list(MODELS),
                        help=f"comma-separated (default {','.join(MODELS)})")
    parser.add_argument("--presets", type=common.names_in(_presets(), "presets"), default=list(_presets()),
                        help="comma-separated (default all eight)")
    parser.add_argument("--seeds", type=common.seed_list, default=None, help="comma-separated (default 0,1,2; quick 0)")
    parser.add_argument("--train-images", type=common.positive_int, default=2000)
    parser.add_argument("--data-dir", default=None, help="where the Fashion-MNIST IDX files are")
    parser.add_argument("--out", default="bench/runs/ablation", help="parent folder of the run folders")
    parser.add_argument("--output", default=None, help="the JSON (default bench/results/ablation.json)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 images, 2 epochs, seed 0")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    from recipes.data import load_data
    from recipes.train import check_output_folder, run as train

    args = _parser().parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    check_output_folder(args.out)
    load_data("fashion_mnist", data_dir=args.data_dir, limit=100, test_limit=10)  # data found, before any work
    output = common.result_path("ablation.json", args.quick, args.output)
    data = common.read_json(output, {"runs": []})
    data["runs"] = [r for r in data["runs"] if "kernel_sparsity" in r]  # from before the sparsity figure: redone
    recipes = [recipe_for(m, p, s, args.train_images, args.quick) for m in args.models for p in args.presets
               for s in seeds]
    recipes = [r.replace(data_dir=args.data_dir) for r in recipes]
    watch = common.Stopwatch()
    for i, recipe in enumerate(recipes, 1):
        key = recipe.config_hash()
        if any(r["config_hash"] == key for r in data["runs"]):
            continue
        result = train(recipe, out=args.out, verbose=0)
        m = result.metrics
        data["runs"].append({
            "model": recipe.model, "preset": recipe.preset, "seed": recipe.seed, "config_hash": key,
            "train_accuracy": m["train_accuracy"], "val_accuracy": m["val_accuracy"],
            "test_accuracy": m["test_accuracy"], "gap": m["train_accuracy"] - m["test_accuracy"],
            "epochs_run": m["epochs_run"], "best_epoch": m["best_epoch"], "wall_time_s": m["wall_time_s"],
            "train_examples": m["train_examples"], "test_examples": m["test_examples"],
            "kernel_sparsity": m["kernel_sparsity"], "l1": m["l1"], "l2": m["l2"],
            "weight_histogram": weight_histogram(result.folder) if recipe.preset in WEIGHT_PRESETS else None,
            "recipe": recipe.to_dict(), "run_folder": str(result.folder),
        })
        print(f"[{i}/{len(recipes)}] {recipe.model} {recipe.preset:<14} seed {recipe.seed}: train "
              f"{m['train_accuracy']:.4f} test {m['test_accuracy']:.4f} gap {m['train_accuracy'] - m['test_accuracy']:+.4f} "
              f"|w|<1e-3 {m['kernel_sparsity']:.3f} "
              f"({m['epochs_run']} epochs, {m['wall_time_s']:.0f} s)", flush=True)
        data["summary"] = summarize(data["runs"])
        data.update(command=common.command("ablation.py", argv), machine=common.machine(), quick=args.quick,
                    train_images=args.train_images, val_images=VAL_IMAGES,
                    finished=time.strftime("%Y-%m-%d %H:%M:%S"))
        common.write_json(output, data)  # after every run: a stopped benchmark resumes where it was
    common.publish_summary(data, output, summarize, markdown, plot, watch())
    weights_png = output.with_name(output.stem + "_weights.png")
    plot_weights(data["runs"], weights_png)
    print(f"wrote {weights_png}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(run, argv, "bench/ablation.py")


if __name__ == "__main__":
    sys.exit(main())
