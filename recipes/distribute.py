"""Data-parallel training on Keras' own distribution API: several local devices, or several processes.

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
        python -m recipes.lenet5 --distribute data_parallel          # two host devices, one process
    KERAS_BACKEND=jax python -m recipes.lenet5 --coordinator 10.0.0.1:12355 --num-processes 2 --process-id 0
    KERAS_BACKEND=jax python -m recipes.lenet5 --coordinator 10.0.0.1:12355 --num-processes 2 --process-id 1

``Recipe.distribute = "data_parallel"`` trains under ``keras.distribution.DataParallel`` over every device
(``keras.distribution.list_devices()``: the GPUs, or the host devices XLA is told to make on a CPU). The
recipe's ``batch_size`` is the global batch: it is split evenly over the devices, so it must divide by
their number, and training drops an epoch's last partial batch (a batch that does not divide raises
Keras' ``IndivisibleError``; the step count says ``floor(n / batch)``). Validation, the test split and
what is saved are exact: after every epoch the weights are copied into a copy of the model on one device
(:class:`LocalCopy`), which evaluates every example and is what the run folder saves.

Several processes (one per machine, or several on one for a test): :func:`initialize_processes` maps to
``jax.distributed.initialize`` (CPU collectives over gloo). Every process runs the same command; Keras
shards each global batch over the processes (``Distribution.distribute_dataset``); only process 0 writes
the run folder (:func:`is_writer`), the others read its backup when resuming, so the run folder must be
on a file system all of them see (any one folder does on one machine). The TensorFlow backend
refuses ``data_parallel``: Keras 3.15 implements its distribution API for JAX only (on TensorFlow the
variables are not placed and the batches not split; ``keras/src/backend/tensorflow/distribution_lib.py``
is a prototype marked "DO NOT USE"), so it would train on one device. Several processes on TensorFlow
are refused as well: ``tf.distribute.MultiWorkerMirroredStrategy`` with ``fit`` fails under Keras 3
(keras-team/keras#20585, open).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from typing import Any, Iterator

from recipes.choices import DISTRIBUTIONS

__all__ = ["DISTRIBUTIONS", "MULTI_WORKER_ISSUE", "check_processes", "initialize_processes", "process_count",
           "process_index", "is_writer", "barrier", "data_parallel", "scope", "without_distribution", "LocalCopy"]

MULTI_WORKER_ISSUE = "keras-team/keras#20585"
COORDINATOR_TIMEOUT_S = 60.0
_ADDRESS = re.compile(r"^(?P<host>[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})$")


def check_processes(coordinator: str | None, num_processes: int | None, process_id: int | None) -> tuple[str, int, int] | None:
    """``(coordinator, num_processes, process_id)`` checked (None when none of them is given), else a ValueError.

    ``coordinator``: ``HOST:PORT`` of process 0 (port 1-65535); ``num_processes`` >= 1; ``process_id`` in
    ``[0, num_processes)``. All three go together.
    """
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("--coordinator, --num-processes and --process-id go together: give all three "
                         f"(got coordinator={coordinator!r}, num_processes={num_processes!r}, process_id={process_id!r})")
    match = _ADDRESS.match(str(coordinator))
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"--coordinator must be HOST:PORT with a port in 1..65535 (process 0's address); "
                         f"got {coordinator!r}")
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"--num-processes must be an integer >= 1; got {num_processes!r}")
    if isinstance(process_id, bool) or not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id must be an integer in 0..{num_processes - 1} (--num-processes "
                         f"{num_processes}); got {process_id!r}")
    return str(coordinator), num_processes, process_id


def initialize_processes(coordinator: str, num_processes: int, process_id: int,
                         timeout_s: float = COORDINATOR_TIMEOUT_S) -> None:
    """Join ``num_processes`` processes into one JAX runtime (``jax.distributed.initialize``), before any work.

    Process 0 listens on ``coordinator``; the others wait up to ``timeout_s`` for it to answer and then raise
    a ValueError saying so (JAX itself would abort the process with a stack dump). The TensorFlow backend
    raises a ValueError naming the Keras issue and the JAX alternative. One process: nothing to do.
    """
    import keras

    coordinator, num_processes, process_id = check_processes(coordinator, num_processes, process_id)
    if keras.backend.backend() != "jax":
        raise ValueError(f"--num-processes {num_processes}: training across processes needs the JAX backend "
                         f"(KERAS_BACKEND=jax); on {keras.backend.backend()} tf.distribute's multi-worker "
                         f"strategy fails with Keras 3 ({MULTI_WORKER_ISSUE})")
    if num_processes == 1:
        return
    host, port = coordinator.rsplit(":", 1)
    host = host.strip("[]")
    if process_id == 0:
        _check_can_listen(host, int(port), coordinator)
    else:
        _wait_for(host, int(port), coordinator, timeout_s)
    import jax

    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=max(1, int(timeout_s)))


def _check_can_listen(host: str, port: int, coordinator: str) -> None:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise ValueError(f"--coordinator {coordinator}: process 0 cannot listen there ({error.strerror or error}); "
                         f"give this machine's address and a free port") from None


def _wait_for(host: str, port: int, coordinator: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(5.0, timeout_s)):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise ValueError(f"--coordinator {coordinator}: nothing answered there within {timeout_s:g} s; "
                                 f"start process 0 (--process-id 0) with the same --coordinator first") from None
            time.sleep(0.2)


def _jax():
    """The jax module when Keras runs on JAX (the only backend that joins processes), else None."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    return jax


def process_count() -> int:
    """How many processes train together (1 unless :func:`initialize_processes` joined several)."""
    jax = _jax()
    return 1 if jax is None else int(jax.process_count())


def process_index() -> int:
    """This process's index among :func:`process_count` (0 when alone)."""
    jax = _jax()
    return 0 if jax is None else int(jax.process_index())


def is_writer() -> bool:
    """Whether this process writes files (process 0; every process when alone)."""
    return process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (nothing when alone)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def data_parallel(recipe) -> Any:
    """``keras.distribution.DataParallel`` over every device for ``recipe.distribute == "data_parallel"``
    (None for ``"none"``); a ValueError when the batch does not divide by the devices."""
    import keras

    if recipe.distribute == "none":  # the Recipe has checked the value against DISTRIBUTIONS
        if process_count() > 1:
            raise ValueError(f"{process_count()} processes were joined but Recipe.distribute is 'none': every "
                             f"process would train alone; use distribute='data_parallel'")
        return None
    if keras.backend.backend() != "jax":
        raise ValueError(f"Recipe.distribute='data_parallel' needs the JAX backend (KERAS_BACKEND=jax): on "
                         f"{keras.backend.backend()}, Keras {keras.__version__}'s distribution API neither places "
                         f"variables nor splits batches, so it would train on one device; from Python, "
                         f"tf.distribute.MirroredStrategy is the TensorFlow way (docs/scaling.md)")
    devices = keras.distribution.list_devices()
    if recipe.batch_size % len(devices):
        raise ValueError(f"Recipe.batch_size must divide by the {len(devices)} devices data_parallel splits each "
                         f"batch over ({', '.join(map(str, devices[:4]))}{', …' if len(devices) > 4 else ''}); "
                         f"got {recipe.batch_size}")
    return keras.distribution.DataParallel(devices=devices)


def scope(distribution) -> contextlib.AbstractContextManager:
    """``distribution.scope()``, or nothing to enter when ``distribution`` is None."""
    return distribution.scope() if distribution is not None else contextlib.nullcontext()


@contextlib.contextmanager
def without_distribution() -> Iterator[None]:
    """No Keras distribution inside the block (the one outside is put back after it)."""
    import keras

    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


class LocalCopy:
    """One-device copies of a distributed run's inference model and compiled trainer, for exact evaluation.

    :meth:`sync` copies the trained weights (and batch-norm statistics, random-layer states) from the
    distributed trainer into the copy; ``model`` is then what is saved and ``trainer`` what evaluates.
    """

    def __init__(self, model, trainer) -> None:
        self.model, self.trainer = model, trainer

    def sync(self, distributed_trainer) -> None:
        with without_distribution():
            self.trainer.set_weights(distributed_trainer.get_weights())
