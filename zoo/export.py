"""Deployment export: a zoo inference model as a TensorFlow SavedModel, a TFLite flat buffer or an ONNX file,
each one checked against Keras before it is put in place.

    import zoo.export
    report = zoo.export.export_model(model, "tflite", "lenet5.tflite", check_inputs=x[:256])
    # {'format': 'tflite', 'path': '/…/lenet5.tflite', 'bytes': 249_816, 'max_abs_diff': 3.0e-07,
    #  'tolerance': 0.0001, 'inputs_checked': 256, 'seconds': 2.1, 'batch': None}

    python -m zoo export resnet20 --weights fashion_mnist --format tflite     # (also: python -m zoo.export …)

What is exported is an **inference model**: one tensor in, class probabilities out (the run folder's and
the shipped weights' models: ``keras.Input`` -> ``Normalization`` -> the zoo model). Every export is run on
``check_inputs`` by the runtime that will serve it, and compared with ``model.predict(check_inputs)``:

=============  ==================================================================  ============
format         how it is made and run                                              max |diff|
=============  ==================================================================  ============
saved_model    ``model.export(format="tf_saved_model")``, ``tf.saved_model.load``  1e-5
               then ``.serve(x)`` (a folder)
tflite         that SavedModel through ``tf.lite.TFLiteConverter`` (float32, no     1e-4
               optimizations, built-in ops only), ``tf.lite.Interpreter``
onnx           that SavedModel through tf2onnx (``tf_loader.from_saved_model``,     1e-4
               ``convert.from_graph_def``), ``onnxruntime`` (CPU)
=============  ==================================================================  ============

``batch`` in the report is None when the export takes any batch size, or the fixed batch it takes: Keras'
LSTM does not convert to TFLite with a dynamic batch, so its TFLite file takes one example at a time
(``note`` says why). ONNX does not go through ``model.export(format="onnx")``: see :func:`_make_onnx`.

ONNX needs the optional packages ``pip install 'keras-zoo-recipes[onnx]'`` (tf2onnx, onnx, onnxruntime).

Nothing half-written is left behind: the export is made in a temporary folder beside ``out``, checked
there, and only then renamed into place; a failed conversion, a failed check or an interrupt removes it.
An existing ``out`` is refused unless ``overwrite=True`` (then it is replaced only once the new export
has passed its check).

The command line (``add_export_arguments`` + ``run_export``) imports TensorFlow only after its arguments are
checked, so ``--help`` and a bad argument answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # keras and numpy are imported when used: the command line parses without them
    import keras
    import numpy as np

__all__ = ["FORMATS", "ONNX_PACKAGES", "TOLERANCES", "ExportError", "OutputExistsError", "add_export_arguments",
           "default_output", "export_model", "main", "missing_onnx_packages", "random_check_inputs", "run_export"]

FORMATS = ("saved_model", "tflite", "onnx")
# max |export - model.predict| over the class probabilities that an export must stay within
TOLERANCES = {"saved_model": 1e-5, "tflite": 1e-4, "onnx": 1e-4}
_SUFFIXES = {"saved_model": ".saved_model", "tflite": ".tflite", "onnx": ".onnx"}
# import name -> PyPI name of what fmt="onnx" needs (the `onnx` extra of pyproject.toml)
ONNX_PACKAGES = {"tf2onnx": "tf2onnx", "onnx": "onnx", "onnxruntime": "onnxruntime"}
DEFAULT_CHECK = 256
CHECK_BATCH = 32  # examples per call of an export while checking it


class OutputExistsError(FileExistsError, ValueError):
    """The output path exists and ``overwrite`` was not given (a ValueError too, as all bad input is)."""


class ExportError(RuntimeError):
    """An export that could not be made (the converter failed) or that does not compute what the Keras
    model computes (its check failed). Nothing was written."""


# -- pieces ----------------------------------------------------------------------------------------

def _check_format(fmt: Any) -> str:
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def default_output(name: str, fmt: str) -> str:
    """Where an export of ``name`` goes when no path is given: ``<name>.saved_model`` (a folder),
    ``<name>.tflite`` or ``<name>.onnx``, in the current directory."""
    _check_format(fmt)
    if not isinstance(name, str) or not name or os.sep in name or name in (".", ".."):
        raise ValueError(f"name must be a non-empty file name without {os.sep!r}, got {name!r}")
    return name + _SUFFIXES[fmt]


def missing_onnx_packages() -> list[str]:
    """The PyPI names of the packages ``fmt="onnx"`` needs that are not installed (empty: ONNX works)."""
    import importlib.util

    return [pypi for module, pypi in ONNX_PACKAGES.items() if importlib.util.find_spec(module) is None]


def _require_onnx() -> None:
    missing = missing_onnx_packages()
    if missing:
        raise ImportError(f"fmt='onnx' needs {', '.join(missing)}: pip install 'keras-zoo-recipes[onnx]' "
                          f"(or pip install {' '.join(ONNX_PACKAGES.values())})")


def _check_tolerance(fmt: str, tolerance: Any) -> float:
    if tolerance is None:
        return TOLERANCES[fmt]
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) \
            or not (0 <= tolerance < math.inf):
        raise ValueError(f"tolerance must be a finite number >= 0 (None: {TOLERANCES[fmt]:g} for {fmt}), "
                         f"got {tolerance!r}")
    return float(tolerance)


def _inference_model(model: Any) -> keras.Model:
    """``model`` as a one-tensor-in, one-tensor-out model (a functional model whose only input is a list
    of one is re-wrapped, so that the export's signature takes ``x``, not ``[x]``)."""
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise ValueError(f"model {model.name!r} has no defined inputs/outputs (is it built? a subclassed "
                         f"model must be called once, or be a functional model)")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"model {model.name!r} must have one input and one output (an inference model: "
                         f"images in, class probabilities out), got {len(inputs)} inputs and "
                         f"{len(outputs)} outputs (build GoogLeNet with aux_logits=False)")
    try:
        wrapped = isinstance(model.input, (list, tuple, dict)) or isinstance(model.output, (list, tuple, dict))
    except (AttributeError, ValueError):  # a subclassed model: its call takes and returns one tensor
        wrapped = False
    if wrapped:
        model = keras.Model(inputs[0], outputs[0], name=model.name)
    return model


def _all_layers(model: keras.Model) -> Iterator[Any]:
    """Every layer of ``model``, nested models' layers included."""
    import keras

    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _check_float32(model: keras.Model, fmt: str) -> None:
    """TFLite and ONNX take float32 models only: a mixed-precision model (bfloat16 or float16 compute) fails
    in their converters (TFLite: "'tf.Sub' op is neither a custom op nor a flex op"; onnxruntime: "Type
    parameter (T) of Optype (Sub) bound to different types"), so it is refused first, with what to do."""
    if fmt == "saved_model":
        return
    import keras

    low = [layer for layer in _all_layers(model) if not isinstance(layer, keras.layers.InputLayer)
           and getattr(getattr(layer, "dtype_policy", None), "compute_dtype", "float32") not in ("float32", None)]
    if low:
        dtype, low = low[0].dtype_policy.compute_dtype, [layer.name for layer in low]
        raise ValueError(f"fmt={fmt!r} needs a float32 model; model {model.name!r} computes in {dtype} in "
                         f"{len(low)} layers ({', '.join(low[:3])}{', …' if len(low) > 3 else ''}): rebuild it "
                         f"under keras.config.set_dtype_policy('float32') and set_weights(model.get_weights()), "
                         f"or export fmt='saved_model'")


def _input_spec(model: keras.Model) -> tuple[tuple, str]:
    import keras

    tensor = model.inputs[0]
    return tuple(tensor.shape[1:]), keras.backend.standardize_dtype(tensor.dtype)


def _check_inputs(model: keras.Model, check_inputs: Any) -> np.ndarray:
    """``check_inputs`` as an array of the model's input dtype and shape (at least one example)."""
    import numpy as np

    shape, dtype = _input_spec(model)
    try:
        x = np.asarray(check_inputs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"check_inputs must be an array of inputs, got {type(check_inputs).__name__}: "
                         f"{error}") from None
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"check_inputs must be a numeric array, got dtype {x.dtype}")
    expected = "(N, " + ", ".join("?" if s is None else str(s) for s in shape) + ")"
    if x.ndim != len(shape) + 1 or len(x) == 0 or any(
            want is not None and got != want for got, want in zip(x.shape[1:], shape, strict=False)):
        raise ValueError(f"check_inputs must have shape {expected} with N >= 1 for model {model.name!r}, "
                         f"got {x.shape}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError("check_inputs must be finite (it has NaN or infinite values)")
    if np.issubdtype(np.dtype(dtype), np.integer) and not np.issubdtype(x.dtype, np.integer) \
            and not np.array_equal(x, np.round(x)):
        raise ValueError(f"check_inputs must hold integers (model {model.name!r} takes {dtype} tokens), "
                         f"got fractional values")
    return np.ascontiguousarray(x.astype(dtype, copy=False))


def random_check_inputs(model: keras.Model, count: int = DEFAULT_CHECK, seed: int = 0) -> np.ndarray:
    """``count`` deterministic inputs in the range a zoo inference model takes: integer tokens in the
    vocabulary of its first Embedding for an integer input (text), else uniform in [0, 255] (raw pixels;
    a sequence model reads image rows). Drawn from ``numpy.random.default_rng(seed)``."""
    import keras
    import numpy as np

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    model = _inference_model(model)
    shape, dtype = _input_spec(model)
    if any(s is None for s in shape):
        raise ValueError(f"model {model.name!r} has an input of unknown size {shape}: pass check_inputs")
    rng = np.random.default_rng(seed)
    if np.issubdtype(np.dtype(dtype), np.integer):
        vocab = next((layer.input_dim for layer in _all_layers(model)
                      if isinstance(layer, keras.layers.Embedding)), 2)
        return rng.integers(1, max(int(vocab), 2), size=(count, *shape)).astype(dtype)
    return rng.uniform(0.0, 255.0, size=(count, *shape)).astype(dtype)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the converters' C++ and Python chatter (file descriptor 2 and warnings); Python errors
    still propagate with their messages."""
    from zoo._quiet import _stderr_to_devnull

    with _stderr_to_devnull(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _batches(x: np.ndarray, size: int = CHECK_BATCH) -> Iterator[np.ndarray]:
    for start in range(0, len(x), size):
        yield x[start:start + size]


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return (text[:400] + "…") if len(text) > 400 else (text or type(error).__name__)


# -- the formats: make one in `path` (returns notes for the report), run it on `x` ----------------------

def _make_saved_model(model: keras.Model, path: str, batch: int | None = None) -> dict[str, Any]:
    signature = None
    if batch is not None:
        import tensorflow as tf

        shape, dtype = _input_spec(model)
        signature = [tf.TensorSpec((batch, *shape), dtype)]
    with _quiet():
        model.export(path, format="tf_saved_model", verbose=False, input_signature=signature)
    return {}


def _run_saved_model(path: str, x: np.ndarray) -> np.ndarray:
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(path)  # held: its variables live as long as it does
    return np.concatenate([np.asarray(loaded.serve(tf.constant(batch))) for batch in _batches(x)])


def _tflite_from(model: keras.Model, saved: str, batch: int | None) -> bytes:
    import tensorflow as tf

    try:
        _make_saved_model(model, saved, batch)
        with _quiet():
            converter = tf.lite.TFLiteConverter.from_saved_model(saved)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # float32, no Flex ops
            return converter.convert()
    finally:
        shutil.rmtree(saved, ignore_errors=True)


def _make_tflite(model: keras.Model, path: str) -> dict[str, Any]:
    """A float32 TFLite model with a dynamic batch; when that does not convert (Keras' LSTM loop keeps a
    TensorList whose element shape includes the batch: "'tf.TensorListReserve' op requires element_shape to
    be static"), one with a fixed batch of 1, which the check then runs one example at a time."""
    notes: dict[str, Any] = {"batch": None}
    try:
        flat = _tflite_from(model, path + ".saved_model", None)
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001  (the converter's error types are not public)
        flat = _tflite_from(model, path + ".saved_model", 1)
        notes = {"batch": 1, "note": f"fixed batch 1 (a dynamic batch does not convert: {_first_line(error)})"}
    with open(path, "wb") as handle:
        handle.write(flat)
    return notes


def _run_tflite(path: str, x: np.ndarray) -> np.ndarray:
    import numpy as np
    import tensorflow as tf

    with _quiet():  # tf.lite.Interpreter warns that it moves to ai_edge_litert; XNNPACK says hello
        interpreter = tf.lite.Interpreter(model_path=path)
        source, = interpreter.get_input_details()
        target, = interpreter.get_output_details()
        fixed = int(source["shape_signature"][0]) if int(source["shape_signature"][0]) > 0 else None
        outputs, size = [], None
        for batch in _batches(x, fixed or CHECK_BATCH):
            if fixed is not None and len(batch) < fixed:  # a fixed batch: pad the last one
                batch = np.concatenate([batch, np.repeat(batch[-1:], fixed - len(batch), axis=0)])
            if len(batch) != size:
                if fixed is None:
                    interpreter.resize_tensor_input(source["index"], list(batch.shape))
                interpreter.allocate_tensors()
                size = len(batch)
            interpreter.set_tensor(source["index"], batch)
            interpreter.invoke()
            outputs.append(np.array(interpreter.get_tensor(target["index"])))
    return np.concatenate(outputs)[:len(x)]


def _make_onnx(model: keras.Model, path: str) -> dict[str, Any]:
    """ONNX through the SavedModel and tf2onnx's SavedModel loader. Not Keras' ``model.export(format="onnx")``:
    that converts the traced function with ``tf2onnx.convert.from_function``, which lists its captured
    tensors among the graph's inputs, so the Normalization's mean and variance of every inference model
    become two required inputs of the ONNX file (onnxruntime: "Required inputs
    ([…/normalization/Sub/y:0, …/normalization/Sqrt/x:0]) are missing from input feed")."""
    from tf2onnx import convert, tf_loader

    saved = path + ".saved_model"
    try:
        _make_saved_model(model, saved)
        with _quiet():
            graph, inputs, outputs = tf_loader.from_saved_model(saved, None, None, tag="serve",
                                                                signatures=["serving_default"])
            if len(inputs) != 1 or len(outputs) != 1:
                raise ValueError(f"the SavedModel signature has inputs {inputs} and outputs {outputs}, "
                                 f"expected one of each")
            convert.from_graph_def(graph, input_names=inputs, output_names=outputs, output_path=path,
                                   tensors_to_rename={inputs[0]: "input", outputs[0]: "output"})
    finally:
        shutil.rmtree(saved, ignore_errors=True)
    return {}


def _run_onnx(path: str, x: np.ndarray) -> np.ndarray:
    import numpy as np
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([np.asarray(session.run(None, {name: batch})[0]) for batch in _batches(x)])


_MAKE = {"saved_model": _make_saved_model, "tflite": _make_tflite, "onnx": _make_onnx}
_RUN = {"saved_model": _run_saved_model, "tflite": _run_tflite, "onnx": _run_onnx}


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


# -- the API ---------------------------------------------------------------------------------------

def export_model(model: keras.Model, fmt: str, out: str | os.PathLike | None = None, *,
                 check_inputs: np.ndarray, tolerance: float | None = None,
                 overwrite: bool = False) -> dict[str, Any]:
    """Export the inference model ``model`` as ``fmt`` to ``out`` and check it against Keras.

    Args:
        model: a ``keras.Model`` with one input and one output (class probabilities), built.
        fmt: ``"saved_model"`` (a folder), ``"tflite"`` or ``"onnx"`` (a file; needs the ``onnx`` extra).
        out: the path to write; None: ``default_output(model.name, fmt)`` in the current directory. Its
            folder must exist.
        check_inputs: inputs ``(N, *input_shape)`` (N >= 1) that the export is run on; its outputs must
            equal ``model.predict(check_inputs)`` within ``tolerance``. See :func:`random_check_inputs`.
        tolerance: the largest absolute difference allowed; None: ``TOLERANCES[fmt]`` (1e-5 SavedModel,
            1e-4 TFLite and ONNX).
        overwrite: replace an existing ``out`` (only once the new export has passed its check).

    Returns:
        ``{"format", "path" (absolute), "bytes" (on disk; a folder's files summed), "max_abs_diff",
        "tolerance", "inputs_checked", "seconds"}``.

    Raises:
        ValueError: a bad argument (named, with what is allowed).
        OutputExistsError: ``out`` exists and ``overwrite`` is False (a FileExistsError and a ValueError).
        ImportError: ``fmt="onnx"`` without tf2onnx, onnx or onnxruntime.
        ExportError: the converter failed, or the export's outputs differ from Keras' by more than
            ``tolerance``. Nothing is written in either case.
    """
    start = time.perf_counter()
    fmt = _check_format(fmt)
    tolerance = _check_tolerance(fmt, tolerance)
    if not isinstance(overwrite, bool):
        raise ValueError(f"overwrite must be True or False, got {overwrite!r}")
    model = _inference_model(model)
    _check_float32(model, fmt)
    x = _check_inputs(model, check_inputs)
    if out is None:
        out = default_output(model.name, fmt)
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise ValueError(f"out must be a path (or None for {default_output(model.name, fmt)!r}), got {out!r}")
    path = os.path.abspath(os.fspath(out))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ValueError(f"out: folder {parent!r} does not exist (create it first), got {os.fspath(out)!r}")
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(f"out: {os.fspath(out)!r} exists; choose another path or pass overwrite=True "
                                f"(--overwrite) to replace it")
    if fmt == "onnx":
        _require_onnx()

    import numpy as np

    with _quiet():  # tf.function retracing warnings when several models are exported in one process
        expected = np.asarray(model.predict(x, batch_size=CHECK_BATCH, verbose=0))
    work = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    try:
        made = os.path.join(work, os.path.basename(path))
        try:
            notes = _MAKE[fmt](model, made)
            got = _RUN[fmt](made, x)
        except MemoryError:
            raise
        except Exception as error:  # the converters raise many kinds; the message is what matters
            raise ExportError(f"{fmt} export of model {model.name!r} failed: {type(error).__name__}: "
                              f"{_first_line(error)}") from error
        if got.shape != expected.shape:
            raise ExportError(f"{fmt} export of model {model.name!r} gives outputs of shape {got.shape}, "
                              f"Keras {expected.shape}; nothing written")
        diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
        if not diff <= tolerance:  # NaN fails too
            raise ExportError(f"{fmt} export of model {model.name!r} differs from Keras' model.predict by "
                              f"max |diff| {diff:.3g} > tolerance {tolerance:g} on {len(x)} inputs; "
                              f"nothing written")
        size = _size(made)
        if os.path.lexists(path):  # overwrite: move the old one aside, put the new one in, drop the old
            old = os.path.join(work, ".replaced")
            os.replace(path, old)
            try:
                os.replace(made, path)
            except BaseException:
                os.replace(old, path)
                raise
        else:
            os.replace(made, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"format": fmt, "path": path, "bytes": size, "max_abs_diff": diff, "tolerance": tolerance,
            "inputs_checked": len(x), "seconds": round(time.perf_counter() - start, 3), "batch": None, **notes}


# -- the command line: zoo export SOURCE --format F [--weights W] [--out P] [--check N] -------------

_PROG = "zoo export"
DESCRIPTION = (
    "Export a model for deployment as a TensorFlow SavedModel folder, a TFLite file or an ONNX file, and "
    "check the export against Keras: it is run on --check inputs and its class probabilities must equal "
    "model.predict's within 1e-5 (SavedModel) or 1e-4 (TFLite, ONNX), else nothing is written. The check "
    f"inputs are {DEFAULT_CHECK} seeded random inputs in the model's input range (uniform 0..255 pixels; "
    "tokens for text models) unless --check-data FILE.npy is given. Prints the format, path, size and "
    "largest difference. Exit 0 when exported, 1 when the conversion or the check failed, 2 on bad input.")


def add_export_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of ``zoo export`` on ``parser`` (a sub-command's parser); parse, then :func:`run_export`."""
    from zoo.cli import _number

    if not parser.description:
        parser.description = DESCRIPTION
    parser.add_argument("source", metavar="SOURCE",
                        help="a registered model name (zoo list; needs --weights), a run folder holding "
                             "model.keras, or a .keras file")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="format",
                        help="saved_model (a folder), tflite or onnx (needs pip install "
                             "'keras-zoo-recipes[onnx]')")
    parser.add_argument("--weights", default=None, metavar="NAME",
                        help="with a model name: the weights to export (a shipped name such as "
                             "fashion_mnist, or a .weights.h5 file); required there, since an export of "
                             "random weights is of no use")
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="where to write (default: <name>.saved_model/, <name>.tflite or <name>.onnx in "
                             "the current folder, <name> the model name, run folder or .keras file's stem)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--check", type=_number(int, 1), default=DEFAULT_CHECK, metavar="N",
                        help=f"inputs the export is checked on (default {DEFAULT_CHECK} seeded random inputs, "
                             "or the first N of --check-data)")
    parser.add_argument("--check-data", default=None, metavar="FILE.npy",
                        help="check on these inputs (an array (N, *input shape) saved with numpy.save) "
                             "instead of seeded random ones")
    parser.add_argument("--seed", type=_number(int, 0), default=0,
                        help="seed of the random check inputs (default 0)")
    return parser


def _usage(argument: str, message: str) -> Exception:
    from zoo.cli import UsageError

    return UsageError(f"{_PROG}: argument {argument}: {message}")


def _resolve_source(args: argparse.Namespace) -> tuple[str, str, str]:
    """(kind, path-or-name, default stem) of SOURCE, checked without TensorFlow."""
    from zoo.catalog import check_model_name

    source = args.source
    if os.path.isdir(source):
        model_file = os.path.join(source, "model.keras")
        if not os.path.isfile(model_file):
            raise _usage("SOURCE", f"run folder {source!r} has no model.keras")
        kind, where, stem = "file", model_file, os.path.basename(os.path.abspath(source))
    elif source.endswith(".keras"):
        if not os.path.isfile(source):
            raise _usage("SOURCE", f"file {source!r} does not exist")
        kind, where, stem = "file", source, os.path.basename(source)[:-len(".keras")] or "model"
    else:
        try:
            check_model_name(source)
        except ValueError as error:
            raise _usage("SOURCE", f"not a run folder, a .keras file or a model name: {error}") from None
        if args.weights is None:
            raise _usage("--weights", f"required with a model name ({source}): exporting random weights makes "
                                      f"no sense; give a shipped weight name (python -m zoo weights) or a "
                                      f".weights.h5 file, or export a run folder or .keras file")
        kind, where, stem = "name", source, source
    if kind == "file" and args.weights is not None:
        raise _usage("--weights", f"only with a model name; {source!r} carries its own weights")
    return kind, where, stem


def run_export(args: argparse.Namespace) -> int:
    """``zoo export``: the parsed :func:`add_export_arguments`; raises ``zoo.cli.UsageError`` on bad input,
    prints one line and returns 1 when the conversion or the check fails, 0 when exported."""
    kind, where, stem = _resolve_source(args)
    out = args.out if args.out is not None else default_output(stem, args.format)
    if os.path.lexists(out) and not args.overwrite:
        raise _usage("--out", f"{out!r} exists; choose another path or pass --overwrite")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise _usage("--out", f"folder {os.path.dirname(os.path.abspath(out))!r} does not exist")
    if args.check_data is not None:
        if not args.check_data.endswith(".npy"):
            raise _usage("--check-data", f"must be a .npy file (numpy.save), got {args.check_data!r}")
        if not os.path.isfile(args.check_data):
            raise _usage("--check-data", f"file {args.check_data!r} does not exist")
    if args.format == "onnx" and missing_onnx_packages():
        raise _usage("--format", f"onnx needs {', '.join(missing_onnx_packages())}: "
                                 f"pip install 'keras-zoo-recipes[onnx]'")

    from zoo.cli import load_zoo

    load_zoo()
    import keras
    import numpy as np

    import zoo

    if kind == "name":
        try:
            model = zoo.build(where, weights=args.weights)
        except ValueError as error:
            raise _usage("--weights", _first_line(error)) from None
    else:
        try:
            model = keras.models.load_model(where, safe_mode=True)
        except (ValueError, TypeError, OSError, KeyError) as error:
            raise _usage("SOURCE", f"cannot load {where!r} as a Keras model: {_first_line(error)}") from None
    try:
        model = _inference_model(model)
    except ValueError as error:
        raise _usage("SOURCE", _first_line(error)) from None

    if args.check_data is not None:
        try:
            data = np.load(args.check_data, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise _usage("--check-data", f"cannot read {args.check_data!r}: {_first_line(error)}") from None
        try:
            x = _check_inputs(model, data)[:args.check]
        except ValueError as error:
            raise _usage("--check-data", f"{args.check_data}: {_first_line(error)}") from None
    else:
        x = random_check_inputs(model, args.check, seed=args.seed)

    try:
        report = export_model(model, args.format, out, check_inputs=x, overwrite=args.overwrite)
    except ExportError as error:
        print(f"{_PROG}: {_first_line(error)}", file=sys.stderr)
        return 1
    except FileExistsError as error:  # appeared while we were loading
        raise _usage("--out", _first_line(error)) from None
    except ValueError as error:  # e.g. a mixed-precision model for tflite/onnx
        raise _usage("SOURCE", _first_line(error)) from None
    print(f"{report['format']}: {report['path']}, {report['bytes']:,} bytes, max |diff| vs Keras "
          f"{report['max_abs_diff']:.3g} (tolerance {report['tolerance']:g}) on {report['inputs_checked']} "
          f"{'--check-data' if args.check_data else 'seeded random'} inputs"
          + ("" if report["batch"] is None else f"; fixed batch {report['batch']}"))
    return 0


def _run(argv: Sequence[str] | None) -> int:
    from zoo.cli import ArgumentParser, defaults_formatter

    parser = ArgumentParser(prog=_PROG, description=DESCRIPTION, formatter_class=defaults_formatter(""))
    return run_export(add_export_arguments(parser).parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m zoo.export …``: the same as ``zoo export …``."""
    from zoo.cli import cli_main

    return cli_main(_run, argv, "zoo")


if __name__ == "__main__":
    sys.exit(main())
