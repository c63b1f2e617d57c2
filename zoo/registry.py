"""The model registry: ``@register_model``, ``build(name, **kwargs)``, ``list_models(pattern)`` (timm's way).

Registering a builder is one decorator (or one call for a variant with fixed arguments)::

    @register_model("lenet5", family="lenet", default_input_shape=(32, 32, 1), small_input_shape=(8, 8, 1))
    def lenet5(...): ...

    register_variant("alexnet_small", alexnet, family="alexnet", stem="small", ...)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import inspect
import re
from typing import Any, Callable

import keras

from zoo.catalog import unknown_model_error

__all__ = ["ModelEntry", "register_model", "register_variant", "build", "list_models", "get_entry"]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """What the registry knows of one name.

    ``kind`` is ``"image"`` (input ``(h, w, c)``), ``"sequence"`` (``(timesteps, features)``) or ``"text"``
    (integer tokens ``(timesteps,)``). ``small_input_shape`` is the smallest practical input, used by
    tests, smoke runs and tuners.
    """

    name: str
    builder: Callable[..., keras.Model]
    family: str
    default_input_shape: tuple
    small_input_shape: tuple
    kind: str = "image"
    fixed_kwargs: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    params: int | None = None  # the default call's count_params() (what `zoo list` shows; tests check it)

    def accepts(self, argument: str) -> bool:
        """Whether the builder takes ``argument`` (a keyword of its signature this entry does not fix)."""
        try:
            parameters = inspect.signature(self.builder).parameters
        except (TypeError, ValueError):
            return False
        return argument in parameters and argument not in self.fixed_kwargs

    def build(self, **kwargs: Any) -> keras.Model:
        """The model; ``weights`` (None, a ``.weights.h5`` file, ``"imagenet"``) as ``zoo.weights``."""
        from zoo.weights import with_weights

        clash = set(kwargs) & set(self.fixed_kwargs)
        if clash:
            raise ValueError(
                f"{self.name} fixes {sorted(clash)} (= {[self.fixed_kwargs[k] for k in sorted(clash)]}); "
                f"build the base model '{self.builder.__name__}' to change them"
            )
        weights = kwargs.pop("weights", None)
        return with_weights(self.name, functools.partial(self.builder, **self.fixed_kwargs), weights, kwargs)


_REGISTRY: dict[str, ModelEntry] = {}


def _add(entry: ModelEntry) -> None:
    if entry.name in _REGISTRY and _REGISTRY[entry.name].builder is not entry.builder:
        raise ValueError(f"model name {entry.name!r} is already registered")
    if entry.kind not in ("image", "sequence", "text"):
        raise ValueError(f"kind must be 'image', 'sequence' or 'text', got {entry.kind!r}")
    _REGISTRY[entry.name] = entry


def register_model(name: str | None = None, *, family: str, default_input_shape: tuple,
                   small_input_shape: tuple, kind: str = "image", description: str = "", params: int | None = None):
    """Decorator: register a builder under ``name`` (default: the function's name)."""

    def decorate(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        public = _accepting_weights(name or builder.__name__, builder)
        _add(ModelEntry(name or builder.__name__, public, family, tuple(default_input_shape),
                        tuple(small_input_shape), kind, {}, description or _first_line(builder), params))
        return public

    return decorate


def register_variant(name: str, builder: Callable[..., keras.Model], *, family: str,
                     default_input_shape: tuple, small_input_shape: tuple, kind: str = "image",
                     description: str = "", params: int | None = None,
                     **fixed_kwargs: Any) -> Callable[..., keras.Model]:
    """Register ``builder`` with some arguments fixed (a depth, a stem); returns the bound builder."""
    entry = ModelEntry(name, builder, family, tuple(default_input_shape), tuple(small_input_shape), kind,
                       dict(fixed_kwargs), description or _first_line(builder), params)
    _add(entry)
    return _accepting_weights(name, functools.partial(builder, **fixed_kwargs))


def _accepting_weights(owner: str, builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
    """``builder`` with a keyword-only ``weights=None`` (``zoo.weights.with_weights``) in its signature."""
    from zoo.weights import with_weights

    signature = inspect.signature(builder)

    def build(*args: Any, weights: Any = None, **kwargs: Any) -> keras.Model:
        bound = signature.bind_partial(*args, **kwargs).arguments
        for param in signature.parameters.values():
            if param.kind is param.VAR_KEYWORD:
                bound.update(bound.pop(param.name, {}))
        return with_weights(owner, builder, weights, dict(bound))

    params = [p for p in signature.parameters.values() if p.name != "weights"]  # a variant's base has it
    signature = signature.replace(parameters=params)
    at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
    params.insert(at, inspect.Parameter("weights", inspect.Parameter.KEYWORD_ONLY, default=None))
    functools.update_wrapper(build, builder if not isinstance(builder, functools.partial) else builder.func)
    build.__name__ = build.__qualname__ = owner
    build.__signature__ = signature.replace(parameters=params)
    return build


def _first_line(builder: Callable) -> str:
    """The docstring's first line as plain text (reST ``literals`` and :role:`targets` unwrapped)."""
    line = (builder.__doc__ or "").strip().splitlines()[0] if builder.__doc__ else ""
    return re.sub(r":\w+:`([^`]*)`", r"\1", line).replace("``", "")


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``, or a ValueError that lists close names."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise unknown_model_error(name, _REGISTRY)
    return _REGISTRY[name]


def build(name: str, /, **kwargs: Any) -> keras.Model:
    """Build a registered model by name; keyword arguments go to its builder."""
    return get_entry(name).build(**kwargs)


def list_models(pattern: str | None = None) -> list[str]:
    """Every registered name, sorted; ``pattern`` is a shell-style filter such as ``"resnet*"``."""
    names = sorted(_REGISTRY)
    if pattern is None:
        return names
    return [n for n in names if fnmatch.fnmatch(n, pattern)]
