"""Start-up: is this one of the project's command lines (then ``zoo`` and ``tuning`` import lazily and
oneDNN is turned on), quiet TensorFlow's C++ start-up lines (oneDNN, CUDA stubs, cuInit) so that our
command lines print only what matters and a bad argument gives exactly one line on stderr, and the
numeric set-up a run records (:func:`numeric_setup`).

oneDNN: TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512/AMX-class features. On
an AVX2-only CPU (this project's 2-core AMD EPYC) they are off, and ``TF_ENABLE_ONEDNN_OPTS=1`` set before
TensorFlow is imported made a training step 1.4-3.9x faster (docs/benchmarks.md, ``bench/speed.py``).
Our command lines therefore set it to ``1`` unless you set it yourself (your value wins, ``0`` keeps
oneDNN off); ``import zoo`` from your own program leaves the environment alone.

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
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
CPU_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile")


def enable_onednn() -> None:
    """``TF_ENABLE_ONEDNN_OPTS=1`` unless the variable is set (what our command lines do at start-up;
    it takes effect only if TensorFlow is not imported yet)."""
    os.environ.setdefault(ONEDNN_VARIABLE, "1")


def _cpuinfo() -> tuple[str, list[str]]:
    """The processor's model name and which of :data:`CPU_FLAGS` it has (Linux; empty elsewhere)."""
    import platform

    model, flags = platform.processor() or "", set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not flags:
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return model, [flag for flag in CPU_FLAGS if flag in flags]


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels in this process (None: TensorFlow is not the backend or
    its probe is missing)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # the probe TensorFlow's own tests use
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def numeric_setup() -> dict:
    """What decides a run's speed and its last digits: the backend, oneDNN on or off (and the variable as
    set), TensorFlow's thread pools (0: its default, one thread per core), the processor and its vector
    flags, the core count and the library versions. Figures are bit-identical only for the same set-up."""
    import keras

    backend = keras.backend.backend()
    setup = {"backend": backend, "onednn": None, ONEDNN_VARIABLE: os.environ.get(ONEDNN_VARIABLE),
             "intra_op_threads": None, "inter_op_threads": None}
    try:
        import tensorflow as tf

        setup.update(tensorflow=tf.__version__, onednn=onednn_enabled(),
                     intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                     inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads())
    except ImportError:
        setup["tensorflow"] = None
    cpu, flags = _cpuinfo()
    return {**setup, "keras": keras.__version__, "cpu": cpu, "cpu_flags": flags, "cpus": os.cpu_count()}


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
