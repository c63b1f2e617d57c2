"""Data-parallel training (recipes.distribute): bad input, two host devices in one process, two processes.

The last two run in fresh interpreters under KERAS_BACKEND=jax (the host device count is fixed when JAX
starts) and are in the `backends` selection .ci/run runs with the jax extra installed.
"""

import glob
import importlib.util
import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import REPO, assert_one_line_error
from recipes.distribute import check_processes
from recipes.recipe import HASH_SKIPS_DEFAULT, Recipe

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None or os.environ.get("KERAS_BACKEND") != "jax",
                               reason="the JAX selection's (KERAS_BACKEND=jax, the jax extra installed)")
METRICS = ("train_loss", "val_loss", "test_loss", "train_accuracy", "val_accuracy", "test_accuracy")


@pytest.mark.parametrize("args, needle", [
    (("127.0.0.1:1234", 2, None), "go together"),
    (("nohost", 2, 0), "--coordinator must be HOST:PORT"),
    (("127.0.0.1:70000", 2, 0), "--coordinator must be HOST:PORT"),
    (("127.0.0.1:1234", 0, 0), "--num-processes must be an integer >= 1; got 0"),
    (("127.0.0.1:1234", 2, 2), "--process-id must be an integer in 0..1"),
    (("127.0.0.1:1234", 2, -1), "--process-id must be an integer in 0..1"),
])
def test_process_options_are_checked(args, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        check_processes(*args)
    assert check_processes(None, None, None) is None
    assert check_processes("[::1]:80", 3, 2) == ("[::1]:80", 3, 2)


def test_recipe_distribute_is_checked_and_leaves_old_hashes_alone():
    with pytest.raises(ValueError, match="Recipe.distribute must be one of none, data_parallel; got 'ddp'"):
        Recipe("lenet5", distribute="ddp")
    plain = Recipe("lenet5")
    assert plain.config_hash() != plain.replace(distribute="data_parallel").config_hash()
    import hashlib

    before = {k: v for k, v in plain.to_dict().items() if k not in HASH_SKIPS_DEFAULT}  # from before the fields
    canonical = json.dumps(before, sort_keys=True, separators=(",", ":"))
    assert plain.config_hash() == hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@pytest.mark.parametrize("argv, needles", [
    (["--distribute", "ddp"], ["--distribute", "invalid choice"]),
    (["--num-processes", "0"], ["--num-processes", "integer >= 1"]),
    (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"], ["--process-id", "0..1"]),
    (["--num-processes", "2"], ["go together"]),
    (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "1", "--distribute", "none"],
     ["needs --distribute data_parallel"]),
])
def test_bad_distribution_options_exit_2_before_training(run_cli, tmp_path, argv, needles):
    result = run_cli(sys.executable, "-m", "recipes.lenet5", "--out", str(tmp_path), *argv, timeout=120)
    assert_one_line_error(result, *needles)
    assert not list(tmp_path.iterdir())


def test_several_processes_are_refused_on_tensorflow(run_cli, tmp_path):
    result = run_cli(sys.executable, "-m", "recipes.lenet5", "--out", str(tmp_path), "--coordinator",
                     "127.0.0.1:1", "--num-processes", "2", "--process-id", "1", timeout=300,
                     env={"KERAS_BACKEND": "tensorflow"})
    assert_one_line_error(result, "--num-processes 2", "JAX backend", "keras-team/keras#20585")
    assert not list(tmp_path.iterdir())


def _jax_env(devices: int = 1) -> dict:
    env = dict(os.environ, PYTHONPATH=REPO, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _metrics(folder) -> dict:
    (path,) = glob.glob(os.path.join(str(folder), "*", "metrics.json"))
    with open(path) as handle:
        return json.load(handle)


@pytest.mark.backends
@needs_jax
def test_unreachable_coordinator_is_one_line_not_a_hang(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nobody listens there
    result = subprocess.run([sys.executable, "-m", "recipes.lenet5", "--out", str(tmp_path), "--coordinator",
                             f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "1",
                             "--coordinator-timeout", "2"], capture_output=True, text=True, timeout=300,
                            env=_jax_env(), cwd=REPO)
    assert_one_line_error(result, "nothing answered there within 2 s", "--process-id 0")


@pytest.mark.backends
@needs_jax
def test_data_parallel_over_two_host_devices_matches_one_device(tmp_path):
    """Same recipe, batch 30 dividing the 270 quick examples: the metrics agree to 1e-4."""
    for mode in ("none", "data_parallel"):
        result = subprocess.run([sys.executable, "-m", "recipes.lenet5", "--quick", "--batch-size", "30",
                                 "--distribute", mode, "--out", str(tmp_path / mode), "--verbose", "0"],
                                capture_output=True, text=True, timeout=600, env=_jax_env(2), cwd=REPO)
        assert result.returncode == 0, result.stderr[-3000:]
    one, two = _metrics(tmp_path / "none"), _metrics(tmp_path / "data_parallel")
    for key in METRICS:
        assert abs(one[key] - two[key]) < 1e-4, (key, one[key], two[key])


@pytest.mark.backends
@needs_jax
def test_two_processes_on_loopback_write_one_run_folder_matching_one_process(tmp_path):
    """lenet5 on digits, 2 epochs, global batch 32: 2 processes vs 1; losses within 2e-3, accuracies 0.005."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    common = [sys.executable, "-m", "recipes.lenet5", "--epochs", "2", "--verbose", "0"]
    workers = [subprocess.Popen(common + ["--out", str(tmp_path / "two"), "--coordinator", f"127.0.0.1:{port}",
                                          "--num-processes", "2", "--process-id", str(i)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_jax_env(), cwd=REPO)
               for i in (0, 1)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    assert len(list((tmp_path / "two").iterdir())) == 1  # process 0's run folder, nothing else
    single = subprocess.run(common + ["--out", str(tmp_path / "one"), "--distribute", "data_parallel"],
                            capture_output=True, text=True, timeout=600, env=_jax_env(), cwd=REPO)
    assert single.returncode == 0, single.stderr[-3000:]
    two, one = _metrics(tmp_path / "two"), _metrics(tmp_path / "one")
    for key in METRICS:
        tolerance = 2e-3 if key.endswith("loss") else 5e-3
        assert abs(one[key] - two[key]) <= tolerance, (key, one[key], two[key])


def test_a_tuning_search_refuses_a_distributed_recipe():
    """A search spreads over devices with KerasTuner's chief and workers, not inside a trial."""
    from tuning.hypermodel import ZooHyperModel

    with pytest.raises(ValueError, match="Recipe.distribute='data_parallel' inside a trial is not supported"):
        ZooHyperModel("lenet5", (8, 8, 1), 10, recipe=Recipe("lenet5", distribute="data_parallel"))


def test_data_parallel_is_refused_on_tensorflow(run_cli, tmp_path):
    """Keras 3.15's distribution API is JAX-only: on TensorFlow it would silently train on one device."""
    result = run_cli(sys.executable, "-m", "recipes.lenet5", "--quick", "--out", str(tmp_path), "--distribute",
                     "data_parallel", timeout=300, env={"KERAS_BACKEND": "tensorflow"})
    assert_one_line_error(result, "Recipe.distribute='data_parallel' needs the JAX backend", "MirroredStrategy")
    assert not list(tmp_path.iterdir())
