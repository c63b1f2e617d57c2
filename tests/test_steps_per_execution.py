"""``Recipe.steps_per_execution``: N training steps per call of the compiled train function.

What was measured here (TF 2.21, Keras 3.15.1, CPU, oneDNN on and off): a run with N = 4 writes a
history.csv and metrics.json bit-identical to the run with N = 1 (Keras runs the same step N times inside
one ``tf.while_loop``), so these tests compare exactly. The recipe has every piece a step count could upset:
dropout, batch norm, in-model augmentation, EMA, early stopping, and 6 steps an epoch (180 training examples
in batches of 32), so that N = 4 ends each epoch with a shorter call of 2 steps. On JAX (jax 0.10.2) with
``distribute="data_parallel"`` over two host devices the histories were bit-identical too (the last test,
in the ``backends`` selection).
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from conftest import REPO, assert_one_line_error
from recipes import pipeline
from recipes.cli import build_parser, overrides_from_args
from recipes.data import load_data
from recipes.recipe import FAMILY_DEFAULTS, Recipe, preset
from recipes.train import run, work_dir_for
from test_recipes import _Epochs, _history_epochs, _InterruptAt

RECIPE = Recipe(model="lenet5", limit=200, test_limit=60, batch_size=32, epochs=8, patience=1, ema=0.5,
                regularization=zoo.Regularization(keep_prob=0.9, batch_norm=True), augmentation="shift",
                learning_rate=0.01, seed=11)
STEPS_PER_EPOCH = 6   # ceil(180 / 32)
CLOCK_READINGS = ("wall_time_s",)


class _BatchHooks(keras.callbacks.Callback):
    """The ``batch`` argument of every ``on_train_batch_end``, per epoch."""

    def __init__(self):
        super().__init__()
        self.ends = []

    def on_epoch_begin(self, epoch, logs=None):
        self.ends.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.ends[-1].append(batch)


def _metrics(result, leave_out=()):
    metrics = json.loads((result.folder / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in CLOCK_READINGS + tuple(leave_out)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """RECIPE run to the end with 1 and with 4 steps per execution: {N: (RunResult, _BatchHooks)}."""
    out = tmp_path_factory.mktemp("uninterrupted")
    runs = {}
    for n in (1, 4):
        hooks = _BatchHooks()
        runs[n] = run(RECIPE.replace(steps_per_execution=n), out=out / f"n{n}", verbose=0, callbacks=[hooks]), hooks
    return runs


def test_four_steps_per_call_give_a_bit_identical_history_and_metrics(uninterrupted):
    (one, one_hooks), (four, four_hooks) = uninterrupted[1], uninterrupted[4]
    # the setting reached Keras: a hook per call, at the call's last step (the last call is 2 steps, 4 and 5)
    assert all(ends == list(range(STEPS_PER_EPOCH)) for ends in one_hooks.ends), one_hooks.ends
    assert all(ends == [3, 7] for ends in four_hooks.ends), four_hooks.ends
    assert (one.folder / "history.csv").read_text() == (four.folder / "history.csv").read_text()
    assert _metrics(one, ["steps_per_execution"]) == _metrics(four, ["steps_per_execution"])
    assert (_metrics(one)["steps_per_execution"], _metrics(four)["steps_per_execution"]) == (1, 4)
    assert Recipe.from_json((four.folder / "config.json").read_text()).steps_per_execution == 4


def test_early_stopping_stops_and_restores_the_best_weights(uninterrupted):
    metrics = _metrics(uninterrupted[4][0])
    assert metrics["stopped_early"] and metrics["epochs_run"] < RECIPE.epochs
    assert metrics["epochs_run"] == metrics["best_epoch"] + RECIPE.patience
    # the final model is the best epoch's (its EMA weights), not the last epoch's: the same validation loss
    assert metrics["val_loss"] == metrics["best_val_loss"]


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", seed=0, limit=200, test_limit=60)


def test_ema_averages_every_step_not_every_call(digits):
    weights = {}
    for n in (1, 4):
        recipe = RECIPE.replace(epochs=1, patience=None, ema=0.9, steps_per_execution=n)
        prepared = pipeline.prepare(recipe, digits)
        assert prepared.trainer.steps_per_execution == n
        history = pipeline.fit(prepared, verbose=0).history
        optimizer = prepared.trainer.optimizer
        assert optimizer.use_ema and int(optimizer.iterations) == STEPS_PER_EPOCH
        # fit leaves the averaged weights in the model, and the last validation ran on them
        averages = optimizer._model_variables_moving_average
        for variable, average in zip(prepared.trainer.trainable_variables, averages):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), keras.ops.convert_to_numpy(average))
        val = pipeline.evaluate(prepared, digits.x_val, digits.y_val)
        np.testing.assert_allclose(val["loss"], history["val_loss"][-1], rtol=1e-5)
        weights[n] = [np.array(keras.ops.convert_to_numpy(v)) for v in prepared.model.weights]
    for one, four in zip(weights[1], weights[4]):
        np.testing.assert_array_equal(one, four)  # an average updated once per call would differ


def test_a_killed_and_resumed_run_ends_as_the_uninterrupted_one(uninterrupted, tmp_path):
    recipe = RECIPE.replace(steps_per_execution=4)
    with pytest.raises(RuntimeError, match="killed at epoch 1"):
        run(recipe, out=tmp_path, verbose=0, callbacks=[_InterruptAt(1)])
    assert _history_epochs(work_dir_for(recipe, tmp_path) / "history.csv") == [0]
    seen = _Epochs()
    resumed = run(recipe, out=tmp_path, verbose=0, callbacks=[seen])
    assert seen.seen[0] == 1 and resumed.metrics["resumed_from_epoch"] == 1
    expected = uninterrupted[4][0]
    assert (resumed.folder / "history.csv").read_text() == (expected.folder / "history.csv").read_text()
    assert _metrics(resumed, ["resumed_from_epoch"]) == _metrics(expected, ["resumed_from_epoch"])


# -- the field: defaults, the JSON round trip, the command line, bad values ---------------------------------
def test_the_field_defaults_to_the_family_and_round_trips():
    assert Recipe(model="lenet5").steps_per_execution == 1
    for name, family in (("lenet5", "lenet"), ("resnet20", "resnet"), ("lstm", "lstm")):
        for preset_name in ("full", "best"):
            assert preset(name, preset_name).steps_per_execution == FAMILY_DEFAULTS[family].steps_per_execution
    recipe = preset("lenet5", "full", steps_per_execution=8)
    assert recipe.steps_per_execution == 8 and recipe.with_overrides(steps_per_execution=2).steps_per_execution == 2
    assert Recipe.from_json(recipe.to_json()) == recipe
    assert recipe.config_hash() != recipe.replace(steps_per_execution=1).config_hash()
    # a config.json from before the field: it loads, with 1, and keeps its hash (its work folder, its results)
    old = {k: v for k, v in recipe.replace(steps_per_execution=1).to_dict().items() if k != "steps_per_execution"}
    assert Recipe.from_dict(old) == recipe.replace(steps_per_execution=1)
    import hashlib

    from recipes.recipe import HASH_SKIPS_DEFAULT

    unhashed = {k: v for k, v in old.items() if k not in HASH_SKIPS_DEFAULT}  # fields added later, at their default
    canonical = json.dumps(unhashed, sort_keys=True, separators=(",", ":"))
    assert Recipe.from_dict(old).config_hash() == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    # config.json's machine block is no Recipe field; any other stranger still is refused
    assert Recipe.from_dict({**recipe.to_dict(), "machine": {"onednn": True}}) == recipe
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['steps_per_executon'\]"):
        Recipe.from_dict({**recipe.to_dict(), "steps_per_executon": 4})


def test_the_command_line_option_sets_the_field():
    parser = build_parser("recipes.lenet5", default_model="lenet5")
    assert overrides_from_args(parser.parse_args(["--steps-per-execution", "16"]))["steps_per_execution"] == 16
    assert "steps_per_execution" not in overrides_from_args(parser.parse_args([]))
    assert "--steps-per-execution N" in parser.format_help()


@pytest.mark.parametrize("value", [0, -1, 2.5, "x", "4", True, None])
def test_bad_values_are_refused_naming_the_field(value):
    message = f"Recipe.steps_per_execution must be an integer >= 1; got {value!r}"
    with pytest.raises(ValueError) as info:
        Recipe(model="lenet5", steps_per_execution=value)
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        Recipe(model="lenet5").with_overrides(steps_per_execution=value)
    assert str(info.value) == message


@pytest.mark.parametrize("text", ["0", "-1", "2.5", "x"])
def test_bad_values_on_the_command_line_exit_2_with_one_line(text, tmp_path, capsys):
    from recipes.lenet5 import main

    out = tmp_path / "out"
    code = main(["--steps-per-execution", text, "--out", str(out), "--quick", "--verbose", "0"])

    class Result:
        returncode, stderr = code, capsys.readouterr().err

    assert_one_line_error(Result, "recipes.lenet5", "--steps-per-execution", "integer >= 1", repr(text))
    assert not out.exists()


@pytest.mark.backends
@pytest.mark.skipif(importlib.util.find_spec("jax") is None or os.environ.get("KERAS_BACKEND") != "jax",
                    reason="the JAX selection's (KERAS_BACKEND=jax, the jax extra installed)")
def test_data_parallel_on_jax_gives_the_same_history_with_4_steps_per_execution(tmp_path):
    """270 quick examples in global batches of 30 over two host devices: 9 steps, calls of 4, 4 and 1."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
    histories = []
    for n in ("1", "4"):
        result = subprocess.run([sys.executable, "-m", "recipes.lenet5", "--quick", "--batch-size", "30",
                                 "--distribute", "data_parallel", "--steps-per-execution", n,
                                 "--out", str(tmp_path / n), "--verbose", "0"],
                                capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
        assert result.returncode == 0, result.stderr[-3000:]
        (folder,) = (p for p in (tmp_path / n).iterdir() if not p.name.startswith("."))  # the run folder
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["steps_per_execution"] == int(n) and metrics["numeric_setup"]["backend"] == "jax"
        histories.append((folder / "history.csv").read_text())
    assert histories[0] == histories[1]
