"""``zoo.regularize(model, reg)``: L1/L2 retrofitted onto a Keras model we did not build.

Setting ``layer.kernel_regularizer`` on a built model silently does nothing (keras-team/keras #7688,
#8413, #9106, #12053): the penalty is collected when a layer is created. So we rebuild the model with
``keras.models.clone_model`` and a clone function that recreates each layer from its config with the
penalty, then copy the weights across.

What is retrofitted: the kernel penalty on every layer that has a kernel (Dense, Conv*, depthwise and
separable kernels, the input and recurrent kernels of RNNs) that has none yet — a penalty the model
already carries is kept unless ``replace=True`` (then every kernel gets exactly the new one, and λ = 0
removes them); existing Dropout layers take ``rate = 1 - keep_prob`` when ``keep_prob < 1``. What is not: batch norm (adding or removing BN changes the
weights) and new Dropout layers (a model without any raises a ValueError). Biases and BN γ/β are never
penalized.
"""

from __future__ import annotations

import keras

from zoo.regularization import Regularization, as_regularization

__all__ = ["regularize", "kernel_values", "kernel_sparsity", "SPARSITY_THRESHOLD"]

SPARSITY_THRESHOLD = 1e-3  # |w| below this counts as zero in kernel_sparsity

_KERNEL_KEYS = ("kernel_regularizer", "depthwise_regularizer", "pointwise_regularizer",
                "recurrent_regularizer")


def _penalized_config(config: dict, reg: Regularization, replace: bool) -> dict:
    config = dict(config)
    for key in _KERNEL_KEYS:
        if key in config and (replace or config[key] is None):
            regularizer = reg.kernel_regularizer()
            config[key] = None if regularizer is None else keras.regularizers.serialize(regularizer)
    return config


def _clone_layer(layer: keras.layers.Layer, reg: Regularization, replace: bool) -> keras.layers.Layer:
    config = layer.get_config()
    if isinstance(layer, keras.layers.Bidirectional):
        config["layer"] = keras.layers.serialize(_clone_layer(layer.forward_layer, reg, replace))
        config["backward_layer"] = keras.layers.serialize(_clone_layer(layer.backward_layer, reg, replace))
        return layer.__class__.from_config(config)
    if isinstance(layer, keras.layers.Dropout) and reg.keep_prob < 1.0:
        config["rate"] = reg.dropout_rate
    return layer.__class__.from_config(_penalized_config(config, reg, replace))


def _check_graph(model: keras.Model) -> None:
    """A functional or Sequential model (what ``clone_model`` can rebuild), else a ValueError saying why."""
    from keras.src.models.functional import Functional

    if isinstance(model, (Functional, keras.Sequential)):
        return
    raise ValueError(
        f"regularize rebuilds a model from its layer graph (keras.models.clone_model), and {model.name!r} is a "
        f"subclassed model ({type(model).__name__}) whose graph lives in its call(): pass "
        f"kernel_regularizer=zoo.Regularization(...).kernel_regularizer() where its layers are created, or "
        f"build it with the functional API"
    )


def regularize(model: keras.Model, regularization: Regularization | dict, *, replace: bool = False) -> keras.Model:
    """A copy of ``model`` whose kernels carry ``regularization``'s L1/L2; weights are preserved.

    ``model.losses`` of the result holds one penalty per kernel when λ > 0. The original is unchanged.
    Nested models (e.g. a backbone inside a functional model) are cloned recursively. A kernel that
    already has a regularizer keeps it unless ``replace=True``.

    Raises:
        ValueError: not a keras.Model, a subclassed model (no layer graph to rebuild), or a keep_prob < 1
            on a model without Dropout layers.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"regularize needs a keras.Model, got {type(model).__name__}")
    _check_graph(model)
    if not isinstance(replace, bool):
        raise ValueError(f"regularize: replace must be True or False, got {replace!r}")
    reg = as_regularization(regularization)
    if reg.keep_prob < 1.0 and not any(isinstance(l, keras.layers.Dropout) for l in _all_layers(model)):
        raise ValueError(
            f"regularization.keep_prob={reg.keep_prob} cannot be retrofitted: {model.name!r} has no Dropout "
            "layer to set; use keep_prob=1.0 here and add Dropout when you build the model"
        )

    def clone_function(layer):
        if isinstance(layer, keras.Model):
            return regularize(layer, reg, replace=replace)
        return _clone_layer(layer, reg, replace)

    clone = keras.models.clone_model(model, clone_function=clone_function)
    clone.set_weights(model.get_weights())
    return clone


def _all_layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def kernel_values(model: keras.Model):
    """Every penalizable kernel weight of ``model`` (conv, dense, depthwise/pointwise, RNN input and
    recurrent kernels; not biases, BN or embeddings) as one flat float64 array."""
    import numpy as np

    parts = [np.asarray(v.numpy(), dtype=np.float64).ravel() for v in model.trainable_weights
             if v.name.endswith("kernel")]
    return np.concatenate(parts) if parts else np.zeros(0)


def kernel_sparsity(model: keras.Model, threshold: float = SPARSITY_THRESHOLD) -> float:
    """The fraction of kernel weights with ``|w| < threshold``: what an L1 penalty drives up and L2 does
    not (L1's gradient is a constant pull to 0, L2's shrinks with the weight)."""
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ValueError(f"kernel_sparsity: threshold must be a number > 0, got {threshold!r}")
    values = kernel_values(model)
    return float((abs(values) < threshold).mean()) if values.size else 0.0
