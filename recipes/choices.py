"""What the recipe options allow, without Keras: augmentation policies and the domains they fit,
optimizers, schedules, precisions and distributions, with their checks.

The modules that implement them (``recipes.augment``, ``recipes.optim``, ``recipes.modeling``) re-export
these names; they live here so that ``recipes.recipe.Recipe`` and the command lines validate every option
before TensorFlow is imported (``--help`` and a bad value answer in a fraction of a second).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

__all__ = ["POLICIES", "DOMAIN_POLICIES", "AUGMENT_IN_MODEL", "PLACEMENTS", "default_policy", "check_policy",
           "check_erasing", "check_mixing", "OPTIMIZERS", "SCHEDULES", "WEIGHT_DECAY_OPTIMIZERS",
           "CONVENTIONAL_LEARNING_RATES", "check_learning_rate", "PRECISIONS", "DISTRIBUTIONS"]

# -- augmentation (recipes.augment) ------------------------------------------------------------------
POLICIES: dict[str, str] = {
    "none": "no augmentation",
    "shift": "random shifts up to ±10 % of height and width, background fill; no flips (fits any images)",
    "digits": "small rotations (±10°), shifts (±10 %) and zoom (±10 %); never flips",
    "flip": "random horizontal flip only (a left-right mirror; never upside down)",
    "clothes": "random horizontal flip + shifts up to ±10 % (pad-and-crop); no vertical flip, no rotation",
    "natural": "random horizontal flip, random crop as shifts up to ±12.5 % (4 px at 32×32), contrast ±20 %",
}

# Which policies fit which data domain (recipes.data.DOMAINS). Flips never fit digits; text and sequences
# take no image augmentation at all.
DOMAIN_POLICIES: dict[str, tuple[str, ...]] = {
    "digits": ("none", "shift", "digits"),
    "clothes": ("none", "shift", "digits", "flip", "clothes", "natural"),
    "natural": ("none", "shift", "digits", "flip", "clothes", "natural"),
    "text": ("none",),
    "sequences": ("none",),
}
_FLIPS = ("flip", "clothes", "natural")
_DEFAULTS = {"digits": "digits", "clothes": "clothes", "natural": "natural", "text": "none", "sequences": "none"}

PLACEMENTS = ("pipeline", "model")

# Measured by bench/augment_placement.py (see the module doc): the model was faster on CPU.
AUGMENT_IN_MODEL: bool = True


def _policy_list() -> str:
    return "; ".join(f"{name}: {text}" for name, text in POLICIES.items())


def _check_policy_name(policy: object) -> str:
    if not isinstance(policy, str) or policy not in POLICIES:
        raise ValueError(f"augmentation must be one of {', '.join(POLICIES)}, got {policy!r} ({_policy_list()})")
    return policy


def default_policy(domain: str) -> str:
    """The policy that fits a data domain: digits -> "digits", clothes -> "clothes", natural -> "natural",
    text and sequences -> "none"."""
    if domain not in _DEFAULTS:
        raise ValueError(f"domain must be one of {', '.join(_DEFAULTS)}, got {domain!r}")
    return _DEFAULTS[domain]


def check_policy(policy: str, domain: str) -> str:
    """``policy`` if it fits ``domain``, else a ValueError naming ``augmentation`` and what fits.

    Refused: any flip (``flip``, ``clothes``, ``natural``) on digits; any image augmentation on text or
    sequences. Returns the policy name.
    """
    _check_policy_name(policy)
    if domain not in DOMAIN_POLICIES:
        raise ValueError(f"domain must be one of {', '.join(DOMAIN_POLICIES)}, got {domain!r}")
    allowed = DOMAIN_POLICIES[domain]
    if policy not in allowed:
        why = ("it flips images, and a mirrored digit is another symbol or none"
               if domain == "digits" and policy in _FLIPS else
               f"{domain} data takes no image augmentation")
        raise ValueError(f"augmentation={policy!r} does not fit {domain} data: {why}; policies that fit "
                         f"{domain}: {', '.join(allowed)}")
    return policy


def check_erasing(erasing: float, domain: str) -> float:
    """``erasing`` if it is a probability in [0, 1] that fits ``domain`` (images only), else a ValueError."""
    if isinstance(erasing, bool) or not isinstance(erasing, (int, float)) or not 0 <= erasing <= 1:
        raise ValueError(f"erasing must be a probability in [0, 1], got {erasing!r}")
    if erasing and domain in ("text", "sequences"):
        raise ValueError(f"erasing={erasing:g} does not fit {domain} data: it erases image rectangles; use 0")
    return float(erasing)


def check_mixing(mixup: float, cutmix: float, domain: str, input_shape: Sequence[int] = ()) -> tuple[float, float]:
    """``(mixup, cutmix)``, each a Beta concentration α >= 0 (0 = off) that fits ``domain``, else a ValueError.

    MixUp blends whole inputs, so it fits images and numeric sequences but not text (token ids); CutMix
    pastes a rectangle, so it needs images ``(height, width, channels)``.
    """
    for name, alpha in (("mixup", mixup), ("cutmix", cutmix)):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"{name} must be a Beta concentration α >= 0 (0 = off), got {alpha!r}")
    if mixup and domain == "text":
        raise ValueError(f"mixup={mixup:g} does not fit text data: token ids cannot be blended; use 0")
    if cutmix and (domain in ("text", "sequences") or (input_shape and len(tuple(input_shape)) != 3)):
        raise ValueError(f"cutmix={cutmix:g} does not fit {domain} data of shape {tuple(input_shape)}: it pastes "
                         "image rectangles (height, width, channels); use 0")
    return float(mixup), float(cutmix)


# -- optimization (recipes.optim) --------------------------------------------------------------------
OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad", "adadelta")
SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine", "plateau")
WEIGHT_DECAY_OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adamw")


def _check_name(kind: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{kind} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def check_learning_rate(learning_rate: Any, field: str = "learning_rate") -> float:
    """``learning_rate`` as a float, or a ValueError unless it is a finite number > 0."""
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
        raise ValueError(f"{field} must be a number > 0, got {learning_rate!r}")
    value = float(learning_rate)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{field} must be a finite number > 0, got {learning_rate!r}")
    return value


def _check_positive_int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field} must be an integer >= 1, got {value!r}")
    return value


# Each optimizer's usual learning rate, for comparing optimizers (recipes.compare --optimizers) where one
# rate for all would favour one: Keras' defaults for RMSprop, Adam and AdamW; PyTorch's for Adagrad (0.01)
# and Adadelta (1.0, Zeiler 2012 has no rate); 0.1 for plain SGD and 0.01 with momentum 0.9 (the same
# step in the long run, lr / (1 - 0.9)).
CONVENTIONAL_LEARNING_RATES: dict[str, float] = {
    "sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "rmsprop": 1e-3, "adam": 1e-3, "adamw": 1e-3,
    "adagrad": 0.01, "adadelta": 1.0,
}
assert set(CONVENTIONAL_LEARNING_RATES) == set(OPTIMIZERS)

# -- precision (recipes.modeling) --------------------------------------------------------------------
# Keras dtype policies a recipe may train under (``Recipe.precision``); bench/speed.py times both.
PRECISIONS: tuple[str, ...] = ("float32", "mixed_bfloat16")

# -- distribution (recipes.distribute) --------------------------------------------------------------
# ``Recipe.distribute``: one device, or Keras' DataParallel over every local device (and, with
# ``recipes.distribute.initialize_processes``, over the devices of several processes on the JAX backend).
DISTRIBUTIONS: tuple[str, ...] = ("none", "data_parallel")
