"""recipes.augment: policies fit their data, keep shapes and pixel scale, and are seeded."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

from recipes import augment
from recipes.augment import POLICIES, check_policy, default_policy, make_augmentation
from recipes.data import DOMAINS

IMAGE_POLICIES = [p for p in POLICIES if p != "none"]


def _layers(policy, shape=(28, 28, 1)):
    return {type(layer).__name__: layer for layer in make_augmentation(policy, shape, seed=0).layers}


def test_every_policy_is_documented_and_buildable():
    assert {"none", "digits", "clothes", "natural"} <= set(POLICIES)
    for name, text in POLICIES.items():
        assert isinstance(text, str) and len(text) > 10, name
    assert make_augmentation("none", (8, 8, 1)) is None
    for name in IMAGE_POLICIES:
        assert isinstance(make_augmentation(name, (8, 8, 1)), keras.Sequential)


def test_digits_policy_never_flips_and_stays_small():
    layers = _layers("digits")
    assert "RandomFlip" not in layers
    assert set(layers) == {"RandomRotation", "RandomTranslation", "RandomZoom"}
    assert max(abs(f) for f in np.ravel(layers["RandomRotation"].factor)) <= 10 / 360 + 1e-9  # ±10°
    assert max(abs(f) for f in np.ravel(layers["RandomTranslation"].height_factor)) <= 0.1 + 1e-9


def test_clothes_and_natural_flip_horizontally_only():
    for policy in ("clothes", "natural", "flip"):
        flip = _layers(policy, (32, 32, 3))["RandomFlip"]
        assert flip.mode == "horizontal", policy
    assert "RandomTranslation" in _layers("clothes")
    assert {"RandomTranslation", "RandomContrast"} <= set(_layers("natural", (32, 32, 3)))


def test_unknown_policy_names_the_argument_and_lists_policies():
    for call in (lambda: make_augmentation("mixup", (8, 8, 1)), lambda: check_policy("mixup", "digits")):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert "augmentation" in message and "'mixup'" in message
        assert all(name in message for name in POLICIES)


def test_policies_must_fit_the_domain():
    for policy in ("flip", "clothes", "natural"):
        with pytest.raises(ValueError, match=f"augmentation='{policy}' does not fit digits data: it flips"):
            check_policy(policy, "digits")
    for domain in ("text", "sequences"):
        assert check_policy("none", domain) == "none"
        for policy in IMAGE_POLICIES:
            with pytest.raises(ValueError, match="takes no image augmentation"):
                check_policy(policy, domain)
    assert check_policy("digits", "digits") == "digits"
    assert check_policy("clothes", "clothes") == "clothes"
    with pytest.raises(ValueError, match="domain"):
        check_policy("none", "audio")


def test_default_policy_per_domain_fits_it():
    expected = {"digits": "digits", "clothes": "clothes", "natural": "natural", "text": "none", "sequences": "none"}
    for domain in DOMAINS:
        assert default_policy(domain) == expected[domain]
        assert check_policy(default_policy(domain), domain) == expected[domain]
    with pytest.raises(ValueError, match="domain"):
        default_policy("audio")


@pytest.mark.parametrize("policy", IMAGE_POLICIES)
@pytest.mark.parametrize("shape, value_range", [((8, 8, 1), (0, 16)), ((28, 28, 1), (0, 255)),
                                                ((32, 32, 3), (0, 255))])
def test_shapes_and_pixel_scale_preserved(policy, shape, value_range):
    rng = np.random.default_rng(0)
    images = rng.uniform(*value_range, size=(4, *shape)).astype(np.float32)
    layer = make_augmentation(policy, shape, seed=1, value_range=value_range)
    out = np.asarray(layer(images, training=True))
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= value_range[0] - 1e-3 and out.max() <= value_range[1] + 1e-3
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)  # identity off-training


def test_augmentation_changes_images_and_is_seeded():
    image = np.zeros((8, 28, 28, 1), np.float32)
    image[:, 6:22, 10:14] = 255.0  # a vertical bar, so every transform shows
    first = np.asarray(make_augmentation("digits", (28, 28, 1), seed=3)(image, training=True))
    again = np.asarray(make_augmentation("digits", (28, 28, 1), seed=3)(image, training=True))
    other = np.asarray(make_augmentation("digits", (28, 28, 1), seed=4)(image, training=True))
    np.testing.assert_allclose(first, again)
    assert not np.allclose(first, other)
    assert not np.allclose(first, image)
    assert not np.allclose(first[0], first[1])  # each image its own transform
    # The background stays background: shifted-in pixels take the low end of value_range (0 here).
    assert np.all(first[:, 0, 0, 0] == 0.0)


def test_flip_mirrors_left_right_never_up_down():
    image = np.zeros((16, 4, 4, 1), np.float32)
    image[:, 0, 0] = 1.0  # top-left corner
    out = np.asarray(make_augmentation("flip", (4, 4, 1), seed=0)(image, training=True))
    corners = {(int(np.argmax(o[..., 0]) // 4), int(np.argmax(o[..., 0]) % 4)) for o in out}
    assert corners == {(0, 0), (0, 3)}


def test_bad_shapes_and_ranges():
    with pytest.raises(ValueError, match="needs images"):
        make_augmentation("digits", (200,))
    with pytest.raises(ValueError, match="value_range"):
        make_augmentation("natural", (32, 32, 3), value_range=(1, 1))


def test_placement():
    assert augment.augment_in_model("model") is True and augment.augment_in_model("pipeline") is False
    assert augment.augment_in_model(None) is augment.AUGMENT_IN_MODEL
    with pytest.raises(ValueError, match="placement"):
        augment.augment_in_model("gpu")


def test_placement_constant_matches_the_recorded_benchmark():
    path = os.path.join(os.path.dirname(__file__), os.pardir, "bench", "results", "augment_placement.json")
    if not os.path.isfile(path):
        pytest.skip("bench/results/augment_placement.json not written yet (python bench/augment_placement.py)")
    with open(path) as handle:
        result = json.load(handle)
    medians = result["median_seconds_per_epoch"]
    assert result["faster"] == ("model" if medians["model"] < medians["pipeline"] else "pipeline")
    assert augment.AUGMENT_IN_MODEL == (result["faster"] == "model")


@pytest.mark.backends
def test_in_model_rotations_shifts_and_zooms_leave_the_train_step_compiled_on_jax():
    """Keras marks its affine layers supports_jit=False (a TensorFlow XLA gap); on JAX one of them made the
    whole train step run op by op. ``compile_model`` marks them jit-safe there, and only there."""
    from recipes.pipeline import prepare
    from recipes.recipe import preset

    recipe = preset("lenet5", "full", augmentation="digits", limit=64, test_limit=16, epochs=1, batch_size=32)
    prepared = prepare(recipe)
    kinds = {type(layer).__name__ for layer in prepared.trainer._flatten_layers()}
    assert set(augment.JAX_JITTABLE_LAYERS) <= kinds
    on_jax = keras.backend.backend() == "jax"
    assert prepared.trainer.jit_compile is on_jax  # TensorFlow: graph mode (its CPU default) either way
    assert augment.allow_jit_on_jax(prepared.trainer) == []  # already marked on JAX; never on TensorFlow
    history = prepared.trainer.fit(prepared.train_data, epochs=1, steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
