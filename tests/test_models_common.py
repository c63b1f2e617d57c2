"""What every registered model must do, whoever wrote it.

At its small input shape: ``zoo.summary`` totals equal ``count_params()``; λ > 0 gives one loss per
penalized kernel and λ = 0 none; and for models small enough to train on a CPU in a test (under 5 M
parameters there), one training step on random data and a ``.keras`` round trip that loads with
``safe_mode=True`` and predicts identically. The big ImageNet models are built and counted, not trained
(their exact reference counts are asserted in each family's own test file).
"""

import math

import keras
import numpy as np
import pytest

import zoo

TRAIN_LIMIT = 5_000_000
PENALIZED_KEYS = ("kernel_regularizer", "recurrent_regularizer", "depthwise_regularizer", "pointwise_regularizer")


def random_batch(entry, model, n=2, seed=0):
    rng = np.random.default_rng(seed)
    shape = tuple(model.inputs[0].shape[1:])
    if entry.kind == "text":
        x = rng.integers(1, 50, size=(n, *shape)).astype("int32")
    else:
        x = rng.uniform(0, 1, size=(n, *shape)).astype("float32")
    classes = model.outputs[0].shape[-1]
    return x, np.arange(n) % classes


def penalized_kernels(model):
    count = 0
    for layer in _leaves(model):
        config = layer.get_config()
        count += sum(1 for key in PENALIZED_KEYS if config.get(key) is not None)
    return count


def _leaves(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaves(layer)
        elif isinstance(layer, keras.layers.Bidirectional):
            yield layer.forward_layer
            yield layer.backward_layer
        else:
            yield layer


@pytest.fixture(params=zoo.list_models())
def entry(request):
    keras.backend.clear_session()
    return zoo.get_entry(request.param)


def test_registry_is_complete_for_every_family():
    families = {zoo.get_entry(name).family for name in zoo.list_models()}
    assert "lenet" in families


def test_the_keras_free_catalog_is_the_registry():
    """The command lines check names against zoo.catalog before Keras: it must list what the registry does."""
    from zoo import catalog

    assert dict(catalog.BUILTIN_FAMILIES) == {name: zoo.get_entry(name).family for name in zoo.list_models()}
    assert catalog.models_of_family("lenet") == ["lenet5"]
    with pytest.raises(ValueError, match="unknown model name 'lenet6'; did you mean lenet5"):
        catalog.check_model_name("lenet6")


def test_summary_totals_and_penalties_at_small_input(entry):
    reg = zoo.Regularization(l2=1e-4, keep_prob=0.9)
    model = entry.build(input_shape=entry.small_input_shape, classes=3, regularization=reg)
    result = zoo.summary(model, print_fn=None)
    assert result.total_params == model.count_params()
    assert result.trainable_params == sum(math.prod(w.shape) for w in model.trainable_weights)
    assert result.macs > 0
    assert len(model.losses) == penalized_kernels(model) > 0
    assert any(isinstance(layer, keras.layers.Dropout) for layer in _leaves(model)) or entry.family == "lstm"
    unpenalized = entry.build(input_shape=entry.small_input_shape, classes=3,
                              regularization=zoo.Regularization(keep_prob=0.9))
    assert unpenalized.losses == []


HEAVY_TO_TRAIN = ("resnet56", "resnet110")  # 15-30 s for one step and a round trip: with -m slow (resnet20,
                                            # resnet32 and resnet44 cover the same code)


ON_EVERY_BACKEND = ("lenet5", "alexnet_small", "googlenet_small", "resnet20", "resnet18", "lstm", "lstm_text")


def _mark(name: str):
    marks = [pytest.mark.slow] if name in HEAVY_TO_TRAIN else []
    marks += [pytest.mark.backends] if name in ON_EVERY_BACKEND else []
    return pytest.param(name, marks=marks)


@pytest.mark.parametrize("name", [_mark(n) for n in zoo.list_models()])
def test_trains_one_step_and_round_trips(name, tmp_path):
    keras.backend.clear_session()
    entry = zoo.get_entry(name)
    keras.utils.set_random_seed(0)
    model = entry.build(input_shape=entry.small_input_shape, classes=3,
                        regularization=zoo.Regularization(l2=1e-4, keep_prob=0.8))
    if model.count_params() > TRAIN_LIMIT:
        pytest.skip(f"{entry.name} has {model.count_params():,} parameters: built and counted, not trained")
    x, y = random_batch(entry, model)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    path = tmp_path / f"{entry.name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


BIG = {n for n in zoo.list_models() if (zoo.get_entry(n).params or 0) > 30_000_000}  # 45-61 M weights each


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in BIG else
                                               [pytest.mark.backends] if n in ON_EVERY_BACKEND else [])
                                  for n in zoo.list_models()])  # backends: the same architecture on JAX
def test_the_default_call_has_the_count_zoo_list_shows(name):
    """``zoo list``'s parameters column is each default call's count_params(). Global-pooling models count
    the same at any input size, so those are built at their small input (quicker)."""
    keras.backend.clear_session()
    entry = zoo.get_entry(name)
    assert entry.params is not None, f"{name} is registered without its parameter count"
    size_free = entry.family in ("resnet", "inception")
    small = (*entry.small_input_shape[:2], entry.default_input_shape[-1])  # the default channels
    model = zoo.build(name, input_shape=small) if size_free else zoo.build(name)
    assert model.count_params() == entry.params
