"""The trained weights the zoo ships (``zoo.pretrained``, ``weights="fashion_mnist"``): the records' schema
recomputed from the files, loading, integrity, the keras.applications rules, ``zoo weights`` and
``zoo predict``, and the re-verification: every shipped file scores its recorded test accuracy."""

import hashlib
import json
import os
import shutil
import sys
import tomllib

import numpy as np
import pytest

import zoo
from zoo import pretrained
from recipes import publish
from recipes.recipe import Recipe
from conftest import assert_one_line_error
from test_data import _fashion_dir

RECORDS = pretrained.records()
KEYS = [pretrained.record_key(r) for r in RECORDS]
BUDGET_BYTES = 15_000_000


def test_there_are_shipped_weights_for_every_small_family():
    shipped = {(r["model"], r["data"]["name"]) for r in RECORDS}
    assert ("lenet5", "digits") in shipped  # the main job's model
    families = {zoo.get_entry(m).family for m, data in shipped if data == "fashion_mnist"}
    assert families >= {"lenet", "alexnet", "resnet", "lstm"}, families


@pytest.mark.parametrize("record", RECORDS, ids=KEYS)
def test_record_schema_matches_its_file(record):
    assert set(pretrained.RECORD_FIELDS) <= set(record), set(pretrained.RECORD_FIELDS) - set(record)
    path = pretrained.weights_path(record)
    assert path.stat().st_size == record["file_bytes"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
    assert record["weights"] == pretrained.version_name(record["tag"], record["version"])
    assert record["file"] == f"{record['model']}.{record['weights']}.weights.h5"
    assert record["recipe_sha256"] == publish.recipe_sha256(Recipe.from_dict(record["recipe"]).to_dict())
    assert record["recipe"]["model"] == record["model"] and record["recipe"]["data"] == record["data"]["name"]
    assert len(record["class_names"]) == record["classes"]
    assert zoo.get_entry(record["model"]).family == record["family"]
    metrics = record["metrics"]
    for key in ("test_accuracy", "test_accuracy_tta", "val_accuracy", "train_accuracy", "epochs_run", "train_minutes"):
        assert metrics[key] is not None, key
    assert record["versions"]["keras"] and record["versions"]["tensorflow"]
    assert isinstance(record["numeric_setup"].get("onednn"), bool)


def test_weights_fit_the_budget_and_ship_as_package_data():
    assert sum(r["file_bytes"] for r in RECORDS) <= BUDGET_BYTES
    on_disk = sorted(p.name for p in pretrained.WEIGHTS_DIR.glob("*.weights.h5"))
    assert on_disk == sorted(r["file"] for r in RECORDS)  # no file without a record, one record per file
    assert len(set(KEYS)) == len(KEYS)
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "pyproject.toml"), "rb") as handle:
        package_data = tomllib.load(handle)["tool"]["setuptools"]["package-data"]["zoo"]
    assert "pretrained/*.weights.h5" in package_data and "pretrained/records.json" in package_data


@pytest.mark.parametrize("record", RECORDS, ids=KEYS)
def test_every_weight_loads_into_its_builder(record):
    model = zoo.build(record["model"], weights=record["weights"])
    assert model.count_params() == record["params"]
    assert tuple(model.input_shape[1:]) == tuple(record["input_shape"])
    x = np.random.default_rng(0).uniform(0, 255, size=(4, *record["input_shape"])).astype("float32")
    p = model.predict(x, verbose=0)
    assert p.shape == (4, record["classes"])
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-5)  # probabilities, like keras.applications
    normalization = model.get_layer("normalization")
    np.testing.assert_allclose(np.ravel(normalization.mean), record["preprocessing"]["mean"], rtol=1e-5)


def test_a_tag_is_its_highest_version_and_versions_stay_loadable():
    for record in RECORDS:
        tagged = [r for r in RECORDS if r["model"] == record["model"] and r["tag"] == record["tag"]]
        assert pretrained.find_record(record["model"], record["tag"])["version"] == max(r["version"] for r in tagged)
        assert pretrained.find_record(record["model"], record["weights"]) == record


def test_unknown_weight_names_list_what_exists():
    with pytest.raises(pretrained.WeightsError, match=r"lenet5: no weights named 'imagenet_v9'.*'digits'"):
        zoo.lenet5(weights="imagenet_v9")
    with pytest.raises(ValueError, match="alexnet: no weights named 'fashion'"):
        zoo.build("alexnet", weights="fashion")


@pytest.fixture
def digits_record():
    return pretrained.find_record("lenet5", "digits")


@pytest.fixture
def weights_copy(tmp_path, monkeypatch, digits_record):
    """The shipped files copied to ``tmp_path``, which ``zoo.pretrained`` then reads: (path of the digits file)."""
    shutil.copytree(pretrained.WEIGHTS_DIR, tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "pretrained")
    return tmp_path / "pretrained" / digits_record["file"]


@pytest.mark.parametrize("damage", ["altered byte", "truncated", "missing"])
def test_a_damaged_file_is_an_error_naming_it_never_random_weights(weights_copy, damage):
    data = bytearray(weights_copy.read_bytes())
    if damage == "altered byte":
        data[len(data) // 2] ^= 0xFF
        weights_copy.write_bytes(bytes(data))
    elif damage == "truncated":
        weights_copy.write_bytes(bytes(data[:-100]))
    else:
        weights_copy.unlink()
    word = {"altered byte": "altered", "truncated": "truncated", "missing": "missing"}[damage]
    with pytest.raises(pretrained.WeightsError, match=rf"lenet5\.digits_v1: weights file .*{weights_copy.name}.* {word}"):
        zoo.lenet5(weights="digits")


def test_the_keras_applications_rules(digits_record):
    with pytest.raises(ValueError, match=r"classes=5 with include_top=True.*10 classes"):
        zoo.lenet5(weights="digits", classes=5)
    with pytest.raises(ValueError, match="batch_norm=False but the weights were trained with batch_norm=True"):
        zoo.lenet5(weights="digits", regularization=zoo.Regularization(batch_norm=False))
    with pytest.raises(ValueError, match=r"input_shape \(28, 28, 1\) differs"):
        zoo.lenet5(weights="digits", input_shape=(28, 28, 1))
    with pytest.raises(ValueError, match="input_tensor cannot be combined"):
        import keras

        zoo.lenet5(weights="digits", input_tensor=keras.Input((8, 8, 1)))


def test_include_top_false_is_the_trained_backbone(digits_record):
    full = zoo.lenet5(weights="digits")
    backbone = zoo.lenet5(weights="digits", include_top=False, classes=3)  # classes are free without the top
    x = np.random.default_rng(1).uniform(0, 16, size=(5, 8, 8, 1)).astype("float32")
    import keras

    inner = keras.Model(full.input, full.get_layer(backbone.layers[-1].name).output)
    np.testing.assert_allclose(backbone.predict(x, verbose=0), inner.predict(x, verbose=0), atol=1e-6)
    # a new regularization's λ and keep-prob are the user's (they carry no weights): same outputs at inference
    tuned = zoo.lenet5(weights="digits", regularization=zoo.Regularization(l2=1e-3, keep_prob=0.5))
    np.testing.assert_allclose(tuned.predict(x, verbose=0), full.predict(x, verbose=0), atol=1e-6)
    assert tuned.losses  # the L2 penalty is there for fine-tuning


def test_zoo_weights_lists_the_records_without_tensorflow(run_cli):
    result = run_cli("zoo", "weights")
    assert result.returncode == 0, result.stderr
    for key in KEYS:
        assert key in result.stdout
    probe = run_cli(sys.executable, "-X", "importtime", "-m", "zoo", "weights")
    imported = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
    assert "tensorflow" not in imported and "keras" not in imported
    one = run_cli("zoo", "weights", "lenet5.digits")
    assert json.loads(one.stdout)["weights"] == "digits_v1"
    assert_one_line_error(run_cli("zoo", "weights", "lenet5.nope"), "no weights named 'nope'")


def test_zoo_predict_prints_the_top_classes(run_cli, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.save(tmp_path / "three.npy", digits.images[:3].astype("float32"))
    result = run_cli("zoo", "predict", "lenet5", "--weights", "digits", str(tmp_path / "three.npy"), "--top", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert [line.split(": ")[1].split()[0] for line in lines] == [str(d) for d in digits.target[:3]]
    assert_one_line_error(run_cli("zoo", "predict", "lenet5", "--weights", "digits", str(tmp_path / "none.npy")),
                          "does not exist")
    np.save(tmp_path / "bad.npy", np.zeros((3, 5)))
    assert_one_line_error(run_cli("zoo", "predict", "lenet5", "--weights", "digits", str(tmp_path / "bad.npy")),
                          "has shape (3, 5)")
    assert_one_line_error(run_cli("zoo", "predict", "lenet5", "--weights", "cifar", str(tmp_path / "three.npy")),
                          "no weights named 'cifar'")


def _needs_data(record):
    marks = []
    if record["data"]["name"] == "fashion_mnist":
        marks = [pytest.mark.data, pytest.mark.skipif(_fashion_dir() is None, reason="Fashion-MNIST IDX files "
                                                      "not installed (apt-get install dataset-fashion-mnist)")]
    return pytest.param(record, id=pretrained.record_key(record), marks=marks)


@pytest.mark.parametrize("record", [_needs_data(r) for r in RECORDS])
def test_every_shipped_weight_scores_its_recorded_accuracy(record):
    """Re-verification on the full test split (10,000 Fashion-MNIST images): within 2 images."""
    scores = publish.score_shipped(record)
    n = scores["test_examples"]
    assert n == record["metrics"]["test_examples"] == record["data"]["test_examples"]
    assert abs(scores["test_accuracy"] - record["metrics"]["test_accuracy"]) * n <= 2 + 0.5
    if record["metrics"]["tta"] != "none":
        assert abs(scores["test_accuracy_tta"] - record["metrics"]["test_accuracy_tta"]) * n <= 2 + 0.5


def _assert_same_weights(a, b):
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)


def test_a_recipe_starts_from_shipped_weights_and_can_freeze_the_backbone():
    from recipes import pipeline

    recipe = Recipe(model="lenet5", data="digits", preset="full", epochs=1, limit=200, test_limit=50,
                    regularization=zoo.Regularization(l2=1e-4, keep_prob=0.9, batch_norm=True),
                    weights="digits", freeze_backbone=True)
    prepared = pipeline.prepare(recipe)
    shipped = zoo.lenet5(weights="digits")
    for name in ("c1_conv", "c3_bn", "c5_conv", "f6_dense", "predictions"):  # same classes: the top too
        _assert_same_weights(prepared.model.get_layer(name), shipped.get_layer(name))
    # the model's own Normalization, adapted on this recipe's 200 training images, not the weights'
    assert not np.allclose(np.ravel(prepared.model.get_layer("normalization").mean),
                           shipped.get_layer("normalization").mean)
    trainable = {layer.name for layer in prepared.model.layers if layer.trainable_weights}
    assert trainable == {"c5_conv", "c5_bn", "f6_dense", "f6_bn", "predictions"}  # the backbone ends at S4
    before = prepared.model.get_layer("c1_conv").get_weights()[0].copy()
    pipeline.fit(prepared, epochs=1, verbose=0)
    np.testing.assert_array_equal(prepared.model.get_layer("c1_conv").get_weights()[0], before)


def test_a_new_head_where_the_classes_differ():
    import keras

    from recipes.modeling import start_from_weights
    from zoo.weights import normalized_model

    reg = zoo.Regularization(l2=1e-4, keep_prob=0.9, batch_norm=True)
    model = normalized_model(zoo.lenet5, (8, 8, 1), {"classes": 3, "regularization": reg})
    model.get_layer("normalization").adapt(np.random.default_rng(0).uniform(0, 16, (20, 8, 8, 1)))
    fresh_head = model.get_layer("predictions").get_weights()[0].copy()
    copied = start_from_weights(model, "lenet5", "digits")
    assert "c1_conv" in copied and "predictions" not in copied and "f6_dense" not in copied
    np.testing.assert_array_equal(model.get_layer("predictions").get_weights()[0], fresh_head)
    _assert_same_weights(model.get_layer("c3_conv"), zoo.lenet5(weights="digits").get_layer("c3_conv"))
    assert isinstance(model, keras.Model)


def test_recipe_weights_are_checked_before_anything_trains(run_cli):
    with pytest.raises(ValueError, match="Recipe.weights: lenet5: no weights named 'fashion'"):
        Recipe(model="lenet5", weights="fashion")
    with pytest.raises(ValueError, match="freeze_backbone=True needs weights"):
        Recipe(model="lenet5", freeze_backbone=True)
    assert_one_line_error(run_cli(sys.executable, "-m", "recipes.lenet5", "--weights", "nope"), "no weights named 'nope'")


@pytest.fixture
def empty_zoo(tmp_path, monkeypatch):
    """``zoo.pretrained`` reading an empty folder (what recipes.publish writes into)."""
    folder = tmp_path / "pretrained"
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(pretrained, "RECORDS_FILE", folder / "records.json")
    return folder


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from recipes.train import run

    recipe = Recipe(model="lenet5", data="digits", preset="full", epochs=2, limit=200, test_limit=60,
                    regularization=zoo.Regularization(l2=1e-4, keep_prob=0.9, batch_norm=True), batch_size=32)
    return run(recipe, out=str(tmp_path_factory.mktemp("runs")), verbose=0).folder


def test_publish_ships_the_next_version_and_never_replaces_one(empty_zoo, tiny_run):
    first = publish.publish(tiny_run, "digits", command="python -m recipes.lenet5 --limit 200 --epochs 2")
    assert first["weights"] == "digits_v1" and (empty_zoo / "lenet5.digits_v1.weights.h5").is_file()
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert abs(first["metrics"]["test_accuracy"] - metrics["test_accuracy"]) * 60 <= 2.5
    assert first["numeric_setup"]["onednn"] in (True, False) and first["machine"]["cpu"]
    second = publish.publish(tiny_run, "digits", command="again")
    assert second["weights"] == "digits_v2"
    assert pretrained.find_record("lenet5", "digits")["weights"] == "digits_v2"  # the tag follows
    assert pretrained.find_record("lenet5", "digits_v1")["sha256"] == first["sha256"]  # v1 untouched
    v1 = zoo.lenet5(weights="digits_v1")
    x = np.random.default_rng(0).uniform(0, 16, size=(3, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(v1.predict(x, verbose=0), zoo.lenet5(weights="digits").predict(x, verbose=0),
                               atol=1e-6)  # the same run published twice


def test_a_failed_publish_leaves_nothing_behind(empty_zoo, tiny_run, monkeypatch):
    def broken(record, model, folder):
        raise RuntimeError("the check failed")

    monkeypatch.setattr(publish, "_check", broken)
    with pytest.raises(RuntimeError, match="the check failed"):
        publish.publish(tiny_run, "digits", command="x")
    assert pretrained.records() == [] and not list(empty_zoo.glob("*.h5"))


def test_publish_command_line_refuses_bad_input(run_cli, tmp_path):
    assert_one_line_error(run_cli(sys.executable, "-m", "recipes.publish", str(tmp_path), "--tag", "digits_v2"),
                          "--tag", "digits_v2")
    assert_one_line_error(run_cli(sys.executable, "-m", "recipes.publish", str(tmp_path), "--tag", "digits"),
                          "not a finished run folder")


def test_zoo_export_of_shipped_weights_is_checked_against_keras(run_cli, tmp_path):
    out = tmp_path / "lenet5.tflite"
    result = run_cli("zoo", "export", "lenet5", "--weights", "digits", "--format", "tflite", "--out", str(out),
                     "--check", "16")
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.is_file() and result.stdout.startswith("tflite: ") and "tolerance 0.0001" in result.stdout
    assert_one_line_error(run_cli("zoo", "export", "lenet5", "--weights", "cifar", "--format", "tflite",
                                  "--out", str(tmp_path / "x.tflite")), "no weights named 'cifar'")
