"""AlexNet: exact parameter counts and MACs, LRN against TensorFlow's, input sizes, heads, training, saving."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras
import zoo
from zoo.layers import LocalResponseNormalization

NONE = zoo.Regularization.none()


def _layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def _random_images(shape, batch=2, seed=0):
    return np.random.default_rng(seed).random((batch, *shape), dtype=np.float32)


# -- exact sizes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, 60_965_224),  # the paper: two GPU towers (groups=2) in conv2, conv4, conv5
        ({"groups": 1}, 62_378_344),  # the paper's plan in one tower
        ({"plan": "torchvision"}, 61_100_840),  # torchvision.models.alexnet
    ],
    ids=["paper_groups2", "paper_groups1", "torchvision"],
)
def test_parameter_counts_and_summary_totals(kwargs, expected):
    model = zoo.alexnet(regularization=NONE, **kwargs)
    assert model.count_params() == expected
    result = zoo.summary(model, print_fn=None)
    assert result.total_params == model.count_params()
    assert result.non_trainable_params == 0
    if kwargs.get("plan") == "torchvision":
        assert model.input_shape == (None, 224, 224, 3)
        # torchvision publishes 0.714 GFLOPS (really GMACs); conv + dense MACs here are 714,188,480.
        assert result.macs == pytest.approx(0.714e9, rel=0.02)
        assert result.macs == 714_188_480
    else:
        assert model.input_shape == (None, 227, 227, 3)
    conv = _layers_of(model, keras.layers.Conv2D)
    assert [c.groups for c in conv] == ([1] * 5 if kwargs else [1, 2, 1, 2, 2])


def test_registry_entries_and_wrappers():
    assert {"alexnet", "alexnet_torchvision", "alexnet_small"} <= set(zoo.list_models("alexnet*"))
    for name, default, small in [
        ("alexnet", (227, 227, 3), (67, 67, 3)),
        ("alexnet_torchvision", (224, 224, 3), (63, 63, 3)),
        ("alexnet_small", (32, 32, 3), (8, 8, 1)),
    ]:
        entry = zoo.get_entry(name)
        assert entry.family == "alexnet"
        assert (entry.default_input_shape, entry.small_input_shape) == (default, small)
    assert zoo.alexnet_torchvision(include_top=False).name == "alexnet_torchvision"
    small = zoo.alexnet_small(classes=10, regularization=NONE)
    assert small.name == "alexnet_small" and small.input_shape == (None, 32, 32, 3)
    with pytest.raises(ValueError, match="stem"):
        zoo.build("alexnet_small", stem="imagenet")


def test_summary_totals_small_with_batch_norm():
    model = zoo.alexnet_small(input_shape=(28, 28, 1), classes=10, regularization={"batch_norm": True})
    result = zoo.summary(model, print_fn=None)
    assert result.total_params == model.count_params()
    assert result.non_trainable_params > 0  # BN moving statistics


# -- local response normalization --------------------------------------------------------------------------


def test_lrn_matches_tensorflow_and_round_trips():
    rng = np.random.default_rng(1)
    # Large values so that α·Σa² is comparable with k and the normalization really bites.
    x = (rng.standard_normal((2, 5, 4, 11)) * 60).astype(np.float32)
    layer = LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
    expected = tf.nn.local_response_normalization(
        x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75).numpy()
    got = keras.ops.convert_to_numpy(layer(x))
    assert np.abs(expected / x - 1).max() > 0.1  # the normalization changes the values noticeably
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    clone = LocalResponseNormalization.from_config(layer.get_config())
    assert (clone.depth_radius, clone.bias, clone.alpha, clone.beta) == (2, 2.0, 1e-4, 0.75)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)), expected, rtol=1e-5, atol=1e-6)
    other = LocalResponseNormalization(depth_radius=1, bias=1.0, alpha=1e-3, beta=0.5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(other(x)),
        tf.nn.local_response_normalization(x, depth_radius=1, bias=1.0, alpha=1e-3, beta=0.5).numpy(),
        rtol=1e-5, atol=1e-6,
    )


def test_lrn_placement():
    paper = zoo.alexnet(include_top=False)
    lrn = _layers_of(paper, LocalResponseNormalization)
    assert [layer.name for layer in lrn] == ["conv1_lrn", "conv2_lrn"]
    names = [layer.name for layer in paper.layers]
    assert names.index("conv1_relu") < names.index("conv1_lrn") < names.index("pool1")
    assert not _layers_of(zoo.alexnet_torchvision(include_top=False), LocalResponseNormalization)
    assert not _layers_of(zoo.alexnet_small(), LocalResponseNormalization)
    assert len(_layers_of(zoo.alexnet_small(lrn=True), LocalResponseNormalization)) == 2
    assert not _layers_of(zoo.alexnet(include_top=False, lrn=False), LocalResponseNormalization)


# -- input sizes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan, minimum", [("paper", 67), ("torchvision", 63)])
def test_imagenet_stem_minimum_input(plan, minimum):
    assert zoo.alexnet_min_input_size(plan) == minimum
    model = zoo.alexnet(plan=plan, input_shape=(minimum, minimum, 3), include_top=False)
    assert model.output_shape == (None, 1, 1, 256)  # pool5 is exactly 1×1 at the minimum
    too_small = minimum - 1
    message = f"at least {minimum}×{minimum}, got {too_small}×{too_small}; use alexnet_small \\(stem='small'\\)"
    with pytest.raises(ValueError, match=message):
        zoo.alexnet(plan=plan, input_shape=(too_small, too_small, 3))
    with pytest.raises(ValueError, match=f"at least {minimum}×{minimum}, got 8×8; use alexnet_small \\(stem='small'\\)"):
        zoo.alexnet(plan=plan, input_shape=(8, 8, 1))


@pytest.mark.parametrize("shape, pool5", [((32, 32, 3), 4), ((28, 28, 1), 4), ((8, 8, 1), 1)])
def test_small_stem_sizes(shape, pool5):
    model = zoo.build("alexnet_small", input_shape=shape, classes=10, regularization=NONE)
    assert model.output_shape == (None, 10)
    assert model.get_layer("pool5").output.shape[1:] == (pool5, pool5, 64)
    conv1 = model.get_layer("conv1_conv")
    assert (conv1.kernel_size, conv1.strides) == ((3, 3), (1, 1))
    assert model.get_layer("fc6_dense").units == 512
    assert zoo.alexnet_min_input_size(stem="small") == 1


def test_torchvision_plan_is_size_independent_above_minimum():
    model = zoo.alexnet_torchvision(input_shape=(96, 96, 3), classes=10, regularization=NONE)
    assert model.get_layer("avg_pool_6x6").output.shape[1:] == (6, 6, 256)
    assert model.get_layer("fc6_dense").kernel.shape == (9216, 4096)


# -- heads -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pooling, expected", [(None, (None, 6, 6, 256)), ("avg", (None, 256)), ("max", (None, 256))])
def test_include_top_false_pooling(pooling, expected):
    model = zoo.alexnet(include_top=False, pooling=pooling)
    assert model.output_shape == expected
    assert not _layers_of(model, keras.layers.Dense)
    small = zoo.alexnet_small(include_top=False, pooling=pooling, input_shape=(28, 28, 1))
    assert small.output_shape == ((None, 4, 4, 64) if pooling is None else (None, 64))


def test_input_tensor_and_classifier_activation():
    tensor = keras.Input(shape=(28, 28, 1))
    model = zoo.alexnet_small(input_tensor=tensor, classes=7, classifier_activation=None, regularization=NONE)
    assert model.inputs[0] is tensor and model.output_shape == (None, 7)
    logits = keras.ops.convert_to_numpy(model(_random_images((28, 28, 1))))
    assert not np.allclose(logits.sum(axis=1), 1.0)


# -- regularization ----------------------------------------------------------------------------------------


def test_batch_norm_structure_and_init():
    model = zoo.alexnet_small(input_shape=(28, 28, 1), classes=10,
                              regularization=zoo.Regularization(batch_norm=True))
    names = [layer.name for layer in model.layers]
    for block in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
        kind = "dense" if block.startswith("fc") else "conv"
        assert names.index(f"{block}_{kind}") + 1 == names.index(f"{block}_bn")
        assert names.index(f"{block}_bn") + 1 == names.index(f"{block}_relu")
        layer = model.get_layer(f"{block}_{kind}")
        assert not layer.use_bias
        assert isinstance(layer.kernel_initializer, keras.initializers.HeNormal)
    assert len(_layers_of(model, keras.layers.BatchNormalization)) == 7  # not on the output
    assert model.get_layer("predictions").use_bias
    assert names[-1] == "predictions"

    plain = zoo.alexnet(regularization=NONE, include_top=False)
    assert not _layers_of(plain, keras.layers.BatchNormalization)
    assert all(c.use_bias for c in _layers_of(plain, keras.layers.Conv2D))


def test_dropout_placement_paper_vs_torchvision():
    reg = zoo.Regularization(keep_prob=0.5, batch_norm=False)
    paper = [layer.name for layer in zoo.alexnet_small(regularization=reg).layers]
    # The paper: dropout on the outputs of fc6 and fc7 (so before fc7 and the classifier).
    assert paper[-7:] == ["fc6_dense", "fc6_relu", "fc6_dropout", "fc7_dense", "fc7_relu", "fc7_dropout",
                          "predictions"]
    tv = zoo.alexnet_torchvision(regularization=reg, input_shape=(63, 63, 3), classes=10)
    names = [layer.name for layer in tv.layers]
    # torchvision: Dropout -> Linear -> ReLU, twice.
    assert names[-9:] == ["avg_pool_6x6", "flatten", "fc6_input_dropout", "fc6_dense", "fc6_relu",
                          "fc7_input_dropout", "fc7_dense", "fc7_relu", "predictions"]
    rates = [layer.rate for layer in _layers_of(tv, keras.layers.Dropout)]
    assert rates == [0.5, 0.5]
    assert not _layers_of(zoo.alexnet_small(regularization=NONE), keras.layers.Dropout)


def test_every_kernel_is_penalized():
    model = zoo.alexnet_small(input_shape=(28, 28, 1), classes=10, regularization=zoo.Regularization(l2=1e-4))
    kernels = _layers_of(model, (keras.layers.Conv2D, keras.layers.Dense))
    assert len(kernels) == 8  # conv1-5, fc6, fc7, predictions
    assert len(model.losses) == len(kernels)
    paper = zoo.alexnet(include_top=False, regularization=zoo.Regularization(l1=1e-5, l2=1e-4))
    assert len(paper.losses) == 5
    conv = _layers_of(paper, keras.layers.Conv2D)
    assert all(isinstance(c.kernel_regularizer, keras.regularizers.L1L2) for c in conv)


# -- training and saving -----------------------------------------------------------------------------------


def _one_step(model, shape, classes):
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    x = _random_images(shape)
    y = np.array([0, classes - 1])
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_one_training_step_paper_default_shape():
    entry = zoo.get_entry("alexnet")
    model = zoo.build("alexnet", regularization=zoo.Regularization(l2=1e-4, keep_prob=0.5))
    assert model.input_shape[1:] == entry.default_input_shape
    _one_step(model, entry.default_input_shape, 1000)


@pytest.mark.parametrize("shape", [(28, 28, 1), (8, 8, 1)])
def test_one_training_step_small(shape):
    model = zoo.build("alexnet_small", input_shape=shape, classes=10,
                      regularization=zoo.Regularization(l2=1e-4, keep_prob=0.5, batch_norm=True))
    _one_step(model, shape, 10)


@pytest.mark.parametrize("lrn", [False, True], ids=["plain", "lrn"])
def test_save_and_load_gives_identical_predictions(tmp_path, lrn):
    model = zoo.alexnet_small(input_shape=(28, 28, 1), classes=10, lrn=lrn, fc_units=64,
                              regularization=zoo.Regularization(l2=1e-4, keep_prob=0.5, batch_norm=True))
    x = _random_images((28, 28, 1), batch=3)
    expected = keras.ops.convert_to_numpy(model.predict(x, verbose=0))
    path = tmp_path / "x.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert len(_layers_of(loaded, LocalResponseNormalization)) == (2 if lrn else 0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.predict(x, verbose=0)), expected)


# -- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"input_shape": (8, 8, 1)}, r"alexnet needs inputs of at least 67×67, got 8×8; use alexnet_small \(stem='small'\)"),
        ({"groups": 3}, r"groups must be 1 .* or None .*got 3"),
        ({"groups": True}, r"groups must be"),
        ({"stem": "tiny"}, r"stem must be one of \['imagenet', 'small'\], got 'tiny'"),
        ({"plan": "caffe"}, r"plan must be one of \['paper', 'torchvision'\], got 'caffe'"),
        ({"classes": 0}, r"classes must be an integer >= 1, got 0"),
        ({"include_top": False, "pooling": "sum"}, r"pooling must be one of \[None, 'avg', 'max'\], got 'sum'"),
        ({"lrn": "yes"}, r"lrn must be True, False or None"),
        ({"filters": (96, 256, 384)}, r"filters must be five positive integers"),
        ({"filters": (95, 256, 384, 384, 256)}, r"filters must be divisible by groups=2"),
        ({"fc_units": 0}, r"fc_units must be an integer >= 1, got 0"),
        ({"input_shape": (None, None, 3)}, r"fixed height and width with include_top=True"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        zoo.alexnet(**kwargs)
