"""Distributed search: KerasTuner's chief/worker mode through ``python -m tuning --chief/--worker``.

Everything on 127.0.0.1 with a free port; every process this file starts is killed in ``finally`` (its own
process group), whatever happens.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import kill_process_group

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--model", "lenet5", "--data", "digits", "--tuner", "random", "--limit", "150", "--test-limit", "50",
        "--batch-size", "32", "--final-epochs", "1"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Start ``python -m tuning`` processes, each in its own session; kill them all on exit."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.started = []

    def start(self, name, *args):
        log = open(self.tmp_path / f"{name}.log", "w")
        env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
        for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
            env.pop(key, None)
        process = subprocess.Popen([sys.executable, "-m", "tuning", *args], stdout=log, stderr=subprocess.STDOUT,
                                   cwd=REPO, env=env, start_new_session=True)
        process.log_file = log
        process.name = name
        self.started.append(process)
        return process

    def log(self, name):
        return (self.tmp_path / f"{name}.log").read_text()

    def wait_for_text(self, name, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(name):
                return
            for process in self.started:
                if process.poll() is not None and process.returncode != 0:
                    pytest.fail(f"{process.name} exited with {process.returncode}:\n{self.log(process.name)[-3000:]}")
            time.sleep(0.5)
        pytest.fail(f"{name} did not print {text!r} within {timeout} s:\n{self.log(name)[-3000:]}")

    def wait(self, process, timeout):
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{process.name} still running after {timeout} s:\n{self.log(process.name)[-3000:]}")

    def kill_all(self):
        for process in self.started:
            kill_process_group(process)
            process.log_file.close()


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()


def trials_csv(folder):
    with open(folder / "trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def finished_ids(log, worker):
    """Trial ids a worker reported as finished: lines ``trial 2/4 COMPLETED ... [w0]``."""
    return [line.split()[1].split("/")[0] for line in log.splitlines()
            if line.startswith("trial ") and line.rstrip().endswith(f"[{worker}]")]


def test_chief_and_two_workers_run_every_trial_exactly_once(processes, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    common = [*TINY, "--max-trials", "4", "--epochs", "2", "--directory", str(tmp_path / "runs")]
    # Workers first: both are waiting on the chief's address when it opens, so both get trials.
    for worker in ("w0", "w1"):
        processes.start(worker, *common, "--worker", worker, "--chief", address, "--idle-timeout", "240")
    for worker in ("w0", "w1"):
        processes.wait_for_text(worker, "asking the chief", timeout=180)
    chief = processes.start("chief", *common, "--chief", address, "--trial-timeout", "240",
                            "--idle-timeout", "240", "--prune", "median", "--prune-warmup", "1")
    for process in processes.started:
        assert processes.wait(process, timeout=400) == 0, processes.log(process.name)[-3000:]

    folder = tmp_path / "runs" / "lenet5_digits_random"
    rows = trials_csv(folder)
    assert len(rows) == 4 and {r["status"] for r in rows} <= {"COMPLETED", "PRUNED"}
    assert {r["worker"] for r in rows} == {"w0", "w1"}  # both workers ran trials
    oracle = json.loads((folder / "oracle.json").read_text())
    assert sorted(oracle["run_times"]) == sorted(r["trial_id"] for r in rows)
    assert set(oracle["run_times"].values()) == {1}  # every trial ran exactly once
    ran = {w: finished_ids(processes.log(w), w) for w in ("w0", "w1")}
    assert ran["w0"] and ran["w1"] and not set(ran["w0"]) & set(ran["w1"])
    assert sorted(ran["w0"] + ran["w1"]) == sorted(r["trial_id"] for r in rows)
    for w in ("w0", "w1"):
        assert {r["trial_id"] for r in rows if r["worker"] == w} == set(ran[w])
    for r in rows:  # every epoch reached the chief's oracle over gRPC (what its pruner decides on)
        saved = json.loads((folder / f"trial_{r['trial_id']}" / "trial.json").read_text())["metrics"]["metrics"]
        assert len(saved["epoch_val_accuracy"]["observations"]) == int(r["epochs"]) >= 1
        assert ("pruned_at_epoch" in saved) == (r["status"] == "PRUNED")
    chief_log = processes.log("chief")
    assert "serving the oracle on " + address in chief_log and "outputs in" in chief_log
    for name in ("best_hyperparameters.json", "best_model.keras", "test_metrics.json", "search.png"):
        assert (folder / name).exists(), name
    assert chief.returncode == 0


def test_chief_without_workers_gives_up_after_idle_timeout(processes, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    chief = processes.start("chief", *TINY, "--max-trials", "2", "--epochs", "1", "--directory",
                            str(tmp_path / "runs"), "--chief", address, "--idle-timeout", "3")
    assert processes.wait(chief, timeout=180) == 1
    log = processes.log("chief")
    assert "--idle-timeout" in log and "no worker asking" in log and "Traceback" not in log


@pytest.mark.slow
def test_a_dead_worker_does_not_hang_the_chief(processes, tmp_path):
    """keras-tuner #915: a worker killed mid-trial; --trial-timeout fails its trial and the search ends."""
    address = f"127.0.0.1:{free_port()}"
    runs = tmp_path / "runs"
    common = [*TINY, "--max-trials", "3", "--epochs", "40", "--patience", "40", "--directory", str(runs)]
    processes.start("w0", *common, "--worker", "w0", "--chief", address)
    processes.wait_for_text("w0", "asking the chief", timeout=180)
    chief = processes.start("chief", *common, "--chief", address, "--trial-timeout", "90", "--idle-timeout", "240")
    folder = runs / "lenet5_digits_random"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not list(folder.glob("trial_*/trial.json")):
        time.sleep(0.5)
    victim = processes.started[0]
    os.killpg(victim.pid, signal.SIGKILL)  # dies mid-trial, without telling the chief
    victim.wait(timeout=30)
    processes.start("w1", *common, "--worker", "w1", "--chief", address)
    assert processes.wait(chief, timeout=500) == 0, processes.log("chief")[-3000:]
    rows = {r["trial_id"]: r for r in trials_csv(folder)}
    failed = [r for r in rows.values() if r["status"] == "FAILED"]
    assert len(rows) == 3 and len(failed) == 1 and failed[0]["worker"] == "w0"
    assert "--trial-timeout" in failed[0]["message"]
    assert {r["status"] for r in rows.values() if r is not failed[0]} == {"COMPLETED"}


def test_a_worker_reports_its_trials_without_asking_a_chief_that_may_be_gone():
    """The race CI hit: told to stop, a worker asked the chief for its trials again, the chief had already
    shut down (every worker told), and each call waited --idle-timeout for it. The worker now reports the
    trials as they were scored when each ended."""
    from types import SimpleNamespace

    import keras_tuner as kt
    from tuning.search import _worker_result

    class GoneChief:
        def __getattr__(self, name):
            raise AssertionError(f"the worker asked the chief ({name}) after the search ended")

    hp = kt.HyperParameters()
    hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=1e-3)
    trial = kt.engine.trial.Trial(hp.copy(), trial_id="2", status="COMPLETED")
    trial.metrics.register("val_accuracy", direction="max")
    trial.metrics.update("val_accuracy", 0.75)
    trial.score = 0.75
    tuner = SimpleNamespace(trials_run=["2"], trials_ended={"2": trial}, oracle=GoneChief())
    said = []
    plan = SimpleNamespace(worker="w0", objective=SimpleNamespace(name="val_accuracy", direction="max"),
                           hypermodel=SimpleNamespace(model_name="lenet5", space=None), splits=SimpleNamespace(
                               name="digits"), tuner="random", project_dir="/nonexistent", role="worker",
                           say=said.append)
    result = _worker_result(plan, tuner, seconds=1.0)
    assert [(r.trial_id, r.score, r.status) for r in result.trials] == [("2", 0.75, "COMPLETED")]
    assert result.trials_run == ["2"] and said == ["worker w0: ran 1 trial(s): 2"]
