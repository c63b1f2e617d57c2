"""KerasTuner's chief/worker mode, with a chief that cannot wait forever.

KerasTuner runs a search on many processes or machines through three environment variables:
``KERASTUNER_TUNER_ID`` (``chief`` for the oracle, any other id for a worker), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT``. The chief holds the oracle and answers the workers over gRPC; each worker asks
for a trial, trains it and reports back.

KerasTuner's own chief loop (``keras_tuner.src.distribute.oracle_chief.start_server``) waits until every
worker it has seen has been told to stop: a worker that crashed mid-trial leaves it waiting forever
(keras-tuner #915). :func:`serve` runs the same ``OracleServicer`` with a watch loop instead:

- ``trial_timeout``: a trial that has run this long without a result is marked FAILED (its worker is taken
  for dead) and the search goes on; a late result for it is ignored;
- ``idle_timeout``: when no trial is running and no worker has asked for one for this long, the chief gives
  up with a clear message (the trials done so far stay on disk: run the chief again to resume). Once the
  search is over, the chief waits at most this long (30 s by default) for workers it has not yet told
  to stop.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent import futures
from typing import Callable, Iterator

__all__ = ["SearchError", "parse_address", "kerastuner_env", "serve", "LOCALHOST"]

LOCALHOST = "127.0.0.1"
ENV_KEYS = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
FINAL_GRACE_S = 30.0


class SearchError(RuntimeError):
    """A search that cannot give a result: no trial completed, a lost chief, a missing dependency."""


def parse_address(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` or ``"PORT"`` (host 127.0.0.1) -> ``(host, port)``; ValueError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"--chief takes HOST:PORT (e.g. 127.0.0.1:8000), got {text!r}")
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = LOCALHOST, text.strip()
    host = host.strip("[]") or LOCALHOST
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--chief takes HOST:PORT with a numeric port, got {text!r}") from None
    if not 1 <= number <= 65535:
        raise ValueError(f"--chief port must be in 1..65535, got {number}")
    return host, number


@contextlib.contextmanager
def kerastuner_env(tuner_id: str, host: str, port: int) -> Iterator[None]:
    """Set KerasTuner's three environment variables for the duration of a search, then restore them."""
    saved = {key: os.environ.get(key) for key in ENV_KEYS}
    os.environ.update({"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": host,
                       "KERASTUNER_ORACLE_PORT": str(port)})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _servicer_class():
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    class WatchedServicer(OracleServicer):
        """KerasTuner's servicer that also records who runs what, when it was last asked, and that
        ignores late results for trials it has given up on."""

        def __init__(self, oracle):
            super().__init__(oracle)
            self.last_request = time.monotonic()
            self.workers: dict[str, str] = {}        # trial id -> tuner id
            self.started: dict[str, float] = {}      # trial id -> start time (monotonic)
            self.abandoned: set[str] = set()
            self.lock = threading.Lock()

        def _touch(self):
            self.last_request = time.monotonic()

        def GetSpace(self, request, context):
            self._touch()
            return super().GetSpace(request, context)

        def UpdateSpace(self, request, context):
            self._touch()
            return super().UpdateSpace(request, context)

        def CreateTrial(self, request, context):
            self._touch()
            response = super().CreateTrial(request, context)
            trial = response.trial
            if trial.trial_id and trial.status == protos.get_proto().TrialStatus.RUNNING:
                with self.lock:
                    self.workers[trial.trial_id] = request.tuner_id
                    self.started[trial.trial_id] = time.monotonic()
            return response

        def UpdateTrial(self, request, context):
            self._touch()
            if request.trial_id in self.abandoned:
                return protos.get_service().UpdateTrialResponse(
                    trial=self.oracle.get_trial(request.trial_id).to_proto())
            return super().UpdateTrial(request, context)

        def EndTrial(self, request, context):
            self._touch()
            if request.trial.trial_id in self.abandoned:
                return protos.get_service().EndTrialResponse()
            return super().EndTrial(request, context)

        def GetTrial(self, request, context):
            self._touch()
            return super().GetTrial(request, context)

        def GetBestTrials(self, request, context):
            self._touch()
            return super().GetBestTrials(request, context)

    return WatchedServicer


def serve(oracle, host: str, port: int, *, trial_timeout: float | None = None,
          idle_timeout: float | None = None, on_trial_end: Callable[[object, str | None], None] | None = None,
          poll_s: float = 0.5) -> dict[str, str]:
    """Run the chief: serve ``oracle`` on ``host:port`` until the search is over. Returns trial id -> worker.

    Raises:
        SearchError: the port cannot be bound, or ``idle_timeout`` passed with no worker asking.
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.engine import trial as trial_module

    servicer = _servicer_class()(oracle)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise SearchError(f"the chief cannot listen on {host}:{port} (in use, or not an address of this "
                          f"machine); choose another --chief port")
    server.start()
    reported = 0
    try:
        while True:
            time.sleep(poll_s)
            now = time.monotonic()
            while reported < len(oracle.end_order):
                trial_id = oracle.end_order[reported]
                reported += 1
                if on_trial_end is not None:
                    on_trial_end(oracle.trials[trial_id], servicer.workers.get(trial_id))
            if trial_timeout is not None:
                for tuner_id, trial in list(oracle.ongoing_trials.items()):
                    started = servicer.started.get(trial.trial_id, now)
                    if now - started > trial_timeout:
                        servicer.abandoned.add(trial.trial_id)
                        trial.status = trial_module.TrialStatus.FAILED
                        trial.message = (f"worker {tuner_id} gave no result for trial {trial.trial_id} within "
                                         f"--trial-timeout {trial_timeout:g} s (crashed or hung?); marked "
                                         f"FAILED")
                        print(f"chief: {trial.message}", flush=True)
                        oracle.end_trial(trial)
                        oracle.tuner_ids.discard(tuner_id)
            idle = now - servicer.last_request
            if servicer.stop_triggered and not oracle.ongoing_trials:
                if not oracle.tuner_ids:
                    break
                if idle > (idle_timeout if idle_timeout is not None else FINAL_GRACE_S):
                    print(f"chief: search over; not waiting longer for worker(s) "
                          f"{', '.join(sorted(oracle.tuner_ids))} (silent for {idle:.0f} s)", flush=True)
                    break
            elif idle_timeout is not None and not oracle.ongoing_trials and idle > idle_timeout:
                raise SearchError(
                    f"the chief at {host}:{port} waited {idle_timeout:g} s (--idle-timeout) with no trial "
                    f"running and no worker asking for one ({len(oracle.end_order)} trial(s) finished); start "
                    f"workers with --worker ID --chief {host}:{port}, or run the chief again to resume"
                )
        while reported < len(oracle.end_order):  # trials that ended in the last poll
            trial_id = oracle.end_order[reported]
            reported += 1
            if on_trial_end is not None:
                on_trial_end(oracle.trials[trial_id], servicer.workers.get(trial_id))
    finally:
        server.stop(grace=1)
    return dict(servicer.workers)
