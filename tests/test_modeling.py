"""recipes.modeling: the inference model (train-only normalization, one tensor in), the training model
(augmentation placement, inference-safe), kind checks, save/load."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

import zoo
from recipes import augment
from recipes.data import DataSplits, load_data, train_dataset
from recipes.modeling import build_model, channel_statistics, check_model_fits, training_model


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_data("digits", seed=0)


def _synthetic(shape=(8, 8, 3), n=(40, 10, 10), classes=3, domain="natural", scales=(1.0, 100.0, 1000.0)):
    """Images whose train / val / test splits have very different statistics (per channel too)."""
    rng = np.random.default_rng(0)
    arrays = []
    for count, scale in zip(n, scales):
        x = rng.normal(scale, scale / 4, size=(count, *shape)).astype(np.float32)
        x *= np.arange(1, shape[-1] + 1, dtype=np.float32)  # channels differ
        arrays += [x, (np.arange(count) % classes).astype(np.int32)]
    return DataSplits("synthetic", *arrays, input_shape=shape, classes=classes,
                      class_names=[str(i) for i in range(classes)], domain=domain, baseline_error=None,
                      source="test")


def _layer(model, cls):
    found = [layer for layer in model.layers if isinstance(layer, cls)]
    return found[0] if found else None


def test_normalization_uses_training_statistics_only():
    splits = _synthetic()
    model = build_model("lenet5", splits, zoo.Regularization(batch_norm=False))
    norm = _layer(model, keras.layers.Normalization)
    assert model.layers.index(norm) <= 2  # right after the input (and augmentation, if any)
    mean, variance = np.ravel(norm.mean), np.ravel(norm.variance)
    axes = (0, 1, 2)
    np.testing.assert_allclose(mean, splits.x_train.mean(axis=axes, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(variance, splits.x_train.var(axis=axes, dtype=np.float64), rtol=1e-5)
    everything = np.concatenate([splits.x_train, splits.x_val, splits.x_test])
    assert not np.allclose(mean, everything.mean(axis=axes), rtol=0.01)
    assert not np.allclose(mean, splits.x_val.mean(axis=axes), rtol=0.01)
    # The model normalizes the training inputs to mean 0, variance 1 per channel.
    normalized = np.asarray(norm(splits.x_train))
    np.testing.assert_allclose(normalized.mean(axis=axes), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalized.var(axis=axes), 1.0, atol=1e-3)


def test_channel_statistics_in_chunks_matches_numpy():
    x = np.random.default_rng(1).uniform(0, 255, (103, 5, 4, 3)).astype(np.float32)
    mean, variance = channel_statistics(x, chunk=10)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2), dtype=np.float64), rtol=1e-10)
    np.testing.assert_allclose(variance, x.var(axis=(0, 1, 2), dtype=np.float64), rtol=1e-10)


def test_lenet5_on_digits_trains_one_epoch_and_round_trips_safe_mode(digits, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model("lenet5", digits, zoo.Regularization(l2=1e-4, keep_prob=0.8))
    trainer = training_model(model, digits, "digits", seed=0, placement="model")
    assert model.output_shape == (None, 10) and model.input.shape == (None, 8, 8, 1)
    assert _layer(trainer, augment.TrainingAugmentation).name == "augment_digits"
    assert _layer(model, augment.TrainingAugmentation) is None
    trainer.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = trainer.fit(train_dataset(digits, 64, augmentation="digits", seed=0, placement="model"), epochs=1,
                          verbose=0)
    assert np.isfinite(history.history["loss"][0])
    before = model.predict(digits.x_test, verbose=0)
    np.testing.assert_array_equal(before, trainer.predict(digits.x_test, verbose=0))  # shared weights
    np.testing.assert_array_equal(np.asarray(trainer(digits.x_test)), np.asarray(trainer(digits.x_test)))
    path = tmp_path / "lenet5_digits.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(digits.x_test, verbose=0), before, rtol=1e-6, atol=1e-6)
    mean, variance = channel_statistics(digits.x_train)  # the statistics travel with the saved model
    np.testing.assert_allclose(np.ravel(_layer(loaded, keras.layers.Normalization).mean), mean, rtol=1e-6)
    np.testing.assert_allclose(np.ravel(_layer(loaded, keras.layers.Normalization).variance), variance, rtol=1e-6)
    loaded.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert loaded.evaluate(digits.x_test, digits.y_test, verbose=0)[1] > 0.2  # learned something in one epoch


def test_training_model_augments_only_when_training_is_passed(digits):
    model = build_model("lenet5", digits, zoo.Regularization(keep_prob=0.5, batch_norm=True))
    trainer = training_model(model, digits, "digits", seed=0, placement="model")
    x = digits.x_test[:32]
    moving = [v for v in trainer.variables if "moving" in v.path]
    before = [keras.ops.convert_to_numpy(v).copy() for v in moving]
    plain = np.asarray(trainer(x))
    np.testing.assert_array_equal(plain, np.asarray(trainer(x)))
    np.testing.assert_array_equal(plain, np.asarray(model(x)))
    for variable, value in zip(moving, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value)
    assert not np.allclose(np.asarray(trainer(x, training=True)), plain)  # augmentation, dropout and BN at work
    layer = _layer(trainer, augment.TrainingAugmentation)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    assert not np.array_equal(np.asarray(layer(x, training=True)), x)
    clone = augment.TrainingAugmentation.from_config(layer.get_config())
    assert (clone.policy, clone.image_shape, clone.value_range) == ("digits", (8, 8, 1), digits.value_range)


def test_mixed_bfloat16_computes_in_bf16_with_a_float32_softmax_and_restores_the_policy(digits, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model("lenet5", digits, zoo.Regularization(batch_norm=True), precision="mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # the global policy is back
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert (conv.compute_dtype, conv.variable_dtype) == ("bfloat16", "float32")
    assert model.layers[-1].name == "predictions_float32" and model.layers[-1].compute_dtype == "float32"
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(digits.x_train, digits.y_train, batch_size=64, epochs=2, verbose=0)
    probabilities = model.predict(digits.x_test, verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.evaluate(digits.x_test, digits.y_test, verbose=0)[1] > 0.5
    model.save(tmp_path / "bf16.keras")
    loaded = keras.models.load_model(tmp_path / "bf16.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(digits.x_test, verbose=0), probabilities)
    plain = build_model("lenet5", digits, zoo.Regularization(batch_norm=True))
    assert {layer.compute_dtype for layer in plain.layers if layer.weights} == {"float32"}
    assert plain.layers[-1].name != "predictions_float32"
    with pytest.raises(ValueError, match="precision must be one of float32, mixed_bfloat16, got 'float16'"):
        build_model("lenet5", digits, precision="float16")


def test_augmentation_layers_go_in_the_model_only_for_model_placement(digits):
    plain = build_model("lenet5", digits)
    in_model = training_model(plain, digits, "digits", placement="model")
    assert training_model(plain, digits, "digits", placement="pipeline") is plain
    assert training_model(plain, digits, "none", placement="model") is plain
    assert _layer(in_model, augment.TrainingAugmentation) is not None
    assert in_model.count_params() == plain.count_params()
    default = training_model(plain, digits, "digits")
    assert (default is not plain) == augment.AUGMENT_IN_MODEL
    # augmentation before normalization: the layers see raw pixels (0..16)
    assert isinstance(in_model.layers[1], augment.TrainingAugmentation) and len(in_model.layers) == 3
    assert in_model.layers[-1] is plain and isinstance(plain.layers[1], keras.layers.Normalization)


def test_policy_that_does_not_fit_is_refused(digits):
    plain = build_model("lenet5", digits)
    with pytest.raises(ValueError, match="augmentation='natural' does not fit digits"):
        training_model(plain, digits, "natural")
    with pytest.raises(ValueError, match="augmentation must be one of"):
        training_model(plain, digits, "cutout")
    with pytest.raises(ValueError, match="build_model takes augmentation"):
        build_model("lenet5", digits, augmentation="digits")


def test_arguments_taken_from_the_data_and_builder_kwargs(digits):
    with pytest.raises(ValueError, match="classes"):
        build_model("lenet5", digits, classes=5)
    model = build_model("lenet5", digits, zoo.Regularization(batch_norm=False), activation="tanh", subsampling="avg")
    names = [layer.name for layer in model.layers]
    assert "c1_tanh" in names and "s2_pool" in names  # activation= reached the builder
    assert isinstance(model.get_layer("s2_pool"), keras.layers.AveragePooling2D)  # so did subsampling=
    assert model.input_shape == (None, 8, 8, 1)
    with pytest.raises(ValueError, match="unknown model name 'lenet6'"):
        build_model("lenet6", digits)


def _text_splits(n=(30, 8, 8), maxlen=12, vocab=50):
    rng = np.random.default_rng(0)
    arrays = []
    for count in n:
        arrays += [rng.integers(0, vocab, (count, maxlen)).astype(np.int32), (np.arange(count) % 2).astype(np.int32)]
    return DataSplits("tokens", *arrays, input_shape=(maxlen,), classes=2, class_names=["neg", "pos"],
                      domain="text", baseline_error=None, source="test", vocab_size=vocab)


def test_model_kind_must_fit_the_data(digits):
    text = _text_splits()
    with pytest.raises(ValueError, match=r"model 'lenet5' \(image model\) needs images .* holds integer token"):
        build_model("lenet5", text)
    sequences = dataclasses.replace(_synthetic(shape=(10, 4)), input_shape=(10, 4), domain="sequences")
    with pytest.raises(ValueError, match=r"'lenet5' \(image model\) needs images .* holds sequences of shape"):
        check_model_fits("lenet5", sequences)
    if "lstm_text" in zoo.list_models():
        with pytest.raises(ValueError, match=r"'lstm_text' \(text model\) needs integer token sequences"):
            build_model("lstm_text", digits)


@pytest.fixture
def tiny_text_model(monkeypatch):
    """A throw-away text model in the registry for this test only (removed afterwards)."""
    seen = {}

    def tiny_text(input_tensor=None, input_shape=None, classes=2, regularization=None, vocab_size=10,
                  name="tiny_text"):
        seen["vocab_size"] = vocab_size
        inputs = input_tensor if input_tensor is not None else keras.Input(input_shape, dtype="int32")
        x = keras.layers.Embedding(vocab_size, 4)(inputs)
        x = keras.layers.GlobalAveragePooling1D()(x)
        outputs = keras.layers.Dense(classes, activation="softmax")(x)
        return keras.Model(keras.utils.get_source_inputs(inputs), outputs, name=name)

    entry = zoo.ModelEntry("tiny_text_for_tests", tiny_text, "test", (12,), (12,), kind="text")
    monkeypatch.setitem(zoo.registry._REGISTRY, entry.name, entry)
    return entry.name, seen


def test_text_models_get_int_tokens_unnormalized_and_the_vocabulary(tiny_text_model, digits):
    name, seen = tiny_text_model
    text = _text_splits()
    model = build_model(name, text)
    assert seen["vocab_size"] == 50
    assert model.inputs[0].dtype == "int32" and _layer(model, keras.layers.Normalization) is None
    assert model.predict(text.x_test, verbose=0).shape == (8, 2)
    with pytest.raises(ValueError, match="takes no image augmentation"):
        training_model(model, text, "shift")
    with pytest.raises(ValueError, match=rf"'{name}' \(text model\) needs integer token sequences"):
        build_model(name, digits)


OTHER_IMAGE_MODELS = ["alexnet_small", "googlenet_small", "resnet20", "lstm"]


@pytest.mark.parametrize("model_name", OTHER_IMAGE_MODELS)
def test_other_zoo_models_build_behind_the_preprocessing(model_name):
    if model_name not in zoo.list_models():
        pytest.skip(f"{model_name} is not registered yet")
    splits = _synthetic(shape=(32, 32, 3), n=(20, 5, 5), classes=4)
    model = build_model(model_name, splits, zoo.Regularization())
    trainer = training_model(model, splits, "natural", placement="model")
    assert trainer.input_shape == model.input_shape == (None, 32, 32, 3) and trainer.output_shape == (None, 4)
    assert _layer(model, keras.layers.Normalization) is not None
    np.testing.assert_array_equal(trainer.predict(splits.x_test, verbose=0), model.predict(splits.x_test, verbose=0))
    assert model.predict(splits.x_test, verbose=0).shape == (5, 4)


def test_lstm_text_on_tokens():
    if "lstm_text" not in zoo.list_models():
        pytest.skip("lstm_text is not registered yet")
    text = _text_splits()
    model = build_model("lstm_text", text, zoo.Regularization(batch_norm=False))
    assert model.input_shape == (None, 12) and model.output_shape == (None, 2)
    assert _layer(model, keras.layers.Normalization) is None
    assert _layer(model, keras.layers.Embedding).input_dim == text.vocab_size
    assert model.predict(text.x_test, verbose=0).shape == (8, 2)
