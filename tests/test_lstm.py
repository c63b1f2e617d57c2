"""zoo.lstm and zoo.lstm_text: parameter counts by hand, dropout, penalties, norms, heads, masking, training,
saving, MACs and argument errors. Small widths and short sequences keep it to a few seconds on a CPU."""

import math

import keras
import numpy as np
import pytest

import zoo

NONE = zoo.Regularization.none()


def by_hand(units, features, classes, bidirectional=False):
    """Hand count: each LSTM 4·(u·(f + u) + u) (×2 bidirectional), then Dense(classes) with bias."""
    directions = 2 if bidirectional else 1
    total, f = 0, features
    for u in units:
        total += directions * 4 * (u * (f + u) + u)
        f = directions * u
    return total + f * classes + classes


def lstm_layers(model):
    """Every LSTM, bidirectional halves included, in model order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            found += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.LSTM):
            found.append(layer)
    return found


def predict(model, x):
    """Inference without tracing a predict function (faster for a handful of examples)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def of_type(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


# -- parameter counts --------------------------------------------------------------------------------
@pytest.mark.parametrize("units", [[16], [16, 8]])
def test_parameter_count_equals_formula(units):
    model = zoo.lstm(input_shape=(28, 28), units=units, classes=10, regularization=NONE)
    assert model.count_params() == by_hand(units, 28, 10)
    layers = lstm_layers(model)
    assert layers[0].count_params() == 4 * (16 * (28 + 16) + 16) == 2880
    if len(units) == 2:
        assert layers[1].count_params() == 4 * (8 * (16 + 8) + 8) == 800


def test_default_model_count():
    # The module docstring's figure: 80,384 (LSTM 128 on 28 features) + 1,290 (Dense 10).
    assert zoo.lstm(regularization=NONE).count_params() == 81_674 == by_hand([128], 28, 10)


def test_bidirectional_doubles_the_lstm_parameters():
    one = zoo.lstm(input_shape=(8, 8), units=[6], classes=3, regularization=NONE)
    two = zoo.lstm(input_shape=(8, 8), units=[6], classes=3, regularization=NONE, bidirectional=True)
    [bi] = of_type(two, keras.layers.Bidirectional)
    assert bi.count_params() == 2 * lstm_layers(one)[0].count_params() == 2 * 4 * (6 * (8 + 6) + 6)
    assert two.output.shape == (None, 3)
    stacked = zoo.lstm(input_shape=(8, 8), units=[6, 4], classes=3, regularization=NONE, bidirectional=True)
    assert stacked.count_params() == by_hand([6, 4], 8, 3, bidirectional=True)


def test_images_are_read_row_by_row():
    flat = zoo.lstm(input_shape=(28, 28), units=[16], regularization=NONE)
    image = zoo.lstm(input_shape=(28, 28, 1), units=[16], regularization=NONE)
    assert image.count_params() == flat.count_params()
    assert image.get_layer("rows_as_timesteps").output.shape == (None, 28, 28)
    assert not any(isinstance(layer, keras.layers.Reshape) for layer in flat.layers)
    rgb = zoo.lstm(input_shape=(8, 8, 3), units=[4], classes=2, regularization=NONE)
    assert rgb.count_params() == by_hand([4], 24, 2)
    # the reshape is a row read: row r of the image is timestep r
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    image.set_weights(flat.get_weights())
    np.testing.assert_allclose(predict(image, x), predict(flat, x[..., 0]), rtol=1e-5)


def test_variable_length_sequences_build():
    model = zoo.lstm(input_shape=(None, 5), units=[4], classes=2, regularization=NONE)
    for steps in (3, 11):
        assert predict(model, np.zeros((1, steps, 5), "float32")).shape == (1, 2)
    assert zoo.lstm(input_shape=(None, 8, 1), units=[4], regularization=NONE).count_params() == by_hand([4], 8, 10)


# -- dropout, initialization, penalties --------------------------------------------------------------
def test_dropout_rates_are_one_minus_keep_prob():
    reg = zoo.Regularization(keep_prob=0.8, batch_norm=False)
    model = zoo.lstm(input_shape=(8, 8), units=[6, 4], bidirectional=True, regularization=reg,
                     recurrent_keep_prob=0.75)
    layers = lstm_layers(model)
    assert len(layers) == 4
    for layer in layers:
        assert layer.dropout == pytest.approx(1 - 0.8)
        assert layer.recurrent_dropout == pytest.approx(1 - 0.75)
    [head] = of_type(model, keras.layers.Dropout)
    assert head.name == "head_dropout" and head.rate == pytest.approx(0.2)
    # keep_prob = 1: no Dropout layer, no dropout inside the LSTMs
    plain = zoo.lstm(input_shape=(8, 8), units=[6, 4], regularization=NONE)
    assert of_type(plain, keras.layers.Dropout) == []
    assert all(layer.dropout == 0 and layer.recurrent_dropout == 0 for layer in lstm_layers(plain))


def test_glorot_orthogonal_and_forget_bias_one():
    model = zoo.lstm(input_shape=(8, 8), units=[5], regularization=NONE)
    [layer] = lstm_layers(model)
    config = layer.get_config()
    assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert config["recurrent_initializer"]["class_name"] == "Orthogonal"
    bias = keras.ops.convert_to_numpy(layer.cell.bias)  # gates i, f, c, o
    np.testing.assert_array_equal(bias, np.r_[np.zeros(5), np.ones(5), np.zeros(10)])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_l2_penalty_count_and_value(bidirectional):
    lam = 1e-4
    model = zoo.lstm(input_shape=(8, 8), units=[6, 4], classes=3, bidirectional=bidirectional,
                     regularization=zoo.Regularization(l2=lam, batch_norm=False))
    layers = lstm_layers(model)
    dense = model.get_layer("predictions")
    kernels = [layer.cell.kernel for layer in layers] + [layer.cell.recurrent_kernel for layer in layers]
    kernels.append(dense.kernel)
    assert len(model.losses) == len(kernels) == (2 * 2 * (2 if bidirectional else 1) + 1)
    expected = lam * sum(float(np.sum(keras.ops.convert_to_numpy(k).astype("float64") ** 2)) for k in kernels)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert total == pytest.approx(expected, rel=1e-5)
    # each kernel has its own regularizer object
    regularizers = [layer.cell.kernel_regularizer for layer in layers] + [
        layer.cell.recurrent_regularizer for layer in layers] + [dense.kernel_regularizer]
    assert len({id(r) for r in regularizers}) == len(regularizers)


def test_l1_penalty_value():
    lam = 1e-3
    model = zoo.lstm(input_shape=(8, 8), units=[4], classes=2,
                     regularization=zoo.Regularization(l1=lam, batch_norm=False))
    [layer] = lstm_layers(model)
    kernels = [layer.cell.kernel, layer.cell.recurrent_kernel, model.get_layer("predictions").kernel]
    expected = lam * sum(float(np.abs(keras.ops.convert_to_numpy(k)).sum()) for k in kernels)
    assert sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses) == pytest.approx(expected, rel=1e-5)
    assert zoo.lstm(input_shape=(8, 8), units=[4], regularization=NONE).losses == []


def test_embeddings_are_penalized_only_when_asked():
    reg = zoo.Regularization(l2=1e-4, batch_norm=False)
    kwargs = dict(input_shape=(16,), units=[4], vocab_size=30, embed_dim=3, regularization=reg)
    plain = zoo.lstm_text(**kwargs)
    assert len(plain.losses) == 3  # input kernel, recurrent kernel, dense kernel
    assert plain.get_layer("embedding").embeddings_regularizer is None
    asked = zoo.lstm_text(penalize_embeddings=True, **kwargs)
    assert len(asked.losses) == 4
    table = keras.ops.convert_to_numpy(asked.get_layer("embedding").embeddings)
    assert float(keras.ops.convert_to_numpy(asked.losses[0])) == pytest.approx(1e-4 * float((table ** 2).sum()),
                                                                               rel=1e-5)


# -- norms and heads ---------------------------------------------------------------------------------
@pytest.mark.parametrize("norm, batch_norm, bn, ln", [
    ("batch", False, 2, 0), ("layer", True, 0, 2), (None, True, 0, 0), ("auto", True, 2, 0), ("auto", False, 0, 0),
])
def test_norm_between_layers(norm, batch_norm, bn, ln):
    reg = zoo.Regularization(batch_norm=batch_norm)
    model = zoo.lstm(input_shape=(8, 8), units=[4, 4, 4], norm=norm, regularization=reg)
    assert len(of_type(model, keras.layers.BatchNormalization)) == bn
    assert len(of_type(model, keras.layers.LayerNormalization)) == ln
    names = [layer.name for layer in model.layers]
    if bn or ln:
        suffix = "bn" if bn else "ln"
        # after LSTM 1 and 2, never after the last one
        assert names.index(f"lstm1_{suffix}") == names.index("lstm1") + 1
        assert names.index(f"lstm2_{suffix}") == names.index("lstm2") + 1
        assert f"lstm3_{suffix}" not in names
    # one layer: nothing to normalize between
    single = zoo.lstm(input_shape=(8, 8), units=[4], norm=norm, regularization=reg)
    assert not of_type(single, keras.layers.BatchNormalization) + of_type(single, keras.layers.LayerNormalization)


def test_stacking_returns_sequences_except_the_last():
    model = zoo.lstm(input_shape=(8, 8), units=[5, 4, 3], regularization=NONE)
    assert [layer.return_sequences for layer in lstm_layers(model)] == [True, True, False]
    pooled = zoo.lstm(input_shape=(8, 8), units=[5, 3], pooling="avg", regularization=NONE)
    assert [layer.return_sequences for layer in lstm_layers(pooled)] == [True, True]


@pytest.mark.parametrize("pooling, bidirectional, shape", [
    (None, False, (None, 3)), (None, True, (None, 6)), ("avg", False, (None, 3)), ("max", True, (None, 6)),
])
def test_include_top_false_shapes(pooling, bidirectional, shape):
    model = zoo.lstm(include_top=False, input_shape=(8, 8, 1), units=[5, 3], pooling=pooling,
                     bidirectional=bidirectional, regularization=zoo.Regularization(keep_prob=0.5))
    assert model.output.shape == shape
    assert of_type(model, keras.layers.Dense) == [] and of_type(model, keras.layers.Dropout) == []


def test_input_tensor_from_an_upstream_layer():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 16)(inputs)
    model = zoo.lstm(input_tensor=x, units=[4], classes=3, regularization=NONE)
    assert model.inputs[0] is inputs and model.output.shape == (None, 3)
    tokens = keras.Input((12,), dtype="int32")
    text = zoo.lstm_text(input_tensor=tokens, units=[4], vocab_size=20, embed_dim=3, regularization=NONE)
    assert text.inputs[0] is tokens and text.output.shape == (None, 2)


# -- training, masking, saving -----------------------------------------------------------------------
def _one_step(model, x, y):
    before = [w.copy() for w in model.get_weights()]
    # eager: one step of a tiny model runs faster than tracing a tf.function (tests/test_models_common.py
    # runs fit in graph mode for every registered model)
    model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0), loss="sparse_categorical_crossentropy",
                  run_eagerly=True)
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("input_shape", [(8, 8, 1), None])
def test_trains_one_step(input_shape):
    reg = zoo.Regularization(l2=1e-4, keep_prob=0.8)
    model = zoo.lstm(input_shape=input_shape, units=[8, 4], classes=3, regularization=reg, recurrent_keep_prob=0.9)
    shape = (8, 8, 1) if input_shape else (28, 28)
    x = np.random.default_rng(0).uniform(size=(4, *shape)).astype("float32")
    _one_step(model, x, np.arange(4) % 3)


def test_lstm_text_masks_padding_and_trains():
    model = zoo.lstm_text(input_shape=(None,), units=[6, 4], vocab_size=40, embed_dim=5, pooling="max",
                          norm="layer", bidirectional=True, regularization=zoo.Regularization(l2=1e-4))
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 40, size=(3, 7)).astype("int32")
    # left padding (keras pad_sequences' default) does not change the prediction: every layer sees the mask
    padded = np.concatenate([np.zeros((3, 5), "int32"), tokens], axis=1)
    np.testing.assert_allclose(predict(model, padded), predict(model, tokens), atol=1e-6)
    x = rng.integers(1, 40, size=(4, 10)).astype("int32")
    x[:2, :4] = 0
    _one_step(model, x, np.array([0, 1, 0, 1]))


def test_masked_max_pooling_ignores_padding():
    values = np.array([[[1.0, -5.0], [9.0, -7.0], [-2.0, -1.0]]], "float32")
    mask = np.array([[True, False, True]])
    layer = zoo.MaskedGlobalMaxPooling1D()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(values, mask=mask)), [[1.0, -1.0]])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(values)), [[9.0, -1.0]])
    nothing = keras.ops.convert_to_numpy(layer(values, mask=np.zeros((1, 3), bool)))
    np.testing.assert_array_equal(nothing, [[0.0, 0.0]])


def test_save_and_load_safe_mode(tmp_path):
    model = zoo.lstm_text(input_shape=(12,), units=[6, 4], vocab_size=30, embed_dim=4, pooling="max",
                          bidirectional=True, norm="batch", recurrent_keep_prob=0.9,
                          regularization=zoo.Regularization(l2=1e-4, keep_prob=0.8))
    x = np.random.default_rng(1).integers(0, 30, size=(3, 12)).astype("int32")
    path = tmp_path / "x.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(predict(model, x), predict(loaded, x))
    assert len(loaded.losses) == len(model.losses) == 2 * 2 * 2 + 1
    image = zoo.lstm(input_shape=(8, 8, 1), units=[4], regularization=NONE)
    image.save(tmp_path / "image.keras")
    xs = np.random.default_rng(2).uniform(size=(2, 8, 8, 1)).astype("float32")
    again = keras.models.load_model(tmp_path / "image.keras", safe_mode=True)
    np.testing.assert_array_equal(predict(image, xs), predict(again, xs))


# -- summary, registry -------------------------------------------------------------------------------
def test_summary_params_and_macs():
    model = zoo.lstm(input_shape=(28, 28), units=[16], classes=10, regularization=NONE)
    result = zoo.summary(model, print_fn=None)
    assert result.total_params == model.count_params()
    assert result.macs == 28 * 4 * 16 * (28 + 16) + 16 * 10
    bi = zoo.lstm(input_shape=(28, 28), units=[16], classes=10, regularization=NONE, bidirectional=True)
    assert zoo.summary(bi, print_fn=None).macs == 2 * 28 * 4 * 16 * (28 + 16) + 32 * 10


def test_registered_names():
    seq, text = zoo.get_entry("lstm"), zoo.get_entry("lstm_text")
    assert (seq.family, seq.kind, seq.default_input_shape, seq.small_input_shape) == ("lstm", "sequence", (28, 28),
                                                                                      (8, 8))
    assert (text.family, text.kind, text.default_input_shape, text.small_input_shape) == ("lstm", "text", (200,),
                                                                                          (16,))
    model = zoo.build("lstm_text", units=[4], embed_dim=3, regularization=NONE)
    assert model.inputs[0].shape == (None, 200) and model.get_layer("embedding").input_dim == 20000


# -- bad arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize("builder, kwargs, needles", [
    ("lstm", dict(units=[]), ["units", "non-empty list of integers >= 1"]),
    ("lstm", dict(units=[8, 0]), ["units", "[8, 0]", ">= 1"]),
    ("lstm", dict(units=[8.0]), ["units"]),
    ("lstm", dict(recurrent_keep_prob=0.0), ["recurrent_keep_prob", "(0, 1]", "0.0"]),
    ("lstm", dict(recurrent_keep_prob=1.5), ["recurrent_keep_prob", "(0, 1]"]),
    ("lstm", dict(regularization=dict(keep_prob=0.0)), ["keep_prob", "(0.0, 1.0]"]),
    ("lstm", dict(norm="group"), ["norm", "'batch'", "'layer'", "None", "'group'"]),
    ("lstm", dict(input_shape=(28,)), ["input_shape", "(timesteps, features)", "(height, width, channels)"]),
    ("lstm", dict(input_shape=(2, 3, 4, 5)), ["input_shape", "(timesteps, features)"]),
    ("lstm", dict(input_shape=(28, 0)), ["input_shape", "positive integer"]),
    ("lstm", dict(classes=0), ["classes", ">= 1", "0"]),
    ("lstm", dict(pooling="sum"), ["pooling", "'avg'", "'max'"]),
    ("lstm", dict(bidirectional="yes"), ["bidirectional", "True or False"]),
    ("lstm_text", dict(vocab_size=1), ["vocab_size", ">= 2", "1"]),
    ("lstm_text", dict(embed_dim=0), ["embed_dim", ">= 1"]),
    ("lstm_text", dict(input_shape=(16, 1)), ["input_shape", "(timesteps,)"]),
    ("lstm_text", dict(units=[0]), ["units"]),
    ("lstm_text", dict(classes=0), ["classes"]),
])
def test_bad_arguments_name_the_argument_and_the_allowed_values(builder, kwargs, needles):
    with pytest.raises(ValueError) as error:
        getattr(zoo, builder)(**kwargs)
    for needle in needles:
        assert needle in str(error.value), (needle, str(error.value))
