"""Stacked LSTM classifiers (Hochreiter & Schmidhuber 1997, "Long short-term memory").

One LSTM layer of ``u`` units on ``f`` input features has ``4·(u·(f + u) + u)`` parameters (four gates,
each with an input kernel ``f×u``, a recurrent kernel ``u×u`` and a bias ``u``) and does
``timesteps·4·u·(f + u)`` multiply-accumulates per example; ``bidirectional=True`` doubles both.
At 28×28 (Fashion-MNIST rows), ``units=[128]``, 10 classes, ``Regularization.none()``:
80,384 + 1,290 = 81,674 parameters.

Input contract:
- :func:`lstm` takes ``(timesteps, features)`` as is, and reads an image ``(height, width, channels)`` row by
  row: a ``Reshape`` layer inside the model (``rows_as_timesteps``) makes it ``(height, width·channels)``,
  so 28×28×1 is 28 timesteps of 28 features and needs no reshaping by hand (and has the same parameters
  as ``(28, 28)``). ``timesteps`` (or ``height``) may be None for variable-length sequences.
- :func:`lstm_text` takes integer token ids ``(timesteps,)`` (or ``(None,)``) in ``[0, vocab_size)``; 0 is
  padding: ``Embedding(vocab_size, embed_dim, mask_zero=True)`` masks it in every later layer.

Regularization (``zoo.Regularization``):
- L1/L2 on every input kernel, recurrent kernel and dense kernel (a fresh regularizer object per kernel);
  biases, BN/LN γ and β and (unless ``penalize_embeddings=True``) the embedding matrix are not penalized.
- ``keep_prob`` is dropout on the non-recurrent connections (Zaremba et al. 2014): every LSTM's input
  ``dropout = 1 - keep_prob`` (input -> LSTM 1 and LSTM i -> LSTM i+1, one mask per sequence, as in
  Gal & Ghahramani 2016) and a ``Dropout`` layer between the last LSTM and the classifier. A connection is
  dropped once, never twice.
- ``recurrent_keep_prob`` (a builder argument): ``recurrent_dropout = 1 - recurrent_keep_prob`` on the
  ``h_{t-1}`` connections. Anything below 1 disables the fused cuDNN kernel on a GPU (several times slower).
- ``norm`` between LSTM layers (never after the last one, never on the input or the classifier):
  ``"batch"`` -> BatchNormalization over (batch, time), ``"layer"`` -> LayerNormalization per timestep
  (the usual choice for recurrent nets, Ba et al. 2016), None -> nothing; the default ``"auto"`` means
  ``"batch"`` when ``regularization.batch_norm`` else None. The LSTM before a norm keeps its bias (the bias
  feeds the gate nonlinearities, it is not absorbed by β).

Initialization follows the activations (tanh cell, sigmoid gates): Glorot uniform input kernels, orthogonal
recurrent kernels, zero biases with the forget-gate bias at 1 (Jozefowicz et al. 2015) — Keras's LSTM
defaults, set explicitly here.

Training: clip gradients, ``optimizer = keras.optimizers.Adam(1e-3, clipnorm=1.0)`` is the recommended
start (exploding gradients, Pascanu et al. 2013); clipping is the recipe's job (``recipes.lstm`` does it).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

from zoo import _builder
from zoo.registry import register_model
from zoo.regularization import Regularization, as_regularization

__all__ = ["MaskedGlobalMaxPooling1D", "lstm", "lstm_text", "lstm_params"]

NORMS = ("auto", None, "batch", "layer")


def lstm_params(units: int, features: int) -> int:
    """Parameters of one LSTM layer: ``4·(units·(features + units) + units)``."""
    return 4 * (units * (features + units) + units)


@keras.saving.register_keras_serializable(package="zoo")
class MaskedGlobalMaxPooling1D(keras.layers.GlobalMaxPooling1D):
    """GlobalMaxPooling1D that honours a mask: padded timesteps never win the max.

    Keras's own layer drops the mask (with a warning) and takes the max over padding too. A sequence with
    every step masked pools to zeros.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        steps_axis = 1 if self.data_format == "channels_last" else 2
        keep = ops.expand_dims(ops.cast(mask, "bool"), 2 if steps_axis == 1 else 1)
        pooled = ops.max(ops.where(keep, inputs, float("-inf")), axis=steps_axis, keepdims=self.keepdims)
        any_kept = ops.any(keep, axis=steps_axis, keepdims=self.keepdims)
        return ops.where(any_kept, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None


# -- argument checks ---------------------------------------------------------------------------------
def _check_units(owner: str, units: Any) -> tuple[int, ...]:
    if isinstance(units, int) and not isinstance(units, bool):
        units = [units]
    if not isinstance(units, (list, tuple)) or not units or any(
        isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in units
    ):
        raise ValueError(
            f"{owner}: units must be a non-empty list of integers >= 1 (units per LSTM layer, e.g. [128] "
            f"or [128, 64]), got {units!r}"
        )
    return tuple(units)


def _check_keep_prob(owner: str, argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError(f"{owner}: {argument} must be a number in (0, 1] (1 = no dropout), got {value!r}")
    return float(value)


def _check_bool(owner: str, argument: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {argument} must be True or False, got {value!r}")
    return value


def _resolve_norm(owner: str, norm: Any, reg: Regularization) -> str | None:
    _builder.check_choice("norm", norm, NORMS, owner)
    if norm == "auto":
        return "batch" if reg.batch_norm else None
    return norm


def _check_size(size: Any, allow_none: bool) -> bool:
    if size is None:
        return allow_none
    return isinstance(size, int) and not isinstance(size, bool) and size >= 1


def _sequence_input(owner: str, input_shape: Any, input_tensor, default_shape: tuple):
    """``(inputs, x, (timesteps, features))``; an image ``(h, w, c)`` goes through a Reshape to ``(h, w·c)``."""
    inputs = None
    if input_tensor is not None:
        inputs = input_tensor if keras.backend.is_keras_tensor(input_tensor) else keras.Input(tensor=input_tensor)
        shape = tuple(input_tensor.shape[1:])
    else:
        shape = default_shape if input_shape is None else input_shape
    if (not isinstance(shape, (tuple, list)) or len(shape) not in (2, 3)
            or not _check_size(shape[0], allow_none=True)
            or not all(_check_size(size, allow_none=False) for size in shape[1:])):
        raise ValueError(
            f"{owner}: input_shape must be (timesteps, features) or an image (height, width, channels) read "
            f"row by row, with positive integer sizes (timesteps or height may be None), got {shape!r}"
        )
    shape = tuple(shape)
    if inputs is None:
        inputs = keras.Input(shape=shape, name="input")
    x = inputs
    if len(shape) == 3:
        height, width, channels = shape
        x = keras.layers.Reshape((-1 if height is None else height, width * channels),
                                 name="rows_as_timesteps")(x)
        shape = (height, width * channels)
    return inputs, x, shape


def _token_input(owner: str, input_shape: Any, input_tensor, default_shape: tuple):
    inputs = None
    if input_tensor is not None:
        inputs = input_tensor if keras.backend.is_keras_tensor(input_tensor) else keras.Input(tensor=input_tensor)
        shape = tuple(input_tensor.shape[1:])
    else:
        shape = default_shape if input_shape is None else input_shape
    if not isinstance(shape, (tuple, list)) or len(shape) != 1 or not _check_size(shape[0], allow_none=True):
        raise ValueError(
            f"{owner}: input_shape must be (timesteps,) or (None,) of integer token ids, got {shape!r}"
        )
    shape = tuple(shape)
    if inputs is None:
        inputs = keras.Input(shape=shape, dtype="int32", name="tokens")
    return inputs, inputs, shape


# -- the stack ---------------------------------------------------------------------------------------
def lstm_layer(units: int, *, name: str, regularization: Regularization, return_sequences: bool,
               recurrent_keep_prob: float = 1.0) -> keras.layers.LSTM:
    """One LSTM: Glorot/orthogonal init, forget bias 1, penalized kernels, input and recurrent dropout."""
    return keras.layers.LSTM(
        units,
        return_sequences=return_sequences,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=regularization.kernel_regularizer(),
        recurrent_regularizer=regularization.kernel_regularizer(),
        dropout=regularization.dropout_rate,
        recurrent_dropout=1.0 - recurrent_keep_prob,
        name=name,
    )


def _stack(x, *, units: tuple[int, ...], bidirectional: bool, norm: str | None, reg: Regularization,
           recurrent_keep_prob: float, include_top: bool, pooling: str | None, classes: int,
           classifier_activation: str | None):
    """LSTM 1 … LSTM n (norm between), then pooling over time, head dropout and the classifier."""
    for index, width in enumerate(units, start=1):
        last = index == len(units)
        name = f"lstm{index}"
        layer = lstm_layer(width, name=name, regularization=reg, recurrent_keep_prob=recurrent_keep_prob,
                           return_sequences=(not last) or pooling is not None)
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, merge_mode="concat", name=f"bi{name}")
        x = layer(x)
        if not last and norm == "batch":
            x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
        elif not last and norm == "layer":
            x = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_ln")(x)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling1D(name="avg_pool")(x)
    elif pooling == "max":
        x = MaskedGlobalMaxPooling1D(name="max_pool")(x)
    if include_top:
        x = reg.apply_dropout(x, name="head_dropout")
        x = _builder.classifier(x, classes, regularization=reg, classifier_activation=classifier_activation)
    return x


def _common_checks(owner: str, include_top, pooling, classes, classifier_activation, regularization,
                   units, bidirectional, norm, recurrent_keep_prob):
    reg = as_regularization(regularization)
    _builder.check_head(owner, include_top, pooling, classes, classifier_activation)
    return dict(
        units=_check_units(owner, units),
        bidirectional=_check_bool(owner, "bidirectional", bidirectional),
        norm=_resolve_norm(owner, norm, reg),
        reg=reg,
        recurrent_keep_prob=_check_keep_prob(owner, "recurrent_keep_prob", recurrent_keep_prob),
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )


# -- public builders ---------------------------------------------------------------------------------
@register_model("lstm", params=81_674, family="lstm", kind="sequence", default_input_shape=(28, 28), small_input_shape=(8, 8))
def lstm(
    include_top: bool = True,
    input_shape: Sequence[int | None] | None = None,
    input_tensor=None,
    pooling: str | None = None,
    classes: int = 10,
    classifier_activation: str | None = "softmax",
    name: str = "lstm",
    regularization: Regularization | dict | None = None,
    units: Sequence[int] | int = (128,),
    bidirectional: bool = False,
    norm: str | None = "auto",
    recurrent_keep_prob: float = 1.0,
) -> keras.Model:
    """Stacked LSTM classifier (Hochreiter & Schmidhuber 1997) for ``(timesteps, features)`` or images by rows.

    Parameters per layer ``4·(u·(f + u) + u)`` (×2 when bidirectional); 81,674 at (28, 28), ``units=[128]``,
    10 classes, ``Regularization.none()``. Glorot-uniform input kernels, orthogonal recurrent kernels,
    forget-gate bias 1. Train with gradient clipping, e.g. ``Adam(1e-3, clipnorm=1.0)``.

    Args:
        input_shape: ``(timesteps, features)`` used as is, or ``(height, width, channels)`` reshaped inside the
            model to ``(height, width·channels)`` (rows are timesteps). Default ``(28, 28)``.
        units: units per LSTM layer, e.g. ``[128]`` or ``[128, 64]`` (an int is one layer). Every layer but
            the last returns sequences (the last does too when ``pooling`` is set).
        bidirectional: wrap every LSTM in ``Bidirectional`` (concatenated: output width ``2·units``).
        norm: ``"auto"`` (``"batch"`` when ``regularization.batch_norm``, else None), ``"batch"``
            (BatchNormalization), ``"layer"`` (LayerNormalization) or None, between LSTM layers only.
        recurrent_keep_prob: ``recurrent_dropout = 1 - recurrent_keep_prob`` in every LSTM, in ``(0, 1]``;
            below 1 disables the cuDNN kernel on a GPU.
        regularization: ``zoo.Regularization``: L1/L2 on input, recurrent and dense kernels; ``keep_prob`` as
            every LSTM's input ``dropout`` and as a Dropout before the classifier.
        pooling: None (the classifier reads the last LSTM's final output), ``"avg"`` or ``"max"`` (over time;
            mask-aware). It applies with and without the top.
        include_top: False ends the model at the last LSTM's output ``(batch, units[-1])`` (``2·units[-1]``
            when bidirectional), pooled over time when ``pooling`` is set.
        The rest: as in ``keras.applications``.
    """
    owner = "lstm"
    options = _common_checks(owner, include_top, pooling, classes, classifier_activation, regularization,
                             units, bidirectional, norm, recurrent_keep_prob)
    inputs, x, _ = _sequence_input(owner, input_shape, input_tensor, (28, 28))
    x = _stack(x, **options)
    return _builder.finish(inputs, x, input_tensor, name)


@register_model("lstm_text", params=2_691_842, family="lstm", kind="text", default_input_shape=(200,), small_input_shape=(16,))
def lstm_text(
    include_top: bool = True,
    input_shape: Sequence[int | None] | None = None,
    input_tensor=None,
    pooling: str | None = None,
    classes: int = 2,
    classifier_activation: str | None = "softmax",
    name: str = "lstm_text",
    regularization: Regularization | dict | None = None,
    units: Sequence[int] | int = (128,),
    bidirectional: bool = False,
    norm: str | None = "auto",
    recurrent_keep_prob: float = 1.0,
    vocab_size: int = 20000,
    embed_dim: int = 128,
    penalize_embeddings: bool = False,
) -> keras.Model:
    """Stacked LSTM text classifier: ``Embedding(vocab_size, embed_dim, mask_zero=True)`` -> :func:`lstm`'s stack.

    Input: integer token ids ``(timesteps,)`` or ``(None,)`` (default ``(200,)``); id 0 is padding and is
    masked through every layer (the final LSTM state skips it, ``"avg"``/``"max"`` pooling ignore it).

    Args:
        vocab_size: number of token ids (``>= 2``: id 0 is reserved for padding).
        embed_dim: embedding width, the first LSTM's ``features``.
        penalize_embeddings: also put the L1/L2 penalty on the embedding matrix. Off by default: a sparse
            lookup table would be shrunk row by row at every step whether the token was seen or not.
        The rest: as in :func:`lstm` (``classes`` defaults to 2, e.g. IMDB sentiment).
    """
    owner = "lstm_text"
    options = _common_checks(owner, include_top, pooling, classes, classifier_activation, regularization,
                             units, bidirectional, norm, recurrent_keep_prob)
    _builder.check_int("vocab_size", vocab_size, 2, owner)
    _builder.check_int("embed_dim", embed_dim, 1, owner)
    _check_bool(owner, "penalize_embeddings", penalize_embeddings)
    inputs, x, _ = _token_input(owner, input_shape, input_tensor, (200,))
    reg = options["reg"]
    x = keras.layers.Embedding(
        vocab_size,
        embed_dim,
        mask_zero=True,
        embeddings_regularizer=reg.kernel_regularizer() if penalize_embeddings else None,
        name="embedding",
    )(x)
    x = _stack(x, **options)
    return _builder.finish(inputs, x, input_tensor, name)
