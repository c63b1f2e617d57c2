"""What a search's options allow, without Keras or KerasTuner: the tuners, the pruners and the
objectives. ``tuning.tuners``, ``tuning.pruning`` and ``tuning.search`` re-export them; they live here so
that ``python -m tuning`` checks its arguments before TensorFlow is imported."""

from __future__ import annotations

__all__ = ["TUNERS", "PRUNERS", "OBJECTIVES"]

TUNERS = ("hyperband", "bayesian", "random", "grid", "tpe")
PRUNERS = ("none", "median", "halving")
OBJECTIVES = {"val_accuracy": "max", "val_loss": "min", "accuracy": "max", "loss": "min"}
