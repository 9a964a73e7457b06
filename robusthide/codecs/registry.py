"""Codec registry and spec strings: ``jpeg:q=50``, ``resize:0.5``, ``resize:0.5|jpeg:q=80``.

Grammar: ``SPEC := STEP ('|' STEP)*``, ``STEP := NAME [':' ARG (',' ARG)*]``,
``ARG := KEY '=' VALUE | VALUE`` (a bare value is the codec's first positional parameter).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from robusthide.codecs.base import Codec, CodecError, CodecUnavailableError

_REGISTRY: dict[str, Callable[..., Codec]] = {}
_POSITIONAL: dict[str, str] = {}


def register_codec(name: str, positional: str | None = None) -> Callable[[type], type]:
    """Class decorator: make ``cls`` available as spec ``name`` (``positional``: the bare-value key)."""

    def deco(cls: type) -> type:
        _REGISTRY[name] = cls
        if positional:
            _POSITIONAL[name] = positional
        cls.name = name
        return cls

    return deco


#: A decimal number as every spec grammar writes it: codec specs' lists in attack lists
#: (:mod:`robusthide.evaluation.attacks_grammar`) and attack-layer parameters (:mod:`robusthide.attacks.config`).
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_number(s: str) -> int | float | None:
    """``s`` as an int when it is one, else a float; None when it is not a decimal number (:data:`NUMBER_RE`)."""
    if not NUMBER_RE.match(s):
        return None
    try:
        return int(s)
    except ValueError:
        return float(s)


def _name_ok(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "-_" for c in name)


def _convert(v: str) -> Any:
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v


def parse_step(step: str) -> tuple[str, dict[str, Any]]:
    """``'jpeg:q=50,subsampling=444'`` -> ``('jpeg', {'q': 50, 'subsampling': 444})``."""
    _load_builtin()
    step = step.strip()
    if not step:
        raise CodecError("empty codec spec")
    if not _name_ok(step.partition(":")[0].strip()):
        raise CodecError(f"malformed codec spec '{step}': bad codec name")
    name, _, rest = step.partition(":")
    name = name.strip().lower()
    params: dict[str, Any] = {}
    if rest.strip():
        for arg in rest.split(","):
            arg = arg.strip()
            if not arg:
                raise CodecError(f"malformed codec spec '{step}': empty parameter")
            if "=" in arg:
                k, _, v = arg.partition("=")
                k, v = k.strip().lower(), v.strip()
                if not k or not v:
                    raise CodecError(f"malformed codec spec '{step}': bad parameter '{arg}'")
            else:
                if name not in _POSITIONAL or _POSITIONAL[name] in params:
                    raise CodecError(f"malformed codec spec '{step}': bare value '{arg}' (use key=value)")
                k, v = _POSITIONAL[name], arg
            if k in params:
                raise CodecError(f"malformed codec spec '{step}': parameter '{k}' given twice")
            params[k] = _convert(v)
    return name, params


def get_codec(spec: str, workers: int | None = None) -> Codec:
    """Build the codec named by ``spec``; raise :class:`CodecError` with a one-line message otherwise."""
    if not isinstance(spec, str) or not spec.strip():
        raise CodecError(f"malformed codec spec {spec!r}")
    steps = [s for s in spec.split("|")]
    if len(steps) > 1:
        from robusthide.codecs.chain import Chain

        if any(not s.strip() for s in steps):
            raise CodecError(f"malformed codec spec '{spec}': empty step")
        built = []
        for s in steps:
            try:
                built.append(get_codec(s, workers))
            except CodecError as e:
                raise type(e)(f"{e} (in chain '{spec.strip()}')") from None
        return Chain(built, spec=spec.strip())
    name, params = parse_step(spec)
    _load_builtin()
    if name not in _REGISTRY:
        raise CodecError(f"unknown codec '{name}' in spec '{spec}' (known: {', '.join(sorted(_REGISTRY))})")
    cls = _REGISTRY[name]
    ok, why = cls.available()
    if not ok:
        raise CodecUnavailableError(f"codec '{name}' in spec '{spec}' is not available here: {why}")
    unknown = sorted(set(params) - set(_accepted_params(cls)))
    if unknown:
        raise CodecError(f"malformed codec spec '{spec}': unknown parameter(s) {', '.join(unknown)} for "
                         f"'{name}' (accepted: {', '.join(_accepted_params(cls)) or 'none'})")
    try:
        return cls(spec=spec.strip(), workers=workers, **params)
    except TypeError as e:
        raise CodecError(f"malformed codec spec '{spec}': {e}") from None
    except ValueError as e:
        raise CodecError(f"bad codec spec '{spec}': {e}") from None


def _accepted_params(cls: type) -> list[str]:
    """Keyword parameters of ``cls.__init__`` other than ``spec`` and ``workers``."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):  # pragma: no cover
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return sorted(set(getattr(cls, "params", ())))
    return [k for k, p in sig.parameters.items()
            if k not in ("self", "spec", "workers") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def list_codecs() -> dict[str, type]:
    """All registered codec classes by name."""
    _load_builtin()
    return dict(_REGISTRY)


def _load_builtin() -> None:
    # Importing the modules registers their codecs.
    from robusthide.codecs import image  # noqa: F401

    for mod in ("video", "geometric", "framing", "edits"):
        try:
            __import__(f"robusthide.codecs.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"robusthide.codecs.{mod}":
                raise
