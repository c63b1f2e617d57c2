"""Shared building pieces: every architecture gets a new knob here, once.

- :func:`initializer_for` — He for the ReLU family, Glorot (Xavier) for tanh and sigmoid.
- :func:`conv_bn_act` — conv -> BatchNormalization (when ``regularization.batch_norm``) -> activation;
  the conv before a BN has no bias; the kernel carries the L1/L2 penalty.
- :func:`dense_bn_act` — the same for Dense.
- :func:`classifier` — the output layer: Dense(classes) + activation, penalized, never batch-normed.
- :class:`LocalResponseNormalization` — AlexNet's LRN, written with ``keras.ops`` (every backend).
- :class:`Resize` — bilinear resizing as a plain layer (no ``training`` argument), so that it never
  switches the layers after it into training mode the way Keras' ``Resizing`` (a preprocessing layer whose
  ``call`` defaults to ``training=True``) does in a plain ``model(x)``.
- :func:`outputs_logits` — whether a classifier ends in logits or in a softmax: the one loss rule that
  the recipes' training and :func:`zoo.gradcheck` share.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from zoo.regularization import Regularization

__all__ = [
    "RELU_FAMILY",
    "initializer_for",
    "conv_bn_act",
    "dense_bn_act",
    "classifier",
    "LocalResponseNormalization",
    "Resize",
    "outputs_logits",
]

RELU_FAMILY = frozenset({"relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "mish"})
GLOROT_FAMILY = frozenset({"tanh", "sigmoid", "hard_sigmoid", "softmax", "linear", None})

BN_EPSILON = 1e-5  # torchvision's; keras.applications' ResNet uses 1.001e-5 and says so where it matters
BN_MOMENTUM = 0.9  # Keras/TF convention (= PyTorch momentum 0.1)


def initializer_for(activation: str | None) -> str:
    """He normal for the ReLU family, Glorot uniform for tanh/sigmoid/linear (the course notes' rule)."""
    if activation in RELU_FAMILY:
        return "he_normal"
    if activation in GLOROT_FAMILY:
        return "glorot_uniform"
    raise ValueError(
        f"activation must be one of {sorted(RELU_FAMILY)} or {sorted(a for a in GLOROT_FAMILY if a)}, "
        f"got {activation!r}"
    )


def kernel_initializer(initializer: str | None, activation: str | None):
    """A kernel initializer: ``None`` → :func:`initializer_for` the activation; ``"he"`` (He normal),
    ``"glorot"`` (Glorot uniform), ``"normal0.01"`` (N(0, 0.01²), the course's "small random numbers"),
    or any Keras initializer name. A fresh object per call (Keras warns on a reused seeded one)."""
    if initializer is None:
        return initializer_for(activation)
    short = {"he": "he_normal", "glorot": "glorot_uniform"}
    if initializer == "normal0.01":
        return keras.initializers.RandomNormal(mean=0.0, stddev=0.01)
    try:
        return keras.initializers.get(short.get(initializer, initializer))
    except ValueError:
        raise ValueError(f"initializer must be he, glorot, normal0.01 or a Keras initializer name, "
                         f"got {initializer!r}") from None


def batch_norm(x, name: str, *, epsilon: float = BN_EPSILON, momentum: float = BN_MOMENTUM,
               gamma_zero: bool = False, axis: int = -1):
    """BatchNormalization with the zoo's defaults; γ and β are never penalized."""
    return keras.layers.BatchNormalization(
        axis=axis,
        epsilon=epsilon,
        momentum=momentum,
        gamma_initializer="zeros" if gamma_zero else "ones",
        name=name,
    )(x)


def conv_bn_act(
    x,
    filters: int,
    kernel_size: int | tuple[int, int],
    *,
    name: str,
    regularization: Regularization,
    strides: int | tuple[int, int] = 1,
    padding: str = "same",
    activation: str | None = "relu",
    groups: int = 1,
    use_bias: bool | None = None,
    batch_norm_override: bool | None = None,
    bn_epsilon: float = BN_EPSILON,
    bn_gamma_zero: bool = False,
    kernel_initializer=None,
):
    """Conv2D -> BN -> activation with stable names ``{name}_conv``, ``{name}_bn``, ``{name}_{act}``.

    ``use_bias`` defaults to ``not bn`` (a bias before BN is absorbed by β). ``batch_norm_override``
    forces BN on or off for this layer whatever the config says (e.g. the paper's form of a network).
    """
    bn = regularization.batch_norm if batch_norm_override is None else batch_norm_override
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        groups=groups,
        use_bias=(not bn) if use_bias is None else use_bias,
        kernel_initializer=kernel_initializer or initializer_for(activation),
        kernel_regularizer=regularization.kernel_regularizer(),
        name=f"{name}_conv",
    )(x)
    if bn:
        x = batch_norm(x, f"{name}_bn", epsilon=bn_epsilon, gamma_zero=bn_gamma_zero)
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def dense_bn_act(
    x,
    units: int,
    *,
    name: str,
    regularization: Regularization,
    activation: str | None = "relu",
    use_bias: bool | None = None,
    batch_norm_override: bool | None = None,
    kernel_initializer=None,
):
    """Dense -> BN -> activation, named ``{name}_dense``, ``{name}_bn``, ``{name}_{act}``."""
    bn = regularization.batch_norm if batch_norm_override is None else batch_norm_override
    x = keras.layers.Dense(
        units,
        use_bias=(not bn) if use_bias is None else use_bias,
        kernel_initializer=kernel_initializer or initializer_for(activation),
        kernel_regularizer=regularization.kernel_regularizer(),
        name=f"{name}_dense",
    )(x)
    if bn:
        x = batch_norm(x, f"{name}_bn")
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def classifier(x, classes: int, *, regularization: Regularization,
               classifier_activation: str | None = "softmax", name: str = "predictions"):
    """The output layer: Dense(classes) with bias and the kernel penalty; no BN, no dropout after it."""
    return keras.layers.Dense(
        classes,
        activation=classifier_activation,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=regularization.kernel_regularizer(),
        name=name,
    )(x)


def _last_layer(model: keras.Model):
    layer = model.layers[-1] if model.layers else None
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    return layer


def outputs_logits(model: keras.Model) -> bool:
    """True when ``model``'s classifier outputs logits, False when it ends in a softmax.

    The loss rule of the zoo: sparse categorical cross-entropy ``from_logits=outputs_logits(model)``. A
    model whose last layer has no activation (``classifier_activation=None``) or a linear one gives
    logits; a softmax (an activation, or a ``Softmax`` layer) gives probabilities; an ``Average`` gives
    what its inputs give (an ensemble of softmax members, ``recipes.ensemble``, gives probabilities). Any
    other output activation (sigmoid, tanh, ...) is not a categorical distribution: a ValueError says so.
    """
    return _layer_outputs_logits(_last_layer(model), model.name)


def _layer_outputs_logits(layer, model_name: str) -> bool:
    if isinstance(layer, keras.Model):
        return outputs_logits(layer)
    if isinstance(layer, keras.layers.Softmax):
        return False
    if isinstance(layer, keras.layers.Average):
        # Keras 3: a symbolic tensor's _keras_history is (operation, node_index, tensor_index)
        kinds = {_layer_outputs_logits(t._keras_history[0], model_name) for t in layer.input}
        if len(kinds) > 1:
            raise ValueError(f"model {model_name!r} averages logits with probabilities (layer {layer.name!r}); "
                             f"its inputs must all end in a softmax or all in logits")
        return kinds.pop()
    activation = getattr(layer, "activation", None)
    if activation is None:
        return True
    try:
        name = keras.activations.serialize(activation)
    except Exception:  # noqa: BLE001  (an activation Keras cannot name)
        name = getattr(activation, "__name__", repr(activation))
    name = name.get("config", name) if isinstance(name, dict) else name
    if name in ("linear", None):
        return True
    if name == "softmax":
        return False
    raise ValueError(
        f"model {model_name!r} ends in activation {name!r} (layer {getattr(layer, 'name', layer)!r}); a "
        f"classifier for categorical cross-entropy needs classifier_activation='softmax' (probabilities) or "
        f"None (logits)"
    )


@keras.saving.register_keras_serializable(package="zoo")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalization across channels (Krizhevsky et al. 2012, section 3.3).

    ``b_c = a_c / (k + α · Σ_{c' = c-r}^{c+r} a_{c'}²)^β`` with ``r = depth_radius`` (the paper's
    ``n = 2r + 1 = 5``), ``k = bias = 2``, ``α = 1e-4``, ``β = 0.75``. This is the paper's formula and
    ``tf.nn.local_response_normalization``'s; PyTorch's ``LocalResponseNorm(size=n)`` divides α by n.
    Channels-last. Written with ``keras.ops`` so it runs on every backend and serializes safely.
    """

    def __init__(self, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4,
                 beta: float = 0.75, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(depth_radius, int) or isinstance(depth_radius, bool) or depth_radius < 0:
            raise ValueError(f"depth_radius must be an integer >= 0, got {depth_radius!r}")
        for field, value in (("bias", bias), ("alpha", alpha), ("beta", beta)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"{field} must be a number >= 0, got {value!r}")
        self.depth_radius = depth_radius
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        squared = ops.square(inputs)
        r = self.depth_radius
        # Sum of squares over a window of 2r+1 channels: pad the channel axis with zeros, then add shifts.
        pad = [[0, 0]] * (len(inputs.shape) - 1) + [[r, r]]
        padded = ops.pad(squared, pad)
        channels = ops.shape(inputs)[-1]
        window = padded[..., 0:channels]
        for offset in range(1, 2 * r + 1):
            window = window + padded[..., offset:offset + channels]
        return inputs / ops.power(self.bias + self.alpha * window, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta)
        return config


@keras.saving.register_keras_serializable(package="zoo")
class Resize(keras.layers.Layer):
    """Resize images to ``(height, width)`` (``keras.ops.image.resize``, channels-last), training or not.

    The same numbers as ``keras.layers.Resizing(height, width, interpolation)``; unlike it, this layer has no
    ``training`` argument, so a plain ``model(x)`` keeps dropout and batch norm in inference mode.
    """

    def __init__(self, height: int, width: int, interpolation: str = "bilinear", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.height, self.width, self.interpolation = int(height), int(width), interpolation

    def call(self, inputs):
        return ops.image.resize(inputs, (self.height, self.width), interpolation=self.interpolation,
                                data_format="channels_last")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation}
