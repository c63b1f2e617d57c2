"""AlexNet (Krizhevsky, Sutskever, Hinton 2012, "ImageNet classification with deep convolutional neural networks").

Five convolutions and three fully connected layers, ReLU, overlapping 3×3/2 max pools, dropout in fc6/fc7
and optional local response normalization (LRN: k=2, n=5, α=1e-4, β=0.75, after the ReLUs of conv1 and
conv2, before their pools; :class:`zoo.layers.LocalResponseNormalization`). Two channel plans (``plan=``),
each with its source's padding; parameter counts with 1000 classes and ``zoo.Regularization.none()``:

- ``"paper"``: conv 96@11×11/4 (valid, 227×227×3) - 256@5×5 - 384@3×3 - 384@3×3 - 256@3×3 (pad 2, 1, 1, 1),
  LRN, FC 4096-4096-classes, dropout on the outputs of fc6 and fc7. ``groups=2`` (default) is the paper's
  two-GPU split, where conv2, conv4 and conv5 only see the maps of their own GPU (Keras
  ``Conv2D(groups=2)``): 60,965,224 parameters; ``groups=1`` (one tower): 62,378,344.
- ``"torchvision"``: 64@11×11/4 pad 2 (224×224×3) - 192@5×5 pad 2 - 384 - 256 - 256 @3×3 pad 1, no LRN,
  AdaptiveAvgPool 6×6, dropout on the inputs of fc6 and fc7: 61,100,840 parameters and 714,188,480
  multiply-adds (torchvision publishes 0.71 "GFLOPS", which are GMACs).

Dropout comes from ``regularization.keep_prob``; the paper used keep_prob 0.5
(``zoo.Regularization(keep_prob=0.5)``). With ``regularization.batch_norm``: conv -> BN -> ReLU (conv
without bias), fc6/fc7 -> BN -> ReLU, never on the output. He init; L1/L2 on every conv and dense kernel.

Input sizes (the conv output formula floor((n + 2p − k) / s) + 1 through conv1 and the three pools):

- ``stem="imagenet"``: at least 67×67 for the paper plan, 63×63 for the torchvision plan.
- ``stem="small"`` for 32×32, 28×28, 8×8 …: conv1 is 3×3 stride 1 instead of 11×11/4 and the three
  overlapping 3×3/2 pools use "same" padding, each halving the size rounded up (32 -> 16 -> 8 -> 4,
  28 -> 14 -> 7 -> 4, 8 -> 4 -> 2 -> 1); conv2 … conv5 are unchanged. Any size works. Defaults sized for a
  CPU: a quarter of the plan's widths (24-64-96-96-64), fc6/fc7 of 512 units, one tower (``groups=1``);
  ``filters=``, ``fc_units=`` and ``groups=`` change them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import keras

from zoo import _builder
from zoo.layers import LocalResponseNormalization, conv_bn_act, dense_bn_act
from zoo.registry import get_entry, register_model, register_variant
from zoo.regularization import Regularization, as_regularization

__all__ = ["alexnet", "alexnet_torchvision", "alexnet_small", "alexnet_min_input_size"]

PAPER_REGULARIZATION = Regularization(keep_prob=0.5, batch_norm=False)  # dropout 0.5 in fc6/fc7, no BN (2012)
STEMS = ("imagenet", "small")
GROUPS = (1, 2)
SMALL_WIDTH_DIVISOR = 4
SMALL_FC_UNITS = 512
IMAGENET_FC_UNITS = 4096


@dataclasses.dataclass(frozen=True)
class _Plan:
    """One channel plan: widths, conv1's zero padding, and the defaults that came with it."""

    filters: tuple[int, int, int, int, int]
    conv1_padding: int  # explicit zero padding of the 11×11/4 conv1 of the ImageNet stem
    groups: int  # default for conv2, conv4, conv5
    lrn: bool  # default LRN with the ImageNet stem
    dropout_before_fc: bool  # torchvision: Dropout -> fc; paper: fc -> ReLU -> Dropout
    adaptive_pool: bool  # torchvision: AdaptiveAvgPool2d((6, 6)) before fc6 (ImageNet stem)
    default_shape: tuple[int, int, int]


PLANS = {
    "paper": _Plan((96, 256, 384, 384, 256), 0, 2, True, False, False, (227, 227, 3)),
    "torchvision": _Plan((64, 192, 384, 256, 256), 2, 1, False, True, True, (224, 224, 3)),
}
SMALL_DEFAULT_SHAPE = (32, 32, 3)


def _spatial_ops(plan: str, stem: str) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of every layer that changes the spatial size, in order."""
    pool = (3, 2, 0) if stem == "imagenet" else (3, 2, 1)  # "same" 3×3/2 pool = pad 1: ceil(n / 2)
    conv1 = (11, 4, PLANS[plan].conv1_padding) if stem == "imagenet" else (3, 1, 1)
    return [conv1, pool, (5, 1, 2), pool, (3, 1, 1), (3, 1, 1), (3, 1, 1), pool]


def _feature_size(n: int, plan: str, stem: str) -> int:
    for kernel, stride, padding in _spatial_ops(plan, stem):
        n = _builder.conv_output_size(n, kernel, stride, padding)
        if n < 1:
            return 0
    return n


def alexnet_min_input_size(plan: str = "paper", stem: str = "imagenet") -> int:
    """The smallest height/width that leaves pool5 at least 1×1: 67 (paper), 63 (torchvision), 1 (small).

    Found with the conv output formula floor((n + 2p − k) / s) + 1, which only grows with n.
    """
    _builder.check_choice("plan", plan, tuple(PLANS), "alexnet_min_input_size")
    _builder.check_choice("stem", stem, STEMS, "alexnet_min_input_size")
    n = 1
    while _feature_size(n, plan, stem) < 1:
        n += 1
    return n


def _check_options(owner: str, plan: str, stem: str, groups: int | None, lrn: bool | None,
                   filters: Sequence[int] | None, fc_units: int | None, name: str | None):
    _builder.check_choice("plan", plan, tuple(PLANS), owner)
    _builder.check_choice("stem", stem, STEMS, owner)
    spec = PLANS[plan]
    if groups is None:
        # TF's CPU kernels for grouped convolutions are several times slower than for plain ones, and the
        # split was the paper's two-GPU memory workaround: the small stem (CPU-sized data) uses one tower.
        groups = spec.groups if stem == "imagenet" else 1
    elif isinstance(groups, bool) or groups not in GROUPS:
        raise ValueError(
            f"{owner}: groups must be 1 (one tower), 2 (the paper's two-GPU split of conv2, conv4, conv5) "
            f"or None (the plan's: {spec.groups} for plan={plan!r} with the ImageNet stem, 1 with the small "
            f"stem), got {groups!r}"
        )
    if lrn is None:
        lrn = spec.lrn and stem == "imagenet"
    elif not isinstance(lrn, bool):
        raise ValueError(f"{owner}: lrn must be True, False or None (the plan's default), got {lrn!r}")
    if filters is None:
        divisor = SMALL_WIDTH_DIVISOR if stem == "small" else 1
        filters = tuple(f // divisor for f in spec.filters)
    else:
        if (not isinstance(filters, (tuple, list)) or len(filters) != 5
                or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters)):
            raise ValueError(
                f"{owner}: filters must be five positive integers (conv1 … conv5), got {filters!r}"
            )
        filters = tuple(filters)
    if any(f % groups for f in filters):
        raise ValueError(
            f"{owner}: every entry of filters must be divisible by groups={groups}, got filters={filters}"
        )
    if fc_units is None:
        fc_units = SMALL_FC_UNITS if stem == "small" else IMAGENET_FC_UNITS
    else:
        _builder.check_int("fc_units", fc_units, 1, owner)
    if name is None:
        name = "alexnet" + ("_torchvision" if plan == "torchvision" else "")
        name += "_small" if stem == "small" else ""
    elif not isinstance(name, str) or not name:
        raise ValueError(f"{owner}: name must be a non-empty string, got {name!r}")
    return spec, groups, lrn, filters, fc_units, name


@register_model("alexnet", params=60_965_224, family="alexnet", default_input_shape=(227, 227, 3),
                small_input_shape=(67, 67, 3))
def alexnet(
    include_top: bool = True,
    input_shape: Sequence[int] | None = None,
    input_tensor=None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
    regularization: Regularization | dict | None = None,
    plan: str = "paper",
    stem: str = "imagenet",
    groups: int | None = None,
    lrn: bool | None = None,
    filters: Sequence[int] | None = None,
    fc_units: int | None = None,
) -> keras.Model:
    """AlexNet (Krizhevsky et al. 2012): 60,965,224 parameters at 227×227×3, 1000 classes, no BN.

    Args:
        plan: ``"paper"`` (96-256-384-384-256, default input 227×227×3, dropout after fc6 and fc7) or
            ``"torchvision"`` (64-192-384-256-256, torchvision's padding and AdaptiveAvgPool 6×6, default
            input 224×224×3, dropout before fc6 and fc7, 61,100,840 parameters).
        stem: ``"imagenet"`` (conv1 11×11/4, valid 3×3/2 pools; at least 67×67 for the paper plan, 63×63
            for torchvision's) or ``"small"`` (conv1 3×3/1, "same" 3×3/2 pools, default input 32×32×3;
            any size, e.g. 28×28×1 or 8×8×1).
        groups: 2 splits conv2, conv4 and conv5 into the paper's two GPU towers (60,965,224 parameters),
            1 does not (62,378,344); None: the plan's with the ImageNet stem (2 for the paper, 1 for
            torchvision) and 1 with the small stem (TF's grouped convolutions are slow on a CPU).
        lrn: local response normalization after the ReLUs of conv1 and conv2; None: on for the paper plan
            with the ImageNet stem, off otherwise (torchvision has none).
        filters: the five conv widths; None: the plan's, or a quarter of them with ``stem="small"``.
        fc_units: width of fc6 and fc7; None: 4096, or 512 with ``stem="small"``.
        regularization: ``zoo.Regularization``; None: the paper's (dropout 0.5 in fc6 and fc7, no BN); a
            dict changes only the fields it names. ``keep_prob`` sets the two dropouts,
            ``batch_norm`` puts BN after every conv and after fc6 and fc7 (never on the output), ``l1``/``l2``
            penalize every conv and dense kernel.
        name: the model's name; None: ``alexnet``, ``alexnet_torchvision``, ``alexnet_small`` …
        The rest: as in ``keras.applications``. With ``include_top=False`` the model ends at pool5
        (6×6×256 at the default sizes), optionally pooled (``pooling="avg"`` or ``"max"``).
    """
    owner = PUBLIC_NAMES.get((plan, stem), "alexnet") if isinstance(plan, str) and isinstance(stem, str) else "alexnet"
    reg = as_regularization(regularization, PAPER_REGULARIZATION)
    _builder.check_head(owner, include_top, pooling, classes, classifier_activation)
    spec, groups, lrn, filters, fc_units, name = _check_options(
        owner, plan, stem, groups, lrn, filters, fc_units, name)
    default_shape = spec.default_shape if stem == "imagenet" else SMALL_DEFAULT_SHAPE
    hint = "use alexnet_small (stem='small')" if stem == "imagenet" else ""
    inputs, x, (height, width, _) = _builder.image_input(
        owner, input_shape, input_tensor, default_shape, alexnet_min_input_size(plan, stem), hint)
    if include_top and (height is None or width is None):
        raise ValueError(
            f"{owner}: input_shape needs a fixed height and width with include_top=True (fc6 sees the "
            f"flattened pool5 map), got {height}×{width}"
        )

    def conv(x, index: int, kernel: int, strides: int = 1, padding: str = "same", grouped: bool = False):
        return conv_bn_act(x, filters[index - 1], kernel, strides=strides, padding=padding,
                           groups=groups if grouped else 1, regularization=reg, name=f"conv{index}")

    def pool(x, index: int):
        padding = "valid" if stem == "imagenet" else "same"
        return keras.layers.MaxPooling2D(3, strides=2, padding=padding, name=f"pool{index}")(x)

    def norm(x, index: int):
        if not lrn:
            return x
        return LocalResponseNormalization(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75,
                                          name=f"conv{index}_lrn")(x)

    if stem == "imagenet":
        if spec.conv1_padding:
            x = keras.layers.ZeroPadding2D(spec.conv1_padding, name="conv1_pad")(x)
        x = conv(x, 1, 11, strides=4, padding="valid")
    else:
        x = conv(x, 1, 3)
    x = pool(norm(x, 1), 1)
    x = pool(norm(conv(x, 2, 5, grouped=True), 2), 2)
    x = conv(x, 3, 3)
    x = conv(x, 4, 3, grouped=True)
    x = conv(x, 5, 3, grouped=True)
    x = pool(x, 5)

    if not include_top:
        x = _builder.image_head(x, include_top=False, pooling=pooling, classes=classes,
                                classifier_activation=classifier_activation, regularization=reg)
        return _builder.finish(inputs, x, input_tensor, name)

    if spec.adaptive_pool and stem == "imagenet":
        repeat = tuple(6 if size == 1 else 1 for size in x.shape[1:3])
        if repeat != (1, 1):
            # Adaptive pooling of a side of 1 to 6 repeats it 6 times (torchvision's AdaptiveAvgPool2d does);
            # Keras 3's TensorFlow adaptive pool fails on a side of 1 inside tf.function (fit, predict), so
            # repeat it first: 6 -> 6 is then the identity on that side. Inputs of 63..94 px give a 1×1 pool5.
            x = keras.layers.UpSampling2D(repeat, name="pool5_repeat")(x)
        x = keras.layers.AdaptiveAveragePooling2D((6, 6), name="avg_pool_6x6")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for fc in ("fc6", "fc7"):
        if spec.dropout_before_fc:  # torchvision: Dropout -> Linear -> ReLU
            x = reg.apply_dropout(x, name=f"{fc}_input_dropout")
        x = dense_bn_act(x, fc_units, regularization=reg, name=fc)
        if not spec.dropout_before_fc:  # the paper: dropout on the outputs of fc6 and fc7
            x = reg.apply_dropout(x, name=f"{fc}_dropout")
    x = _builder.classifier(x, classes, regularization=reg, classifier_activation=classifier_activation)
    return _builder.finish(inputs, x, input_tensor, name)


# (plan, stem) -> the registered name errors speak of
PUBLIC_NAMES = {("paper", "imagenet"): "alexnet", ("torchvision", "imagenet"): "alexnet_torchvision",
                ("paper", "small"): "alexnet_small"}

register_variant(
    "alexnet_torchvision", alexnet, params=61_100_840, family="alexnet", default_input_shape=(224, 224, 3),
    small_input_shape=(63, 63, 3), plan="torchvision",
    description="AlexNet with torchvision's channel plan and padding: 61,100,840 parameters at 224×224×3",
)
register_variant(
    "alexnet_small", alexnet, params=1_533_384, family="alexnet", default_input_shape=SMALL_DEFAULT_SHAPE,
    small_input_shape=(8, 8, 1), stem="small",
    description="AlexNet's five convs with a small-image stem (3×3/1 conv1, 'same' pools) for 8×8 … 32×32",
)


def alexnet_torchvision(**kwargs: Any) -> keras.Model:
    """``alexnet(plan="torchvision", ...)``: 61,100,840 parameters at 224×224×3, 0.714 G multiply-adds.

    Every keyword of :func:`alexnet` except ``plan``.
    """
    return get_entry("alexnet_torchvision").build(**kwargs)


def alexnet_small(**kwargs: Any) -> keras.Model:
    """``alexnet(stem="small", ...)``: AlexNet for 8×8 … 32×32 images (default 32×32×3).

    Every keyword of :func:`alexnet` except ``stem``; e.g. ``alexnet_small(input_shape=(28, 28, 1),
    classes=10)`` for Fashion-MNIST.
    """
    return get_entry("alexnet_small").build(**kwargs)
