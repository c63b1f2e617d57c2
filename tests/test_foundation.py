"""The foundation: Regularization, the registry, summary, regularize, LeNet-5, the zoo command."""

import math
import sys

import keras
import numpy as np
import pytest

import zoo
from conftest import assert_one_line_error
from zoo.layers import initializer_for


# -- Regularization ------------------------------------------------------------------------------

def test_regularization_defaults_and_helpers():
    reg = zoo.Regularization()
    assert (reg.l1, reg.l2, reg.keep_prob, reg.batch_norm) == (0.0, 0.0, 1.0, True)
    assert reg.kernel_regularizer() is None and reg.dropout() is None and not reg.penalized
    assert isinstance(zoo.Regularization(l2=1e-3).kernel_regularizer(), keras.regularizers.L2)
    assert isinstance(zoo.Regularization(l1=1e-3).kernel_regularizer(), keras.regularizers.L1)
    assert isinstance(zoo.Regularization(l1=1e-3, l2=1e-3).kernel_regularizer(), keras.regularizers.L1L2)
    drop = zoo.Regularization(keep_prob=0.8).dropout(name="d")
    assert isinstance(drop, keras.layers.Dropout) and drop.rate == pytest.approx(0.2)
    assert zoo.Regularization(keep_prob=0.8).dropout(keep_prob=0.5).rate == pytest.approx(0.5)
    assert zoo.Regularization(keep_prob=0.8).dropout(keep_prob=1.0) is None
    assert zoo.Regularization.from_dict(zoo.Regularization(l2=0.5).to_dict()) == zoo.Regularization(l2=0.5)
    with pytest.raises(dataclasses_frozen_error()):
        reg.l2 = 1.0


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize("kwargs, field", [
    ({"l2": -1e-4}, "l2"), ({"l1": -1.0}, "l1"), ({"l2": float("nan")}, "l2"), ({"l1": float("inf")}, "l1"),
    ({"keep_prob": 0.0}, "keep_prob"), ({"keep_prob": 1.5}, "keep_prob"), ({"keep_prob": -0.1}, "keep_prob"),
    ({"keep_prob": float("nan")}, "keep_prob"), ({"l2": "0.1"}, "l2"), ({"keep_prob": True}, "keep_prob"),
    ({"batch_norm": 1}, "batch_norm"), ({"batch_norm": "yes"}, "batch_norm"),
])
def test_regularization_refuses_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=rf"Regularization\.{field}"):
        zoo.Regularization(**kwargs)


def test_regularization_unknown_field():
    with pytest.raises(ValueError, match="unknown field"):
        zoo.Regularization.from_dict({"l3": 1.0})


def test_initializer_follows_activation():
    assert initializer_for("relu") == "he_normal"
    assert initializer_for("tanh") == "glorot_uniform"
    assert initializer_for("sigmoid") == "glorot_uniform"
    with pytest.raises(ValueError, match="activation"):
        initializer_for("bogus")


# -- LeNet-5 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(32, 32, 1), (28, 28, 1), (30, 30, 1)])
def test_lenet5_parameter_count(shape):
    model = zoo.lenet5(input_shape=shape, regularization=zoo.NO_REGULARIZATION)
    assert model.count_params() == 61_706
    per_layer = {layer.name: layer.count_params() for layer in model.layers}
    assert per_layer["c1_conv"] == 156 and per_layer["c3_conv"] == 2_416
    assert per_layer["c5_conv"] == 48_120 and per_layer["f6_dense"] == 10_164
    assert per_layer["predictions"] == 850


def test_lenet5_small_input_is_resized_inside_the_model():
    model = zoo.lenet5(input_shape=(8, 8, 1), regularization=zoo.NO_REGULARIZATION)
    assert model.get_layer("resize_to_32").output.shape[1:3] == (32, 32)
    assert model.count_params() == 61_706


def test_lenet5_classic_form_uses_tanh_average_pooling_and_glorot():
    model = zoo.lenet5(activation="tanh", subsampling="avg", regularization=zoo.NO_REGULARIZATION)
    assert isinstance(model.get_layer("s2_pool"), keras.layers.AveragePooling2D)
    assert model.get_layer("c1_tanh").activation.__name__ == "tanh"
    init = model.get_layer("c1_conv").kernel_initializer
    assert isinstance(init, keras.initializers.GlorotUniform)
    relu = zoo.lenet5(regularization=zoo.NO_REGULARIZATION)
    assert isinstance(relu.get_layer("c1_conv").kernel_initializer, keras.initializers.HeNormal)


def test_lenet5_batch_norm_and_dropout_follow_the_config():
    model = zoo.lenet5(regularization=zoo.Regularization(keep_prob=0.5, batch_norm=True))
    names = [layer.name for layer in model.layers]
    assert {"c1_bn", "c3_bn", "c5_bn", "f6_bn"} <= set(names)
    assert not model.get_layer("c1_conv").use_bias  # the conv before a BN needs no bias
    assert model.get_layer("predictions").use_bias
    assert [l.rate for l in model.layers if isinstance(l, keras.layers.Dropout)] == [0.5, 0.5]
    plain = zoo.lenet5(regularization=zoo.Regularization(batch_norm=False))
    assert not any(isinstance(l, (keras.layers.BatchNormalization, keras.layers.Dropout)) for l in plain.layers)


@pytest.mark.parametrize("pooling, shape", [(None, (None, 5, 5, 16)), ("avg", (None, 16)), ("max", (None, 16))])
def test_lenet5_without_top(pooling, shape):
    model = zoo.lenet5(include_top=False, pooling=pooling, input_shape=(28, 28, 1))
    assert tuple(model.output.shape) == shape


def test_lenet5_input_tensor_inside_a_user_model():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255.0, name="user_rescaling")(inputs)  # named: auto-names depend on test order
    model = zoo.lenet5(input_tensor=x, classes=3)
    assert model.inputs[0] is inputs or model.inputs[0].shape == inputs.shape
    assert tuple(model.output.shape) == (None, 3)
    assert "user_rescaling" in [layer.name for layer in model.layers]


@pytest.mark.parametrize("kwargs, needle", [
    ({"classes": 0}, "classes"), ({"pooling": "sum"}, "pooling"), ({"activation": "bogus"}, "activation"),
    ({"subsampling": "median"}, "subsampling"), ({"input_shape": (28, 28, 1, 1)}, "input_shape"),
    ({"input_shape": (0, 28, 1)}, "input_shape"), ({"include_top": "yes"}, "include_top"),
    ({"regularization": 0.1}, "regularization"), ({"classifier_activation": 3}, "classifier_activation"),
])
def test_lenet5_bad_arguments(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        zoo.lenet5(**kwargs)


def test_l2_and_l1_penalties_equal_hand_computed_values():
    lam = 3e-3
    model = zoo.lenet5(input_shape=(28, 28, 1), regularization=zoo.Regularization(l2=lam, batch_norm=False))
    kernels = [l.kernel for l in model.layers if hasattr(l, "kernel")]
    assert len(model.losses) == len(kernels) == 5
    expected = sum(lam * float(np.sum(np.square(k.numpy()))) for k in kernels)
    assert float(sum(float(v) for v in model.losses)) == pytest.approx(expected, rel=1e-5)

    model = zoo.lenet5(input_shape=(28, 28, 1), regularization=zoo.Regularization(l1=lam, l2=lam))
    kernels = [l.kernel for l in model.layers if hasattr(l, "kernel")]
    expected = sum(lam * float(np.sum(np.abs(k.numpy())) + np.sum(np.square(k.numpy()))) for k in kernels)
    assert float(sum(float(v) for v in model.losses)) == pytest.approx(expected, rel=1e-5)
    # biases and BN γ/β are not penalized: no loss at λ = 0
    assert zoo.lenet5(regularization=zoo.Regularization()).losses == []


# -- registry ------------------------------------------------------------------------------------

def test_registry_lists_builds_and_suggests():
    assert "lenet5" in zoo.list_models()
    assert zoo.list_models("lenet*") == ["lenet5"]
    model = zoo.build("lenet5", input_shape=(8, 8, 1), classes=4)
    assert tuple(model.output.shape) == (None, 4)
    with pytest.raises(ValueError, match="did you mean lenet5"):
        zoo.build("lenet6")
    with pytest.raises(ValueError, match="unknown model name"):
        zoo.get_entry(None)


def test_variant_refuses_to_override_fixed_arguments():
    entry = zoo.ModelEntry("tanh_lenet", zoo.lenet5, "lenet", (32, 32, 1), (8, 8, 1),
                           fixed_kwargs={"activation": "tanh"})
    assert entry.build().get_layer("c1_tanh") is not None
    with pytest.raises(ValueError, match="activation"):
        entry.build(activation="relu")


# -- summary -------------------------------------------------------------------------------------

def test_summary_of_lenet5_counts_macs_by_hand():
    model = zoo.lenet5(regularization=zoo.NO_REGULARIZATION)
    result = zoo.summary(model, print_fn=None)
    macs = {row.name: row.macs for row in result.rows}
    assert macs["c1_conv"] == 28 * 28 * 6 * 25
    assert macs["c3_conv"] == 10 * 10 * 16 * 25 * 6
    assert macs["c5_conv"] == 120 * 25 * 16
    assert macs["f6_dense"] == 120 * 84 and macs["predictions"] == 84 * 10
    assert result.macs == sum(macs.values()) == 416_520
    assert result.total_params == model.count_params() == 61_706
    assert result.flops == 2 * result.macs


def test_summary_counts_grouped_convolutions_and_prints(capsys):
    inputs = keras.Input((8, 8, 4))
    outputs = keras.layers.Conv2D(6, 3, groups=2, padding="same", name="g")(inputs)
    result = zoo.summary(keras.Model(inputs, outputs))
    assert result.rows[-1].macs == 8 * 8 * 6 * 9 * 2
    assert "Total params" in capsys.readouterr().out


def test_summary_macs_are_unknown_where_the_input_size_is_open_not_counted_at_one_pixel(capsys):
    open_size = zoo.summary(zoo.resnet20(input_shape=(None, None, 1)), print_fn=print)
    assert open_size.macs is None and open_size.flops is None
    assert "Total MACs: ? (they depend on an input dimension" in capsys.readouterr().out
    convs = [r for r in open_size.rows if r.layer_type == "Conv2D"]
    assert convs and all(r.macs is None for r in convs)
    assert [r.macs for r in open_size.rows if r.layer_type == "Dense"] == [64 * 10]  # after global pooling: known
    fixed = zoo.summary(zoo.resnet20(input_shape=(28, 28, 1)), print_fn=None)
    assert fixed.macs > 0 and fixed.total_params == open_size.total_params
    inputs = keras.Input((None, 5))
    sequence = keras.Model(inputs, keras.layers.LSTM(3)(inputs))
    assert zoo.summary(sequence, print_fn=None).rows[-1].macs is None  # any length: not one timestep


def test_summary_recurses_into_nested_models_and_matches_count_params():
    inner = zoo.lenet5(input_shape=(28, 28, 1))
    inputs = keras.Input((28, 28, 1))
    outer = keras.Model(inputs, keras.layers.Dense(2, name="extra")(inner(inputs)))
    result = zoo.summary(outer, print_fn=None)
    assert result.total_params == outer.count_params()
    assert any(row.name.startswith("lenet5/") for row in result.rows)


# -- regularize ----------------------------------------------------------------------------------

def _plain_model():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    x = keras.layers.Dropout(0.1, name="drop")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x), name="plain")


def test_regularize_adds_penalties_and_keeps_weights():
    model = _plain_model()
    assert model.losses == []
    lam = 1e-2
    new = zoo.regularize(model, zoo.Regularization(l2=lam, keep_prob=0.6))
    assert len(new.losses) == 2
    expected = sum(lam * float(np.sum(np.square(w.numpy()))) for w in (new.get_layer("hidden").kernel,
                                                                      new.get_layer("out").kernel))
    assert float(sum(float(v) for v in new.losses)) == pytest.approx(expected, rel=1e-5)
    for a, b in zip(model.get_weights(), new.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert new.get_layer("drop").rate == pytest.approx(0.4)
    assert model.losses == [] and model.get_layer("drop").rate == pytest.approx(0.1)  # original untouched
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), new.predict(x, verbose=0), rtol=1e-6)


def test_regularize_a_keras_application():
    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=5, alpha=0.35)
    new = zoo.regularize(model, {"l1": 1e-5})
    kernels = [l for l in new.layers if any(k in l.get_config() for k in ("kernel_regularizer", "depthwise_regularizer"))]
    assert len(new.losses) == len(kernels) > 30
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), new.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_regularize_refuses_dropout_it_cannot_place():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="keep_prob"):
        zoo.regularize(model, zoo.Regularization(keep_prob=0.5))
    with pytest.raises(ValueError, match="keras.Model"):
        zoo.regularize("model", zoo.Regularization())


# -- LeNet-5 trains and round-trips --------------------------------------------------------------

@pytest.mark.parametrize("shape", [(32, 32, 1), (8, 8, 1)])
def test_lenet5_trains_one_step_and_round_trips(tmp_path, shape):
    keras.utils.set_random_seed(0)
    model = zoo.lenet5(input_shape=shape, regularization=zoo.Regularization(l2=1e-4, keep_prob=0.8))
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(size=(4, *shape)).astype("float32")
    y = np.arange(4) % 10
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    path = tmp_path / "x.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


# -- the zoo command -----------------------------------------------------------------------------

def test_zoo_cli_list_and_summary(run_cli):
    listed = run_cli("zoo", "list")
    assert listed.returncode == 0 and "lenet5" in listed.stdout
    result = run_cli("zoo", "summary", "lenet5", "--input-shape", "28,28,1", "--no-batch-norm")
    assert result.returncode == 0, result.stderr
    assert "Total params: 61,706" in result.stdout and "Total MACs" in result.stdout
    assert result.stderr.strip() == ""


def test_command_lines_check_their_arguments_before_importing_tensorflow(run_cli):
    """--help and argument errors never import TensorFlow (they answer in ~0.1 s instead of ~3 s)."""
    for argv in (("-m", "zoo", "--help"), ("-m", "zoo", "summary", "lenet6"), ("-m", "recipes.lenet5", "--help"),
                 ("-m", "recipes.lenet5", "--data", "digit"), ("-m", "recipes.resnet", "--variant", "resnet21"),
                 ("-m", "recipes.compare", "--optimizers", "adam,lbfgs"), ("-m", "tuning", "--model", "lenet6"),
                 ("-m", "tuning", "--model", "lenet5", "--tuner", "annealing"), ("-m", "recipes.ensemble", "--help")):
        result = run_cli(sys.executable, "-X", "importtime", *argv)
        assert result.returncode in (0, 2), (argv, result.stderr[-500:])
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "import time:" in line}
        assert "tensorflow" not in imported and "keras" not in imported, argv


def test_import_zoo_from_python_loads_everything_and_registers_the_layers(run_cli):
    code = ("import sys, zoo; assert 'keras' in sys.modules and zoo._LOADED; import keras; "
            "assert keras.saving.get_registered_object('zoo>Resize') is not None; "
            "import tuning; assert callable(tuning.search) and tuning._LOADED; print('ok')")
    result = run_cli(sys.executable, "-c", code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.parametrize("args, needles", [
    (("summary", "lenet6"), ("lenet6", "did you mean lenet5")),
    (("summary", "lenet5", "--input-shape", "2,x"), ("--input-shape",)),
    (("summary", "lenet5", "--classes", "0"), ("classes", "0")),
    (("summary", "lenet5", "--classes", "many"), ("--classes",)),
    (("fly",), ("invalid choice", "list")),
    ((), ("command",)),
])
def test_zoo_cli_bad_arguments_exit_2_with_one_line(run_cli, args, needles):
    assert_one_line_error(run_cli("zoo", *args), *needles)
