"""One config object for every regularizer a zoo model can carry.

The course notes' L2 term is ``λ/(2m)·‖W‖²_F`` added to the mean loss over ``m`` examples. Keras adds
``λ·Σw²`` to the (already averaged) loss, so a course-notes ``λ_c`` is Keras' ``λ = λ_c / (2m)``. An optimizer's
decoupled SGD weight decay ``wd`` (update ``w -= lr·wd·w``) is the same as Keras L2 with ``λ = wd / 2``,
because ``d(λ·w²)/dw = 2λ·w``. Only kernels (Conv, Dense, recurrent) are penalized; biases and batch-norm
γ/β are not.

Dropout is inverted dropout (Keras scales at train time): ``rate = 1 - keep_prob``, nothing at inference.
``keep_prob = 1`` creates no Dropout layer at all.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Keras is imported where a layer is made, so that the command lines check first
    import keras

__all__ = ["Regularization", "NO_REGULARIZATION"]


def _check_float(field: str, value: Any, low: float, high: float | None, low_open: bool) -> float:
    allowed = f"{'(' if low_open else '['}{low}, {'inf)' if high is None else f'{high}]'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"Regularization.{field} must be a number in {allowed}, got {value!r} ({type(value).__name__})"
        )
    value = float(value)
    too_low = value <= low if low_open else value < low
    if math.isnan(value) or math.isinf(value) or too_low or (high is not None and value > high):
        raise ValueError(f"Regularization.{field} must be in {allowed}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Regularization:
    """λ (L1, L2), dropout keep-prob and batch norm, carried from a recipe into every layer.

    Args:
        l1: λ of the L1 penalty, ``loss += l1·Σ|w|`` over every kernel (sparse weights). ``>= 0``.
        l2: λ of the L2 penalty, ``loss += l2·Σw²`` over every kernel. ``>= 0``.
        keep_prob: probability of keeping a unit in Dropout, in ``(0, 1]``; ``1`` means no Dropout layer.
        batch_norm: conv/dense -> BatchNormalization -> activation where the architecture allows it
            (never on the input or the output layer); the layer before a BN has no bias.
    """

    l1: float = 0.0
    l2: float = 0.0
    keep_prob: float = 1.0
    batch_norm: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "l1", _check_float("l1", self.l1, 0.0, None, low_open=False))
        object.__setattr__(self, "l2", _check_float("l2", self.l2, 0.0, None, low_open=False))
        object.__setattr__(
            self, "keep_prob", _check_float("keep_prob", self.keep_prob, 0.0, 1.0, low_open=True)
        )
        if not isinstance(self.batch_norm, bool):
            raise ValueError(
                f"Regularization.batch_norm must be True or False, got {self.batch_norm!r}"
            )

    # -- what builders ask for -------------------------------------------------------------------
    @property
    def penalized(self) -> bool:
        """True when the kernels carry an L1 or L2 penalty."""
        return self.l1 > 0 or self.l2 > 0

    @property
    def dropout_rate(self) -> float:
        return 1.0 - self.keep_prob

    def kernel_regularizer(self) -> keras.regularizers.Regularizer | None:
        """A fresh Keras regularizer for one kernel, or None when both λ are 0."""
        import keras

        if self.l1 > 0 and self.l2 > 0:
            return keras.regularizers.L1L2(l1=self.l1, l2=self.l2)
        if self.l2 > 0:
            return keras.regularizers.L2(self.l2)
        if self.l1 > 0:
            return keras.regularizers.L1(self.l1)
        return None

    def dropout(self, name: str | None = None, keep_prob: float | None = None) -> keras.layers.Layer | None:
        """A Dropout layer with ``rate = 1 - keep_prob`` or None when keep_prob is 1.

        ``keep_prob`` overrides the config for one layer (the notes: lower keep-prob for the largest layers).
        """
        import keras

        kp = self.keep_prob if keep_prob is None else _check_float("keep_prob", keep_prob, 0.0, 1.0, True)
        if kp >= 1.0:
            return None
        return keras.layers.Dropout(1.0 - kp, name=name)

    def apply_dropout(self, x, name: str | None = None, keep_prob: float | None = None):
        """``x`` through the Dropout layer of :meth:`dropout`, or ``x`` unchanged."""
        layer = self.dropout(name=name, keep_prob=keep_prob)
        return x if layer is None else layer(x)

    # -- plumbing ----------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> "Regularization":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Regularization":
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(
                f"Regularization got unknown field(s) {sorted(unknown)}; allowed: l1, l2, keep_prob, batch_norm"
            )
        return cls(**data)

    @classmethod
    def none(cls) -> "Regularization":
        """No penalty, no dropout, no batch norm: the form the reference parameter counts use."""
        return cls(l1=0.0, l2=0.0, keep_prob=1.0, batch_norm=False)


NO_REGULARIZATION = Regularization.none()


def as_regularization(regularization: Regularization | dict | None,
                      paper: Regularization | None = None) -> Regularization:
    """What a builder uses: ``None`` -> ``paper`` (the published model's own regularization; the defaults
    without one); a ``Regularization`` as given, whole; a dict changes only the fields it names, over
    ``paper``'s (``{"l2": 1e-4}`` on AlexNet keeps its dropout 0.5 and adds the penalty)."""
    base = paper if paper is not None else Regularization()
    if regularization is None:
        return base
    if isinstance(regularization, Regularization):
        return regularization
    if isinstance(regularization, dict):
        return Regularization.from_dict({**base.to_dict(), **regularization})
    raise ValueError(
        f"regularization must be a zoo.Regularization, a dict of its fields or None, got {regularization!r}"
    )
