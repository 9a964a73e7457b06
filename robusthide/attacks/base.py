"""Common base of the attack layers ("noise layers" in HiDDeN / MBRS, "attack layer" in paper 000 §3.2).

Every attack is a ``torch.nn.Module`` with ``forward(x, cover=None)``: ``x`` is the marked batch
``N x 3 x H x W`` in [0, 1] (float), ``cover`` the cover batch (used by Cropout / Dropout); the output has the
shape of ``x``. Random attacks take a ``generator: torch.Generator | None`` (``None``: torch's global RNG).

Parameters that may vary per forward pass accept either a number or a ``(lo, hi)`` range; a range is drawn
uniformly once per forward pass from the generator (see :func:`draw`).

:meth:`Attack.spec` gives the canonical string of the layer in the grammar of
:mod:`robusthide.attacks.config`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from robusthide import RobustHideError


class AttackError(RobustHideError, ValueError):
    """Bad attack parameter, bad attack spec, or bad input to an attack layer (one-line message)."""


Range = float | tuple[float, float]


def check_range(
    name: str,
    value: Any,
    lo: float,
    hi: float,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    allow_range: bool = True,
) -> float | tuple[float, float]:
    """Validate ``value`` (a number, or a ``(lo, hi)`` pair when ``allow_range``) against ``[lo, hi]``.

    Returns a float or a tuple of two floats; raises :class:`AttackError` with the allowed range otherwise.
    """
    lb = "(" if lo_open else "["
    rb = ")" if hi_open else "]"
    where = f"{lb}{lo:g}, {hi:g}{rb}"

    def one(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            raise AttackError(f"{name} must be a number in {where}, got {value!r}")
        v = float(v)
        if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
            raise AttackError(f"{name} must be in {where}, got {value!r}")
        return v

    if isinstance(value, (tuple, list)):
        if not allow_range:
            raise AttackError(f"{name} must be a single number in {where}, got {value!r}")
        if len(value) != 2:
            raise AttackError(f"{name} range must be (lo, hi), got {value!r}")
        a, b = one(value[0]), one(value[1])
        if a > b:
            raise AttackError(f"{name} range must have lo <= hi, got {value!r}")
        return (a, b) if a != b else a
    return one(value)


def check_int(name: str, value: Any, lo: int, hi: int, odd: bool = False) -> int:
    """Validate an integer parameter in ``lo..hi`` (optionally odd)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not lo <= value <= hi
        or (odd and value % 2 == 0)
    ):
        kind = "an odd integer" if odd else "an integer"
        raise AttackError(f"{name} must be {kind} in {lo}..{hi}, got {value!r}")
    return value


def check_generator(generator: Any) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise AttackError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def uniform(generator: torch.Generator | None, lo: float, hi: float) -> float:
    """One uniform draw in ``[lo, hi]`` from ``generator`` (CPU draw)."""
    u = float(torch.rand((), generator=generator, device=_gen_device(generator)))
    return lo + (hi - lo) * u


def randint(generator: torch.Generator | None, lo: int, hi: int) -> int:
    """One integer uniform in ``lo..hi`` inclusive."""
    return int(torch.randint(int(lo), int(hi) + 1, (1,), generator=generator, device=_gen_device(generator)))


def draw(value: Range, generator: torch.Generator | None) -> float:
    """A fixed number, or a uniform draw when ``value`` is a ``(lo, hi)`` range."""
    if isinstance(value, tuple):
        return uniform(generator, value[0], value[1])
    return float(value)


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def rand(shape: Sequence[int], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) tensor on ``like``'s device/dtype, drawn from ``generator`` on its own device."""
    t = torch.rand(
        tuple(shape),
        generator=generator,
        device=_gen_device(generator) if generator is not None else like.device,
    )
    return t.to(device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float32)


def randn(shape: Sequence[int], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Standard normal tensor on ``like``'s device/dtype, drawn from ``generator``."""
    t = torch.randn(
        tuple(shape),
        generator=generator,
        device=_gen_device(generator) if generator is not None else like.device,
    )
    return t.to(device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float32)


class _StraightThrough(torch.autograd.Function):
    """Forward: ``y``; backward: the upstream gradient to ``x`` unchanged (paper 000 §3.3, Fig. 3)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.x_dtype = x.dtype
        return y.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad.to(ctx.x_dtype), None


def straight_through(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x + (y - x).detach()`` (paper 000 §3.3), but returning ``y`` bit-exactly: the float sum can be one
    ulp off ``y``. Forward ``y`` (cast to ``x``'s dtype/device), backward identity to ``x``."""
    return _StraightThrough.apply(x, y.detach().to(dtype=x.dtype, device=x.device))


def ste_clamp(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] forward (exactly), identity gradient (saturated pixels keep passing gradient)."""
    return straight_through(x, x.detach().clamp(0.0, 1.0))


def check_batch(x: Any, name: str = "x") -> torch.Tensor:
    """Validate an image batch ``N x 3 x H x W`` float tensor."""
    if not isinstance(x, torch.Tensor):
        raise AttackError(f"{name} must be a torch tensor N x 3 x H x W, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise AttackError(f"{name} must have shape N x 3 x H x W, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise AttackError(f"{name} must be a float tensor in [0, 1], got {x.dtype}")
    return x


def need_cover(x: torch.Tensor, cover: torch.Tensor | None, who: str) -> torch.Tensor:
    """The cover batch, checked to match ``x`` (required by Cropout / Dropout)."""
    if cover is None:
        raise AttackError(f"{who} needs the cover batch: call it as layer(x, cover)")
    check_batch(cover, "cover")
    if cover.shape != x.shape:
        raise AttackError(f"{who}: cover shape {tuple(cover.shape)} differs from x shape {tuple(x.shape)}")
    return cover.to(device=x.device, dtype=x.dtype)


def format_value(v: Any) -> str:
    """A parameter value in the spec grammar: ranges as ``lo..hi``, lists joined by ``+``, a layer as its
    spec."""
    if isinstance(v, nn.Module):
        return layer_spec(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple) and len(v) == 2 and all(isinstance(a, (int, float)) for a in v):
        return f"{format_value(v[0])}..{format_value(v[1])}"
    if isinstance(v, (tuple, list)):
        return "+".join(format_value(a) for a in v)
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if v is None:
        return "none"
    return str(v)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - exotic values
        return False


#: attack layer name -> (factory, parameter a bare value sets, or None): filled by :func:`register_attack`,
#: read by the config grammar (:mod:`robusthide.attacks.config`)
ATTACKS: dict[str, tuple[Any, str | None]] = {}


def register_attack(name: str, positional: str | None = None) -> Any:
    """Decorator (as :func:`robusthide.codecs.registry.register_codec` for codecs): make an attack class, or
    the factory of a variant of one, buildable as ``name`` in the config grammar; ``positional`` is the
    parameter a bare value sets (``jpegss(50)``). A class gets ``spec_name = name``."""

    def deco(obj: Any) -> Any:
        if name in ATTACKS:
            raise ValueError(f"attack layer {name!r} registered twice")
        ATTACKS[name] = (obj, positional)
        if isinstance(obj, type):
            obj.spec_name = name
        return obj

    return deco


class Attack(nn.Module):
    """Base class: ``forward(x, cover=None) -> tensor shaped like x``.

    Subclasses are registered with :func:`register_attack` (which sets ``spec_name``, the layer name of the
    config grammar; schedules set it themselves) and store every constructor parameter (except
    ``generator``) as an attribute of the same name, which :meth:`spec` reads.
    """

    spec_name: str = ""
    #: whether forward needs ``cover``
    needs_cover: bool = False
    #: constructor parameters that take an attack layer (a nested spec in the config grammar)
    layer_params: tuple[str, ...] = ()

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        self.generator = check_generator(generator)

    def spec_params(self) -> dict[str, Any]:
        """Constructor parameters that differ from their defaults, in signature order."""
        out: dict[str, Any] = {}
        sig = inspect.signature(type(self).__init__)
        for name, p in sig.parameters.items():
            if name in ("self", "generator") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            v = getattr(self, name)
            if p.default is inspect.Parameter.empty or not _same(v, p.default):
                out[name] = v
        return out

    def spec(self) -> str:
        """Canonical spec string (config grammar) that rebuilds an equivalent layer."""
        params = self.spec_params()
        if not params:
            return self.spec_name
        return f"{self.spec_name}({','.join(f'{k}={format_value(v)}' for k, v in params.items())})"

    def extra_repr(self) -> str:
        return self.spec()


def apply_layer(layer: Any, x: torch.Tensor, cover: torch.Tensor | None) -> torch.Tensor:
    """Call an attack layer with the cover, or any other module/callable with ``x`` alone."""
    if isinstance(layer, Attack):
        return layer(x, cover)
    return layer(x)


def layer_spec(layer: Any) -> str:
    """The spec of an attack layer (or the class name of a foreign module)."""
    return layer.spec() if isinstance(layer, Attack) else type(layer).__name__


def set_generator(layer: nn.Module, generator: torch.Generator | None) -> None:
    """Make every random layer inside ``layer`` (itself included) draw from ``generator``: one stream for the
    whole tree, drawn in the order the layers run. The trainer calls it once per step with the step's
    generator, so a run is a pure function of (seed, step) and resumes exactly."""
    check_generator(generator)
    for m in layer.modules():
        if hasattr(m, "generator"):
            m.generator = generator
