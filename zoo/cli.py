"""The ``zoo`` command: ``zoo list [PATTERN]``, ``zoo weights [NAME]``, ``zoo predict MODEL --weights W FILE...``,
``zoo export SOURCE --weights W --format saved_model|tflite``, ``zoo summary NAME [--input-shape H,W,C] [--classes N]``,
``zoo gradcheck NAME [--input-shape H,W,C] [--classes N] [--batch N] [--l2 λ] [--seed S] [--max-params N]``
and ``zoo activations NAME [--activation A] [--init I] [--batch N] [--plot PNG]``.

Bad arguments exit with status 2 and one line on stderr, no traceback. ``zoo gradcheck`` exits 0 when the
gradients agree ("fine" or "look closer") and 1 when the check finds a bug.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from zoo.catalog import ACTIVATIONS, INITIALIZERS, check_model_name


class UsageError(Exception):
    """A bad command-line argument: printed as one line, exit status 2."""


class DefaultsOnceFormatter(argparse.HelpFormatter):
    """Help that states each option's default once: appended as ``(default: X)`` unless the help text
    already says it, never for flags; an option whose default is None says ``none_means`` (e.g. "the
    preset's") or nothing."""

    none_means = ""
    _FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction,
              argparse._HelpAction, argparse._VersionAction, argparse._AppendAction)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or "default" in text or isinstance(action, self._FLAGS) \
                or action.default is argparse.SUPPRESS:
            return text
        if action.default is None:
            return f"{text} (default: {self.none_means})" if self.none_means else text
        return f"{text} (default: %(default)s)"


def defaults_formatter(none_means: str = "") -> type:
    """A :class:`DefaultsOnceFormatter` whose None defaults read ``(default: <none_means>)``."""
    return type("DefaultsFormatter", (DefaultsOnceFormatter,), {"none_means": none_means})


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing usage and exiting (one-line errors).

    Every command line of the project (``zoo``, the recipes, ``python -m tuning``) uses it with
    :func:`cli_main`; its help states each default once (:class:`DefaultsOnceFormatter`).
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsOnceFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")

    def error(self, message: str) -> None:
        raise UsageError(f"{self.prog}: {message}")


def package_version() -> str:
    """The installed distribution's version (``pyproject.toml``), or "unknown" when run from a bare checkout."""
    from importlib import metadata

    try:
        return metadata.version("keras-zoo-recipes")
    except metadata.PackageNotFoundError:
        return "unknown"


# What a command line reports as one line with exit status 2: bad arguments, bad values, bad files.
USER_ERRORS = (UsageError, ValueError, FileNotFoundError, PermissionError, NotADirectoryError,
               IsADirectoryError, FileExistsError)


def cli_main(run_fn: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None, prog: str) -> int:
    """Run ``run_fn(argv)``; a user error becomes one line on stderr and exit status 2, no traceback.

    Ctrl-C gives one line and status 130; a reader that closed the pipe (``zoo list | head -1``) ends it
    quietly with 141, as a SIGPIPE'd Unix tool does.
    """
    try:
        return run_fn(argv)
    except BrokenPipeError:
        # Python's recipe (docs: "Note on SIGPIPE"): point stdout at devnull so the exit flush stays silent
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except USER_ERRORS as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(message if message.startswith(prog) else f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def load_zoo() -> None:
    """Import Keras and every builder (quietly): a command line calls it once its arguments are checked."""
    import zoo

    zoo.load()


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--input-shape must be comma-separated positive integers such as 32,32,3, got {text!r}"
        ) from None
    if not shape or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"--input-shape sizes must be positive, got {text!r}")
    return shape


def _number(cast: type, low: float, high: float | None = None, *, low_open: bool = False,
            high_open: bool = False):
    """An argparse ``type`` for a number in a range; argparse's error names the flag, ours the value and range."""
    if high is None:
        allowed = f"{'>' if low_open else '>='} {low:g}"
    else:
        allowed = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    kind = "an integer" if cast is int else "a number"

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {kind} {allowed}, got {text!r}") from None
        above_low = value > low if low_open else value >= low
        below_high = high is None or (value < high if high_open else value <= high)
        if not (above_low and below_high) or value in (float("inf"), float("-inf")):  # NaN fails above_low
            raise argparse.ArgumentTypeError(f"must be {kind} {allowed}, got {text!r}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="zoo", description="Keras 3 model zoo: list, summarize and gradient-check models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    p_list = sub.add_parser("list", help="list registered models")
    p_list.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'resnet*'")
    p_sum = sub.add_parser("summary", help="per-layer output shape, parameters, MACs and totals")
    p_sum.add_argument("name", help="a registered model (zoo list)")
    p_sum.add_argument("--input-shape", type=parse_shape, default=None,
                       help="H,W,C (or T,F for sequences; default: the model's own)")
    p_sum.add_argument("--classes", type=int, default=None, help="output classes (default: the model's own)")
    p_sum.add_argument("--no-batch-norm", action="store_true",
                       help="batch norm off, the rest of the model's own regularization kept")
    p_gc = sub.add_parser(
        "gradcheck", help="back-propagated gradients vs two-sided differences, in float64 (zoo.gradcheck)",
        description="Gradient check of a registered model on a small random batch: a sample of entries of "
                    "every trainable weight, relative difference per weight and overall, and the notes' "
                    "verdict (≲1e-7 fine, ~1e-5 look closer, ≳1e-3 bug). Exit 0 unless it finds a bug (1).")
    p_gc.add_argument("name")
    p_gc.add_argument("--input-shape", type=parse_shape, default=None,
                      help="default: the registry's small input shape")
    p_gc.add_argument("--classes", type=_number(int, 1), default=3, help="default 3")
    p_gc.add_argument("--batch", type=_number(int, 1), default=4,
                      help="examples in the random batch (default 4; BN in training mode needs 2 or more)")
    p_gc.add_argument("--l2", type=_number(float, 0.0), default=1e-3,
                      help="L2 λ, so that the penalty is part of J (default 1e-3)")
    p_gc.add_argument("--keep-prob", type=_number(float, 0.0, 1.0, low_open=True),
                      default=1.0, help="build with Dropout (it is switched off while checking; default 1)")
    p_gc.add_argument("--no-batch-norm", action="store_true", help="Regularization(batch_norm=False)")
    p_gc.add_argument("--inference", action="store_true",
                      help="evaluate J in inference mode (BN on moving statistics); default: training mode")
    p_gc.add_argument("--seed", type=_number(int, 0), default=0,
                      help="seeds the weights, the batch and the sampled entries (default 0)")
    p_gc.add_argument("--max-params", type=_number(int, 1), default=5,
                      help="entries checked per trainable weight (default 5)")
    p_gc.add_argument("--epsilon", type=_number(float, 0.0, 1.0, low_open=True, high_open=True),
                      default=None, help="the step ε (default 1e-6)")
    p_act = sub.add_parser(
        "activations", help="per-layer activation mean/std and kernel-gradient norm after initialization",
        description="Feeds a batch of N(0, 1) inputs through a freshly built model (inference mode) and one "
                    "backward pass of the cross-entropy: each layer's output mean and std and the gradient "
                    "norm of its kernel (zoo.activation_stats). A collapsing or exploding std with depth is "
                    "a bad initialization (course notes, seed 004).")
    p_act.add_argument("name", help="a registered model (zoo list)")
    p_act.add_argument("--activation", choices=ACTIVATIONS, default=None,
                       help="hidden activation, for builders that take one (lenet5; default: the builder's)")
    p_act.add_argument("--init", choices=INITIALIZERS, default=None,
                       help="kernel initializer, for builders that take one (default: He for ReLU, Glorot else)")
    p_act.add_argument("--input-shape", type=parse_shape, default=None, help="H,W,C (default: the model's own)")
    p_act.add_argument("--classes", type=_number(int, 2), default=10, help="output classes")
    p_act.add_argument("--batch", type=_number(int, 1), default=256, help="examples in the random batch")
    p_act.add_argument("--seed", type=_number(int, 0), default=0, help="seeds the weights, the batch and the labels")
    p_act.add_argument("--plot", default=None, metavar="PNG", help="also draw the two curves into this file")
    sub.add_parser("setup", help="the numeric set-up runs record: oneDNN, thread pools, CPU flags, versions",
                   description="Prints, as JSON, what every run records in its metrics.json and config.json "
                               "(zoo._quiet.numeric_setup): the backend, oneDNN on or off (our command lines "
                               "turn it on unless TF_ENABLE_ONEDNN_OPTS is set), TensorFlow's thread pools, "
                               "the processor and its vector flags, the library versions.")
    from zoo import cli_weights, export

    cli_weights.add_commands(sub)
    export.add_export_arguments(sub.add_parser(
        "export", help="SavedModel, TFLite or ONNX of shipped weights or a run's model, checked against Keras",
        description="Export a model with shipped weights (SOURCE a model name and --weights), a run folder's "
                    "model.keras or a .keras file, and check the export against Keras' predict on --check "
                    "inputs (SavedModel within 1e-5, TFLite float32 within 1e-4, ONNX within 1e-4); a failed "
                    "check leaves nothing behind and exits 1."))
    return parser


def _random_inputs(entry, model, shape: tuple, batch: int, rng, dtype: str = "float64"):
    """A random batch for ``model``: token ids in its vocabulary for text, N(0, 1) values of ``dtype`` else."""
    import keras

    if entry.kind == "text":
        vocab = next((layer.input_dim for layer in model.layers if isinstance(layer, keras.layers.Embedding)), 2)
        return rng.integers(1, max(vocab, 2), size=(batch, *shape))
    return rng.standard_normal((batch, *shape)).astype(dtype, copy=False)


def _activations(args: argparse.Namespace) -> int:
    import numpy as np

    import keras
    import zoo

    entry = zoo.get_entry(args.name)
    kwargs: dict = {"classes": args.classes}
    if args.input_shape is not None:
        kwargs["input_shape"] = args.input_shape
    for option, argument in (("activation", "activation"), ("init", "initializer")):
        value = getattr(args, option)
        if value is None:
            continue
        if not entry.accepts(argument):
            takers = [n for n in zoo.list_models() if zoo.get_entry(n).accepts(argument)]
            raise UsageError(f"zoo activations: argument --{option}: {args.name}'s builder takes no {argument}; "
                             f"models whose builder does: {', '.join(takers) or 'none'}")
        kwargs[argument] = value
    if args.plot is not None and not args.plot.endswith(".png"):
        raise UsageError(f"zoo activations: argument --plot: must name a .png file, got {args.plot!r}")
    keras.utils.set_random_seed(args.seed)
    model = entry.build(**kwargs)
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(args.seed)
    x = _random_inputs(entry, model, shape, args.batch, rng, dtype="float32")
    stats = zoo.activation_stats(model, x, seed=args.seed)
    chosen = ", ".join(f"{k} {v}" for k, v in kwargs.items() if k in ("activation", "initializer")) or "defaults"
    print(f"zoo activations {args.name}: input {shape}, batch {args.batch} of N(0, 1), {chosen}")
    print(stats.report())
    print(f"std of the last hidden layer / the first: {zoo.activations.spread_ratio(stats):.3g}")
    if args.plot:
        stats.plot(args.plot, title=f"{args.name} ({chosen})")
        print(f"wrote {args.plot}")
    return 0


def _gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    import keras
    import zoo

    entry = zoo.get_entry(args.name)
    shape = tuple(args.input_shape) if args.input_shape is not None else entry.small_input_shape
    keras.utils.set_random_seed(args.seed)
    regularization = zoo.Regularization(l2=args.l2, keep_prob=args.keep_prob,
                                        batch_norm=not args.no_batch_norm)
    model = entry.build(input_shape=shape, classes=args.classes, regularization=regularization)
    rng = np.random.default_rng(args.seed)
    x = _random_inputs(entry, model, shape, args.batch, rng)
    y = rng.integers(0, args.classes, size=args.batch)
    options = {} if args.epsilon is None else {"epsilon": args.epsilon}
    result = zoo.gradcheck(model, x, y, max_params=args.max_params, seed=args.seed,
                           training=not args.inference, **options)
    print(f"zoo gradcheck {args.name}: input {shape}, {args.classes} classes, batch {args.batch}, "
          f"{regularization}")
    print(result.report())
    return 0 if result.ok else 1


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "weights":  # the records only: no TensorFlow
        from zoo.cli_weights import run_weights

        return run_weights(args)
    if args.command == "export":
        from zoo.export import run_export

        return run_export(args)
    if getattr(args, "name", None) is not None:
        try:
            check_model_name(args.name)  # before Keras: a bad name answers at once
        except ValueError as error:
            raise UsageError(f"zoo {args.command}: argument name: {error}") from None
    load_zoo()
    import zoo

    if args.command == "setup":
        import json

        from zoo._quiet import numeric_setup

        print(json.dumps(numeric_setup(), indent=2))
        return 0
    if args.command == "predict":
        from zoo.cli_weights import run_predict

        return run_predict(args)
    if args.command == "gradcheck":
        return _gradcheck(args)
    if args.command == "activations":
        return _activations(args)
    if args.command == "list":
        print(f"{'name':<22} {'family':<10} {'default input':<16} {'parameters':>12}  description")
        for name in zoo.list_models(args.pattern):
            entry = zoo.get_entry(name)
            params = "-" if entry.params is None else f"{entry.params:,}"
            print(f"{name:<22} {entry.family:<10} {str(entry.default_input_shape):<16} {params:>12}  "
                  f"{entry.description}")
        return 0
    entry = zoo.get_entry(args.name)
    kwargs = {}
    if args.input_shape is not None:
        kwargs["input_shape"] = args.input_shape
    if args.classes is not None:
        kwargs["classes"] = args.classes
    if args.no_batch_norm:
        kwargs["regularization"] = {"batch_norm": False}  # only BN off; the rest stays the paper's
    zoo.summary(entry.build(**kwargs))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(run, argv, "zoo")


if __name__ == "__main__":
    sys.exit(main())
