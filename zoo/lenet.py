"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998, "Gradient-based learning applied to document recognition").

The common modern form: C1 6@5×5 -> S2 2×2 pool -> C3 16@5×5 (full connections, not the paper's partial
table) -> S4 2×2 pool -> C5 120@5×5 (a convolution over the 5×5 map) -> F6 84 -> output. At 32×32×1 and
10 classes with ``Regularization.none()``: 61,706 parameters (C1 156 + C3 2,416 + C5 48,120 + F6 10,164 +
output 850).

Input sizes:
- 32×32 and larger: C1 is a valid 5×5 convolution, as in the paper (larger inputs leave C5 wider than 1×1,
  which is flattened into F6).
- 28×28 … 31×31 (MNIST, Fashion-MNIST): C1 uses ``padding="same"``, so S4 is still 5×5 and the model
  keeps exactly 61,706 parameters. (The usual 28×28 shortcut — valid C1, dense C5 over a 4×4 map —
  has 44,426 and is not LeNet-5.)
- smaller than 28×28 (e.g. 8×8 digits): a ``zoo.layers.Resize`` layer (bilinear, like ``keras.layers.Resizing`` but with no ``training`` switch) inside the model scales the
  image to 32×32 first, so the saved model carries it.
"""

from __future__ import annotations

from typing import Sequence

import keras

from zoo import _builder, catalog
from zoo.layers import Resize, conv_bn_act, dense_bn_act, kernel_initializer
from zoo.registry import register_model
from zoo.regularization import Regularization, as_regularization

PAPER_REGULARIZATION = Regularization.none()  # LeNet-5 had no penalty, dropout or batch norm
POOLS = {"avg": keras.layers.AveragePooling2D, "max": keras.layers.MaxPooling2D}
ACTIVATIONS = catalog.ACTIVATIONS  # tanh, relu, sigmoid, elu, gelu, leaky_relu


@register_model("lenet5", params=61_706, family="lenet", default_input_shape=(32, 32, 1), small_input_shape=(8, 8, 1))
def lenet5(
    include_top: bool = True,
    input_shape: Sequence[int] | None = None,
    input_tensor=None,
    pooling: str | None = None,
    classes: int = 10,
    classifier_activation: str | None = "softmax",
    name: str = "lenet5",
    regularization: Regularization | dict | None = None,
    activation: str = "relu",
    subsampling: str = "max",
    initializer: str | None = None,
) -> keras.Model:
    """LeNet-5 (LeCun et al. 1998): 61,706 parameters at 32×32×1 or 28×28×1 with 10 classes, no BN.

    Args:
        activation: ``"tanh"`` (classic, Glorot init) or ``"relu"`` (modern, He init), or another of
            ``ACTIVATIONS``.
        subsampling: ``"avg"`` (classic S2/S4) or ``"max"`` (modern).
        initializer: the hidden kernels' initializer (``zoo.layers.kernel_initializer``: ``"he"``,
            ``"glorot"``, ``"normal0.01"`` or a Keras name); None: He for ReLU-like, Glorot for tanh and
            sigmoid. For ``zoo activations`` experiments; the output layer stays Glorot.
        regularization: ``zoo.Regularization``; None: the paper's (none: 61,706 parameters). BN goes
            after C1, C3, C5 and F6 (never on the output), dropout (``keep_prob``) after C5 and F6. A dict
            changes only the fields it names.
        The rest: as in ``keras.applications``. With ``include_top=False`` the model ends at S4 (5×5×16),
        optionally pooled.
    """
    owner = "lenet5"
    reg = as_regularization(regularization, PAPER_REGULARIZATION)
    _builder.check_head(owner, include_top, pooling, classes, classifier_activation)
    _builder.check_choice("activation", activation, ACTIVATIONS, owner)
    try:
        kernel_initializer(initializer, activation)
    except ValueError as error:
        raise ValueError(f"{owner}: {error}") from None
    _builder.check_choice("subsampling", subsampling, tuple(POOLS), owner)
    inputs, x, (height, width, _) = _builder.image_input(owner, input_shape, input_tensor, (32, 32, 1), 1)
    if height is None or width is None:
        raise ValueError(f"{owner}: input_shape needs fixed height and width, got {height}×{width}")

    if min(height, width) < 28:
        x = Resize(32, 32, interpolation="bilinear", name="resize_to_32")(x)
        height = width = 32
    c1_padding = "valid" if min(height, width) >= 32 else "same"
    pool = POOLS[subsampling]

    x = conv_bn_act(x, 6, 5, padding=c1_padding, activation=activation, regularization=reg, name="c1",
                     kernel_initializer=kernel_initializer(initializer, activation))
    x = pool(2, name="s2_pool")(x)
    x = conv_bn_act(x, 16, 5, padding="valid", activation=activation, regularization=reg, name="c3",
                     kernel_initializer=kernel_initializer(initializer, activation))
    x = pool(2, name="s4_pool")(x)
    if include_top:
        x = conv_bn_act(x, 120, 5, padding="valid", activation=activation, regularization=reg, name="c5",
                         kernel_initializer=kernel_initializer(initializer, activation))
        x = keras.layers.Flatten(name="flatten")(x)
        x = reg.apply_dropout(x, name="c5_dropout")
        x = dense_bn_act(x, 84, activation=activation, regularization=reg, name="f6",
                         kernel_initializer=kernel_initializer(initializer, activation))
        x = reg.apply_dropout(x, name="f6_dropout")
        x = _builder.classifier(x, classes, regularization=reg, classifier_activation=classifier_activation)
    else:
        x = _builder.image_head(x, include_top=False, pooling=pooling, classes=classes,
                                classifier_activation=classifier_activation, regularization=reg)
    return _builder.finish(inputs, x, input_tensor, name)
