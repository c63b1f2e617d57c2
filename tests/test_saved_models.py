"""Saved models load safely and predict the same, bit for bit, in a fresh interpreter.

Every registered model is built at its registry ``small_input_shape`` with every regularizer on (L1, L2,
dropout, batch norm), saved as ``.keras``; a recipe's trained ``model.keras`` (and ``best.keras``) joins
them. ONE fresh subprocess per group loads them all with ``keras.models.load_model(path, safe_mode=True)``
(which refuses Lambda layers and other arbitrary code) and compares its predictions with the in-process
ones with ``np.array_equal``, plus the weights, the regularizers, the dropout rates and the penalty
value. Inputs and expected outputs travel as ``.npy`` files read with ``allow_pickle=False``.

The models the recipes train by default (and the small CIFAR/8×8 variants) run by default; the
ImageNet-size ones (tens of millions of parameters, hundreds of MB each) and the deep CIFAR ResNets carry
``@pytest.mark.slow``. The loader imports ``zoo`` first: the zoo's own layers (``LocalResponseNormalization``,
the ResNet shortcut, the LSTM pieces) are registered Keras serializables in package ``zoo``.

Also here: the project's code never unpickles (no ``allow_pickle=True``, no ``pickle.load``), has no
``keras.layers.Lambda``, and the tuning chief binds 127.0.0.1 unless told otherwise.
"""

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from conftest import REPO

REGULARIZATION = zoo.Regularization(l1=1e-5, l2=1e-4, keep_prob=0.8, batch_norm=True)
FAST_MODELS = ("lenet5", "alexnet_small", "googlenet_small", "resnet20", "lstm", "lstm_text")
SLOW_MODELS = tuple(name for name in zoo.list_models() if name not in FAST_MODELS)

# The loader: run as a script in a fresh interpreter, and exec'd here for `signature`.
LOADER = r'''
import hashlib
import json
import sys

import numpy as np


def signature(model):
    """What must survive a save and a load besides the predictions (JSON-able, exact)."""
    import keras

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    regularizers, dropout = [], []
    for layer in _layers(model):
        for attribute in ("kernel_regularizer", "recurrent_regularizer", "depthwise_regularizer"):
            regularizer = getattr(layer, attribute, None)
            if regularizer is not None:
                config = {k: float(v) for k, v in regularizer.get_config().items()}
                regularizers.append([layer.name, attribute, type(regularizer).__name__, config])
        if isinstance(layer, keras.layers.Dropout):
            dropout.append([layer.name, float(layer.rate)])
    penalty = float(sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses))
    return {"weights_sha256": digest.hexdigest(), "weights": len(model.weights), "regularizers": regularizers,
            "dropout": dropout, "penalty": repr(penalty)}


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)
        for inner in ("forward_layer", "backward_layer", "layer"):  # Bidirectional, wrappers
            if getattr(layer, inner, None) is not None:
                yield getattr(layer, inner)


def main(manifest_path, report_path):
    import zoo  # noqa: F401  (registers the zoo's serializable layers)
    import keras

    report = {}
    for item in json.load(open(manifest_path)):
        try:
            model = keras.models.load_model(item["model"], safe_mode=True)
            x = np.load(item["x"], allow_pickle=False)
            expected = np.load(item["expected"], allow_pickle=False)
            got = model.predict(x, verbose=0)
            report[item["name"]] = {
                "equal": bool(got.shape == expected.shape and got.dtype == expected.dtype
                              and np.array_equal(got, expected)),
                "max_abs_diff": float(np.max(np.abs(got.astype("float64") - expected))) if got.shape == expected.shape else None,
                "signature": signature(model),
            }
        except Exception as error:  # noqa: BLE001  (reported per model, the test names it)
            report[item["name"]] = {"error": f"{type(error).__name__}: {error}"}
        keras.backend.clear_session()
    json.dump(report, open(report_path, "w"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
'''
_namespace: dict = {}
exec(compile(LOADER, "loader.py", "exec"), _namespace)  # noqa: S102  (our own text, above)
signature = _namespace["signature"]


def _input_for(entry, rng):
    shape = (2, *entry.small_input_shape)
    if entry.kind == "text":
        return rng.integers(1, 1000, size=shape).astype("int32")
    return rng.uniform(0.0, 1.0, size=shape).astype("float32")


def _save(name, model, x, folder, manifest):
    path = folder / f"{name}.keras"
    model.save(path)
    np.save(folder / f"{name}.x.npy", x, allow_pickle=False)
    np.save(folder / f"{name}.expected.npy", model.predict(x, verbose=0), allow_pickle=False)
    manifest.append({"name": name, "model": str(path), "x": str(folder / f"{name}.x.npy"),
                     "expected": str(folder / f"{name}.expected.npy"),
                     "signature": json.loads(json.dumps(signature(model)))})


def _save_registered(names, folder, manifest):
    rng = np.random.default_rng(0)
    for name in names:
        entry = zoo.get_entry(name)
        keras.utils.set_random_seed(0)
        model = entry.build(input_shape=entry.small_input_shape, classes=10, regularization=REGULARIZATION)
        assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers) or entry.kind != "image", name
        _save(name, model, _input_for(entry, rng), folder, manifest)
        del model
        keras.backend.clear_session()


def _load_in_a_fresh_interpreter(manifest, folder):
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "loader.py").write_text(LOADER)
    result = subprocess.run([sys.executable, str(folder / "loader.py"), str(folder / "manifest.json"),
                             str(folder / "report.json")], capture_output=True, text=True, timeout=900,
                            cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((folder / "report.json").read_text())
    assert set(report) == {item["name"] for item in manifest}
    failures = {}
    for item in manifest:
        got = report[item["name"]]
        if "error" in got:
            failures[item["name"]] = got["error"]
        elif not got["equal"]:
            failures[item["name"]] = f"predictions differ (max |diff| {got['max_abs_diff']})"
        elif got["signature"] != item["signature"]:
            diff = {k: (item["signature"][k], got["signature"][k]) for k in item["signature"]
                    if item["signature"][k] != got["signature"][k]}
            failures[item["name"]] = f"differs after loading: {diff}"
    assert not failures, failures
    return report


@pytest.mark.backends
def test_small_models_and_a_recipe_model_load_safely_and_predict_identically(tmp_path):
    from recipes.recipe import preset
    from recipes.train import run

    manifest: list = []
    _save_registered(FAST_MODELS, tmp_path, manifest)
    result = run(preset("lenet5", "full", limit=200, test_limit=40, epochs=1, batch_size=32), out=tmp_path / "runs",
                 verbose=0)
    from recipes.data import load_data

    x = load_data("digits", limit=200, test_limit=40).x_test[:16]
    for file in ("model.keras", "best.keras"):
        model = keras.models.load_model(result.folder / file, safe_mode=True)
        assert any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)
        _save(f"recipe_{file.split('.')[0]}", model, x, tmp_path, manifest)
    # the recipe's own file must be what was loaded: predict from it, not from the re-save
    manifest[-2]["model"] = str(result.folder / "model.keras")
    manifest[-1]["model"] = str(result.folder / "best.keras")
    for item in manifest:
        assert item["signature"]["regularizers"], f"{item['name']}: no regularizer to check"
    _load_in_a_fresh_interpreter(manifest, tmp_path)


@pytest.mark.slow
def test_every_other_registered_model_loads_safely_and_predicts_identically(tmp_path):
    manifest: list = []
    _save_registered(SLOW_MODELS, tmp_path, manifest)
    _load_in_a_fresh_interpreter(manifest, tmp_path)


def test_the_two_groups_cover_every_registered_model():
    assert sorted(FAST_MODELS + SLOW_MODELS) == zoo.list_models()


# -- nothing in the code unpickles or runs arbitrary code on load -------------------------------------------
def _project_files():
    root = Path(REPO)
    files = [p for folder in ("zoo", "recipes", "tuning", "tests", "bench") for p in (root / folder).rglob("*.py")]
    return [p for p in files if p.resolve() != Path(__file__).resolve()]


# Built from pieces so that this file does not match itself.
FORBIDDEN = {
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*" + "True"),
    "pickle.load(": re.compile(r"\bpickle\." + r"load\s*\("),
    "keras.layers.Lambda": re.compile(r"\blayers\." + r"Lambda\b|\bimport\s+Lambda\b|\bLambda\s*\("),
}


@pytest.mark.parametrize("what", sorted(FORBIDDEN))
def test_the_code_never_unpickles_or_uses_lambda_layers(what):
    assert len(_project_files()) > 20
    hits = []
    for path in _project_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FORBIDDEN[what].search(line):
                hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not hits, hits


def test_the_tuning_chief_binds_localhost_by_default():
    from tuning.__main__ import build_parser
    from tuning.distributed import LOCALHOST, parse_address

    search_module = sys.modules["tuning.search"]  # the attribute tuning.search is the function

    assert LOCALHOST == "127.0.0.1"
    assert parse_address("8000") == ("127.0.0.1", 8000)
    assert parse_address(":8000") == ("127.0.0.1", 8000)
    assert parse_address("0.0.0.0:8000") == ("0.0.0.0", 8000)  # only when asked
    assert inspect.signature(search_module.search).parameters["chief"].default is None  # no server by default
    assert build_parser().parse_args(["--model", "lenet5"]).chief is None
