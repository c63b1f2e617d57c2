"""Shared test set-up: quiet TensorFlow, CPU only, one thread pool, repeatable seeds."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

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
