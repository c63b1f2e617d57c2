"""zoo.gradcheck and ``zoo gradcheck``: back-propagation against two-sided differences, in float64.

Observed relative differences (ε = 1e-6, batch 4, L2 1e-3, keep_prob 0.5, BN on, training mode): about
1e-10 … 1e-8 overall and per weight for every family (``zoo gradcheck NAME`` over seeds 0-2: at most
1.0e-8 overall, googlenet_small). The tests ask for less than THRESHOLD = 1e-7, ten times under the
verdict's "fine" (1e-6) and above every figure observed on these tiny configurations."""

import dataclasses
import math
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from conftest import assert_one_line_error
from zoo.gradcheck import GradCheckResult, WeightCheck, verdict_for

THRESHOLD = 1e-7
REG = zoo.Regularization(l2=1e-3, keep_prob=0.5, batch_norm=True)


def batch(shape, n=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype("float32"), rng.integers(0, classes, n)


def assert_fine(result, model):
    assert result.relative_difference < THRESHOLD, str(result)
    assert result.worst_weight.relative_difference < THRESHOLD, str(result)  # every weight on its own too
    assert result.verdict == "fine" and result.ok
    # every trainable weight is checked
    assert [w.name for w in result.weights] == [v.path for v in model.trainable_variables]
    assert all(w.checked >= 1 for w in result.weights)


# -- every family ---------------------------------------------------------------------------------

FAMILIES = {
    "lenet": ("lenet5", (8, 8, 1), {}, 2),
    "alexnet": ("alexnet_small", (8, 8, 1), {}, 2),
    "inception": ("googlenet_small", (8, 8, 1), {}, 1),
    "resnet": ("resnet20", (8, 8, 1), {}, 1),
    "lstm": ("lstm", (6, 5), {"units": [6, 6]}, 3),  # two layers: a BN between them
}


def test_every_registered_family_has_a_gradcheck_case():
    assert {zoo.get_entry(name).family for name in zoo.list_models()} == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_passes_with_l2_dropout_and_batch_norm(family):
    name, shape, kwargs, max_params = FAMILIES[family]
    keras.utils.set_random_seed(0)
    model = zoo.build(name, input_shape=shape, classes=3, regularization=REG, **kwargs)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    x, y = batch(shape)
    result = zoo.gradcheck(model, x, y, max_params=max_params)
    assert_fine(result, model)
    assert result.penalty > 0 and result.training
    assert result.checked == sum(min(int(np.prod(v.shape)), max_params) for v in model.trainable_variables)


def test_lstm_text_embedding_and_mask_pass():
    keras.utils.set_random_seed(0)
    model = zoo.lstm_text(input_shape=(7,), classes=2, regularization=REG, units=[4, 4], vocab_size=30,
                          embed_dim=3)
    tokens = np.array([[3, 5, 7, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7], [9, 9, 0, 0, 0, 0, 0], [4, 8, 15, 16, 23, 29, 0]])
    result = zoo.gradcheck(model, tokens, np.array([0, 1, 1, 0]), max_params=3)
    assert_fine(result, model)
    embedding = next(w for w in result.weights if w.name.endswith("embeddings"))
    assert embedding.analytic_norm > 0  # the largest-gradient entry is always among the checked ones


def test_local_response_normalization_passes():
    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv")(inputs)
    x = zoo.LocalResponseNormalization(name="lrn_paper")(x)  # the paper's k=2, α=1e-4, β=0.75, n=5
    x = keras.layers.Conv2D(6, 1, name="conv_b")(x)
    x = zoo.LocalResponseNormalization(depth_radius=1, bias=1.0, alpha=0.5, beta=0.75, name="lrn_strong")(x)
    outputs = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(x))
    keras.utils.set_random_seed(1)
    model = keras.Model(inputs, outputs)
    x, y = batch((5, 5, 2))
    result = zoo.gradcheck(model, 3 * x, y, max_params=4)  # larger activations: the strong LRN is far from linear
    assert_fine(result, model)


# -- a wrong backward pass is caught ----------------------------------------------------------------

class DoubledBackwardTanh(keras.layers.Layer):
    """tanh forward, but the backward pass returns twice the true gradient (a deliberate bug)."""

    def call(self, inputs):
        @tf.custom_gradient
        def wrong_tanh(t):
            out = tf.tanh(t)

            def backward(upstream):
                return 2.0 * upstream * (1.0 - out * out)

            return out, backward

        return wrong_tanh(inputs)


def test_wrong_custom_gradient_is_a_bug():
    inputs = keras.Input((5,))
    x = keras.layers.Dense(4, name="before", kernel_regularizer=keras.regularizers.L2(1e-3))(inputs)
    x = DoubledBackwardTanh(name="wrong")(x)
    outputs = keras.layers.Dense(3, name="after")(x)
    keras.utils.set_random_seed(2)
    model = keras.Model(inputs, outputs)
    x, y = batch((5,))
    result = zoo.gradcheck(model, x, y, max_params=4)
    assert result.verdict == "bug" and not result.ok
    assert result.relative_difference > 1e-3
    by_name = {w.name: w for w in result.weights}
    # below the wrong layer every gradient is doubled (the penalty's part is right): close to 1/3
    assert 0.1 < by_name["before/kernel"].relative_difference < 0.34
    assert by_name["before/bias"].relative_difference == pytest.approx(1 / 3, rel=1e-6)
    assert by_name["after/kernel"].relative_difference < THRESHOLD  # above it all is well
    assert result.worst[0].weight.startswith("before/")
    assert result.worst[0].analytic == pytest.approx(2 * result.worst[0].numeric, rel=0.2)
    assert "bug" in str(result)


def test_a_kink_within_epsilon_is_measured_again_not_called_a_bug():
    inputs = keras.Input((1,))
    hidden = keras.layers.Dense(1, activation="relu", name="pre")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))
    # example 0 sits 3e-7 above the ReLU's kink: a step of ε = 1e-6 on pre/* crosses it, ε/10 does not
    model.get_layer("pre").set_weights([np.array([[0.5]]), np.array([-0.5 + 3e-7])])
    model.get_layer("out").set_weights([np.array([[1.0, -2.0]]), np.array([0.1, -0.1])])
    result = zoo.gradcheck(model, np.array([[1.0], [2.0]]), np.array([1, 0]), epsilon=1e-6)
    kinked = [e for e in result.worst if e.weight.startswith("pre/")]
    assert kinked and all(e.remeasured for e in kinked) and result.remeasured >= 2
    first = kinked[0].estimates[0]
    assert abs(first - kinked[0].analytic) > 1e-3 * abs(kinked[0].analytic)  # the first step was misled
    assert result.verdict == "fine" and result.relative_difference < THRESHOLD, str(result)
    assert "measured again" in str(result)


# -- the original model is left exactly as it was --------------------------------------------------

def test_original_model_weights_and_bn_statistics_unchanged():
    keras.utils.set_random_seed(3)
    model = zoo.lenet5(input_shape=(8, 8, 1), classes=3, regularization=REG)
    x, y = batch((8, 8, 1))
    model(x, training=False)
    bn_stats = [v for v in model.non_trainable_variables if "moving" in v.path]
    assert bn_stats
    before = [np.array(v) for v in model.variables]
    paths, dtypes = [v.path for v in model.variables], [v.dtype for v in model.variables]
    policy = model.dtype_policy.name
    for training in (True, False):
        result = zoo.gradcheck(model, x, y, max_params=2, training=training)
        assert_fine(result, model)
        assert result.training is training
    after = [np.array(v) for v in model.variables]
    assert [v.path for v in model.variables] == paths and [v.dtype for v in model.variables] == dtypes
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert model.dtype_policy.name == policy
    assert model.get_layer("f6_dropout").rate == pytest.approx(0.5)
    # the assertion has teeth: a training-mode call does move the statistics
    model(x, training=True)
    assert any(not np.array_equal(np.array(v), b) for v, b in zip(model.variables, before))


# -- the loss, determinism, the result -------------------------------------------------------------

def _tiny(activation=None, dropout=0.0):
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation="tanh", name="hidden")(inputs)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    keras.utils.set_random_seed(4)
    return keras.Model(inputs, keras.layers.Dense(2, activation=activation, name="out")(x))


def test_loss_choices():
    x, _ = batch((4,), classes=2)
    labels = np.array([0, 1, 1, 0])
    targets = np.random.default_rng(5).standard_normal((4, 2))
    logits, softmax = _tiny(), _tiny("softmax")
    for model in (logits, softmax):  # default: sparse CE, from logits unless the model ends in a softmax
        assert_fine(zoo.gradcheck(model, x, labels), model)
    default = zoo.gradcheck(logits, x, labels).loss
    explicit = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits(x))
    assert default == pytest.approx(float(explicit), rel=1e-5)
    compiled = _tiny()
    compiled.compile(optimizer="sgd", loss="mse")
    result = zoo.gradcheck(compiled, x, targets)
    assert_fine(result, compiled)
    assert result.loss == pytest.approx(float(np.mean((compiled(x).numpy() - targets) ** 2)), rel=1e-5)
    for loss in (keras.losses.Huber(), "mean_absolute_error", lambda t, p: keras.ops.sum((t - p) ** 2, axis=-1)):
        assert_fine(zoo.gradcheck(logits, x, targets, loss=loss), logits)


class AlwaysNoisy(keras.layers.Layer):
    """Noise from a stateful TF op that no config switch turns off."""

    def call(self, inputs):
        return inputs + tf.random.normal(tf.shape(inputs), dtype=inputs.dtype)


def test_a_model_still_random_with_dropout_off_is_refused():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(AlwaysNoisy()(keras.layers.Dense(3)(inputs)))
    x, y = batch((4,), classes=2)
    with pytest.raises(ValueError, match="still random"):
        zoo.gradcheck(keras.Model(inputs, outputs), x, y)
    assert zoo.gradcheck(_tiny(dropout=0.9), x, y).ok  # Keras dropout is switched off, not refused


def test_verdict_thresholds_and_result_object():
    assert [verdict_for(d) for d in (0.0, 1e-7, 9e-7, 1e-6, 1e-5, 9e-4, 1e-3, 0.5, math.nan)] == [
        "fine", "fine", "fine", "look closer", "look closer", "look closer", "bug", "bug", "bug"]

    def result(overall, per_weight, weight_difference=1e-3, roundoff=1e-10):
        weights = (WeightCheck("a/kernel", (2, 2), 3, 1.0, 1.0, weight_difference, per_weight,
                               within_roundoff=weight_difference <= roundoff * math.sqrt(3)),)
        return GradCheckResult("m", overall, 1e-3, weights, (), 1e-6, True, 1.0, 0.1, 3, 4, 3, 0, roundoff)

    assert result(1e-9, 1e-9).verdict == "fine"
    assert result(1e-9, 1e-2).verdict == "bug"  # one bad weight is enough
    # … unless round-off explains its difference (a weight with a tiny gradient)
    assert result(1e-9, 1e-2, weight_difference=1e-10).verdict == "fine"
    everything_roundoff = result(0.5, 0.5, weight_difference=1e-11)
    everything_roundoff = dataclasses.replace(everything_roundoff, difference_norm=1e-11)
    assert everything_roundoff.within_roundoff and everything_roundoff.verdict == "fine"
    assert "round-off" in str(everything_roundoff)
    assert result(1e-5, 1e-9).verdict == "look closer" and result(1e-5, 1e-9).ok
    text = str(result(1e-9, 1e-9))
    assert "a/kernel" in text and "fine" in text and "relative difference" in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        result(0, 0).relative_difference = 1.0


@pytest.fixture(scope="module")
def tiny():
    return _tiny()


@pytest.mark.parametrize("kwargs, needles", [
    ({"epsilon": 0.0}, ("epsilon", "0.0", "(0, 1)")),
    ({"epsilon": -1e-5}, ("epsilon", "-1e-05")),
    ({"epsilon": float("nan")}, ("epsilon", "nan")),
    ({"epsilon": float("inf")}, ("epsilon", "inf")),
    ({"epsilon": True}, ("epsilon", "True")),
    ({"epsilon": "1e-5"}, ("epsilon", "'1e-5'")),
    ({"max_params": 0}, ("max_params", "0", ">= 1")),
    ({"max_params": 2.5}, ("max_params", "2.5")),
    ({"seed": -1}, ("seed", "-1")),
    ({"training": "yes"}, ("training", "'yes'")),
    ({"loss": "no_such_loss"}, ("loss", "no_such_loss")),
    ({"loss": 42}, ("loss", "42")),
    ({"y": np.array([0, 1, 1])}, ("len(x) = 4", "len(y) = 3")),
    ({"x": np.zeros((0, 4)), "y": np.zeros((0,))}, ("x", "at least one example")),
    ({"x": np.full((4, 4), np.nan)}, ("x", "finite")),
    ({"model": "lenet5"}, ("model", "keras.Model", "str")),
])
def test_bad_arguments_raise_value_error(tiny, kwargs, needles):
    arguments = {"model": tiny, "x": np.zeros((4, 4)), "y": np.array([0, 1, 1, 0]), **kwargs}
    with pytest.raises(ValueError) as error:
        zoo.gradcheck(**arguments)
    for needle in needles:
        assert needle in str(error.value), (needle, str(error.value))


def test_model_without_trainable_weights_is_refused():
    frozen = _tiny()
    frozen.trainable = False
    with pytest.raises(ValueError, match="no trainable weights"):
        zoo.gradcheck(frozen, np.zeros((4, 4)), np.array([0, 1, 1, 0]))


# -- the command line ------------------------------------------------------------------------------

def _main(capsys, *argv):
    from zoo.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return types.SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)


def test_cli_bad_argument_is_one_line(run_cli):
    # in a fresh interpreter: nothing but the one line on stderr, not even TensorFlow's start-up logs
    assert_one_line_error(run_cli("zoo", "gradcheck", "lenet5", "--epsilon", "0"), "--epsilon", "'0'", "(0, 1)")


def test_cli_passes(capsys):
    result = _main(capsys, "gradcheck", "lstm", "--max-params", "2", "--l2", "1e-3", "--keep-prob", "0.5")
    assert result.returncode == 0, result.stderr
    assert "lstm1/lstm_cell/kernel" in result.stdout and "predictions/bias" in result.stdout
    assert "fine" in result.stdout.splitlines()[-1]


@pytest.mark.parametrize("args, needles", [
    (("gradcheck", "lenet6"), ("lenet6", "did you mean lenet5")),
    (("gradcheck", "lenet5", "--max-params", "0"), ("--max-params", "'0'", ">= 1")),
    (("gradcheck", "lenet5", "--batch", "two"), ("--batch", "'two'")),
    (("gradcheck", "lenet5", "--l2", "-1"), ("--l2", "'-1'", ">= 0")),
    (("gradcheck", "lenet5", "--keep-prob", "0"), ("--keep-prob", "(0, 1]")),
    (("gradcheck", "alexnet", "--input-shape", "8,8,1"), ("alexnet", "67")),
])
def test_cli_user_errors_exit_2(capsys, args, needles):
    assert_one_line_error(_main(capsys, *args), *needles)


def test_cli_exits_1_on_a_bug(capsys, monkeypatch):
    weight = WeightCheck("a/kernel", (2,), 2, 2.0, 1.0, 1.0, 0.33, within_roundoff=False)
    bug = GradCheckResult("lenet5", 0.3, 1.0, (weight,), (), 1e-6, True, 1.0, 0.0, 2, 2, 2, 0, 1e-10)
    monkeypatch.setattr(zoo, "gradcheck", lambda *args, **kwargs: bug)
    result = _main(capsys, "gradcheck", "lenet5")
    assert result.returncode == 1 and "bug" in result.stdout
