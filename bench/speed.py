"""Training speed against the machine's own limit: ResNet-50 parity, model-FLOP utilization, augmentation
cost, and jit_compile / mixed_bfloat16 on and off.

    python bench/speed.py                       # everything, about 10 minutes on 2 CPU cores
    python bench/speed.py --parts mfu,precision # some parts
    python bench/speed.py --quick               # smoke run: small inputs, 2 rounds

Every comparison is interleaved (A B A B … for ``--rounds`` rounds, after one untimed warm-up call each)
and reported as medians, so that load from elsewhere hits both sides alike. A "call" trains a compiled
model for ``steps`` steps with ``model.fit`` on one batch of random inputs repeated (``steps`` chosen once so
that a call lasts about ``--call-seconds``); the input pipeline and augmentation are not in it, except in
the ``augment`` part, which times real epochs.

Parts (``--parts``):

- ``matmul``: the fp32 peak — a 2048×2048 by 2048×2048 ``tf.linalg.matmul`` (2·2048³ FLOPs), timed between
  the other measurements all through the run; its median is the denominator of every MFU figure.
- ``resnet50``: zoo ResNet-50 with keras.applications' conventions (``stride_on="1x1", use_bias=True,
  bn_epsilon=1.001e-5``: the same layers and weights) vs ``keras.applications.ResNet50(weights=None)``,
  224×224×3, 1000 classes, batch ``--resnet50-batch``, SGD momentum: images/s and the ratio (goal ≥ 1.00).
- ``mfu``: images/s of each family's benchmark model (``bench/accuracy.py``'s rows, 28×28 Fashion-MNIST
  input, its batch size, BN on as in the full preset), and MFU = 3 × forward MACs × 2 × images/s ÷ peak
  (training ≈ forward + 2 × forward for the gradients; ``zoo.summary`` counts the MACs of convolutions,
  dense and recurrent layers; goal ≥ 50 % for the conv families).
- ``augment``: real epochs on Fashion-MNIST with the "clothes" policy off, in the tf.data pipeline and in
  the model (goal: ≤ 5 % over off), for LeNet-5 and ResNet-20.
- ``precision``: float32 vs ``mixed_bfloat16`` and ``jit_compile`` off vs on, for every family's model
  of ``mfu`` (medians, and the best call: see ``part_precision``).

Writes ``bench/results/speed.json`` (``bench/results/quick/speed.json`` with ``--quick``).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from typing import Any, Callable, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402

PARTS = ("matmul", "resnet50", "mfu", "augment", "precision")
MATMUL_N = 2048
# The accuracy benchmark's models: batch size of their recipe (recipes.recipe.FAMILY_DEFAULTS / bench/accuracy.py).
MFU_MODELS = {"lenet5": 64, "alexnet_small": 128, "googlenet_small": 64, "resnet20": 128, "lstm": 64}
CONV_FAMILIES = ("alexnet", "inception", "resnet")
PRECISION_MODELS = tuple(MFU_MODELS)
AUGMENT_MODELS = {"lenet5": 64, "resnet20": 128}


class Peak:
    """The fp32 matmul peak, sampled whenever :meth:`sample` is called (between other measurements)."""

    def __init__(self, n: int = MATMUL_N, reps: int = 10) -> None:
        import tensorflow as tf

        self.n, self.reps = n, reps
        a = tf.random.stateless_normal((n, n), seed=(1, 2))
        b = tf.random.stateless_normal((n, n), seed=(3, 4)) / math.sqrt(n)  # keeps the chain's scale

        @tf.function
        def chain():  # a chain, not ``reps`` copies of one product: Grappler would merge identical matmuls
            c = a
            for _ in range(reps):
                c = tf.linalg.matmul(c, b)
            return tf.reduce_sum(c)  # all of c, so that no part of the chain can be pruned

        self._chain = chain
        self._chain()  # trace and warm up
        self.flops: list[float] = []

    def sample(self) -> float:
        start = time.perf_counter()
        self._chain().numpy()
        seconds = (time.perf_counter() - start) / self.reps
        self.flops.append(2.0 * self.n ** 3 / seconds)
        return self.flops[-1]

    @property
    def median(self) -> float:
        return statistics.median(self.flops)


class Trainer:
    """A compiled model training on one random batch repeated; ``call()`` times ``steps`` steps."""

    def __init__(self, model, batch: int, classes: int, *, jit_compile: bool | str = False, seed: int = 0,
                 call_seconds: float = 2.0) -> None:
        import keras
        import numpy as np
        import tensorflow as tf

        shape = tuple(model.input_shape[1:])
        rng = np.random.default_rng(seed)
        x = rng.uniform(0, 255, size=(batch, *shape)).astype("float32")
        y = rng.integers(0, classes, size=(batch,)).astype("int32")
        self.dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
        self.model, self.batch = model, batch
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy",
                      jit_compile=jit_compile)
        self._fit(2)  # trace, compile, first steps
        seconds = self._fit(3) / 3
        self.steps = max(2, math.ceil(call_seconds / max(seconds, 1e-4)))
        self.seconds: list[float] = []

    def _fit(self, steps: int) -> float:
        start = time.perf_counter()
        self.model.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        return time.perf_counter() - start

    def call(self) -> float:
        self.seconds.append(self._fit(self.steps) / self.steps)
        return self.seconds[-1]

    @property
    def images_per_second(self) -> float:
        return self.batch / statistics.median(self.seconds)

    @property
    def best_images_per_second(self) -> float:
        """From the fastest call: the machine's speed when nothing took a core away (see ``part_precision``)."""
        return self.batch / min(self.seconds)


def interleave(trainers: dict[str, Trainer], rounds: int, peak: Peak) -> None:
    """A B C … A B C …, sampling the matmul peak once per round."""
    for _ in range(rounds):
        peak.sample()
        for trainer in trainers.values():
            trainer.call()


def forward_macs(model) -> int:
    import zoo

    return zoo.summary(model, print_fn=None).macs


def _release(*objects) -> None:
    import gc

    import keras

    del objects
    keras.backend.clear_session()
    gc.collect()


def part_resnet50(args, peak: Peak) -> dict[str, Any]:
    import keras

    import zoo

    size = args.resnet50_size
    shape = (size, size, 3)
    keras.utils.set_random_seed(0)
    ours = zoo.build("resnet50", input_shape=shape, stride_on="1x1", use_bias=True, bn_epsilon=1.001e-5)
    theirs = keras.applications.ResNet50(weights=None, input_shape=shape)
    assert ours.count_params() == theirs.count_params(), (ours.count_params(), theirs.count_params())
    macs = forward_macs(ours)
    trainers = {"zoo": Trainer(ours, args.resnet50_batch, 1000, call_seconds=args.call_seconds),
                "keras.applications": Trainer(theirs, args.resnet50_batch, 1000, call_seconds=args.call_seconds)}
    interleave(trainers, args.rounds, peak)
    ips = {name: t.images_per_second for name, t in trainers.items()}
    result = {
        "input_shape": list(shape), "batch": args.resnet50_batch, "params": ours.count_params(),
        "forward_macs": macs, "steps_per_call": {n: t.steps for n, t in trainers.items()},
        "seconds_per_step": {n: t.seconds for n, t in trainers.items()},
        "images_per_second": ips, "ratio_zoo_over_keras": ips["zoo"] / ips["keras.applications"],
        "mfu": {n: 3 * macs * 2 * v / peak.median for n, v in ips.items()},
    }
    print(f"ResNet-50 {size}×{size}, batch {args.resnet50_batch}: zoo {ips['zoo']:.2f} img/s, "
          f"keras.applications {ips['keras.applications']:.2f} img/s, ratio {result['ratio_zoo_over_keras']:.3f}",
          flush=True)
    _release(ours, theirs, trainers)
    return result


def _family_model(name: str, input_shape: tuple[int, ...], **kwargs):
    import keras

    import zoo
    from recipes.recipe import preset

    keras.utils.set_random_seed(0)
    reg = preset(name, "full").regularization
    return zoo.build(name, input_shape=input_shape, classes=10, regularization=reg, **kwargs)


def _input_shape(name: str, size: int) -> tuple[int, ...]:
    return (size, size) if name == "lstm" else (size, size, 1)


def part_mfu(args, peak: Peak) -> dict[str, Any]:
    import zoo

    rows = {}
    for name, batch in MFU_MODELS.items():  # one model at a time (memory), each against the peak
        model = _family_model(name, _input_shape(name, args.image_size))
        macs = forward_macs(model)
        trainer = Trainer(model, batch, 10, call_seconds=args.call_seconds)
        interleave({name: trainer}, args.rounds, peak)
        ips = trainer.images_per_second
        family = zoo.get_entry(name).family
        rows[name] = {"family": family, "batch": batch, "input_shape": list(model.input_shape[1:]),
                      "params": model.count_params(), "forward_macs": macs, "images_per_second": ips,
                      "achieved_gflops": 3 * macs * 2 * ips / 1e9, "mfu": 3 * macs * 2 * ips / peak.median,
                      "goal": 0.5 if family in CONV_FAMILIES else None, "steps_per_call": trainer.steps,
                      "seconds_per_step": trainer.seconds}
        print(f"{name}: {ips:.0f} img/s, {macs / 1e6:.2f} M MACs, {rows[name]['achieved_gflops']:.1f} GFLOP/s, "
              f"MFU {rows[name]['mfu']:.1%} of {peak.median / 1e9:.0f} GFLOP/s", flush=True)
        _release(model, trainer)
    return rows


def part_precision(args, peak: Peak) -> dict[str, Any]:
    """Images/s of every family in float32 / mixed_bfloat16 × jit off / on, interleaved.

    Medians, and the best call too: on the shared 2-core machine a call's time is bimodal (one mode about
    twice the other: a core taken away for a while), so small speed-ups drown in the medians' noise.
    """
    from recipes.modeling import dtype_policy

    rows = {}
    for name in PRECISION_MODELS:
        batch = MFU_MODELS[name]
        trainers = {}
        for precision in ("float32", "mixed_bfloat16"):
            for jit in (False, True):
                with dtype_policy(precision):
                    model = _family_model(name, _input_shape(name, args.image_size))
                trainers[f"{precision}, jit_compile={jit}"] = Trainer(model, batch, 10, jit_compile=jit,
                                                                       call_seconds=args.call_seconds)
        interleave(trainers, args.rounds, peak)
        ips = {key: t.images_per_second for key, t in trainers.items()}
        best = {key: t.best_images_per_second for key, t in trainers.items()}
        base = "float32, jit_compile=False"
        rows[name] = {"batch": batch, "images_per_second": ips, "best_images_per_second": best,
                      "speedup_vs_float32_no_jit": {k: v / ips[base] for k, v in ips.items()},
                      "best_speedup_vs_float32_no_jit": {k: v / best[base] for k, v in best.items()},
                      "fastest": max(ips, key=ips.get), "fastest_best": max(best, key=best.get),
                      "seconds_per_step": {key: t.seconds for key, t in trainers.items()}}
        print(f"{name}: " + ", ".join(f"{k} {v:.0f} img/s ({v / ips[base]:.2f}×, best {best[k] / best[base]:.2f}×)"
                                      for k, v in ips.items()), flush=True)
        _release(trainers)
    return rows


def part_augment(args, peak: Peak) -> dict[str, Any]:
    from bench.augment_placement import SETUPS, EpochTimer, load_images, setup

    splits = load_images(args.augment_images, 0, "auto")
    rows = {}
    for name, batch in AUGMENT_MODELS.items():
        setups = {s: setup(s, splits, "clothes", batch, 0, model_name=name) for s in SETUPS}
        timers = {s: EpochTimer() for s in SETUPS}
        for model, dataset in setups.values():
            model.fit(dataset, epochs=1, verbose=0)
        for _ in range(args.rounds):
            peak.sample()
            for s in SETUPS:
                model, dataset = setups[s]
                model.fit(dataset, epochs=1, verbose=0, callbacks=[timers[s]])
        medians = {s: statistics.median(timers[s].seconds) for s in SETUPS}
        rows[name] = {"batch": batch, "images": int(len(splits.y_train)), "data": splits.source,
                      "median_seconds_per_epoch": medians,
                      "extra_vs_off": {s: medians[s] / medians["off"] - 1 for s in SETUPS if s != "off"},
                      "seconds_per_epoch": {s: timers[s].seconds for s in SETUPS}}
        print(f"{name} + clothes: " + ", ".join(f"{s} {v:.2f} s" for s, v in medians.items())
              + " (" + ", ".join(f"{s} {v:+.1%}" for s, v in rows[name]["extra_vs_off"].items()) + ")", flush=True)
        _release(setups)
    return rows


def _parser():
    from zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="bench/speed.py", description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=common.names_in(PARTS, "parts"), default=list(PARTS),
                        help=f"comma-separated (default all: {','.join(PARTS)})")
    parser.add_argument("--rounds", type=common.positive_int, default=None, help="interleaved rounds (default 5)")
    parser.add_argument("--call-seconds", type=common.positive_float, default=None,
                        help="about how long one timed call lasts (default 2)")
    parser.add_argument("--resnet50-batch", type=common.positive_int, default=None, help="default 16")
    parser.add_argument("--resnet50-size", type=common.positive_int, default=None, help="default 224")
    parser.add_argument("--image-size", type=common.positive_int, default=28,
                        help="input size of the mfu and precision models (default 28, Fashion-MNIST)")
    parser.add_argument("--augment-images", type=common.positive_int, default=None, help="default 4096")
    parser.add_argument("--output", default=None, help="the JSON (default bench/results/speed.json)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds, short calls, small ResNet-50")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (2 if quick else 5)
    args.call_seconds = args.call_seconds or (0.3 if quick else 2.0)
    args.resnet50_batch = args.resnet50_batch or (2 if quick else 16)
    args.resnet50_size = args.resnet50_size or (64 if quick else 224)
    args.augment_images = args.augment_images or (512 if quick else 4096)
    if args.resnet50_size < 32:
        raise ValueError(f"--resnet50-size must be >= 32 (ResNet-50 downsamples 32×), got {args.resnet50_size}")
    output = common.result_path("speed.json", quick, args.output)
    watch = common.Stopwatch()
    peak = Peak()
    for _ in range(3):
        peak.sample()
    print(f"fp32 matmul {MATMUL_N}²: {peak.median / 1e9:.0f} GFLOP/s (first samples)", flush=True)
    parts: dict[str, Callable] = {"resnet50": part_resnet50, "mfu": part_mfu, "augment": part_augment,
                                  "precision": part_precision}
    results: dict[str, Any] = {}
    for name in args.parts:
        if name in parts:
            results[name] = parts[name](args, peak)
    results["matmul"] = {"n": MATMUL_N, "flops_samples": peak.flops, "median_flops": peak.median,
                         "median_gflops": peak.median / 1e9, "samples": len(peak.flops)}
    print(f"fp32 matmul {MATMUL_N}²: median {peak.median / 1e9:.0f} GFLOP/s over {len(peak.flops)} samples "
          f"(min {min(peak.flops) / 1e9:.0f}, max {max(peak.flops) / 1e9:.0f})")
    run_info = dict(command=common.command("speed.py", argv), machine=common.machine(), quick=quick,
                    rounds=args.rounds, call_seconds=args.call_seconds, wall_time_s=round(watch(), 1),
                    finished=time.strftime("%Y-%m-%d %H:%M:%S"))
    if set(args.parts) != set(PARTS) and output.exists():
        # A partial run replaces its own parts and says so; the full run's peak and header stay, unless
        # a part that divides by the peak (resnet50, mfu) was re-measured.
        old = common.read_json(output, {})
        if not {"matmul", "resnet50", "mfu"} & set(args.parts):
            results.pop("matmul")
        for part in results:
            old.setdefault("partial_runs", {})[part] = run_info
        old.update(results)
        results = old
    else:
        results.update(run_info)
    common.write_json(output, results)
    print(f"wrote {output} ({watch():.0f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(run, argv, "bench/speed.py")


if __name__ == "__main__":
    sys.exit(main())
