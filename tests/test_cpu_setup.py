"""The CPU set-up: our command lines turn oneDNN on unless the user set ``TF_ENABLE_ONEDNN_OPTS`` (their value
wins), a library ``import zoo`` leaves the environment alone, and ``zoo setup`` reports what runs record."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def _run(args, value=None):
    """``args`` in a fresh interpreter with ``TF_ENABLE_ONEDNN_OPTS`` unset (None) or set to ``value``."""
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if value is not None:
        env[VARIABLE] = value
    env["PYTHONPATH"] = REPO
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=REPO, env=env)


def _setup(value=None):
    result = _run(["-m", "zoo", "setup"], value)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def _onednn_capable() -> bool:
    import platform

    return platform.machine() in ("x86_64", "AMD64")


@pytest.mark.skipif(not _onednn_capable(), reason="TensorFlow's oneDNN kernels are x86-64 only")
def test_a_command_line_runs_with_onednn_on_unless_the_user_says_otherwise():
    default = _setup()
    assert default[VARIABLE] == "1" and default["onednn"] is True
    assert default["cpu_flags"] and default["intra_op_threads"] == 0  # TensorFlow's default pools
    off = _setup("0")
    assert off[VARIABLE] == "0" and off["onednn"] is False  # the user's value wins


def test_import_zoo_leaves_the_environment_alone():
    code = "import os, zoo, keras; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"
    result = _run(["-c", code])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "None"


def test_numeric_setup_names_the_processor_flags_and_versions():
    from zoo._quiet import numeric_setup

    setup = numeric_setup()
    assert set(setup) >= {"backend", "onednn", VARIABLE, "intra_op_threads", "inter_op_threads", "cpu",
                          "cpu_flags", "cpus", "tensorflow", "keras"}
    assert setup["onednn"] in (True, False, None)
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            flags = next(line for line in handle if line.startswith("flags")).split()
        assert setup["cpu_flags"] and all(flag in flags for flag in setup["cpu_flags"])
