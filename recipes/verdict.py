"""The bias/variance verdict that ends every run, and what to try next (the course notes' "basic recipe").

    v = diagnose(train_error=0.15, val_error=0.16, baseline_error=0.01)
    v.kind        # "high bias"
    print(v.text)

Avoidable bias = train error − baseline error (human-level or Bayes error; 0 when unknown).
Variance = validation error − train error. Each is "high" when it exceeds ``threshold`` (an absolute
error difference, default 0.02 = 2 percentage points). The advice follows the notes' order: fix high
bias first (a bigger network, longer training, less regularization), then high variance (more data or
augmentation, more regularization — larger λ, smaller keep-prob — early stopping).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["Verdict", "diagnose", "KINDS", "DEFAULT_THRESHOLD"]

KINDS = ("high bias", "high variance", "high bias and high variance", "good fit")
DEFAULT_THRESHOLD = 0.02

BIAS_ADVICE = (
    "a bigger network: more layers or units (--variant with more depth or width)",
    "train longer (--epochs) or better: tune --lr, try --optimizer adam or a --schedule",
    "less regularization: smaller λ (--l2/--l1), larger keep-prob (--keep-prob), --augment none",
    "another architecture, if none of the above closes the gap",
)
VARIANCE_ADVICE = (
    "more data: a larger training set (--limit, another --data) or data augmentation (--augment)",
    "more regularization: larger λ (--l2), smaller keep-prob (--keep-prob), batch norm",
    "early stopping on validation loss (--patience)",
    "another architecture, if none of the above closes the gap",
)
GOOD_ADVICE = (
    "nothing pressing: train and validation error are both near the baseline; the test error estimates "
    "how the model generalizes",
    "to go further, lower the baseline gap with a bigger model and more data together",
)


def _error(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{field} must be a number in [0, 1], got {value!r}")
    return value


def _above(gap: float, threshold: float) -> bool:
    """``gap > threshold``, with 0.10 - 0.08 (= 0.020000000000000004) not above 0.02."""
    return gap > threshold + 1e-9


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a run's errors say: ``kind`` is one of ``KINDS``; ``advice`` is in the order to try it."""

    kind: str
    train_error: float
    val_error: float
    baseline_error: float | None
    avoidable_bias: float
    variance: float
    threshold: float
    advice: tuple[str, ...]

    @property
    def high_bias(self) -> bool:
        return _above(self.avoidable_bias, self.threshold)

    @property
    def high_variance(self) -> bool:
        return _above(self.variance, self.threshold)

    @property
    def text(self) -> str:
        """The verdict with its numbers and the numbered advice, ready to print."""
        baseline = ("0.00% (unknown: Bayes error taken as 0)" if self.baseline_error is None
                    else f"{self.baseline_error:.2%}")
        lines = [
            f"Verdict: {self.kind}",
            f"  train error {self.train_error:.2%}, validation error {self.val_error:.2%}, "
            f"baseline error {baseline}",
            f"  avoidable bias (train - baseline) {self.avoidable_bias:+.2%}, "
            f"variance (validation - train) {self.variance:+.2%}; high above {self.threshold:.2%}",
        ]
        if self.kind == "high bias and high variance":
            lines.append("  Fix the bias first, then the variance. Try, in order:")
        else:
            lines.append("  Try next, in order:" if self.kind != "good fit" else "  Next:")
        lines += [f"  {i}. {item}" for i, item in enumerate(self.advice, 1)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["advice"] = list(self.advice)
        data["text"] = self.text
        return data

    def __str__(self) -> str:
        return self.text


def diagnose(train_error: float, val_error: float, baseline_error: float | None = None, *,
             threshold: float = DEFAULT_THRESHOLD) -> Verdict:
    """Bias from train error vs. ``baseline_error``, variance from validation vs. train error.

    Errors are fractions in [0, 1] (1 − accuracy). ``baseline_error`` is the human-level or Bayes error
    of the task; None takes it as 0. ``threshold`` (> 0, absolute) is the gap above which bias or
    variance is called high.
    """
    train = _error("train_error", train_error)
    val = _error("val_error", val_error)
    base = None if baseline_error is None else _error("baseline_error", baseline_error)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not math.isfinite(threshold) or not 0 < threshold < 1:
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")
    bias = train - (base or 0.0)
    variance = val - train
    high_bias, high_variance = _above(bias, threshold), _above(variance, threshold)
    if high_bias and high_variance:
        kind, advice = "high bias and high variance", BIAS_ADVICE[:3] + VARIANCE_ADVICE
    elif high_bias:
        kind, advice = "high bias", BIAS_ADVICE
    elif high_variance:
        kind, advice = "high variance", VARIANCE_ADVICE
    else:
        kind, advice = "good fit", GOOD_ADVICE
    return Verdict(kind, train, val, base, bias, variance, float(threshold), tuple(advice))
