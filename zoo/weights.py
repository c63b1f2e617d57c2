"""``weights=`` on every builder: ``None``, a ``.weights.h5`` file, or ``"imagenet"`` for the ResNets that
have a keras.applications twin.

keras.applications' ResNet50/101/152 and their V2s are the same graphs as ours built with keras's
conventions (v1: stride on the 1×1 conv, conv biases, BN ε 1.001e-5; v2: stride in each stage's last
block, conv biases, ε 1.001e-5) with the same layer names (``tests/test_resnet.py`` checks the outputs
equal). ``weights="imagenet"`` therefore builds our model with those conventions, builds the twin with
keras's ImageNet weights (downloaded by Keras on first use, cached in ``~/.keras/models``), and copies
every weighted layer by name. With ``classes != 1000`` or ``include_top=False`` the twin has no top: the
backbone is copied and our head keeps its fresh initialization (fine-tuning). The requested
regularization is our builder's, so it applies as usual (penalties and dropout carry no weights).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import keras

__all__ = ["KERAS_TWINS", "KERAS_V1", "KERAS_V2", "WEIGHT_NAMES", "transfer_weights", "check_weights",
           "load_weights_file", "imagenet_kwargs", "imagenet_twin"]

KERAS_V1 = {"stride_on": "1x1", "use_bias": True, "bn_epsilon": 1.001e-5}
KERAS_V2 = {"downsample": "last", "use_bias": True, "bn_epsilon": 1.001e-5}
# our name -> (keras.applications class, the options that reproduce its graph)
KERAS_TWINS: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet50": ("ResNet50", KERAS_V1), "resnet101": ("ResNet101", KERAS_V1),
    "resnet152": ("ResNet152", KERAS_V1), "resnet50v2": ("ResNet50V2", KERAS_V2),
    "resnet101v2": ("ResNet101V2", KERAS_V2), "resnet152v2": ("ResNet152V2", KERAS_V2),
}
WEIGHT_NAMES = ("imagenet",)


def check_weights(owner: str, weights: Any) -> None:
    """``None``, ``"imagenet"`` (for a name in ``KERAS_TWINS``) or an existing ``.weights.h5`` file."""
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"{owner}: weights must be None, 'imagenet' or a path to a .weights.h5 file, got {weights!r}")
    text = os.fspath(weights)
    if text == "imagenet":
        if owner not in KERAS_TWINS:
            raise ValueError(f"{owner}: weights='imagenet' exists for {', '.join(KERAS_TWINS)} (their "
                             f"keras.applications twins); {owner} has none: use weights=None or a .weights.h5 file")
        return
    if not text.endswith(".weights.h5"):
        raise ValueError(f"{owner}: weights must be None, 'imagenet' or a path ending in .weights.h5 (what "
                         f"model.save_weights writes), got {text!r}")
    if not os.path.isfile(text):
        raise ValueError(f"{owner}: weights file {text!r} does not exist")


def load_weights_file(owner: str, model: keras.Model, path: str | os.PathLike) -> keras.Model:
    """``model.load_weights(path)``, with a ValueError naming the file when the shapes do not fit."""
    try:
        model.load_weights(os.fspath(path))
    except (ValueError, KeyError) as error:
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        raise ValueError(f"{owner}: weights file {os.fspath(path)!r} does not fit this model (same name, "
                         f"input channels, classes and options as the model that saved it?): {first}") from None
    return model


def imagenet_kwargs(owner: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The builder arguments for ``weights="imagenet"``: the twin's conventions (a clash is an error)."""
    options = KERAS_TWINS[owner][1]
    clash = {k: kwargs[k] for k in options if k in kwargs and kwargs[k] != options[k]}
    if clash:
        raise ValueError(f"{owner}: weights='imagenet' needs the keras.applications conventions {options}; "
                         f"got {clash}")
    return {**kwargs, **options}


def imagenet_twin(owner: str, model: keras.Model, include_top: bool, classes: int) -> keras.Model:
    """keras.applications' twin of ``owner`` with ImageNet weights, shaped like ``model``'s input."""
    cls = getattr(keras.applications, KERAS_TWINS[owner][0])
    top = bool(include_top) and int(classes) == 1000
    return cls(weights="imagenet", include_top=top, input_shape=tuple(model.input_shape[1:]))


def transfer_weights(source: keras.Model, target: keras.Model, *, skip_missing: bool = False) -> int:
    """Copy every weighted layer of ``source`` into the layer of the same name in ``target``; the count.

    Raises:
        ValueError: a layer whose weight shapes differ, or (unless ``skip_missing``) a weighted layer of
            ``source`` that ``target`` lacks.
    """
    ours = {layer.name: layer for layer in target.layers if layer.weights}
    copied = 0
    for layer in source.layers:
        if not layer.weights:
            continue
        if layer.name not in ours:
            if skip_missing:
                continue
            raise ValueError(f"transfer_weights: {target.name} has no layer {layer.name!r} of {source.name}")
        values = layer.get_weights()
        shapes = [tuple(w.shape) for w in ours[layer.name].weights]
        if [tuple(v.shape) for v in values] != shapes:
            raise ValueError(f"transfer_weights: layer {layer.name!r} has shapes {shapes} in {target.name} but "
                             f"{[tuple(v.shape) for v in values]} in {source.name}")
        ours[layer.name].set_weights(values)
        copied += 1
    return copied


def with_weights(owner: str, build: Callable[..., keras.Model], weights: Any, kwargs: dict[str, Any],
                 twin: Callable[[str, keras.Model, bool, int], keras.Model] | None = None) -> keras.Model:
    """Build ``owner`` with ``build(**kwargs)`` and load ``weights`` into it (see the module docstring)."""
    check_weights(owner, weights)
    if weights is None:
        return build(**kwargs)
    if os.fspath(weights) != "imagenet":
        return load_weights_file(owner, build(**kwargs), weights)
    model = build(**imagenet_kwargs(owner, kwargs))
    include_top, classes = kwargs.get("include_top", True), kwargs.get("classes", 1000)
    source = (twin or imagenet_twin)(owner, model, include_top, classes)
    transfer_weights(source, model, skip_missing=not (include_top and classes == 1000))
    return model
