"""Training throughput on one device vs several with Keras' DataParallel, interleaved in one process.

    python bench/scaling.py                          # lenet5 and resnet20, 2 host devices, ~5 min on 2 cores
    python bench/scaling.py --models lenet5 --quick  # smoke run
    python bench/scaling.py --engine mirrored        # TensorFlow: tf.distribute.MirroredStrategy instead

Runs on the JAX backend with ``--devices`` host devices (it sets ``KERAS_BACKEND=jax`` and ``XLA_FLAGS=
--xla_force_host_platform_device_count=N`` before Keras loads, and refuses another backend already set).
For each model, two arms are prepared through the one training path (``recipes.pipeline.prepare``) from
the same recipe (the model's ``full`` preset on Fashion-MNIST, or digits when it is not installed, same
global batch): ``distribute="none"`` (device 0 only) and ``"data_parallel"`` (every device). A call trains
``--steps`` steps with the arm's trainer on the first batch of its training dataset, repeated (the
training step alone, with the augmentation layers in it: the tf.data pipeline, validation and the
per-epoch copy into the one-device model are left out); after one untimed warm-up call
each (compilation), the arms alternate A B A B for ``--rounds`` rounds, so that load from elsewhere hits
both alike. Reported: median images/s per arm and their ratio (data_parallel / none).

On a CPU the host devices are one process's slices of the same cores, so the ratio measures the cost of
splitting a batch and all-reducing the gradients, not a speed-up; on N GPUs the same command measures
real scaling.

``--engine mirrored`` measures the TensorFlow alternative the recipes do not use: each model's ``full``
preset architecture built and compiled under ``tf.distribute.MirroredStrategy`` over ``--devices`` logical
CPU devices vs without a strategy, each training on one random batch repeated (``bench/speed.py``'s
``Trainer``), interleaved the same way.

Writes ``bench/results/scaling.json`` (``scaling_mirrored.json`` for ``--engine mirrored``; under
``bench/results/quick/`` with ``--quick``) and its table beside it (``.md``).
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time
from typing import Any, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402

MODELS = ("lenet5", "alexnet_small", "googlenet_small", "resnet20", "lstm")
DEFAULT_MODELS = ("lenet5", "resnet20")
ENGINES = ("data_parallel", "mirrored")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def use_logical_cpus(devices: int) -> None:
    """Make TensorFlow the backend with ``devices`` logical CPU devices (before TensorFlow starts)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        raise ValueError(f"--engine mirrored runs on the TensorFlow backend; KERAS_BACKEND is {backend!r}: unset it")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)


def use_host_devices(devices: int) -> None:
    """Make JAX the backend with ``devices`` host devices; must run before Keras or JAX is imported."""
    backend = os.environ.get("KERAS_BACKEND", "jax")
    if backend != "jax":
        raise ValueError(f"bench/scaling.py runs on the JAX backend; KERAS_BACKEND is {backend!r}: unset it")
    if "jax" in sys.modules or "keras" in sys.modules:
        raise ValueError("bench/scaling.py must choose the devices before JAX or Keras is imported")
    os.environ["KERAS_BACKEND"] = "jax"
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    os.environ["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])


def arm(model: str, distribute: str, data: str, limit: int, batch_size: int | None, augmentation: str | None):
    """A prepared recipe (``recipes.pipeline.Prepared``) of ``model``'s full preset with ``distribute``."""
    from recipes.pipeline import prepare
    from recipes.recipe import preset

    overrides: dict[str, Any] = dict(data=data, limit=limit, distribute=distribute)
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    if augmentation is not None:
        overrides["augmentation"] = augmentation
    return prepare(preset(model, "full", **overrides))


def one_batch_repeated(prepared):
    """The first batch of ``prepared``'s training dataset, repeated: the step alone, not the input pipeline."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensors(next(iter(prepared.train_data))).repeat()


def train_call(prepared, data, steps: int) -> float:
    """Seconds to train ``steps`` steps of ``prepared``'s trainer on ``data``."""
    start = time.perf_counter()
    with prepared.distributed():
        prepared.trainer.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    return time.perf_counter() - start


def measure(model: str, data: str, limit: int, batch_size: int | None, augmentation: str | None, steps: int,
            rounds: int) -> dict[str, Any]:
    """Interleaved calls of the two arms of ``model``: per-call seconds, median images/s and the ratio."""
    import keras

    arms = {name: arm(model, name, data, limit, batch_size, augmentation) for name in ("none", "data_parallel")}
    batch = arms["none"].recipe.batch_size
    data = {name: one_batch_repeated(prepared) for name, prepared in arms.items()}
    for name, prepared in arms.items():  # warm-up: compilation
        train_call(prepared, data[name], steps)
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, prepared in arms.items():
            seconds[name].append(train_call(prepared, data[name], steps))
    rate = {name: steps * batch / statistics.median(values) for name, values in seconds.items()}
    return {"model": model, "augmentation": arms["none"].augmentation, "batch_size": batch, "steps_per_call": steps, "rounds": rounds,
            "devices": [str(d) for d in keras.distribution.list_devices()], "seconds": seconds,
            "images_per_s": rate, "ratio": rate["data_parallel"] / rate["none"]}


def measure_mirrored(model: str, batch_size: int | None, rounds: int) -> dict[str, Any]:
    """``model`` under ``tf.distribute.MirroredStrategy`` over the logical CPUs vs no strategy, interleaved."""
    import tensorflow as tf

    from bench.speed import Trainer, _family_model, _input_shape
    from recipes.recipe import preset

    batch = batch_size or preset(model, "full").batch_size
    strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    trainers = {"none": Trainer(_family_model(model, _input_shape(model, 28)), batch, 10)}
    with strategy.scope():
        trainers["mirrored"] = Trainer(_family_model(model, _input_shape(model, 28)), batch, 10)
    for _ in range(rounds):
        for trainer in trainers.values():
            trainer.call()
    rate = {name: trainer.images_per_second for name, trainer in trainers.items()}
    return {"model": model, "engine": "mirrored", "batch_size": batch, "steps_per_call": trainers["none"].steps,
            "rounds": rounds, "devices": list(strategy.extended.worker_devices),
            "seconds": {name: t.seconds for name, t in trainers.items()}, "images_per_s": rate,
            "ratio": rate["mirrored"] / rate["none"]}


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    return common.markdown_table(
        ("model", "engine", "augmentation", "global batch", "devices", "images/s, 1 device", "images/s, distributed", "ratio"),
        [(r["model"], r.get("engine", "data_parallel"), r.get("augmentation", "none"), r["batch_size"], len(r["devices"]),
          f"{r['images_per_s']['none']:.0f}", f"{r['images_per_s'][r.get('engine', 'data_parallel')]:.0f}",
          f"{r['ratio']:.2f}") for r in rows])


def parse_args(argv: Sequence[str] | None) -> Any:
    from zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="bench/scaling.py", description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=ENGINES, default="data_parallel",
                        help="data_parallel: Keras' DataParallel on JAX (the recipes' engine); mirrored: "
                             "tf.distribute.MirroredStrategy on TensorFlow")
    parser.add_argument("--models", type=common.names_in(MODELS, "models"), default=list(DEFAULT_MODELS))
    parser.add_argument("--devices", type=common.positive_int, default=2, help="host devices to make (default 2)")
    parser.add_argument("--steps", type=common.positive_int, default=None,
                        help="training steps per timed call (default 100, 4 with --quick; data_parallel engine)")
    parser.add_argument("--rounds", type=common.positive_int, default=None, help="interleaved rounds (default 5)")
    parser.add_argument("--batch-size", type=common.positive_int, default=None,
                        help="global batch (default: the preset's; must divide by --devices)")
    parser.add_argument("--augmentation", choices=("none", "flip", "clothes"), default=None,
                        help="the augmentation policy (default: the preset's; it runs inside the model; data_parallel engine)")
    parser.add_argument("--quick", action="store_true", help="smoke run: digits, few steps, 2 rounds")
    parser.add_argument("--output", default=None, help="JSON path (default bench/results/scaling.json)")
    return parser.parse_args(argv)


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.devices < 2:
        raise ValueError(f"--devices must be at least 2 (one device is the baseline arm); got {args.devices}")
    watch = common.Stopwatch()
    rounds = args.rounds or (2 if args.quick else 5)
    name = "scaling.json" if args.engine == "data_parallel" else "scaling_mirrored.json"
    output = common.result_path(name, args.quick, args.output)
    if args.engine == "mirrored":
        use_logical_cpus(args.devices)
        data, limit = "random batch", None
        measure_row = functools.partial(measure_mirrored, batch_size=args.batch_size, rounds=rounds)
    else:
        use_host_devices(args.devices)
        fashion = not args.quick and os.path.isdir(FASHION_DIR)
        data, limit = ("fashion_mnist", 16384) if fashion else ("digits", 1024)
        steps = args.steps or (4 if args.quick else 100)
        measure_row = functools.partial(measure, data=data, limit=limit, batch_size=args.batch_size,
                                        augmentation=args.augmentation, steps=steps, rounds=rounds)
    rows = []
    for model in args.models:  # each row written as it comes: a later model's failure keeps it
        rows.append(measure_row(model))
        common.write_json(output, {"command": common.command("scaling.py", argv), "machine": common.machine(),
                                   "data": data, "limit": limit, "rows": rows, "seconds": watch()})
    table = markdown(rows)
    common.write_text(output.with_suffix(".md"), table)
    print(table)
    print(f"wrote {output} ({watch():.0f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(run, argv, "bench/scaling.py")


if __name__ == "__main__":
    sys.exit(main())
