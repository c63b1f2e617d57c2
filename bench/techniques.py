"""The technique ablation: a base recipe, the base plus each training technique alone, then all of them.

    python bench/techniques.py                                # LeNet-5, 10 epochs, seeds 0,1 (about 40 min)
    python bench/techniques.py --models alexnet_small         # a conv family: 6 epochs of ~60 s per run here
    python bench/techniques.py --models resnet20 --seeds 0    # about 15 min per run here
    python bench/techniques.py --quick                        # smoke run: 300 images, 2 epochs, 1 seed

Data: full Fashion-MNIST, the 60,000 training images with a seeded 5,000-image validation carve-out and
the 10,000 test images evaluated once per run (as ``bench/accuracy.py``). Each model has a base recipe
(``BASES``: its flips-only recipe at a fixed mid-size budget, no technique on) and ``TECHNIQUES`` adds one
thing to it: label smoothing 0.1, EMA 0.999, 1 warm-up epoch, random erasing 0.25, MixUp α 0.2, CutMix
α 1.0, and ``all`` of them at once. Test-time augmentation is evaluation only, so every run reports its
test accuracy both plain and with flip TTA: the base's TTA column is "TTA alone".

Writes ``bench/results/techniques.json`` (every run, then mean ± std per model and technique; a run
already there with the same recipe is not trained again), ``bench/results/techniques.md`` (the table:
test accuracy plain and TTA, the change against the base, minutes) and ``bench/results/techniques.png``
(test accuracy against training minutes: what each technique buys per minute of CPU).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402

VALIDATION_FRACTION = 5000 / 60000
# preset name and fields of each model's base recipe: flips only, no technique, a fixed number of epochs
BASES: dict[str, tuple[str, dict[str, Any]]] = {
    "lenet5": ("batchnorm", dict(keep_prob=0.9, augmentation="flip", batch_size=128, epochs=10)),
    "alexnet_small": ("batchnorm", dict(keep_prob=0.8, augmentation="flip", schedule="cosine", epochs=6)),
    "resnet20": ("full", dict(augmentation="flip", optimizer="nesterov", epochs=6)),
}
TECHNIQUES: dict[str, dict[str, Any]] = {
    "base": {},
    "label_smoothing": dict(label_smoothing=0.1),
    "ema": dict(ema=0.999),
    "warmup": dict(warmup_epochs=1),
    "erasing": dict(erasing=0.25),
    "mixup": dict(mixup=0.2),
    "cutmix": dict(cutmix=1.0),
}
TECHNIQUES["all"] = {k: v for fields in TECHNIQUES.values() for k, v in fields.items()}


def recipe_for(model: str, technique: str, seed: int, quick: bool):
    """The base recipe of ``model`` plus ``technique``, with flip TTA at evaluation."""
    from recipes.recipe import preset

    name, fields = BASES[model]
    recipe = preset(model, name, data="fashion_mnist", validation_fraction=VALIDATION_FRACTION, seed=seed,
                    tta="flip", **fields, **TECHNIQUES[technique])
    return recipe.quick() if quick else recipe


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std per (model, technique) in the order of ``TECHNIQUES``, with the change against the base."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in runs):
        base = None
        for name in TECHNIQUES:
            group = [r for r in runs if r["model"] == model and r["technique"] == name]
            if not group:
                continue
            row: dict[str, Any] = {"model": model, "technique": name, "seeds": sorted(r["seed"] for r in group),
                                   "epochs": group[0]["epochs_run"]}
            for key in ("test_accuracy", "test_accuracy_tta", "train_accuracy", "minutes"):
                row[key], row[key + "_std"] = common.mean_std([r[key] for r in group])
            base = row if name == "base" else base
            if base is not None:
                row["delta"] = row["test_accuracy"] - base["test_accuracy"]
                row["delta_tta"] = row["test_accuracy_tta"] - base["test_accuracy"]
                row["extra_minutes"] = row["minutes"] - base["minutes"]
            rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    head = ["model", "technique", "test acc.", "with flip TTA", "Δ vs base (plain / TTA)", "train acc.",
            "epochs", "minutes", "seeds"]
    body = []
    for r in rows:
        delta = f"{r['delta']:+.4f} / {r['delta_tta']:+.4f}" if "delta" in r else "—"
        body.append([r["model"], r["technique"], f"{r['test_accuracy']:.4f} ± {r['test_accuracy_std']:.4f}",
                     f"{r['test_accuracy_tta']:.4f} ± {r['test_accuracy_tta_std']:.4f}", delta,
                     f"{r['train_accuracy']:.4f}", r["epochs"], f"{r['minutes']:.1f}", len(r["seeds"])])
    return common.markdown_table(head, body)


def plot(rows: Sequence[dict[str, Any]], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        group = [r for r in rows if r["model"] == model]
        for key, marker, label in (("test_accuracy", "o", "plain"), ("test_accuracy_tta", "^", "flip TTA")):
            ax.errorbar([r["minutes"] for r in group], [r[key] for r in group],
                        yerr=[r[key + "_std"] for r in group], fmt=marker, capsize=2, label=label)
        for r in group:
            ax.annotate(r["technique"], (r["minutes"], r["test_accuracy"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
        ax.set_xlabel("training minutes per run (2-core CPU)")
        ax.set_ylabel("test accuracy (mean ± std over seeds)")
        ax.set_title(f"{model}: base + one technique, full Fashion-MNIST, {group[0]['epochs']} epochs")
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    common.save_figure(fig, path)


def _parser():
    from zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="bench/techniques.py", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=common.names_in(tuple(BASES), "models"), default=["lenet5"],
                        help=f"comma-separated from {','.join(BASES)} (default lenet5)")
    parser.add_argument("--techniques", type=common.names_in(tuple(TECHNIQUES), "techniques"),
                        default=list(TECHNIQUES), help="comma-separated (default all)")
    parser.add_argument("--seeds", type=common.seed_list, default=None, help="comma-separated (default 0,1; quick 0)")
    parser.add_argument("--data-dir", default=None, help="where the Fashion-MNIST IDX files are")
    parser.add_argument("--out", default="bench/runs/techniques", help="parent folder of the run folders")
    parser.add_argument("--output", default=None, help="the JSON (default bench/results/techniques.json)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 images, 2 epochs, seed 0")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    from recipes.data import load_data
    from recipes.train import check_output_folder, run as train

    args = _parser().parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1])
    check_output_folder(args.out)
    load_data("fashion_mnist", data_dir=args.data_dir, limit=100, test_limit=10)  # data found, before any work
    output = common.result_path("techniques.json", args.quick, args.output)
    data = common.read_json(output, {"runs": []})
    plan = [(m, t, recipe_for(m, t, s, args.quick).replace(data_dir=args.data_dir))
            for s in seeds for m in args.models for t in args.techniques]
    watch = common.Stopwatch()
    for i, (model, technique, recipe) in enumerate(plan, 1):
        key = recipe.config_hash()
        if any(r["config_hash"] == key for r in data["runs"]):
            continue
        result = train(recipe, out=args.out, verbose=0)
        m = result.metrics
        data["runs"].append({
            "model": model, "technique": technique, "seed": recipe.seed, "config_hash": key,
            "test_accuracy": m["test_accuracy"], "test_accuracy_tta": m["test_accuracy_tta"],
            "train_accuracy": m["train_accuracy"], "val_accuracy": m["val_accuracy"],
            "epochs_run": m["epochs_run"], "minutes": m["wall_time_s"] / 60, "test_examples": m["test_examples"],
            "recipe": recipe.to_dict(), "run_folder": str(result.folder),
        })
        print(f"[{i}/{len(plan)}] {model} {technique:<16} seed {recipe.seed}: test {m['test_accuracy']:.4f} "
              f"(TTA {m['test_accuracy_tta']:.4f}), train {m['train_accuracy']:.4f}, {m['wall_time_s'] / 60:.1f} min",
              flush=True)
        data["summary"] = summarize(data["runs"])
        data.update(command=common.command("techniques.py", argv), machine=common.machine(), quick=args.quick,
                    finished=time.strftime("%Y-%m-%d %H:%M:%S"))
        common.write_json(output, data)  # after every run: a stopped benchmark resumes where it was
    common.publish_summary(data, output, summarize, markdown, plot, watch())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(run, argv, "bench/techniques.py")


if __name__ == "__main__":
    sys.exit(main())
