"""Where should augmentation run on CPU: in the tf.data pipeline or inside the model?

Trains lenet5 on 28×28×1 images (Fashion-MNIST when ``recipes.data`` finds it on disk, else random
images with the same shape and pixel scale) for one epoch at a time in three set-ups, interleaved
A B C A B C … so that load from other processes hits all three alike, and reports median epoch times:

- ``off``:      no augmentation (the floor);
- ``pipeline``: the policy's layers mapped over batches in tf.data (num_parallel_calls=AUTOTUNE, prefetch);
- ``model``:    the same layers as the first layers of the model (run inside the compiled train step).

    python bench/augment_placement.py --quick          # about a minute on 2 CPU cores
    python bench/augment_placement.py --images 8192 --rounds 7 --policy clothes

Prints a table and writes ``bench/results/augment_placement.json``. ``recipes.augment.AUGMENT_IN_MODEL``
records the winner by hand, with the numbers, in that module's docstring.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import zoo  # noqa: E402

zoo.load()  # quiets TensorFlow's start-up lines
from bench import common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from recipes import augment  # noqa: E402
from recipes.data import DataError, DataSplits, load_data, train_dataset  # noqa: E402
from recipes.modeling import build_model, training_model  # noqa: E402

SETUPS = ("off", "pipeline", "model")


def load_images(images: int, seed: int, source: str) -> DataSplits:
    """Fashion-MNIST's first ``images`` training images (random 28×28 images when it is not on disk)."""
    if source in ("auto", "fashion_mnist"):
        try:
            return load_data("fashion_mnist", limit=images, test_limit=100, seed=seed,
                             download=source == "fashion_mnist")
        except DataError as error:
            if source == "fashion_mnist":
                raise
            print(f"Fashion-MNIST not on disk ({error}); using random 28×28 images", file=sys.stderr)
    rng = np.random.default_rng(seed)
    n_val = max(1, images // 10)
    x = rng.integers(0, 256, size=(images + 100, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, size=images + 100).astype(np.int32)
    return DataSplits("random28", x[:images - n_val], y[:images - n_val], x[images - n_val:images],
                      y[images - n_val:images], x[images:], y[images:], (28, 28, 1), 10,
                      [str(i) for i in range(10)], "clothes", None, "numpy random")


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def setup(name: str, splits: DataSplits, policy: str, batch_size: int, seed: int, *, model_name: str = "lenet5",
          batch_norm: bool | None = None):
    """The model and training dataset of set-up ``name`` (one of ``SETUPS``); batch norm only off for LeNet-5."""
    placement = "model" if name == "model" else "pipeline"
    used = "none" if name == "off" else policy
    keras.utils.set_random_seed(seed)
    bn = model_name != "lenet5" if batch_norm is None else batch_norm
    model = training_model(build_model(model_name, splits, zoo.Regularization(batch_norm=bn)), splits, used,
                           seed=seed, placement=placement)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    dataset = train_dataset(splits, batch_size, augmentation=used, seed=seed, placement=placement)
    return model, dataset


def run(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,096 images, 5 rounds (about a minute)")
    parser.add_argument("--images", type=int, default=None, help="training images (default 8,192; quick 4,096)")
    parser.add_argument("--rounds", type=int, default=None, help="timed epochs per set-up (default 9; quick 5)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--policy", default="digits", choices=[p for p in augment.POLICIES if p != "none"])
    parser.add_argument("--data", default="auto", choices=("auto", "fashion_mnist", "random"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join(HERE, "results", "augment_placement.json"))
    args = parser.parse_args(argv)
    images = args.images or (4096 if args.quick else 8192)
    rounds = args.rounds or (5 if args.quick else 9)

    splits = load_images(images, args.seed, args.data)
    setups = {name: setup(name, splits, args.policy, args.batch_size, args.seed) for name in SETUPS}
    timers = {name: EpochTimer() for name in SETUPS}
    for name, (model, dataset) in setups.items():  # warm-up: tracing and the first pass through the data
        model.fit(dataset, epochs=1, verbose=0)
    for _ in range(rounds):
        for name in SETUPS:  # interleaved: off, pipeline, model, off, pipeline, model, ...
            model, dataset = setups[name]
            model.fit(dataset, epochs=1, verbose=0, callbacks=[timers[name]])

    medians = {name: statistics.median(timers[name].seconds) for name in SETUPS}
    winner = "model" if medians["model"] < medians["pipeline"] else "pipeline"
    steps = -(-len(splits.y_train) // args.batch_size)
    print(f"lenet5, {len(splits.y_train)} images {splits.input_shape} from {splits.source}, policy "
          f"{args.policy!r}, batch {args.batch_size} ({steps} steps), {rounds} interleaved rounds, "
          f"{os.cpu_count()} CPUs")
    print(f"{'set-up':<10} {'median s/epoch':>15} {'min':>8} {'max':>8} {'vs off':>8} {'ms/step':>8}")
    for name in SETUPS:
        times = timers[name].seconds
        print(f"{name:<10} {medians[name]:>15.3f} {min(times):>8.3f} {max(times):>8.3f} "
              f"{medians[name] / medians['off']:>7.2f}× {1000 * medians[name] / steps:>8.1f}")
    print(f"faster placement: {winner} (pipeline/model = {medians['pipeline'] / medians['model']:.2f})")

    result = {
        "command": " ".join(["python bench/augment_placement.py", *(sys.argv[1:] if argv is None else argv)]),
        "model": "lenet5", "data": splits.source, "images": int(len(splits.y_train)),
        "input_shape": list(splits.input_shape), "policy": args.policy, "batch_size": args.batch_size,
        "rounds": rounds, "seconds_per_epoch": {n: timers[n].seconds for n in SETUPS},
        "median_seconds_per_epoch": medians, "faster": winner,
        "machine": common.machine(),
    }
    common.write_json(args.output, result)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    run()
