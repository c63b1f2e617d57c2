"""``python -m recipes.publish RUN_FOLDER --tag fashion_mnist``: ship a finished run's model as zoo weights.

    python -m recipes.publish bench/runs/resnet20-fashion_mnist-full-... --tag fashion_mnist
    python -m recipes.publish runs/lenet5-digits-full-... --tag digits --command "python -m recipes.lenet5"

Writes ``zoo/pretrained/<model>.<tag>_v<N>.weights.h5`` (the next version of that tag: a shipped version is
never replaced) and its record in ``zoo/pretrained/records.json`` (``zoo.pretrained``), then checks the
result the way a user gets it: ``zoo.build(model, weights=version)`` must give the run's own predictions
(max difference 1e-6), and its test accuracy on the recipe's test split, plain and with the recipe's
test-time augmentation, must be the run's within 2 images; those re-measured figures are the ones recorded.
On any failure the file and the record are removed again.

The training command is the bench row's (``bench/results/accuracy.json``, matched by the run folder's name)
unless ``--command`` gives it; the machine and its numeric set-up are the run's (``metrics.json``, or the
bench row's machine block for runs that predate it).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from zoo.cli import ArgumentParser, UsageError, cli_main, load_zoo
from zoo import pretrained

PROG = "python -m recipes.publish"
TOLERANCE_IMAGES = 2  # the re-measured test accuracy may differ from the run's by this many images
BENCH_ROWS = Path(__file__).resolve().parent.parent / "bench" / "results" / "accuracy.json"


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("run_folder", help="a finished run folder (config.json, metrics.json, model.keras)")
    parser.add_argument("--tag", required=True, help="the weight name users pass, e.g. fashion_mnist (the "
                                                     "version _vN is added: the next free one)")
    parser.add_argument("--command", default=None, help="the command that trained the run (default: its "
                                                        "bench/results/accuracy.json row's)")
    parser.add_argument("--note", default="", help="a line for the record (e.g. a goal the weights miss)")
    return parser


def bench_row(folder: Path, rows_file: Path = BENCH_ROWS) -> dict[str, Any] | None:
    """The single-model row of ``bench/results/accuracy.json`` whose run folder has ``folder``'s name."""
    if not rows_file.is_file():
        return None
    rows = json.loads(rows_file.read_text(encoding="utf-8"))["rows"]
    return next((r for r in rows if not r.get("seeds") and Path(r["run_folder"]).name == folder.name), None)


def recipe_sha256(recipe_dict: dict[str, Any]) -> str:
    """sha256 of the Recipe's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(recipe_dict, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def score_shipped(record: dict[str, Any], model=None) -> dict[str, Any]:
    """Test accuracy of the shipped weights ``record`` (built by ``zoo.build``) on its recipe's test split:
    plain, and with the recipe's TTA; with the number of test images."""
    import numpy as np

    import zoo
    from recipes import pipeline
    from recipes.recipe import Recipe

    recipe = Recipe.from_dict(record["recipe"])
    splits = pipeline.load_splits(recipe)
    model = model if model is not None else zoo.build(record["model"], weights=record["weights"])
    y = np.asarray(splits.y_test).astype(int).ravel()
    plain = pipeline.class_probabilities(model, splits.x_test)
    scores = {"test_accuracy": float((plain.argmax(-1) == y).mean()), "test_examples": int(len(y)), "tta": recipe.tta}
    if recipe.tta != "none":
        p = pipeline.tta_probabilities(model, splits.x_test, recipe.tta, fill=splits.value_range[0])
        scores["test_accuracy_tta"] = float((p.argmax(-1) == y).mean())
    return scores


def _normalization(model) -> dict[str, Any]:
    import numpy as np

    layer = model.get_layer("normalization")
    mean, variance = (np.ravel(np.asarray(v)).round(6).tolist() for v in (layer.mean, layer.variance))
    return {"layer": "keras.layers.Normalization", "axis": -1, "mean": mean, "variance": variance,
            "fitted_on": "the training split (the validation and test images excluded)"}


def make_record(folder: Path, tag: str, version: int, command: str, note: str, model) -> dict[str, Any]:
    """The record of ``folder``'s model as version ``version`` of ``tag`` (file fields filled in later)."""
    import zoo
    from recipes.data import DATASET_DOMAINS
    from recipes.recipe import Recipe

    recipe_dict = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    recipe_dict = {k: v for k, v in recipe_dict.items() if k != "machine"}
    recipe = Recipe.from_dict(recipe_dict)
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    row = bench_row(folder) or {}
    machine = dict(row.get("machine") or {})
    setup = metrics.get("numeric_setup") or machine.pop("numeric_setup", None) or {}
    machine.pop("numeric_setup", None)
    if not machine and setup:  # a run without a bench row: the processor its metrics.json recorded
        machine = {"cpu": setup.get("cpu"), "cpus": setup.get("cpus")}
    name = pretrained.version_name(tag, version)
    from recipes.data import load_data

    class_names = load_data(recipe.data, data_dir=recipe.data_dir, limit=20, test_limit=10).class_names
    return {
        "model": recipe.model, "family": zoo.get_entry(recipe.model).family, "weights": name, "tag": tag,
        "version": version, "file": f"{recipe.model}.{name}.weights.h5",
        "builder_kwargs": {"regularization": recipe.regularization.to_dict(), **dict(recipe.model_kwargs)},
        "input_shape": list(model.input_shape[1:]),
        "input": f"raw values as float32 (the data set's own scale, e.g. 0..255 pixels), shape "
                 f"{tuple(model.input_shape[1:])}; the model normalizes them",
        "classes": int(model.output_shape[-1]), "class_names": list(class_names),
        "preprocessing": _normalization(model),
        "recipe": recipe.to_dict(), "recipe_sha256": recipe_sha256(recipe.to_dict()),
        "command": command, "publish_command": " ".join([PROG, *map(shlex.quote, sys.argv[1:])]),
        "data": {"name": recipe.data, "domain": DATASET_DOMAINS.get(recipe.data), "source": metrics.get("data_source"),
                 "train_examples": metrics["train_examples"], "val_examples": metrics["val_examples"],
                 "test_examples": metrics["test_examples"], "validation_fraction": recipe.validation_fraction,
                 "split_seed": recipe.seed,
                 "split": "validation carved from the training images with the recipe's seed; the test images "
                          "evaluated once, at the end"},
        "metrics": {"val_accuracy": round(metrics["val_accuracy"], 4),
                    "train_accuracy": round(metrics["train_accuracy"], 4),
                    "run_test_accuracy": round(metrics["test_accuracy"], 4),
                    "epochs_run": metrics["epochs_run"], "epochs": metrics["epochs"],
                    "best_epoch": metrics["best_epoch"], "train_minutes": round(metrics["wall_time_s"] / 60, 1),
                    "seconds_per_epoch": row.get("seconds_per_epoch"),
                    "goal": row.get("goal"), "bench_row": row.get("name")},
        "params": int(model.count_params()), "macs": metrics.get("macs"),
        "machine": machine or None, "numeric_setup": setup or None,
        "versions": {"keras": setup.get("keras") or machine.get("keras"),
                     "tensorflow": setup.get("tensorflow") or machine.get("tensorflow"),
                     "python": machine.get("python")},
        "date": (row.get("finished") or datetime.date.today().isoformat())[:10], "note": note,
    }


def _write_records(records: list[dict[str, Any]]) -> None:
    from recipes.runfolder import write_json

    pretrained.WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    write_json(pretrained.RECORDS_FILE, {"format": 1, "records": records})


def publish(folder: str | os.PathLike, tag: str, command: str | None = None, note: str = "") -> dict[str, Any]:
    """Ship ``folder``'s model as the next version of ``tag``; the record (see the module docstring)."""
    import keras

    folder = Path(folder)
    missing = [n for n in ("config.json", "metrics.json", "model.keras") if not (folder / n).is_file()]
    if missing:
        raise UsageError(f"{PROG}: {folder} is not a finished run folder (no {', '.join(missing)})")
    command = command or (bench_row(folder) or {}).get("command")
    if not command:
        raise UsageError(f"{PROG}: {folder} has no bench/results/accuracy.json row; pass --command (what trained it)")
    model = keras.models.load_model(folder / "model.keras", safe_mode=True, compile=False)
    existing = pretrained.records()
    model_name = json.loads((folder / "config.json").read_text())["model"]
    version = 1 + max((r["version"] for r in existing if r["model"] == model_name and r["tag"] == tag), default=0)
    record = make_record(folder, tag, version, command, note, model)
    path = pretrained.weights_path(record)
    if path.exists():
        raise UsageError(f"{PROG}: {path} exists but has no record; remove it (a shipped version is never replaced)")
    tmp = path.with_name(path.name.replace(".weights.h5", ".tmp.weights.h5"))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
        record.update(file_bytes=path.stat().st_size, sha256=pretrained.sha256_of(path))
        _write_records(existing + [record])
        _check(record, model, folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        _write_records(existing)
        raise
    return record


def _check(record: dict[str, Any], trained, folder: Path) -> None:
    """The shipped model predicts what the run's model does and scores the run's test accuracy; the record
    gets the re-measured figures (written again)."""
    import numpy as np

    import zoo

    shipped = zoo.build(record["model"], weights=record["weights"])
    probe = np.random.default_rng(0).uniform(0, 255, size=(16, *record["input_shape"])).astype("float32")
    gap = float(np.max(np.abs(shipped.predict(probe, verbose=0) - trained.predict(probe, verbose=0))))
    if gap > 1e-6:
        raise RuntimeError(f"{pretrained.record_key(record)}: the shipped model differs from {folder}'s by {gap:.2e}")
    scores = score_shipped(record, shipped)
    run_test = json.loads((folder / "metrics.json").read_text())["test_accuracy"]
    if abs(scores["test_accuracy"] - run_test) * scores["test_examples"] > TOLERANCE_IMAGES + 1e-9:
        raise RuntimeError(f"{pretrained.record_key(record)}: test accuracy {scores['test_accuracy']:.4f} through "
                           f"zoo.build, the run recorded {run_test:.4f}")
    record["metrics"] = {"test_accuracy": round(scores["test_accuracy"], 4),
                         "test_accuracy_tta": round(scores.get("test_accuracy_tta", scores["test_accuracy"]), 4),
                         "tta": scores["tta"], "test_examples": scores["test_examples"], **record["metrics"]}
    goal = record["metrics"]["goal"]
    record["metrics"]["met_goal"] = None if goal is None else record["metrics"]["test_accuracy_tta"] >= goal
    _write_records([r for r in pretrained.records() if r["weights"] != record["weights"]
                    or r["model"] != record["model"]] + [record])


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        pretrained.version_name(args.tag, 1)
    except ValueError as error:
        raise UsageError(f"{PROG}: argument --tag: {error}") from None
    load_zoo()
    record = publish(args.run_folder, args.tag, args.command, args.note)
    m = record["metrics"]
    tta = f" ({m['tta']} TTA {m['test_accuracy_tta']:.4f})" if m["tta"] != "none" else ""
    print(f"{pretrained.record_key(record)}: test accuracy {m['test_accuracy']:.4f}{tta}, {record['params']:,} "
          f"parameters, {record['file_bytes'] / 1e6:.2f} MB; wrote {pretrained.weights_path(record)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(run, argv, PROG)


if __name__ == "__main__":
    sys.exit(main())
