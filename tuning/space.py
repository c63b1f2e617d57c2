"""The search space: which hyperparameters a search draws, over which ranges, and how to change them.

The default space (by name):

=================  ===============================================================================
``penalty``        which kernel penalty: ``l2``, ``l1`` or ``l1_l2`` (fixed to ``l2`` by default)
``l2``             λ of the L2 penalty, log-uniform 1e-6 … 1e-2 (drawn when the penalty has an L2 part)
``l1``             λ of the L1 penalty, log-uniform 1e-6 … 1e-2 (drawn when the penalty has an L1 part)
``keep_prob``      dropout keep-probability, uniform 0.5 … 1.0 (1.0 means no Dropout layer)
``learning_rate``  log-uniform, a decade either side of the recipe's rate (Adam's 1e-3: 1e-4 … 1e-2);
                   1e-4 … 1e-1 without a recipe
``optimizer``      one of ``recipes.optim.OPTIMIZERS`` (fixed to the recipe's by default)
``batch_norm``     True / False (fixed to the recipe's by default)
``augmentation``   a ``recipes.augment.POLICIES`` name or ``auto`` (the data's own; fixed by default)
``batch_size``     the mini-batch size, tuned in ``HyperModel.fit`` (fixed to the recipe's by default)
=================  ===============================================================================

The recipe's training techniques can be opened too (absent from the trials unless given; the recipe's
value applies otherwise): ``label_smoothing``, ``ema`` (in [0, 1)), ``warmup_epochs`` (an integer),
``erasing`` (a probability), ``mixup`` and ``cutmix`` (Beta α >= 0) and ``tta`` (``none``, ``flip``,
``flip+shift``).

Any keyword argument of the model's builder (``activation``, ``subsampling`` for LeNet-5, ``width`` …)
extends the space under its own name.

From Python, a value in ``space=`` is a :class:`Range`, :class:`Choice` or :class:`Fixed`, or a shorthand:
a ``(low, high)`` pair of numbers is a range (log-uniform for λ and the learning rate), a list (or a
tuple that is not two numbers) is a choice, anything else is fixed. ``fixed=`` fixes a name to a value::

    space = {"keep_prob": (0.6, 0.9), "penalty": ["l2", "l1"], "optimizer": ["adam", "momentum"]}
    fixed = {"batch_norm": False, "learning_rate": 1e-3}

From the command line (:func:`parse_assignment`): ``--space l2=1e-6:1e-2`` (a range; add ``:log``,
``:linear`` or a numeric step: ``1e-6:1e-2:log:10``), ``--space optimizer=adam,sgd`` (a choice),
``--fix batch_norm=false`` (fixed).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping

import keras_tuner as kt

from recipes.recipe import TTA_MODES

__all__ = ["Range", "Choice", "Fixed", "SearchSpace", "make_space", "parse_assignment",
           "CORE_NAMES", "TECHNIQUE_NAMES", "PENALTIES", "BUILDER_RESERVED"]

PENALTIES = ("l2", "l1", "l1_l2")
CORE_NAMES = ("penalty", "l2", "l1", "keep_prob", "learning_rate", "optimizer", "batch_norm",
              "augmentation", "batch_size")
# Recipe techniques a search may open (absent from a trial unless given: the recipe's value then applies).
TECHNIQUE_NAMES = ("label_smoothing", "ema", "warmup_epochs", "erasing", "mixup", "cutmix", "tta")
# The Recipe fields among the names above that are floats / integers (a trial's values are cast to them).
FLOAT_NAMES = ("l1", "l2", "keep_prob", "learning_rate", "label_smoothing", "ema", "erasing", "mixup", "cutmix")
INT_NAMES = ("batch_size", "warmup_epochs")
# Builder arguments that the hypermodel sets itself and that are therefore never hyperparameters.
BUILDER_RESERVED = ("include_top", "input_shape", "input_tensor", "pooling", "classes",
                    "classifier_activation", "name", "regularization", "weights")
_LOG_BY_DEFAULT = ("l1", "l2", "learning_rate", "batch_size")
_TRUE = ("true", "on", "yes", "1")
_FALSE = ("false", "off", "no", "0")


# -- the three kinds of entry ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric interval ``[low, high]``: KerasTuner ``Float`` (or ``Int`` when ``integer``).

    ``sampling`` is ``"linear"`` or ``"log"`` (log-uniform; needs ``low > 0``). ``step`` makes the range
    discrete (for ``log``, a factor > 1); the grid tuner needs one and picks one when it is None.
    """

    low: float
    high: float
    sampling: str = "linear"
    step: float | None = None
    integer: bool = False

    def describe(self) -> str:
        text = f"{_fmt(self.low)}:{_fmt(self.high)}"
        if self.sampling == "log":
            text += ":log"
        if self.step is not None:
            text += f":{_fmt(self.step)}"
        return text


@dataclasses.dataclass(frozen=True)
class Choice:
    """A finite set of values: KerasTuner ``Choice`` (``Boolean`` for ``(True, False)``)."""

    values: tuple

    def describe(self) -> str:
        return ",".join(_fmt(v) for v in self.values)


@dataclasses.dataclass(frozen=True)
class Fixed:
    """One value, recorded with every trial (KerasTuner ``Fixed``)."""

    value: Any

    def describe(self) -> str:
        return f"={_fmt(self.value)}"


Entry = Range | Choice | Fixed


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# -- checking one entry ---------------------------------------------------------------------------

def _kind_of(name: str, builder_defaults: Mapping[str, Any]) -> str:
    """The value type of a name: "float", "int", "bool", "str" or "any" (builder argument, no default)."""
    if name in FLOAT_NAMES:
        return "float"
    if name in INT_NAMES:
        return "int"
    if name == "batch_norm":
        return "bool"
    if name in ("penalty", "optimizer", "augmentation", "tta"):
        return "str"
    default = builder_defaults.get(name, None)
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    return "any"


def _check_value(name: str, value: Any, kind: str, allowed: Mapping[str, tuple]) -> Any:
    """One value of ``name``, converted to its kind, or a ValueError naming the name and the rule."""
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"hyperparameter {name} must be a finite number, got {value!r}")
        value = float(value)
        if name in ("l1", "l2") and value < 0:
            raise ValueError(f"hyperparameter {name} (a penalty λ) must be >= 0, got {value!r}")
        if name == "keep_prob" and not 0 < value <= 1:
            raise ValueError(f"hyperparameter keep_prob must be in (0, 1], got {value!r}")
        if name == "learning_rate" and value <= 0:
            raise ValueError(f"hyperparameter learning_rate must be > 0, got {value!r}")
        if name in ("label_smoothing", "ema") and not 0 <= value < 1:
            raise ValueError(f"hyperparameter {name} must be in [0, 1) (0 = off), got {value!r}")
        if name == "erasing" and not 0 <= value <= 1:
            raise ValueError(f"hyperparameter erasing (a probability) must be in [0, 1], got {value!r}")
        if name in ("mixup", "cutmix") and value < 0:
            raise ValueError(f"hyperparameter {name} (a Beta α) must be >= 0 (0 = off), got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"hyperparameter {name} must be an integer, got {value!r}")
        if name == "batch_size" and value < 1:
            raise ValueError(f"hyperparameter batch_size must be >= 1, got {value!r}")
        if name == "warmup_epochs" and value < 0:
            raise ValueError(f"hyperparameter warmup_epochs must be >= 0, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"hyperparameter {name} must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"hyperparameter {name} must be a string, got {value!r}")
    if name in allowed and value not in allowed[name]:
        raise ValueError(
            f"hyperparameter {name} must be one of {', '.join(map(str, allowed[name]))}; got {value!r}"
        )
    if kind == "any" and not isinstance(value, (bool, int, float, str)):
        raise ValueError(f"hyperparameter {name} must be a number, a string or a boolean, got {value!r}")
    return value


def _check_entry(name: str, entry: Any, kind: str, allowed: Mapping[str, tuple]) -> Entry:
    if isinstance(entry, Fixed):
        return Fixed(_check_value(name, entry.value, kind, allowed))
    if isinstance(entry, Choice):
        values = tuple(_check_value(name, v, kind, allowed) for v in entry.values)
        if not values:
            raise ValueError(f"hyperparameter {name}: a choice needs at least one value")
        if len(set(values)) != len(values):
            raise ValueError(f"hyperparameter {name}: repeated values in {list(values)}")
        if len({type(v) for v in values}) > 1:
            raise ValueError(f"hyperparameter {name}: the values of a choice must share one type, "
                             f"got {list(values)}")
        return Choice(values) if len(values) > 1 else Fixed(values[0])
    if isinstance(entry, Range):
        if kind not in ("float", "int", "any"):
            raise ValueError(f"hyperparameter {name} takes values ({kind}), not a LOW:HIGH range")
        integer = kind == "int" or (kind == "any" and entry.integer)
        low = _check_value(name, entry.low, "int" if integer else "float", allowed)
        high = _check_value(name, entry.high, "int" if integer else "float", allowed)
        if low >= high:
            raise ValueError(
                f"hyperparameter {name}: low must be < high, got {_fmt(low)}:{_fmt(high)} "
                f"(to fix one value use --fix {name}={_fmt(low)} / fixed={{'{name}': {low!r}}})"
            )
        if entry.sampling not in ("linear", "log"):
            raise ValueError(f"hyperparameter {name}: sampling must be linear or log, got {entry.sampling!r}")
        if entry.sampling == "log" and low <= 0:
            raise ValueError(
                f"hyperparameter {name}: a log-uniform range needs low > 0, got {_fmt(low)}:{_fmt(high)} "
                f"(use {name}={_fmt(low)}:{_fmt(high)}:linear, or fix {name}=0 to switch it off)"
            )
        step = entry.step
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step) \
                    or step <= 0 or (entry.sampling == "log" and step <= 1):
                rule = "a factor > 1 for a log range" if entry.sampling == "log" else "> 0"
                raise ValueError(f"hyperparameter {name}: step must be {rule}, got {step!r}")
            step = int(step) if integer and float(step).is_integer() else float(step)
        return Range(low, high, entry.sampling, step, integer)
    raise ValueError(f"hyperparameter {name}: expected a Range, Choice or Fixed, got {entry!r}")


def _shorthand(name: str, spec: Any) -> Entry:
    """Python shorthand: (low, high) -> Range, list/tuple -> Choice, scalar -> Fixed."""
    if isinstance(spec, (Range, Choice, Fixed)):
        return spec
    sampling = "log" if name in _LOG_BY_DEFAULT else "linear"
    if isinstance(spec, tuple) and len(spec) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec):
        integer = all(isinstance(v, int) for v in spec)
        return Range(spec[0], spec[1], sampling,
                     2 if name == "batch_size" else None, integer)
    if isinstance(spec, (list, tuple, set, frozenset)):
        return Choice(tuple(spec))
    return Fixed(spec)


# -- the space ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """An ordered, validated mapping of hyperparameter names to :class:`Range`/:class:`Choice`/:class:`Fixed`.

    ``builder_args`` are the names that go to the model's builder (not to ``zoo.Regularization`` or the
    optimizer). :meth:`draw` registers every entry with a KerasTuner ``HyperParameters`` and returns the
    values of this trial.
    """

    entries: tuple[tuple[str, Entry], ...]
    builder_args: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> Entry:
        return dict(self.entries)[name]

    def __contains__(self, name: object) -> bool:
        return name in dict(self.entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.entries)

    @property
    def tuned(self) -> tuple[str, ...]:
        """The names that are searched (not fixed); ``l1``/``l2`` only when the penalty uses them."""
        penalties = self.penalties
        out = []
        for name, entry in self.entries:
            if isinstance(entry, Fixed):
                continue
            if name == "l2" and not any("l2" in p for p in penalties):
                continue
            if name == "l1" and not any(p.startswith("l1") for p in penalties):
                continue
            out.append(name)
        return tuple(out)

    @property
    def penalties(self) -> tuple[str, ...]:
        entry = self["penalty"]
        return entry.values if isinstance(entry, Choice) else (entry.value,)

    def to_dict(self) -> dict[str, str]:
        """``{name: "LOW:HIGH[:log]" | "A,B" | "=VALUE"}``: what a search records and compares on resume."""
        return {name: entry.describe() for name, entry in self.entries}

    def describe(self) -> str:
        """The searched entries as ``name=spec`` (what a progress header shows)."""
        return " ".join(f"{n}={self[n].describe()}" for n in self.tuned)

    def for_grid(self) -> "SearchSpace":
        """A copy whose ranges all have a step (×10 for log ranges, five points for linear ones)."""
        entries = []
        for name, entry in self.entries:
            if isinstance(entry, Range) and entry.step is None:
                if entry.sampling == "log":
                    step = 2 if entry.integer else 10.0
                else:
                    step = max(1, (entry.high - entry.low) // 4) if entry.integer else (entry.high - entry.low) / 4
                entry = dataclasses.replace(entry, step=step)
            entries.append((name, entry))
        return dataclasses.replace(self, entries=tuple(entries))

    def grid_size(self) -> int | None:
        """The number of points of the grid (None while a range has no step)."""
        total = 1
        for name in self.tuned:
            entry = self[name]
            if isinstance(entry, Choice):
                total *= len(entry.values)
            elif entry.step is None:
                return None
            elif entry.sampling == "log":
                total *= int(math.log(entry.high / entry.low, entry.step) + 1e-8) + 1
            else:
                total *= int((entry.high - entry.low) / entry.step + 1e-8) + 1
        return total

    # -- drawing with KerasTuner ------------------------------------------------------------------
    def _register(self, hp: kt.HyperParameters, name: str) -> Any:
        entry = self[name]
        if isinstance(entry, Fixed):
            return hp.Fixed(name, entry.value)
        if isinstance(entry, Choice):
            if set(entry.values) == {True, False} and all(isinstance(v, bool) for v in entry.values):
                return hp.Boolean(name, default=entry.values[0])
            return hp.Choice(name, list(entry.values))
        if entry.integer:
            return hp.Int(name, int(entry.low), int(entry.high), step=entry.step, sampling=entry.sampling)
        return hp.Float(name, float(entry.low), float(entry.high), step=entry.step, sampling=entry.sampling)

    def draw(self, hp: kt.HyperParameters) -> dict[str, Any]:
        """Register every entry with ``hp`` (in a stable order) and return this trial's values.

        ``l2``/``l1`` come back as 0.0 when the drawn penalty does not use them (conditional scopes, so
        the tuners never spend trials on an inactive λ).
        """
        values: dict[str, Any] = {}
        penalty = self._register(hp, "penalty")
        values["penalty"] = penalty
        free_penalty = isinstance(self["penalty"], Choice)
        for lam, uses in (("l2", ("l2", "l1_l2")), ("l1", ("l1", "l1_l2"))):
            if free_penalty:
                with hp.conditional_scope("penalty", list(uses)):
                    drawn = self._register(hp, lam)
                values[lam] = 0.0 if penalty not in uses or drawn is None else float(drawn)
            elif penalty in uses:
                values[lam] = float(self._register(hp, lam))
            else:
                values[lam] = 0.0
        for name in self.names:
            if name not in values:
                values[name] = self._register(hp, name)
        return values


def _learning_rate_range(centre: float | None) -> Range:
    """The default learning-rate range: a decade either side of the recipe's rate (log), or 1e-4 … 1e-1."""
    if centre is None:
        return Range(1e-4, 1e-1, "log")
    return Range(float(centre) / 10, float(centre) * 10, "log")


def make_space(space: Mapping[str, Any] | None = None, fixed: Mapping[str, Any] | None = None, *,
               defaults: Mapping[str, Any] | None = None, builder_defaults: Mapping[str, Any] | None = None,
               allowed: Mapping[str, Iterable] | None = None, owner: str = "the model") -> SearchSpace:
    """The default space, narrowed, widened, fixed or extended by ``space`` and ``fixed``.

    Args:
        space: ``{name: Range | Choice | Fixed | shorthand}`` (see the module docstring).
        fixed: ``{name: value}``.
        defaults: the fixed values of the entries that are off by default: ``optimizer``,
            ``batch_norm``, ``augmentation``, ``batch_size`` (a recipe's); and ``learning_rate``, the
            centre of the default learning-rate range (a decade either side; without it 1e-4 … 1e-1).
        builder_defaults: the builder's keyword arguments that may be tuned, with their defaults
            (extends the space); ``BUILDER_RESERVED`` names are never allowed.
        allowed: allowed values by name (``optimizer``: OPTIMIZERS, ``augmentation``: the policies …).
        owner: the model's name, for messages.

    Raises:
        ValueError: an unknown name (the message lists the allowed ones), a name in both ``space`` and
            ``fixed``, or a bad range/value (low ≥ high, a negative λ, keep_prob outside (0, 1], a
            learning rate ≤ 0, an unknown optimizer …).
    """
    space = dict(space or {})
    fixed = dict(fixed or {})
    defaults = dict(defaults or {})
    builder_defaults = {k: v for k, v in dict(builder_defaults or {}).items() if k not in BUILDER_RESERVED}
    allowed_values = {"penalty": PENALTIES, "tta": TTA_MODES}
    allowed_values.update({k: tuple(v) for k, v in dict(allowed or {}).items()})

    base: dict[str, Entry] = {
        "penalty": Fixed("l2"),
        "l2": Range(1e-6, 1e-2, "log"),
        "l1": Range(1e-6, 1e-2, "log"),
        "keep_prob": Range(0.5, 1.0, "linear"),
        "learning_rate": _learning_rate_range(defaults.get("learning_rate")),
        "optimizer": Fixed(defaults.get("optimizer", "adam")),
        "batch_norm": Fixed(defaults.get("batch_norm", False)),
        "augmentation": Fixed(defaults.get("augmentation", "none")),
        "batch_size": Fixed(defaults.get("batch_size", 64)),
    }
    own = CORE_NAMES + TECHNIQUE_NAMES
    known = list(own) + [k for k in builder_defaults if k not in own]
    for source in (space, fixed):
        for name in source:
            if name not in known:
                builder_part = (f" and {owner}'s builder arguments {', '.join(builder_defaults)}"
                                if builder_defaults else "")
                raise ValueError(
                    f"unknown hyperparameter {name!r}; allowed: {', '.join(own)}{builder_part}"
                )
    both = sorted(set(space) & set(fixed))
    if both:
        raise ValueError(f"hyperparameter(s) {', '.join(both)} given both as searched and as fixed")

    entries: dict[str, Entry] = {}
    builder_args = []
    for name in known:
        kind = _kind_of(name, builder_defaults)
        if name in fixed:
            entry: Any = Fixed(fixed[name])
        elif name in space:
            entry = _shorthand(name, space[name])
        elif name in base:
            entry = base[name]
        else:
            continue  # a builder argument nobody asked to tune: the builder's default
        entries[name] = _check_entry(name, entry, kind, allowed_values)
        if name not in own:
            builder_args.append(name)
    penalty = entries["penalty"]
    if isinstance(penalty, Choice) and any(p in ("l1", "l1_l2") for p in penalty.values) \
            and isinstance(entries["l1"], Fixed) and entries["l1"].value == 0:
        raise ValueError("hyperparameter penalty offers l1 but l1 is fixed to 0")
    return SearchSpace(tuple(entries.items()), tuple(builder_args))


# -- the command line -----------------------------------------------------------------------------

def _parse_scalar(name: str, text: str, kind: str) -> Any:
    text = text.strip()
    if kind == "bool" or (kind == "any" and text.lower() in _TRUE + _FALSE and not text.isdigit()):
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"hyperparameter {name} takes true or false, got {text!r}")
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"hyperparameter {name} takes a number, got {text!r}") from None
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"hyperparameter {name} takes an integer, got {text!r}") from None
    if kind == "any":
        for convert in (int, float):
            try:
                return convert(text)
            except ValueError:
                pass
    if not text:
        raise ValueError(f"hyperparameter {name}: empty value")
    return text


def parse_assignment(text: str, *, fixed: bool, builder_defaults: Mapping[str, Any] | None = None,
                     ) -> tuple[str, Any]:
    """``"l2=1e-6:1e-2"`` -> ``("l2", Range(...))``; ``"optimizer=adam,sgd"`` -> a Choice;
    ``fixed=True``: ``"batch_norm=true"`` -> ``("batch_norm", True)`` (a plain value).

    The name is not checked here (``make_space`` does that, with the full list of allowed names).
    """
    option = "--fix" if fixed else "--space"
    if "=" not in text:
        raise ValueError(f"{option} takes NAME=VALUE{'' if fixed else ' (LOW:HIGH or A,B,...)'}, got {text!r}")
    name, _, spec = text.partition("=")
    name = name.strip()
    if not name or not spec.strip():
        raise ValueError(f"{option} takes NAME=VALUE, got {text!r}")
    kind = _kind_of(name, builder_defaults or {})
    if fixed:
        return name, _parse_scalar(name, spec, kind)
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) < 2 or len(parts) > 4:
            raise ValueError(f"--space {name}: a range is LOW:HIGH[:log|linear][:STEP], got {spec!r}")
        num_kind = "int" if kind == "int" else "float"

        def part(text: str, what: str, part_kind: str) -> Any:
            try:
                return _parse_scalar(name, text, part_kind)
            except ValueError:  # name the rule: LOW:HIGH[:log|linear][:STEP]
                raise ValueError(f"--space {name}: {what} must be {'an integer' if part_kind == 'int' else 'a number'}"
                                 f" (a range is LOW:HIGH[:log|linear][:STEP]), got {text.strip()!r} in "
                                 f"{spec!r}") from None

        low = part(parts[0], "LOW", num_kind)
        high = part(parts[1], "HIGH", num_kind)
        sampling = "log" if name in _LOG_BY_DEFAULT else "linear"
        step = 2 if name == "batch_size" else None
        for extra in parts[2:]:
            if extra.strip().lower() in ("log", "linear"):
                sampling = extra.strip().lower()
            else:
                step = part(extra, "the third/fourth part (log, linear or a STEP)", "float")
        integer = kind == "int" or (kind == "any" and all(p.strip().lstrip("-").isdigit() for p in parts[:2]))
        return name, Range(low, high, sampling, step, integer)
    values = tuple(_parse_scalar(name, part, kind) for part in spec.split(","))
    return name, Choice(values) if len(values) > 1 else Fixed(values[0])
