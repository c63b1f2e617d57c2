"""Shared test set-up: quiet TensorFlow, CPU only, one thread pool, repeatable seeds."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as our command lines run (zoo._quiet.enable_onednn)

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def run_cli():
    """Run a command line in a fresh interpreter: ``run_cli("zoo", "list")`` -> CompletedProcess."""
    import subprocess

    def _run(*args, timeout=600, cwd=None, env=None):
        full_env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
        if args[0] == "zoo":
            args = (sys.executable, "-m", "zoo", *args[1:])
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              cwd=cwd or REPO, env=full_env)

    return _run


def assert_one_line_error(result, *needles):
    """A command-line error: exit status 2, exactly one line on stderr, no traceback, naming ``needles``."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def kill_process_group(process, timeout=30):
    """SIGKILL a subprocess started with ``start_new_session=True`` and its children, then reap it."""
    import signal

    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=timeout)


def assert_inference_model(path, x, export_dir):
    """What a saved recipe or tuner model must be: an inference model.

    Loaded the ordinary Keras way, two ``model(x)`` calls are bitwise equal and equal ``predict(x)`` to
    1e-6, no batch-norm moving statistic moves, ``model.input.shape`` works (one tensor in), and
    ``model.export(...)`` then ``serve(x)`` equals ``predict(x)`` to 1e-5.
    """
    import keras
    import numpy as np

    import zoo  # noqa: F401  (registers the zoo's layers)

    model = keras.models.load_model(path)
    assert tuple(model.input.shape[1:]) == tuple(x.shape[1:])
    moving = [v for v in model.variables if "moving_" in v.path]
    before = [np.array(keras.ops.convert_to_numpy(v)) for v in moving]
    first, second = np.asarray(model(x)), np.asarray(model(x))
    np.testing.assert_array_equal(first, second)
    predicted = model.predict(x, verbose=0)
    np.testing.assert_allclose(first, predicted, rtol=0, atol=1e-6)
    for variable, value in zip(moving, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value, err_msg=variable.path)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        model.export(str(export_dir), verbose=False)
        reloaded = tf.saved_model.load(str(export_dir))  # held: its variables live as long as it does
        served = np.asarray(reloaded.serve(tf.constant(x)))
        np.testing.assert_allclose(served, predicted, rtol=0, atol=1e-5)
    return model


def stop_at_training_run(n: int):
    """A Keras callback class whose n-th ``on_train_begin`` raises KeyboardInterrupt: a Ctrl-C at the start of
    the n-th trial's training (counted on the class, across instances: KerasTuner deep-copies callbacks)."""
    import keras

    class StopAtTrainingRun(keras.callbacks.Callback):
        count = 0

        def on_train_begin(self, logs=None):
            type(self).count += 1
            if type(self).count == n:
                raise KeyboardInterrupt

    return StopAtTrainingRun
