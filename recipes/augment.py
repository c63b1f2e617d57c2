"""Augmentation policies: Keras preprocessing layers that fit the data they augment.

Augmentation is a regularizer and must fit the data (the course notes): horizontal flips and crops for
natural images and clothes, never flips for digits (a mirrored 2, 3, 7 is no digit) or text; small
rotations, shifts and zooms for digits. ``check_policy(policy, domain)`` refuses — with a ValueError that
names ``augmentation``, the domain and the policies that fit — a policy that does not fit the domain;
``recipes.data.train_dataset`` and ``recipes.modeling.build_model`` call it, so a recipe cannot flip
digits. ``make_augmentation`` itself does not know the domain (use it freely on your own data).

The layers work on the raw pixel scale (before the model's Normalization layer): shifted-in pixels take the
background value (the bottom of ``value_range``) and RandomContrast clips to ``value_range``, which is
(0, 16) for digits and (0, 255) for the others. "Crops" are random translations with a constant fill:
the pad-4-and-crop-back of the CIFAR ResNet recipe (He et al. 2016) without changing the image size.

Where augmentation runs: in the ``tf.data`` pipeline (a parallel ``map`` over batches, layers called with
``training=True``) or as the first layers of the model (active only in ``fit``, identities in ``predict``
and ``evaluate``). ``AUGMENT_IN_MODEL = True``: in the model was faster on CPU in every run of
``bench/augment_placement.py`` (lenet5 on Fashion-MNIST 28×28×1, batch 128, SGD, interleaved epochs,
medians; 2 shared CPU cores, TF 2.21, Keras 3.15)::

    python bench/augment_placement.py [options]   train images   s/epoch: off   pipeline   model   pipeline/model
    --quick                                        3,686          0.407          0.644      0.483   1.33
    --quick --policy clothes                       3,686          0.319          0.600      0.462   1.30
    (defaults: 8,192 images, 9 rounds)             7,373          1.177          1.551      1.326   1.17

(``--quick``: 5 rounds, default: 9 rounds, policy "digits" unless named; the last run's raw epoch times are
in ``bench/results/augment_placement.json``; the numbers are noisy because the 2 cores were shared, but
the order never changed.) A likely reason, not measured separately: in the model the transforms run inside
the compiled train step, while the tf.data map adds per-batch work on threads that compete with training
for the same two cores. On a GPU the answer may differ: rerun the benchmark there.

Pass ``placement="pipeline"`` or ``"model"`` to ``train_dataset`` / ``build_model`` to override it (both
must agree; leaving both at None uses ``AUGMENT_IN_MODEL`` for both).
"""

from __future__ import annotations

import itertools
from typing import Sequence

import keras

from recipes.choices import (AUGMENT_IN_MODEL, DOMAIN_POLICIES, PLACEMENTS, POLICIES, _DEFAULTS, _FLIPS,  # noqa: F401
                             _check_policy_name,
                             check_erasing, check_mixing, check_policy, default_policy)

__all__ = ["POLICIES", "DOMAIN_POLICIES", "AUGMENT_IN_MODEL", "PLACEMENTS", "default_policy", "check_policy",
           "make_augmentation", "augment_in_model", "TrainingAugmentation", "check_erasing", "check_mixing",
           "mix_batch", "allow_jit_on_jax", "JAX_JITTABLE_LAYERS"]


def mix_batch(images, labels, key, *, classes: int, mixup: float = 0.0, cutmix: float = 0.0):
    """MixUp (Zhang et al. 2018) or CutMix (Yun et al. 2019) of one batch with its own reverse, as timm does.

    ``images`` (batch, ...) float, ``labels`` integer class ids, ``key`` a stateless seed (2 integers: the
    draw is a function of it alone, so a resumed run mixes as the run it replaces). λ ~ Beta(α, α); MixUp
    returns ``λ·x + (1 - λ)·x[::-1]``, CutMix pastes a box of area ``(1 - λ)`` of ``x[::-1]`` (clipped at
    the border, λ then corrected to the pasted area). With both on, each batch takes one of them with
    probability ½. Returns the images and the soft targets ``λ·onehot(y) + (1 - λ)·onehot(y[::-1])``.
    """
    import tensorflow as tf

    keys = tf.random.experimental.stateless_split(tf.cast(key, tf.int64), num=5)
    images = tf.cast(images, tf.float32)
    onehot = tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), classes)
    partner, partner_labels = tf.reverse(images, [0]), tf.reverse(onehot, [0])

    def beta(alpha, first):
        a = tf.random.stateless_gamma([], keys[first], alpha=alpha)
        b = tf.random.stateless_gamma([], keys[first + 1], alpha=alpha)
        return a / tf.maximum(a + b, 1e-12)

    def blend():
        lam = beta(mixup, 1)
        return lam * images + (1.0 - lam) * partner, lam

    def paste():
        lam = beta(cutmix, 1)
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
        centre = tf.random.stateless_uniform([2], keys[3]) * tf.stack([h, w])
        half = 0.5 * tf.sqrt(1.0 - lam) * tf.stack([h, w])
        low = tf.cast(tf.round(tf.maximum(centre - half, 0.0)), tf.int32)
        high = tf.cast(tf.round(tf.minimum(centre + half, tf.stack([h, w]))), tf.int32)
        rows, cols = tf.range(height), tf.range(width)
        inside = ((rows >= low[0]) & (rows < high[0]))[:, None] & ((cols >= low[1]) & (cols < high[1]))[None, :]
        mask = tf.cast(inside, tf.float32)[None, :, :, None]
        area = tf.reduce_sum(mask) / (h * w)
        return images * (1.0 - mask) + partner * mask, 1.0 - area

    if mixup and cutmix:
        mixed, lam = tf.cond(tf.random.stateless_uniform([], keys[0]) < 0.5, paste, blend)
    elif cutmix:
        mixed, lam = paste()
    else:
        mixed, lam = blend()
    return mixed, lam * onehot + (1.0 - lam) * partner_labels


def augment_in_model(placement: str | None = None) -> bool:
    """True when augmentation goes in the model: ``placement`` ("model" / "pipeline"), else AUGMENT_IN_MODEL."""
    if placement is None:
        return AUGMENT_IN_MODEL
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)} or None, got {placement!r}")
    return placement == "model"


def make_augmentation(policy: str, input_shape: Sequence[int], seed: int | None = None,
                      value_range: tuple[float, float] = (0.0, 255.0),
                      erasing: float = 0.0) -> keras.Sequential | None:
    """The Keras preprocessing layers of ``policy`` for images of ``input_shape`` ``(h, w, c)``; None for
    "none" without erasing.

    Args:
        seed: seeds every random layer (each its own derived seed) for repeatable augmentation.
        value_range: the pixel scale of the images (``(0, 16)`` for digits): the background fill of
            shifts, rotations and zooms is its lower end and RandomContrast clips to it.
        erasing: the probability in [0, 1] of erasing one random rectangle (2-33 % of the image, filled
            with noise in ``value_range``) after the policy's layers (Random Erasing, Zhong et al. 2020).
    The output shape equals the input shape for every policy.
    """
    _check_policy_name(policy)
    if isinstance(erasing, bool) or not isinstance(erasing, (int, float)) or not 0 <= erasing <= 1:
        raise ValueError(f"erasing must be a probability in [0, 1], got {erasing!r}")
    if policy == "none" and not erasing:
        return None
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"augmentation={policy!r} needs images (height, width, channels), got input_shape {shape}")
    low, high = float(value_range[0]), float(value_range[1])
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}")
    seeds = None if seed is None else itertools.count(int(seed) * 16)  # one seed per random layer

    def next_seed():
        return None if seeds is None else next(seeds)

    fill = dict(fill_mode="constant", fill_value=low)
    layers = []
    if policy == "shift":
        layers.append(keras.layers.RandomTranslation(0.1, 0.1, seed=next_seed(), name="shift", **fill))
    elif policy == "digits":
        layers += [
            keras.layers.RandomRotation(10 / 360, seed=next_seed(), name="rotate", **fill),
            keras.layers.RandomTranslation(0.1, 0.1, seed=next_seed(), name="shift", **fill),
            keras.layers.RandomZoom(0.1, 0.1, seed=next_seed(), name="zoom", **fill),
        ]
    elif policy == "flip":
        layers.append(keras.layers.RandomFlip("horizontal", seed=next_seed(), name="flip"))
    elif policy == "clothes":
        layers += [
            keras.layers.RandomFlip("horizontal", seed=next_seed(), name="flip"),
            keras.layers.RandomTranslation(0.1, 0.1, seed=next_seed(), name="shift", **fill),
        ]
    elif policy == "natural":
        layers += [
            keras.layers.RandomFlip("horizontal", seed=next_seed(), name="flip"),
            keras.layers.RandomTranslation(0.125, 0.125, seed=next_seed(), name="crop", **fill),
            keras.layers.RandomContrast(0.2, value_range=(low, high), seed=next_seed(), name="contrast"),
        ]
    elif policy != "none":  # pragma: no cover - POLICIES and this function must list the same names
        raise AssertionError(f"policy {policy!r} has no layers")
    if erasing:
        layers.append(keras.layers.RandomErasing(factor=float(erasing), value_range=(low, high),
                                                 seed=next_seed(), name="erase"))
    return keras.Sequential([keras.Input(shape=shape)] + layers, name=f"augment_{policy}")


# Keras 3.15 marks its affine image layers ``supports_jit = False`` (TensorFlow's ImageProjectiveTransformV3
# has no XLA kernel), and one such layer turns compilation off for the whole model. On TensorFlow that is
# graph mode, which this CPU prefers anyway; on JAX it is op-by-op execution with one compile per operation:
# ``python -m recipes.lenet5 --quick`` (digits: rotations, shifts, zooms in the model) took 57 s there
# against 13 s on TensorFlow. Their JAX implementation is jnp code that jits: same losses to 1e-7.
JAX_JITTABLE_LAYERS = ("RandomRotation", "RandomTranslation", "RandomZoom")


def allow_jit_on_jax(model: keras.Model) -> list[str]:
    """On the JAX backend, mark ``model``'s :data:`JAX_JITTABLE_LAYERS` as jit-safe, so that ``compile``'s
    ``jit_compile="auto"`` can compile the whole train step; returns the names of the layers it marked."""
    if keras.backend.backend() != "jax":
        return []
    kinds = tuple(getattr(keras.layers, name) for name in JAX_JITTABLE_LAYERS)
    marked = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if isinstance(layer, kinds) and not layer.supports_jit]
    for layer in marked:
        layer.supports_jit = True
    return [layer.name for layer in marked]


@keras.saving.register_keras_serializable(package="recipes")
class TrainingAugmentation(keras.layers.Layer):
    """``make_augmentation(policy, ...)`` that runs only when ``training=True`` is passed (``fit`` does).

    Keras' augmentation layers default to ``training=True`` in ``call``, and Keras hands that default on to
    every later layer when ``training`` is not given, so a model with them inside runs dropout and batch
    statistics (and updates BN's moving averages) in a plain ``model(x)``. This layer's default is
    ``training=None``: without ``training=True`` it passes its input through and the rest of the model
    runs in inference mode.
    """

    def __init__(self, policy: str, image_shape: Sequence[int], seed: int | None = None,
                 value_range: Sequence[float] = (0.0, 255.0), erasing: float = 0.0, **kwargs) -> None:
        kwargs.setdefault("name", f"augment_{policy}")
        super().__init__(**kwargs)
        self.policy = _check_policy_name(policy)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.seed = seed
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.erasing = float(erasing)
        self.augmentation = make_augmentation(policy, self.image_shape, seed=seed, value_range=self.value_range,
                                              erasing=self.erasing)

    def call(self, inputs, training=None):
        if training and self.augmentation is not None:
            return self.augmentation(inputs, training=True)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "policy": self.policy, "image_shape": list(self.image_shape),
                "seed": self.seed, "value_range": list(self.value_range), "erasing": self.erasing}
