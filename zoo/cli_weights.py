"""``zoo weights [NAME]`` (the shipped weights and their records; TensorFlow-free) and
``zoo predict MODEL --weights NAME FILE...`` (top-k classes of PNG images or ``.npy`` arrays)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from zoo import pretrained
from zoo.cli import UsageError, _number as number  # zoo.cli imports this module inside _parser()

__all__ = ["add_commands", "run_weights", "run_predict"]


def add_commands(sub) -> None:
    """The ``weights`` and ``predict`` sub-commands of ``zoo``."""
    p_w = sub.add_parser("weights", help="the trained weights the zoo ships, with their records",
                         description="Without NAME: a table of every shipped weight. With NAME (MODEL, "
                                     "MODEL.TAG or MODEL.VERSION, e.g. resnet20.fashion_mnist): the full "
                                     "record(s) as JSON.")
    p_w.add_argument("name", nargs="?", default=None, metavar="NAME")
    p_w.add_argument("--markdown", action="store_true",
                     help="the table as Markdown, with the command that trained each weight (README's table)")
    p_p = sub.add_parser("predict", help="top-k classes of images under shipped weights",
                         description="Class probabilities of PNG/JPEG images (converted to the weights' "
                                     "channels and size, pixel values 0..255) or .npy arrays (one example, "
                                     "or a batch along the first axis, at the weights' input scale).")
    p_p.add_argument("model", help="a model with shipped weights (zoo weights)")
    p_p.add_argument("--weights", required=True, help="a shipped weight name, e.g. fashion_mnist")
    p_p.add_argument("files", nargs="+", metavar="FILE", help="PNG/JPEG images or .npy arrays")
    p_p.add_argument("--top", type=number(int, 1), default=3, help="classes printed per input")


def _record_line(r: dict[str, Any], current: bool) -> list[str]:
    m = r["metrics"]
    tta = f"{m['test_accuracy_tta']:.4f} ({m['tta']})" if m.get("tta", "none") != "none" else "-"
    goal = "-" if m.get("goal") is None else f"≥ {m['goal']:.3f} {'met' if m.get('met_goal') else 'missed'}"
    return [pretrained.record_key(r) + (" *" if current else ""), r["data"]["name"], f"{m['test_accuracy']:.4f}",
            tta, goal, f"{r['params']:,}", f"{r['file_bytes'] / 1e6:.2f}", str(m["epochs_run"]), r["date"]]


def run_weights(args: argparse.Namespace) -> int:
    found = pretrained.records()
    if args.name is None and args.markdown:
        print(markdown_table(found))
        return 0
    if args.name is None:
        head = ["weights (* = its tag's current)", "data", "test acc.", "with TTA", "goal", "params", "MB",
                "epochs", "date"]
        current = {(r["model"], r["tag"]): pretrained.find_record(r["model"], r["tag"])["weights"] for r in found}
        rows = [head] + [_record_line(r, current[(r["model"], r["tag"])] == r["weights"]) for r in found]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        print(f"{len(found)} weight files, {sum(r['file_bytes'] for r in found) / 1e6:.2f} MB in all; "
              f"`zoo weights NAME` prints one record")
        return 0
    model, _, weights = args.name.partition(".")
    chosen = pretrained.records(model) if not weights else [_find(model, weights)]
    if not chosen:
        names = sorted({pretrained.record_key(r) for r in found})
        raise UsageError(f"zoo weights: no shipped weights for {args.name!r}; shipped: {', '.join(names) or 'none'}")
    print(json.dumps(chosen if len(chosen) > 1 else chosen[0], indent=2))
    return 0


def markdown_table(found: list[dict[str, Any]]) -> str:
    """The records as a Markdown table: name, data, test accuracy (plain, with TTA), goal, size, command."""
    lines = ["| `weights=` | data | test accuracy | with its TTA | goal | parameters | size | trained by |",
             "|---|---|---|---|---|---|---|---|"]
    for r in found:
        m = r["metrics"]
        tta = f"{m['test_accuracy_tta']:.4f} ({m['tta']})" if m.get("tta", "none") != "none" else "—"
        goal = "—" if m.get("goal") is None else f"{m['goal']:.3f}: {'met' if m.get('met_goal') else 'missed'}"
        lines.append(f"| `{r['model']}`, `{r['weights']}` | {r['data']['name']} ({r['data']['test_examples']:,} "
                     f"test) | {m['test_accuracy']:.4f} | {tta} | {goal} | {r['params']:,} | "
                     f"{r['file_bytes'] / 1e6:.2f} MB | `{r['command']}` |")
    return "\n".join(lines)


def _find(model: str, weights: str) -> dict[str, Any]:
    try:
        return pretrained.find_record(model, weights)
    except pretrained.WeightsError as error:
        raise UsageError(f"zoo: {error}") from None


def _read_inputs(path: str, shape: tuple[int, ...]):
    """``path`` as a float32 batch of ``shape``: a ``.npy`` array (one example or a batch) or an image
    (converted to the channels and size of ``shape``, values 0..255)."""
    import numpy as np

    if not os.path.isfile(path):
        raise UsageError(f"zoo predict: argument FILE: {path!r} does not exist")
    if path.endswith(".npy"):
        try:
            x = np.load(path, allow_pickle=False).astype("float32")
        except (ValueError, OSError) as error:
            raise UsageError(f"zoo predict: argument FILE: {path!r} is not a readable .npy array ({error})") from None
        if tuple(x.shape) == shape:
            x = x[None]
        elif tuple(x.shape) == shape[:-1] and len(shape) == 3 and shape[-1] == 1:
            x = x[None, ..., None]
        elif tuple(x.shape[1:]) == shape[:-1] and len(shape) == 3 and shape[-1] == 1:
            x = x[..., None]
        if tuple(x.shape[1:]) != shape:
            raise UsageError(f"zoo predict: argument FILE: {path!r} has shape {tuple(x.shape)}; the weights take "
                             f"{shape} (one example) or (N, {', '.join(map(str, shape))})")
        return x
    import keras

    height, width = (shape[0], shape[1])
    channels = shape[2] if len(shape) == 3 else 1
    try:
        image = keras.utils.load_img(path, color_mode="grayscale" if channels == 1 else "rgb",
                                     target_size=(height, width))
    except Exception as error:  # PIL's errors for a file that is not an image
        raise UsageError(f"zoo predict: argument FILE: {path!r} is not an image PIL can read ({error})") from None
    x = keras.utils.img_to_array(image, dtype="float32")
    return (x if len(shape) == 3 else x[..., 0])[None]


def run_predict(args: argparse.Namespace) -> int:
    import numpy as np

    import zoo

    record = _find(args.model, args.weights)
    shape = tuple(record["input_shape"])
    batches = [(path, _read_inputs(path, shape)) for path in args.files]
    model = zoo.build(args.model, weights=args.weights)
    names = record["class_names"]
    top = min(args.top, len(names))
    for path, x in batches:
        p = model.predict(x, verbose=0)
        for i, row in enumerate(p):
            label = path if len(p) == 1 else f"{path}[{i}]"
            best = np.argsort(-row)[:top]
            print(f"{label}: " + ", ".join(f"{names[k]} {row[k]:.3f}" for k in best))
    return 0
