"""Gradient checking (the course notes' "grad check"): back-propagation against two-sided differences.

    import zoo
    result = zoo.gradcheck(model, x, y)          # a sample of entries of every trainable weight
    print(result)                                # per-weight table, worst entries, verdict
    assert result.ok                             # False only for a bug (relative difference ≳ 1e-3)

For a sample of parameters θ_i of **every** trainable weight, the analytic gradient dθ_i (back-propagation,
``tf.GradientTape``) is compared with the numerical one ``(J(θ + ε·e_i) − J(θ − ε·e_i)) / 2ε``, where
``J = mean loss over the batch + Σ model.losses`` (the L1/L2 penalty is part of J). The relative difference
``‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂)`` is read the notes' way: about 1e-7 or less is fine, about
1e-5 deserves a look, 1e-3 or more is a bug. Only for debugging: it costs two forward passes per checked
parameter.

How the check is made exact enough to read those figures:

- **float64.** The model is rebuilt from its config (``model.get_config()`` -> ``from_config``) with every
  floating dtype policy, the float inputs included, set to ``"float64"``; the trainable weights and the
  float non-trainable ones (BatchNormalization's moving mean and variance) are copied across cast to
  float64. In float32 the rounding error of J alone, ~1e-7·|J| / ε, would swamp the figures. Custom layers
  need a working ``get_config`` (they are found by class, no registration needed) and must compute in
  their layer's dtype (``keras.ops``, no hard-coded float32).
- **Dropout off.** The float64 copy has ``rate = 0`` in every Dropout-family layer (``Dropout``,
  ``SpatialDropout*``, ``GaussianDropout``, ``AlphaDropout``), ``stddev = 0`` in ``GaussianNoise``, and
  0 for every ``dropout`` / ``recurrent_dropout`` argument (recurrent layers, attention). J is evaluated twice at θ and must come out the
  same: a model that is still random (a custom noise layer) raises a ValueError.
- **BatchNormalization: training mode by default** (``training=True``). J is computed the way training computes
  it, with the batch's own mean and variance, so the check covers BN's own backward pass (the gradient
  through the batch statistics); for a fixed batch that J is deterministic. The moving statistics are not
  part of this J, and the updates a training-mode call makes to them are thrown away: J is evaluated with
  ``model.stateless_call`` on the float64 copy, so neither the copy nor — above all — the original model
  changes. ``training=False`` checks the inference-mode J instead (moving statistics as constants, BN is then
  an affine map per channel). Use a batch of at least 2 (4 or more for Dense + BN) in training mode.
- **ε = 1e-6 by default.** The two-sided difference errs by about ε²·|J'''|/6 (truncation) plus about
  eps·|J|/ε (float64 round-off, eps = 2.2e-16). Deep batch-normed nets are curved enough for the first term
  to matter: on ``googlenet_small`` (8×8×1, batch 4, L2 1e-3, BN on, one entry per weight) ε = 1e-5 gave
  2.3e-6 on a correct model, ε = 1e-6 6e-9 and ε = 1e-7 7e-8 (round-off); every other family stayed at or
  below about 3e-9 with ε = 1e-6.
- **Kinks.** ReLU and max-pool are not differentiable everywhere: when a step of ε moves some unit across
  its kink, that entry's difference quotient is off by a share of that unit's slope (seen on
  ``googlenet_small``, seed 2: −14.082 against −14.103, 1.4e-3 for the entry). So an entry whose
  difference would count (beyond round-off and ≥ 1e-6 relative) is **measured again with ε/10 and ε/100,
  and the smallest step is kept**: a kink or truncation error of the larger steps does not survive it, a
  wrong gradient does (every step agrees with the others and none with back-propagation). The report
  lists such entries with all three figures; ``result.remeasured`` counts them.
- **Sampling.** Each trainable weight contributes ``min(size, max_params)`` entries: its entry with the
  largest analytic gradient (so that a weight with mostly zero gradient, such as an embedding, still shows
  a signal) and the rest drawn uniformly without replacement with ``numpy.random.default_rng(seed)``.
- **The verdict** reads the larger of the overall relative difference and the worst per-weight one
  (a bug in one small weight can hide in the overall figure). A difference that float64 round-off explains
  does not count: J is known to about eps·|J|, so a difference quotient can be off by about eps·|J| / ε
  (3e-10 at ε = 1e-6, J = 1.5) whatever the gradient, which alone makes a weight with a gradient of 1e-3
  read 1e-7. A weight whose ‖dθ_approx − dθ‖₂ stays within 100 times that bound (per entry, ×100 more
  for an entry kept at ε/100) is "within round-off" and does not decide. Thresholds: below 1e-6 "fine",
  below 1e-3 "look closer", otherwise "bug" (``ok`` is False only for "bug").
  In float64 a correct model lands far below 1e-6 (about 1e-9 for every zoo family). A "look closer" on a
  model you trust: rerun with another ``epsilon`` and ``seed`` — a figure that moves with ε is the
  difference quotient's error; one that stays put is in the gradient.

The loss: ``loss=None`` takes the model's compiled loss when it has one, otherwise sparse categorical
cross-entropy with ``from_logits=True`` unless the model ends in a softmax. A ``keras.losses.Loss`` is used
through its ``call`` (so its float32 ``dtype`` does not cast the float64 predictions back) with its
reduction (``"sum"`` sums, every other reduction averages); a plain callable ``loss(y_true, y_pred)`` is
averaged. Needs the TensorFlow backend.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import keras
import numpy as np

__all__ = ["GradCheckResult", "WeightCheck", "GradCheckEntry", "gradcheck",
           "FINE_BELOW", "BUG_FROM", "verdict_for"]

FINE_BELOW = 1e-6  # the notes' "about 1e-7 is right" (1e-6 is the midpoint between 1e-7 and 1e-5, in logs)
BUG_FROM = 1e-3  # the notes' "1e-3 is a bug"
ROUNDOFF_ULPS = 100  # J's float64 error bound in units of eps·|J| (about 1 is observed): a 100× margin
WORST_ENTRIES = 5
DEFAULT_EPSILON = 1e-6  # measured as the best of 1e-5, 1e-6, 1e-7 on every zoo family (module docstring)

_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64", "mixed_float16", "mixed_bfloat16")
_RATE_ZERO = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
              "AlphaDropout")
_STDDEV_ZERO = ("GaussianNoise",)
_RNN_DROPOUT_KEYS = ("dropout", "recurrent_dropout")


def verdict_for(relative_difference: float) -> str:
    """``"fine"`` (< 1e-6), ``"look closer"`` (< 1e-3) or ``"bug"``; NaN is a bug."""
    if not relative_difference < BUG_FROM:  # NaN lands here too
        return "bug"
    return "fine" if relative_difference < FINE_BELOW else "look closer"


_VERDICT_TEXT = {
    "fine": "fine (≲1e-7 in the notes: back-propagation agrees with the numerical gradient)",
    "look closer": "look closer (~1e-5 in the notes: a kink crossed by ε or a subtle error; rerun with "
                   "another epsilon and seed, and read the per-weight table)",
    "bug": "bug (≳1e-3 in the notes: back-propagation disagrees with the numerical gradient)",
}


@dataclasses.dataclass(frozen=True)
class WeightCheck:
    """One trainable weight: how many entries were checked and how well they agree."""

    name: str  # the variable's path, e.g. "conv1_conv/kernel"
    shape: tuple
    checked: int
    analytic_norm: float  # ‖dθ‖₂ over the checked entries
    numeric_norm: float  # ‖dθ_approx‖₂ over the checked entries
    difference_norm: float  # ‖dθ_approx − dθ‖₂ over the checked entries
    relative_difference: float
    within_roundoff: bool  # the difference is no larger than float64 round-off in J can make it


@dataclasses.dataclass(frozen=True)
class GradCheckEntry:
    """One checked parameter: ``weight[index]``, both gradients and their absolute difference."""

    weight: str
    index: tuple
    analytic: float
    numeric: float  # the two-sided difference at ε; at ε/100 when it was measured again
    estimates: tuple = ()  # (at ε,) or (at ε, at ε/10, at ε/100)

    @property
    def remeasured(self) -> bool:
        return len(self.estimates) > 1

    @property
    def difference(self) -> float:
        return abs(self.analytic - self.numeric)


@dataclasses.dataclass(frozen=True)
class GradCheckResult:
    """What :func:`gradcheck` found. ``str(result)`` (or :meth:`report`) is the readable form."""

    model_name: str
    relative_difference: float  # overall, over every checked entry: the notes' figure
    difference_norm: float  # ‖dθ_approx − dθ‖₂ over every checked entry
    weights: tuple  # of WeightCheck, in model.trainable_variables order
    worst: tuple  # of GradCheckEntry, largest |analytic − numeric| first
    epsilon: float
    training: bool
    loss: float  # the data term of J at θ
    penalty: float  # Σ model.losses at θ
    checked: int
    total: int  # trainable parameters
    max_params: int
    seed: int | None
    roundoff: float  # per entry at ε: how far round-off in J can move a numerical derivative (×100 at ε/100)
    loss_name: str = ""  # the data term, e.g. "SparseCategoricalCrossentropy(from_logits=True)"
    remeasured: int = 0  # entries measured again with ε/10 and ε/100 (see gradcheck)
    roundoff_norm: float | None = None  # √Σ (each entry's bound)²; None: roundoff·√checked

    @property
    def within_roundoff(self) -> bool:
        """True when even the overall difference is no larger than float64 round-off explains."""
        bound = self.roundoff * math.sqrt(max(self.checked, 1)) if self.roundoff_norm is None else self.roundoff_norm
        return self.difference_norm <= bound

    @property
    def worst_weight(self) -> WeightCheck:
        """The weight with the largest relative difference (round-off or not)."""
        return max(self.weights, key=lambda w: _nan_high(w.relative_difference))

    @property
    def deciding_difference(self) -> float:
        """The figure the verdict reads: the larger of the overall and the worst weight's relative difference.

        A difference no larger than round-off explains (a weight whose gradient is tiny, or everything when
        every gradient is) does not count; 0.0 when nothing counts.
        """
        figures = [] if self.within_roundoff else [self.relative_difference]
        figures += [w.relative_difference for w in self.weights if not w.within_roundoff]
        return max(figures, key=_nan_high) if figures else 0.0

    @property
    def verdict(self) -> str:
        """``"fine"``, ``"look closer"`` or ``"bug"`` (see :func:`verdict_for`)."""
        return verdict_for(self.deciding_difference)

    @property
    def ok(self) -> bool:
        """True unless the verdict is ``"bug"``."""
        return self.verdict != "bug"

    def report(self) -> str:
        mode = ("training mode (BN on batch statistics, dropout off)" if self.training
                else "inference mode (BN on moving statistics, dropout off)")
        lines = [
            f"gradient check of {self.model_name!r}: {self.checked:,} of {self.total:,} trainable parameters "
            f"(≤ {self.max_params} per weight, {len(self.weights)} weights, seed {self.seed}), float64, "
            f"ε = {self.epsilon:g}, {mode}",
            f"J = loss {self.loss:.6g}{f' ({self.loss_name})' if self.loss_name else ''} + penalty Σ model.losses "
            f"{self.penalty:.6g} = {self.loss + self.penalty:.6g}",
            "",
        ]
        width = max([len("weight")] + [len(w.name) for w in self.weights])
        lines.append(f"{'weight':<{width}}  {'shape':<16} {'checked':>7}  {'‖dθ‖':>9}  {'rel. diff':>9}")
        for w in self.weights:
            # marked only where it matters: a figure that would read "look closer" or worse
            shown = w.within_roundoff and not w.relative_difference < FINE_BELOW
            note = "  (within round-off: does not count)" if shown else ""
            lines.append(f"{w.name:<{width}}  {str(w.shape):<16} {w.checked:>7}  {w.analytic_norm:>9.2e}  "
                         f"{w.relative_difference:>9.2e}{note}")
        lines += ["", "worst entries (largest |analytic − numeric|):"]
        for e in self.worst:
            lines.append(f"  {e.weight}{list(e.index)}: analytic {e.analytic:+.10e}  numeric {e.numeric:+.10e}"
                         f"  |diff| {e.difference:.2e}")
            if e.remeasured:
                lines.append("      measured again: " + ", ".join(
                    f"{e.estimates[k]:+.10e} (ε{'' if k == 0 else f'/{10 ** k}'})" for k in range(len(e.estimates)))
                    + "; the last counts")
        if self.remeasured:
            lines.append(f"  ({self.remeasured} entr{'y' if self.remeasured == 1 else 'ies'} measured again with "
                         "ε/10 and ε/100: the smallest step counts)")
        worst = self.worst_weight
        worst_text = f", worst weight {worst.relative_difference:.2e} ({worst.name})"
        if self.within_roundoff and not self.relative_difference < FINE_BELOW:
            worst_text += (f" (‖dθ_approx − dθ‖₂ {self.difference_norm:.1e} is within float64 round-off, "
                           f"{self.roundoff:.1e} per entry: it does not count)")
        lines += ["", f"relative difference {self.relative_difference:.2e} overall{worst_text}: "
                      f"{_VERDICT_TEXT[self.verdict]}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def _nan_high(value: float) -> float:
    return math.inf if math.isnan(value) else value


def _relative_difference(analytic: np.ndarray, numeric: np.ndarray) -> float:
    denominator = float(np.linalg.norm(numeric) + np.linalg.norm(analytic))
    if denominator == 0.0:
        return 0.0  # both exactly zero: they agree
    return float(np.linalg.norm(numeric - analytic) / denominator)


# -- argument checks ---------------------------------------------------------------------------------
def _check_epsilon(epsilon: Any) -> float:
    if (isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating, np.integer))
            or not math.isfinite(float(epsilon)) or not 0.0 < float(epsilon) < 1.0):
        raise ValueError(
            f"gradcheck: epsilon must be a finite number in (0, 1) (1e-5 … 1e-7 suit float64), got {epsilon!r}"
        )
    return float(epsilon)


def _check_max_params(max_params: Any) -> int:
    if isinstance(max_params, bool) or not isinstance(max_params, (int, np.integer)) or max_params < 1:
        raise ValueError(
            f"gradcheck: max_params must be an integer >= 1 (entries checked per trainable weight), "
            f"got {max_params!r}"
        )
    return int(max_params)


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"gradcheck: seed must be an integer >= 0 or None, got {seed!r}")
    return int(seed)


def _as_float64(name: str, data: Any) -> Any:
    """Arrays of ``data`` (a tree) as numpy; floating ones cast to float64; the number of examples checked."""

    def convert(leaf):
        array = np.asarray(leaf)
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(f"gradcheck: {name} must hold numbers, got an array of {array.dtype}")
        if np.issubdtype(array.dtype, np.floating):
            array = array.astype(np.float64)
            if not np.all(np.isfinite(array)):
                raise ValueError(f"gradcheck: {name} must be finite, got NaN or infinity")
        if array.ndim == 0:
            raise ValueError(f"gradcheck: {name} must have a batch axis, got a scalar")
        return array

    if data is None:
        raise ValueError(f"gradcheck: {name} must be an array (or a list/dict of arrays), got None")
    return keras.tree.map_structure(convert, data)


def _examples(name: str, data: Any) -> int:
    lengths = {int(leaf.shape[0]) for leaf in keras.tree.flatten(data)}
    if len(lengths) != 1:
        raise ValueError(f"gradcheck: every array of {name} must have the same length, got {sorted(lengths)}")
    (length,) = lengths
    if length < 1:
        raise ValueError(f"gradcheck: {name} must hold at least one example, got {length}")
    return length


# -- the float64 copy --------------------------------------------------------------------------------
def _float64_dtype(value: Any) -> Any:
    if isinstance(value, str):
        return "float64" if value in _FLOAT_DTYPES else value
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        name = value["config"].get("name")
        if name in _FLOAT_DTYPES:
            return "float64"
    return value


def _checking_config(node: Any) -> Any:
    """A copy of a (nested) Keras config in float64 with every dropout and noise switched off."""
    if isinstance(node, list):
        return [_checking_config(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: (_float64_dtype(value) if key == "dtype" else _checking_config(value))
            for key, value in node.items()}
    config = node.get("config")
    if isinstance(config, dict):
        if node.get("class_name") in _RATE_ZERO and "rate" in config:
            config["rate"] = 0.0
        if node.get("class_name") in _STDDEV_ZERO and "stddev" in config:
            config["stddev"] = 0.0
        for key in _RNN_DROPOUT_KEYS:
            if isinstance(config.get(key), (int, float)) and not isinstance(config.get(key), bool):
                config[key] = 0.0
    return node


def _layer_classes(model: keras.Model) -> dict[str, type]:
    """Every layer class in ``model`` by class name and registered name, for ``from_config``."""
    classes: dict[str, type] = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for cls in type(layer).__mro__:
            if cls.__module__.startswith("keras.") or cls is object:
                break
            classes[cls.__name__] = cls
            classes[keras.saving.get_registered_name(cls)] = cls
        inner = getattr(layer, "layer", None)  # wrappers (Bidirectional, TimeDistributed) of custom layers
        if isinstance(inner, keras.layers.Layer):
            classes[type(inner).__name__] = type(inner)
    return classes


def _training_kwargs(model: keras.Model, training: bool) -> dict:
    """``{"training": training}`` when the model's ``call`` takes it (functional models always do)."""
    return {"training": training} if getattr(model, "_call_has_training_arg", True) else {}


def _is_float(variable) -> bool:
    return "float" in str(variable.dtype)


def _float64_copy(model: keras.Model, x: Any) -> keras.Model:
    """``model`` rebuilt in float64 with dropout off, carrying the original weights cast to float64."""
    try:
        config = _checking_config(model.get_config())
        with keras.saving.custom_object_scope(_layer_classes(model)):
            copy = type(model).from_config(config)
    except Exception as error:  # noqa: BLE001  (re-raised with the remedy)
        raise ValueError(
            f"gradcheck: cannot rebuild model {model.name!r} in float64 from its config "
            f"({type(error).__name__}: {error}); every custom layer needs a get_config() that from_config "
            "accepts"
        ) from error
    if not copy.built:
        copy(keras.tree.map_structure(lambda a: a[:1], x), **_training_kwargs(copy, False))
    stuck = sorted({layer.name for layer in copy._flatten_layers(include_self=True, recursive=True)
                    if any(_is_float(v) and "float64" not in str(v.dtype) for v in layer._trainable_variables
                           + layer._non_trainable_variables)
                    or (str(layer.dtype_policy.compute_dtype) in _FLOAT_DTYPES[:3]
                        and not isinstance(layer, (keras.Model, keras.layers.InputLayer)))})
    if stuck:
        raise ValueError(
            f"gradcheck: cannot rebuild model {model.name!r} in float64: layer(s) {', '.join(stuck)} of its "
            "copy still compute in a lower precision (a subclassed model's own layers do not inherit its dtype: "
            "create them with dtype=self.dtype_policy, or build the model as a functional one)"
        )
    pairs = [(model.trainable_variables, copy.trainable_variables, "trainable"),
             ([v for v in model.non_trainable_variables if _is_float(v)],
              [v for v in copy.non_trainable_variables if _is_float(v)], "non-trainable")]
    for originals, copies, kind in pairs:
        if len(originals) != len(copies) or any(tuple(a.shape) != tuple(b.shape)
                                                for a, b in zip(originals, copies)):
            raise ValueError(
                f"gradcheck: the float64 copy of {model.name!r} does not have the original's {kind} weights "
                f"({len(copies)} vs {len(originals)}); does a custom layer create weights outside build()?"
            )
        for original, clone in zip(originals, copies):
            clone.assign(np.asarray(keras.ops.convert_to_numpy(original), dtype=np.float64))
    return copy


# -- the loss ----------------------------------------------------------------------------------------
def _loss_function(model: keras.Model, loss: Any) -> tuple[Callable, str]:
    """``(fn(y_true, y_pred) -> scalar, description)`` with no float32 cast on the way."""
    if loss is None and getattr(model, "compiled", False) and getattr(model, "loss", None) is not None:
        loss = model.loss
        if isinstance(loss, (list, tuple, dict)):
            raise ValueError(
                f"gradcheck: model {model.name!r} is compiled with one loss per output ({loss!r}); pass loss= "
                "a single Keras loss or callable for its output"
            )
    if loss is None:
        from zoo.layers import outputs_logits

        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model))
    if isinstance(loss, str):
        try:
            loss = keras.losses.get(loss)
        except ValueError:
            raise ValueError(
                f"gradcheck: loss must be a Keras loss, its name (e.g. 'sparse_categorical_crossentropy'), a "
                f"callable loss(y_true, y_pred) or None, got {loss!r}"
            ) from None
    if isinstance(loss, keras.losses.Loss):
        instance = loss
        total = instance.reduction == "sum"

        def fn(y_true, y_pred):
            values = instance.call(y_true, y_pred)
            return keras.ops.sum(values) if total else keras.ops.mean(values)

        config = {k: v for k, v in instance.get_config().items() if k in ("from_logits",)}
        return fn, f"{type(instance).__name__}({', '.join(f'{k}={v}' for k, v in config.items())})"
    if callable(loss):
        function = loss

        def fn(y_true, y_pred):
            return keras.ops.mean(function(y_true, y_pred))

        return fn, getattr(function, "__name__", type(function).__name__)
    raise ValueError(
        f"gradcheck: loss must be a Keras loss, its name, a callable loss(y_true, y_pred) or None, got {loss!r}"
    )


# -- the check ---------------------------------------------------------------------------------------
def gradcheck(model: keras.Model, x: Any, y: Any, loss: Any = None, *, epsilon: float = DEFAULT_EPSILON,
              max_params: int = 5, seed: int | None = 0, training: bool = True) -> GradCheckResult:
    """Check ``model``'s back-propagated gradients against two-sided differences, in float64.

    Args:
        model: a built ``keras.Model`` with at least one trainable weight; it is left exactly as it was
            (weights, BN moving statistics, dtype): the check runs on a float64 copy rebuilt from its config.
        x, y: one batch (arrays, or lists/dicts of arrays for several inputs), the same number of examples.
            Keep it small: every checked parameter costs two forward passes of the batch.
        loss: None (the compiled loss, else sparse categorical cross-entropy, from logits unless the model
            ends in a softmax), a ``keras.losses.Loss``, a loss name or a callable ``loss(y_true, y_pred)``.
        epsilon: the step ε of ``(J(θ+ε) − J(θ−ε)) / 2ε``, in ``(0, 1)``; default 1e-6 (the module
            docstring says why not 1e-5 or 1e-7).
        max_params: entries checked per trainable weight (all of them for smaller weights), ``>= 1``.
        seed: which entries are drawn (``numpy.random.default_rng(seed)``); None draws fresh ones.
        training: True (default) evaluates J in training mode (BN on batch statistics, its moving statistics
            untouched), False in inference mode (BN on its moving statistics). Dropout is off either way.

    Returns:
        a :class:`GradCheckResult`: overall and per-weight relative differences, the worst entries, the
        ``verdict`` (``"fine"``, ``"look closer"``, ``"bug"``) and ``ok`` (not a bug); ``print()`` it.

    Raises:
        ValueError: a bad argument (named, with the allowed values), a model with no trainable weights,
            a model that cannot be rebuilt in float64 or stays random with dropout off.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"gradcheck: model must be a keras.Model, got {type(model).__name__}")
    epsilon = _check_epsilon(epsilon)
    max_params = _check_max_params(max_params)
    seed = _check_seed(seed)
    if not isinstance(training, bool):
        raise ValueError(f"gradcheck: training must be True or False, got {training!r}")
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"gradcheck needs the TensorFlow backend (KERAS_BACKEND=tensorflow), got {keras.backend.backend()!r}"
        )
    x = _as_float64("x", x)
    y = _as_float64("y", y)
    length_x, length_y = _examples("x", x), _examples("y", y)
    if length_x != length_y:
        raise ValueError(
            f"gradcheck: x and y must hold the same number of examples, got len(x) = {length_x} and "
            f"len(y) = {length_y}"
        )
    if not model.built:
        raise ValueError(f"gradcheck: model {model.name!r} is not built; call it on data or build() it first")
    if not model.trainable_variables:
        raise ValueError(
            f"gradcheck: model {model.name!r} has no trainable weights (trainable={model.trainable}); "
            "nothing to check"
        )
    loss_fn, loss_name = _loss_function(model, loss)

    import tensorflow as tf

    copy = _float64_copy(model, x)
    variables = copy.trainable_variables
    names = [v.path for v in model.trainable_variables]  # the original's names (the copy's match by order)
    shapes = [tuple(v.shape) for v in variables]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    theta = np.concatenate([np.asarray(keras.ops.convert_to_numpy(v), np.float64).ravel() for v in variables])
    non_trainable = [tf.constant(keras.ops.convert_to_numpy(v)) for v in copy.non_trainable_variables]
    x_tensor = keras.tree.map_structure(tf.constant, x)
    y_tensor = keras.tree.map_structure(tf.constant, y)

    def parts(flat):
        values = [tf.reshape(p, s) for p, s in zip(tf.split(flat, sizes), shapes)]
        outputs, _, losses = copy.stateless_call(values, non_trainable, x_tensor, return_losses=True,
                                                 **_training_kwargs(copy, training))
        data = tf.cast(loss_fn(y_tensor, outputs), tf.float64)
        penalty = tf.add_n([tf.cast(tf.reduce_sum(l), tf.float64) for l in losses]) if losses else (
            tf.constant(0.0, tf.float64))
        return data, penalty

    # One trace (autograph off: Keras layers need none); the gradient comes from the traced forward graph.
    @tf.function(autograph=False)
    def objective_parts(flat):
        return parts(flat)

    def objective(flat):
        data, penalty = objective_parts(flat)
        return data + penalty

    def value_and_gradient(flat):
        with tf.GradientTape() as tape:
            tape.watch(flat)
            data, penalty = objective_parts(flat)
            j = data + penalty
        return j, data, penalty, tape.gradient(j, flat)

    flat0 = tf.constant(theta)
    j0, data0, penalty0, gradient = (t.numpy() for t in value_and_gradient(flat0))
    if not math.isfinite(float(j0)):
        raise ValueError(f"gradcheck: J is not finite at the model's weights (J = {float(j0)}); check x and y")
    j_again = float(objective(flat0).numpy())
    j_third = float(objective(flat0).numpy())
    tolerance = 1e-12 * max(1.0, abs(float(j0)))
    if abs(j_again - float(j0)) > tolerance or abs(j_third - j_again) > tolerance:
        raise ValueError(
            f"gradcheck: J differs between two evaluations at the same weights ({float(j0)!r}, {j_again!r}, "
            f"{j_third!r}) with dropout off: a layer of {model.name!r} is still random"
            + ("; try training=False" if training else "")
        )

    rng = np.random.default_rng(seed)
    offsets = np.cumsum([0] + sizes)
    chosen: list[np.ndarray] = []
    for w, size in enumerate(sizes):
        local = gradient[offsets[w]:offsets[w + 1]]
        count = min(size, max_params)
        top = int(np.argmax(np.abs(local)))
        rest = np.delete(np.arange(size), top)
        picks = [top] + (list(rng.choice(rest, count - 1, replace=False)) if count > 1 else [])
        chosen.append(np.sort(np.asarray(picks, dtype=np.int64)))

    # Round-off: each J carries an error of about eps·|J| (J is a sum of positive terms: loss and penalty),
    # so (J+ − J−) / 2ε can be off by about eps·|J| / ε per entry whatever the gradient is.
    magnitude = abs(float(data0)) + abs(float(penalty0))
    roundoff = ROUNDOFF_ULPS * float(np.finfo(np.float64).eps) * magnitude / epsilon

    def two_sided(i: int, step: float) -> float:
        plus, minus = theta.copy(), theta.copy()
        plus[i] += step
        minus[i] -= step
        j_plus = float(objective(tf.constant(plus)).numpy())
        j_minus = float(objective(tf.constant(minus)).numpy())
        return (j_plus - j_minus) / (plus[i] - minus[i])  # the step actually taken in float64

    analytic_all, numeric_all, bounds_all, entries, weights = [], [], [], [], []
    for w, picks in enumerate(chosen):
        analytic = gradient[offsets[w] + picks]
        numeric = np.empty(len(picks))
        bounds = np.empty(len(picks))  # the round-off bound of each entry's kept estimate
        name = names[w]
        for k, local_index in enumerate(picks):
            i = int(offsets[w] + local_index)
            estimates = (two_sided(i, epsilon),)
            a, n = float(analytic[k]), estimates[0]
            if abs(a - n) > roundoff and not abs(a - n) < FINE_BELOW * (abs(a) + abs(n)):
                # It would count: measure again with ε/10 and ε/100 and keep the smallest step. A kink within
                # ε of θ or the truncation error of ε does not survive it; a wrong gradient does (every step
                # agrees with the others, none with back-propagation). Round-off grows as the step shrinks.
                estimates += (two_sided(i, epsilon / 10), two_sided(i, epsilon / 100))
            numeric[k] = estimates[-1]
            bounds[k] = roundoff * 10 ** (len(estimates) - 1)
            entries.append(GradCheckEntry(name, tuple(int(j) for j in np.unravel_index(local_index, shapes[w])),
                                          a, float(numeric[k]), tuple(float(e) for e in estimates)))
        analytic_all.append(analytic)
        numeric_all.append(numeric)
        bounds_all.append(bounds)
        difference = float(np.linalg.norm(numeric - analytic))
        weights.append(WeightCheck(
            name, shapes[w], len(picks), float(np.linalg.norm(analytic)), float(np.linalg.norm(numeric)),
            difference, _relative_difference(analytic, numeric),
            within_roundoff=difference <= float(np.linalg.norm(bounds)),
        ))

    analytic_all, numeric_all = np.concatenate(analytic_all), np.concatenate(numeric_all)
    roundoff_norm = float(np.linalg.norm(np.concatenate(bounds_all)))
    worst = tuple(sorted(entries, key=lambda e: -_nan_high(e.difference))[:WORST_ENTRIES])
    return GradCheckResult(
        model_name=model.name,
        relative_difference=_relative_difference(analytic_all, numeric_all),
        difference_norm=float(np.linalg.norm(numeric_all - analytic_all)),
        weights=tuple(weights),
        worst=worst,
        epsilon=epsilon,
        training=training,
        loss=float(data0),
        penalty=float(penalty0),
        checked=int(sum(len(p) for p in chosen)),
        total=int(sum(sizes)),
        max_params=max_params,
        seed=seed,
        roundoff=roundoff,
        loss_name=loss_name,
        remeasured=sum(e.remeasured for e in entries),
        roundoff_norm=roundoff_norm,
    )
