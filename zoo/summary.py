"""``zoo.summary(model)``: per layer output shape, parameters and multiply-accumulates (MACs).

Keras 3 has no FLOP count (keras-team/keras#18391). 1 MAC = one multiply and one add = 2 FLOPs. We count
the MACs of the layers that multiply by weights, the way torchvision's published "GFLOPS" (really GMACs)
and fvcore count them: convolutions (grouped, depthwise and separable too), Dense (per position for
3-D inputs), LSTM/GRU/SimpleRNN (per timestep, all gates), plus LRN's window sum. Element-wise layers
(batch norm, activations, pooling, additions, dropout) count 0 — at inference BN folds into the conv.
Biases are not counted. Forward pass, one example. A layer whose count depends on an input dimension the
model leaves open (images of ``input_shape=(None, None, 3)``, sequences of any length) counts ``None``, and
so does the total: a count for an assumed size would be a wrong number printed as a right one.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Iterator

import keras

__all__ = ["LayerRow", "ModelSummary", "summary", "count_macs"]


@dataclasses.dataclass(frozen=True)
class LayerRow:
    name: str
    layer_type: str
    output_shape: str
    params: int
    trainable_params: int
    macs: int | None  # None: depends on an input dimension the model leaves open


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    model_name: str
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    macs: int | None  # None when a layer's count depends on an open input dimension (e.g. None x None images)

    @property
    def flops(self) -> int | None:
        """2 FLOPs per MAC."""
        return None if self.macs is None else 2 * self.macs

    def table(self) -> str:
        head = ("layer", "type", "output shape", "params", "MACs")
        body = [(r.name, r.layer_type, r.output_shape, f"{r.params:,}", "?" if r.macs is None else f"{r.macs:,}")
                for r in self.rows]
        widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(5)]
        fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
        rule = "-" * (sum(widths) + 8)
        lines = [f"Model: {self.model_name}", rule, fmt.format(*head), rule]
        lines += [fmt.format(*row) for row in body]
        lines += [
            rule,
            f"Total params: {self.total_params:,} (trainable {self.trainable_params:,}, "
            f"non-trainable {self.non_trainable_params:,})",
            f"Total MACs: {self.macs:,} ({self.macs / 1e9:.3f} G; 1 MAC = 2 FLOPs = {self.flops / 1e9:.3f} GFLOPs)"
            if self.macs is not None else "Total MACs: ? (they depend on an input dimension the model leaves open; "
                                          "build it with a fixed input_shape to count them)",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _weights_count(weights) -> int:
    return int(sum(math.prod(w.shape) for w in weights))


def _shape(tensor_or_list) -> tuple:
    if isinstance(tensor_or_list, (list, tuple)):
        return tuple(tuple(t.shape) for t in tensor_or_list)
    return tuple(tensor_or_list.shape)


def _times(*factors) -> int | None:
    """The product of ``factors`` (ints or shape tuples), or None when any dimension is unknown (None)."""
    dims = [d for f in factors for d in (f if isinstance(f, tuple) else (f,))]
    return None if any(d is None for d in dims) else math.prod(int(d) for d in dims)


def count_macs(layer: keras.layers.Layer) -> int | None:
    """Forward MACs of one layer for one example (0 for element-wise layers; None when they depend on an
    input dimension the model leaves open, such as the height and width of a ``(None, None, 3)`` input)."""
    layers = keras.layers
    try:
        out_shape = _shape(layer.output)
        in_shape = _shape(layer.input)
    except (AttributeError, ValueError):
        return 0
    if isinstance(layer, (layers.SeparableConv1D, layers.SeparableConv2D)):
        depthwise = _times(out_shape[1:-1], in_shape[-1], layer.depth_multiplier)
        return _times(depthwise, math.prod(layer.kernel_size) + layer.filters)
    if isinstance(layer, (layers.DepthwiseConv2D, layers.DepthwiseConv1D)):
        return _times(out_shape[1:], math.prod(layer.kernel_size))
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)):
        return _times(in_shape[1:], layer.filters, math.prod(layer.kernel_size))
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        return _times(out_shape[1:], math.prod(layer.kernel_size), in_shape[-1] // layer.groups)
    if isinstance(layer, layers.Dense):
        return _times(out_shape[1:-1], in_shape[-1], layer.units)
    if isinstance(layer, layers.Bidirectional):
        both = (_rnn_macs(layer.forward_layer, in_shape), _rnn_macs(layer.backward_layer, in_shape))
        return None if None in both else sum(both)
    if isinstance(layer, layers.RNN):
        return _rnn_macs(layer, in_shape)
    lrn = getattr(layer, "depth_radius", None)
    if lrn is not None and type(layer).__name__ == "LocalResponseNormalization":
        return _times(out_shape[1:], 2 * lrn + 1)
    return 0


def _rnn_macs(layer, in_shape) -> int | None:
    if isinstance(in_shape[0], tuple):  # (inputs, mask) or initial states
        in_shape = in_shape[0]
    gates = {"LSTMCell": 4, "GRUCell": 3}.get(type(layer.cell).__name__, 1)
    units = layer.cell.units
    return _times(in_shape[1], gates, units, in_shape[-1] + units)  # per timestep, all gates


def _walk(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.layers:
            yield from _walk(layer, f"{prefix}{layer.name}/")
        else:
            yield f"{prefix}{layer.name}", layer


def summary(model: keras.Model, print_fn: Callable[[str], None] | None = print) -> ModelSummary:
    """Per-layer table of output shape, parameters and MACs with totals; prints it and returns the data.

    The parameter total equals ``model.count_params()`` (a test checks it for every registered model).
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"summary needs a keras.Model, got {type(model).__name__}")
    rows = []
    for name, layer in _walk(model):
        try:
            out = _shape(layer.output)
            out_text = str(out[0] if len(out) and isinstance(out[0], tuple) and len(out) == 1 else out)
        except (AttributeError, ValueError):
            out_text = "?"
        rows.append(LayerRow(
            name=name,
            layer_type=type(layer).__name__,
            output_shape=out_text.replace("None", "?"),
            params=_weights_count(layer.weights),
            trainable_params=_weights_count(layer.trainable_weights),
            macs=count_macs(layer),
        ))
    total = sum(r.params for r in rows)
    trainable = sum(r.trainable_params for r in rows)
    macs = None if any(r.macs is None for r in rows) else sum(r.macs for r in rows)
    result = ModelSummary(model.name, rows, total, trainable, total - trainable, macs)
    if print_fn is not None:
        print_fn(result.table())
    return result
