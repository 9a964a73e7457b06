"""One registry of network architectures, one ``create_model`` (in the style of timm)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from robusthide import RobustHideError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_FORWARDS: dict[str, str] = {}


def register_model(name: str, forwards_to: str | None = None) -> Callable[[Callable[..., nn.Module]],
                                                                          Callable[..., nn.Module]]:
    """Decorator registering a model constructor under ``name``. ``forwards_to`` (``"module:Class"``): where
    the constructor's ``**kwargs`` go, so that :func:`model_keywords` can list them."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _MODELS[name] = fn
        if forwards_to:
            _FORWARDS[name] = forwards_to
        return fn

    return deco


def _load_builtin() -> None:
    import importlib

    for mod in ("lean", "geo", "hidden", "mbrs"):
        try:
            importlib.import_module(f"robusthide.nets.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"robusthide.nets.{mod}":
                raise


def list_models() -> list[str]:
    _load_builtin()
    return sorted(_MODELS)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` with keyword arguments (e.g. ``n_bits=64, size=128``)."""
    _load_builtin()
    if name not in _MODELS:
        raise RobustHideError(f"unknown architecture '{name}' (known: {', '.join(sorted(_MODELS))})")
    return _MODELS[name](**kwargs)


def model_keywords(name: str) -> list[str] | None:
    """The keyword arguments architecture ``name`` accepts (for config checks); None when it takes any or
    ``name`` is unknown (:func:`create_model` then says so)."""
    import importlib
    import inspect

    _load_builtin()
    if name not in _MODELS:
        return None
    out: list[str] = []
    fns: list[Callable[..., Any]] = [_MODELS[name]]
    if name in _FORWARDS:
        mod, _, attr = _FORWARDS[name].partition(":")
        fns.append(getattr(importlib.import_module(mod), attr))
    for i, fn in enumerate(fns):
        params = list(inspect.signature(fn).parameters.values())
        if any(p.kind is p.VAR_KEYWORD for p in params) and i == len(fns) - 1:
            return None
        out += [p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    return [k for k in out if k not in ("self", "encoder", "decoder")]
