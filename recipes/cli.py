"""The one command line behind every recipe script (``python -m recipes.lenet5`` ... ``recipes.compare``).

    python -m recipes.lenet5                                  # digits, preset full: the README's main job
    python -m recipes.resnet --data fashion_mnist --preset full --epochs 30 --variant resnet56
    python -m recipes.alexnet --preset dropout --keep-prob 0.6 --quick
    python -m recipes --model lenet5 --preset l2 --l2 1e-3    # any registered model

Every option left out keeps the preset's value (``recipes.recipe.preset``). Bad input prints one line on
stderr and exits with status 2 before anything is trained or written; Ctrl-C exits with 130 (the same
command resumes, see ``recipes.train``); a run whose loss turns NaN exits with 1.

Fashion-MNIST: ``--data fashion_mnist`` reads the four IDX files from ``--data-dir`` (or ``ZOO_DATA_DIR``,
``/usr/share/datasets/fashion-mnist``, the Keras cache ``~/.keras/datasets/fashion-mnist``) and downloads
only when none has them (see ``recipes.data``).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import Any, Sequence

from zoo.cli import ArgumentParser, cli_main, defaults_formatter, load_zoo

__all__ = ["build_parser", "add_training_options", "overrides_from_args", "script_main", "recipe_from_args",
           "ensure_importable"]


def ensure_importable(file: str) -> None:
    """Run as ``python recipes/<script>.py``: put the repository root, not ``recipes/``, on sys.path."""
    import os

    here = os.path.dirname(os.path.abspath(file))
    root = os.path.dirname(here)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    if root not in sys.path:
        sys.path.insert(0, root)


# -- argument types: each error names the flag's rule (argparse adds the flag's name) -------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _bounded(parse, allowed, rule: str):
    """An argparse type: ``parse(text)``, refused with "must be ``rule``" unless ``allowed(value)``."""
    def check(text: str):
        value = parse(text)
        if not allowed(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    return check


_nonnegative_int = _seed  # the same rule: an integer >= 0
_positive_float = _bounded(_float, lambda v: v > 0, "a number > 0")
_nonnegative_float = _bounded(_float, lambda v: v >= 0, "a number >= 0")
_keep_prob = _bounded(_float, lambda v: 0 < v <= 1, "in (0, 1] (1 = no dropout)")
_fraction_below_one = _bounded(_float, lambda v: 0 <= v < 1, "in [0, 1) (0 = off)")
_probability = _bounded(_float, lambda v: 0 <= v <= 1, "a probability in [0, 1]")
_error_rate = _bounded(_float, lambda v: 0 <= v <= 1, "an error rate in [0, 1]")
_folds = _limit = _bounded(_positive_int, lambda v: v >= 2, "an integer >= 2")


def _patience(text: str) -> int:
    if text.lower() in ("none", "off", "0"):
        return 0
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, or 0 / none for no early stopping, got {text!r}")
    return value


def _clipnorm(text: str) -> float:
    if text.lower() in ("none", "off"):
        return 0.0
    return _positive_float(text)


def add_training_options(parser: argparse.ArgumentParser, *, default_data: str = "digits") -> None:
    """The options every recipe command shares (all default to None = the preset's value)."""
    from recipes.choices import DISTRIBUTIONS, OPTIMIZERS, PRECISIONS, SCHEDULES
    from recipes.recipe import TTA_MODES

    data = parser.add_argument_group("data")
    data.add_argument("--data", default=default_data,
                      help=f"digits, mnist, fashion_mnist, cifar10, imdb, a folder or an .npz (default {default_data})")
    data.add_argument("--data-dir", default=None, help="where the data files are (default: ZOO_DATA_DIR, caches)")
    data.add_argument("--limit", type=_limit, default=None, help="at most this many training examples (default: all)")
    data.add_argument("--test-limit", type=_positive_int, default=None, help="at most this many test examples (default: all)")
    data.add_argument("--baseline-error", type=_error_rate, default=None,
                      help="human / Bayes error for the verdict (default: the data set's estimate)")

    reg = parser.add_argument_group("regularization")
    reg.add_argument("--l1", type=_nonnegative_float, default=None, help="λ of the L1 penalty")
    reg.add_argument("--l2", type=_nonnegative_float, default=None, help="λ of the L2 penalty (SGD wd = 2λ)")
    reg.add_argument("--keep-prob", type=_keep_prob, default=None, help="dropout keep-prob in (0, 1]")
    reg.add_argument("--batch-norm", dest="batch_norm", action="store_true", default=None, help="batch norm on")
    reg.add_argument("--no-batch-norm", dest="batch_norm", action="store_false", help="batch norm off")
    reg.add_argument("--augment", dest="augmentation", default=None, metavar="POLICY|none|auto",
                     help="augmentation policy (recipes.augment.POLICIES), none, or auto (the data's default)")
    reg.add_argument("--patience", type=_patience, default=None,
                     help="early stopping on val_loss after this many epochs without improvement; 0/none: off")

    tech = parser.add_argument_group("training techniques")
    tech.add_argument("--label-smoothing", dest="label_smoothing", type=_fraction_below_one, default=None,
                      metavar="EPS", help="label smoothing ε in [0, 1); 0 = off")
    tech.add_argument("--ema", type=_fraction_below_one, default=None, metavar="DECAY",
                      help="moving average of the weights with this decay in [0, 1), e.g. 0.999; 0 = off")
    tech.add_argument("--warmup-epochs", dest="warmup_epochs", type=_seed, default=None, metavar="N",
                      help="linear learning-rate warm-up over the first N epochs (not with --schedule plateau)")
    tech.add_argument("--tta", choices=TTA_MODES, default=None,
                      help="test-time augmentation at evaluation: flip or flip+shift (clothes, natural images)")
    tech.add_argument("--erasing", type=_probability, default=None, metavar="P",
                      help="random erasing: the probability in [0, 1] of erasing a rectangle of a training image")
    tech.add_argument("--mixup", type=_nonnegative_float, default=None, metavar="ALPHA",
                      help="MixUp with λ ~ Beta(α, α), e.g. 0.2; 0 = off (not for text)")
    tech.add_argument("--cutmix", type=_nonnegative_float, default=None, metavar="ALPHA",
                      help="CutMix with λ ~ Beta(α, α), e.g. 1.0; 0 = off (images only; with --mixup: one per batch)")

    opt = parser.add_argument_group("optimization")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    opt.add_argument("--lr", dest="learning_rate", type=_positive_float, default=None, help="learning rate")
    opt.add_argument("--schedule", choices=SCHEDULES, default=None)
    opt.add_argument("--weight-decay", type=_nonnegative_float, default=None,
                     help="the optimizer's decoupled weight decay (sgd, momentum, nesterov, adamw)")
    opt.add_argument("--clipnorm", type=_clipnorm, default=None, help="clip gradient norms (none: off)")
    opt.add_argument("--epochs", type=_positive_int, default=None)
    opt.add_argument("--batch-size", type=_positive_int, default=None)
    opt.add_argument("--seed", type=_seed, default=None)
    opt.add_argument("--precision", choices=PRECISIONS, default=None,
                     help="float32 (default) or mixed_bfloat16 (bf16 compute, float32 weights; see bench/speed.py)")
    opt.add_argument("--steps-per-execution", dest="steps_per_execution", type=_positive_int, default=None,
                     metavar="N",
                     help="Keras runs N training steps in one call of the compiled train function: fewer Python "
                          "round-trips per epoch; callbacks' batch hooks then fire every N steps (default: the "
                          "family's, 1)")

    start = parser.add_argument_group("starting point")
    start.add_argument("--weights", default=None, metavar="NAME",
                       help="start from the zoo's shipped weights NAME of this model (python -m zoo weights): "
                            "fine-tuning; a new classifier where the classes differ")
    start.add_argument("--freeze-backbone", dest="freeze_backbone", action="store_true", default=None,
                       help="with --weights: train the classifier only (linear probing)")
    dist = parser.add_argument_group("distribution (recipes.distribute)")
    dist.add_argument("--distribute", choices=DISTRIBUTIONS, default=None,
                      help="data_parallel: Keras' DataParallel over every device, the batch split over them "
                           "(JAX backend; default none; implied by --num-processes > 1)")
    dist.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                      help="process 0's address: train across processes (JAX backend), with the next two")
    dist.add_argument("--num-processes", type=_positive_int, default=None, metavar="N",
                      help="how many processes train together (each runs the same command)")
    dist.add_argument("--process-id", type=_nonnegative_int, default=None, metavar="I",
                      help="this process's index, 0..N-1; process 0 writes the run folder")
    dist.add_argument("--coordinator-timeout", type=_positive_float, default=60.0, metavar="SECONDS",
                      help="how long a process waits for process 0 to answer")

    out = parser.add_argument_group("output")
    out.add_argument("--out", default="runs", help="parent folder of the run folders (default runs)")
    out.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs into the run folder")
    out.add_argument("--quick", action="store_true",
                     help="a seconds-long smoke run: 2 epochs, 300 training and 100 test examples, batch 32")
    out.add_argument("--deterministic", action="store_true",
                     help="TensorFlow op determinism: the same numbers on a GPU too (slower there)")
    out.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                     help="Keras progress: 1 bar (default), 2 one line per epoch, 0 silent")


def build_parser(prog: str, *, description: str = "", default_model: str | None = None,
                 variants: Sequence[str] = (), default_preset: str = "full",
                 default_data: str = "digits") -> ArgumentParser:
    """The parser of one recipe script; ``default_model=None`` asks for ``--model`` (any registered name)."""
    from recipes.recipe import PRESETS

    parser = ArgumentParser(prog=prog, description=description,
                            formatter_class=defaults_formatter("the preset's or the family's"))
    if default_model is None:
        parser.add_argument("--model", required=True, help="a registered zoo model (python -m zoo list)")
    else:
        parser.add_argument("--variant", default=default_model, metavar="NAME",
                            help=f"the model: {', '.join(variants) or default_model}")
    parser.add_argument("--preset", choices=PRESETS, default=default_preset,
                        help="what to regularize (see recipes.recipe)")
    add_training_options(parser, default_data=default_data)
    parser.add_argument("--folds", type=_folds, default=None, metavar="K",
                        help="K-fold cross-validation (K >= 2) of train+validation: K runs, a mean ± std summary "
                             "(default: off, one run)")
    return parser


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Recipe.with_overrides`` values the command line asked for (options left out are not included).

    Every option's ``dest`` is the Recipe (or Regularization) field it sets: ``--lr`` is ``learning_rate``,
    ``--augment`` is ``augmentation``; ``--patience 0`` and ``--clipnorm none`` mean None (off).
    """
    from recipes.recipe import Recipe

    overrides = {}
    for field in Recipe.override_names():
        value = getattr(args, field, None)
        if value is None:
            continue
        if field in ("patience", "clipnorm") and value == 0:
            value = None       # 0 / none: off
        overrides[field] = value
    return overrides


def recipe_from_args(args: argparse.Namespace, model: str, preset_name: str):
    """The Recipe the options describe; a bad value names the option (``--data``), not the field."""
    from recipes.recipe import preset

    try:
        return preset(model, preset_name, **overrides_from_args(args))
    except ValueError as error:
        raise ValueError(as_option_names(str(error))) from None


OPTION_OF_FIELD = {"learning_rate": "--lr", "augmentation": "--augment"}  # the rest: --field-name


def as_option_names(message: str) -> str:
    """``Recipe.keep_prob must …`` -> ``--keep-prob must …`` (the command line's names for the fields)."""
    def option(match: re.Match) -> str:
        field = match.group(1)
        return OPTION_OF_FIELD.get(field, "--" + field.replace("_", "-"))

    return re.sub(r"\bRecipe\.([a-z][a-z0-9_]*)", option, message)


def _family_models(family: str) -> list[str]:
    from zoo.catalog import models_of_family

    return models_of_family(family)


def _check_variant(prog: str, variant: str, variants: Sequence[str]) -> None:
    if variants and variant not in variants:
        raise ValueError(f"{prog}: argument --variant: must be one of {', '.join(variants)}; got {variant!r}")


def print_outcome(result, verbose: int) -> None:
    from recipes.train import smoke_note, summary_line

    if verbose == 0:  # run() prints these itself when verbose
        print(summary_line(result.metrics, result.folder))
        print(result.verdict.text)
        if result.metrics.get("smoke_run"):
            print(smoke_note(result.metrics))


def script_main(argv: Sequence[str] | None, *, prog: str, default_model: str | None, family: str | None = None,
                default_preset: str = "full", default_data: str = "digits", description: str = "") -> int:
    """The ``main`` of a recipe script: parse, build the Recipe, train, print the result and the verdict."""

    def run_fn(args_list: Sequence[str] | None) -> int:
        variants = _family_models(family) if family else []
        parser = build_parser(prog, description=description, default_model=default_model, variants=variants,
                              default_preset=default_preset, default_data=default_data)
        args = parser.parse_args(args_list)
        model = args.model if default_model is None else args.variant
        if default_model is not None:
            _check_variant(prog, model, variants)
        recipe = recipe_from_args(args, model, args.preset)  # every option checked: now Keras
        recipe, processes = _processes_from_args(args, recipe)
        load_zoo()
        if processes is not None:
            from recipes.distribute import initialize_processes

            initialize_processes(*processes, timeout_s=args.coordinator_timeout)
        return _train(recipe, args, prog)

    return cli_main(run_fn, argv, prog)


def _processes_from_args(args: argparse.Namespace, recipe):
    """The Recipe (data_parallel when several processes train together) and the checked process options."""
    from recipes.distribute import check_processes

    processes = check_processes(args.coordinator, args.num_processes, args.process_id)
    if processes is None or processes[1] == 1:
        return recipe, processes
    if args.distribute == "none":
        raise ValueError(f"--num-processes {processes[1]} trains one model across processes: it needs "
                         f"--distribute data_parallel (or leave --distribute out); got --distribute none")
    if getattr(args, "folds", None):
        raise ValueError(f"--folds {args.folds} with --num-processes {processes[1]}: cross-validation runs "
                         f"its folds in one process; leave out one of the two")
    return recipe.replace(distribute="data_parallel"), processes


def _train(recipe, args: argparse.Namespace, prog: str) -> int:
    from recipes.train import TrainingDiverged, run

    try:
        if getattr(args, "folds", None):
            from recipes.crossval import cross_validate, summary_line

            result = cross_validate(recipe, args.folds, out=args.out, verbose=args.verbose, quick=args.quick,
                                    deterministic=args.deterministic)
            if args.verbose == 0:
                print(summary_line(result.summary, result.folder))
            return 0
        result = run(recipe, out=args.out, verbose=args.verbose, quick=args.quick, tensorboard=args.tensorboard,
                     deterministic=args.deterministic)
    except TrainingDiverged as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    print_outcome(result, args.verbose)
    return 0
