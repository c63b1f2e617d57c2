"""ResNet v1/v2, ImageNet and CIFAR: reference parameter counts, MACs, keras.applications equivalence,
heads, training, serialization, regularization and argument errors.

Counts use ``Regularization(batch_norm=True)``, λ = 0, ``keep_prob = 1``. The big ImageNet models are built
once per session (``built``) and never trained, except ResNet-50 v2 at 32×32.
"""

import math

import keras
import numpy as np
import pytest

import zoo
from zoo.resnet import ChannelZeroPadding

KERAS_V1 = dict(stride_on="1x1", use_bias=True, bn_epsilon=1.001e-5)
KERAS_V2 = dict(downsample="last", use_bias=True, bn_epsilon=1.001e-5)
COUNT_REG = zoo.Regularization(l1=0.0, l2=0.0, keep_prob=1.0, batch_norm=True)


def trainable(model) -> int:
    return sum(math.prod(w.shape) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def built():
    """``built(name, **kwargs)``: one build per name and arguments for the whole module (224×224×3 default)."""
    cache = {}

    def _build(name, **kwargs):
        key = (name, tuple(sorted(kwargs.items())))
        if key not in cache:
            kwargs.setdefault("regularization", COUNT_REG)
            cache[key] = zoo.build(name, include_top=True, **kwargs)
        return cache[key]

    return _build


# -- reference parameter counts ---------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032),
    ("resnet101", 44_549_160), ("resnet152", 60_192_808),
])
def test_imagenet_v1_trainable_counts_equal_torchvision(built, name, expected):
    model = built(name)
    assert tuple(model.input.shape) == (None, 224, 224, 3) and tuple(model.output.shape) == (None, 1000)
    assert trainable(model) == expected
    assert not any(layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


@pytest.mark.parametrize("name, expected_total", [("resnet101", 44_707_176), ("resnet152", 60_419_944)])
def test_use_bias_reproduces_keras_applications_counts(built, name, expected_total):
    assert built(name, use_bias=True).count_params() == expected_total


def test_resnet50_keras_options_equal_keras_applications_counts(built):
    model = built("resnet50", **KERAS_V1)
    assert trainable(model) == 25_583_592
    assert model.count_params() == 25_636_712
    reference = keras.applications.ResNet50(weights=None)
    assert model.count_params() == reference.count_params()
    assert trainable(model) == trainable(reference)


def test_resnet50v2_keras_options_equal_keras_applications_counts(built):
    model = built("resnet50v2", **KERAS_V2)
    reference = keras.applications.ResNet50V2(weights=None)
    assert model.count_params() == reference.count_params() == 25_613_800
    assert trainable(model) == trainable(reference) == 25_568_360


@pytest.mark.slow
@pytest.mark.parametrize("name, keras_total, bias_free_trainable", [
    ("resnet101v2", 44_675_560, 44_541_480), ("resnet152v2", 60_380_648, 60_185_128),
])
def test_deeper_v2_counts(built, name, keras_total, bias_free_trainable):
    """keras.applications.ResNet101V2 / ResNet152V2 totals, and the bias-free (timm-style) counts."""
    assert built(name, **KERAS_V2).count_params() == keras_total
    assert trainable(built(name)) == bias_free_trainable


def test_resnet50v2_bias_free_count(built):
    """Keras' ResNet50V2 less its conv biases: stem 64 + projections 3,840 + last 1×1s 15,104 = 19,008."""
    model = built("resnet50v2")
    assert trainable(model) == 25_568_360 - 19_008 == 25_549_352
    assert not any(layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


@pytest.mark.parametrize("depth, expected", [
    (20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018), (110, 1_727_962),
])
def test_cifar_option_a_counts(built, depth, expected):
    model = built(f"resnet{depth}")
    assert tuple(model.input.shape) == (None, 32, 32, 3) and tuple(model.output.shape) == (None, 10)
    assert trainable(model) == expected
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == depth - 1


def test_cifar_option_b_count(built):
    model = built("resnet20", shortcut="B")
    assert trainable(model) == 272_474
    projections = [layer.name for layer in model.layers if layer.name.endswith("_0_conv")]
    assert projections == ["conv3_block1_0_conv", "conv4_block1_0_conv"]


# -- MACs and summaries -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, published", [("resnet50", 4.089e9), ("resnet18", 1.814e9)])
def test_macs_match_torchvision(built, name, published):
    macs = zoo.summary(built(name), print_fn=None).macs
    assert abs(macs - published) / published < 0.02, macs


def test_stride_on_1x1_moves_the_stride_and_lowers_macs(built):
    v15, keras_style = built("resnet50"), built("resnet50", **KERAS_V1)
    assert v15.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert v15.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert keras_style.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert keras_style.get_layer("conv3_block1_2_conv").strides == (1, 1)
    assert zoo.summary(keras_style, print_fn=None).macs < zoo.summary(v15, print_fn=None).macs


@pytest.mark.parametrize("name", ["resnet18", "resnet50v2", "resnet20"])
def test_summary_totals_equal_count_params(built, name):
    model = built(name)
    result = zoo.summary(model, print_fn=None)
    assert result.total_params == model.count_params()
    assert result.trainable_params == trainable(model)


# -- exact reproduction of keras.applications -------------------------------------------------------

@pytest.mark.parametrize("ours, reference, options", [
    ("resnet50", "ResNet50", KERAS_V1), ("resnet50v2", "ResNet50V2", KERAS_V2),
])
def test_keras_options_reproduce_keras_applications_outputs(ours, reference, options):
    """Same weighted layer names and shapes; keras' weights in our model give keras' logits."""
    shape = (64, 64, 3)
    ref = getattr(keras.applications, reference)(weights=None, input_shape=shape, classes=7,
                                                 classifier_activation=None)
    model = zoo.build(ours, input_shape=shape, classes=7, classifier_activation=None, **options)
    ref_layers = {layer.name: layer for layer in ref.layers if layer.weights}
    our_layers = {layer.name: layer for layer in model.layers if layer.weights}
    assert set(our_layers) == set(ref_layers)
    rng = np.random.default_rng(0)
    for name, layer in our_layers.items():
        values = [w.numpy() for w in ref_layers[name].weights]
        if isinstance(layer, keras.layers.BatchNormalization):  # γ, β, moving mean and variance: not 1, 0
            values = [rng.uniform(0.5, 1.5, v.shape) if i in (0, 3) else rng.normal(0, 0.1, v.shape)
                      for i, v in enumerate(values)]
        elif len(values) == 2:  # conv and dense biases: not 0
            values[1] = rng.normal(0, 0.1, values[1].shape)
        ref_layers[name].set_weights(values)
        layer.set_weights(values)
    x = rng.uniform(0, 1, size=(2, *shape)).astype("float32")
    expected = ref.predict(x, verbose=0)
    assert np.std(expected) > 1e-3
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)


# -- heads and inputs -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, shape, pooling, out", [
    ("resnet50", (64, 64, 3), None, (None, 2, 2, 2048)),
    ("resnet18", (64, 64, 3), "avg", (None, 512)),
    ("resnet18", (32, 32, 3), "max", (None, 512)),
    ("resnet20", (28, 28, 1), None, (None, 7, 7, 64)),
    ("resnet20", (28, 28, 1), "avg", (None, 64)),
    ("resnet20", (8, 8, 1), "max", (None, 64)),
])
def test_without_top_output_shapes(name, shape, pooling, out):
    model = zoo.build(name, include_top=False, input_shape=shape, pooling=pooling)
    assert tuple(model.output.shape) == out
    assert "predictions" not in [layer.name for layer in model.layers]


def test_v2_ends_with_batch_norm_relu_before_the_head():
    model = zoo.cifar_resnet(20, version=2, include_top=False, input_shape=(8, 8, 1))
    assert [layer.name for layer in model.layers[-2:]] == ["post_bn", "post_relu"]
    assert tuple(model.output.shape) == (None, 2, 2, 64)


def test_input_tensor_inside_a_user_model():
    keras.backend.clear_session()  # layer names count from 0 again ("rescaling", not "rescaling_3")
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    model = zoo.resnet20(input_tensor=x, classes=3)
    assert tuple(model.output.shape) == (None, 3)
    assert "rescaling" in [layer.name for layer in model.layers]


def test_registry_names_and_shapes():
    imagenet = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                "resnet50v2", "resnet101v2", "resnet152v2"]
    cifar = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]
    assert set(imagenet + cifar) <= set(zoo.list_models("resnet*"))
    for name in imagenet + cifar:
        entry = zoo.get_entry(name)
        assert entry.family == "resnet" and entry.kind == "image"
        big = name in imagenet
        assert entry.default_input_shape == ((224, 224, 3) if big else (32, 32, 3))
        assert entry.small_input_shape == ((32, 32, 3) if big else (8, 8, 1))


# -- training and serialization ---------------------------------------------------------------------

@pytest.mark.parametrize("name, shape, options", [
    ("resnet20", (8, 8, 1), {"shortcut": "A"}),
    ("resnet20", (8, 8, 1), {"shortcut": "B"}),
    ("imagenet_resnet", (32, 32, 3), {"depth": 18, "version": 2}),
])
def test_one_training_step(name, shape, options):
    keras.utils.set_random_seed(0)
    builder = zoo.imagenet_resnet if name == "imagenet_resnet" else zoo.get_entry(name).builder
    model = builder(input_shape=shape, classes=3, regularization=zoo.Regularization(l2=1e-4, keep_prob=0.8),
                    **options)
    x = np.random.default_rng(0).uniform(0, 1, size=(2, *shape)).astype("float32")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, np.array([0, 2]), batch_size=2, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


def test_option_a_round_trip_with_safe_mode(tmp_path):
    keras.utils.set_random_seed(1)
    model = zoo.resnet20(input_shape=(8, 8, 1), classes=4, regularization=zoo.Regularization(l2=1e-4))
    assert sum(isinstance(layer, ChannelZeroPadding) for layer in model.layers) == 2
    x = np.random.default_rng(1).uniform(0, 1, size=(3, 8, 8, 1)).astype("float32")
    path = tmp_path / "x.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("conv3_block1_0_pad"), ChannelZeroPadding)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_channel_zero_padding_subsample_and_pad():
    layer = ChannelZeroPadding((2, 3))
    x = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (2, 4, 4, 8)
    np.testing.assert_array_equal(y[..., 2:5], x)
    assert not y[..., :2].any() and not y[..., 5:].any()
    assert ChannelZeroPadding.from_config(layer.get_config()).padding == (2, 3)
    with pytest.raises(ValueError, match="padding"):
        ChannelZeroPadding((1, -1))


# -- regularization ---------------------------------------------------------------------------------

def kernels(model) -> int:
    return sum(isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) for layer in model.layers)


@pytest.mark.parametrize("build", [
    lambda reg: zoo.resnet20(input_shape=(8, 8, 1), shortcut="B", regularization=reg),
    lambda reg: zoo.resnet18(input_shape=(32, 32, 3), regularization=reg),
    lambda reg: zoo.cifar_resnet(20, version=2, input_shape=(8, 8, 1), regularization=reg),
], ids=["resnet20B", "resnet18", "resnet20v2"])
def test_one_penalty_per_conv_and_dense_kernel(build):
    model = build(zoo.Regularization(l1=1e-5, l2=1e-4))
    assert len(model.losses) == kernels(model) > 0
    assert build(zoo.Regularization(l1=0.0, l2=0.0)).losses == []


def test_dropout_sits_before_the_classifier():
    model = zoo.resnet20(input_shape=(8, 8, 1), regularization=zoo.Regularization(keep_prob=0.7))
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(dropouts) == 1 and dropouts[0].rate == pytest.approx(0.3)
    assert model.layers[-2] is dropouts[0] and model.layers[-1].name == "predictions"
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in zoo.resnet20(input_shape=(8, 8, 1)).layers)


@pytest.mark.parametrize("version", [1, 2])
def test_without_batch_norm_every_conv_has_a_bias(version):
    model = zoo.cifar_resnet(20, version=version, regularization=zoo.Regularization(batch_norm=False))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.use_bias for layer in convs)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    if version == 1:  # 19 BNs over 16·7 + 32·6 + 64·6 = 688 channels: γ, β (2 each) become 1 bias each
        assert model.count_params() == trainable(model) == 269_722 - 688


def test_zero_init_residual_zeroes_the_last_gamma_of_each_branch():
    model = zoo.resnet20(input_shape=(8, 8, 1), zero_init_residual=True)
    gammas = {layer.name: layer.gamma.numpy() for layer in model.layers
              if isinstance(layer, keras.layers.BatchNormalization)}
    last = [name for name in gammas if name.endswith("_2_bn")]
    assert len(last) == 9
    for name, gamma in gammas.items():
        assert np.all(gamma == 0) if name in last else np.all(gamma == 1), name
    x = np.random.default_rng(0).uniform(size=(1, 8, 8, 1)).astype("float32")
    block = keras.Model(model.input, [model.get_layer("conv2_block1_2_bn").output])
    assert not block.predict(x, verbose=0).any()


def test_zero_init_residual_v2_zeroes_the_last_conv_kernel():
    """Pre-activation branches end in a conv, not a BN: its kernel starts at 0 (timm's zero_init_last)."""
    model = zoo.cifar_resnet(20, version=2, input_shape=(8, 8, 1), zero_init_residual=True)
    last = [layer for layer in model.layers if layer.name.endswith("_2_conv")]
    assert len(last) == 9 and all(not layer.kernel.numpy().any() for layer in last)
    assert all(layer.kernel.numpy().any() for layer in model.layers if layer.name.endswith("_1_conv"))
    assert all(np.all(layer.gamma.numpy() == 1) for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization))


# -- argument errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("build, needle", [
    (lambda: zoo.imagenet_resnet(42), "depth"),
    (lambda: zoo.cifar_resnet(21), "depth"),
    (lambda: zoo.cifar_resnet(2), "depth"),
    (lambda: zoo.resnet20(shortcut="C"), "shortcut"),
    (lambda: zoo.resnet50(stride_on="2x2"), "stride_on"),
    (lambda: zoo.resnet50(input_shape=(16, 16, 3)), "input_shape"),
    (lambda: zoo.resnet20(input_shape=(3, 3, 1)), "input_shape"),
    (lambda: zoo.resnet20(classes=0), "classes"),
    (lambda: zoo.imagenet_resnet(50, version=3), "version"),
    (lambda: zoo.resnet20(downsample="middle"), "downsample"),
    (lambda: zoo.resnet20(use_bias="yes"), "use_bias"),
    (lambda: zoo.resnet20(bn_epsilon=0), "bn_epsilon"),
    (lambda: zoo.resnet20(zero_init_residual=1), "zero_init_residual"),
    (lambda: zoo.resnet20(pooling="sum"), "pooling"),
    (lambda: zoo.resnet50v2(depth=18), "depth"),
    (lambda: zoo.build("resnet20", version=2), "version"),
])
def test_bad_arguments_name_the_argument(build, needle):
    with pytest.raises(ValueError, match=needle) as error:
        build()
    if needle in ("shortcut", "stride_on", "downsample"):
        assert "must be one of" in str(error.value)  # and the allowed values
