"""``weights=`` on every builder (None, a .weights.h5 file, "imagenet" through keras.applications twins),
``zoo.build(name, name=...)`` and a callable ``classifier_activation``. Nothing is downloaded: the ImageNet
path is tested on a randomly initialised twin."""

import keras
import numpy as np
import pytest

import zoo
import zoo.weights
from zoo.layers import outputs_logits

SHAPE = (32, 32, 3)


def _randomized(model, seed=0):
    """Weights that are not an initializer's: BN γ/variance around 1, everything else small noise."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = layer.get_weights()
        if not values:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            values = [rng.uniform(0.5, 1.5, v.shape) if i in (0, 3) else rng.normal(0, 0.1, v.shape)
                      for i, v in enumerate(values)]
        else:
            values = [rng.normal(0, 0.05, v.shape) for v in values]
        layer.set_weights(values)
    return model


@pytest.fixture
def random_twin(monkeypatch):
    """``zoo.weights.imagenet_twin`` replaced by keras.applications' twin with random weights."""
    made = []

    def twin(owner, model, include_top, classes):
        cls = getattr(keras.applications, zoo.weights.KERAS_TWINS[owner][0])
        top = include_top and classes == 1000
        made.append(_randomized(cls(weights=None, include_top=top, input_shape=tuple(model.input_shape[1:]))))
        return made[-1]

    monkeypatch.setattr(zoo.weights, "imagenet_twin", twin)
    return made


def test_weights_none_is_the_default_for_every_kind_of_builder():
    for name in ("lenet5", "alexnet_small", "resnet20"):
        entry = zoo.get_entry(name)
        model = zoo.build(name, weights=None, input_shape=entry.small_input_shape, classes=3)
        assert model.output_shape == (None, 3)


def test_a_weights_file_round_trips_and_a_misfit_names_the_file(tmp_path):
    keras.utils.set_random_seed(0)
    saved = _randomized(zoo.lenet5())
    path = tmp_path / "lenet.weights.h5"
    saved.save_weights(path)
    loaded = zoo.lenet5(weights=str(path))
    x = np.random.default_rng(1).uniform(0, 1, (4, 32, 32, 1)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), saved.predict(x, verbose=0))
    with pytest.raises(ValueError, match="lenet.weights.h5.*does not fit"):
        zoo.lenet5(weights=str(path), classes=3)


@pytest.mark.parametrize("name, weights, needle", [
    ("lenet5", "imagenet", "resnet50, resnet101"), ("alexnet_small", "imagenet", "alexnet_small has none"),
    ("lenet5", "model.h5", ".weights.h5"), ("lenet5", 3, "weights must be"),
    ("lenet5", "/no/such.weights.h5", "does not exist"),
])
def test_bad_weights_are_refused_naming_the_model_and_the_choices(name, weights, needle):
    with pytest.raises(ValueError, match=needle):
        zoo.build(name, weights=weights)


def test_imagenet_weights_reach_our_resnet50_exactly(random_twin):
    model = zoo.resnet50(weights="imagenet", input_shape=SHAPE, regularization=zoo.Regularization(l2=1e-4))
    [twin] = random_twin
    x = np.random.default_rng(2).uniform(0, 255, (2, *SHAPE)).astype("float32")
    expected = twin.predict(x, verbose=0)
    assert np.std(expected) > 1e-6
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert model.losses  # the requested L2 penalty is there as well
    with pytest.raises(ValueError, match="keras.applications conventions"):
        zoo.resnet50(weights="imagenet", input_shape=SHAPE, use_bias=False)


def test_imagenet_backbone_with_a_new_head_for_other_classes(random_twin):
    model = zoo.build("resnet50v2", weights="imagenet", input_shape=SHAPE, classes=10)
    [twin] = random_twin
    assert "predictions" not in {layer.name for layer in twin.layers}  # a top-less twin
    for layer in twin.layers:
        if layer.weights:
            for ours, theirs in zip(model.get_layer(layer.name).get_weights(), layer.get_weights()):
                np.testing.assert_array_equal(ours, theirs)
    assert model.output_shape == (None, 10)


def test_build_passes_name_and_a_callable_classifier_activation():
    model = zoo.build("lenet5", name="my_lenet", classifier_activation=keras.activations.softmax)
    assert model.name == "my_lenet" and not outputs_logits(model)
    probabilities = model.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="classifier_activation"):
        zoo.lenet5(classifier_activation=3)


# -- zoo.regularize on models we did not build ------------------------------------------------------------

def _dense_model(regularizer=None):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, kernel_regularizer=regularizer, name="head")(inputs)
    return keras.Model(inputs, outputs)


def test_regularize_keeps_a_penalty_the_model_had_unless_told_to_replace_it():
    model = _dense_model(keras.regularizers.L2(0.5))
    kept = zoo.regularize(model, zoo.Regularization())
    assert len(kept.losses) == 1 and kept.get_layer("head").kernel_regularizer.l2 == pytest.approx(0.5)
    assert zoo.regularize(model, zoo.Regularization(), replace=True).losses == []
    swapped = zoo.regularize(model, zoo.Regularization(l2=1e-3), replace=True)
    assert swapped.get_layer("head").kernel_regularizer.l2 == pytest.approx(1e-3)
    fresh = zoo.regularize(_dense_model(), zoo.Regularization(l2=1e-3))  # none before: the new one
    assert fresh.get_layer("head").kernel_regularizer.l2 == pytest.approx(1e-3)


def test_regularize_refuses_a_subclassed_model_saying_why():
    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Tiny()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="subclassed model \\(Tiny\\).*functional API"):
        zoo.regularize(model, zoo.Regularization(l2=1e-4))


def test_errors_name_the_registered_model_not_its_base():
    with pytest.raises(ValueError, match="^alexnet_torchvision needs inputs of at least 63×63"):
        zoo.build("alexnet_torchvision", input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="^alexnet_small: "):
        zoo.alexnet_small(classes=0)


def test_kernel_sparsity_counts_kernel_weights_below_the_threshold_only():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(2, name="a")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="b")(x))
    model.get_layer("a").set_weights([np.array([[0.0, 0.5], [1e-4, -2e-4], [0.3, -0.3], [5e-4, 1.0]]),
                                      np.zeros(2)])       # 4 of 8 below 1e-3; biases never count
    model.get_layer("b").set_weights([np.array([[0.0], [0.2]]), np.zeros(1)])  # 1 of 2
    assert zoo.kernel_sparsity(model) == pytest.approx(5 / 10)
    assert zoo.kernel_sparsity(model, threshold=0.4) == pytest.approx(8 / 10)
    with pytest.raises(ValueError, match="threshold"):
        zoo.kernel_sparsity(model, threshold=0)


# -- the paper by default ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, params, dropouts, batch_norms", [
    ("lenet5", 61_706, 0, 0),          # LeCun et al. 1998: none of the three
    ("alexnet", 60_965_224, 2, 0),     # Krizhevsky et al. 2012: dropout 0.5 in fc6 and fc7, no BN
    ("resnet20", 271_098, 0, 19),      # He et al. 2015: BN after every conv
])
def test_the_default_call_is_the_published_model(name, params, dropouts, batch_norms):
    model = zoo.build(name)
    assert model.count_params() == params
    layers = model.layers
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in layers) == dropouts
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in layers) == batch_norms
    assert f"{params:,}" in zoo.get_entry(name).description or name == "resnet20"


def test_a_dict_changes_only_what_it_names_over_the_paper_a_regularization_replaces_it():
    added = zoo.alexnet_small(regularization={"l2": 1e-4})  # paper's dropout 0.5 kept, penalty added
    assert [layer.rate for layer in added.layers if isinstance(layer, keras.layers.Dropout)] == [0.5, 0.5]
    assert added.losses
    whole = zoo.alexnet_small(regularization=zoo.Regularization(l2=1e-4))  # keep_prob 1, BN on: as named
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in whole.layers)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in whole.layers)


@pytest.mark.parametrize("name", ["resnet50", "resnet20", "googlenet_small"])
def test_without_the_top_the_default_input_is_any_size_as_in_keras_applications(name):
    model = zoo.build(name, include_top=False, pooling="avg")
    assert model.input_shape[1:3] == (None, None)
    for size in (32, 48):
        assert model.predict(np.zeros((1, size, size, 3), "float32"), verbose=0).shape[0] == 1
