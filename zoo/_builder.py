"""The keras.applications argument conventions, in one place for every builder.

``include_top``, ``input_shape``, ``input_tensor``, ``pooling``, ``classes``, ``classifier_activation``,
``name`` and ``regularization`` mean the same thing in every zoo builder; this module checks them and
builds the shared input and head.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras

from zoo.layers import classifier  # noqa: F401  (re-exported for builders)
from zoo.regularization import Regularization

POOLINGS = (None, "avg", "max")


def check_int(argument: str, value: Any, minimum: int = 1, owner: str = "") -> int:
    """An integer ``>= minimum`` or a ValueError that names the argument, the value and the range."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        prefix = f"{owner}: " if owner else ""
        raise ValueError(f"{prefix}{argument} must be an integer >= {minimum}, got {value!r}")
    return value


def check_choice(argument: str, value: Any, allowed: Sequence[Any], owner: str = "") -> Any:
    if value not in allowed:
        prefix = f"{owner}: " if owner else ""
        raise ValueError(f"{prefix}{argument} must be one of {list(allowed)}, got {value!r}")
    return value


def check_head(owner: str, include_top: bool, pooling: str | None, classes: int,
               classifier_activation: str | None) -> None:
    """Validate the head arguments the keras.applications way."""
    if not isinstance(include_top, bool):
        raise ValueError(f"{owner}: include_top must be True or False, got {include_top!r}")
    check_choice("pooling", pooling, POOLINGS, owner)
    check_int("classes", classes, 1, owner)
    if classifier_activation is not None and not isinstance(classifier_activation, str) \
            and not callable(classifier_activation):
        raise ValueError(
            f"{owner}: classifier_activation must be an activation name (e.g. 'softmax'), a callable such as "
            f"keras.activations.softmax, or None; got {classifier_activation!r}"
        )


def image_input(
    owner: str,
    input_shape: Sequence[int] | None,
    input_tensor,
    default_shape: tuple[int, int, int],
    min_size: int,
    hint: str = "",
):
    """The model's input for an image builder: ``(inputs, x, (height, width, channels))``.

    ``input_shape`` is ``(height, width, channels)``, channels-last; a ``(height, width)`` shape gets one
    channel. Images smaller than ``min_size`` on either side raise a ValueError naming the size and
    ``hint`` (e.g. "use stem='small'").
    """
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            inputs = keras.Input(tensor=input_tensor)
        else:
            inputs = input_tensor
        shape = tuple(input_tensor.shape[1:])
    else:
        shape = default_shape if input_shape is None else input_shape
        inputs = None
    shape = check_image_shape(owner, shape)
    height, width, _ = shape
    if (height is not None and height < min_size) or (width is not None and width < min_size):
        extra = f"; {hint}" if hint else ""
        raise ValueError(
            f"{owner} needs inputs of at least {min_size}×{min_size}, got {height}×{width}{extra}"
        )
    if inputs is None:
        inputs = keras.Input(shape=shape, name="input")
    return inputs, inputs, shape


def check_image_shape(owner: str, shape: Any) -> tuple[int | None, int | None, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) not in (2, 3):
        raise ValueError(
            f"{owner}: input_shape must be (height, width, channels), channels-last, got {shape!r}"
        )
    shape = tuple(shape) + ((1,) if len(shape) == 2 else ())
    for size in shape[:2]:
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"{owner}: input_shape sizes must be positive integers, got {shape!r}")
    channels = shape[2]
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"{owner}: input_shape channels must be a positive integer, got {shape!r}")
    return shape


def conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """The notes' formula: floor((n + 2p − k) / s) + 1."""
    return math.floor((n + 2 * padding - kernel) / stride) + 1


def image_head(x, *, include_top: bool, pooling: str | None, classes: int,
               classifier_activation: str | None, regularization: Regularization,
               flatten: bool = False, dropout_keep_prob: float | None = None):
    """Global pooling (or flatten) + dropout + classifier when ``include_top``; else optional pooling.

    ``flatten=True`` keeps the spatial positions (LeNet, AlexNet); otherwise global average pooling.
    """
    if include_top:
        if flatten:
            x = keras.layers.Flatten(name="flatten")(x)
        else:
            x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = regularization.apply_dropout(x, name="head_dropout", keep_prob=dropout_keep_prob)
        return classifier(x, classes, regularization=regularization,
                          classifier_activation=classifier_activation)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def finish(inputs, outputs, input_tensor, name: str) -> keras.Model:
    """A functional Model from the true source inputs when the user passed ``input_tensor``."""
    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    return keras.Model(inputs, outputs, name=name)
