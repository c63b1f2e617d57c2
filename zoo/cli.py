"""The ``zoo`` command: ``zoo list [PATTERN]`` and ``zoo summary NAME [--input-shape H,W,C] [--classes N]``.

Bad arguments exit with status 2 and one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence


class UsageError(Exception):
    """A bad command-line argument: printed as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing usage and exiting (one-line errors).

    Every command line of the project (``zoo``, the recipes, ``python -m tuning``) uses it with
    :func:`cli_main`.
    """

    def error(self, message: str) -> None:
        raise UsageError(f"{self.prog}: {message}")


# What a command line reports as one line with exit status 2: bad arguments, bad values, bad files.
USER_ERRORS = (UsageError, ValueError, FileNotFoundError, PermissionError, NotADirectoryError,
               IsADirectoryError, FileExistsError)


def cli_main(run_fn: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None, prog: str) -> int:
    """Run ``run_fn(argv)``; a user error becomes one line on stderr and exit status 2, no traceback.

    Ctrl-C gives one line and status 130.
    """
    try:
        return run_fn(argv)
    except USER_ERRORS as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(message if message.startswith(prog) else f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


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


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="zoo", description="Keras 3 model zoo: list and summarize models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    p_list = sub.add_parser("list", help="list registered models")
    p_list.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'resnet*'")
    p_sum = sub.add_parser("summary", help="per-layer output shape, parameters, MACs and totals")
    p_sum.add_argument("name")
    p_sum.add_argument("--input-shape", type=parse_shape, default=None)
    p_sum.add_argument("--classes", type=int, default=None)
    p_sum.add_argument("--no-batch-norm", action="store_true", help="Regularization(batch_norm=False)")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import zoo

    if args.command == "list":
        for name in zoo.list_models(args.pattern):
            entry = zoo.get_entry(name)
            print(f"{name:<24} {entry.family:<10} {str(entry.default_input_shape):<16} {entry.description}")
        return 0
    entry = zoo.get_entry(args.name)
    kwargs = {}
    if args.input_shape is not None:
        kwargs["input_shape"] = args.input_shape
    if args.classes is not None:
        kwargs["classes"] = args.classes
    if args.no_batch_norm:
        kwargs["regularization"] = zoo.Regularization(batch_norm=False)
    zoo.summary(entry.build(**kwargs))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(run, argv, "zoo")


if __name__ == "__main__":
    sys.exit(main())
