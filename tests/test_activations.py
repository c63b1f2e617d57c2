"""Initialization and activation diagnostics (zoo.activation_stats, ``zoo activations``) against hand
computation, and what they show: a small N(0, 0.01²) initialization collapses the signal, He keeps it."""

import keras
import numpy as np
import pytest

import zoo
from zoo.cli import main as zoo_main


def _tiny_model(w1, w2):
    inputs = keras.Input(shape=(3,))
    hidden = keras.layers.Dense(2, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(hidden)
    model = keras.Model(inputs, outputs, name="tiny")
    model.get_layer("hidden").set_weights([w1, np.zeros(2, "float32")])
    model.get_layer("out").set_weights([w2, np.zeros(2, "float32")])
    return model


def test_layer_statistics_and_gradient_norms_equal_a_hand_computation():
    w1 = np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]], "float32")
    w2 = np.array([[1.0, 0.0], [-1.0, 1.0]], "float32")
    x = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 1.0], [2.0, 0.0, 1.0], [-1.0, 1.0, 1.0]], "float32")
    y = np.array([0, 1, 1, 0])
    stats = zoo.activation_stats(_tiny_model(w1, w2), x, y)

    hidden = np.maximum(x @ w1, 0.0)
    logits = hidden @ w2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    delta = (probs - np.eye(2)[y]) / len(x)                         # ∂J/∂logits of the mean cross-entropy
    grad_w2 = hidden.T @ delta
    grad_w1 = x.T @ ((delta @ w2.T) * (x @ w1 > 0))
    assert [r.name for r in stats.layers] == ["hidden", "out"]
    assert stats.layers[0].mean == pytest.approx(hidden.mean(), abs=1e-6)
    assert stats.layers[0].std == pytest.approx(hidden.std(), abs=1e-6)
    assert stats.layers[1].mean == pytest.approx(probs.mean(), abs=1e-6)
    assert stats.layers[1].std == pytest.approx(probs.std(), abs=1e-6)
    assert stats.layers[0].kernel_grad_norm == pytest.approx(np.linalg.norm(grad_w1), rel=1e-5)
    assert stats.layers[1].kernel_grad_norm == pytest.approx(np.linalg.norm(grad_w2), rel=1e-5)
    assert (stats.input_mean, stats.input_std) == (pytest.approx(x.mean()), pytest.approx(x.std()))
    assert "hidden" in stats.report() and stats.to_dict()["layers"][1]["name"] == "out"


def test_bad_inputs_are_named():
    model = _tiny_model(np.ones((3, 2), "float32"), np.ones((2, 2), "float32"))
    with pytest.raises(ValueError, match="y must hold one label per example"):
        zoo.activation_stats(model, np.ones((4, 3)), y=[0, 1])
    with pytest.raises(ValueError, match="x must be a batch"):
        zoo.activation_stats(model, np.ones(3))
    with pytest.raises(ValueError, match="lenet5: initializer must be he, glorot, normal0.01"):
        zoo.lenet5(initializer="tiny")


def test_a_small_initialization_collapses_the_signal_and_he_keeps_it():
    x = np.random.default_rng(0).standard_normal((64, 32, 32, 1)).astype("float32")
    ratios = {}
    for init in ("he", "normal0.01"):
        keras.utils.set_random_seed(0)
        model = zoo.lenet5(initializer=init)
        ratios[init] = zoo.activations.spread_ratio(zoo.activation_stats(model, x))
    assert 0.3 < ratios["he"] < 3.0            # He: the spread stays within a factor of a few over depth
    assert ratios["normal0.01"] < 0.01         # N(0, 0.01²): ~0.01·sqrt(fan_in) per layer, collapsed
    kernel = zoo.lenet5(initializer="normal0.01").get_layer("c3_conv").kernel.numpy()
    assert kernel.std() == pytest.approx(0.01, rel=0.1)


def test_zoo_activations_prints_the_table_and_draws_the_plot(tmp_path, capsys):
    png = tmp_path / "act.png"
    assert zoo_main(["activations", "lenet5", "--activation", "sigmoid", "--batch", "16", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "c1_sigmoid" in out and "|dJ/dW|" in out and "activation sigmoid" in out
    assert png.stat().st_size > 1000


def test_zoo_activations_refuses_options_the_builder_does_not_take(capsys):
    assert zoo_main(["activations", "resnet20", "--activation", "tanh"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resnet20's builder takes no activation" in err[0] and "lenet5" in err[0]
    assert zoo_main(["activations", "lenet5", "--init", "zeros"]) == 2
    assert "--init" in capsys.readouterr().err
