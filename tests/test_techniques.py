"""Training techniques of the one training path: label smoothing, EMA of the weights, warm-up, test-time
augmentation, random erasing, MixUp and CutMix — each reaches the loss, optimizer, model or evaluation it claims."""

import sys

import keras
import numpy as np
import pytest

import zoo
from conftest import assert_one_line_error
from recipes import augment, pipeline
from recipes.data import load_data
from recipes.optim import LinearWarmup, make_optimizer, make_schedule
from recipes.recipe import Recipe, preset


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", seed=0, limit=400, test_limit=100)


# -- label smoothing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("from_logits", [True, False])
def test_smoothed_crossentropy_is_categorical_crossentropy_with_label_smoothing(from_logits):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).astype("float32")
    y = np.array([0, 3, 1, 2, 2, 0])
    y_pred = logits if from_logits else np.asarray(keras.ops.softmax(logits))
    for eps in (0.0, 0.1, 0.3):
        ours = pipeline.SmoothedCrossentropy(eps, from_logits=from_logits)(y, y_pred)
        theirs = keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=eps)(
            keras.ops.one_hot(y, 4), y_pred)
        np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-5)
    # by hand: (1 - ε)·(-log p_y) + ε·mean_k(-log p_k)
    log_p = np.log(np.asarray(keras.ops.softmax(logits), dtype=np.float64))
    expected = np.mean(0.8 * -log_p[np.arange(6), y] + 0.2 * -log_p.mean(axis=1))
    got = float(pipeline.SmoothedCrossentropy(0.2, from_logits=from_logits)(y, y_pred))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_the_recipe_loss_follows_label_smoothing(digits):
    plain = pipeline.prepare(Recipe(model="lenet5", epochs=1), digits)
    smooth = pipeline.prepare(Recipe(model="lenet5", epochs=1, label_smoothing=0.1), digits)
    assert isinstance(plain.trainer.loss, keras.losses.SparseCategoricalCrossentropy)
    assert isinstance(smooth.trainer.loss, pipeline.SmoothedCrossentropy)
    assert smooth.trainer.loss.label_smoothing == 0.1 and smooth.trainer.loss.from_logits is False


# -- EMA ---------------------------------------------------------------------------------------------------
def test_ema_weights_are_validated_and_saved(digits):
    recipe = Recipe(model="lenet5", epochs=2, batch_size=32, ema=0.9, regularization=zoo.Regularization(keep_prob=0.8))
    prepared = pipeline.prepare(recipe, digits)
    assert prepared.trainer.optimizer.use_ema and prepared.trainer.optimizer.ema_momentum == 0.9
    history = pipeline.fit(prepared, verbose=0).history
    # fit ends with the averaged weights in the model; the last validation ran on the averaged weights too
    averages = prepared.trainer.optimizer._model_variables_moving_average
    for variable, average in zip(prepared.trainer.trainable_variables, averages):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), keras.ops.convert_to_numpy(average))
    val = pipeline.evaluate(prepared, digits.x_val, digits.y_val)
    np.testing.assert_allclose(val["loss"], history["val_loss"][-1], rtol=1e-5)


def test_ema_swap_puts_the_trained_weights_back_exactly(digits):
    prepared = pipeline.prepare(Recipe(model="lenet5", epochs=1, ema=0.5), digits)
    pipeline.fit(prepared, x=prepared.train_data.take(3), epochs=1, validation_data=None, verbose=0)
    model = prepared.trainer
    for variable in model.trainable_variables:  # make trained and averaged weights differ
        variable.assign(variable + 1.0)
    trained = [np.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_variables]
    swap = pipeline.EMAWeights()
    swap.put_average(model)
    assert not np.array_equal(keras.ops.convert_to_numpy(model.trainable_variables[0]), trained[0])
    swap.put_trained(model)
    for variable, value in zip(model.trainable_variables, trained):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value)


# -- warm-up -----------------------------------------------------------------------------------------------
def test_warmup_rises_linearly_into_the_schedule():
    constant = make_schedule(0.1, "constant", epochs=4, steps_per_epoch=10, warmup_steps=10)
    rates = [float(constant(step)) for step in (0, 4, 9, 10, 39)]
    np.testing.assert_allclose(rates, [0.01, 0.05, 0.1, 0.1, 0.1], rtol=1e-6)
    cosine = make_schedule(0.1, "cosine", epochs=4, steps_per_epoch=10, warmup_steps=10)
    assert float(cosine(0)) == 0.0 and float(cosine(10)) == pytest.approx(0.1)
    assert float(cosine(40)) == pytest.approx(0.0, abs=1e-7)
    step = make_schedule(0.1, "step", epochs=4, steps_per_epoch=10, warmup_steps=5)
    assert float(step(0)) == pytest.approx(0.02) and float(step(25)) == pytest.approx(0.01)
    optimizer = make_optimizer("momentum", 0.1, schedule="constant", epochs=4, steps_per_epoch=10, warmup_steps=10)
    again = keras.optimizers.SGD.from_config(optimizer.get_config())
    assert isinstance(again._learning_rate, LinearWarmup) and again._learning_rate.warmup_steps == 10
    assert float(again.learning_rate) == pytest.approx(0.01)  # step 0 of 10
    with pytest.raises(ValueError, match="plateau schedule takes no warm-up"):
        make_schedule(0.1, "plateau", epochs=4, steps_per_epoch=10, warmup_steps=3)
    with pytest.raises(ValueError, match="warmup_epochs needs a schedule"):
        Recipe(model="lenet5", schedule="plateau", warmup_epochs=1)
    with pytest.raises(ValueError, match=r"warmup_epochs must be an integer < epochs \(3\)"):
        Recipe(model="lenet5", epochs=3, warmup_epochs=3)
    assert preset("lenet5", "full", warmup_epochs=5).quick().warmup_epochs == 1


# -- test-time augmentation --------------------------------------------------------------------------------
def _mirror_symmetric_model(shape=(6, 6, 1), classes=3):
    inputs = keras.Input(shape)
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(pooled))


def test_tta_on_a_mirror_symmetric_model_changes_nothing_and_otherwise_averages_two_softmaxes():
    x = np.random.default_rng(1).uniform(0, 255, (5, 6, 6, 1)).astype("float32")
    symmetric = _mirror_symmetric_model()
    np.testing.assert_allclose(pipeline.tta_probabilities(symmetric, x, "flip"), symmetric.predict(x, verbose=0),
                               rtol=1e-6)
    model = zoo.lenet5(input_shape=(6, 6, 1), classes=3, classifier_activation=None)  # logits
    expected = (np.asarray(keras.ops.softmax(model.predict(x, verbose=0)))
                + np.asarray(keras.ops.softmax(model.predict(x[:, :, ::-1], verbose=0)))) / 2
    np.testing.assert_allclose(pipeline.tta_probabilities(model, x, "flip"), expected, rtol=1e-5, atol=1e-7)
    views = pipeline.tta_views(x, "flip+shift", fill=0.0)
    assert len(views) == 4 and np.array_equal(views[2][:, :, :-2], x[:, :, 2:]) and not views[2][:, :, -2:].any()


def test_tta_is_refused_where_flips_do_not_fit(digits):
    with pytest.raises(ValueError, match="tta='flip' does not fit digits data"):
        pipeline.prepare(Recipe(model="lenet5", tta="flip"), digits)
    assert pipeline.check_tta("flip+shift", "clothes") == "flip+shift"
    with pytest.raises(ValueError, match="does not fit text data"):
        pipeline.check_tta("flip", "text")


# -- random erasing ----------------------------------------------------------------------------------------
def test_erasing_adds_a_random_erasing_layer_and_fits_images_only(digits):
    layers = augment.make_augmentation("shift", (8, 8, 1), seed=0, value_range=(0, 16), erasing=0.5).layers
    assert [type(layer).__name__ for layer in layers] == ["RandomTranslation", "RandomErasing"]
    only = augment.make_augmentation("none", (8, 8, 1), erasing=1.0)
    x = np.full((4, 8, 8, 1), 8.0, "float32")
    assert not np.array_equal(np.asarray(only(x, training=True)), x)  # probability 1: every image erased
    prepared = pipeline.prepare(Recipe(model="lenet5", epochs=1, erasing=0.3), digits, placement="model")
    layer = next(lay for lay in prepared.trainer.layers if isinstance(lay, augment.TrainingAugmentation))
    assert layer.erasing == 0.3 and layer.get_config()["erasing"] == 0.3
    with pytest.raises(ValueError, match="erasing=0.5 does not fit text data"):
        augment.check_erasing(0.5, "text")
    with pytest.raises(ValueError, match=r"Recipe.erasing must be a number in \[0, 1\]"):
        Recipe(model="lenet5", erasing=1.5)


# -- MixUp and CutMix --------------------------------------------------------------------------------------
def _mixed(**alphas):
    import tensorflow as tf

    x = np.random.default_rng(1).uniform(0, 16, size=(6, 8, 8, 1)).astype("float32")
    y = np.array([0, 1, 2, 3, 4, 5])
    images, targets = augment.mix_batch(x, y, tf.constant([7, 2], tf.int64), classes=6, **alphas)
    return x, y, np.asarray(images), np.asarray(targets)


def test_mixup_blends_each_input_with_the_reversed_batch_by_the_target_weight():
    x, y, images, targets = _mixed(mixup=0.4)
    lam = targets[0, y[0]]  # the first example's own label keeps weight λ, its partner (the last) 1 - λ
    assert 0 < lam < 1 and np.isclose(targets[0, y[-1]], 1 - lam)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(images, lam * x + (1 - lam) * x[::-1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_mixed(mixup=0.4)[2], images)  # a function of the key alone


def test_cutmix_pastes_one_box_of_the_partner_and_weighs_the_labels_by_its_area():
    x, y, images, targets = _mixed(cutmix=1.0)
    from_partner = np.isclose(images, x[::-1]) & ~np.isclose(images, x)
    assert np.all(np.isclose(images, x) | from_partner)  # every pixel is its own or its partner's
    box = from_partner[0, :, :, 0]
    rows, cols = np.nonzero(box)
    assert box.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # one rectangle
    np.testing.assert_allclose(targets[0, y[-1]], box.mean(), rtol=1e-5)  # the partner's weight = its area
    np.testing.assert_allclose(targets[0, y[0]], 1 - box.mean(), rtol=1e-5)


def test_soft_targets_reach_the_loss_and_the_metric_and_validation_keeps_integer_labels(digits):
    recipe = Recipe(model="lenet5", epochs=1, batch_size=32, mixup=0.2, cutmix=1.0, label_smoothing=0.1)
    prepared = pipeline.prepare(recipe, digits)
    images, targets = next(iter(prepared.train_data))
    assert targets.shape == (32, digits.classes) and np.allclose(np.sum(targets, axis=1), 1.0)
    assert isinstance(prepared.trainer.loss, pipeline.SmoothedCrossentropy)
    history = pipeline.fit(prepared, verbose=0).history
    assert {"accuracy", "val_accuracy", "val_loss"} <= set(history)
    val = pipeline.evaluate(prepared, digits.x_val, digits.y_val)
    assert 0 <= val["accuracy"] <= 1 and np.isclose(val["loss"], history["val_loss"][-1], rtol=1e-5)
    # the loss on soft targets is Keras' categorical cross-entropy with label smoothing
    logits = np.random.default_rng(2).normal(size=(4, 3)).astype("float32")
    soft = np.array([[0.7, 0.3, 0], [0, 1, 0], [0.2, 0, 0.8], [0.5, 0.5, 0]], "float32")
    ours = pipeline.SmoothedCrossentropy(0.1, from_logits=True)(soft, logits)
    theirs = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(soft, logits)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-5)
    np.testing.assert_array_equal(pipeline.label_accuracy(soft, logits), pipeline.label_accuracy(
        np.argmax(soft, axis=1), logits))


def test_mixing_is_refused_where_it_does_not_fit():
    with pytest.raises(ValueError, match="mixup=0.2 does not fit text data"):
        augment.check_mixing(0.2, 0.0, "text")
    with pytest.raises(ValueError, match="cutmix=1 does not fit sequences data"):
        augment.check_mixing(0.0, 1.0, "sequences", (28, 28))
    with pytest.raises(ValueError, match=r"Recipe.mixup must be a number in \[0, inf\)"):
        Recipe(model="lenet5", mixup=-0.5)
    assert augment.check_mixing(0.2, 1.0, "digits", (8, 8, 1)) == (0.2, 1.0)


# -- on the command line -----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, needles", [
    (["--label-smoothing", "1"], ["--label-smoothing", "[0, 1)"]),
    (["--ema", "-0.1"], ["--ema", "[0, 1)"]),
    (["--warmup-epochs", "-1"], ["--warmup-epochs", ">= 0"]),
    (["--tta", "mirror"], ["--tta", "flip+shift"]),
    (["--erasing", "1.5"], ["--erasing", "[0, 1]"]),
    (["--mixup", "-1"], ["--mixup", ">= 0"]),
    (["--cutmix", "nan"], ["--cutmix"]),
    (["--tta", "flip"], ["tta='flip' does not fit digits"]),
    (["--warmup-epochs", "30"], ["--warmup-epochs", "< epochs"]),
])
def test_bad_technique_values_exit_2_with_one_line(argv, needles, tmp_path, capsys):
    from recipes.lenet5 import main

    result = _in_process(main, [*argv, "--out", str(tmp_path / "runs")], capsys)
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _in_process(main, argv, capsys):
    """A command line's ``main(argv)`` in this process: (exit status, stdout, stderr) like a subprocess."""
    import types

    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return types.SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)


# -- cross-validation and ensembles ------------------------------------------------------------------------
def test_folds_3_quick_writes_three_fold_runs_and_the_summary(tmp_path, capsys):
    from recipes.lenet5 import main

    out = tmp_path / "runs"
    result = _in_process(main, ["--folds", "3", "--quick", "--out", str(out), "--verbose", "0"], capsys)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert folder.name.startswith("lenet5-digits-full-cv3-") and not (out / ".inprogress").exists()
    import json

    summary = json.loads((folder / "cv_summary.json").read_text())
    assert [row["fold"] for row in summary["per_fold"]] == [1, 2, 3]
    for row in summary["per_fold"]:
        assert (folder / row["run_folder"] / "model.keras").is_file()
        metrics = json.loads((folder / row["run_folder"] / "metrics.json").read_text())
        assert metrics["val_examples"] == 100 and metrics["train_examples"] == 200  # 300 pooled, 3 folds
    accuracies = [row["val_accuracy"] for row in summary["per_fold"]]
    assert summary["val_accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert summary["val_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert (folder / "cv_summary.csv").read_text().startswith("fold,run_folder,epochs_run,val_accuracy")
    assert "3-fold cross-validation: val accuracy" in result.stdout


def test_fold_splits_are_stratified_partitions_and_bad_counts_are_refused(digits):
    from recipes.crossval import fold_splits

    parts = fold_splits(digits, 4, seed=0)
    pooled = len(digits.y_train) + len(digits.y_val)
    assert sum(len(p.y_val) for p in parts) == pooled and all(len(p.y_train) + len(p.y_val) == pooled for p in parts)
    counts = np.array([np.bincount(p.y_val, minlength=10) for p in parts])
    assert (counts.max(axis=0) - counts.min(axis=0)).max() <= 1  # stratified
    assert all(p.x_test is digits.x_test for p in parts)  # the test split is never a fold
    with pytest.raises(ValueError, match="folds must be an integer >= 2"):
        fold_splits(digits, 1, seed=0)
    with pytest.raises(ValueError, match=r"folds=100 is more than the smallest class has examples"):
        fold_splits(digits, 100, seed=0)


def test_an_ensemble_of_two_runs_averages_their_softmaxes_and_reloads_safely(tmp_path):
    from recipes.ensemble import build_ensemble
    from recipes.train import run

    runs = [run(preset("lenet5", "full", seed=seed), out=tmp_path / "runs", verbose=0, quick=True).folder
            for seed in (0, 1)]
    result = build_ensemble(runs, out=tmp_path / "ensembles", verbose=0)
    x = load_data("digits", limit=300, test_limit=100).x_test
    members = [keras.models.load_model(folder / "model.keras") for folder in runs]
    expected = (members[0].predict(x, verbose=0) + members[1].predict(x, verbose=0)) / 2
    np.testing.assert_allclose(result.model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-7)
    loaded = keras.models.load_model(result.folder / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-7)
    import json

    metrics = json.loads((result.folder / "metrics.json").read_text())
    assert len(metrics["members"]) == 2 and metrics["test_examples"] == 100
    assert metrics["test_accuracy"] == pytest.approx(float((expected.argmax(-1) == load_data(
        "digits", limit=300, test_limit=100).y_test).mean()))


def test_an_ensembles_flip_tta_score_is_the_mean_over_members_and_mirrors(digits):
    from recipes.ensemble import ensemble_model, score_model

    keras.utils.set_random_seed(3)
    members = [zoo.lenet5(input_shape=(8, 8, 1), classes=10, classifier_activation=None), zoo.lenet5(
        input_shape=(8, 8, 1), classes=10)]
    model = ensemble_model(members)
    x, y = digits.x_test[:64], digits.y_test[:64]
    softmax = [lambda v, m=members[0]: keras.ops.convert_to_numpy(keras.ops.softmax(m(v))),
               lambda v, m=members[1]: keras.ops.convert_to_numpy(m(v))]
    expected = sum(f(v) for f in softmax for v in (x, x[:, :, ::-1])) / 4
    scores = score_model(lambda v: model.predict(v, verbose=0).astype(np.float64), x, y, tta="flip")
    assert scores["test_accuracy_tta"] == pytest.approx(float((expected.argmax(-1) == y).mean()))
    picked = np.clip(expected[np.arange(len(y)), y], keras.config.epsilon(), 1.0)  # as the loss clips
    assert scores["test_loss_tta"] == pytest.approx(float(-np.log(picked).mean()), rel=1e-4)
    assert "test_accuracy_tta" not in score_model(lambda v: model.predict(v, verbose=0), x, y)


def test_an_ensemble_outputs_probabilities_wherever_it_is_loaded(digits, tmp_path):
    """The zoo's loss rule reads an Average of softmax members as probabilities, saved and reloaded too."""
    from recipes.ensemble import ensemble_model
    from recipes.pipeline import class_probabilities
    from zoo.layers import outputs_logits

    keras.utils.set_random_seed(4)
    logits = [zoo.lenet5(input_shape=(8, 8, 1), classes=10, classifier_activation=None, name=f"logits_{i}")
              for i in range(2)]
    model = ensemble_model([logits[0], zoo.lenet5(input_shape=(8, 8, 1), classes=10)])
    model.save(tmp_path / "ensemble.keras")
    loaded = keras.saving.load_model(tmp_path / "ensemble.keras", safe_mode=True)
    x = digits.x_test[:16]
    for ensemble in (model, loaded):
        assert not outputs_logits(ensemble)
        np.testing.assert_allclose(class_probabilities(ensemble, x), ensemble.predict(x, verbose=0), rtol=1e-6)
    inputs = keras.Input((8, 8, 1))
    assert outputs_logits(keras.Model(inputs, keras.layers.Average()([m(inputs) for m in logits])))
    mixed = keras.Model(inputs, keras.layers.Average()([logits[0](inputs), keras.layers.Softmax()(logits[1](inputs))]))
    with pytest.raises(ValueError, match="averages logits with probabilities"):
        outputs_logits(mixed)


def test_ensemble_members_must_agree():
    from recipes.ensemble import ensemble_model

    a = zoo.lenet5(input_shape=(8, 8, 1), classes=10)
    with pytest.raises(ValueError, match="at least 2 members"):
        ensemble_model([a])
    with pytest.raises(ValueError, match="agree on input shape and classes"):
        ensemble_model([a, zoo.lenet5(input_shape=(8, 8, 1), classes=3)])


@pytest.mark.parametrize("argv, needles", [
    ([], ["either RUN_DIR folders or --seeds"]),
    (["--seeds", "0"], ["--seeds", "two or more"]),
    (["--seeds", "0,1"], ["--seeds needs --model"]),
    (["/nonexistent/run"], ["/nonexistent/run", "neither a run folder"]),
])
def test_ensemble_command_line_errors(argv, needles, tmp_path, capsys):
    from recipes.ensemble import main

    assert_one_line_error(_in_process(main, [*argv, "--out", str(tmp_path / "out")], capsys), *needles)


def test_folds_1_is_a_one_line_error(tmp_path, capsys):
    from recipes.lenet5 import main

    assert_one_line_error(_in_process(main, ["--folds", "1", "--out", str(tmp_path)], capsys), "--folds", ">= 2")


def test_python_m_recipes_ensemble_runs_as_a_module(run_cli, tmp_path):
    result = run_cli(sys.executable, "-m", "recipes.ensemble", "--help")
    assert result.returncode == 0 and "--seeds" in result.stdout, result.stderr[-2000:]


def test_mixing_opens_in_the_search_space_and_reaches_the_trial_recipe():
    from tuning.hypermodel import ZooHyperModel
    from tuning.space import make_space

    hypermodel = ZooHyperModel("lenet5", (8, 8, 1), 10, space={"mixup": (0.0, 0.4), "cutmix": [0.0, 1.0]})
    assert {"mixup", "cutmix"} <= {name for name, _ in hypermodel.space.entries}
    recipe = hypermodel.trial_recipe({"mixup": 0.3, "cutmix": 1})
    assert recipe.mixup == 0.3 and recipe.cutmix == 1.0
    with pytest.raises(ValueError, match="hyperparameter mixup .* >= 0"):
        make_space({"mixup": (-1.0, 0.5)})


def test_the_ema_decay_warms_up_as_tensorflows_num_updates():
    # one weight, plain SGD with lr 1 and gradient 1: after step k the weight is -k
    optimizer = make_optimizer("sgd", 1.0, ema=0.999)
    weight = keras.Variable(0.0)
    optimizer.build([weight])
    expected = 0.0
    for step in range(40):
        optimizer.apply([keras.ops.ones(())], [weight])
        decay = 0.0 if step == 0 else min(0.999, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * float(weight.numpy())
        np.testing.assert_allclose(float(optimizer._model_variables_moving_average[0].numpy()), expected,
                                   rtol=1e-5)
    assert optimizer.get_config()["ema_momentum"] == 0.999  # the config stays Keras' own


def test_the_mix_of_a_batch_is_a_function_of_seed_epoch_and_batch_alone(digits):
    """A resumed run (a new pipeline whose epoch variable says 3) mixes epoch 3 as the run it replaces."""
    import functools

    import tensorflow as tf

    from recipes.data import make_dataset

    mixing = functools.partial(augment.mix_batch, classes=digits.classes, mixup=0.4, cutmix=1.0)

    def epoch_batches(epoch_number):
        epoch = tf.Variable(epoch_number, dtype=tf.int64)
        data = make_dataset(digits.x_train, digits.y_train, 64, shuffle=True, seed=3, epoch=epoch, mixing=mixing)
        return [(np.asarray(x), np.asarray(t)) for x, t in data]

    first, again, other = epoch_batches(3), epoch_batches(3), epoch_batches(4)
    assert len(first) == -(-len(digits.x_train) // 64)
    for (x1, t1), (x2, t2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(t1, t2)
    assert not np.array_equal(first[0][1], other[0][1])


def test_decoupled_weight_decay_skips_biases_and_batch_norm():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])
    for variable in model.trainable_variables:
        variable.assign(keras.ops.ones(variable.shape))
    optimizer = make_optimizer("sgd", 0.1, weight_decay=0.5)
    optimizer.build(model.trainable_variables)
    optimizer.apply([keras.ops.zeros(v.shape) for v in model.trainable_variables], model.trainable_variables)
    after = {v.path.split("/")[-1]: np.asarray(v.numpy()) for v in model.trainable_variables}
    np.testing.assert_allclose(after["kernel"], 1 - 0.1 * 0.5)  # w -= lr·wd·w
    for name in ("bias", "gamma", "beta"):
        np.testing.assert_array_equal(after[name], 1.0)
