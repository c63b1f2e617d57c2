"""Start-up: is this one of the project's command lines (then ``zoo`` and ``tuning`` import lazily), and
quiet TensorFlow's C++ start-up lines (oneDNN, CUDA stubs, cuInit) so that our command lines print
only what matters and a bad argument gives exactly one line on stderr.

``TF_CPP_MIN_LOG_LEVEL`` defaults to 2 (a value you set yourself wins; set 0 to see everything). TF 2.21
prints a few absl lines before its logging is initialised whatever that variable says, so the import
and the device probe run with file descriptor 2 pointed at /dev/null; Python errors still surface
(the descriptor is restored before any exception propagates).
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_to_devnull():
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


PROJECT_PACKAGES = ("zoo", "recipes", "tuning", "bench")


def started_by_a_project_command_line() -> bool:
    """Whether the program starting is one of ours: ``python -m zoo|recipes.<x>|tuning|bench.<x>``, the
    ``zoo`` script, or ``python recipes/<x>.py`` / ``python bench/<x>.py`` from this checkout."""
    if sys.argv[:1] == ["-m"]:  # python -m PACKAGE[.MODULE]: Python is still locating the module
        return True
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name.partition(".")[0] in PROJECT_PACKAGES:
        return True
    program = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.basename(program) == "zoo" or any(
        program.startswith(os.path.join(root, package) + os.sep) for package in PROJECT_PACKAGES)


def lazy_getattr(package: str, load, namespace: dict):
    """A PEP 562 module ``__getattr__`` for ``package``: ``load()`` on the first public name (or
    ``__all__``), then the name from ``namespace`` (the package's globals); AttributeError otherwise."""

    def __getattr__(name: str):
        if name.startswith("_") and name != "__all__":
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        load()
        try:
            return namespace[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return __getattr__


def import_tensorflow_quietly() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] in ("0", "1"):
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    with _stderr_to_devnull():
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here, once
        except ImportError:
            pass  # keras will raise its own clear error
