"""Which ops take a training step's time: a TensorFlow profiler trace of a family's benchmark model, summed
per op type over the executor threads (``tf_Compute``), as shares of the op time.

    python bench/profile_step.py --model googlenet_small --batch 64
    python bench/profile_step.py --model resnet20 --batch 128 --steps 10

The model is ``bench/speed.py``'s (28×28×1, the ``full`` preset's regularization, SGD momentum) training on one
random batch repeated; 5 untimed steps, then ``--steps`` traced ones. ``_MklNative*`` ops are oneDNN's kernels
(oneDNN on, as the command lines run). Prints the table; writes nothing but the trace under ``--logdir``.
"""

from __future__ import annotations

import collections
import glob
import os
import sys
import tempfile
from typing import Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402


def op_shares(logdir: str) -> list[tuple[str, float]]:
    """(op type, share of the summed op time) from the newest ``.xplane.pb`` under ``logdir``, largest first."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as handle:
        space.ParseFromString(handle.read())
    totals: collections.Counter = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                op = names.get(event.metadata_id, "?").split(":")[-1]
                if op != "Process":  # a work item that encloses op events: counted through them
                    totals[op] += event.duration_ps
    total = sum(totals.values()) or 1
    return [(op, ps / total) for op, ps in totals.most_common()]


def _parser():
    from zoo.cli import ArgumentParser

    parser = ArgumentParser(prog="bench/profile_step.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=common.names_in(("lenet5", "alexnet_small", "googlenet_small", "resnet20",
                                                          "lstm"), "model"), default=["googlenet_small"])
    parser.add_argument("--batch", type=common.positive_int, default=64)
    parser.add_argument("--steps", type=common.positive_int, default=10)
    parser.add_argument("--top", type=common.positive_int, default=15, help="op types printed")
    parser.add_argument("--logdir", default=None, help="where the trace goes (default: a temporary folder)")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import tensorflow as tf

    from bench.speed import Trainer, _family_model, _input_shape

    name = args.model[0]
    model = _family_model(name, _input_shape(name, 28))
    trainer = Trainer(model, args.batch, 10, call_seconds=0.1)
    trainer._fit(5)
    logdir = args.logdir or tempfile.mkdtemp(prefix="profile_step.")
    tf.profiler.experimental.start(logdir)
    trainer._fit(args.steps)
    tf.profiler.experimental.stop()
    shares = op_shares(logdir)
    print(common.markdown_table(["op", "share of op time"], [[op, f"{share:.1%}"] for op, share in shares[:args.top]]))
    conv = sum(share for op, share in shares if "Conv2D" in op)
    print(f"{name}, batch {args.batch}: convolutions (forward and both gradients) {conv:.1%} of the op time; "
          f"oneDNN {'on' if any(op.startswith('_Mkl') for op, _ in shares) else 'off'}; trace in {logdir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(run, argv, "bench/profile_step.py")


if __name__ == "__main__":
    sys.exit(main())
