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
- ``onednn``: oneDNN off vs on (``TF_ENABLE_ONEDNN_OPTS=0`` / ``1``: it must be set before TensorFlow is
  imported, so two worker processes, ``python bench/speed.py --serve``, train side by side and the calls
  alternate between them), and on top of oneDNN ``steps_per_execution`` 1 vs ``ONEDNN_SPE``: images/s, the
  speed-up and the MFU of every family's model of ``mfu`` under each setting (each worker measures its own
  matmul peak; MFU divides by the higher of the two, the machine's fp32 peak).

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

PARTS = ("matmul", "resnet50", "mfu", "augment", "precision", "onednn")
ONEDNN_SPE = 32  # the steps_per_execution compared with 1 on top of oneDNN
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
                 call_seconds: float = 2.0, steps_per_execution: int = 1) -> None:
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
                      jit_compile=jit_compile, steps_per_execution=steps_per_execution)
        spe = steps_per_execution
        self._fit(2 * spe)  # trace, compile, first steps
        seconds = self._fit(3 * spe) / (3 * spe)
        self.steps = spe * max(2, math.ceil(call_seconds / max(seconds, 1e-4) / spe))
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


def serve() -> int:
    """``python bench/speed.py --serve``: a worker that builds trainers and times calls on request, one JSON
    line in, one out (``part_onednn`` runs one per oneDNN setting, which must be fixed before TensorFlow is
    imported)."""
    import json
    import warnings

    from zoo._quiet import numeric_setup

    warnings.filterwarnings("ignore", message=".*shuffle=True.*")  # fit on a repeated tf.data batch
    peak, trainers = Peak(), {}
    for line in sys.stdin:
        order = json.loads(line)
        if order["op"] == "build":
            model = _family_model(order["name"], _input_shape(order["name"], order["size"]))
            trainers[order["key"]] = Trainer(model, order["batch"], 10, call_seconds=order["call_seconds"],
                                             steps_per_execution=order["spe"])
            reply = {"steps": trainers[order["key"]].steps, "macs": forward_macs(model),
                     "params": model.count_params(), "setup": numeric_setup()}
        elif order["op"] == "call":
            reply = {"seconds": trainers[order["key"]].call()}
        elif order["op"] == "peak":
            reply = {"flops": peak.sample()}
        else:  # "release"
            _release(*trainers.values())
            trainers, reply = {}, {}
        print(json.dumps(reply), flush=True)
    return 0


class _Worker:
    """One ``--serve`` process with ``TF_ENABLE_ONEDNN_OPTS=value``."""

    def __init__(self, value: str) -> None:
        import subprocess

        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=value)
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **order) -> dict[str, Any]:
        import json

        self.process.stdin.write(json.dumps(order) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench/speed.py --serve (TF_ENABLE_ONEDNN_OPTS) ended: {order}")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def part_onednn(args, peak: Peak) -> dict[str, Any]:
    """oneDNN off / on, and on with ``steps_per_execution=ONEDNN_SPE``: each family's model, interleaved."""
    workers = {"off": _Worker("0"), "on": _Worker("1")}
    settings = {"oneDNN off": ("off", 1), "oneDNN on": ("on", 1), f"oneDNN on, steps_per_execution={ONEDNN_SPE}":
                ("on", ONEDNN_SPE)}
    peaks: dict[str, list[float]] = {"off": [], "on": []}
    rows = {}
    try:
        for name, batch in MFU_MODELS.items():
            built = {key: workers[w].ask(op="build", key=key, name=name, size=args.image_size, batch=batch, spe=spe,
                                         call_seconds=args.call_seconds) for key, (w, spe) in settings.items()}
            seconds: dict[str, list[float]] = {key: [] for key in settings}
            for r in range(args.rounds):
                for w in workers:
                    peaks[w].append(workers[w].ask(op="peak")["flops"])
                for key in (list(settings) if r % 2 == 0 else list(settings)[::-1]):  # A B C, C B A, ...
                    seconds[key].append(workers[settings[key][0]].ask(op="call", key=key)["seconds"])
            for w in workers:
                workers[w].ask(op="release")
            rows[name] = _onednn_row(name, batch, built, seconds)
            print(f"{name}: " + ", ".join(f"{k} {v:.0f} img/s" for k, v in rows[name]["images_per_second"].items())
                  + f" ({rows[name]['speedup_onednn']:.2f}× from oneDNN, "
                    f"{rows[name]['speedup_steps_per_execution']:.2f}× more from steps_per_execution)", flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    machine_peak = max(statistics.median(p) for p in peaks.values())
    for row in rows.values():
        row["mfu"] = {k: 3 * row["forward_macs"] * 2 * v / machine_peak for k, v in row["images_per_second"].items()}
    return {"rows": rows, "matmul_peak_gflops": {w: statistics.median(p) / 1e9 for w, p in peaks.items()},
            "steps_per_execution": ONEDNN_SPE,
            "setups": {w: next(b["setup"] for k, b in built.items() if settings[k][0] == w) for w in workers}}


def _onednn_row(name: str, batch: int, built: dict[str, Any], seconds: dict[str, list[float]]) -> dict[str, Any]:
    import zoo

    ips = {key: batch / statistics.median(s) for key, s in seconds.items()}
    off, on, spe = list(ips)
    family = zoo.get_entry(name).family
    first = next(iter(built.values()))
    return {"family": family, "batch": batch, "params": first["params"], "forward_macs": first["macs"],
            "images_per_second": ips, "speedup_onednn": ips[on] / ips[off], "speedup_steps_per_execution": ips[spe] / ips[on],
            "ms_per_step": {k: 1000 * statistics.median(s) for k, s in seconds.items()},
            "goal_mfu": 0.5 if family in CONV_FAMILIES else None, "seconds_per_step": seconds,
            "steps_per_call": {k: b["steps"] for k, b in built.items()}}


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
                                  "precision": part_precision, "onednn": part_onednn}
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
    if list(sys.argv[1:] if argv is None else argv) == ["--serve"]:
        return serve()
    return common.main(run, argv, "bench/speed.py")


if __name__ == "__main__":
    sys.exit(main())
