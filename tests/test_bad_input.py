"""Bad input, one table: the Python API and the three command lines refuse it the same careful way.

For every case:
- the Python API raises a ``ValueError`` (or a subclass: ``recipes.data.DataError``,
  ``recipes.train.OutputFolderError``); a command line exits with status 2 and prints exactly one line on
  stderr, no traceback;
- the message names the bad argument or value and what is allowed;
- nothing is half-written: the output folder the call was given does not exist afterwards, and the folder
  of bad files (with its regular file and its read-only folder) is unchanged.

The command lines run in-process through their ``main(argv)`` (fast), except a few cases that need a real
process (``SUBPROCESS_CASES``): the read-only folder (root writes anywhere, so the child drops the
capabilities that let it, as any user's process is) and one ``python -m zoo``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import zoo
from conftest import REPO, assert_one_line_error

NAN = float("nan")
INF = float("inf")


# -- the bad files: written once, in one folder whose contents every case checks afterwards -------------------
class BadFiles:
    """Small bad data files, a regular file where a folder is expected, and a read-only folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, size=(40, 8, 8)).astype("float32")
        y = np.arange(40) % 2
        self.npz_arrays = {
            "count": dict(x_train=x, y_train=y[:30]),
            "negative_label": dict(x_train=x, y_train=y - 1),
            "label_out_of_range": dict(x_train=x, y_train=y, x_test=x[:10], y_test=np.full(10, 5),
                                       class_names=np.array(["cat", "dog"])),
            "fractional_labels": dict(x_train=x, y_train=y + 0.5),
            "one_hot": dict(x_train=x, y_train=np.eye(2)[y]),
            "empty": dict(x_train=x[:0], y_train=y[:0]),
            "nan_images": dict(x_train=np.where(x > 0.5, np.nan, x), y_train=y),
            "string_images": dict(x_train=np.full((40, 8, 8), "a"), y_train=y),
            "flat_images": dict(x_train=np.arange(40.0), y_train=y),
            "test_shape": dict(x_train=x, y_train=y, x_test=rng.uniform(size=(10, 6, 6)), y_test=y[:10]),
            "one_class": dict(x_train=x, y_train=np.zeros(40, int)),
            "no_labels": dict(x_train=x),
        }
        for name, arrays in self.npz_arrays.items():
            np.savez(root / f"{name}.npz", **arrays)
        np.savez(root / "good.npz", x_train=x, y_train=y)
        good = (root / "good.npz").read_bytes()
        (root / "not_a_zip.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
        (root / "truncated.npz").write_bytes(good[: len(good) // 2])
        damaged = bytearray(good)
        damaged[200:260] = b"\xff" * 60  # inside x_train's data: the zip CRC no longer matches
        (root / "damaged.npz").write_bytes(bytes(damaged))
        (root / "data.csv").write_text("1,2,3\n")
        self.file = root / "a_file"
        self.file.write_text("a regular file where a folder is expected\n")

        self._idx("idx_magic", images_magic=2052)
        self._idx("idx_truncated", truncate=100)
        self._idx("idx_count", train_labels=np.arange(15) % 10)
        self._idx("idx_label_range", train_labels=np.full(20, 12))
        self._idx("idx_short")
        (root / "idx_short" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08")
        self._idx("idx_bad_gzip")
        os.remove(root / "idx_bad_gzip" / "train-images-idx3-ubyte")
        (root / "idx_bad_gzip" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08 not gzip data")
        (root / "idx_missing").mkdir()
        (root / "idx_missing" / "train-images-idx3-ubyte").write_bytes(b"")

        self.readonly = root / "readonly"
        self.readonly.mkdir()
        self.readonly.chmod(0o555)

    def _idx(self, name, *, images_magic=2051, truncate=0, train_labels=None):
        folder = self.root / name
        folder.mkdir()
        for split in ("train", "t10k"):
            images = np.zeros((20, 28, 28), np.uint8)
            data = (images_magic.to_bytes(4, "big") + (20).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
                    + images.tobytes())
            if truncate and split == "train":
                data = data[:-truncate]
            (folder / f"{split}-images-idx3-ubyte").write_bytes(data)
            labels = np.arange(20) % 10 if split == "t10k" or train_labels is None else train_labels
            labels = np.asarray(labels, np.uint8)
            (folder / f"{split}-labels-idx1-ubyte").write_bytes(
                (2049).to_bytes(4, "big") + len(labels).to_bytes(4, "big") + labels.tobytes())

    def __getitem__(self, name: str) -> str:
        """A path inside the folder as a string: ``bad["count.npz"]``."""
        return str(self.root / name)

    def snapshot(self) -> dict[str, tuple]:
        found = {}
        for path in sorted(self.root.rglob("*")):
            stat = path.lstat()
            found[str(path.relative_to(self.root))] = (stat.st_mode, stat.st_size, stat.st_mtime_ns)
        return found


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    files = BadFiles(tmp_path_factory.mktemp("bad_input"))
    yield files
    files.readonly.chmod(0o755)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    call: Callable[..., Any]  # API: (bad, out) -> anything, must raise; CLI: (bad, out) -> argv
    needles: tuple[str, ...]
    main: str = ""            # CLI: the module whose main(argv) runs the command line


def api(case_id, call, *needles):
    return Case(case_id, call, needles)


def cli(case_id, main, argv, *needles):
    return Case(case_id, argv, needles, main)


# -- the Python API -----------------------------------------------------------------------------------------
def _search(**kwargs):
    import tuning

    defaults = dict(data="digits", max_trials=1, epochs=1, limit=100, test_limit=30, verbose=0, retrain=False)
    return tuning.search("lenet5", **{**defaults, **kwargs})


def _hypermodel(*args, **kwargs):
    from tuning import ZooHyperModel

    return ZooHyperModel(*args, **kwargs)


def _space(*args, **kwargs):
    from tuning.space import make_space

    return make_space(*args, **kwargs)


def _load(name, **kwargs):
    from recipes.data import load_data

    return load_data(name, **kwargs)


def _recipe(**kwargs):
    from recipes.recipe import Recipe

    return Recipe(**{"model": "lenet5", **kwargs})


def _preset(*args, **kwargs):
    from recipes.recipe import preset

    return preset(*args, **kwargs)


def _run(out, **kwargs):
    from recipes.train import run

    return run(_recipe(limit=100, test_limit=30, epochs=1, **kwargs), out=out, verbose=0)


REG = zoo.Regularization

API_CASES = [
    # zoo builders: shapes and dtypes
    api("zoo-shape-1d", lambda b, o: zoo.build("lenet5", input_shape=(8,)), "input_shape", "(height, width, channels)"),
    api("zoo-shape-str", lambda b, o: zoo.build("lenet5", input_shape="8,8,1"), "input_shape", "'8,8,1'"),
    api("zoo-shape-float", lambda b, o: zoo.build("resnet20", input_shape=(8.0, 8, 1)), "input_shape",
        "positive integers", "8.0"),
    api("zoo-shape-0-channels", lambda b, o: zoo.build("resnet20", input_shape=(8, 8, 0)), "channels",
        "positive integer"),
    api("zoo-lstm-0-timesteps", lambda b, o: zoo.build("lstm", input_shape=(0, 8)), "input_shape",
        "(timesteps, features)", "(0, 8)"),
    api("zoo-lstm_text-2d", lambda b, o: zoo.build("lstm_text", input_shape=(16, 4)), "input_shape",
        "(timesteps,)", "(16, 4)"),
    # too-small images, one per architecture (LeNet-5 and AlexNet-small resize anything >= 1×1)
    api("zoo-small-lenet5", lambda b, o: zoo.lenet5(input_shape=(0, 8, 1)), "lenet5", "positive integers"),
    api("zoo-small-alexnet_small", lambda b, o: zoo.build("alexnet_small", input_shape=(8, 0, 1)),
        "positive integers"),
    api("zoo-small-alexnet", lambda b, o: zoo.build("alexnet", input_shape=(66, 66, 3)), "at least 67×67",
        "66×66", "stem='small'"),
    api("zoo-small-alexnet_torchvision", lambda b, o: zoo.build("alexnet_torchvision", input_shape=(62, 62, 3)),
        "at least 63×63", "62×62"),
    api("zoo-small-googlenet", lambda b, o: zoo.build("googlenet", input_shape=(14, 14, 3)), "at least 15×15",
        "googlenet_small"),
    api("zoo-small-googlenet_small", lambda b, o: zoo.build("googlenet_small", input_shape=(3, 3, 1)),
        "at least 4×4", "3×3"),
    api("zoo-small-resnet18", lambda b, o: zoo.build("resnet18", input_shape=(31, 31, 3)), "resnet18",
        "at least 32×32", "resnet20"),
    api("zoo-small-resnet50", lambda b, o: zoo.build("resnet50", input_shape=(16, 16, 3)), "at least 32×32"),
    api("zoo-small-resnet50v2", lambda b, o: zoo.build("resnet50v2", input_shape=(16, 31, 3)), "16×31"),
    api("zoo-small-resnet20", lambda b, o: zoo.build("resnet20", input_shape=(3, 3, 1)), "at least 4×4"),
    # zoo builders: head and names
    api("zoo-classes-0", lambda b, o: zoo.build("lenet5", input_shape=(8, 8, 1), classes=0), "classes", ">= 1"),
    api("zoo-classes-float", lambda b, o: zoo.build("lenet5", input_shape=(8, 8, 1), classes=2.5), "classes",
        "2.5"),
    api("zoo-pooling", lambda b, o: zoo.build("resnet20", include_top=False, pooling="median"), "pooling",
        "'median'", "'avg'"),
    api("zoo-unknown-model", lambda b, o: zoo.build("resnet21"), "'resnet21'", "resnet20", "list_models"),
    api("zoo-regularization-dict", lambda b, o: zoo.build("lenet5", regularization={"dropout": 0.5}),
        "'dropout'", "keep_prob"),
    # zoo.Regularization
    api("reg-l2-negative", lambda b, o: REG(l2=-1e-4), "Regularization.l2", "[0.0, inf)", "-0.0001"),
    api("reg-l1-negative", lambda b, o: REG(l1=-1), "Regularization.l1", "[0.0, inf)"),
    api("reg-keep_prob-0", lambda b, o: REG(keep_prob=0), "Regularization.keep_prob", "(0.0, 1.0]", "0.0"),
    api("reg-keep_prob-1.5", lambda b, o: REG(keep_prob=1.5), "Regularization.keep_prob", "(0.0, 1.0]", "1.5"),
    api("reg-l2-nan", lambda b, o: REG(l2=NAN), "Regularization.l2", "nan"),
    api("reg-keep_prob-nan", lambda b, o: REG(keep_prob=NAN), "Regularization.keep_prob", "nan"),
    api("reg-l1-inf", lambda b, o: REG(l1=INF), "Regularization.l1", "inf"),
    api("reg-l2-str", lambda b, o: REG(l2="1e-4"), "Regularization.l2", "a number", "'1e-4'"),
    api("reg-batch_norm-str", lambda b, o: REG(batch_norm="yes"), "Regularization.batch_norm", "True or False"),
    # recipes: Recipe, preset, run
    api("recipe-lr-inf", lambda b, o: _recipe(learning_rate=INF), "Recipe.learning_rate", "> 0"),
    api("recipe-batch_size-float", lambda b, o: _recipe(batch_size=32.0), "Recipe.batch_size", ">= 1"),
    api("recipe-keep_prob-nan", lambda b, o: _recipe(regularization={"keep_prob": NAN}), "keep_prob", "(0.0, 1.0]"),
    api("recipe-optimizer", lambda b, o: _recipe(optimizer="lbfgs"), "Recipe.optimizer", "lbfgs", "adamw"),
    api("recipe-precision", lambda b, o: _recipe(precision="float16"), "Recipe.precision", "float16", "mixed_bfloat16"),
    api("preset-unknown", lambda b, o: _preset("lenet5", "strong"), "preset", "'strong'", "baseline"),
    api("preset-l2-negative", lambda b, o: _preset("lenet5", "l2", l2=-0.1), "l2", "[0.0, inf)"),
    api("run-out-is-a-file", lambda b, o: _run(b.file), "--out", "a_file", "is a file", "folder"),
    api("run-out-under-a-file", lambda b, o: _run(b.file / "runs"), "a_file is a file", "folder"),
    # recipes.data.load_data
    api("data-unknown-name", lambda b, o: _load("svhn"), "'svhn'", "digits", "fashion_mnist"),
    api("data-missing-npz", lambda b, o: _load(b["missing.npz"]), "missing.npz", "file not found"),
    api("data-not-a-zip", lambda b, o: _load(b["not_a_zip.npz"]), "not_a_zip.npz", "not a readable .npz"),
    api("data-truncated-npz", lambda b, o: _load(b["truncated.npz"]), "truncated.npz", "not a readable .npz"),
    api("data-damaged-npz", lambda b, o: _load(b["damaged.npz"]), "damaged.npz", "x_train is corrupt"),
    api("data-csv-file", lambda b, o: _load(b["data.csv"]), "data.csv", "must be a .npz"),
    api("data-no-labels", lambda b, o: _load(b["no_labels.npz"]), "missing y_train", "x_train"),
    api("data-count-mismatch", lambda b, o: _load(b["count.npz"]), "40 examples", "30 labels"),
    api("data-negative-label", lambda b, o: _load(b["negative_label.npz"]), "label -1", "outside [0, classes)"),
    api("data-label-out-of-range", lambda b, o: _load(b["label_out_of_range.npz"]), "y_test", "label 5",
        "[0, 2)"),
    api("data-fractional-labels", lambda b, o: _load(b["fractional_labels.npz"]), "y_train", "integer class ids"),
    api("data-one-hot-labels", lambda b, o: _load(b["one_hot.npz"]), "one integer class id", "argmax"),
    api("data-empty", lambda b, o: _load(b["empty.npz"]), "x_train", "empty"),
    api("data-nan-images", lambda b, o: _load(b["nan_images.npz"]), "x_train", "NaN or inf"),
    api("data-string-images", lambda b, o: _load(b["string_images.npz"]), "x_train", "must be numbers", "<U1"),
    api("data-1d-images", lambda b, o: _load(b["flat_images.npz"]), "(N, height, width[, channels])", "(40,)"),
    api("data-test-shape", lambda b, o: _load(b["test_shape.npz"]), "x_test", "(6, 6, 1)", "(8, 8, 1)"),
    api("data-one-class", lambda b, o: _load(b["one_class.npz"]), "at least 2 classes", "found 1"),
    api("idx-magic", lambda b, o: _load("fashion_mnist", data_dir=b["idx_magic"]), "train-images-idx3-ubyte",
        "wrong IDX magic number 2052", "expected 2051"),
    api("idx-truncated", lambda b, o: _load("fashion_mnist", data_dir=b["idx_truncated"]), "truncated",
        "20×28×28"),
    api("idx-count-mismatch", lambda b, o: _load("fashion_mnist", data_dir=b["idx_count"]), "20 examples",
        "15 labels"),
    api("idx-label-out-of-range", lambda b, o: _load("fashion_mnist", data_dir=b["idx_label_range"]),
        "label 12", "[0, 10)"),
    api("idx-short-header", lambda b, o: _load("fashion_mnist", data_dir=b["idx_short"]),
        "t10k-labels-idx1-ubyte", "too short", "header"),
    api("idx-bad-gzip", lambda b, o: _load("fashion_mnist", data_dir=b["idx_bad_gzip"]),
        "train-images-idx3-ubyte.gz", "cannot read"),
    api("idx-missing-files", lambda b, o: _load("fashion_mnist", data_dir=b["idx_missing"]),
        "train-labels-idx1-ubyte", "missing"),
    api("idx-data_dir-missing", lambda b, o: _load("fashion_mnist", data_dir=b["nowhere"]), "data_dir",
        "not a folder"),
    api("data-validation_fraction-1", lambda b, o: _load("digits", validation_fraction=1.0),
        "validation_fraction", "(0, 1)"),
    api("data-validation_fraction-nan", lambda b, o: _load("digits", validation_fraction=NAN),
        "validation_fraction", "nan"),
    api("data-limit-1", lambda b, o: _load("digits", limit=1), "limit", ">= 2"),
    # tuning: search, ZooHyperModel, the space
    api("search-tuner", lambda b, o: _search(tuner="annealing", directory=o), "'annealing'", "hyperband", "grid"),
    api("search-max_trials-0", lambda b, o: _search(max_trials=0, directory=o), "max_trials", ">= 1"),
    api("search-objective", lambda b, o: _search(objective="val_f1", directory=o), "'val_f1'", "val_accuracy"),
    api("search-directory-is-a-file", lambda b, o: _search(directory=b.file), "--directory", "is a file",
        "folder"),
    api("search-directory-under-a-file", lambda b, o: _search(directory=b.file / "searches"), "a_file is a file"),
    api("search-space-nan", lambda b, o: _search(space={"l2": (NAN, 1e-2)}, directory=o), "l2", "finite", "nan"),
    api("search-fixed-keep_prob-0", lambda b, o: _search(fixed={"keep_prob": 0.0}, directory=o), "keep_prob",
        "(0, 1]"),
    api("search-data", lambda b, o: _search(data=b["count.npz"], directory=o), "40 examples", "30 labels"),
    api("hypermodel-unknown-model", lambda b, o: _hypermodel("nosuch"), "'nosuch'", "lenet5"),
    api("hypermodel-unknown-argument", lambda b, o: _hypermodel("lenet5", (8, 8, 1), 10, depth=3), "depth",
        "activation", "subsampling"),
    api("space-unknown-name", lambda b, o: _space({"dropout": (0.1, 0.5)}), "'dropout'", "keep_prob"),
    api("space-lr-nan", lambda b, o: _space({"learning_rate": (1e-4, NAN)}), "learning_rate", "finite"),
    api("space-keep_prob-1.5", lambda b, o: _space({"keep_prob": [0.5, 1.5]}), "keep_prob", "(0, 1]", "1.5"),
    api("space-low-above-high", lambda b, o: _space({"l2": (1e-2, 1e-6)}), "l2", "low must be < high"),
]

# -- the command lines, in-process --------------------------------------------------------------------------
CLI_CASES = [
    cli("zoo-unknown-model", "zoo.cli", lambda b, o: ["summary", "resnet21"], "'resnet21'", "resnet20"),
    cli("zoo-too-small", "zoo.cli", lambda b, o: ["summary", "resnet50", "--input-shape", "16,16,3"],
        "resnet50", "at least 32×32", "16×16"),
    cli("zoo-shape-text", "zoo.cli", lambda b, o: ["summary", "lenet5", "--input-shape", "a,b"], "--input-shape",
        "'a,b'", "32,32,3"),
    cli("zoo-classes-0", "zoo.cli", lambda b, o: ["summary", "lenet5", "--classes", "0"], "classes", ">= 1"),
    cli("zoo-command", "zoo.cli", lambda b, o: ["frobnicate"], "invalid choice", "'frobnicate'", "'list'"),
    cli("recipes-out-is-a-file", "recipes.lenet5", lambda b, o: ["--out", str(b.file)], "--out", "is a file",
        "folder"),
    cli("recipes-out-under-a-file", "recipes.lenet5", lambda b, o: ["--out", str(b.file / "runs")], "--out",
        "a_file is a file"),
    cli("recipes-missing-npz", "recipes.lenet5", lambda b, o: ["--data", b["missing.npz"]], "missing.npz",
        "not found"),
    cli("recipes-corrupt-npz", "recipes.lenet5", lambda b, o: ["--data", b["not_a_zip.npz"]], "not_a_zip.npz",
        "not a readable .npz"),
    cli("recipes-damaged-npz", "recipes.lenet5", lambda b, o: ["--data", b["damaged.npz"]], "damaged.npz",
        "corrupt"),
    cli("recipes-count-mismatch", "recipes.lenet5", lambda b, o: ["--data", b["count.npz"]], "40 examples",
        "30 labels"),
    cli("recipes-label-out-of-range", "recipes.lenet5", lambda b, o: ["--data", b["label_out_of_range.npz"]],
        "label 5", "[0, 2)"),
    cli("recipes-empty-data", "recipes.lenet5", lambda b, o: ["--data", b["empty.npz"]], "empty"),
    cli("recipes-idx-magic", "recipes.lenet5",
        lambda b, o: ["--data", "fashion_mnist", "--data-dir", b["idx_magic"]], "magic number 2052", "2051"),
    cli("recipes-idx-truncated", "recipes.lenet5",
        lambda b, o: ["--data", "fashion_mnist", "--data-dir", b["idx_truncated"]], "truncated"),
    cli("recipes-idx-count-mismatch", "recipes.lenet5",
        lambda b, o: ["--data", "fashion_mnist", "--data-dir", b["idx_count"]], "20 examples", "15 labels"),
    cli("recipes-idx-label-out-of-range", "recipes.lenet5",
        lambda b, o: ["--data", "fashion_mnist", "--data-dir", b["idx_label_range"]], "label 12", "[0, 10)"),
    cli("recipes-data-dir-missing", "recipes.lenet5",
        lambda b, o: ["--data", "fashion_mnist", "--data-dir", b["nowhere"]], "data_dir", "not a folder"),
    cli("recipes-l2-nan", "recipes.lenet5", lambda b, o: ["--l2", "nan"], "--l2", "finite", "'nan'"),
    cli("recipes-keep-prob-nan", "recipes.lenet5", lambda b, o: ["--keep-prob", "nan"], "--keep-prob", "finite"),
    cli("recipes-l1-negative", "recipes.lenet5", lambda b, o: ["--l1", "-0.5"], "--l1", ">= 0", "'-0.5'"),
    cli("recipes-unknown-model", "recipes.__main__", lambda b, o: ["--model", "resnet21"], "'resnet21'",
        "resnet20"),
    cli("recipes-optimizer", "recipes.__main__", lambda b, o: ["--model", "lenet5", "--optimizer", "lbfgs"],
        "--optimizer", "'lbfgs'", "adamw"),
    cli("recipes-too-small-alexnet", "recipes.alexnet", lambda b, o: ["--variant", "alexnet"],
        "at least 67×67", "8×8", "stem='small'"),
    cli("recipes-too-small-googlenet", "recipes.inception", lambda b, o: ["--variant", "googlenet"],
        "at least 15×15", "googlenet_small"),
    cli("recipes-too-small-resnet50", "recipes.resnet", lambda b, o: ["--variant", "resnet50"],
        "at least 32×32", "8×8"),
    cli("recipes-text-model-on-images", "recipes.lstm", lambda b, o: ["--variant", "lstm_text"], "lstm_text",
        "token", "(8, 8, 1)", "models that fit"),
    cli("tuning-directory-is-a-file", "tuning.__main__", lambda b, o: ["--directory", str(b.file)],
        "--directory", "is a file", "folder"),
    cli("tuning-directory-under-a-file", "tuning.__main__", lambda b, o: ["--directory", str(b.file / "x")],
        "--directory", "a_file is a file"),
    cli("tuning-space-empty-range", "tuning.__main__", lambda b, o: ["--space", "l2=:"], "--space l2", "LOW",
        "LOW:HIGH[:log|linear][:STEP]"),
    cli("tuning-space-sampling", "tuning.__main__", lambda b, o: ["--space", "l2=1e-6:1e-2:cubic"], "--space l2",
        "'cubic'", "log, linear or a STEP"),
    cli("tuning-space-no-name", "tuning.__main__", lambda b, o: ["--space", "=1:2"], "--space", "NAME=VALUE",
        "'=1:2'"),
    cli("tuning-space-too-many-parts", "tuning.__main__", lambda b, o: ["--space", "l2=1:2:log:3:4"],
        "--space l2", "LOW:HIGH[:log|linear][:STEP]"),
    cli("tuning-space-nan", "tuning.__main__", lambda b, o: ["--space", "keep_prob=0.5:nan"], "keep_prob",
        "finite", "nan"),
    cli("tuning-space-step", "tuning.__main__", lambda b, o: ["--space", "l2=1e-6:1e-2:log:-1"], "l2", "step",
        "> 1", "-1.0"),
    cli("tuning-space-twice", "tuning.__main__",
        lambda b, o: ["--space", "learning_rate=1e-4:1e-1", "--space", "learning_rate=1e-3:1e-2"],
        "--space learning_rate", "twice"),
    cli("tuning-space-unknown-name", "tuning.__main__", lambda b, o: ["--space", "dropout=0.1:0.5"], "'dropout'",
        "keep_prob"),
    cli("tuning-fix-l2-nan", "tuning.__main__", lambda b, o: ["--fix", "l2=nan"], "l2", "finite", "nan"),
    cli("tuning-fix-keep_prob-0", "tuning.__main__", lambda b, o: ["--fix", "keep_prob=0"], "keep_prob", "(0, 1]"),
    cli("tuning-fix-activation", "tuning.__main__", lambda b, o: ["--fix", "activation=swish"], "activation",
        "'swish'", "relu"),
    cli("tuning-preset", "tuning.__main__", lambda b, o: ["--preset", "strong"], "preset", "'strong'", "baseline"),
    cli("tuning-tuner", "tuning.__main__", lambda b, o: ["--tuner", "annealing"], "'annealing'", "bayesian"),
    cli("tuning-corrupt-npz", "tuning.__main__", lambda b, o: ["--data", b["truncated.npz"]], "truncated.npz",
        "not a readable .npz"),
    cli("tuning-too-small", "tuning.__main__", lambda b, o: ["--model", "resnet50"], "resnet50",
        "at least 32×32"),
    cli("tuning-project-name", "tuning.__main__", lambda b, o: ["--project-name", "a/b"], "project_name",
        "plain folder name", "'a/b'"),
]

# Defaults each command line gets unless the case gives them: a tiny run into `out`.
CLI_DEFAULTS = {
    "zoo.cli": lambda out: [],
    "recipes": lambda out: ["--out", str(out), "--quick", "--verbose", "0"],
    "tuning.__main__": lambda out: ["--model", "lenet5", "--data", "digits", "--directory", str(out),
                                    "--max-trials", "1", "--epochs", "1", "--limit", "100", "--quiet",
                                    "--no-retrain"],
}
PROGS = {"zoo.cli": "zoo", "tuning.__main__": "python -m tuning", "recipes.__main__": "recipes"}


def _full_argv(case, bad, out):
    argv = list(case.call(bad, out))
    defaults = CLI_DEFAULTS["recipes" if case.main.startswith("recipes") else case.main](out)
    given = {a for a in argv if a.startswith("--")}
    i = 0
    while i < len(defaults):  # the case's own options win over the defaults
        flag = defaults[i]
        takes_value = i + 1 < len(defaults) and not defaults[i + 1].startswith("--")
        if flag not in given:
            argv += defaults[i: i + 1 + takes_value]
        i += 1 + takes_value
    return argv


class _Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


# -- the tests ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", API_CASES, ids=[f"api-{c.id}" for c in API_CASES])
def test_api_refuses_bad_input(case, bad, tmp_path):
    out = tmp_path / "out"
    before = bad.snapshot()
    with pytest.raises(ValueError) as info:
        case.call(bad, out)
    message = str(info.value)
    for needle in case.needles:
        assert needle in message, (needle, message)
    assert "Traceback" not in message and len(message) < 2000, message
    assert not out.exists(), f"something was written: {sorted(p.name for p in out.rglob('*'))}"
    assert bad.snapshot() == before, "the bad files' folder changed"


@pytest.mark.parametrize("case", CLI_CASES, ids=[f"cli-{c.id}" for c in CLI_CASES])
def test_command_line_refuses_bad_input(case, bad, tmp_path, capsys):
    import importlib

    out = tmp_path / "out"
    argv = _full_argv(case, bad, out)
    main = importlib.import_module(case.main).main
    before = bad.snapshot()
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert_one_line_error(_Result(code, captured.err), *case.needles)
    prog = PROGS.get(case.main, case.main)
    assert captured.err.lstrip().startswith(prog), captured.err
    assert not out.exists(), f"something was written: {sorted(p.name for p in out.rglob('*'))}"
    assert bad.snapshot() == before, "the bad files' folder changed"


# -- the command lines, in real processes -------------------------------------------------------------------
_CAPABILITIES_THAT_IGNORE_PERMISSIONS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _as_an_ordinary_user():
    """preexec_fn: drop what lets root write into a read-only folder (no-op for other users)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in _CAPABILITIES_THAT_IGNORE_PERMISSIONS:
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _can_drop_capabilities():
    probe = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_as_an_ordinary_user, capture_output=True)
    return probe.returncode == 0


SUBPROCESS_CASES = [
    Case("python-m-zoo-unknown-model", lambda b, o: ["zoo", "summary", "lenet6"], ("'lenet6'", "lenet5")),
    Case("recipes-out-read-only", lambda b, o: ["recipes.lenet5", "--quick", "--out", str(b.readonly / "runs")],
         ("--out", "readonly", "not writable", "folder")),
    Case("tuning-directory-read-only", lambda b, o: [
        "tuning", "--model", "lenet5", "--data", "digits", "--max-trials", "1", "--epochs", "1", "--limit", "100",
        "--directory", str(b.readonly)], ("--directory", "readonly", "is not writable", "folder")),
]


@pytest.fixture(scope="module")
def processes(bad, tmp_path_factory):
    """Every SUBPROCESS_CASES command started at once (they spend their time importing TensorFlow)."""
    can_drop = _can_drop_capabilities()
    started = {"before": bad.snapshot()}
    for case in SUBPROCESS_CASES:
        if "read-only" in case.id and not can_drop:
            started[case.id] = None
            continue
        out = tmp_path_factory.mktemp(case.id)
        process = subprocess.Popen([sys.executable, "-m", *case.call(bad, out)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, cwd=REPO,
                                   env=dict(os.environ, PYTHONPATH=REPO), preexec_fn=_as_an_ordinary_user)
        started[case.id] = (process, out)
    yield started
    for key, entry in started.items():
        if key != "before" and entry is not None and entry[0].poll() is None:
            entry[0].kill()
            entry[0].wait()


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[f"process-{c.id}" for c in SUBPROCESS_CASES])
def test_command_line_refuses_bad_input_in_a_fresh_interpreter(case, bad, processes):
    if processes[case.id] is None:
        pytest.skip("running as root without CAP_SETPCAP: a read-only folder is writable for this process")
    before = processes["before"]
    process, out = processes[case.id]
    stdout, stderr = process.communicate(timeout=300)
    assert_one_line_error(_Result(process.returncode, stderr), *case.needles)
    assert stdout.strip() == "", stdout[-2000:]
    assert bad.snapshot() == before, "the bad files' folder changed"
    assert list(out.iterdir()) == []


def test_the_table_is_big_enough():
    tables = (API_CASES, CLI_CASES, SUBPROCESS_CASES)
    assert sum(len(table) for table in tables) >= 40
    for table in tables:
        assert len({case.id for case in table}) == len(table), "ids are unique within a table"
