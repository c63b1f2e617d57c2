"""``zoo.export``: SavedModel, TFLite and ONNX exports of inference models, each checked against Keras.

The models are what a run folder saves: ``keras.Input`` -> ``Normalization(mean, variance)`` -> a zoo model,
random weights (the check compares the export with Keras, not with labels). Every family and its custom
layers (``Resize`` in LeNet-5 at 8×8, ``LocalResponseNormalization`` in AlexNet, ``ChannelZeroPadding`` in the
option-A ResNet-20, the Inception blocks, the LSTM loop) goes through SavedModel and TFLite; ONNX tests skip
when tf2onnx/onnx/onnxruntime are absent (``pip install '.[onnx]'``). 16 check inputs keep it fast.
"""

from __future__ import annotations

import os
import sys
import warnings

import keras
import numpy as np
import pytest
from conftest import assert_one_line_error

import zoo
from zoo import export

CHECK = 16
# name -> (input shape, builder options, a layer class the export must carry through)
FAMILIES = {
    "lenet5@8": ("lenet5", (8, 8, 1), {}, "Resize"),
    "lenet5@28": ("lenet5", (28, 28, 1), {}, None),
    "alexnet_small": ("alexnet_small", (28, 28, 1), {"lrn": True}, "LocalResponseNormalization"),
    "resnet20": ("resnet20", (28, 28, 1), {}, "ChannelZeroPadding"),
    "googlenet_small": ("googlenet_small", (28, 28, 1), {}, None),
    "lstm": ("lstm", (28, 28), {}, "LSTM"),
}
# measured on the 2-core test machine (with a training run beside it): googlenet_small 16-28 s per format,
# resnet20's SavedModel 6-10 s (its TFLite export, which also goes through a SavedModel, stays in the fast set)
SLOW = {("googlenet_small", "saved_model"), ("googlenet_small", "tflite"), ("googlenet_small", "onnx"),
        ("resnet20", "saved_model"), ("resnet20", "onnx")}
NO_ONNX = export.missing_onnx_packages()
needs_onnx = pytest.mark.skipif(bool(NO_ONNX), reason=f"fmt='onnx' needs {', '.join(NO_ONNX)} "
                                                      f"(pip install '.[onnx]'; CI installs only .[test])")


def inference_model(name: str, shape: tuple, options: dict) -> keras.Model:
    """``Input -> Normalization(mean, variance) -> zoo.build(name, input_tensor=...)``: a run folder's model."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    channels = shape[-1]
    x = keras.layers.Normalization(axis=-1, mean=[33.0] * channels, variance=[6400.0] * channels,
                                   name="normalization")(inputs)
    body = zoo.build(name, input_tensor=x, classes=10, **options)
    return keras.Model(inputs, body.output, name=name)


_MODELS: dict[str, keras.Model] = {}


def model_for(key: str) -> keras.Model:
    if key not in _MODELS:
        name, shape, options, layer = FAMILIES[key]
        model = inference_model(name, shape, options)
        classes = {type(each).__name__ for each in _layers(model)}
        assert layer is None or layer in classes, (key, sorted(classes))
        _MODELS[key] = model
    return _MODELS[key]


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def check_inputs(model, count=CHECK, seed=0):
    return export.random_check_inputs(model, count, seed=seed)


def _param(key, fmt, extra=()):
    marks = list(extra) + ([pytest.mark.slow] if (FAMILIES[key][0], fmt) in SLOW else [])
    return pytest.param(key, fmt, marks=marks, id=f"{key}-{fmt}")


MATRIX = [_param(key, fmt) for key in FAMILIES for fmt in ("saved_model", "tflite")]
MATRIX += [_param(key, "onnx", [needs_onnx]) for key in FAMILIES]


@pytest.mark.parametrize("key, fmt", MATRIX)
def test_every_family_exports_and_matches_keras(key, fmt, tmp_path):
    model = model_for(key)
    x = check_inputs(model)
    out = tmp_path / f"m{export._SUFFIXES[fmt]}"
    report = export.export_model(model, fmt, out, check_inputs=x)

    assert report["format"] == fmt and report["path"] == str(out)
    assert report["tolerance"] == export.TOLERANCES[fmt] and report["inputs_checked"] == CHECK
    assert 0 <= report["max_abs_diff"] <= report["tolerance"]
    assert sorted(os.listdir(tmp_path)) == [out.name]  # no temporary left beside it
    if fmt == "tflite" and key == "lstm":
        # Keras' LSTM loop does not convert with a dynamic batch (TensorListReserve needs a static element
        # shape): the export falls back to batch 1, checks example by example and says so
        assert report["batch"] == 1 and "TensorListReserve" in report["note"], report
    else:
        assert report["batch"] is None and "note" not in report, report
    if fmt == "saved_model":
        assert (out / "saved_model.pb").is_file()
        assert report["bytes"] == sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    else:
        assert out.is_file() and report["bytes"] == out.stat().st_size > 1000

    # run the file again here, on other inputs, with the runtime a user would use
    fresh = check_inputs(model, 3, seed=1)
    expected = model.predict(fresh, verbose=0)
    got = _serve(fmt, str(out), fresh)
    np.testing.assert_allclose(got, expected, rtol=0, atol=export.TOLERANCES[fmt])
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)  # probabilities came out


def _serve(fmt, path, x):
    if fmt == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # held while it serves
        return np.asarray(loaded.serve(tf.constant(x)))
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["input"]  # one input: no stray Normalization constants
        return session.run(None, {"input": x})[0]
    import tensorflow as tf

    outputs = []
    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated … use ai_edge_litert"
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=path)
    source = interpreter.get_input_details()[0]
    for row in x:
        interpreter.resize_tensor_input(source["index"], [1, *row.shape])
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], row[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0])
    return np.stack(outputs)


# -- nothing half-written ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["saved_model", "tflite"])
def test_a_failed_check_leaves_nothing_behind(fmt, tmp_path, monkeypatch):
    model = model_for("lenet5@8")
    x = check_inputs(model)
    run = export._RUN[fmt]
    monkeypatch.setitem(export._RUN, fmt, lambda path, batch: run(path, batch) + 1e-3)  # a wrong export
    out = tmp_path / f"m{export._SUFFIXES[fmt]}"
    with pytest.raises(export.ExportError) as caught:
        export.export_model(model, fmt, out, check_inputs=x)
    message = str(caught.value)
    assert fmt in message and "0.001" in message and f"tolerance {export.TOLERANCES[fmt]:g}" in message
    assert os.listdir(tmp_path) == []


def test_a_zero_tolerance_fails_tflite_and_leaves_nothing(tmp_path):
    """TFLite's float32 kernels differ from TensorFlow's in the last bits (measured 4e-7 here)."""
    model = model_for("lenet5@8")
    with pytest.raises(export.ExportError, match=r"tflite export .* max \|diff\| [0-9.e-]+ > tolerance 0 on 16"):
        export.export_model(model, "tflite", tmp_path / "m.tflite", check_inputs=check_inputs(model), tolerance=0)
    assert os.listdir(tmp_path) == []


def test_a_failing_converter_leaves_nothing_and_says_why(tmp_path, monkeypatch):
    def half_then_fail(model, path, batch=None):
        os.makedirs(path)
        with open(os.path.join(path, "saved_model.pb"), "wb") as handle:
            handle.write(b"half")
        raise RuntimeError("converter broke")

    monkeypatch.setitem(export._MAKE, "saved_model", half_then_fail)
    with pytest.raises(export.ExportError, match="saved_model export of model 'lenet5' failed: RuntimeError: "
                                                 "converter broke"):
        export.export_model(model_for("lenet5@8"), "saved_model", tmp_path / "m.saved_model",
                            check_inputs=check_inputs(model_for("lenet5@8")))
    assert os.listdir(tmp_path) == []


def test_an_interrupt_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(model, path):
        with open(path, "wb") as handle:
            handle.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setitem(export._MAKE, "tflite", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.export_model(model_for("lenet5@8"), "tflite", tmp_path / "m.tflite",
                            check_inputs=check_inputs(model_for("lenet5@8")))
    assert os.listdir(tmp_path) == []


# -- the output path --------------------------------------------------------------------------------------

def test_refuses_to_overwrite_unless_told_and_keeps_the_old_one_on_failure(tmp_path, monkeypatch):
    model = model_for("lenet5@8")
    x = check_inputs(model)
    out = tmp_path / "m.tflite"
    out.write_bytes(b"old")
    with pytest.raises(export.OutputExistsError, match="m.tflite' exists.*overwrite=True") as caught:
        export.export_model(model, "tflite", out, check_inputs=x)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, FileExistsError)
    assert out.read_bytes() == b"old"

    run = export._RUN["tflite"]
    monkeypatch.setitem(export._RUN, "tflite", lambda path, batch: run(path, batch) * 0)
    with pytest.raises(export.ExportError):
        export.export_model(model, "tflite", out, check_inputs=x, overwrite=True)
    assert out.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.tflite"]
    monkeypatch.setitem(export._RUN, "tflite", run)

    report = export.export_model(model, "tflite", out, check_inputs=x, overwrite=True)
    assert out.stat().st_size == report["bytes"] > 1000 and os.listdir(tmp_path) == ["m.tflite"]


def test_overwrite_replaces_a_saved_model_folder(tmp_path):
    model = model_for("lenet5@8")
    out = tmp_path / "m.saved_model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    export.export_model(model, "saved_model", out, check_inputs=check_inputs(model, 4), overwrite=True)
    assert not (out / "stale.txt").exists() and (out / "saved_model.pb").is_file()
    assert os.listdir(tmp_path) == ["m.saved_model"]


def test_the_default_path_is_named_after_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = model_for("lenet5@8")
    report = export.export_model(model, "saved_model", check_inputs=check_inputs(model, 4))
    assert report["path"] == str(tmp_path / "lenet5.saved_model") and os.listdir(tmp_path) == ["lenet5.saved_model"]
    assert [export.default_output("resnet32", f) for f in export.FORMATS] == [
        "resnet32.saved_model", "resnet32.tflite", "resnet32.onnx"]
    with pytest.raises(ValueError, match="name must be a non-empty file name"):
        export.default_output("a/b", "tflite")


def test_bad_arguments_are_value_errors_that_name_them(tmp_path):
    model = model_for("lenet5@8")
    x = check_inputs(model, 4)
    bad = [
        ({"fmt": "pb"}, r"fmt must be one of saved_model, tflite, onnx, got 'pb'"),
        ({"tolerance": -1.0}, r"tolerance must be a finite number >= 0 .*got -1.0"),
        ({"tolerance": float("nan")}, r"tolerance must be a finite number >= 0"),
        ({"check_inputs": x[:, :4]}, r"check_inputs must have shape \(N, 8, 8, 1\) .*got \(4, 4, 8, 1\)"),
        ({"check_inputs": x[:0]}, r"check_inputs must have shape \(N, 8, 8, 1\) with N >= 1"),
        ({"check_inputs": np.full_like(x, np.nan)}, r"check_inputs must be finite"),
        ({"check_inputs": np.array(["a"] * 4)}, r"check_inputs must be a numeric array"),
        ({"out": tmp_path / "no" / "m.tflite"}, r"out: folder .*no' does not exist"),
        ({"model": "lenet5"}, r"model must be a keras.Model, got str"),
        ({"overwrite": "yes"}, r"overwrite must be True or False, got 'yes'"),
    ]
    for change, pattern in bad:
        arguments = {"model": model, "fmt": "tflite", "out": tmp_path / "m.tflite", "check_inputs": x, **change}
        with pytest.raises(ValueError, match=pattern):
            export.export_model(arguments.pop("model"), arguments.pop("fmt"), **arguments)
    two = keras.Model(model.input, [model.output, model.output])
    with pytest.raises(ValueError, match=r"one input and one output .* got 1 inputs and 2 outputs"):
        export.export_model(two, "tflite", tmp_path / "m.tflite", check_inputs=x)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_a_mixed_precision_model_is_refused_for_tflite_and_onnx(fmt, tmp_path):
    """Their converters fail on bfloat16 compute ("'tf.Sub' op is neither a custom op nor a flex op"): refused
    up front with what to do (fmt='saved_model' exports it)."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = inference_model("lenet5", (8, 8, 1), {})
    finally:
        keras.config.set_dtype_policy("float32")
    with pytest.raises(ValueError, match=rf"fmt='{fmt}' needs a float32 model; model 'lenet5' computes in "
                                         r"bfloat16 in \d+ layers \(normalization, .*set_dtype_policy\('float32'\)"):
        export.export_model(model, fmt, tmp_path / "m", check_inputs=check_inputs(model, 2))
    assert os.listdir(tmp_path) == []


def test_a_list_input_model_exports_with_one_tensor_in(tmp_path):
    """DESIGN's pitfall: ``keras.Model(model.inputs, ...)`` takes ``[x]``; the export takes ``x``."""
    model = model_for("lenet5@8")
    listed = keras.Model(model.inputs, model.outputs, name="listed")
    report = export.export_model(listed, "saved_model", tmp_path / "m", check_inputs=check_inputs(model, 4))
    assert report["max_abs_diff"] <= 1e-5


@pytest.mark.skipif(not NO_ONNX, reason="the ONNX packages are installed: the missing-package error cannot show")
def test_onnx_without_its_packages_says_what_to_install(tmp_path):
    with pytest.raises(ImportError, match=r"pip install 'keras-zoo-recipes\[onnx\]'"):
        export.export_model(model_for("lenet5@8"), "onnx", tmp_path / "m.onnx",
                            check_inputs=check_inputs(model_for("lenet5@8"), 2))
    assert os.listdir(tmp_path) == []


def test_random_check_inputs_are_seeded_and_in_the_input_range():
    model = model_for("lenet5@28")
    a, b = export.random_check_inputs(model, 8, seed=3), export.random_check_inputs(model, 8, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (8, 28, 28, 1) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 255
    assert a.max() > 200 and a.min() < 50  # it spans the pixel range
    assert not np.array_equal(a, export.random_check_inputs(model, 8, seed=4))
    text = zoo.build("lstm_text", input_shape=(6,), vocab_size=50, embed_dim=4, units=4)
    tokens = export.random_check_inputs(text, 20)
    assert np.issubdtype(tokens.dtype, np.integer) and tokens.min() >= 1 and tokens.max() < 50
    with pytest.raises(ValueError, match="count must be an integer >= 1, got 0"):
        export.random_check_inputs(model, 0)


# -- the command line -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A saved inference model (LeNet-5 at 8×8: Normalization + the Resize custom layer)."""
    path = tmp_path_factory.mktemp("source") / "digits.keras"
    model_for("lenet5@8").save(path)
    return path


def test_cli_exports_a_keras_file_and_prints_one_line(keras_file, tmp_path, capsys):
    out = tmp_path / "d.tflite"
    assert export.main([str(keras_file), "--format", "tflite", "--out", str(out), "--check", "8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"tflite: {out}, ") and "bytes, max |diff| vs Keras" in lines[0]
    assert "on 8 seeded random inputs" in lines[0] and out.is_file()
    assert f"{out.stat().st_size:,} bytes" in lines[0]


def test_cli_exports_a_run_folder_to_the_default_path(keras_file, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run-7"
    run.mkdir()
    (run / "model.keras").write_bytes(keras_file.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert export.main(["run-7", "--format", "saved_model", "--check", "4"]) == 0
    assert (tmp_path / "run-7.saved_model" / "saved_model.pb").is_file()
    assert "saved_model: " in capsys.readouterr().out


def test_cli_checks_on_given_data(keras_file, tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(5).uniform(0, 255, (6, 8, 8, 1)).astype(np.float32))
    assert export.main([str(keras_file), "--format", "tflite", "--out", str(tmp_path / "m.tflite"),
                        "--check-data", str(data), "--check", "5"]) == 0
    assert "on 5 --check-data inputs" in capsys.readouterr().out

    np.save(data, np.zeros((3, 28, 28, 1), np.float32))
    capsys.readouterr()
    assert export.main([str(keras_file), "--format", "tflite", "--out", str(tmp_path / "n.tflite"),
                        "--check-data", str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --check-data" in err[0] and "(N, 8, 8, 1)" in err[0], err
    assert not (tmp_path / "n.tflite").exists()


def test_cli_exports_a_model_name_with_weights(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    weights = tmp_path / "lenet.weights.h5"
    zoo.build("lenet5").save_weights(weights)
    out = tmp_path / "lenet5.tflite"
    assert export.main(["lenet5", "--weights", str(weights), "--format", "tflite", "--out", str(out),
                        "--check", "4"]) == 0
    assert out.is_file() and "tflite: " in capsys.readouterr().out


def test_cli_failed_check_is_one_line_and_status_1(keras_file, tmp_path, monkeypatch, capsys):
    run = export._RUN["tflite"]
    monkeypatch.setitem(export._RUN, "tflite", lambda path, batch: run(path, batch) + 0.5)
    assert export.main([str(keras_file), "--format", "tflite", "--out", str(tmp_path / "m.tflite"),
                        "--check", "4"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zoo export: tflite export") and "> tolerance 0.0001" in err[0]
    assert os.listdir(tmp_path) == []


def _cli(run_cli, *args, cwd=None):
    return run_cli(sys.executable, "-m", "zoo.export", *args, timeout=120, cwd=cwd)


def test_cli_bad_input_is_one_line_exit_2_before_tensorflow(run_cli, keras_file, tmp_path):
    (tmp_path / "taken.tflite").write_bytes(b"x")
    (tmp_path / "empty_run").mkdir()
    cases = [
        (["lenet5", "--format", "tflite"], ["argument --weights", "required with a model name"]),
        (["lenet6", "--weights", "w", "--format", "tflite"], ["argument SOURCE", "unknown model name 'lenet6'",
                                                               "lenet5"]),
        (["lenet5", "--weights", "w"], ["--format"]),
        (["lenet5", "--weights", "w", "--format", "pb"], ["--format", "invalid choice: 'pb'", "tflite"]),
        ([str(keras_file), "--format", "tflite", "--check", "0"], ["--check", ">= 1, got '0'"]),
        ([str(tmp_path / "gone.keras"), "--format", "tflite"], ["argument SOURCE", "gone.keras", "does not exist"]),
        ([str(tmp_path / "empty_run"), "--format", "tflite"], ["argument SOURCE", "has no model.keras"]),
        ([str(keras_file), "--format", "tflite", "--weights", "w"], ["argument --weights", "only with a model name"]),
        ([str(keras_file), "--format", "tflite", "--out", str(tmp_path / "taken.tflite")],
         ["argument --out", "taken.tflite' exists", "--overwrite"]),
        ([str(keras_file), "--format", "tflite", "--out", str(tmp_path / "no" / "m.tflite")],
         ["argument --out", "does not exist"]),
        ([str(keras_file), "--format", "tflite", "--check-data", "x.csv"], ["argument --check-data", ".npy"]),
    ]
    for args, needles in cases:
        result = _cli(run_cli, *args, cwd=tmp_path)
        assert_one_line_error(result, *needles)
        assert "zoo export" in result.stderr
        assert sorted(os.listdir(tmp_path)) == ["empty_run", "taken.tflite"]


def test_cli_help_says_what_the_check_is(run_cli):
    result = _cli(run_cli, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "256 seeded random inputs" in text and "--check-data FILE.npy" in text
    assert "--format {saved_model,tflite,onnx}" in text
