"""ResNets: v1 (He, Zhang, Ren, Sun 2015, "Deep residual learning for image recognition") and v2
(He et al. 2016, "Identity mappings in deep residual networks", pre-activation), ImageNet and CIFAR forms.

Depth is data: ``IMAGENET_LAYOUTS`` maps 18/34/50/101/152 to a block kind and blocks per stage
(``[2, 2, 2, 2]`` is ResNet-18); a CIFAR ResNet of depth ``6n + 2`` has ``n`` basic blocks in each of three
stages of 16/32/64 channels. One generic builder, :func:`_resnet`, serves two public ones
(:func:`imagenet_resnet`, :func:`cifar_resnet`) and thin registered wrappers (``resnet18`` … ``resnet110``).

Trainable parameters at 224×224×3 / 1000 classes with ``Regularization(batch_norm=True)``, λ = 0,
``keep_prob = 1`` (BN on: the reference counts assume it), equal to torchvision's ``num_params`` (Keras keeps
BN moving statistics as non-trainable weights, torchvision as buffers, so compare the trainable count):
ResNet-18 11,689,512 · 34 21,797,672 · 50 25,557,032 · 101 44,549,160 · 152 60,192,808.
Multiply-accumulates (``zoo.summary(model).macs``) at 224×224: ResNet-18 1.814 G, ResNet-50 4.089 G (stride on
the 3×3), the numbers torchvision publishes as "GFLOPS".

Where the stride sits in a bottleneck block (``stride_on``): torchvision's "ResNet V1.5" puts it on the 3×3
(``"3x3"``, the default, 4.09 G MACs for ResNet-50); the paper and keras.applications put it on the first
1×1 (``"1x1"``, 3.86 G). Reproducing ``keras.applications.ResNet50/101/152`` exactly (same layer names,
shapes, weights, outputs): ``stride_on="1x1", use_bias=True, bn_epsilon=1.001e-5`` — ResNet50 then has
25,583,592 trainable / 25,636,712 total parameters, ResNet101 44,707,176 and ResNet152 60,419,944 total.
Reproducing ``keras.applications.ResNet50V2/101V2/152V2``: ``version=2, downsample="last", use_bias=True,
bn_epsilon=1.001e-5`` (keras strides in the *last* block of stages 2–4 and subsamples that block's
identity shortcut with a 1×1 max-pool; the paper, timm and the default ``downsample="first"`` stride in the
first block of stages 3–5); ResNet50V2 then has 25,613,800 parameters, 25,568,360 trainable.

CIFAR (paper section 4.2), 10 classes at 32×32×3, trainable parameters with shortcut option A (identity,
stride-2 subsampling and zero channels, the paper's CIFAR choice): ResNet-20 269,722 · 32 464,154 ·
44 658,586 · 56 853,018 · 110 1,727,962; option B (1×1 projection + BN where the channel count changes):
ResNet-20 272,474. Option A's zero channels are split evenly before and after the identity's channels.
The CIFAR stem keeps small images: Fashion-MNIST 28×28×1 and 8×8×1 digits build.

``zero_init_residual=True`` (Goyal et al. 2017) starts every residual branch at zero: v1 zeroes the γ of the
branch's last BN; v2 branches end in a conv, so its kernel is zeroed instead (timm's ``zero_init_last``; a zero
γ there would sit before a ReLU and kill the branch's gradient).

``regularization``: L1/L2 on every conv and dense kernel; Dropout (``keep_prob``) only before the
classifier; ``batch_norm=False`` removes every BN and gives every conv a bias.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import keras
from keras import ops

from zoo import _builder
from zoo.layers import BN_EPSILON, batch_norm, conv_bn_act
from zoo.registry import register_model
from zoo.regularization import Regularization, as_regularization

__all__ = [
    "ChannelZeroPadding",
    "imagenet_resnet",
    "cifar_resnet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnet50v2", "resnet101v2", "resnet152v2",
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
]

KERAS_BN_EPSILON = 1.001e-5  # keras.applications' ResNet; torchvision (and the zoo's default) use 1e-5


@dataclasses.dataclass(frozen=True)
class BlockKind:
    """A residual branch as data: the kernel sizes of its convs and the output-width ``expansion``."""

    name: str
    kernels: tuple[int, ...]
    expansion: int


BASIC = BlockKind("basic", (3, 3), 1)  # 3×3, 3×3
BOTTLENECK = BlockKind("bottleneck", (1, 3, 1), 4)  # 1×1 reduce, 3×3, 1×1 expand ×4

IMAGENET_LAYOUTS: dict[int, tuple[BlockKind, tuple[int, ...]]] = {
    18: (BASIC, (2, 2, 2, 2)),
    34: (BASIC, (3, 4, 6, 3)),
    50: (BOTTLENECK, (3, 4, 6, 3)),
    101: (BOTTLENECK, (3, 4, 23, 3)),
    152: (BOTTLENECK, (3, 8, 36, 3)),
}
IMAGENET_WIDTHS = (64, 128, 256, 512)
IMAGENET_STRIDES = (1, 2, 2, 2)  # per stage; the stem already divides by 4
CIFAR_WIDTHS = (16, 32, 64)
CIFAR_STRIDES = (1, 2, 2)
CIFAR_DEPTHS = (20, 32, 44, 56, 110)  # the registered ones; any 6n + 2 builds

IMAGENET_SHAPE, IMAGENET_SMALL_SHAPE = (224, 224, 3), (32, 32, 3)
CIFAR_SHAPE, CIFAR_SMALL_SHAPE = (32, 32, 3), (8, 8, 1)

VERSIONS = (1, 2)
STRIDE_ON = ("3x3", "1x1")
DOWNSAMPLE = ("first", "last")
SHORTCUTS = ("A", "B")


@keras.saving.register_keras_serializable(package="zoo")
class ChannelZeroPadding(keras.layers.Layer):
    """Zero channels added on the last axis: ``(before, after)``. The CIFAR ResNet's option-A shortcut.

    A real layer (not a Lambda) so that models save and load with ``safe_mode=True``.
    """

    def __init__(self, padding: tuple[int, int] = (0, 0), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (not isinstance(padding, (tuple, list)) or len(padding) != 2
                or any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in padding)):
            raise ValueError(f"padding must be (before, after), two integers >= 0, got {padding!r}")
        self.padding = (int(padding[0]), int(padding[1]))

    def call(self, inputs):
        return ops.pad(inputs, [[0, 0]] * (len(inputs.shape) - 1) + [list(self.padding)])

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (*input_shape[:-1], None if channels is None else channels + sum(self.padding))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": self.padding}


@dataclasses.dataclass(frozen=True)
class _Options:
    """The knobs every block reads; built once per model."""

    reg: Regularization
    version: int
    stride_on: str
    shortcut: str
    use_bias: bool
    bn_epsilon: float
    zero_init_residual: bool


# -- layers ----------------------------------------------------------------------------------------

def _conv(x, filters: int, kernel: int, *, name: str, opts: _Options, stride: int = 1, bn: bool = True,
          activation: str | None = "relu", zero_init: bool = False):
    """Conv (-> BN) (-> activation). A strided k×k conv pads k//2 on every side first, as torchvision does.

    Bias: every conv when BN is off; with BN on, none unless ``use_bias`` — then v1 puts one on every conv
    (keras.applications ResNet) and v2 on the convs not followed directly by a BN (keras.applications
    ResNetV2). ``zero_init`` zeroes this conv's BN γ, or its kernel when no BN follows it.
    """
    bn_here = bn and opts.reg.batch_norm
    if not opts.reg.batch_norm:
        bias = True
    else:
        bias = opts.use_bias and (opts.version == 1 or not bn_here)
    padding = "same"
    if stride > 1 and kernel > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    return conv_bn_act(
        x, filters, kernel, name=name, regularization=opts.reg, strides=stride, padding=padding,
        activation=activation, use_bias=bias, batch_norm_override=bn_here, bn_epsilon=opts.bn_epsilon,
        bn_gamma_zero=zero_init and bn_here,
        kernel_initializer="zeros" if zero_init and not bn_here else "he_normal",
    )


def _preactivation(x, name: str, opts: _Options):
    """v2's BN -> ReLU in front of a block (ReLU alone without batch norm)."""
    if opts.reg.batch_norm:
        x = batch_norm(x, f"{name}_bn", epsilon=opts.bn_epsilon)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _shortcut(x, preact, channels: int, stride: int, name: str, opts: _Options):
    """Identity, option A (subsample + zero channels) or option B (1×1 projection, + BN in v1).

    A projection appears only where the channel count changes; a block that strides without changing it
    (keras' v2 layout) subsamples its identity with a 1×1 max-pool. v2 projects the pre-activation.
    """
    c_in = x.shape[-1]
    if c_in != channels and opts.shortcut == "B":
        source = preact if opts.version == 2 else x
        return _conv(source, channels, 1, name=f"{name}_0", opts=opts, stride=stride,
                     bn=opts.version == 1, activation=None)
    if stride > 1:
        x = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_subsample")(x)
    if c_in != channels:
        extra = channels - c_in
        if extra < 0:
            raise ValueError(f"shortcut 'A' cannot shrink {c_in} channels to {channels}; use shortcut='B'")
        x = ChannelZeroPadding((extra // 2, extra - extra // 2), name=f"{name}_0_pad")(x)
    return x


# -- blocks and stages -----------------------------------------------------------------------------

def _stride_index(kind: BlockKind, stride_on: str) -> int:
    """Which conv of the branch strides: the first 3×3 or the first 1×1 (basic blocks have only 3×3s)."""
    wanted = 3 if stride_on == "3x3" else 1
    return kind.kernels.index(wanted) if wanted in kind.kernels else 0


def residual_block(x, width: int, kind: BlockKind, *, stride: int, name: str, opts: _Options):
    """One residual block, v1 (conv-BN-ReLU …, add, ReLU) or v2 (BN-ReLU, conv …, add).

    ``width`` is the 3×3's channel count; the block outputs ``width * kind.expansion`` channels. Layer
    names follow keras.applications: ``{name}_0`` shortcut, ``{name}_1`` … branch, ``{name}_add``/``_out``.
    """
    channels = width * kind.expansion
    preact = _preactivation(x, f"{name}_preact", opts) if opts.version == 2 else x
    shortcut = _shortcut(x, preact, channels, stride, name, opts)
    strided = _stride_index(kind, opts.stride_on)
    y = preact
    *inner, last = kind.kernels
    for i, kernel in enumerate(inner):
        y = _conv(y, width, kernel, name=f"{name}_{i + 1}", opts=opts, stride=stride if i == strided else 1)
    y = _conv(y, channels, last, name=f"{name}_{len(kind.kernels)}", opts=opts,
              stride=stride if strided == len(inner) else 1, bn=opts.version == 1, activation=None,
              zero_init=opts.zero_init_residual)
    if opts.version == 2:
        return keras.layers.Add(name=f"{name}_out")([shortcut, y])
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def _block_strides(blocks: Sequence[int], stage_strides: Sequence[int], downsample: str) -> list[list[int]]:
    """Stride of every block: stage ``i`` strides in its first block, or (``"last"``) stage ``i - 1``'s last."""
    plan = [[1] * n for n in blocks]
    for i, stride in enumerate(stage_strides):
        if stride > 1:
            if downsample == "first":
                plan[i][0] = stride
            else:
                plan[i - 1][-1] = stride
    return plan


def residual_stage(x, width: int, strides: Sequence[int], kind: BlockKind, *, name: str, opts: _Options):
    """``len(strides)`` blocks of one width, named ``{name}_block1`` …"""
    for j, stride in enumerate(strides):
        x = residual_block(x, width, kind, stride=stride, name=f"{name}_block{j + 1}", opts=opts)
    return x


def _imagenet_stem(x, opts: _Options):
    """7×7/2 conv with 64 channels (-> BN -> ReLU in v1), then a 3×3/2 max-pool: 224 -> 56."""
    x = _conv(x, 64, 7, name="conv1", opts=opts, stride=2, bn=opts.version == 1,
              activation="relu" if opts.version == 1 else None)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def _cifar_stem(x, opts: _Options):
    """3×3 conv with 16 channels (-> BN -> ReLU in v1), no pooling: 32 -> 32."""
    return _conv(x, CIFAR_WIDTHS[0], 3, name="conv1", opts=opts, bn=opts.version == 1,
                 activation="relu" if opts.version == 1 else None)


# -- the generic builder ---------------------------------------------------------------------------

def _options(owner: str, regularization, version, stride_on, shortcut, use_bias, bn_epsilon,
             zero_init_residual) -> _Options:
    _builder.check_choice("version", version, VERSIONS, owner)
    _builder.check_choice("stride_on", stride_on, STRIDE_ON, owner)
    _builder.check_choice("shortcut", shortcut, SHORTCUTS, owner)
    for argument, value in (("use_bias", use_bias), ("zero_init_residual", zero_init_residual)):
        if not isinstance(value, bool):
            raise ValueError(f"{owner}: {argument} must be True or False, got {value!r}")
    if isinstance(bn_epsilon, bool) or not isinstance(bn_epsilon, (int, float)) or not bn_epsilon > 0:
        raise ValueError(f"{owner}: bn_epsilon must be a number > 0, got {bn_epsilon!r}")
    return _Options(as_regularization(regularization), version, stride_on, shortcut, use_bias,
                    float(bn_epsilon), zero_init_residual)


def _resnet(owner: str, *, stem, kind: BlockKind, blocks: Sequence[int], widths: Sequence[int],
            stage_strides: Sequence[int], downsample: str, opts: _Options, default_shape, min_size: int,
            hint: str, include_top, input_shape, input_tensor, pooling, classes, classifier_activation,
            name: str) -> keras.Model:
    """Stem -> stages ``conv2, conv3, …`` -> (v2: BN-ReLU) -> keras.applications head."""
    _builder.check_head(owner, include_top, pooling, classes, classifier_activation)
    _builder.check_choice("downsample", downsample, DOWNSAMPLE, owner)
    if not include_top:  # fully convolutional without the top: any size, as keras.applications leaves it
        default_shape = (None, None, default_shape[-1])
    inputs, x, _ = _builder.image_input(owner, input_shape, input_tensor, default_shape, min_size, hint)
    x = stem(x, opts)
    plan = _block_strides(blocks, stage_strides, downsample)
    for i, (width, strides) in enumerate(zip(widths, plan)):
        x = residual_stage(x, width, strides, kind, name=f"conv{i + 2}", opts=opts)
    if opts.version == 2:
        x = _preactivation(x, "post", opts)
    x = _builder.image_head(x, include_top=include_top, pooling=pooling, classes=classes,
                            classifier_activation=classifier_activation, regularization=opts.reg)
    return _builder.finish(inputs, x, input_tensor, name)


def imagenet_resnet(
    depth: int = 50,
    version: int = 1,
    include_top: bool = True,
    input_shape: Sequence[int] | None = None,
    input_tensor=None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
    regularization: Regularization | dict | None = None,
    *,
    stride_on: str = "3x3",
    downsample: str = "first",
    shortcut: str = "B",
    use_bias: bool = False,
    bn_epsilon: float = BN_EPSILON,
    zero_init_residual: bool = False,
) -> keras.Model:
    """An ImageNet ResNet: 7×7/2 stem, max-pool, four stages of 64/128/256/512-wide blocks, total stride 32.

    Args:
        depth: 18 or 34 (basic blocks), 50, 101 or 152 (bottleneck blocks); see ``IMAGENET_LAYOUTS``.
        version: 1 (post-activation, He et al. 2015) or 2 (pre-activation, He et al. 2016).
        stride_on: bottleneck blocks stride on their ``"3x3"`` (torchvision V1.5, default) or their first
            ``"1x1"`` (the paper, keras.applications). Basic blocks always stride on their first 3×3.
        downsample: the ``"first"`` block of stages 3–5 strides (paper, torchvision, timm), or the
            ``"last"`` block of stages 2–4 (keras.applications ResNetV2).
        shortcut: ``"B"`` (1×1 projection where the channel count changes) or ``"A"`` (zero channels).
        use_bias: ``False``: bias-free convs before BN (torchvision). ``True``: keras.applications' biases.
        bn_epsilon: 1e-5 (torchvision) or 1.001e-5 (keras.applications).
        zero_init_residual: zero the last BN γ of every residual branch (v1; Goyal et al. 2017), or the
            branch's last conv kernel where no BN ends it (v2, or ``batch_norm=False``).
        regularization: ``zoo.Regularization``; L1/L2 on every kernel, dropout before the classifier.
        The rest: as in ``keras.applications``. Inputs must be at least 32×32.
    """
    _builder.check_choice("depth", depth, tuple(IMAGENET_LAYOUTS), "imagenet_resnet")
    owner = f"resnet{depth}{'v2' if version == 2 else ''}"
    opts = _options(owner, regularization, version, stride_on, shortcut, use_bias, bn_epsilon,
                    zero_init_residual)
    kind, blocks = IMAGENET_LAYOUTS[depth]
    return _resnet(
        owner, stem=_imagenet_stem, kind=kind, blocks=blocks, widths=IMAGENET_WIDTHS,
        stage_strides=IMAGENET_STRIDES, downsample=downsample, opts=opts, default_shape=IMAGENET_SHAPE,
        min_size=32, hint="pass a larger input_shape, or use a CIFAR ResNet (resnet20 … resnet110) whose "
        "3×3 stem keeps small images",
        include_top=include_top, input_shape=input_shape, input_tensor=input_tensor, pooling=pooling,
        classes=classes, classifier_activation=classifier_activation, name=name or owner,
    )


def cifar_resnet(
    depth: int = 20,
    version: int = 1,
    include_top: bool = True,
    input_shape: Sequence[int] | None = None,
    input_tensor=None,
    pooling: str | None = None,
    classes: int = 10,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
    regularization: Regularization | dict | None = None,
    *,
    shortcut: str = "A",
    downsample: str = "first",
    use_bias: bool = False,
    bn_epsilon: float = BN_EPSILON,
    zero_init_residual: bool = False,
) -> keras.Model:
    """A CIFAR ResNet (He et al. 2015, section 4.2): 3×3 stem, three stages of n basic blocks, 6n + 2 layers.

    Args:
        depth: ``6n + 2`` with ``n >= 1``: 20, 32, 44, 56, 110 (registered), 1202, …
        shortcut: ``"A"`` (identity; stride-2 subsampling and zero channels where the shape changes: the
            paper's CIFAR choice, no extra parameters) or ``"B"`` (1×1 projection + BN there).
        version, downsample, use_bias, bn_epsilon, zero_init_residual, regularization: as in
            :func:`imagenet_resnet`.
        The rest: as in ``keras.applications``. Inputs must be at least 4×4 (total stride 4); 32×32 CIFAR,
        28×28 Fashion-MNIST and 8×8 digits all build.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"cifar_resnet: depth must be 6n + 2 with n >= 1 (e.g. {CIFAR_DEPTHS}), got {depth!r}")
    owner = f"resnet{depth}{'v2' if version == 2 else ''}"
    opts = _options(owner, regularization, version, "3x3", shortcut, use_bias, bn_epsilon,
                    zero_init_residual)
    n = (depth - 2) // 6
    return _resnet(
        owner, stem=_cifar_stem, kind=BASIC, blocks=(n, n, n), widths=CIFAR_WIDTHS, stage_strides=CIFAR_STRIDES,
        downsample=downsample, opts=opts, default_shape=CIFAR_SHAPE, min_size=4,
        hint="pass a larger input_shape",
        include_top=include_top, input_shape=input_shape, input_tensor=input_tensor, pooling=pooling,
        classes=classes, classifier_activation=classifier_activation, name=name or owner,
    )


# -- thin registered wrappers ----------------------------------------------------------------------
# ``**options`` are the keyword-only knobs of imagenet_resnet / cifar_resnet (stride_on, shortcut, …).

def _fixed(owner: str, generic: str, options: dict[str, Any]) -> dict[str, Any]:
    """A wrapper's depth and version are its identity: refuse them with a pointer to the generic builder."""
    clash = sorted({"depth", "version"} & set(options))
    if clash:
        raise ValueError(f"{owner} fixes {' and '.join(clash)}; call zoo.{generic}(depth=…, version=…) instead")
    return options


def _imagenet(**shapes: Any):
    return register_model(family="resnet", default_input_shape=IMAGENET_SHAPE,
                          small_input_shape=IMAGENET_SMALL_SHAPE, **shapes)


def _cifar(**shapes: Any):
    return register_model(family="resnet", default_input_shape=CIFAR_SHAPE,
                          small_input_shape=CIFAR_SMALL_SHAPE, **shapes)


@_imagenet(params=11_699_112)
def resnet18(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
             pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
             name: str = "resnet18", regularization: Regularization | dict | None = None,
             **options: Any) -> keras.Model:
    """ResNet-18 v1: basic blocks [2, 2, 2, 2]; 11,689,512 trainable parameters, 1.81 G MACs at 224."""
    return imagenet_resnet(18, 1, include_top, input_shape, input_tensor, pooling, classes,
                           classifier_activation, name, regularization,
                           **_fixed("resnet18", "imagenet_resnet", options))


@_imagenet(params=21_814_696)
def resnet34(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
             pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
             name: str = "resnet34", regularization: Regularization | dict | None = None,
             **options: Any) -> keras.Model:
    """ResNet-34 v1: basic blocks [3, 4, 6, 3]; 21,797,672 trainable parameters, 3.66 G MACs at 224."""
    return imagenet_resnet(34, 1, include_top, input_shape, input_tensor, pooling, classes,
                           classifier_activation, name, regularization,
                           **_fixed("resnet34", "imagenet_resnet", options))


@_imagenet(params=25_610_152)
def resnet50(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
             pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
             name: str = "resnet50", regularization: Regularization | dict | None = None,
             **options: Any) -> keras.Model:
    """ResNet-50 v1: bottlenecks [3, 4, 6, 3]; 25,557,032 trainable parameters, 4.09 G MACs at 224."""
    return imagenet_resnet(50, 1, include_top, input_shape, input_tensor, pooling, classes,
                           classifier_activation, name, regularization,
                           **_fixed("resnet50", "imagenet_resnet", options))


@_imagenet(params=44_654_504)
def resnet101(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
              pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
              name: str = "resnet101", regularization: Regularization | dict | None = None,
              **options: Any) -> keras.Model:
    """ResNet-101 v1: bottlenecks [3, 4, 23, 3]; 44,549,160 trainable parameters, 7.80 G MACs at 224."""
    return imagenet_resnet(101, 1, include_top, input_shape, input_tensor, pooling, classes,
                           classifier_activation, name, regularization,
                           **_fixed("resnet101", "imagenet_resnet", options))


@_imagenet(params=60_344_232)
def resnet152(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
              pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
              name: str = "resnet152", regularization: Regularization | dict | None = None,
              **options: Any) -> keras.Model:
    """ResNet-152 v1: bottlenecks [3, 8, 36, 3]; 60,192,808 trainable parameters, 11.51 G MACs at 224."""
    return imagenet_resnet(152, 1, include_top, input_shape, input_tensor, pooling, classes,
                           classifier_activation, name, regularization,
                           **_fixed("resnet152", "imagenet_resnet", options))


@_imagenet(params=25_594_792)
def resnet50v2(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
               pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
               name: str = "resnet50v2", regularization: Regularization | dict | None = None,
               **options: Any) -> keras.Model:
    """ResNet-50 v2 (pre-activation): bottlenecks [3, 4, 6, 3]; 25,549,352 trainable parameters.

    ``downsample="last", use_bias=True, bn_epsilon=1.001e-5`` is keras.applications.ResNet50V2.
    """
    return imagenet_resnet(50, 2, include_top, input_shape, input_tensor, pooling, classes,
                           classifier_activation, name, regularization,
                           **_fixed("resnet50v2", "imagenet_resnet", options))


@_imagenet(params=44_639_144)
def resnet101v2(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
                pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
                name: str = "resnet101v2", regularization: Regularization | dict | None = None,
                **options: Any) -> keras.Model:
    """ResNet-101 v2 (pre-activation): bottlenecks [3, 4, 23, 3]; 44,541,480 trainable parameters.

    ``downsample="last", use_bias=True, bn_epsilon=1.001e-5`` is keras.applications.ResNet101V2.
    """
    return imagenet_resnet(101, 2, include_top, input_shape, input_tensor, pooling, classes,
                           classifier_activation, name, regularization,
                           **_fixed("resnet101v2", "imagenet_resnet", options))


@_imagenet(params=60_328_872)
def resnet152v2(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
                pooling: str | None = None, classes: int = 1000, classifier_activation: str | None = "softmax",
                name: str = "resnet152v2", regularization: Regularization | dict | None = None,
                **options: Any) -> keras.Model:
    """ResNet-152 v2 (pre-activation): bottlenecks [3, 8, 36, 3]; 60,185,128 trainable parameters.

    ``downsample="last", use_bias=True, bn_epsilon=1.001e-5`` is keras.applications.ResNet152V2.
    """
    return imagenet_resnet(152, 2, include_top, input_shape, input_tensor, pooling, classes,
                           classifier_activation, name, regularization,
                           **_fixed("resnet152v2", "imagenet_resnet", options))


@_cifar(params=271_098)
def resnet20(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
             pooling: str | None = None, classes: int = 10, classifier_activation: str | None = "softmax",
             name: str = "resnet20", regularization: Regularization | dict | None = None,
             **options: Any) -> keras.Model:
    """CIFAR ResNet-20 (n = 3): 269,722 trainable parameters with shortcut A (272,474 with B), 10 classes."""
    return cifar_resnet(20, 1, include_top, input_shape, input_tensor, pooling, classes,
                        classifier_activation, name, regularization,
                        **_fixed("resnet20", "cifar_resnet", options))


@_cifar(params=466_426)
def resnet32(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
             pooling: str | None = None, classes: int = 10, classifier_activation: str | None = "softmax",
             name: str = "resnet32", regularization: Regularization | dict | None = None,
             **options: Any) -> keras.Model:
    """CIFAR ResNet-32 (n = 5): 464,154 trainable parameters with shortcut A, 10 classes."""
    return cifar_resnet(32, 1, include_top, input_shape, input_tensor, pooling, classes,
                        classifier_activation, name, regularization,
                        **_fixed("resnet32", "cifar_resnet", options))


@_cifar(params=661_754)
def resnet44(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
             pooling: str | None = None, classes: int = 10, classifier_activation: str | None = "softmax",
             name: str = "resnet44", regularization: Regularization | dict | None = None,
             **options: Any) -> keras.Model:
    """CIFAR ResNet-44 (n = 7): 658,586 trainable parameters with shortcut A, 10 classes."""
    return cifar_resnet(44, 1, include_top, input_shape, input_tensor, pooling, classes,
                        classifier_activation, name, regularization,
                        **_fixed("resnet44", "cifar_resnet", options))


@_cifar(params=857_082)
def resnet56(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
             pooling: str | None = None, classes: int = 10, classifier_activation: str | None = "softmax",
             name: str = "resnet56", regularization: Regularization | dict | None = None,
             **options: Any) -> keras.Model:
    """CIFAR ResNet-56 (n = 9): 853,018 trainable parameters with shortcut A, 10 classes."""
    return cifar_resnet(56, 1, include_top, input_shape, input_tensor, pooling, classes,
                        classifier_activation, name, regularization,
                        **_fixed("resnet56", "cifar_resnet", options))


@_cifar(params=1_736_058)
def resnet110(include_top: bool = True, input_shape: Sequence[int] | None = None, input_tensor=None,
              pooling: str | None = None, classes: int = 10, classifier_activation: str | None = "softmax",
              name: str = "resnet110", regularization: Regularization | dict | None = None,
              **options: Any) -> keras.Model:
    """CIFAR ResNet-110 (n = 18): 1,727,962 trainable parameters with shortcut A, 10 classes."""
    return cifar_resnet(110, 1, include_top, input_shape, input_tensor, pooling, classes,
                        classifier_activation, name, regularization,
                        **_fixed("resnet110", "cifar_resnet", options))
