"""Build attack layers from a spec string, a dict / list, or YAML text / file: :func:`build_attack`.

String grammar (whitespace around tokens is ignored)::

    SPEC   := ITEM
    ITEM   := NAME [ '(' BODY ')' ] [ '@' NUMBER ]          -- '@' weight only inside choice / slices
            | 'real:' CODEC                                   -- shorthand, CODEC without , ( ) @
    NAME   := identity | real | jpegmask | jpegmask-hidden | jpegdrop | jpegss | jpegss-mbrs | diffjpeg
            | noise | blur | median | resize | crop | cropresize | cropout | dropout | brightness-contrast
            | mixup003 | paper003 | choice | slices | seq
    BODY   := CODEC                       for real: the codec spec verbatim (robusthide.codecs grammar,
                                          may hold ':' ',' '=' '|'; parentheses must balance)
            | ITEM (',' ITEM)*            for choice, slices, seq
            | ARG (',' ARG)*              for every other layer
    ARG    := KEY '=' VALUE | VALUE       -- a bare VALUE is the layer's first parameter (table below)
    VALUE  := NUMBER | NUMBER '..' NUMBER (a range, drawn per forward pass) | WORD ('+' WORD)* (a list)
            | true | false | none

Items are split at commas outside parentheses, so a codec spec's commas stay inside ``real(...)``.
``choice``: relative weights (normalised; MBRS, one layer per mini-batch, or per slice with the option
``slices=N``: ``choice(a@1, b@4, slices=4)``); ``slices``: fractions of the batch (paper 000), which must sum
to 1; all items weighted or none (uniform). ``real(SPEC)`` with one integer range ``key=lo..hi`` in SPEC is
:class:`~robusthide.attacks.schedules.RandomQuality` (a new quality per batch); ``real(SPEC;grad=zero)``
passes no gradient (MBRS's real JPEG). Layers that take a layer (``resize(0.5, between=real(jpeg:q=50))``,
``maybe(LAYER, p=0.5)``, ``from_step(LAYER, step=1200)``) read it as a nested spec.

Examples::

    choice(real(jpeg:q=50)@0.4, jpegmask@0.3, identity@0.3)
    slices(real(jpeg:q=50), real(jpeg2000:x1000=500), real(webp:q=50))
    seq(resize(0.5..0.9), real(jpeg:q=10..90))
    choice(noise(sigma=0.01..0.05), blur(2,kernel=7), crop(0.035,fill=white), dropout(0.3), cropout(0.3))
    mixup003(kinds=jpegss+jpegmask+jpegdrop+diffjpeg, quality=10..90)

Positional (first) parameter: noise/blur sigma, median kernel, resize scale, crop/cropresize/cropout ratio,
dropout p, brightness-contrast brightness, jpegmask form, the other JPEG layers / mixup003 / paper003 quality
(alias ``q``). Names are case-insensitive; ``-`` in keys reads as ``_``.

Dict / YAML form: a layer is ``{layer: NAME, PARAM: VALUE, ...}`` (``codec: SPEC`` for real; lists of two
numbers are ranges); a schedule is ``{choice: [ITEMS]}``, ``{slices: [ITEMS]}`` or ``{seq: [ITEMS]}``; an item
is a dict or a spec string (or ``{spec: STRING}``), weighted by ``p`` (or ``fraction`` / ``weight``; only
these two for layers with a ``p`` parameter, dropout and maybe), joining a choice at a training step with
``from_step: K``; ``{choice: [...], slices: N}`` sets the option; a top-level list is a ``seq``;
an optional top-level ``seed`` seeds every layer's generator. Example::

    choice:
      - {layer: real, codec: 'jpeg:q=50', p: 0.4}
      - {layer: jpegmask, p: 0.3}
      - {layer: identity, p: 0.3}

Every layer's :meth:`~robusthide.attacks.base.Attack.spec` prints the canonical string, which rebuilds it.
Bad specs raise :class:`~robusthide.attacks.base.AttackError` (a ``RobustHideError``) naming the spec.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from robusthide import RobustHideError
from robusthide.attacks import distortions as _distortions  # noqa: F401 -- registers its layers
from robusthide.attacks import geometric as _geometric  # noqa: F401 -- registers its layers
from robusthide.attacks.base import ATTACKS, AttackError
from robusthide.attacks.pseudo import PseudoDifferentiable
from robusthide.attacks.schedules import (
    BatchSlices,
    PerBatchChoice,
    RandomQuality,
    Sequential,
)
from robusthide.attacks.simulators import jpeg as _jpeg  # noqa: F401 -- registers its layers
from robusthide.codecs.registry import NUMBER_RE, parse_number

#: layer name -> (factory, positional parameter or None): the layers registered with
#: :func:`robusthide.attacks.base.register_attack` by the modules imported above
LAYERS: dict[str, tuple[Callable[..., nn.Module], str | None]] = ATTACKS
SCHEDULES = ("choice", "slices", "seq")
#: short parameter names accepted for convenience (``jpegss(q=50)`` as in codec specs)
_ALIASES = {"q": "quality"}
NAMES = ("real", *LAYERS, *SCHEDULES)

_NAME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)")


class _Bad(Exception):
    """Internal: a parse error message, wrapped with the full spec by :func:`build_attack`."""


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside parentheses; check the parentheses balance."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _Bad("unbalanced ')'")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise _Bad("unbalanced '('")
    parts.append("".join(cur))
    return parts


def _split_weight(item: str) -> tuple[str, float | None]:
    """``'jpegmask@0.3'`` -> ``('jpegmask', 0.3)``: the last '@' outside parentheses."""
    depth, at = 0, -1
    for i, ch in enumerate(item):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "@" and depth == 0:
            at = i
    if at < 0:
        return item.strip(), None
    w = item[at + 1 :].strip()
    if not NUMBER_RE.match(w):
        raise _Bad(f"bad weight '@{w}' in '{item.strip()}' (expected a number)")
    return item[:at].strip(), float(w)


def parse_value(s: str) -> Any:
    """A parameter value: number, ``lo..hi`` range (tuple), ``a+b`` list (tuple), bool, none or word."""
    s = s.strip()
    if not s:
        raise _Bad("empty parameter value")
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    n = parse_number(s)
    if n is not None:
        return n
    if ".." in s:
        lo, _, hi = s.partition("..")
        a, b = parse_number(lo.strip()), parse_number(hi.strip())
        if a is None or b is None:
            raise _Bad(f"bad range '{s}' (expected NUMBER..NUMBER)")
        return (a, b)
    if "+" in s:
        return tuple(parse_value(p) for p in s.split("+"))
    return s


def _parse_item(text: str) -> tuple[str, str | None, float | None]:
    """``NAME[(BODY)][@W]`` -> (name, body or None, weight or None)."""
    _split_top(text)  # raises on unbalanced parentheses
    item, weight = _split_weight(text)
    if not item:
        raise _Bad("empty item")
    m = _NAME_RE.match(item)
    if not m:
        raise _Bad(f"'{item}' does not start with a layer name")
    name, rest = m.group(1).lower(), item[m.end() :].strip()
    if name == "real" and rest.startswith(":"):
        codec = rest[1:].strip()
        if not codec:
            raise _Bad("'real:' needs a codec spec, e.g. real(jpeg:q=50)")
        return name, codec, weight
    if not rest:
        return name, None, weight
    if not rest.startswith("(") or not rest.endswith(")"):
        raise _Bad(f"'{item}': expected NAME or NAME(...)")
    body = rest[1:-1]
    # the '(' after the name must close at the very end
    depth = 0
    for ch in rest[:-1]:
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            raise _Bad(f"'{item}': text after the closing ')'")
    return name, body, weight


def _layer_kwargs(name: str, body: str | None, positional: str | None,
                  raw: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``key=value`` parameters of ``name(BODY)``; values of the keys in ``raw`` (parameters that take a
    layer) stay spec text."""
    kwargs: dict[str, Any] = {}
    if body is None or not body.strip():
        return kwargs
    for i, arg in enumerate(_split_top(body)):
        arg = arg.strip()
        if not arg:
            raise _Bad(f"empty parameter in '{name}({body})'")
        key, eq, val = arg.partition("=")
        if eq and "(" in key and positional in raw:  # a nested layer spec with '=' inside: a bare value
            eq = ""
        if eq:
            key = key.strip().lower().replace("-", "_")
            if not re.match(r"^[a-z_][a-z0-9_]*$", key):
                raise _Bad(f"bad parameter name '{key}' in '{name}({body})'")
        else:
            if i != 0 or positional is None:
                raise _Bad(f"bare value '{arg}' in '{name}({body})' (use key=value)")
            key, val = positional, arg
        key = _ALIASES.get(key, key)
        if key in kwargs:
            raise _Bad(f"parameter '{key}' given twice in '{name}({body})'")
        kwargs[key] = val.strip() if key in raw else parse_value(val)
    return kwargs


#: options a schedule takes besides its items (``choice(a, b, slices=4)``; ``{choice: [...], slices: 4}``)
SCHEDULE_OPTIONS = {"choice": ("slices",), "slices": (), "seq": ()}
_OPTION_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=")


def _takes_p(name: Any) -> bool:
    """Whether layer ``name`` has a parameter ``p`` (dropout, maybe): its dict's ``p`` is then that
    parameter, and a weight is written ``weight`` (or ``fraction``)."""
    entry = LAYERS.get(str(name).lower()) if name is not None else None
    return entry is not None and inspect.isclass(entry[0]) and "p" in inspect.signature(entry[0].__init__).parameters


class _Builder:
    def __init__(self, seed: int | None):
        self.master = None if seed is None else torch.Generator().manual_seed(int(seed))

    def generator(self) -> torch.Generator | None:
        if self.master is None:
            return None
        return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=self.master)))

    def layer(self, name: str, kwargs: dict[str, Any], where: str) -> nn.Module:
        if name == "real":
            codec = kwargs.pop("codec", None)
            if not isinstance(codec, str) or not codec.strip():
                raise _Bad(f"'{where}': real needs a codec spec, e.g. real(jpeg:q=50)")
            codec, _, opt = codec.partition(";")  # real(jpeg:q=50;grad=zero)
            if opt.strip():
                key, eq, val = opt.partition("=")
                if key.strip() != "grad" or not eq:
                    raise _Bad(f"'{where}': after ';' real takes grad=identity|zero, got '{opt.strip()}'")
                kwargs["grad"] = val.strip()
            try:
                if re.search(r"=\d+\.\.\d+", codec):
                    return RandomQuality(codec, generator=self.generator(), **kwargs)
                return PseudoDifferentiable(codec, **kwargs)
            except TypeError as e:
                raise _Bad(f"'{where}': {e}") from None
            except RobustHideError as e:
                raise _Bad(f"'{where}': {e}") from None
        if name not in LAYERS:
            raise _Bad(f"unknown layer '{name}' (known: {', '.join(NAMES)})")
        factory, _ = LAYERS[name]
        target = factory if inspect.isclass(factory) else None
        takes_gen = target is None or "generator" in inspect.signature(target.__init__).parameters
        if "generator" in kwargs:
            raise _Bad(f"'{where}': generator is not a spec parameter (use build_attack(..., seed=N))")
        for key in getattr(factory, "layer_params", ()):
            if key in kwargs and not isinstance(kwargs[key], nn.Module):
                sub, w = self.from_obj(kwargs[key])
                if w is not None:
                    raise _Bad(f"'{where}': {key} takes a layer without '@' weight")
                kwargs[key] = sub
        if takes_gen:
            kwargs["generator"] = self.generator()
        try:
            return factory(**kwargs)
        except TypeError as e:
            msg = str(e)
            m = re.search(r"unexpected keyword argument '(\w+)'", msg)
            raise _Bad(
                f"'{where}': unknown parameter '{m.group(1)}' for {name}" if m else f"'{where}': {msg}"
            ) from None
        except RobustHideError as e:
            raise _Bad(f"'{where}': {e}") from None

    def schedule(self, name: str, items: list[tuple[nn.Module, float | None]], where: str,
                 options: dict[str, Any] | None = None) -> nn.Module:
        options = options or {}
        bad = sorted(set(options) - set(SCHEDULE_OPTIONS[name]))
        if bad:
            known = ", ".join(SCHEDULE_OPTIONS[name]) or "none"
            raise _Bad(f"'{where}': unknown option '{bad[0]}' for {name} (known: {known})")
        if not items:
            raise _Bad(f"'{where}': {name} needs at least one layer")
        layers = [m for m, _ in items]
        weights = [w for _, w in items]
        try:
            if name == "seq":
                if any(w is not None for w in weights):
                    raise _Bad(f"'{where}': seq items take no '@' weight")
                return Sequential(*layers)
            if all(w is None for w in weights):
                ws = None
            elif any(w is None for w in weights):
                raise _Bad(f"'{where}': give a weight to every item of {name} or to none")
            else:
                ws = [float(w) for w in weights]  # type: ignore[arg-type]
            if name == "choice":
                return PerBatchChoice(layers, ws, generator=self.generator(), **options)
            return BatchSlices(layers, ws)
        except RobustHideError as e:
            raise _Bad(f"'{where}': {e}") from None

    # --- string grammar ---
    def from_string(self, text: str) -> tuple[nn.Module, float | None]:
        name, body, weight = _parse_item(text)
        where = text.strip()
        if name in SCHEDULES:
            if body is None or not body.strip():
                raise _Bad(f"'{where}': {name} needs layers, e.g. {name}(identity, jpegmask)")
            items, options = [], {}
            for p in _split_top(body):
                m = _OPTION_RE.match(p)
                if m:
                    options[m.group(1).lower()] = parse_value(p[m.end():])
                else:
                    items.append(self.from_string(p))
            return self.schedule(name, items, where, options), weight
        if name == "real":
            if body is None:
                raise _Bad(f"'{where}': real needs a codec spec, e.g. real(jpeg:q=50)")
            return self.layer("real", {"codec": body.strip()}, where), weight
        if name not in LAYERS:
            raise _Bad(f"unknown layer '{name}' in '{where}' (known: {', '.join(NAMES)})")
        factory, positional = LAYERS[name]
        raw = tuple(getattr(factory, "layer_params", ()))
        return self.layer(name, _layer_kwargs(name, body, positional, raw), where), weight

    # --- dict / YAML ---
    def from_obj(self, obj: Any) -> tuple[nn.Module, float | None]:
        if isinstance(obj, str):
            return self.from_string(obj)
        if isinstance(obj, list):
            return self.schedule("seq", [self.from_obj(o) for o in obj], "list"), None
        if not isinstance(obj, dict):
            raise _Bad(f"expected a dict, list or spec string, got {obj!r}")
        d = {str(k).lower(): v for k, v in obj.items()}
        wkeys = [k for k in ("p", "fraction", "weight") if k in d and not (k == "p" and _takes_p(d.get("layer")))]
        if len(wkeys) > 1:
            raise _Bad(f"{obj!r}: give only one of p / fraction / weight")
        weight = d.pop(wkeys[0]) if wkeys else None
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))):
            raise _Bad(f"{obj!r}: weight must be a number, got {weight!r}")
        if "from_step" in d:  # a curriculum item: joins its choice at that training step
            step = d.pop("from_step")
            inner, _ = self.from_obj(d)
            return self.layer("from_step", {"attack": inner, "step": step}, "from_step"), weight
        if "spec" in d:
            if len(d) > 1:
                raise _Bad(f"{obj!r}: 'spec' takes no other keys (besides a weight and from_step)")
            module, w = self.from_string(str(d["spec"]))
            if w is not None:
                raise _Bad(f"{obj!r}: give the weight as p, not '@' in the spec")
            return module, weight
        sched = [k for k in SCHEDULES if isinstance(d.get(k), list)] or [k for k in SCHEDULES if k in d]
        if sched:  # (``slices`` is also an option of choice: {choice: [...], slices: 4})
            options = {k: v for k, v in d.items() if k != sched[0]}
            if len(sched) > 1 or "layer" in d:
                raise _Bad(
                    f"{obj!r}: a schedule dict has exactly one of choice / slices / seq (and a weight)"
                )
            items = d[sched[0]]
            if not isinstance(items, list):
                raise _Bad(f"{obj!r}: {sched[0]} must be a list")
            return self.schedule(sched[0], [self.from_obj(o) for o in items], sched[0], options), weight
        if "layer" not in d:
            raise _Bad(f"{obj!r}: expected 'layer: NAME' or one of choice / slices / seq")
        name = str(d.pop("layer")).lower()
        kwargs: dict[str, Any] = {}
        for k, v in d.items():
            key = k.replace("-", "_")
            kwargs[_ALIASES.get(key, key)] = tuple(v) if isinstance(v, list) else v
        return self.layer(name, kwargs, f"layer {name}"), weight


def _looks_like_yaml(text: str) -> bool:
    t = text.strip()
    return (
        "\n" in t
        or t.startswith(("{", "[", "- "))
        or bool(re.match(r"^(layer|choice|slices|seq|seed)\s*:\s", t))
    )


def build_attack(spec: Any, seed: int | None = None) -> nn.Module:
    """Build an attack layer from a spec string, a dict / list, YAML text, or a ``.yaml`` / ``.yml`` path.

    ``seed`` (or a top-level ``seed`` key of a dict) gives every random layer its own deterministic
    ``torch.Generator``; without it the layers use torch's global RNG.
    Raises :class:`AttackError` with a one-line message naming the spec on any error.
    """
    shown = spec if isinstance(spec, str) else repr(spec)
    try:
        obj: Any = spec
        if isinstance(spec, os.PathLike) or (
            isinstance(spec, str)
            and spec.strip().endswith((".yaml", ".yml"))
            and "(" not in spec
        ):
            obj = _load_yaml_file(os.fspath(spec).strip())
        elif isinstance(spec, str) and _looks_like_yaml(spec):
            obj = _load_yaml(spec)
        if isinstance(obj, dict) and "seed" in obj:
            obj = dict(obj)
            s = obj.pop("seed")
            if isinstance(s, bool) or not isinstance(s, int):
                raise _Bad(f"seed must be an integer, got {s!r}")
            seed = s if seed is None else seed
        if isinstance(obj, str) and not obj.strip():
            raise _Bad("empty spec")
        builder = _Builder(seed)
        module, weight = builder.from_obj(obj) if not isinstance(obj, str) else builder.from_string(obj)
        if weight is not None:
            raise _Bad("a top-level layer takes no '@' weight (weights belong inside choice / slices)")
        return module
    except _Bad as e:
        raise AttackError(f"bad attack spec {shown!r}: {e}") from None


def _load_yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise _Bad(f"invalid YAML: {str(e).splitlines()[0]}") from None


def _load_yaml_file(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return _load_yaml(f.read())
    except OSError as e:
        raise _Bad(f"cannot read {path}: {e.strerror}") from None


def attack_spec(layer: nn.Module) -> str:
    """Canonical spec string of an attack layer (``layer.spec()``)."""
    from robusthide.attacks.base import layer_spec

    return layer_spec(layer)
