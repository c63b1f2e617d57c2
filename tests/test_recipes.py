"""Recipes: the Recipe config, presets, optimizers and schedules, compile, and the run (resume, NaN).

The two training tests run in-process on 200 digits for a few epochs (seconds each).
"""

import csv
import json
import math

import keras
import numpy as np
import pytest

import zoo
from recipes import optim
from recipes.recipe import (BEST_RECIPES, data_sized_lambda, FAMILY_DEFAULTS, QUICK, REGULARIZATION_PRESETS, Recipe, family_defaults,
                            preset)
from recipes.train import INPROGRESS, RUN_FILES, TrainingDiverged, compile_model, run, work_dir_for


# -- Recipe --------------------------------------------------------------------------------------------
def test_recipe_round_trips_through_json():
    recipe = Recipe(model="lenet5", data="digits", model_kwargs={"activation": "tanh"},
                    regularization=zoo.Regularization(l1=1e-5, l2=1e-4, keep_prob=0.8, batch_norm=False),
                    augmentation="shift", optimizer="nesterov", learning_rate=0.05, schedule="step",
                    weight_decay=1e-4, batch_size=16, epochs=3, patience=2, clipnorm=2.0, seed=7,
                    limit=500, test_limit=100, baseline_error=0.01, validation_fraction=0.2)
    data = json.loads(json.dumps(recipe.to_dict()))
    again = Recipe.from_dict(data)
    assert again == recipe
    assert again.config_hash() == recipe.config_hash() and hash(again) == hash(recipe)
    assert recipe.replace(seed=8).config_hash() != recipe.config_hash()
    assert data["regularization"] == {"l1": 1e-5, "l2": 1e-4, "keep_prob": 0.8, "batch_norm": False}
    assert Recipe.from_json(recipe.to_json()) == recipe


def test_recipe_defaults_are_the_baseline():
    recipe = Recipe(model="lenet5")
    assert recipe.regularization == zoo.Regularization.none()
    assert recipe.augmentation == "none" and recipe.patience is None and recipe.preset == "custom"


@pytest.mark.parametrize(
    "changes, field, allowed",
    [
        ({"model": "lenet6"}, "model", "lenet5"),
        ({"data": "svhn"}, "data", "fashion_mnist"),
        ({"optimizer": "lbfgs"}, "optimizer", "adadelta"),
        ({"schedule": "exponential"}, "schedule", "plateau"),
        ({"augmentation": "mixup"}, "augmentation", "shift"),
        ({"learning_rate": 0.0}, "learning_rate", "> 0"),
        ({"learning_rate": math.nan}, "learning_rate", "> 0"),
        ({"learning_rate": -1e-3}, "learning_rate", "> 0"),
        ({"batch_size": 0}, "batch_size", ">= 1"),
        ({"epochs": 2.5}, "epochs", ">= 1"),
        ({"patience": 0}, "patience", "None"),
        ({"clipnorm": 0.0}, "clipnorm", "(0"),
        ({"seed": -1}, "seed", ">= 0"),
        ({"limit": 1}, "limit", ">= 2"),
        ({"validation_fraction": 1.0}, "validation_fraction", "(0, 1)"),
        ({"baseline_error": 1.5}, "baseline_error", "[0, 1]"),
        ({"weight_decay": -1e-4}, "weight_decay", "[0, inf)"),
        ({"weight_decay": 1e-4, "optimizer": "adam"}, "weight_decay", "adamw"),
        ({"preset": "winner"}, "preset", "early_stopping, full, best"),
        ({"model_kwargs": {"classes": 3}}, "model_kwargs", "regularization"),
        ({"model_kwargs": {"f": object()}}, "model_kwargs", "JSON"),
        ({"regularization": "l2"}, "regularization", "Regularization"),
    ],
)
def test_recipe_validation_names_the_field_and_the_allowed_values(changes, field, allowed):
    with pytest.raises(ValueError) as info:
        Recipe(**{"model": "lenet5", **changes})
    message = str(info.value)
    assert f"Recipe.{field}" in message, message
    assert allowed in message, message


def test_recipe_validation_of_regularization_and_from_dict():
    with pytest.raises(ValueError, match="keep_prob"):
        Recipe(model="lenet5", regularization={"keep_prob": 0.0})
    with pytest.raises(ValueError, match="unknown field.*learning_rte"):
        Recipe.from_dict({"model": "lenet5", "learning_rte": 0.1})
    assert Recipe(model="lenet5", data="some/folder").data_label == "folder"
    assert Recipe(model="lenet5", data="x/arrays.npz").data_label == "arrays"


def test_quick_shrinks_the_run():
    recipe = preset("lenet5", "full").quick()
    assert recipe.epochs == QUICK["epochs"] and recipe.limit == QUICK["limit"]
    assert recipe.test_limit == QUICK["test_limit"] and recipe.batch_size <= QUICK["batch_size"]
    assert preset("lenet5", "full", epochs=1, limit=100).quick().epochs == 1
    assert preset("lenet5", "full", limit=100).quick().limit == 100


# -- presets -------------------------------------------------------------------------------------------
def test_the_best_preset_is_the_measured_recipe_with_flips_only_where_they_fit():
    fashion = preset("lenet5", "best", data="fashion_mnist")
    assert fashion.preset == "best" and fashion.augmentation == "flip" and fashion.tta == "flip"
    assert (fashion.label_smoothing, fashion.ema, fashion.erasing, fashion.epochs) == (0.1, 0.999, 0.25, 100)
    assert fashion.regularization == zoo.Regularization(keep_prob=0.9, batch_norm=True)
    digits = preset("lenet5", "best")  # digits: no mirror images, no flip TTA
    assert digits.augmentation == family_defaults("lenet5").augmentation and digits.tta == "none"
    assert digits.label_smoothing == 0.1 and preset("lenet5", "best", epochs=3).epochs == 3
    resnet = preset("resnet20", "best", data="fashion_mnist")
    assert (resnet.optimizer, resnet.epochs, resnet.warmup_epochs, resnet.tta) == ("nesterov", 15, 1, "flip")
    assert preset("alexnet_small", "best", data="fashion_mnist").epochs == 45
    lstm = preset("lstm", "best", data="fashion_mnist")  # flips and flip TTA gained nothing on the LSTM (bench rows)
    assert (lstm.epochs, lstm.ema, lstm.augmentation, lstm.tta) == (40, 0.999, "none", "none")
    googlenet = preset("googlenet_small", "best", data="fashion_mnist")
    assert googlenet.optimizer == family_defaults("googlenet").optimizer
    assert (googlenet.augmentation, googlenet.tta, googlenet.warmup_epochs, googlenet.ema, googlenet.erasing,
            googlenet.epochs) == ("flip", "flip", 1, 0.999, 0.25, 60)
    for family, best in BEST_RECIPES.items():
        assert set(best.fields) | set(best.flips) <= set(Recipe.__dataclass_fields__), family
        assert best.measured
    for model in ("lenet5", "alexnet_small", "googlenet_small", "resnet20", "lstm"):
        assert Recipe.from_dict(preset(model, "best", data="fashion_mnist").to_dict()).preset == "best"


def test_presets_give_the_regularization_they_claim():
    fam = family_defaults("lenet5")
    none = zoo.Regularization.none()
    got = {name: preset("lenet5", name) for name in REGULARIZATION_PRESETS}
    assert got["baseline"].regularization == none
    assert got["baseline"].augmentation == "none" and got["baseline"].patience is None
    assert got["l2"].regularization == none.replace(l2=fam.l2) and fam.l2 > 0
    assert got["l1"].regularization == none.replace(l1=fam.l1) and fam.l1 > 0
    assert got["dropout"].regularization == none.replace(keep_prob=fam.keep_prob) and fam.keep_prob < 1
    assert got["batchnorm"].regularization == none.replace(batch_norm=True)
    assert got["augment"].regularization == none and got["augment"].augmentation != "none"
    assert got["early_stopping"].regularization == none and got["early_stopping"].patience == fam.patience
    full = got["full"]
    assert full.regularization == zoo.Regularization(l1=0.0, l2=fam.l2, keep_prob=fam.full_keep_prob,
                                                     batch_norm=True)
    assert full.augmentation != "none" and full.patience == fam.patience
    for name, recipe in got.items():
        assert recipe.preset == name and recipe.model == "lenet5"
        # optimization settings are the family's in every preset
        assert (recipe.optimizer, recipe.learning_rate, recipe.epochs) == (fam.optimizer, fam.learning_rate, fam.epochs)
        assert name in ("augment", "full") or recipe.augmentation == "none"


def test_the_presets_lambda_is_sized_to_the_data():
    """λ·M/m on a subset (the course's λ_c/(2m) with λ_c fixed); the family's λ on the whole data set."""
    fam = family_defaults("lenet5")
    assert data_sized_lambda(1e-4, "fashion_mnist", None) == 1e-4
    assert data_sized_lambda(1e-4, "fashion_mnist", 60000) == data_sized_lambda(1e-4, "fashion_mnist", 70000) == 1e-4
    assert data_sized_lambda(1e-4, "fashion_mnist", 2250) == pytest.approx(1e-4 * 60000 / 2250)
    assert data_sized_lambda(1e-4, "digits", 719) == pytest.approx(2e-4)
    assert data_sized_lambda(1e-4, "some/folder", 10) == 1e-4           # M unknown before loading
    small = {name: preset("lenet5", name, data="fashion_mnist", limit=2250) for name in ("l2", "l1", "full")}
    assert small["l2"].regularization.l2 == pytest.approx(fam.l2 * 60000 / 2250)
    assert small["l1"].regularization.l1 == pytest.approx(fam.l1 * 60000 / 2250)
    assert small["full"].regularization.l2 == pytest.approx(fam.l2 * 60000 / 2250)
    assert preset("lenet5", "l2", data="fashion_mnist").regularization.l2 == fam.l2
    assert preset("lenet5", "l2", data="fashion_mnist", limit=2250, l2=1e-5).regularization.l2 == 1e-5  # as given
    assert preset("lenet5", "dropout", data="fashion_mnist", limit=2250).regularization.l2 == 0.0


def test_training_examples_are_the_data_sets_own():
    from recipes.data import TRAINING_EXAMPLES, load_data

    splits = load_data("digits", validation_fraction=0.1)
    assert len(splits.y_train) + len(splits.y_val) == TRAINING_EXAMPLES["digits"]


def test_family_defaults_follow_the_papers():
    assert FAMILY_DEFAULTS["lenet"].optimizer == "adam"
    alexnet = FAMILY_DEFAULTS["alexnet"]
    assert (alexnet.optimizer, alexnet.learning_rate, alexnet.l2, alexnet.keep_prob) == ("momentum", 0.01, 5e-4 / 2, 0.5)
    resnet = FAMILY_DEFAULTS["resnet"]
    assert (resnet.optimizer, resnet.learning_rate, resnet.schedule) == ("momentum", 0.1, "cosine")
    assert resnet.l2 == pytest.approx(1e-4 / 2) and resnet.full_keep_prob == 1.0
    lstm = FAMILY_DEFAULTS["lstm"]
    assert (lstm.optimizer, lstm.clipnorm) == ("adam", 1.0)
    r = preset("resnet20", "full")
    assert r.regularization.l2 == pytest.approx(5e-5) and r.weight_decay == 0.0 and r.optimizer == "momentum"
    a = preset("alexnet_small", "l2")
    assert a.regularization.l2 == pytest.approx(2.5e-4) and a.schedule == "plateau"


def test_preset_overrides_and_errors():
    r = preset("lenet5", "full", l2=1e-3, keep_prob=0.5, batch_norm=False, epochs=3, data="mnist",
               augmentation="none", patience=None)
    assert r.regularization == zoo.Regularization(l2=1e-3, keep_prob=0.5, batch_norm=False)
    assert (r.epochs, r.data, r.augmentation, r.patience) == (3, "mnist", "none", None)
    r = preset("lenet5", "baseline", regularization={"l1": 1e-4, "batch_norm": False})
    assert r.regularization == zoo.Regularization(l1=1e-4, batch_norm=False)
    with pytest.raises(ValueError, match="preset must be one of baseline, l2"):
        preset("lenet5", "strong")
    with pytest.raises(ValueError, match="unknown override.*lr"):
        preset("lenet5", "l2", lr=0.1)
    with pytest.raises(ValueError, match="unknown model name"):
        preset("lenet7", "l2")
    with pytest.raises(ValueError, match="keep_prob"):
        preset("lenet5", "dropout", keep_prob=0.0)


# -- optimizers and schedules -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [
    ("sgd", keras.optimizers.SGD), ("momentum", keras.optimizers.SGD), ("nesterov", keras.optimizers.SGD),
    ("rmsprop", keras.optimizers.RMSprop), ("adam", keras.optimizers.Adam), ("adamw", keras.optimizers.AdamW),
    ("adagrad", keras.optimizers.Adagrad), ("adadelta", keras.optimizers.Adadelta),
])
def test_make_optimizer_by_name(name, cls):
    opt = optim.make_optimizer(name, 0.01, clipnorm=1.0)
    assert type(opt) is cls and opt.clipnorm == 1.0
    assert float(opt.learning_rate) == pytest.approx(0.01)
    if cls is keras.optimizers.SGD:
        assert opt.momentum == (0.0 if name == "sgd" else 0.9)
        assert opt.nesterov == (name == "nesterov")
    assert set(optim.OPTIMIZERS) >= {name}


def test_schedules():
    step = optim.make_schedule(1.0, "step", epochs=4, steps_per_epoch=10)
    assert [float(step(s)) for s in (0, 19, 21, 29, 31, 39)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert isinstance(step, keras.optimizers.schedules.PiecewiseConstantDecay)
    cosine = optim.make_schedule(1.0, "cosine", epochs=2, steps_per_epoch=5)
    assert isinstance(cosine, keras.optimizers.schedules.CosineDecay)
    assert float(cosine(0)) == pytest.approx(1.0) and float(cosine(5)) == pytest.approx(0.5) and float(cosine(10)) == pytest.approx(0.0)
    assert optim.make_schedule(0.3, "plateau") == 0.3 and optim.make_schedule(0.3, "constant") == 0.3
    assert optim.make_schedule(1.0, "step", epochs=1, steps_per_epoch=1)(0) is not None  # tiny runs still valid
    (plateau,) = optim.schedule_callbacks("plateau", patience=2)
    assert isinstance(plateau, keras.callbacks.ReduceLROnPlateau) and plateau.patience == 2 and plateau.factor == 0.1
    assert plateau.monitor == "val_loss"
    assert optim.schedule_callbacks("cosine") == [] and optim.schedule_callbacks("constant") == []


@pytest.mark.parametrize("call, message", [
    (lambda: optim.make_optimizer("adamax", 0.1), "optimizer must be one of sgd, momentum"),
    (lambda: optim.make_optimizer("sgd", 0.0), "learning_rate"),
    (lambda: optim.make_optimizer("sgd", -0.1), "learning_rate"),
    (lambda: optim.make_optimizer("sgd", math.nan), "learning_rate"),
    (lambda: optim.make_optimizer("sgd", 0.1, schedule="linear"), "schedule must be one of constant, step"),
    (lambda: optim.make_optimizer("adam", 0.1, weight_decay=1e-4), "adamw"),
    (lambda: optim.make_optimizer("sgd", 0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: optim.make_optimizer("sgd", 0.1, clipnorm=0.0), "clipnorm"),
    (lambda: optim.make_optimizer("sgd", 0.1, schedule="cosine", epochs=0), "epochs"),
    (lambda: optim.schedule_callbacks("sometimes"), "schedule"),
])
def test_optimizer_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_sgd_weight_decay_equals_l2_with_half_lambda():
    """The documented rule: SGD weight decay wd trains exactly like an L2 penalty with λ = wd / 2."""
    wd, lr = 0.1, 0.5
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.integers(0, 3, size=16)
    kernel = rng.normal(size=(4, 3)).astype("float32")

    def trained(regularizer, weight_decay):
        layer = keras.layers.Dense(3, use_bias=False, activation="softmax", kernel_regularizer=regularizer)
        model = keras.Sequential([keras.Input((4,)), layer])
        layer.kernel.assign(kernel)
        model.compile(optim.make_optimizer("sgd", lr, weight_decay=weight_decay),
                      loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
        return keras.ops.convert_to_numpy(layer.kernel)

    decayed = trained(None, wd)
    penalized = trained(keras.regularizers.L2(wd / 2), 0.0)
    plain = trained(None, 0.0)
    np.testing.assert_allclose(decayed, penalized, rtol=1e-5, atol=1e-6)
    assert not np.allclose(decayed, plain, atol=1e-4)


def test_compile_model_uses_the_recipe():
    recipe = preset("lenet5", "l2", optimizer="nesterov", learning_rate=0.02, schedule="step", clipnorm=3.0)
    model = zoo.build("lenet5", input_shape=(8, 8, 1), classes=10)
    assert compile_model(model, recipe, steps_per_epoch=7) is model
    opt = model.optimizer
    assert isinstance(opt, keras.optimizers.SGD) and opt.nesterov and opt.clipnorm == 3.0
    assert isinstance(opt._learning_rate, keras.optimizers.schedules.PiecewiseConstantDecay)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert not model.loss.get_config()["from_logits"]  # the zoo model ends in softmax
    logits = zoo.build("lenet5", input_shape=(8, 8, 1), classes=10, classifier_activation=None)
    assert compile_model(logits, recipe, 7).loss.get_config()["from_logits"]


# -- the run -------------------------------------------------------------------------------------------
def _history_epochs(path):
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


class _InterruptAt(keras.callbacks.Callback):
    """Dies at the end of one epoch, as a killed process would (before that epoch's backup)."""

    def __init__(self, epoch):
        super().__init__()
        self.at = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise RuntimeError(f"killed at epoch {epoch}")


class _Epochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


SMALL = dict(model="lenet5", data="digits", limit=200, test_limit=60, batch_size=32, epochs=4,
             regularization=zoo.Regularization(batch_norm=False))


def test_backup_and_restore_resumes_a_killed_run(tmp_path):
    recipe = Recipe(**SMALL, patience=3, optimizer="momentum", learning_rate=0.02, schedule="cosine")
    with pytest.raises(RuntimeError, match="killed at epoch 2"):
        run(recipe, out=tmp_path, verbose=0, callbacks=[_InterruptAt(2)])

    work = work_dir_for(recipe, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [INPROGRESS], "a killed run leaves no complete-looking folder"
    assert (work / "backup").is_dir() and not (work / "metrics.json").exists()
    assert _history_epochs(work / "history.csv") == [0, 1]

    seen = _Epochs()
    result = run(recipe, out=tmp_path, verbose=0, callbacks=[seen])  # the same command again
    assert seen.seen == [2, 3], "the rerun starts at epoch 2"
    assert result.metrics["resumed_from_epoch"] == 2
    assert _history_epochs(result.folder / "history.csv") == [0, 1, 2, 3]
    assert result.metrics["epochs_run"] == 4
    assert not work.exists() and not (tmp_path / INPROGRESS).exists()
    assert result.folder.name.startswith("lenet5-digits-custom-")
    assert Recipe.from_json((result.folder / "config.json").read_text()) == recipe  # its machine block aside
    for name in RUN_FILES + ("best.keras",):
        assert (result.folder / name).is_file(), name
    assert not (result.folder / "backup").exists() and not (result.folder / "LOCK").exists()
    metrics = json.loads((result.folder / "metrics.json").read_text())
    _assert_numeric_setup(metrics["numeric_setup"])
    config = json.loads((result.folder / "config.json").read_text())
    assert config["machine"] == metrics["numeric_setup"]
    assert {k: v for k, v in config.items() if k != "machine"} == json.loads(recipe.to_json())
    assert metrics["test_accuracy"] == result.metrics["test_accuracy"] and 0 <= metrics["test_accuracy"] <= 1
    assert metrics["verdict"]["kind"] == result.verdict.kind
    assert (result.folder / "verdict.txt").read_text().startswith("Verdict: ")


def _assert_numeric_setup(setup):
    """The numeric set-up a run records (zoo._quiet.numeric_setup): this process's."""
    from zoo._quiet import CPU_FLAGS, onednn_enabled

    assert {"onednn", "intra_op_threads", "cpu_flags", "tensorflow", "keras"} <= set(setup), setup
    import tensorflow as tf

    assert setup["onednn"] is onednn_enabled() and isinstance(setup["onednn"], bool)
    assert setup["intra_op_threads"] == tf.config.threading.get_intra_op_parallelism_threads()
    assert set(setup["cpu_flags"]) <= set(CPU_FLAGS)
    assert (setup["tensorflow"], setup["keras"]) == (tf.__version__, keras.__version__)


class _BlowUpAt(keras.callbacks.Callback):
    """Raises the learning rate a million-fold from one epoch on: the loss goes NaN there."""

    def __init__(self, epoch):
        super().__init__()
        self.at = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            self.model.optimizer.learning_rate.assign(1e7)


def test_a_nan_run_stops_with_a_message_and_keeps_its_last_good_checkpoint(tmp_path):
    recipe = Recipe(**{**SMALL, "epochs": 3}, optimizer="sgd", learning_rate=0.01)
    with pytest.raises(TrainingDiverged, match=r"NaN or infinite at epoch 2.*best\.keras.*lower the learning rate"):
        run(recipe, out=tmp_path, verbose=0, callbacks=[_BlowUpAt(1)])
    assert [p.name for p in tmp_path.iterdir()] == [INPROGRESS]
    work = work_dir_for(recipe, tmp_path)
    assert not (work / "backup").exists(), "no backup: the same command starts afresh, not into the NaN"
    assert (work / "FAILED.txt").read_text().startswith("training diverged")
    best = keras.saving.load_model(work / "best.keras")
    assert all(np.all(np.isfinite(w)) for w in best.get_weights())
