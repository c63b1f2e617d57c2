"""The built-in models' names and families, without Keras: what the command lines check before they
import TensorFlow (``--help`` and a bad ``--model`` answer in a fraction of a second).

``zoo.registry`` is the truth; ``tests/test_models_common.py`` checks this table against it. Once the zoo
is loaded (``import zoo`` from Python, or a command line past its argument checks), :func:`family_of`
asks the registry, which also knows the models registered at run time.
"""

from __future__ import annotations

import difflib
import sys
from types import MappingProxyType
from typing import Iterable, Mapping

__all__ = ["BUILTIN_FAMILIES", "family_of", "models_of_family", "check_model_name", "unknown_model_error", "ACTIVATIONS",
           "INITIALIZERS"]

# What ``zoo activations`` offers (the builders that take ``activation`` / ``initializer`` check them too).
ACTIVATIONS = ("tanh", "relu", "sigmoid", "elu", "gelu", "leaky_relu")
INITIALIZERS = ("he", "glorot", "normal0.01")  # He normal, Glorot uniform, N(0, 0.01²); or any Keras name

BUILTIN_FAMILIES: Mapping[str, str] = MappingProxyType({
    "alexnet": "alexnet", "alexnet_small": "alexnet", "alexnet_torchvision": "alexnet",
    "googlenet": "inception", "googlenet_small": "inception",
    "lenet5": "lenet",
    "lstm": "lstm", "lstm_text": "lstm",
    "resnet18": "resnet", "resnet34": "resnet", "resnet50": "resnet", "resnet101": "resnet", "resnet152": "resnet",
    "resnet50v2": "resnet", "resnet101v2": "resnet", "resnet152v2": "resnet",
    "resnet20": "resnet", "resnet32": "resnet", "resnet44": "resnet", "resnet56": "resnet", "resnet110": "resnet",
})


def unknown_model_error(name: object, known: Iterable[str]) -> ValueError:
    """The one message for an unknown model name: close names, then every name."""
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ValueError(f"unknown model name {name!r}{hint} (zoo.list_models() lists all {len(known)}: "
                      f"{', '.join(known)})")


def _registry():
    """``zoo.registry`` once the zoo is loaded (every family registered), else None."""
    package = sys.modules.get("zoo")
    return sys.modules["zoo.registry"] if getattr(package, "_LOADED", False) else None


def family_of(name: str) -> str:
    """The family of a registered model name (ValueError naming close names if there is none)."""
    registry = _registry()
    if registry is not None:
        return registry.get_entry(name).family
    if isinstance(name, str) and name in BUILTIN_FAMILIES:
        return BUILTIN_FAMILIES[name]
    raise unknown_model_error(name, BUILTIN_FAMILIES)


def models_of_family(family: str) -> list[str]:
    """The registered names of one family, sorted."""
    registry = _registry()
    if registry is not None:
        return sorted(name for name in registry.list_models() if registry.get_entry(name).family == family)
    return sorted(name for name, its in BUILTIN_FAMILIES.items() if its == family)


def check_model_name(name: str) -> str:
    """``name`` if it is a registered model, else the ValueError of :func:`unknown_model_error`."""
    family_of(name)
    return name
