"""The attack list of ``robusthide evaluate``: codec specs with parameter sweeps.

Example::

    jpeg:q=10,25,50,75,90;webp:q=50,75;jpeg2000:x1000=100,500,900;h264:crf=23,28;resize:0.5;crop:0.9;identity

expands to 14 single codec specs (``jpeg:q=10`` ... ``identity``), the attack sets of the papers'
robustness tables (paper 000: JPEG / JPEG 2000 "quality" = ``x1000`` rate 100..900 / WebP; paper 002,
Table 3 and 4: JPEG Q = 10..90).

Grammar (whitespace around tokens is ignored)::

    LIST  := GROUP (';' GROUP)*          # empty groups (e.g. a trailing ';') are skipped
    GROUP := 'identity' | STEP ('|' STEP)*
    STEP  := NAME [':' ARG (',' ARG)*]
    ARG   := KEY '=' VALUE               # starts a new key
           | VALUE                       # see the comma rule

The comma rule: codec specs use commas both between different keys (``jpeg:q=50,subsampling=444``)
and, here, between the values of a sweep. A bare value (no ``=``) right after the ``:`` is the codec's
positional parameter (``resize:0.5``, ``jpeg:50``); a bare value after a comma *continues the sweep of
the key before it* and must be a number. So ``jpeg:q=50,75,subsampling=444`` is the sweep
``jpeg:q=50,subsampling=444`` and ``jpeg:q=75,subsampling=444``; ``resize:0.5,0.75`` is
``resize:0.5`` and ``resize:0.75``. A non-numeric value of a non-first key needs ``key=value`` as
usual, and at most one parameter per group may be swept (write two groups with ``;`` otherwise), so
that every group is one curve of "BER against the swept parameter".

``identity`` means no attack: the marked image is only rounded to uint8 (which the evaluation always
does before any attack).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from robusthide.codecs.base import CodecError
from robusthide.codecs.registry import NUMBER_RE, parse_number

IDENTITY = "identity"

_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Attack:
    """One single attack of an expanded list.

    ``spec`` is a codec spec for :func:`robusthide.codecs.get_codec` (or ``identity``);
    ``family`` the step names (``jpeg``, ``resize|jpeg``); ``param`` the swept parameter (or, for a group
    without a sweep, its first numeric parameter; ``None`` for none) and ``value`` its value;
    ``group`` the group with that value replaced by ``{}`` (``jpeg:q={},subsampling=444``): attacks of
    one group are one curve in the plots.
    """

    spec: str
    family: str
    param: str | None = None
    value: float | int | None = None
    group: str = ""

    def __str__(self) -> str:
        return self.spec


def _parse_step(step: str, group: str) -> tuple[str, list[tuple[str | None, list[str]]]]:
    """``'jpeg:q=50,75,subsampling=444'`` -> ``('jpeg', [('q', ['50', '75']), ('subsampling', ['444'])])``.

    The key ``None`` is the codec's positional parameter (a bare first value).
    """
    name, colon, rest = step.partition(":")
    name = name.strip().lower()
    if not name:
        raise CodecError(f"attack '{group}': missing codec name")
    if not _NAME.match(name):
        raise CodecError(f"attack '{group}': bad codec name '{name}'")
    args: list[tuple[str | None, list[str]]] = []
    if colon and not rest.strip():
        raise CodecError(f"attack '{group}': nothing after ':'")
    if not rest.strip():
        return name, args
    for i, tok in enumerate(rest.split(",")):
        tok = tok.strip()
        if not tok:
            raise CodecError(f"attack '{group}': empty value (two commas, or a trailing comma?)")
        if "=" in tok:
            k, _, v = tok.partition("=")
            k, v = k.strip().lower(), v.strip()
            if not k or not v:
                raise CodecError(f"attack '{group}': bad parameter '{tok}' (use key=value)")
            if any(k == a[0] for a in args):
                raise CodecError(f"attack '{group}': parameter '{k}' given twice")
            args.append((k, [v]))
        elif i == 0:
            args.append((None, [tok]))
        else:
            if not NUMBER_RE.match(tok):
                raise CodecError(f"attack '{group}': bare value '{tok}' after a comma is not a number "
                                 "(a bare number continues the previous key's sweep; else use key=value)")
            args[-1][1].append(tok)
    return name, args


def expand_attacks(text: str | list[str] | tuple[str, ...]) -> list[Attack]:
    """Expand an attack list (see the module docstring) into single attacks, in order, without duplicates.

    ``text`` may also be a list of such strings or of :class:`Attack` (kept as they are); the expansions
    are concatenated. Raises
    :class:`robusthide.codecs.CodecError` (a :class:`robusthide.RobustHideError`) on malformed input.
    Codec names are not checked here: see :func:`validate_attacks`.
    """
    if isinstance(text, (list, tuple)):
        out: list[Attack] = []
        for t in text:
            for a in ([t] if isinstance(t, Attack) else expand_attacks(t)):
                if a.spec not in {o.spec for o in out}:
                    out.append(a)
        if not out:
            raise CodecError("empty attack list")
        return out
    if not isinstance(text, str):
        raise CodecError(f"attack list must be a string, got {type(text).__name__}")
    attacks: list[Attack] = []
    seen: set[str] = set()
    for raw in text.replace("\n", ";").split(";"):
        group = raw.strip()
        if not group:
            continue
        for a in _expand_group(group):
            if a.spec not in seen:
                seen.add(a.spec)
                attacks.append(a)
    if not attacks:
        raise CodecError("empty attack list")
    return attacks


def _expand_group(group: str) -> list[Attack]:
    if group.lower() == IDENTITY:
        return [Attack(IDENTITY, IDENTITY, None, None, IDENTITY)]
    steps = [_parse_step(s, group) for s in group.split("|")]
    if any(name == IDENTITY for name, _ in steps):
        raise CodecError(f"attack '{group}': 'identity' takes no parameters and cannot be chained")
    swept = [(si, ai) for si, (_, args) in enumerate(steps)
             for ai, (_, vals) in enumerate(args) if len(vals) > 1]
    if len(swept) > 1:
        raise CodecError(f"attack '{group}': only one parameter per group may be swept "
                         "(split it into several groups with ';')")
    family = "|".join(name for name, _ in steps)
    if swept:
        si, ai = swept[0]
    else:  # the curve parameter of an unswept group: the first numeric one, last step first
        si = ai = -1
        for s in range(len(steps) - 1, -1, -1):
            for a, (_, vals) in enumerate(steps[s][1]):
                if NUMBER_RE.match(vals[0]):
                    si, ai = s, a
                    break
            if si >= 0:
                break

    def render(value: str | None) -> str:
        parts = []
        for s, (name, args) in enumerate(steps):
            items = []
            for a, (k, vals) in enumerate(args):
                v = value if (s, a) == (si, ai) and value is not None else vals[0]
                items.append(v if k is None else f"{k}={v}")
            parts.append(name + (":" + ",".join(items) if items else ""))
        return "|".join(parts)

    if si < 0:
        spec = render(None)
        return [Attack(spec, family, None, None, spec)]
    key, vals = steps[si][1][ai]
    param = key if key is not None else "value"
    template = render("{}")
    out = []
    for v in vals:
        value: Any = parse_number(v)
        out.append(Attack(render(v), family, param, value, template))
    return out


def parse_attacks(text: str | list[str]) -> list[str]:
    """The attack list as single codec specs: ``'jpeg:q=10,50;identity'`` -> ``['jpeg:q=10', 'jpeg:q=50',
    'identity']``."""
    return [a.spec for a in expand_attacks(text)]


def validate_attacks(attacks: list[Attack] | list[str]) -> None:
    """Build every codec once so that unknown codecs and bad parameters fail before a long run."""
    from robusthide.codecs import get_codec

    for a in attacks:
        spec = a.spec if isinstance(a, Attack) else a
        if spec != IDENTITY:
            get_codec(spec)


DEFAULT_ATTACKS = ("jpeg:q=10,25,50,75,90;webp:q=50,75;jpeg2000:x1000=100,500,900;h264:crf=23,28;"
                   "resize:0.5;crop:0.9;identity")
