"""One registry of network architectures, one ``create_model`` (in the style of timm)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from robusthide import RobustHideError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model constructor under ``name``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _MODELS[name] = fn
        return fn

    return deco


def _load_builtin() -> None:
    import importlib

    for mod in ("lean", "hidden", "mbrs"):
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
