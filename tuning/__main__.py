"""``python -m tuning``: a KerasTuner search over a zoo model from the command line.

    python -m tuning --model lenet5 --data digits --tuner hyperband --max-trials 20
    python -m tuning --model lenet5 --data digits --tuner random --max-trials 10 \\
        --space l2=1e-6:1e-2 --space keep_prob=0.5:1.0 --fix batch_norm=true --epochs 10
    python -m tuning --model lenet5 --data digits --tuner random --chief 127.0.0.1:8000          # the oracle
    python -m tuning --model lenet5 --data digits --tuner random --worker w0 --chief 127.0.0.1:8000

Bad input prints one line on stderr and exits with status 2 before anything is written; a search that
cannot give a result (no trial completed, a lost chief) exits with 1; Ctrl-C exits with 130 and the same
command resumes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from recipes.cli import _positive_int  # one rule for every command line's counts
from zoo.cli import ArgumentParser, cli_main, load_zoo

PROG = "python -m tuning"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from tuning.choices import PRUNERS, TUNERS

    parser = ArgumentParser(
        prog=PROG,
        description="KerasTuner search over λ (L2/L1), dropout keep-prob and the learning rate of a zoo model; "
                    "the best configuration is retrained on train+validation and tested once.",
        epilog="--space NAME=LOW:HIGH[:log|linear][:STEP] or NAME=A,B,... ; --fix NAME=VALUE. Names: penalty, "
               "l2, l1, keep_prob, learning_rate, optimizer, batch_norm, augmentation, batch_size, and the "
               "model builder's own arguments (e.g. activation).")
    parser.add_argument("--model", required=True, help="a registered zoo model (python -m zoo list)")
    parser.add_argument("--data", default=None, help="digits (default), mnist, fashion_mnist, cifar10, imdb, "
                                                     "a folder or an .npz")
    parser.add_argument("--tuner", default="hyperband", help=f"one of {', '.join(TUNERS)} (default hyperband)")
    parser.add_argument("--max-trials", type=_positive_int, default=10, help="the most trials")
    parser.add_argument("--executions-per-trial", type=_positive_int, default=1,
                        help="trainings per trial with different seeds, averaged (default 1)")
    parser.add_argument("--folds", type=_positive_int, default=1,
                        help="score each trial by K-fold cross-validation on train+validation (default 1: the "
                             "validation split)")
    parser.add_argument("--epochs", type=_positive_int, default=None,
                        help="epochs per trial (Hyperband: max epochs); default the recipe's")
    parser.add_argument("--final-epochs", type=_positive_int, default=None,
                        help="epochs of the final training on train+validation (default --epochs)")
    parser.add_argument("--objective", default="val_accuracy",
                        help="val_accuracy (default), val_loss, accuracy or loss; NAME:max|min also")
    parser.add_argument("--space", action="append", default=[], metavar="NAME=SPEC",
                        help="search NAME over LOW:HIGH[:log|linear][:STEP] or A,B,... (repeatable)")
    parser.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                        help="fix NAME to VALUE (repeatable)")
    parser.add_argument("--preset", default="best", help="the recipe the fixed settings come from and the space "
                                                         "centres on (recipes.recipe.PRESETS; default best: the "
                                                         "family's best measured recipe; baseline: none)")
    parser.add_argument("--batch-size", type=_positive_int, default=None,
                        help="mini-batch size (default: the recipe's)")
    parser.add_argument("--patience", type=_positive_int, default=None,
                        help="early-stopping patience inside every trial (default the family's)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the oracle's and every trial's seed (default: the recipe's, 0)")
    parser.add_argument("--limit", type=_positive_int, default=None, help="at most this many training examples")
    parser.add_argument("--test-limit", type=_positive_int, default=None,
                        help="at most this many test examples (default: all)")
    parser.add_argument("--data-dir", default=None, help="where the data files are (default: ZOO_DATA_DIR, caches)")
    parser.add_argument("--directory", default="tuning_runs", help="where search folders go (default tuning_runs)")
    parser.add_argument("--project-name", default=None, help="default <model>_<data>_<tuner>")
    parser.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 300 training examples, 2 epochs, batch 32")
    parser.add_argument("--no-retrain", action="store_true",
                        help="skip the final training on train+validation and the test evaluation")
    parser.add_argument("--isolate-trials", action="store_true",
                        help="run every trial in a fresh child process (bounded memory, a few s a trial)")
    parser.add_argument("--max-failures", type=_positive_int, default=3,
                        help="stop after this many failed trials in a row (default 3)")
    parser.add_argument("--chief", default=None, metavar="HOST:PORT",
                        help="distributed search: serve the oracle here (alone), or the chief to ask (with --worker)")
    parser.add_argument("--worker", default=None, metavar="ID", help="run as worker ID of the chief at --chief")
    parser.add_argument("--trial-timeout", type=_seconds, default=None,
                        help="chief: fail a trial whose worker gave no result for this many seconds")
    parser.add_argument("--idle-timeout", type=_seconds, default=None,
                        help="chief: give up when no worker asks for this long; worker: when the chief is silent")
    parser.add_argument("--prune", default="none", choices=PRUNERS,
                        help="stop hopeless trials after an epoch: median (worse than the completed trials' median "
                             "at that epoch) or halving (successive-halving rungs); default none")
    parser.add_argument("--prune-warmup", type=_positive_int, default=2,
                        help="epochs every trial trains before it can be pruned (default 2)")
    parser.add_argument("--top", type=_positive_int, default=5, help="rows of the final table (default 5)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0, help="Keras fit verbosity in trials")
    parser.add_argument("--quiet", action="store_true", help="one line per trial instead of one per epoch")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from recipes.recipe import PRESETS
    from tuning.choices import TUNERS
    from zoo.catalog import check_model_name

    check_model_name(args.model)  # an unknown model: one line naming the registered ones
    if args.tuner not in TUNERS:
        raise ValueError(f"unknown tuner {args.tuner!r}; allowed: {', '.join(TUNERS)}")
    if args.preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(PRESETS)}; got {args.preset!r}")
    if args.worker is not None and args.chief is None:
        raise ValueError("--worker needs --chief HOST:PORT (the chief's address)")
    load_zoo()  # --space and --fix need the builder's arguments, the search KerasTuner: now Keras
    import logging

    from tuning.hypermodel import builder_defaults
    from tuning.search import search
    from tuning.space import parse_assignment

    # TensorFlow warns about tf.function retracing when every trial builds a new model: expected here.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    builder_args = builder_defaults(args.model)
    space: dict = {}
    fixed: dict = {}
    for text in args.space:
        name, entry = parse_assignment(text, fixed=False, builder_defaults=builder_args)
        if name in space:
            raise ValueError(f"--space {name} given twice")
        space[name] = entry
    for text in args.fix:
        name, value = parse_assignment(text, fixed=True, builder_defaults=builder_args)
        if name in fixed:
            raise ValueError(f"--fix {name} given twice")
        fixed[name] = value

    result = search(
        args.model, args.data, tuner=args.tuner, max_trials=args.max_trials,
        executions_per_trial=args.executions_per_trial, epochs=args.epochs, final_epochs=args.final_epochs,
        objective=args.objective, directory=args.directory, project_name=args.project_name,
        overwrite=args.overwrite, space=space, fixed=fixed, preset=args.preset, quick=args.quick,
        batch_size=args.batch_size, patience=args.patience, seed=args.seed, limit=args.limit,
        test_limit=args.test_limit, data_dir=args.data_dir, retrain=not args.no_retrain,
        isolate_trials=args.isolate_trials, max_consecutive_failed_trials=args.max_failures,
        chief=args.chief, worker=args.worker, trial_timeout=args.trial_timeout, idle_timeout=args.idle_timeout,
        folds=args.folds, prune=args.prune, prune_warmup=args.prune_warmup, verbose=1 if args.quiet else 2,
        fit_verbose=args.verbose,
    )
    if result.role != "worker":
        print(result.summary(top=args.top), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return cli_main(run, argv, PROG)
    except Exception as error:  # a search that could not finish: one line, status 1 (anything else propagates)
        from tuning.distributed import SearchError

        if not isinstance(error, SearchError):
            raise
        print(f"{PROG}: {' '.join(str(error).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
