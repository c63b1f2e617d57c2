"""A zoo model wrapped with the preprocessing its data needs, so that a saved model carries it.

    model = build_model("lenet5", splits, zoo.Regularization(l2=1e-4), seed=0)      # the inference model
    trainer = training_model(model, splits, augmentation="digits", seed=0)           # what fit trains

``build_model`` gives the **inference model**: ``keras.Input(splits.input_shape)`` -> ``Normalization`` with
the per-channel mean and variance of ``splits.x_train`` (never validation or test data) ->
``zoo.build(model_name, input_tensor=..., classes=splits.classes, ...)``, one functional model with a single
tensor input (``model.input.shape`` works, an export's ``serve(x)`` takes ``x``). It never augments, and
dropout and batch norm run in inference mode unless ``training=True`` is passed. Text models get the int32
tokens as they are (no normalization, no augmentation). This is what a run folder saves.

``training_model`` puts the augmentation in front of it when augmentation runs in the model: ``Input ->
recipes.augment.TrainingAugmentation -> the inference model``, sharing its weights. The augmentation layer
works only when ``training=True`` is passed (``fit`` does) and passes images through otherwise, so even
the training model behaves at inference (Keras' own augmentation layers default to ``training=True`` and hand
that on to every later layer: a model with them inside would run dropout and batch statistics in a plain
``model(x)``).

Augmentation sits before the normalization on purpose: its layers work on the raw pixel scale, exactly as
they do in the tf.data pipeline, so shifted-in pixels are background (0) and RandomContrast clips to the
real pixel range; after normalization a 0 fill would be the mean grey and a (0, 255) clip would cut every
negative value.

Everything here is a registered Keras layer (no Lambda), so ``keras.models.load_model(path,
safe_mode=True)`` restores the model and it predicts identically.
"""

from __future__ import annotations

import contextlib
from typing import Any

import keras
import numpy as np

import zoo
from recipes import augment
from recipes.data import DataSplits

__all__ = ["build_model", "training_model", "check_model_fits", "normalization_layer", "channel_statistics", "PRECISIONS",
           "dtype_policy"]

from recipes.choices import PRECISIONS  # noqa: E402  (the Keras dtype policies a recipe may train under)

# Builder arguments that name the text vocabulary size, in the order we try them.
_VOCAB_ARGUMENTS = ("vocab_size", "vocabulary_size", "num_words", "input_dim")


def channel_statistics(x: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (last axis) mean and population variance of ``x`` in float64, in chunks (no full copy)."""
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"need a non-empty batch of inputs (N, ..., channels), got shape {x.shape}")
    channels = x.shape[-1]
    count = x.size // channels
    total = np.zeros(channels, np.float64)
    for start in range(0, len(x), chunk):
        total += x[start:start + chunk].reshape(-1, channels).sum(axis=0, dtype=np.float64)
    mean = total / count
    squares = np.zeros(channels, np.float64)
    for start in range(0, len(x), chunk):
        centred = x[start:start + chunk].reshape(-1, channels).astype(np.float64) - mean
        squares += np.einsum("ij,ij->j", centred, centred)
    return mean, squares / count


def normalization_layer(x_train: np.ndarray, name: str = "normalization") -> keras.layers.Normalization:
    """A Normalization layer adapted on ``x_train`` (training data only): per-channel mean and variance.

    The statistics are what ``layer.adapt(x_train)`` computes, but exact (float64, in chunks), and they are
    stored the way ``adapt`` stores them: as the layer's non-trainable ``mean``/``variance``/``count``
    weights, so they are saved with the model's weights.
    """
    x_train = np.asarray(x_train)
    mean, variance = channel_statistics(x_train)
    layer = keras.layers.Normalization(axis=-1, name=name)
    layer.build((None, *x_train.shape[1:]))
    layer.adapt_mean.assign(mean.astype(np.float32))
    layer.adapt_variance.assign(variance.astype(np.float32))
    layer.count.assign(min(x_train.size // x_train.shape[-1], 2**31 - 1))  # an int32 weight
    layer.finalize_state()
    return layer


def _models_of_kind(kinds: tuple[str, ...]) -> str:
    names = [n for n in zoo.list_models() if zoo.get_entry(n).kind in kinds]
    return ", ".join(names) if names else "none registered yet"


def check_model_fits(model_name: str, splits: DataSplits) -> zoo.ModelEntry:
    """The registry entry of ``model_name`` if its kind fits the data, else a ValueError saying what fits.

    image models need images ``(h, w, c)``; ``sequence`` models take images (rows become timesteps) or
    ``(timesteps, features)`` sequences; ``text`` models need integer tokens ``(maxlen,)``.
    """
    entry = zoo.get_entry(model_name)
    rank = len(splits.input_shape)
    if splits.is_text:
        data = f"integer token sequences of shape {splits.input_shape}"
        fits = entry.kind == "text"
        wanted = ("text",)
    elif rank == 3:
        data = f"images of shape {splits.input_shape}"
        fits = entry.kind in ("image", "sequence")
        wanted = ("image", "sequence")
    elif rank == 2:
        data = f"sequences of shape {splits.input_shape}"
        fits = entry.kind == "sequence"
        wanted = ("sequence",)
    else:
        raise ValueError(f"data {splits.name!r} has input_shape {splits.input_shape}, which no zoo model takes")
    if not fits:
        needs = {"image": "images (height, width, channels)",
                 "sequence": "images or (timesteps, features) sequences",
                 "text": "integer token sequences (maxlen,)"}[entry.kind]
        raise ValueError(f"model {model_name!r} ({entry.kind} model) needs {needs}, but data {splits.name!r} "
                         f"holds {data}; models that fit: {_models_of_kind(wanted)}")
    return entry


def build_model(model_name: str, splits: DataSplits, regularization: zoo.Regularization | None = None, *,
                precision: str = "float32", **builder_kwargs: Any) -> keras.Model:
    """The inference model: ``zoo.build(model_name)`` on ``splits``' inputs, behind their Normalization.

    Args:
        regularization: the ``zoo.Regularization`` for every layer of the zoo model (None: the builder's
            default).
        precision: ``"float32"``, or ``"mixed_bfloat16"``: every layer computes in bfloat16 with float32
            weights (Keras mixed precision), and the classifier's softmax runs in a float32 layer of its own
            (``predictions_float32``) so that the loss sees float32 probabilities.
        builder_kwargs: passed on to the builder (``activation=``, ``pooling=`` ...). ``input_shape``,
            ``input_tensor`` and ``classes`` come from the data. For text models the vocabulary size
            (``splits.vocab_size``) is passed as the builder's ``vocab_size`` (or ``num_words`` ...) argument
            unless given.
    Raises:
        ValueError: unknown model, a model kind that does not fit the data.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    entry = check_model_fits(model_name, splits)
    clash = sorted({"input_shape", "input_tensor", "classes", "augmentation"} & set(builder_kwargs))
    if clash:
        raise ValueError(f"build_model takes {', '.join(clash)} from the data ({splits.name}) or from "
                         f"training_model; do not pass them")
    if regularization is not None:
        builder_kwargs["regularization"] = regularization
    if precision != "float32":
        with dtype_policy(precision):
            return _mixed_model(model_name, splits, entry, builder_kwargs)
    return _build(model_name, splits, entry, builder_kwargs)


def training_model(model: keras.Model, splits: DataSplits, augmentation: str = "none", *, seed: int = 0,
                   placement: str | None = None, erasing: float = 0.0) -> keras.Model:
    """What ``fit`` trains: ``model`` itself, or ``model`` behind ``augment.TrainingAugmentation`` when
    ``augmentation`` (a policy that fits ``splits.domain``; plus random erasing with probability
    ``erasing``) runs in the model (``placement="model"``, or ``placement=None`` and
    ``recipes.augment.AUGMENT_IN_MODEL``). The two share every weight."""
    policy = augment.check_policy(augmentation, splits.domain)
    augment.check_erasing(erasing, splits.domain)
    if (policy == "none" and not erasing) or not augment.augment_in_model(placement):
        return model
    inputs = keras.Input(shape=splits.input_shape, name="inputs")
    layer = augment.TrainingAugmentation(policy, splits.input_shape, seed=seed, value_range=splits.value_range,
                                         erasing=erasing)
    return keras.Model(inputs, model(layer(inputs)), name=f"{model.name}_training")


def _build(model_name, splits, entry, builder_kwargs) -> keras.Model:
    if splits.is_text:
        inputs = keras.Input(shape=splits.input_shape, dtype="int32", name="tokens")
        x = inputs
        if splits.vocab_size is not None:
            for argument in _VOCAB_ARGUMENTS:
                if entry.accepts(argument):
                    builder_kwargs.setdefault(argument, splits.vocab_size)
                    break
    else:
        inputs = keras.Input(shape=splits.input_shape, name="inputs")
        x = normalization_layer(splits.x_train)(inputs)
    model = zoo.build(model_name, input_tensor=x, classes=splits.classes, **builder_kwargs)
    # input_tensor makes keras.applications-style builders take their inputs as a list; one tensor instead
    return keras.Model(inputs, model.output, name=model.name)


def _mixed_model(model_name, splits, entry, builder_kwargs) -> keras.Model:
    if builder_kwargs.get("include_top", True) is False:
        return _build(model_name, splits, entry, builder_kwargs)
    activation = builder_kwargs.pop("classifier_activation", "softmax")
    model = _build(model_name, splits, entry, dict(builder_kwargs, classifier_activation=None))
    outputs = keras.layers.Activation(activation or "linear", dtype="float32", name="predictions_float32")(model.output)
    return keras.Model(model.input, outputs, name=model.name)


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Build layers under Keras's global dtype policy ``precision``; the previous policy comes back after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def start_from_weights(model: keras.Model, model_name: str, weights: str, *, freeze_backbone: bool = False) -> list[str]:
    """Copy the shipped weights ``weights`` of ``model_name`` into ``model`` (a fresh inference model of
    :func:`build_model`) by layer name: the trained backbone always, the trained classifier too when the
    classes are the same; ``model``'s own Normalization (adapted on its training split) is kept. With
    ``freeze_backbone`` the backbone's layers stop training (linear probing). The names of the layers copied.

    Raises:
        ValueError: the weights' batch norm differs from ``model``'s, or a layer's shapes differ (another
            input size changes only the dense layers of models that flatten, e.g. LeNet-5 at 8x8 resizes).
    """
    from zoo import pretrained
    from zoo.weights import transfer_weights

    backbone = zoo.build(model_name, weights=weights, include_top=False)
    # the same classes: the whole trained model, classifier included (its graph is the record's: batch norm too)
    source = zoo.build(model_name, weights=weights) \
        if pretrained.find_record(model_name, weights)["classes"] == model.output_shape[-1] else backbone
    transfer_weights(source, model, exclude=("normalization",))
    if freeze_backbone:
        for layer in backbone.layers:
            if layer.weights and layer.name != "normalization":
                model.get_layer(layer.name).trainable = False
    return [layer.name for layer in source.layers if layer.weights and layer.name != "normalization"]
