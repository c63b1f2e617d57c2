"""``weights=`` on every builder: ``None``, a ``.weights.h5`` file, the name of weights the zoo ships
(``"fashion_mnist"``, ``"fashion_mnist_v1"``: ``zoo.pretrained``), or ``"imagenet"`` for the ResNets that
have a keras.applications twin.

Shipped weights (:func:`shipped_model`) come with the preprocessing they were trained with: the model is
``keras.Input`` -> ``Normalization`` (the training split's mean and variance) -> the zoo model, so it takes raw
pixels and returns class probabilities, like keras.applications' EfficientNet with ``include_preprocessing``.
Its graph is the trained one (the record's builder arguments, its batch norm); your ``regularization`` may
change λ and keep-prob (they carry no weights) but not ``batch_norm``. ``include_top=False`` (with ``pooling``)
gives the trained backbone; ``classes`` other than the weights' with the top is an error (the
keras.applications rule).

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

from zoo import pretrained

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
# what a user may still choose when loading shipped weights (the rest of the graph is the record's)
SHIPPED_FREE_ARGUMENTS = ("include_top", "pooling", "classes", "classifier_activation", "name", "regularization",
                          "input_shape")


def check_weights(owner: str, weights: Any) -> None:
    """``None``, a shipped weight name of ``owner``, ``"imagenet"`` (for a name in ``KERAS_TWINS``) or an
    existing ``.weights.h5`` file."""
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"{owner}: weights must be None, a shipped weight name, 'imagenet' or a path to a "
                         f".weights.h5 file, got {weights!r}")
    text = os.fspath(weights)
    if isinstance(weights, str) and text != "imagenet" and pretrained.is_weight_name(text):
        pretrained.find_record(owner, text)  # WeightsError listing the names that exist
        return
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


def transfer_weights(source: keras.Model, target: keras.Model, *, skip_missing: bool = False,
                     exclude: tuple[str, ...] = ()) -> int:
    """Copy every weighted layer of ``source`` (but those named in ``exclude``) into the layer of the same
    name in ``target``; the count.

    Raises:
        ValueError: a layer whose weight shapes differ, or (unless ``skip_missing``) a weighted layer of
            ``source`` that ``target`` lacks.
    """
    ours = {layer.name: layer for layer in target.layers if layer.weights}
    copied = 0
    for layer in source.layers:
        if not layer.weights or layer.name in exclude:
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
        if isinstance(ours[layer.name], keras.layers.Normalization):
            ours[layer.name].finalize_state()  # set_weights leaves its mean/variance tensors at the old values
        copied += 1
    return copied


def with_weights(owner: str, build: Callable[..., keras.Model], weights: Any, kwargs: dict[str, Any],
                 twin: Callable[[str, keras.Model, bool, int], keras.Model] | None = None) -> keras.Model:
    """Build ``owner`` with ``build(**kwargs)`` and load ``weights`` into it (see the module docstring)."""
    check_weights(owner, weights)
    if weights is None:
        return build(**kwargs)
    if isinstance(weights, str) and weights != "imagenet" and pretrained.is_weight_name(weights):
        return shipped_model(owner, build, weights, kwargs)
    if os.fspath(weights) != "imagenet":
        return load_weights_file(owner, build(**kwargs), weights)
    model = build(**imagenet_kwargs(owner, kwargs))
    include_top, classes = kwargs.get("include_top", True), kwargs.get("classes", 1000)
    source = (twin or imagenet_twin)(owner, model, include_top, classes)
    transfer_weights(source, model, skip_missing=not (include_top and classes == 1000))
    return model


def normalized_model(build: Callable[..., keras.Model], input_shape: tuple, kwargs: dict[str, Any],
                     normalization: keras.layers.Layer | None = None) -> keras.Model:
    """``keras.Input(input_shape, name="inputs")`` -> ``normalization`` (a fresh, unadapted per-channel
    ``Normalization`` named ``normalization`` when None) -> ``build(input_tensor=..., **kwargs)``: the
    inference model of a recipe run, layer for layer (so a run's ``save_weights`` file loads into it)."""
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    layer = normalization if normalization is not None else keras.layers.Normalization(axis=-1, name="normalization")
    model = build(input_tensor=layer(inputs), **kwargs)
    # input_tensor makes keras.applications-style builders take their inputs as a list; one tensor instead
    return keras.Model(inputs, model.output, name=model.name)


def _shipped_kwargs(owner: str, record: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The builder arguments for ``record``'s graph with the user's free choices; a clash is a ValueError."""
    from zoo.regularization import Regularization, as_regularization

    trained = dict(record["builder_kwargs"])
    trained_reg = Regularization.from_dict(trained.pop("regularization"))
    key = pretrained.record_key(record)
    if kwargs.get("input_tensor") is not None:
        raise ValueError(f"{key}: input_tensor cannot be combined with shipped weights (their model starts at "
                         f"its own Input and Normalization); build with weights=None and transfer_weights")
    shape = kwargs.get("input_shape")
    if shape is not None and tuple(shape) != tuple(record["input_shape"]):
        raise ValueError(f"{key}: input_shape {tuple(shape)} differs from the shape the weights were trained "
                         f"on, {tuple(record['input_shape'])}")
    clash = {k: v for k, v in kwargs.items()
             if k not in SHIPPED_FREE_ARGUMENTS and k != "input_tensor" and trained.get(k, v) != v}
    unknown = sorted(k for k in kwargs if k not in SHIPPED_FREE_ARGUMENTS and k not in trained and k != "input_tensor")
    if clash or unknown:
        raise ValueError(f"{key}: the weights fix {clash or {k: kwargs[k] for k in unknown}} (trained with "
                         f"{trained or 'the builder defaults'}); with shipped weights you may set "
                         f"{', '.join(SHIPPED_FREE_ARGUMENTS)}")
    regularization = as_regularization(kwargs.get("regularization"), trained_reg)
    if regularization.batch_norm != trained_reg.batch_norm:
        raise ValueError(f"{key}: regularization.batch_norm={regularization.batch_norm} but the weights were "
                         f"trained with batch_norm={trained_reg.batch_norm} (their BN layers are part of the weights)")
    include_top = kwargs.get("include_top", True)
    classes = kwargs.get("classes", record["classes"])
    if include_top and classes != record["classes"]:
        raise ValueError(f"{key}: classes={classes} with include_top=True, but the weights' top has "
                         f"{record['classes']} classes ({', '.join(record['class_names'])}); use include_top=False "
                         f"for a backbone, or classes={record['classes']}")
    chosen = {k: kwargs[k] for k in ("pooling", "classifier_activation", "name") if k in kwargs}
    return {**trained, **chosen, "regularization": regularization, "include_top": include_top, "classes": classes}


def shipped_model(owner: str, build: Callable[..., keras.Model], weights: str, kwargs: dict[str, Any]) -> keras.Model:
    """``owner`` with the shipped weights ``weights`` (a tag or a version; see ``zoo.pretrained``): raw inputs
    in, probabilities out; ``include_top=False`` gives the trained backbone.

    Raises:
        zoo.pretrained.WeightsError: unknown name, or a missing, truncated or altered file.
        ValueError: arguments the weights fix (a different ``classes`` with the top, ``batch_norm``, ...).
    """
    record = pretrained.find_record(owner, weights)
    wanted = _shipped_kwargs(owner, record, kwargs)
    path = pretrained.verified_file(record)
    full_kwargs = dict(wanted, include_top=True, classes=record["classes"])
    full_kwargs.pop("pooling", None)
    full = load_weights_file(owner, normalized_model(build, record["input_shape"], full_kwargs), path)
    if wanted["include_top"]:
        return full
    backbone = normalized_model(build, record["input_shape"], wanted)
    copied = transfer_weights(full, backbone, skip_missing=True)
    weighted = sum(1 for layer in backbone.layers if layer.weights)
    if copied != weighted:  # never hand back a partly random model
        raise ValueError(f"{pretrained.record_key(record)}: only {copied} of the backbone's {weighted} weighted "
                         f"layers are in the trained model")
    return backbone
