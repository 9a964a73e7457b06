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

Besides the codecs of :mod:`robusthide.codecs`, a step may name one of the :data:`DISTORTIONS`: layers of
the attack system (:mod:`robusthide.attacks.distortions`) applied to the uint8 marked image with the
parameters of HiDDeN / MBRS (paper 002 §4.2.2, Table 2), in the same grammar::

    crop-white:p=0.035;cropout:p=0.3;dropout:p=0.3;blur:sigma=2;gaussian:sigma=0.02,0.05;jpeg:q=50

``p`` is always the share of the marked image that survives (HiDDeN's and MBRS's convention): Crop(p) keeps
a window of area ``p`` and pads the rest with white, Cropout(p) takes the rest from the cover, Dropout(p)
keeps each pixel with probability ``p`` and takes the others from the cover. Cropout and Dropout need the
cover, which :func:`robusthide.evaluation.matrix.robustness_matrix` passes. Their random windows / pixels
are a function of (seed, spec, image index), so a run repeats exactly. Distortions chain with codecs
(``dropout:p=0.3|jpeg:q=50``); :func:`attack_runner` builds any step list.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robusthide.codecs.base import CodecError
from robusthide.codecs.registry import NUMBER_RE, parse_number

IDENTITY = "identity"

_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Attack:
    """One single attack of an expanded list.

    ``spec`` is a codec spec for :func:`robusthide.codecs.get_codec`, a :data:`DISTORTIONS` step, a chain
    of both (see :func:`attack_runner`), or ``identity``;
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
    """Build every attack once so that unknown codecs or distortions and bad parameters fail before a long
    run."""
    for a in attacks:
        spec = a.spec if isinstance(a, Attack) else a
        if spec != IDENTITY:
            attack_runner(spec)


# -- distortions of the attack system, measured like codecs ----------------------------------------------


@dataclass(frozen=True)
class Distortion:
    """A step of an attack list served by an attack layer of :mod:`robusthide.attacks.distortions`.

    ``key`` is the step's parameter (also its bare positional value), ``target`` the layer's parameter it
    sets; ``kept``: the step's value is the share of the marked image kept, the layer's is its complement
    (``dropout``); ``lo``/``hi`` bound the value; ``fixed`` are further layer parameters.
    """

    layer: str
    key: str
    target: str
    default: float
    lo: float
    hi: float
    doc: str
    kept: bool = False
    needs_cover: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)


#: name -> :class:`Distortion` (HiDDeN / MBRS, paper 002 Table 2, and additive Gaussian noise)
DISTORTIONS: dict[str, Distortion] = {
    "crop-white": Distortion("crop", "p", "ratio", 0.035, 0.0, 1.0,
                             "MBRS Crop(p): a window of area p kept at a random place, the rest white (255)",
                             fixed={"fill": 1.0}),
    "cropout": Distortion("cropout", "p", "ratio", 0.3, 0.0, 1.0,
                          "HiDDeN/MBRS Cropout(p): a window of area p kept, the rest from the cover",
                          needs_cover=True),
    "dropout": Distortion("dropout", "p", "p", 0.3, 0.0, 1.0,
                          "HiDDeN/MBRS Dropout(p): each pixel kept with probability p, else from the cover",
                          kept=True, needs_cover=True),
    "gaussian": Distortion("noise", "sigma", "sigma", 0.02, 0.0, 1.0,
                           "additive Gaussian noise, sigma on [0, 1] pixels (0.02 = 5.1 grey levels)"),
    "blur": Distortion("blur", "sigma", "sigma", 2.0, 0.0, 20.0,
                       "MBRS GF(sigma): Gaussian filter, kernel 2*ceil(3 sigma)+1, reflected borders"),
}


def _distortion_params(name: str, step: str) -> float:
    """The value of a distortion step ``name[:V | :KEY=V]`` (one parameter; a decimal number)."""
    d = DISTORTIONS[name]
    _, colon, rest = step.partition(":")
    if not colon:
        return d.default
    args = [t.strip() for t in rest.split(",")]
    if len(args) != 1 or not args[0]:
        raise CodecError(f"distortion '{step.strip()}': takes one parameter, {d.key}")
    k, eq, v = args[0].partition("=")
    k, v = (k.strip().lower(), v.strip()) if eq else (d.key, k.strip())
    if k != d.key:
        raise CodecError(f"distortion '{step.strip()}': unknown parameter '{k}' (accepted: {d.key})")
    x = parse_number(v)
    if x is None or not d.lo <= x <= d.hi or (d.key == "p" and x == 0):
        where = f"(0, {d.hi:g}]" if d.key == "p" else f"[{d.lo:g}, {d.hi:g}]"
        raise CodecError(f"distortion '{step.strip()}': {d.key} must be a number in {where}, got {v!r}")
    return float(x)


class _DistortionStep:
    """One distortion step on uint8 N x H x W x 3 batches."""

    def __init__(self, step: str):
        self.spec = step.strip()
        self.name = self.spec.partition(":")[0].strip().lower()
        self.d = DISTORTIONS[self.name]
        self.value = _distortion_params(self.name, step)

    def __call__(self, images: np.ndarray, cover: np.ndarray | None, seed: int) -> np.ndarray:
        import torch

        from robusthide.attacks.base import ATTACKS

        d = self.d
        if d.needs_cover and (cover is None or cover.shape != images.shape):
            raise CodecError(f"{self.spec} needs the cover images (same shape as the marked ones)")
        gen = torch.Generator().manual_seed(seed)
        factory, _ = ATTACKS[d.layer]
        value = 1.0 - self.value if d.kept else self.value
        layer = factory(**{d.target: value}, **d.fixed, generator=gen)

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 255

        with torch.no_grad():
            y = layer(t(images), t(cover) if d.needs_cover else None)
        return (y.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


class AttackRunner:
    """An attack of an expanded list, runnable on uint8 batches: codec steps (:func:`robusthide.codecs.
    get_codec`, consecutive ones run as one chain) and :data:`DISTORTIONS` steps, in order.

    ``runner(marked, cover, seed, index)`` returns ``(images, nbytes)``: ``nbytes`` of the last codec
    segment with a bitstream (as :class:`robusthide.codecs.chain.Chain` reports), zeros without one.
    ``index`` gives each image's index in the whole image set (default ``0..N-1``), so that every image
    gets its own random draws whatever the batching.
    """

    def __init__(self, spec: str, workers: int | None = None):
        from robusthide.codecs import get_codec

        self.spec = spec.strip()
        steps = [s.strip() for s in self.spec.split("|")]
        if any(not s for s in steps):
            raise CodecError(f"malformed attack '{self.spec}': empty step")
        self.segments: list[Any] = []
        codec_run: list[str] = []
        for s in steps + [""]:
            name = s.partition(":")[0].strip().lower()
            if s and name not in DISTORTIONS:
                codec_run.append(s)
                continue
            if codec_run:
                self.segments.append(get_codec("|".join(codec_run), workers=workers))
                codec_run = []
            if s:
                self.segments.append(_DistortionStep(s))
        self.needs_cover = any(isinstance(g, _DistortionStep) and g.d.needs_cover for g in self.segments)
        self.distortion_only = all(isinstance(g, _DistortionStep) for g in self.segments)

    def __call__(self, marked: np.ndarray, cover: np.ndarray | None = None, seed: int = 0,
                 index: list[int] | None = None) -> tuple[np.ndarray, list[int]]:
        index = list(range(len(marked))) if index is None else list(index)
        if len(index) != len(marked):
            raise CodecError(f"{self.spec}: {len(index)} indices for {len(marked)} images")
        x = marked
        nbytes = [0] * len(marked)
        for k, g in enumerate(self.segments):
            if isinstance(g, _DistortionStep):
                # one generator per image: the draws of image i do not depend on the batch it is in
                x = np.concatenate([g(x[j:j + 1], None if cover is None else cover[j:j + 1],
                                      zlib.crc32(f"{seed}:{self.spec}:{k}:{index[j]}".encode()))
                                    for j in range(len(x))]) if len(x) else x
            else:
                res = g(x)
                x = res.images
                if any(res.nbytes):
                    nbytes = list(res.nbytes)
        return x, nbytes


def attack_runner(spec: str, workers: int | None = None) -> AttackRunner:
    """Build the attack ``spec`` (one expanded attack: codecs and :data:`DISTORTIONS`, chained with ``|``)."""
    if not isinstance(spec, str) or not spec.strip():
        raise CodecError(f"malformed attack spec {spec!r}")
    return AttackRunner(spec, workers)


DEFAULT_ATTACKS = ("jpeg:q=10,25,50,75,90;webp:q=50,75;jpeg2000:x1000=100,500,900;h264:crf=23,28;"
                   "resize:0.5;crop:0.9;identity")
