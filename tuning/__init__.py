"""tuning: KerasTuner searches over zoo models — λ (L2/L1), dropout keep-prob and the learning rate.

    import tuning
    result = tuning.search("lenet5", "digits", tuner="hyperband", max_trials=20)
    result.best_hyperparameters     # {'penalty': 'l2', 'l2': 3.1e-05, 'keep_prob': 0.83, 'learning_rate': ...}
    print(result.table())           # every trial: hyperparameters, score, epochs, status
    result.test_metrics             # the best configuration retrained on train+validation, tested once
                                    # (metrics.json's names: test_accuracy, test_loss, train_loss, ...)

    hm = tuning.ZooHyperModel("lenet5", splits=splits, space={"keep_prob": (0.6, 0.9)},
                              fixed={"batch_norm": False})          # a keras_tuner.HyperModel
    tuner = keras_tuner.RandomSearch(hm, objective="val_accuracy", max_trials=10)

    python -m tuning --model lenet5 --data digits --tuner hyperband --max-trials 20 \\
        --space l2=1e-6:1e-2 --space keep_prob=0.5:1.0 --fix batch_norm=true

KerasTuner is the engine: ``hyperband``, ``bayesian`` (Gaussian process; needs scipy and scikit-learn),
``random`` and ``grid`` are its own tuners. Every trial and the final retraining train through the
recipes' one training path (``recipes.pipeline``), and the saved ``best_model.keras`` is the inference
model (one tensor in, no augmentation, dropout or batch statistics unless ``training=True``). Every trial
trains with early stopping on val_loss (best weights
restored); the memory of one trial is released before the next (``keras.backend.clear_session``). A
trial whose loss turns NaN is recorded as FAILED and the search goes on; a search in which no trial
completed raises :class:`SearchError` rather than report a best model.

The space (:mod:`tuning.space`): ``l2`` log-uniform 1e-6…1e-2 (and ``l1`` when ``penalty`` — fixed to
``l2`` by default — allows it), ``keep_prob`` 0.5…1.0, ``learning_rate`` log-uniform 1e-4…1e-1; off by
default and opened with ``--space``: ``optimizer``, ``batch_norm``, ``augmentation``, ``batch_size``,
``penalty`` and any argument of the model's builder.

Outputs (``<directory>/<project_name>/``, default ``tuning_runs/<model>_<data>_<tuner>/``): KerasTuner's
trial folders and state, ``trials.csv`` (one row a trial), ``best_hyperparameters.json``,
``best_model.keras``, ``test_metrics.json`` and ``search.png`` (the validation score against λ,
keep-prob and learning rate). Running the same command again resumes: finished trials are not run
again (``--overwrite`` starts afresh; a different space or tuner in the same folder is refused).

Memory. TensorFlow keeps a few MB per trial that ``clear_session`` does not return (keras-tuner #395,
#873); ``bench/tuning_memory.py`` measures it. For long searches, ``--isolate-trials``
(``isolate_trials=True``) runs every trial in a fresh child process, at a start-up cost of a few seconds
a trial.

Running a search on several machines
------------------------------------

A distributed search is KerasTuner's own chief/worker mode: one *chief* holds the oracle (it decides the
trials and keeps the results) and any number of *workers* ask it for a trial, train it and report back.
Our command line sets KerasTuner's environment variables (``KERASTUNER_TUNER_ID``,
``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``) for you. Run the same command on every machine,
adding the role::

    # machine A, the chief (it trains nothing; it binds 127.0.0.1 unless you give another address)
    python -m tuning --model resnet20 --data cifar10 --tuner bayesian --max-trials 50 \\
        --directory /shared/tuning --chief 0.0.0.0:8000 --trial-timeout 3600

    # machines B, C, ...: one worker each (or one per GPU, with CUDA_VISIBLE_DEVICES)
    python -m tuning --model resnet20 --data cifar10 --tuner bayesian --max-trials 50 \\
        --directory /shared/tuning --worker gpu-b0 --chief A:8000

- Every trial runs exactly once, on one worker; when all have run, the chief retrains the best
  configuration on train+validation, tests it and writes the reports. Workers exit when the oracle has
  no more trials.
- ``--chief HOST:PORT`` on the chief is the address it listens on: ``127.0.0.1`` (the default host) only
  accepts workers on the same machine; ``0.0.0.0`` or the machine's own address accepts others. The gRPC
  channel is unencrypted and unauthenticated: keep it on a trusted network.
- Give every worker a different ``--worker`` id (not containing "chief"). Use the same ``--directory``
  on a shared file system (NFS, GCS through ``gs://`` paths) when the tuner is ``hyperband``: its later
  rounds load the checkpoints of earlier trials, which another worker may have written. ``random``,
  ``bayesian`` and ``grid`` need only the chief's folder to be shared for ``best_model.keras`` — each
  worker writes its own checkpoints.
- A worker that dies mid-trial would leave KerasTuner's chief waiting forever (keras-tuner #915):
  ``--trial-timeout S`` fails a trial that has had no result for S seconds and goes on;
  ``--idle-timeout S`` makes the chief give up (exit status 1, the trials so far kept) when no trial is
  running and no worker has asked for one in S seconds, and makes a worker give up when the chief does not
  answer for S seconds (KerasTuner's own default: one hour). Restarting the chief with the same command
  resumes the search; a trial that was running when it stopped is run again.
- Each worker may train its trials on several GPUs with a ``tf.distribute`` strategy: from Python, build
  the tuner yourself with ``distribution_strategy=tf.distribute.MirroredStrategy()`` (KerasTuner's
  ``Tuner`` argument; single-machine strategies only), e.g.
  ``keras_tuner.RandomSearch(tuning.ZooHyperModel(...), distribution_strategy=strategy, ...)``. The
  chief needs no GPU.
- On one machine, the test ``tests/test_tuning_distributed.py`` starts a chief and two workers on
  127.0.0.1 with a free port.
"""

from zoo._quiet import lazy_getattr as _lazy_getattr
from zoo._quiet import started_by_a_project_command_line as _started_by_a_project_command_line

_LOADED = False
_EXPORTS = (
    ("tuning.distributed", ("SearchError",)),
    ("tuning.hypermodel", ("TUNER_KEYS", "ZooHyperModel", "builder_defaults", "strip_tuner_keys")),
    ("tuning.report", ("TrialRecord",)),
    ("tuning.search", ("OBJECTIVES", "OUTPUT_FILES", "SearchResult", "make_objective", "search")),
    ("tuning.space", ("Choice", "Fixed", "Range", "SearchSpace", "make_space", "parse_assignment")),
    ("tuning.tuners", ("TUNERS",)),
)
__all__ = [name for _, names in _EXPORTS for name in names]


def load() -> None:
    """Import the search and its tuners (what ``import tuning`` does outside our command lines)."""
    global _LOADED
    if _LOADED:
        return
    import importlib

    import zoo

    zoo.load()
    for module_name, exported in _EXPORTS:
        module = importlib.import_module(module_name)
        globals().update({name: getattr(module, name) for name in exported})
    _LOADED = True


__getattr__ = _lazy_getattr('tuning', load, globals())


if not _started_by_a_project_command_line():
    load()
