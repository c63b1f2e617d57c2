"""GoogLeNet / Inception v1: reference counts and MACs, the module, the small form, regularization, errors."""

import math

import keras
import numpy as np
import pytest

import zoo
from zoo.inception import AUX_LOSS_WEIGHTS, GOOGLENET_TABLE, _max_pool_ceil, googlenet_min_input_size

TORCHVISION_PARAMS = 6_624_904  # torchvision.models.googlenet(aux_logits=False) num_params
TORCHVISION_AUX_PARAMS = 13_004_888  # torchvision.models.googlenet(aux_logits=True, init_weights=...)
PAPER_PARAMS = 6_998_552
TORCHVISION_GMACS = 1.498  # torchvision's published "GFLOPS" (GMACs) at 224×224


def trainable(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


# -- reference forms at 224×224 ---------------------------------------------------------------------

def test_torchvision_form_parameters_macs_and_sizes():
    model = zoo.googlenet()
    assert model.name == "googlenet" and model.output.shape == (None, 1000)
    assert trainable(model) == TORCHVISION_PARAMS
    result = zoo.summary(model, print_fn=None)
    assert result.total_params == model.count_params()
    assert result.trainable_params == TORCHVISION_PARAMS
    assert result.macs == pytest.approx(TORCHVISION_GMACS * 1e9, rel=0.02)
    sizes = {name: model.get_layer(name).output.shape[1:3] for name in
             ("conv1_conv", "maxpool1", "maxpool2", "inception_3b_concat", "maxpool3", "maxpool4")}
    assert sizes == {"conv1_conv": (112, 112), "maxpool1": (56, 56), "maxpool2": (28, 28),
                     "inception_3b_concat": (28, 28), "maxpool3": (14, 14), "maxpool4": (7, 7)}
    assert model.get_layer("inception_5b_concat").output.shape == (None, 7, 7, 1024)  # include_top=False's
    assert model.get_layer("maxpool4").pool_size == (2, 2)
    assert model.get_layer("inception_3a_5x5_conv").kernel_size == (3, 3)  # torchvision's quirk
    convs = layers_of(model, keras.layers.Conv2D)
    assert len(convs) == 3 + 9 * 6 and not any(conv.use_bias for conv in convs)
    bns = layers_of(model, keras.layers.BatchNormalization)
    assert len(bns) == len(convs) and {bn.epsilon for bn in bns} == {1e-3}
    assert all(conv.kernel_initializer.__class__.__name__ == "HeNormal" for conv in convs)


def test_paper_form_parameters():
    model = zoo.googlenet(variant="paper")  # regularization=None: the paper's own, no BN
    assert model.count_params() == trainable(model) == PAPER_PARAMS
    assert not layers_of(model, keras.layers.BatchNormalization)
    convs = layers_of(model, keras.layers.Conv2D)
    assert all(conv.use_bias for conv in convs)
    assert model.get_layer("inception_3a_5x5_conv").kernel_size == (5, 5)
    assert model.get_layer("maxpool4").pool_size == (3, 3)
    assert model.get_layer("maxpool4").output.shape[1:3] == (7, 7)
    assert {layer.name for layer in layers_of(model, zoo.LocalResponseNormalization)} == {"norm1", "norm2"}
    no_lrn = zoo.googlenet(variant="paper", lrn=False, include_top=False, pooling="avg")
    assert not layers_of(no_lrn, zoo.LocalResponseNormalization) and no_lrn.output.shape == (None, 1024)


def test_aux_logits_three_outputs_and_torchvision_count():
    # Parameter counts do not depend on the input size (global average pool, adaptive 4×4 aux pool).
    model = zoo.googlenet(aux_logits=True, input_shape=(64, 64, 3))
    assert trainable(model) == TORCHVISION_AUX_PARAMS
    assert [tuple(out.shape) for out in model.outputs] == [(None, 1000)] * 3
    assert model.output_names == ["predictions", "aux1_predictions", "aux2_predictions"]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) and "fc" in layer.name
                   for layer in model.layers)


def test_aux_logits_train_with_paper_loss_weights():
    keras.utils.set_random_seed(0)
    model = zoo.googlenet_small(input_shape=(16, 16, 1), classes=5, aux_logits=True,
                                regularization=zoo.Regularization(keep_prob=0.6), aux_keep_prob=0.3)
    assert [tuple(out.shape) for out in model.outputs] == [(None, 5)] * 3
    assert model.get_layer("aux1_dropout").rate == pytest.approx(0.7)
    assert model.get_layer("head_dropout").rate == pytest.approx(0.4)
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy"] * 3,
                  loss_weights=list(AUX_LOSS_WEIGHTS))
    x = np.random.default_rng(0).uniform(size=(4, 16, 16, 1)).astype("float32")
    y = np.arange(4) % 5
    history = model.fit(x, (y, y, y), batch_size=2, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    # The total loss is main + 0.3·aux1 + 0.3·aux2 (no penalty, no dropout at inference).
    predictions = model(x, training=False)
    losses = [float(keras.losses.sparse_categorical_crossentropy(y, p).numpy().mean()) for p in predictions]
    total = float(model.compute_loss(x=x, y=(y, y, y), y_pred=predictions, training=False))
    assert total == pytest.approx(sum(w * l for w, l in zip(AUX_LOSS_WEIGHTS, losses)), rel=1e-4)


# -- the module in a user's model -----------------------------------------------------------------------

@pytest.mark.parametrize("batch_norm", [True, False])
def test_inception_block_in_a_functional_model(batch_norm):
    reg = zoo.Regularization(l2=1e-4, batch_norm=batch_norm)
    inputs = keras.Input((10, 12, 8))
    x = zoo.inception_block(inputs, 4, 3, 5, 2, 6, 7, regularization=reg, name="mine")
    x = zoo.inception_block(x, 2, 2, 2, 2, 2, 2, regularization=reg, kernel_size_5x5=3)  # auto name
    y = zoo.inception_block(x, 1, 1, 1, 1, 1, 1)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(y))
    model = keras.Model(inputs, outputs)
    assert model.get_layer("mine_concat").output.shape == (None, 10, 12, 4 + 5 + 6 + 7)
    assert y.shape == (None, 10, 12, 4)
    assert model.get_layer("mine_5x5_conv").kernel_size == (5, 5)
    assert model.get_layer("mine_3x3_conv").kernel_size == (3, 3)
    assert model.get_layer("mine_pool").strides == (1, 1)
    assert model.get_layer("mine_1x1_conv").use_bias is (not batch_norm)
    assert any(layer.name == "mine_1x1_bn" for layer in model.layers) is batch_norm
    assert sum(layer.name.endswith("_concat") for layer in model.layers) == 3
    assert len(model.losses) == 2 * 6  # the first two blocks carry the penalty, the third has λ = 0
    assert model.predict(np.zeros((1, 10, 12, 8), "float32"), verbose=0).shape == (1, 3)


def test_ceil_mode_max_pool_matches_a_reference():
    """torchvision's MaxPool2d(k, 2, ceil_mode=True) on non-negative maps, for even, odd and mixed sizes."""

    def reference(a, k):
        out = [-((k - n) // 2) + 1 for n in a.shape[:2]]
        return np.array([[a[2 * i:2 * i + k, 2 * j:2 * j + k].max() for j in range(out[1])]
                         for i in range(out[0])])

    rng = np.random.default_rng(0)
    for k in (2, 3):
        for size in ((8, 8), (7, 7), (8, 7), (7, 10), (2, 3)):
            inputs = keras.Input((*size, 1))
            model = keras.Model(inputs, _max_pool_ceil(inputs, k, "pool"))
            a = rng.uniform(size=size).astype("float32")
            np.testing.assert_array_equal(model.predict(a[None, ..., None], verbose=0)[0, ..., 0], reference(a, k))


# -- the small form ------------------------------------------------------------------------------------

@pytest.mark.parametrize("pooling, shape", [(None, (None, 4, 4, 256)), ("avg", (None, 256)), ("max", (None, 256))])
def test_include_top_false_pooling(pooling, shape):
    model = zoo.googlenet_small(input_shape=(28, 28, 1), include_top=False, pooling=pooling)
    assert model.output.shape == shape
    assert not any(layer.name == "predictions" for layer in model.layers)


def test_small_form_structure_and_registry():
    assert {"googlenet", "googlenet_small"} <= set(zoo.list_models("googlenet*"))
    big, small = zoo.get_entry("googlenet"), zoo.get_entry("googlenet_small")
    assert (big.default_input_shape, big.small_input_shape) == ((224, 224, 3), (15, 15, 3))
    assert (small.default_input_shape, small.small_input_shape) == ((32, 32, 3), (8, 8, 1))
    assert big.family == small.family == "inception"
    assert googlenet_min_input_size() == 15 == big.small_input_shape[0]
    model = zoo.build("googlenet_small", classes=10)
    assert model.name == "googlenet_small" and model.input.shape == (None, 32, 32, 3)
    assert model.get_layer("conv1_conv").kernel_size == (3, 3) and model.get_layer("conv1_conv").strides == (1, 1)
    widths = {module: model.get_layer(f"inception_{module}_concat").output.shape[-1] for module in GOOGLENET_TABLE}
    assert widths == {m: (t[0] + t[2] + t[4] + t[5]) // 4 for m, t in GOOGLENET_TABLE.items()}
    assert [model.get_layer(p).output.shape[1] for p in ("maxpool1", "maxpool3", "maxpool4")] == [16, 8, 4]
    assert zoo.summary(model, print_fn=None).total_params == model.count_params()
    tensor = keras.Input((28, 28, 1), name="user_input")
    on_tensor = zoo.googlenet_small(input_tensor=tensor, classes=10)
    assert on_tensor.inputs[0] is tensor and on_tensor.get_layer("maxpool4").output.shape[1:3] == (4, 4)
    paper = zoo.googlenet_small(variant="paper", input_shape=(28, 28, 1))
    assert not layers_of(paper, keras.layers.BatchNormalization)
    assert paper.get_layer("inception_4e_5x5_conv").kernel_size == (5, 5)


@pytest.mark.parametrize("shape", [(28, 28, 1), (8, 8, 1)])
def test_small_form_trains_one_step(shape):
    keras.utils.set_random_seed(0)
    model = zoo.googlenet_small(input_shape=shape, classes=10,
                                regularization=zoo.Regularization(l2=1e-4, keep_prob=0.6))
    assert model.count_params() < 400_000
    x = np.random.default_rng(0).uniform(size=(2, *shape)).astype("float32")
    y = np.array([3, 7])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


def test_small_form_save_and_load_safe_mode(tmp_path):
    keras.utils.set_random_seed(1)
    model = zoo.googlenet_small(input_shape=(8, 8, 1), classes=4, lrn=True,
                                regularization=zoo.Regularization(l1=1e-5, l2=1e-4, keep_prob=0.8))
    x = np.random.default_rng(1).uniform(size=(3, 8, 8, 1)).astype("float32")
    path = tmp_path / "x.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(model(x, training=False), loaded(x, training=False))
    assert loaded.get_layer("norm1").alpha == pytest.approx(2e-5)


# -- regularization ------------------------------------------------------------------------------------

def test_every_conv_and_dense_kernel_is_penalized_and_bn_never_on_outputs():
    def build(reg):
        return zoo.googlenet_small(input_shape=(16, 16, 1), classes=3, aux_logits=True, regularization=reg)

    model = build(zoo.Regularization(l2=1e-4, keep_prob=0.9))
    kernels = layers_of(model, (keras.layers.Conv2D, keras.layers.Dense))
    assert len(kernels) == 1 + 9 * 6 + 2 * 3 + 1  # stem, modules, aux heads (conv, fc, out), classifier
    assert len(model.losses) == len(kernels)
    assert all(layer.kernel_regularizer is not None for layer in kernels)
    for output in model.outputs:
        layer = output._keras_history[0]
        assert isinstance(layer, keras.layers.Dense) and layer.activation.__name__ == "softmax"
    assert all(not isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers
               if "predictions" in layer.name or "fc" in layer.name)
    assert build(zoo.Regularization(l2=0.0, l1=0.0, keep_prob=0.9)).losses == []


# -- errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, needles", [
    ({"variant": "keras"}, ["variant", "'keras'", "torchvision", "paper"]),
    ({"stem": "tiny"}, ["stem", "'tiny'", "imagenet", "small"]),
    ({"input_shape": (14, 14, 3)}, ["15×15", "14×14", "googlenet_small"]),
    ({"variant": "paper", "input_shape": (30, 30, 3)}, ["31×31", "googlenet_small"]),
    ({"variant": "paper", "aux_logits": True, "input_shape": (64, 64, 3)}, ["79×79"]),
    ({"aux_logits": 1}, ["aux_logits", "1"]),
    ({"aux_logits": True, "include_top": False}, ["aux_logits", "include_top"]),
    ({"aux_keep_prob": 0.0}, ["keep_prob"]),
    ({"kernel_size_5x5": 4}, ["kernel_size_5x5", "4", "5", "3"]),
    ({"lrn": "yes"}, ["lrn", "'yes'"]),
    ({"width_divisor": 0}, ["width_divisor", "0"]),
    ({"classes": 0}, ["classes", "0"]),
    ({"pooling": "sum"}, ["pooling", "'sum'", "avg", "max"]),
])
def test_googlenet_refuses_bad_arguments(kwargs, needles):
    with pytest.raises(ValueError) as error:
        zoo.googlenet(**kwargs)
    for needle in needles:
        assert needle in str(error.value), (needle, str(error.value))


def test_small_input_errors_and_inception_block_errors():
    with pytest.raises(ValueError, match="at least 4×4"):
        zoo.googlenet_small(input_shape=(3, 3, 1))
    with pytest.raises(ValueError, match="fixes"):
        zoo.googlenet_small(stem="imagenet")
    inputs = keras.Input((8, 8, 4))
    with pytest.raises(ValueError, match=r"filters_5x5 must be an integer >= 1, got 0"):
        zoo.inception_block(inputs, 4, 3, 5, 2, 0, 7)
    with pytest.raises(ValueError, match=r"kernel_size_5x5 must be an odd positive integer.*got 4"):
        zoo.inception_block(inputs, 4, 3, 5, 2, 6, 7, kernel_size_5x5=4)
    with pytest.raises(ValueError, match=r"x must be a 4-D"):
        zoo.inception_block(keras.Input((8, 4)), 4, 3, 5, 2, 6, 7)
    with pytest.raises(ValueError, match=r"regularization must be"):
        zoo.inception_block(inputs, 4, 3, 5, 2, 6, 7, regularization="l2")
