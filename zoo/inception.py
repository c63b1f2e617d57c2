"""GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions").

An Inception module runs four branches on the same input and concatenates them on the channels:
1×1 · 1×1 -> 3×3 · 1×1 -> 5×5 · 3×3/1 max pool -> 1×1 (:func:`inception_block`). The paper's table
(``#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj`` -> output channels)::

    3a   64  96 128 16  32  32 ->  256     4c 128 128 256 24  64  64 ->  512     5a 256 160 320 32 128 128 ->  832
    3b  128 128 192 32  96  64 ->  480     4d 112 144 288 32  64  64 ->  528     5b 384 192 384 48 128 128 -> 1024
    4a  192  96 208 16  48  64 ->  512     4e 256 160 320 32 128 128 ->  832
    4b  160 112 224 24  64  64 ->  512

Network: conv 7×7/2 (64) - max pool 3×3/2 - conv 1×1 (64) - conv 3×3 (192) - max pool 3×3/2 - 3a 3b -
max pool 3×3/2 - 4a … 4e - max pool - 5a 5b - global average pool - dropout - linear. Every max pool
rounds up (Caffe's and torchvision's ``ceil_mode=True``): 224 -> 112 -> 56 -> 28 -> 14 -> 7.

Two forms (``variant=``); parameters with 1000 classes, no aux heads (independent of the input size):

- ``"torchvision"`` (default): BN (eps 1e-3) after every conv, bias-free convs, a 3×3 kernel in the "5×5"
  branch (a known torchvision quirk), max pool 4 is 2×2/2: **6,624,904** trainable parameters (torchvision's
  ``num_params``; Keras keeps the BN moving statistics as non-trainable weights, torchvision as buffers) and
  **1.50 G** multiply-accumulates at 224×224 (``zoo.summary(model).macs``; torchvision publishes 1.498
  "GFLOPS", which are GMACs). With ``aux_logits=True``: 13,004,888 (torchvision's ``aux_logits=True``).
- ``"paper"``: true 5×5 kernels, conv biases, no BN, max pool 4 is 3×3/2, optional LRN after pool 1 and
  conv 3 (BVLC Caffe: n=5, α=1e-4/n, β=0.75, k=1): **6,998,552** parameters.

``regularization=None`` gives each form its own: ``Regularization()`` (BN) for torchvision,
``Regularization(batch_norm=False)`` for the paper; pass a ``zoo.Regularization`` to choose yourself.
Dropout before the classifier comes from ``regularization.keep_prob``: the paper dropped 40 %
(``keep_prob=0.6``), torchvision 20 % (``keep_prob=0.8``). L1/L2 go on every conv and dense kernel
(aux heads too); BN is never on an output layer. He init throughout (ReLU).

Auxiliary classifiers (``aux_logits=True``) on the outputs of 4a and 4d: average pool to 4×4 (paper:
5×5/3; torchvision: adaptive 4×4) - conv 1×1 (128) - FC 1024 + ReLU (no BN, as in both references) -
dropout (paper: 70 %; ``aux_keep_prob``, default ``regularization.keep_prob``) - linear. The model then has
three outputs, ``[predictions, aux1_predictions, aux2_predictions]``; the paper weights the aux losses by
0.3 (``AUX_LOSS_WEIGHTS``)::

    model = zoo.googlenet(aux_logits=True, classes=10)
    model.compile("sgd", loss=["sparse_categorical_crossentropy"] * 3, loss_weights=list(AUX_LOSS_WEIGHTS))
    model.fit(x, (y, y, y))
    inference = keras.Model(model.inputs, model.outputs[0])   # the paper discards the aux heads at test time

Small images (``stem="small"``, registered as ``googlenet_small``, for 8×8 … 32×32): one 3×3/1 conv stem
(a quarter of conv 3's 192 channels) and one 3×3/2 pool instead of the 7×7/2 conv, two pools and two convs;
all nine modules at a quarter of the table's widths (``width_divisor=4``); three pools
(28 -> 14 -> 7 -> 4, 32 -> 16 -> 8 -> 4, 8 -> 4 -> 2 -> 1). At 28×28×1, 10 classes (torchvision form):
347,906 trainable parameters and 16.8 M multiply-accumulates (22.1 M at 32×32×3).

Smallest inputs (:func:`googlenet_min_input_size`): ImageNet stem 15×15 (torchvision), 31×31 (paper),
79×79 (paper with its 5×5/3 aux pool); small stem 4×4, 8×8, 20×20. Smaller inputs raise a ValueError.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import keras

from zoo import _builder
from zoo.layers import LocalResponseNormalization, conv_bn_act, dense_bn_act
from zoo.registry import get_entry, register_model, register_variant
from zoo.regularization import Regularization, as_regularization

__all__ = [
    "inception_block",
    "googlenet",
    "googlenet_small",
    "googlenet_min_input_size",
    "GOOGLENET_TABLE",
    "AUX_LOSS_WEIGHTS",
]

# name: (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj), the paper's table 1
GOOGLENET_TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
STAGES = (("3a", "3b"), ("4a", "4b", "4c", "4d", "4e"), ("5a", "5b"))
AUX_AFTER = {"4a": "aux1", "4d": "aux2"}
AUX_LOSS_WEIGHTS = (1.0, 0.3, 0.3)  # main, aux1, aux2: the paper's discount of the auxiliary losses
BN_EPSILON = 1e-3  # torchvision's BasicConv2d
STEMS = ("imagenet", "small")
SMALL_DEFAULT_SHAPE = (32, 32, 3)
SMALL_WIDTH_DIVISOR = 4
_BRANCH_FILTERS = ("filters_1x1", "filters_3x3_reduce", "filters_3x3", "filters_5x5_reduce", "filters_5x5",
                   "filters_pool_proj")


@dataclasses.dataclass(frozen=True)
class _Variant:
    kernel_size_5x5: int  # the "5×5" branch: 3 in torchvision, 5 in the paper
    pool4: int  # max pool 4's kernel (stride 2): 2×2 in torchvision, 3×3 in the paper
    aux_pool: str  # "adaptive" (torchvision: AdaptiveAvgPool2d(4)) or "5x5/3" (the paper)
    lrn: bool  # default LRN with the ImageNet stem
    batch_norm: bool  # the form's batch norm, used when regularization is None
    keep_prob: float  # the form's dropout before the classifier (paper 40 %, torchvision 20 %), likewise


VARIANTS = {
    "torchvision": _Variant(3, 2, "adaptive", False, True, 0.8),
    "paper": _Variant(5, 3, "5x5/3", True, False, 0.6),
}


# -- spatial sizes -------------------------------------------------------------------------------------

def _ceil_pool_size(n: int, kernel: int, stride: int) -> int:
    """ceil((n − k) / s) + 1: a max pool with ``ceil_mode=True`` and no padding (Caffe, torchvision)."""
    return -((kernel - n) // stride) + 1


def _feature_sizes(n: int, variant: str, stem: str, aux: bool) -> list[int]:
    """Sizes after max pool 4 and (paper aux heads) after their 5×5/3 pool on 4a, for an n×n input."""
    spec = VARIANTS[variant]
    if stem == "imagenet":
        n = _builder.conv_output_size(n, 7, 2, padding=3)  # conv1
        n = _ceil_pool_size(_ceil_pool_size(n, 3, 2), 3, 2)  # max pools 1 and 2
    else:
        n = _ceil_pool_size(n, 3, 2)  # max pool 1
    n = _ceil_pool_size(n, 3, 2)  # max pool 3: 4a … 4e see n×n
    sizes = [_ceil_pool_size(n, spec.pool4, 2) if n >= 1 else 0]
    if aux and spec.aux_pool == "5x5/3":
        sizes.append(_builder.conv_output_size(n, 5, 3))
    return sizes


def googlenet_min_input_size(variant: str = "torchvision", stem: str = "imagenet",
                             aux_logits: bool = False) -> int:
    """The smallest height/width that leaves every pool at least 1×1.

    ImageNet stem: 15 (torchvision), 31 (paper), 79 (paper with its 5×5/3 aux pool). Small stem: 4, 8, 20.
    """
    owner = "googlenet_min_input_size"
    _builder.check_choice("variant", variant, tuple(VARIANTS), owner)
    _builder.check_choice("stem", stem, STEMS, owner)
    n = 1
    while min(_feature_sizes(n, variant, stem, aux_logits)) < 1:
        n += 1
    return n


def _max_pool_ceil(x, kernel: int, name: str):
    """A stride-2 max pool that rounds up like ``ceil_mode=True``: windows start at 0, the last one may hang
    over the bottom/right edge. With even sizes and a 3×3 kernel (or any size and a 2×2 one) that is Keras'
    ``padding="same"``; with odd sizes and a 3×3 kernel it is ``"valid"``; mixed sizes get a zero pad on the
    bottom/right, exact here because every pooled tensor comes out of a ReLU (>= 0). Unknown sizes: "same".
    """
    stride = 2
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        return keras.layers.MaxPooling2D(kernel, stride, padding="same", name=name)(x)
    extra = [(_ceil_pool_size(n, kernel, stride) - 1) * stride + kernel - n for n in (height, width)]
    same_total = [max((-(-n // stride) - 1) * stride + kernel - n, 0) for n in (height, width)]
    if extra == [0, 0]:
        return keras.layers.MaxPooling2D(kernel, stride, padding="valid", name=name)(x)
    if all(e == s <= 1 for e, s in zip(extra, same_total)):  # "same" puts its single pad row at the end
        return keras.layers.MaxPooling2D(kernel, stride, padding="same", name=name)(x)
    x = keras.layers.ZeroPadding2D(((0, extra[0]), (0, extra[1])), name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(kernel, stride, padding="valid", name=name)(x)


# -- the module ------------------------------------------------------------------------------------------

def inception_block(
    x,
    filters_1x1: int,
    filters_3x3_reduce: int,
    filters_3x3: int,
    filters_5x5_reduce: int,
    filters_5x5: int,
    filters_pool_proj: int,
    regularization: Regularization | dict | None = None,
    name: str | None = None,
    *,
    kernel_size_5x5: int = 5,
    bn_epsilon: float = BN_EPSILON,
):
    """The GoogLeNet Inception module on a channels-last 4-D tensor ``x``; usable in any functional model.

    Four branches, concatenated on the channels (``filters_1x1 + filters_3x3 + filters_5x5 +
    filters_pool_proj`` of them, same height and width as ``x``): 1×1 · 1×1 -> 3×3 · 1×1 -> 5×5 ·
    3×3/1 max pool -> 1×1. Every conv is conv -> BN (when ``regularization.batch_norm``; the conv then has
    no bias) -> ReLU with He init and the L1/L2 penalty.

    Args:
        kernel_size_5x5: kernel of the "5×5" branch; 5 is the paper's, torchvision uses 3.
        regularization: ``zoo.Regularization`` (None: the defaults, BN on).
        name: prefix of every layer name (``{name}_1x1_conv`` … ``{name}_concat``); None: a unique
            ``inception_block_<n>``.
        bn_epsilon: BatchNormalization epsilon (torchvision's 1e-3).
    """
    owner = "inception_block"
    reg = as_regularization(regularization)
    values = (filters_1x1, filters_3x3_reduce, filters_3x3, filters_5x5_reduce, filters_5x5, filters_pool_proj)
    for argument, value in zip(_BRANCH_FILTERS, values):
        _builder.check_int(argument, value, 1, owner)
    if isinstance(kernel_size_5x5, bool) or not isinstance(kernel_size_5x5, int) or kernel_size_5x5 < 1 \
            or kernel_size_5x5 % 2 == 0:
        raise ValueError(
            f"{owner}: kernel_size_5x5 must be an odd positive integer (5: the paper, 3: torchvision), "
            f"got {kernel_size_5x5!r}"
        )
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 4:
        raise ValueError(f"{owner}: x must be a 4-D channels-last tensor (batch, height, width, channels), "
                         f"got shape {shape!r}")
    if name is None:
        name = f"inception_block_{keras.backend.get_uid('zoo_inception_block')}"
    elif not isinstance(name, str) or not name:
        raise ValueError(f"{owner}: name must be a non-empty string or None, got {name!r}")

    def conv(y, filters: int, kernel: int, suffix: str):
        return conv_bn_act(y, filters, kernel, regularization=reg, bn_epsilon=bn_epsilon, name=f"{name}_{suffix}")

    branch_1x1 = conv(x, filters_1x1, 1, "1x1")
    branch_3x3 = conv(conv(x, filters_3x3_reduce, 1, "3x3_reduce"), filters_3x3, 3, "3x3")
    branch_5x5 = conv(conv(x, filters_5x5_reduce, 1, "5x5_reduce"), filters_5x5, kernel_size_5x5, "5x5")
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = conv(pooled, filters_pool_proj, 1, "pool_proj")
    return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")(
        [branch_1x1, branch_3x3, branch_5x5, branch_pool])


# -- the network ----------------------------------------------------------------------------------------

def _aux_head(x, index: int, *, spec: _Variant, divisor: int, classes: int, reg: Regularization,
              keep_prob: float | None, classifier_activation: str | None):
    """torchvision's InceptionAux / the paper's auxiliary classifier on the output of 4a or 4d."""
    prefix = f"aux{index}"
    if spec.aux_pool == "5x5/3":
        x = keras.layers.AveragePooling2D(5, strides=3, padding="valid", name=f"{prefix}_pool")(x)
    else:
        x = keras.layers.AdaptiveAveragePooling2D((4, 4), name=f"{prefix}_pool")(x)
    x = conv_bn_act(x, _width(128, divisor), 1, regularization=reg, bn_epsilon=BN_EPSILON, name=f"{prefix}_proj")
    x = keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    x = dense_bn_act(x, _width(1024, divisor), regularization=reg, use_bias=True, batch_norm_override=False,
                     name=f"{prefix}_fc")
    x = reg.apply_dropout(x, name=f"{prefix}_dropout", keep_prob=keep_prob)
    return _builder.classifier(x, classes, regularization=reg, classifier_activation=classifier_activation,
                               name=f"{prefix}_predictions")


def _width(channels: int, divisor: int) -> int:
    return max(1, channels // divisor)


def _check_options(owner: str, variant: str, stem: str, aux_logits: bool, include_top: bool,
                   aux_keep_prob: float | None, kernel_size_5x5: int | None, lrn: bool | None,
                   width_divisor: int | None, name: str | None):
    _builder.check_choice("variant", variant, tuple(VARIANTS), owner)
    _builder.check_choice("stem", stem, STEMS, owner)
    spec = VARIANTS[variant]
    if not isinstance(aux_logits, bool):
        raise ValueError(f"{owner}: aux_logits must be True or False, got {aux_logits!r}")
    if aux_logits and not include_top:
        raise ValueError(f"{owner}: aux_logits=True needs include_top=True (the aux heads are classifiers)")
    if aux_keep_prob is not None:
        Regularization(keep_prob=aux_keep_prob)  # validates: a number in (0, 1]
    if kernel_size_5x5 is None:
        kernel_size_5x5 = spec.kernel_size_5x5
    elif isinstance(kernel_size_5x5, bool) or kernel_size_5x5 not in (3, 5):
        raise ValueError(
            f"{owner}: kernel_size_5x5 must be 5 (the paper), 3 (torchvision) or None (the variant's: "
            f"{spec.kernel_size_5x5} for variant={variant!r}), got {kernel_size_5x5!r}"
        )
    if lrn is None:
        lrn = spec.lrn and stem == "imagenet"
    elif not isinstance(lrn, bool):
        raise ValueError(f"{owner}: lrn must be True, False or None (the variant's default), got {lrn!r}")
    if width_divisor is None:
        width_divisor = SMALL_WIDTH_DIVISOR if stem == "small" else 1
    else:
        _builder.check_int("width_divisor", width_divisor, 1, owner)
    if name is None:
        name = "googlenet_small" if stem == "small" else "googlenet"
    elif not isinstance(name, str) or not name:
        raise ValueError(f"{owner}: name must be a non-empty string, got {name!r}")
    return spec, kernel_size_5x5, lrn, width_divisor, name


def _lrn(x, name: str):
    # BVLC Caffe GoogLeNet: local_size 5, alpha 1e-4, beta 0.75, k 1; Caffe divides alpha by local_size.
    return LocalResponseNormalization(depth_radius=2, bias=1.0, alpha=1e-4 / 5, beta=0.75, name=name)(x)


@register_model("googlenet", params=6_639_464, family="inception", default_input_shape=(224, 224, 3),
                small_input_shape=(15, 15, 3))
def googlenet(
    include_top: bool = True,
    input_shape: Sequence[int] | None = None,
    input_tensor=None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
    regularization: Regularization | dict | None = None,
    variant: str = "torchvision",
    stem: str = "imagenet",
    aux_logits: bool = False,
    aux_keep_prob: float | None = None,
    kernel_size_5x5: int | None = None,
    lrn: bool | None = None,
    width_divisor: int | None = None,
) -> keras.Model:
    """GoogLeNet (Szegedy et al. 2014): 6,624,904 parameters (torchvision form) at 224×224×3, 1000 classes.

    Args:
        variant: ``"torchvision"`` (BN eps 1e-3 after every conv, bias-free convs, 3×3 "5×5" branch,
            2×2 max pool 4, adaptive 4×4 aux pool; 6,624,904 parameters, 1.50 G MACs) or ``"paper"``
            (true 5×5, conv biases, no BN, 3×3 max pool 4, LRN, 5×5/3 aux pool; 6,998,552 parameters).
        regularization: ``zoo.Regularization``; None: the variant's own (BN for torchvision, none for the
            paper; dropout 0.6 / 0.8 keep; a dict changes only the fields it names). ``keep_prob``: dropout
            before the classifier (paper 0.6, torchvision 0.8); ``batch_norm``:
            BN after every conv; ``l1``/``l2``: every conv and dense kernel, aux heads included.
        stem: ``"imagenet"`` (7×7/2 conv, at least 15×15 for torchvision, 31×31 for the paper) or
            ``"small"`` (3×3/1 conv + one pool, a quarter of the widths; default input 32×32×3, works from
            4×4; see :func:`googlenet_small`).
        aux_logits: add the two auxiliary classifiers (on 4a and 4d); the model then returns
            ``[predictions, aux1_predictions, aux2_predictions]`` (weight their losses by
            ``AUX_LOSS_WEIGHTS`` = 1, 0.3, 0.3). Needs ``include_top=True``.
        aux_keep_prob: keep-prob of the aux heads' dropout (paper: 0.3); None: ``regularization.keep_prob``.
        kernel_size_5x5: 5 or 3; None: the variant's.
        lrn: local response normalization after max pool 1 and conv 3; None: on for the paper with the
            ImageNet stem, off otherwise.
        width_divisor: divide every width of the table, the stem and the aux heads (1 for the ImageNet
            stem, 4 for the small one when None).
        name: the model's name; None: ``googlenet`` or ``googlenet_small``.
        The rest: as in ``keras.applications``. With ``include_top=False`` the model ends at 5b
        (7×7×1024 at 224×224), optionally pooled (``pooling="avg"`` or ``"max"``).
    """
    owner = "googlenet_small" if stem == "small" else "googlenet"
    _builder.check_head(owner, include_top, pooling, classes, classifier_activation)
    spec, kernel_size_5x5, lrn, divisor, name = _check_options(
        owner, variant, stem, aux_logits, include_top, aux_keep_prob, kernel_size_5x5, lrn, width_divisor, name)
    reg = as_regularization(regularization, Regularization(batch_norm=spec.batch_norm, keep_prob=spec.keep_prob))
    default_shape = (224, 224, 3) if stem == "imagenet" else SMALL_DEFAULT_SHAPE
    if not include_top:  # fully convolutional without the top: any size, as keras.applications leaves it
        default_shape = (None, None, default_shape[-1])
    hint = ("use googlenet_small (zoo.googlenet_small(...) or stem='small') for small images"
            if stem == "imagenet" else "")
    inputs, x, _ = _builder.image_input(owner, input_shape, input_tensor, default_shape,
                                        googlenet_min_input_size(variant, stem, aux_logits), hint)

    def conv(y, filters: int, kernel: int, layer: str, strides: int = 1, padding: str = "same"):
        return conv_bn_act(y, _width(filters, divisor), kernel, strides=strides, padding=padding,
                           regularization=reg, bn_epsilon=BN_EPSILON, name=layer)

    if stem == "imagenet":
        x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)  # torchvision: 7×7/2 with padding 3
        x = conv(x, 64, 7, "conv1", strides=2, padding="valid")
        x = _max_pool_ceil(x, 3, "maxpool1")
        if lrn:
            x = _lrn(x, "norm1")
        x = conv(x, 64, 1, "conv2")
        x = conv(x, 192, 3, "conv3")
        if lrn:
            x = _lrn(x, "norm2")
        x = _max_pool_ceil(x, 3, "maxpool2")
    else:
        x = conv(x, 192, 3, "conv1")
        x = _max_pool_ceil(x, 3, "maxpool1")
        if lrn:
            x = _lrn(x, "norm1")

    aux_outputs = []
    pools_after = ("maxpool3", "maxpool4", None)
    for stage, pool_name in zip(STAGES, pools_after):
        for module in stage:
            widths = (_width(c, divisor) for c in GOOGLENET_TABLE[module])
            x = inception_block(x, *widths, regularization=reg, name=f"inception_{module}",
                                kernel_size_5x5=kernel_size_5x5)
            if aux_logits and module in AUX_AFTER:
                aux_outputs.append(_aux_head(
                    x, len(aux_outputs) + 1, spec=spec, divisor=divisor, classes=classes, reg=reg,
                    keep_prob=aux_keep_prob, classifier_activation=classifier_activation))
        if pool_name is not None:
            x = _max_pool_ceil(x, 3 if pool_name == "maxpool3" else spec.pool4, pool_name)

    x = _builder.image_head(x, include_top=include_top, pooling=pooling, classes=classes,
                            classifier_activation=classifier_activation, regularization=reg)
    return _builder.finish(inputs, [x, *aux_outputs] if aux_logits else x, input_tensor, name)


register_variant(
    "googlenet_small", googlenet, params=606_776, family="inception", default_input_shape=SMALL_DEFAULT_SHAPE,
    small_input_shape=(8, 8, 1), stem="small",
    description="GoogLeNet's nine Inception modules at a quarter width with a 3×3 stem, for 8×8 … 32×32",
)


def googlenet_small(**kwargs: Any) -> keras.Model:
    """``googlenet(stem="small", ...)``: GoogLeNet for 8×8 … 32×32 images (default 32×32×3).

    Every keyword of :func:`googlenet` except ``stem``; e.g. ``googlenet_small(input_shape=(28, 28, 1),
    classes=10, regularization=zoo.Regularization(l2=5e-5, keep_prob=0.8))`` for Fashion-MNIST.
    """
    return get_entry("googlenet_small").build(**kwargs)
