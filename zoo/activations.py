"""Initialization and activation diagnostics: how a signal travels through a freshly built model.

    stats = zoo.activation_stats(zoo.lenet5(activation="tanh", initializer="normal0.01"), x)
    print(stats.report())          # per layer: output mean / std, and the gradient norm of its kernel
    stats.plot("activations.png")

The course notes (seed 004) judge an initialization by the distribution of every layer's activations
after initialization: healthy is a mean near 0 and a spread that neither collapses nor explodes with
depth — Xavier/Glorot for tanh and sigmoid, He for ReLU (the zoo's builders choose them by activation,
``zoo.layers.initializer_for``). Too small a scale (e.g. N(0, 0.01)) shrinks the spread by about
``0.01·sqrt(fan_in)`` per layer and the gradients of the early layers with it (vanishing); sigmoid's
outputs have a mean near 0.5 and a slope of at most 1/4, which fades gradients the same way.

One forward pass in inference mode (dropout off, batch norm on its initial moving statistics, so it does
not re-normalize the batch and hides nothing) and one backward pass of the mean cross-entropy against
``y`` (random labels when not given). A row for every layer that has a kernel (its output before the
activation, and ‖∂J/∂kernel‖) or is an activation; the model's output is the last row. TensorFlow
backend (the gradient uses ``tf.GradientTape``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import keras
import numpy as np

__all__ = ["LayerStats", "ActivationStats", "activation_stats", "spread_ratio"]


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """One row: the layer's output statistics over the batch and the gradient norm of its kernel."""

    name: str
    kind: str
    output_shape: tuple
    mean: float
    std: float
    kernel_grad_norm: float | None   # ‖∂J/∂kernel‖₂; None for a layer without a kernel


@dataclasses.dataclass(frozen=True)
class ActivationStats:
    """The per-layer rows of :func:`activation_stats`, input first, output last."""

    model_name: str
    layers: tuple[LayerStats, ...]
    input_mean: float
    input_std: float

    def report(self) -> str:
        """A table: layer, type, output shape, mean, std, ‖∂J/∂kernel‖ (``-`` where there is no kernel)."""
        lines = [f"{'layer':<24} {'type':<20} {'output':<18} {'mean':>10} {'std':>10} {'|dJ/dW|':>10}",
                 f"{'(input)':<24} {'':<20} {'':<18} {self.input_mean:>10.4g} {self.input_std:>10.4g} {'-':>10}"]
        for row in self.layers:
            grad = "-" if row.kernel_grad_norm is None else f"{row.kernel_grad_norm:.3g}"
            shape = "×".join(str(s) for s in row.output_shape[1:])
            lines.append(f"{row.name:<24} {row.kind:<20} {shape:<18} {row.mean:>10.4g} {row.std:>10.4g} {grad:>10}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model_name, "input_mean": self.input_mean, "input_std": self.input_std,
                "layers": [dataclasses.asdict(row) for row in self.layers]}

    def plot(self, path: str | os.PathLike, title: str = "") -> None:
        """The output std and the kernel-gradient norm per layer, both on a log scale (matplotlib Agg)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(10, 4), dpi=100)
        FigureCanvasAgg(figure)
        left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
        xs = list(range(len(self.layers)))
        left.plot(xs, [max(r.std, 1e-12) for r in self.layers], marker="o", label="std")
        left.plot(xs, [max(abs(r.mean), 1e-12) for r in self.layers], marker=".", linestyle=":", label="|mean|")
        left.set_yscale("log")
        left.set_ylabel("layer output")
        weighted = [(x, r) for x, r in zip(xs, self.layers) if r.kernel_grad_norm is not None]
        right.plot([x for x, _ in weighted], [max(r.kernel_grad_norm, 1e-30) for _, r in weighted], marker="o",
                   color="#c44")
        right.set_yscale("log")
        right.set_ylabel("‖∂J/∂kernel‖")
        for axis in (left, right):
            axis.set_xticks(xs, [r.name for r in self.layers], rotation=60, ha="right", fontsize=7)
            axis.grid(alpha=0.3)
        left.legend(fontsize=8)
        figure.suptitle(title or f"{self.model_name}: activations and gradients after initialization")
        figure.tight_layout()
        figure.savefig(os.fspath(path))


def _is_activation(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
                          keras.layers.Softmax)):
        return True
    activation = getattr(layer, "activation", None)
    return activation is not None and activation is not keras.activations.linear


def _kernel(layer: keras.layers.Layer):
    return next((w for w in layer.trainable_weights if w.path.endswith("kernel")), None)


def _labels(y, batch: int, classes: int, seed: int) -> np.ndarray:
    if y is None:
        return np.random.default_rng(seed).integers(0, classes, size=batch)
    y = np.asarray(y)
    if y.shape != (batch,):
        raise ValueError(f"activation_stats: y must hold one label per example, shape ({batch},), got {y.shape}")
    return y


def activation_stats(model: keras.Model, x, y=None, *, seed: int = 0) -> ActivationStats:
    """Per-layer output mean / std and kernel-gradient norm of ``model`` on the batch ``x`` (module doc).

    ``model``: a functional or Sequential Keras model ending in a softmax (or logits) over classes;
    ``x``: a batch of its inputs; ``y``: integer labels (default: random, seeded with ``seed``).
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError("activation_stats needs the TensorFlow backend (KERAS_BACKEND=tensorflow) for its "
                         f"backward pass, got {keras.backend.backend()!r}")
    import tensorflow as tf

    from zoo.layers import outputs_logits

    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or not model.inputs:
        raise ValueError("activation_stats: model must be a built functional or Sequential keras.Model, "
                         f"got {type(model).__name__}")
    rows = [layer for layer in model.layers if _kernel(layer) is not None or _is_activation(layer)]
    if not rows:
        raise ValueError(f"activation_stats: {model.name} has no layer with a kernel or an activation")
    x = np.asarray(x)
    if x.ndim < 2 or len(x) < 1:
        raise ValueError(f"activation_stats: x must be a batch of inputs, got shape {x.shape}")
    probe = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, [layer.output for layer in rows])
    classes = int(model.outputs[0].shape[-1])
    labels = _labels(y, len(x), classes, seed)
    kernels = [_kernel(layer) for layer in rows]
    with tf.GradientTape() as tape:
        outputs = probe(x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model))(labels, outputs[-1])
    grads = tape.gradient(loss, [k for k in kernels if k is not None])
    norms = iter(float(tf.norm(g)) if g is not None else 0.0 for g in grads)
    stats = []
    for layer, output, kernel in zip(rows, outputs, kernels):
        values = np.asarray(output, dtype=np.float64)
        stats.append(LayerStats(layer.name, type(layer).__name__, tuple(values.shape), float(values.mean()),
                                float(values.std()), next(norms) if kernel is not None else None))
    x64 = x.astype(np.float64)
    return ActivationStats(model.name, tuple(stats), float(x64.mean()), float(x64.std()))


def spread_ratio(stats: ActivationStats) -> float:
    """std of the last hidden activation / std of the first: ≪ 1 collapsing, ≫ 1 exploding."""
    hidden = [r.std for r in stats.layers[:-1] if r.std > 0] or [math.nan]
    return hidden[-1] / hidden[0]
