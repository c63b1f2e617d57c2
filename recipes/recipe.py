"""A training recipe: one frozen, validated, JSON-round-tripping config for one run, and its presets.

    from recipes.recipe import Recipe, preset
    r = preset("lenet5", "full")                                 # the family's paper-style defaults
    r = preset("resnet20", "l2", data="fashion_mnist", epochs=30, l2=1e-4)
    r = Recipe(model="lenet5", data="digits", regularization=zoo.Regularization(l2=1e-4), epochs=5)
    Recipe.from_dict(r.to_dict()) == r                           # config.json

Presets (``PRESETS``): each changes one thing against ``baseline`` except ``full``, which has them all.
The optimizer, learning rate, schedule, batch size, epochs, clipnorm and steps per execution come from the
model family's row of ``FAMILY_DEFAULTS`` in every preset (they are how the family is trained, not regularizers).

==================  ============================================================================
``baseline``        ``Regularization.none()``: no λ, no dropout, no batch norm; no augmentation,
                    no early stopping
``l2``              L2 with the family's λ (from the paper's weight decay: λ = wd / 2), sized to
                    the data (``data_sized_lambda``)
``l1``              L1 with the family's λ1, sized to the data
``dropout``         dropout with the family's keep-prob
``batchnorm``       batch norm only
``augment``         augmentation only: the family's policy, by default ``"auto"`` (the data's own)
``early_stopping``  early stopping on val_loss (restoring the best weights) with the family's patience
``full``            L2 + dropout (the family's ``full_keep_prob``) + batch norm + augmentation +
                    early stopping (no L1: the papers decay with L2)
``best``            the family's best measured recipe on full Fashion-MNIST (``BEST_RECIPES``: its
                    regularization, schedule, epochs and training techniques; ``bench/accuracy.py``
                    has the row). Flips and flip TTA only where flips fit the data (clothes, natural
                    images); elsewhere the family's augmentation and no TTA
==================  ============================================================================

``augmentation="auto"`` means ``recipes.augment.default_policy(domain)`` of the data set, resolved when
the data is loaded (so a preset need not know whether ``--data`` holds digits or clothes).

Weight decay in the papers (AlexNet 5e-4, ResNet 1e-4, GoogLeNet's Caffe solver 2e-4) was the coupled
L2 form; SGD weight decay ``wd`` equals an L2 penalty with ``λ = wd / 2``, so the presets put
``Regularization(l2=wd/2)`` in the model and leave ``Recipe.weight_decay`` (the optimizer's decoupled
decay, for ``adamw`` and SGD) at 0. See :mod:`recipes.optim`.

λ sized to the data. The course notes write the cost as (1/m)·Σ L + λ_c/(2m)·‖W‖²: the penalty per
example shrinks as the data grows. Keras adds ``λ·‖W‖²`` to the *mean* loss, so λ = λ_c/(2m). The
family's λ is set for a data set's whole training split (M examples: ``recipes.data.TRAINING_EXAMPLES``);
the ``l2``, ``l1`` and ``full`` presets on a subset of m = ``limit`` examples keep λ_c and so use
λ·M/m (``bench/ablation.py``'s limit of 2,250 of Fashion-MNIST's 60,000: ×26.7). A λ you pass (``l2=``, ``--l2``) is used as given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from types import MappingProxyType
from typing import Any, Mapping

from zoo.regularization import Regularization

from recipes.choices import DISTRIBUTIONS, OPTIMIZERS, PRECISIONS, SCHEDULES, WEIGHT_DECAY_OPTIMIZERS, check_learning_rate

__all__ = ["Recipe", "preset", "data_sized_lambda", "PRESETS", "REGULARIZATION_PRESETS", "BEST_RECIPES", "BestRecipe", "TTA_MODES", "FamilyDefaults", "FAMILY_DEFAULTS", "family_defaults",
           "family_of", "QUICK", "RUN_RECORD_KEYS"]

# the presets that turn regularizers on and off (bench/ablation.py compares them), then the measured best
REGULARIZATION_PRESETS: tuple[str, ...] = ("baseline", "l2", "l1", "dropout", "batchnorm", "augment",
                                           "early_stopping", "full")
PRESETS: tuple[str, ...] = REGULARIZATION_PRESETS + ("best",)
# Fields added after run folders and benchmark results were keyed by ``Recipe.config_hash``: at this
# default they leave the hash out, so those keep their names (the default trains what was trained before).
HASH_SKIPS_DEFAULT: dict[str, Any] = {"distribute": "none", "steps_per_execution": 1, "weights": None,
                                      "freeze_backbone": False}
# Keys a run folder's config.json holds beside the Recipe's fields (the machine it ran on, recipes.runfolder):
# ``Recipe.from_dict`` leaves them out, so a config.json reads back as the Recipe it was written from.
RUN_RECORD_KEYS: tuple[str, ...] = ("machine",)
CUSTOM = "custom"   # the preset label of a Recipe built by hand
AUTO = "auto"       # augmentation: the data's default policy
RESERVED_MODEL_KWARGS = ("input_shape", "input_tensor", "classes", "regularization")
REGULARIZATION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Regularization))

# What ``--quick`` / ``run(quick=True)`` does to a recipe: a seconds-long smoke run.
TTA_MODES: tuple[str, ...] = ("none", "flip", "flip+shift")

QUICK = MappingProxyType({"epochs": 2, "limit": 300, "test_limit": 100, "batch_size": 32})


@dataclasses.dataclass(frozen=True)
class FamilyDefaults:
    """How one model family is trained (one row of ``FAMILY_DEFAULTS``; ``source`` says where from)."""

    optimizer: str
    learning_rate: float
    schedule: str
    batch_size: int
    epochs: int
    l2: float                 # λ of the l2 and full presets
    l1: float                 # λ of the l1 preset
    keep_prob: float          # keep-prob of the dropout preset
    full_keep_prob: float     # keep-prob of the full preset
    patience: int             # early-stopping patience of the early_stopping and full presets
    clipnorm: float | None = None
    augmentation: str = AUTO  # policy of the augment and full presets ("auto": the data's default)
    # Training steps per call of the compiled train function (Recipe.steps_per_execution), measured per family
    # on this CPU with oneDNN on (bench/speed.py --parts onednn: 32 against 1, interleaved; docs/benchmarks.md).
    steps_per_execution: int = 1
    source: str = ""


# The one place for per-family training defaults. Epochs are sized for the small data sets the recipes
# run on a CPU (the papers trained for 90-180 epochs on ImageNet / CIFAR); raise --epochs for more.
FAMILY_DEFAULTS: Mapping[str, FamilyDefaults] = MappingProxyType({
    "lenet": FamilyDefaults(
        optimizer="adam", learning_rate=3e-3, schedule="cosine", batch_size=32, epochs=25,
        l2=1e-4, l1=1e-5, keep_prob=0.7, full_keep_prob=0.9, patience=8, augmentation="shift",
        steps_per_execution=32,  # bench/speed.py --parts onednn, oneDNN on: 1.11x: 13.2 -> 11.9 ms a step
        source="LeCun et al. 1998 trained with a diagonal Levenberg-Marquardt SGD on distorted digits; the "
               "modern recipe is Adam. lr, epochs, λ, keep-prob and augmentation tuned on the 8×8 digits "
               "(test accuracy 0.983-0.994 over seeds 0-3 in 25-45 s on a loaded 2-core CPU): shifts only, "
               "because the 'digits' policy's rotations and zooms smear 8×8 images (0.975 there)"),
    "alexnet": FamilyDefaults(
        optimizer="momentum", learning_rate=0.01, schedule="plateau", batch_size=128, epochs=30,
        l2=2.5e-4, l1=1e-5, keep_prob=0.5, full_keep_prob=0.5, patience=10,
        steps_per_execution=1,  # bench/speed.py --parts onednn, oneDNN on: 32 was 0.79x: 127 -> 160 ms a step
        source="Krizhevsky et al. 2012: SGD momentum 0.9, lr 0.01 divided by 10 when the validation error "
               "stopped improving, batch 128, weight decay 5e-4 (λ = 2.5e-4), dropout 0.5 in FC6/FC7"),
    "inception": FamilyDefaults(
        optimizer="momentum", learning_rate=0.01, schedule="cosine", batch_size=64, epochs=30,
        l2=1e-4, l1=1e-5, keep_prob=0.6, full_keep_prob=0.6, patience=10,
        steps_per_execution=32,  # bench/speed.py --parts onednn, oneDNN on: 1.13x: 161 -> 143 ms a step
        source="Szegedy et al. 2014: SGD momentum 0.9, dropout 40 % before the classifier (keep 0.6); "
               "lr 0.01 and weight decay 2e-4 (λ = 1e-4) from the BVLC GoogLeNet Caffe solver, whose "
               "polynomial decay is approximated by cosine"),
    "resnet": FamilyDefaults(
        optimizer="momentum", learning_rate=0.1, schedule="cosine", batch_size=128, epochs=30,
        l2=5e-5, l1=1e-6, keep_prob=0.8, full_keep_prob=1.0, patience=10,
        steps_per_execution=32,  # bench/speed.py --parts onednn, oneDNN on: 1.07x: 276 -> 258 ms a step
        source="He et al. 2015 (CIFAR-10): SGD 0.1 momentum 0.9, batch 128, weight decay 1e-4 "
               "(λ = 5e-5), no dropout; cosine replaces the paper's ×0.1 steps (use --schedule step)"),
    "lstm": FamilyDefaults(
        optimizer="adam", learning_rate=1e-3, schedule="constant", batch_size=64, epochs=20,
        l2=1e-5, l1=1e-6, keep_prob=0.8, full_keep_prob=0.8, patience=5, clipnorm=1.0,
        steps_per_execution=32,  # bench/speed.py --parts onednn, oneDNN on: 1.45x: 19.9 -> 13.7 ms a step
        source="Adam with gradient clipping at norm 1.0 (exploding gradients, Pascanu et al. 2013); "
               "dropout on the non-recurrent connections (Zaremba et al. 2014)"),
})


@dataclasses.dataclass(frozen=True)
class BestRecipe:
    """One family's ``best`` preset: Recipe fields, the fields used only where flips fit, and the evidence."""

    fields: Mapping[str, Any]
    flips: Mapping[str, Any]
    measured: str


# Each family's best measured recipe (bench/accuracy.py rows on full Fashion-MNIST, seed 0, 2-core CPU).
# Fields absent here come from the family's FAMILY_DEFAULTS row; ``flips`` apply on clothes and natural
# images only (a mirrored digit is no digit), elsewhere augmentation is the family's and TTA is off.
_TECHNIQUES = MappingProxyType(dict(label_smoothing=0.1, ema=0.999))
BEST_RECIPES: Mapping[str, BestRecipe] = MappingProxyType({
    "lenet": BestRecipe(
        dict(regularization=Regularization(keep_prob=0.9, batch_norm=True), batch_size=128, epochs=100,
             warmup_epochs=2, erasing=0.25, **_TECHNIQUES),
        dict(augmentation="flip", tta="flip"),
        "lenet5-ls-ema-tta-flip-erasing-100: seeds 0-2 0.9292, 0.9254, 0.9273 with flip TTA (0.9273 ± 0.0019), "
        "100 epochs, 16-17 min each; for 60 epochs 0.9246 ± 0.0011 over 5 runs"),
    "alexnet": BestRecipe(
        dict(regularization=Regularization(keep_prob=0.8, batch_norm=True), schedule="cosine", epochs=45,
             warmup_epochs=2, erasing=0.25, **_TECHNIQUES),
        dict(augmentation="flip", tta="flip"),
        "alexnet_small-ls-ema-tta-erasing-45: 0.9351 with flip TTA (plain 0.9305), 45 epochs, 31.0 min; "
        "the same recipe for 30 epochs had 0.9314"),
    "inception": BestRecipe(
        dict(regularization=Regularization(l2=1e-4, keep_prob=0.6, batch_norm=True), epochs=60,
             warmup_epochs=1, erasing=0.25, **_TECHNIQUES),
        dict(augmentation="flip", tta="flip"),
        "googlenet_small-ls-ema-tta-erasing-60: 0.9404 with flip TTA (plain 0.9368), 60 epochs, 79.6 min; for 45 "
        "epochs 0.9392, for 30 0.9364, without erasing 0.9327; the full preset (googlenet_small) had 0.9251"),
    "resnet": BestRecipe(
        dict(regularization=Regularization(l2=5e-5, batch_norm=True), optimizer="nesterov", epochs=15,
             warmup_epochs=1, **_TECHNIQUES),
        dict(augmentation="flip", tta="flip"),
        "resnet20-ls-ema-tta-15: 0.9406 with flip TTA (plain 0.9381), 15 epochs, 58.9 min on a slow day; "
        "the 30-epoch full-preset row (resnet20) had 0.9403 in 49.3 min"),
    "lstm": BestRecipe(
        dict(regularization=Regularization(keep_prob=0.8), schedule="cosine", learning_rate=2e-3, epochs=40,
             ema=0.999, augmentation="none"),
        {},
        "lstm-2x128-ema-40 (two layers of 128 units: model_kwargs units=[128, 128]): 0.9122, 40 epochs, "
        "20.9 min; for 20 epochs without EMA (lstm-2x128) 0.9064"),
})

# Anything registered under another family name trains like this.
GENERIC_DEFAULTS = FamilyDefaults(
    optimizer="adam", learning_rate=1e-3, schedule="constant", batch_size=64, epochs=20,
    l2=1e-4, l1=1e-5, keep_prob=0.8, full_keep_prob=0.8, patience=5, source="generic Adam recipe")
FAMILY_ALIASES = MappingProxyType({"googlenet": "inception", "lenet5": "lenet"})


def family_of(model: str) -> str:
    """The zoo family of a registered model name (ValueError listing the names if unknown)."""
    from zoo.catalog import family_of as zoo_family_of

    return zoo_family_of(model)


def family_defaults(model: str) -> FamilyDefaults:
    """The ``FAMILY_DEFAULTS`` row for ``model``'s family (``GENERIC_DEFAULTS`` for an unlisted family)."""
    family = family_of(model)
    return FAMILY_DEFAULTS.get(FAMILY_ALIASES.get(family, family), GENERIC_DEFAULTS)


# -- field checks ------------------------------------------------------------------------------------
def _did_you_mean(value: str, allowed: Any) -> str:
    """`` (did you mean 'digits'?)`` for a near miss, else ""."""
    import difflib

    close = difflib.get_close_matches(str(value).replace("-", "_").lower(), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _bad(field: str, allowed: str, value: Any) -> ValueError:
    return ValueError(f"Recipe.{field} must be {allowed}; got {value!r}")


def _int(field: str, value: Any, low: int, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _bad(field, f"an integer >= {low}" + (" or None" if optional else ""), value)
    return value


def _float(field: str, value: Any, low: float, high: float | None, *, low_open: bool, high_open: bool = True,
           optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    interval = f"{'(' if low_open else '['}{low:g}, {'inf' if high is None else f'{high:g}'}{')' if high_open else ']'}"
    allowed = f"a number in {interval}" + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(field, allowed, value)
    value = float(value)
    if value < low or (low_open and value == low) or (high is not None and (value > high or (high_open and value == high))):
        raise _bad(field, allowed, value)
    return value


def _choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _bad(field, f"one of {', '.join(allowed)}", value)
    return value


def looks_like_path(data: str) -> bool:
    """A ``data`` value naming a folder or an ``.npz`` file rather than a built-in data set."""
    return data.endswith(".npz") or "/" in data or os.sep in data or os.path.isdir(data)


def _datasets() -> tuple[str, ...]:
    from recipes.data import DATASETS

    return tuple(DATASETS)


def _policies() -> tuple[str, ...]:
    from recipes.choices import POLICIES

    return tuple(dict.fromkeys(("none", AUTO, *POLICIES)))


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything one training run needs; validated on construction (ValueError naming the field).

    Attributes:
        model: a registered zoo name (``zoo.list_models()``).
        data: a built-in data set (``recipes.data.DATASETS``) or a folder / ``.npz`` path.
        preset: the preset this recipe came from (a label for the run folder), or ``"custom"``.
        model_kwargs: extra builder arguments (JSON values; not input_shape, classes, regularization).
        data_dir: where data sets are cached / looked up (None: the loader's default).
        validation_fraction: the part of the training split held out for validation, in (0, 1).
        limit, test_limit: at most this many training (before the validation split) / test examples.
        regularization: ``zoo.Regularization`` (λ l1/l2, keep-prob, batch norm).
        augmentation: a ``recipes.augment.POLICIES`` name, ``"none"``, or ``"auto"`` (the data's default).
        optimizer: one of ``recipes.optim.OPTIMIZERS``; learning_rate > 0; schedule in ``SCHEDULES``.
        weight_decay: the optimizer's decoupled decay (sgd, momentum, nesterov, adamw); SGD wd = L2 λ·2.
        batch_size, epochs: ``>= 1``.
        patience: early-stopping patience in epochs on val_loss (best weights restored); None = off.
        clipnorm: clip each gradient's norm, or None.
        seed: ``keras.utils.set_random_seed`` and the data split / shuffle seed.
        baseline_error: the human-level / Bayes error for the verdict; None = the data set's own, or 0.
        precision: ``"float32"`` or ``"mixed_bfloat16"`` (``recipes.choices.PRECISIONS``; bf16 compute,
            float32 weights and softmax: see ``bench/speed.py`` for what it buys on a CPU).
        label_smoothing: ε in [0, 1): the target is (1 - ε) on the label and ε spread over all classes
            (Szegedy et al. 2016); 0 = off.
        ema: the decay in [0, 1) of an exponential moving average of the weights (Polyak averaging; 0 =
            off); validation, checkpoints and the saved model use the averaged weights.
        warmup_epochs: epochs of linear learning-rate warm-up into the schedule (>= 0, < epochs; not with
            ``plateau``).
        tta: test-time augmentation at evaluation, ``none``, ``flip`` (mean softmax of x and its mirror)
            or ``flip+shift`` (also x shifted 2 px left and right); only where flips fit the data (clothes,
            natural images). ``metrics.json`` reports the plain and the TTA test accuracy.
        erasing: the probability in [0, 1] that a training image gets a random rectangle erased (Zhong
            et al. 2020), on top of the augmentation policy; images only.
        mixup, cutmix: the Beta concentration α >= 0 of MixUp (Zhang et al. 2018; blends two training
            inputs and their labels) and of CutMix (Yun et al. 2019; pastes a box of one image into another,
            labels by area); 0 = off, both on: each batch takes one of the two. MixUp not for text, CutMix
            images only.
        distribute: ``"none"`` (one device) or ``"data_parallel"`` (Keras' ``DataParallel`` over every
            local device, or every device of the processes of ``recipes.distribute.initialize_processes``;
            the batch is the global batch, split over the devices; JAX backend only; see
            :mod:`recipes.distribute`).
        steps_per_execution: training steps Keras runs in one call of the compiled train function
            (``model.compile(steps_per_execution=...)``), an integer >= 1: fewer Python round-trips per
            epoch; the callbacks' batch hooks then fire once every N steps (the epoch hooks as before).
            The per-family default is ``FamilyDefaults.steps_per_execution``.
        weights: start from the zoo's shipped weights of this name (``python -m zoo weights``): every layer
            of their backbone, and their classifier where the classes are the same, is copied into the
            fresh model before training (fine-tuning); the model keeps its own Normalization, adapted on
            this recipe's training split. None: a random start.
        freeze_backbone: with ``weights``, train only the classifier (linear probing): the copied backbone
            layers are frozen (their BN then runs on its moving statistics).
    """

    model: str
    data: str = "digits"
    preset: str = CUSTOM
    model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data_dir: str | None = None
    validation_fraction: float = 0.1
    limit: int | None = None
    test_limit: int | None = None
    regularization: Regularization = dataclasses.field(default_factory=Regularization.none)
    augmentation: str = "none"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    weight_decay: float = 0.0
    batch_size: int = 32
    epochs: int = 10
    patience: int | None = None
    clipnorm: float | None = None
    seed: int = 0
    baseline_error: float | None = None
    precision: str = "float32"
    label_smoothing: float = 0.0
    ema: float = 0.0
    warmup_epochs: int = 0
    tta: str = "none"
    erasing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    distribute: str = "none"
    steps_per_execution: int = 1
    weights: str | None = None
    freeze_backbone: bool = False

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        from zoo.catalog import check_model_name

        if not isinstance(self.model, str):
            raise _bad("model", "a registered zoo model name", self.model)
        try:
            check_model_name(self.model)
        except ValueError as error:
            raise ValueError(f"Recipe.model: {error}") from None
        if not isinstance(self.data, str) or not self.data:
            raise _bad("data", "a data set name or a folder / .npz path", self.data)
        if not looks_like_path(self.data):
            datasets = _datasets()
            if self.data not in datasets:
                raise ValueError(f"Recipe.data must be one of {', '.join(datasets)} or a folder / .npz path; "
                                 f"got {self.data!r}{_did_you_mean(self.data, datasets)}")
        _choice("preset", self.preset, PRESETS + (CUSTOM,))
        if not isinstance(self.model_kwargs, Mapping):
            raise _bad("model_kwargs", "a dict of builder arguments", self.model_kwargs)
        kwargs = dict(self.model_kwargs)
        reserved = sorted(set(kwargs) & set(RESERVED_MODEL_KWARGS))
        if reserved or not all(isinstance(k, str) for k in kwargs):
            raise _bad("model_kwargs", f"a dict with string keys other than {', '.join(RESERVED_MODEL_KWARGS)} "
                                       "(the recipe sets those)", kwargs)
        try:
            kwargs = json.loads(json.dumps(kwargs, sort_keys=True, allow_nan=False))  # tuples -> lists
        except (TypeError, ValueError):
            raise _bad("model_kwargs", "a dict of JSON values (numbers, strings, lists, booleans, None)",
                       kwargs) from None
        put("model_kwargs", MappingProxyType(kwargs))
        if self.data_dir is not None:
            if isinstance(self.data_dir, os.PathLike):
                put("data_dir", os.fspath(self.data_dir))
            if not isinstance(self.data_dir, str) or not self.data_dir:
                raise _bad("data_dir", "a folder path or None", self.data_dir)
        put("validation_fraction", _float("validation_fraction", self.validation_fraction, 0.0, 1.0,
                                          low_open=True))
        _int("limit", self.limit, 2, optional=True)
        _int("test_limit", self.test_limit, 1, optional=True)
        if isinstance(self.regularization, Mapping):
            put("regularization", Regularization.from_dict(dict(self.regularization)))
        if not isinstance(self.regularization, Regularization):
            raise _bad("regularization", "a zoo.Regularization", self.regularization)
        _choice("augmentation", self.augmentation, _policies())
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        try:
            put("learning_rate", check_learning_rate(self.learning_rate, "Recipe.learning_rate"))
        except ValueError as error:
            raise ValueError(str(error)) from None
        _choice("schedule", self.schedule, SCHEDULES)
        put("weight_decay", _float("weight_decay", self.weight_decay, 0.0, None, low_open=False))
        if self.weight_decay > 0 and self.optimizer not in WEIGHT_DECAY_OPTIMIZERS:
            raise ValueError(
                f"Recipe.weight_decay needs optimizer in {', '.join(WEIGHT_DECAY_OPTIMIZERS)}; got "
                f"{self.optimizer!r} (use adamw, or regularization l2 = weight_decay / 2)"
            )
        _int("batch_size", self.batch_size, 1)
        _int("epochs", self.epochs, 1)
        _int("patience", self.patience, 1, optional=True)
        put("clipnorm", _float("clipnorm", self.clipnorm, 0.0, None, low_open=True, optional=True))
        _int("seed", self.seed, 0)
        put("baseline_error", _float("baseline_error", self.baseline_error, 0.0, 1.0, low_open=False,
                                     high_open=False, optional=True))

        _choice("precision", self.precision, PRECISIONS)
        _choice("distribute", self.distribute, DISTRIBUTIONS)
        _int("steps_per_execution", self.steps_per_execution, 1)
        self._check_start(put)
        self._check_techniques(put)

    def _check_start(self, put) -> None:
        """``weights``: a shipped weight name of the model (TensorFlow-free: ``zoo.pretrained``)."""
        from zoo import pretrained

        if self.weights is not None:
            if not isinstance(self.weights, str) or not pretrained.is_weight_name(self.weights):
                raise _bad("weights", "None or a shipped weight name (python -m zoo weights)", self.weights)
            try:
                pretrained.find_record(self.model, self.weights)
            except pretrained.WeightsError as error:
                raise ValueError(f"Recipe.weights: {error}") from None
        if not isinstance(self.freeze_backbone, bool):
            raise _bad("freeze_backbone", "True or False", self.freeze_backbone)
        if self.freeze_backbone and self.weights is None:
            raise ValueError("Recipe.freeze_backbone=True needs weights (a shipped weight name to start from)")

    def _check_techniques(self, put) -> None:
        put("label_smoothing", _float("label_smoothing", self.label_smoothing, 0.0, 1.0, low_open=False))
        put("ema", _float("ema", self.ema, 0.0, 1.0, low_open=False))
        _int("warmup_epochs", self.warmup_epochs, 0)
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise _bad("warmup_epochs", f"an integer < epochs ({self.epochs})", self.warmup_epochs)
        if self.warmup_epochs and self.schedule == "plateau":
            raise ValueError("Recipe.warmup_epochs needs a schedule that knows the step (constant, step, cosine), "
                             f"not 'plateau'; got warmup_epochs={self.warmup_epochs}")
        _choice("tta", self.tta, TTA_MODES)
        put("erasing", _float("erasing", self.erasing, 0.0, 1.0, low_open=False, high_open=False))
        put("mixup", _float("mixup", self.mixup, 0.0, None, low_open=False))
        put("cutmix", _float("cutmix", self.cutmix, 0.0, None, low_open=False))

    # -- identity --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (config.json); ``from_dict`` gives an equal Recipe back."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["model_kwargs"] = dict(self.model_kwargs)
        data["regularization"] = self.regularization.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Recipe":
        """The Recipe of ``to_dict``'s values, or of a run folder's config.json (whose ``RUN_RECORD_KEYS``,
        the machine it ran on, are no part of the Recipe and are left out). A field missing takes its
        default (a config.json written before the field existed); an unknown name is a ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f"Recipe.from_dict needs a dict, got {type(data).__name__}")
        data = {k: v for k, v in data.items() if k not in RUN_RECORD_KEYS}
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValueError(f"Recipe got unknown field(s) {unknown}; allowed: {', '.join(allowed)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        return cls.from_dict(json.loads(text))

    def config_hash(self) -> str:
        """16 hex digits identifying the configuration (same fields, same hash, across processes)."""
        data = {k: v for k, v in self.to_dict().items() if HASH_SKIPS_DEFAULT.get(k, ()) != v}
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def __hash__(self) -> int:
        return int(self.config_hash(), 16)

    def replace(self, **changes: Any) -> "Recipe":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def override_names(cls) -> tuple[str, ...]:
        """What :meth:`with_overrides` takes: every field but ``model`` and ``preset``, and the
        ``zoo.Regularization`` fields (``l1``, ``l2``, ``keep_prob``, ``batch_norm``)."""
        fields = tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("model", "preset"))
        return fields + REGULARIZATION_FIELDS

    def with_overrides(self, **values: Any) -> "Recipe":
        """A copy with ``values`` applied: the one way command-line options, a preset's overrides and a
        tuning trial's hyperparameters become a Recipe.

        Names are Recipe fields or ``Regularization`` fields (those change ``regularization`` one knob at a
        time, after a ``regularization=`` given in the same call); ``model_kwargs`` are merged into the
        recipe's. Building the new Recipe is the validation: a bad value raises the field's ValueError.
        """
        unknown = sorted(set(values) - set(self.override_names()))
        if unknown:
            raise ValueError(f"unknown override(s) {', '.join(unknown)}; allowed: "
                             f"{', '.join(self.override_names())}")
        knobs = {k: values.pop(k) for k in REGULARIZATION_FIELDS if k in values}
        reg = values.pop("regularization", self.regularization)
        if isinstance(reg, Mapping):
            reg = Regularization.from_dict(dict(reg))
        if not isinstance(reg, Regularization):
            raise _bad("regularization", "a zoo.Regularization", reg)
        if "model_kwargs" in values:
            if not isinstance(values["model_kwargs"], Mapping):
                raise _bad("model_kwargs", "a dict of builder arguments", values["model_kwargs"])
            values["model_kwargs"] = {**dict(self.model_kwargs), **dict(values["model_kwargs"])}
        return self.replace(regularization=reg.replace(**knobs) if knobs else reg, **values)

    def with_epochs(self, epochs: int) -> "Recipe":
        """The recipe trained for ``epochs``, its warm-up shortened to fit (``warmup_epochs < epochs``)."""
        return self.replace(epochs=epochs, warmup_epochs=min(self.warmup_epochs, max(0, int(epochs) - 1)))

    def quick(self) -> "Recipe":
        """The seconds-long smoke-run version: few epochs, a small subset, small batches (``QUICK``)."""
        epochs = min(self.epochs, QUICK["epochs"])
        return self.with_epochs(epochs).replace(
            limit=min(self.limit or QUICK["limit"], QUICK["limit"]),
            test_limit=min(self.test_limit or QUICK["test_limit"], QUICK["test_limit"]),
            batch_size=min(self.batch_size, QUICK["batch_size"]),
        )

    def resolved_augmentation(self, domain: str) -> str:
        """The augmentation policy to apply: ``"auto"`` becomes the data domain's default policy."""
        if self.augmentation != AUTO:
            return self.augmentation
        from recipes.choices import default_policy

        return default_policy(domain)

    @property
    def data_label(self) -> str:
        """The data name for a folder name: the data set, or a path's last part without ``.npz``."""
        base = os.path.basename(os.path.normpath(self.data)) if looks_like_path(self.data) else self.data
        base = base[:-4] if base.endswith(".npz") else base
        return "".join(c if c.isalnum() or c in "_." else "_" for c in base) or "data"


def preset(model: str, name: str, **overrides: Any) -> Recipe:
    """The named preset (``PRESETS``) for ``model``, with fields changed by ``overrides``.

    ``overrides`` are ``Recipe`` fields (``data=``, ``epochs=``, ``regularization=`` ...) or one of the
    ``Regularization`` fields ``l1``, ``l2``, ``keep_prob``, ``batch_norm``, which change the preset's
    regularization one knob at a time.
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    if name == "best":
        return _best(model, overrides)
    fam = family_defaults(model)
    scale = data_sized_lambda(1.0, overrides.get("data", "digits"), overrides.get("limit"))
    reg = Regularization.none()
    augmentation, patience = "none", None
    if name == "l2":
        reg = reg.replace(l2=fam.l2 * scale)
    elif name == "l1":
        reg = reg.replace(l1=fam.l1 * scale)
    elif name == "dropout":
        reg = reg.replace(keep_prob=fam.keep_prob)
    elif name == "batchnorm":
        reg = reg.replace(batch_norm=True)
    elif name == "augment":
        augmentation = fam.augmentation
    elif name == "early_stopping":
        patience = fam.patience
    elif name == "full":
        reg = Regularization(l1=0.0, l2=fam.l2 * scale, keep_prob=fam.full_keep_prob, batch_norm=True)
        augmentation, patience = fam.augmentation, fam.patience
    base = Recipe(model=model, preset=name, regularization=reg, augmentation=augmentation, patience=patience,
                  optimizer=fam.optimizer, learning_rate=fam.learning_rate, schedule=fam.schedule,
                  batch_size=fam.batch_size, epochs=fam.epochs, clipnorm=fam.clipnorm,
                  steps_per_execution=fam.steps_per_execution)
    if "model_kwargs" in overrides:  # a preset has no builder arguments of its own
        base = base.replace(model_kwargs=overrides.pop("model_kwargs"))
    return base.with_overrides(**overrides)


def data_sized_lambda(lam: float, data: str, limit: int | None) -> float:
    """λ for ``limit`` examples of ``data`` when ``lam`` is set for all M of them: ``lam · M / limit``.

    The course's penalty λ_c/(2m)·‖W‖² with λ_c fixed (module doc). ``lam`` unchanged for the whole data
    set (``limit`` None or >= M) and for a folder or ``.npz`` (M unknown before loading).
    """
    from recipes.data import TRAINING_EXAMPLES

    full = TRAINING_EXAMPLES.get(data)
    if full is None or limit is None or limit >= full:
        return lam
    return lam * full / limit


def _best(model: str, overrides: dict[str, Any]) -> Recipe:
    """The ``best`` preset: ``BEST_RECIPES`` of the family over its ``FAMILY_DEFAULTS`` (``full`` if none)."""
    family = family_of(model)
    best = BEST_RECIPES.get(FAMILY_ALIASES.get(family, family))
    if best is None:
        return preset(model, "full", **overrides).replace(preset="best")
    fam = family_defaults(model)
    fields = dict(augmentation=fam.augmentation, optimizer=fam.optimizer, learning_rate=fam.learning_rate,
                  schedule=fam.schedule, batch_size=fam.batch_size, epochs=fam.epochs, clipnorm=fam.clipnorm,
                  steps_per_execution=fam.steps_per_execution)
    fields.update(best.fields)
    if _flips_fit(overrides.get("data", "digits")):
        fields.update(best.flips)
    base = Recipe(model=model, preset="best", **fields)
    if "model_kwargs" in overrides:
        base = base.replace(model_kwargs=overrides.pop("model_kwargs"))
    return base.with_overrides(**overrides)


def _flips_fit(data: str) -> bool:
    """Whether mirrored images fit a built-in data set (its domain's policies include "flip")."""
    from recipes.choices import DOMAIN_POLICIES
    from recipes.data import DATASET_DOMAINS

    domain = DATASET_DOMAINS.get(data)
    return domain is not None and "flip" in DOMAIN_POLICIES[domain]
