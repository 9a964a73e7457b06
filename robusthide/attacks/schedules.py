"""Schedules that combine attack layers: per-batch choice (MBRS), batch slices (paper 000), composition,
paper 003's JPEG mix-up simulator and full attack layer, and a random-quality real codec.

* :class:`PerBatchChoice` -- MBRS (paper 002 §3.2 "Our MBRS Methods", Fig. 2): one layer per mini-batch,
  e.g. real JPEG-50 (:class:`~robusthide.attacks.pseudo.PseudoDifferentiable`), JPEG-Mask, Identity.
* :class:`BatchSlices` -- paper 000 mixed training (§4, ANCHORS.md): the batch split into slices, one layer
  per slice (JPEG 50 / JPEG 2000 500 / WebP 50; or JPEG at Q 10/25/50/75/90).
* :class:`Sequential` -- composition.
* :class:`JpegMixup` -- paper 003 §2.2 eq. (1): a random convex combination of JPEG simulators, each at its
  own random quality factor. :class:`Paper003Attack` -- paper 003 §2.2: JPEG always present; the other attacks
  (noise, blur, scaling, crop) are applied to the mix-up at quality 90.
* :class:`RandomQuality` -- a real codec at a random quality per forward pass, forward-real /
  backward-identity.
* :class:`Maybe` -- a layer applied with a probability; :class:`FromStep` -- a layer that joins its
  :class:`PerBatchChoice` at a training step (a step curriculum: :meth:`PerBatchChoice.for_step`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from robusthide.attacks.base import (
    Attack,
    AttackError,
    Range,
    apply_layer,
    check_batch,
    check_range,
    format_value,
    layer_spec,
    randint,
    register_attack,
    uniform,
)
from robusthide.attacks.distortions import Crop, GaussianBlur, GaussianNoise, Resize
from robusthide.attacks.pseudo import check_grad, real_output
from robusthide.attacks.simulators.jpeg import DiffJPEG, JpegDrop, JpegMask, JpegSimulator, JpegSS, JpegSSMbrs
from robusthide.codecs import get_codec


def _check_layers(layers: Any, who: str) -> list[nn.Module]:
    if isinstance(layers, nn.Module) or not isinstance(layers, Sequence) or len(layers) == 0:
        raise AttackError(f"{who} needs a non-empty list of layers")
    for layer in layers:
        if not isinstance(layer, nn.Module):
            raise AttackError(
                f"{who}: layers must be torch.nn.Modules (wrap a codec in PseudoDifferentiable), "
                f"got {type(layer).__name__}"
            )
    return list(layers)


def _check_weights(weights: Any, n: int, what: str, who: str) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    w = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan for v in weights]
    if len(w) != n:
        raise AttackError(f"{who}: {len(w)} {what} for {n} layers")
    if any(not math.isfinite(v) or v < 0 for v in w):
        raise AttackError(f"{who}: {what} must be non-negative numbers, got {list(weights)}")
    if abs(sum(w) - 1.0) > 1e-6:
        raise AttackError(f"{who}: {what} must sum to 1, got {list(weights)} (sum {sum(w):g})")
    return [v / sum(w) for v in w]


def _weighted(layers: Sequence[nn.Module], weights: Sequence[float]) -> str:
    """Items with ``@weight``, or without weights when they are uniform."""
    if all(abs(w - 1.0 / len(weights)) < 1e-12 for w in weights):
        return ",".join(layer_spec(layer) for layer in layers)
    return ",".join(f"{layer_spec(layer)}@{format_value(float(w))}" for layer, w in zip(layers, weights))


def _check_relative(weights: Any, n: int, who: str) -> list[float]:
    """Relative weights (non-negative, positive sum; None: all equal), as given."""
    if weights is None:
        return [1.0] * n
    w = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan for v in weights]
    if len(w) != n:
        raise AttackError(f"{who}: {len(w)} weights for {n} layers")
    if any(not math.isfinite(v) or v < 0 for v in w) or sum(w) <= 0:
        raise AttackError(f"{who}: weights must be non-negative numbers with a positive sum, got {list(weights)}")
    return w


class PerBatchChoice(Attack):
    """MBRS (paper 002 §3.2, Fig. 2): for each mini-batch, one layer drawn with relative weights ``probs``
    (normalised; default uniform), applied to the whole batch. With ``slices`` > 1 the batch is split into
    that many consecutive slices (bounds ``round(i * N / slices)``) and each slice gets its own draw: paper
    000's mixed training with a random layer per slice.

    The index is drawn with ``torch.multinomial`` over the weights, or ``torch.randint`` when they are all
    equal. Layers wrapped in :class:`FromStep` join at their step: :meth:`for_step` gives the choice among
    the layers active at a training step (a step curriculum). ``last_choice`` is the index drawn last
    (``last_layer`` the layer), ``last_choices`` the draws of the last call, one per slice."""

    spec_name = "choice"

    def __init__(
        self,
        layers: Sequence[nn.Module],
        probs: Sequence[float] | None = None,
        generator: torch.Generator | None = None,
        slices: int = 1,
    ):
        super().__init__(generator)
        self.layers = nn.ModuleList(_check_layers(layers, "PerBatchChoice"))
        self.weights = _check_relative(probs, len(self.layers), "PerBatchChoice")
        total = sum(self.weights)
        self.probs = [v / total for v in self.weights]
        if isinstance(slices, bool) or not isinstance(slices, int) or slices < 1:
            raise AttackError(f"PerBatchChoice: slices must be an integer >= 1, got {slices!r}")
        self.slices = slices
        self.last_choice: int | None = None
        self.last_choices: list[int] = []
        self._by_step: dict[tuple[int, ...], PerBatchChoice] = {}

    @property
    def last_layer(self) -> nn.Module | None:
        return None if self.last_choice is None else self.layers[self.last_choice]

    def draw(self) -> int:
        """Draw a layer index: ``torch.randint`` when the weights are equal, else ``torch.multinomial``."""
        if all(w == self.weights[0] for w in self.weights):
            return randint(self.generator, 0, len(self.layers) - 1)
        p = torch.tensor(self.weights, device=self.generator.device if self.generator is not None else "cpu")
        return int(torch.multinomial(p / p.sum(), 1, generator=self.generator))

    def for_step(self, step: int) -> PerBatchChoice:
        """The choice among the layers active at training step ``step`` (:class:`FromStep` ``step`` <= it),
        sharing their modules and the generator; ``self`` when all are."""
        active = tuple(i for i, m in enumerate(self.layers) if not isinstance(m, FromStep) or m.step <= step)
        if len(active) == len(self.layers):
            return self
        if not active:
            raise AttackError(f"PerBatchChoice: no layer is active at step {step}")
        if active not in self._by_step:
            self._by_step[active] = PerBatchChoice([self.layers[i] for i in active],
                                                   [self.weights[i] for i in active], self.generator, self.slices)
        sub = self._by_step[active]
        sub.generator = self.generator
        return sub

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[0]
        k = max(1, min(self.slices, n))
        if k == 1:
            self.last_choice = self.draw()
            self.last_choices = [self.last_choice]
            return apply_layer(self.layers[self.last_choice], x, cover)
        bounds = [round(i * n / k) for i in range(k + 1)]
        outs, self.last_choices = [], []
        for i in range(k):
            j = self.draw()
            self.last_choices.append(j)
            sl = slice(bounds[i], bounds[i + 1])
            outs.append(apply_layer(self.layers[j], x[sl], None if cover is None else cover[sl]))
        self.last_choice = self.last_choices[-1]
        return torch.cat(outs)

    def spec(self) -> str:
        items = ",".join(layer_spec(m) for m in self.layers) if all(w == self.weights[0] for w in self.weights) \
            else ",".join(f"{layer_spec(m)}@{format_value(float(w))}" for m, w in zip(self.layers, self.weights))
        return f"choice({items}{f',slices={self.slices}' if self.slices != 1 else ''})"


@register_attack("maybe", positional="attack")
class Maybe(Attack):
    """``attack`` with probability ``p`` (one uniform draw per call), else the input unchanged:
    ``maybe(choice(real(jpeg:q=40..90), real(webp:q=40..90)), p=0.5)``."""

    layer_params = ("attack",)

    def __init__(self, attack: nn.Module, p: float = 0.5, generator: torch.Generator | None = None):
        super().__init__(generator)
        self.attack = _check_layers([attack], "Maybe")[0]
        self.p = float(check_range("p", p, 0.0, 1.0, allow_range=False))
        self.last_applied: bool | None = None

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        self.last_applied = uniform(self.generator, 0.0, 1.0) < self.p
        return apply_layer(self.attack, x, cover) if self.last_applied else x

    def spec(self) -> str:
        return f"maybe({layer_spec(self.attack)}{'' if self.p == 0.5 else f',p={format_value(self.p)}'})"


@register_attack("from_step", positional="attack")
class FromStep(Attack):
    """``attack`` that joins a :class:`PerBatchChoice` at training step ``step`` (a curriculum: easy
    distortions first, harder codecs once the message path works): the choice's
    :meth:`PerBatchChoice.for_step` leaves it out before. Applied directly, it is ``attack``. In the dict
    form an item's ``from_step: K`` key wraps it."""

    layer_params = ("attack",)

    def __init__(self, attack: nn.Module, step: int = 0):
        super().__init__(None)
        self.attack = _check_layers([attack], "FromStep")[0]
        if isinstance(step, float) and step.is_integer():
            step = int(step)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise AttackError(f"from_step: step must be an integer >= 0, got {step!r}")
        self.step = step

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        return apply_layer(self.attack, x, cover)

    def spec(self) -> str:
        return f"from_step({layer_spec(self.attack)},step={self.step})"


def slice_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Split ``n`` into integer sizes proportional to ``fractions`` (largest remainder; ties to the first)."""
    raw = [f * n for f in fractions]
    sizes = [math.floor(r) for r in raw]
    rest = n - sum(sizes)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - sizes[i]), i))
    for i in order[:rest]:
        sizes[i] += 1
    return sizes


class BatchSlices(Attack):
    """Paper 000 mixed training (ANCHORS.md): split the batch into consecutive slices of sizes
    :func:`slice_sizes` ``(N, fractions)`` and apply one layer per slice (with the matching cover slice).
    ``last_sizes`` holds the sizes used last."""

    spec_name = "slices"

    def __init__(self, layers: Sequence[nn.Module], fractions: Sequence[float] | None = None):
        super().__init__(None)
        self.layers = nn.ModuleList(_check_layers(layers, "BatchSlices"))
        self.fractions = _check_weights(fractions, len(self.layers), "fractions", "BatchSlices")
        self.last_sizes: list[int] = []

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        sizes = slice_sizes(x.shape[0], self.fractions)
        self.last_sizes = sizes
        outs, start = [], 0
        for layer, s in zip(self.layers, sizes):
            if s == 0:
                continue
            c = None if cover is None else cover[start : start + s]
            outs.append(apply_layer(layer, x[start : start + s], c))
            start += s
        if not outs:
            return x
        return torch.cat(outs, dim=0)

    def spec(self) -> str:
        return f"slices({_weighted(self.layers, self.fractions)})"


class Sequential(Attack):
    """Composition: apply ``layers`` in order, each with the same cover."""

    spec_name = "seq"

    def __init__(self, *layers: nn.Module):
        super().__init__(None)
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.layers = nn.ModuleList(_check_layers(layers, "Sequential"))

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = apply_layer(layer, x, cover)
        return x

    def spec(self) -> str:
        return f"seq({','.join(layer_spec(layer) for layer in self.layers)})"


#: Simulator kinds for :class:`JpegMixup`, by config name.
MIXUP_KINDS: dict[str, Any] = {
    "jpegss": lambda g: JpegSS(generator=g),
    "jpegss-mbrs": lambda g: JpegSSMbrs(generator=g),
    "jpegmask": lambda g: JpegMask("mbrs", generator=g),
    "jpegmask-hidden": lambda g: JpegMask("hidden", generator=g),
    "jpegdrop": lambda g: JpegDrop(generator=g),
    "diffjpeg": lambda g: DiffJPEG(generator=g),
    "diffjpeg-ste": lambda g: DiffJPEG(rounding="ste", generator=g),
}

#: Paper 003 §2.2: {JPEG-SS [33], JPEG-Mask [14] (HiDDeN), MBRS [34]} -- MBRS's training JPEG is a torch
#: simulation with hard rounding (ANCHORS.md), i.e. DiffJPEG(rounding='ste').
PAPER003_KINDS: tuple[str, ...] = ("jpegss", "jpegmask-hidden", "diffjpeg-ste")


def _check_quality_range(name: str, q: Any) -> tuple[int, int]:
    if isinstance(q, bool):
        raise AttackError(f"{name} must be an integer 1..100 or a range, got {q!r}")
    if isinstance(q, int):
        q = (q, q)
    if (
        not isinstance(q, (tuple, list))
        or len(q) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100 for v in q)
        or q[0] > q[1]
    ):
        raise AttackError(f"{name} must be an integer 1..100 or a range lo..hi within 1..100, got {q!r}")
    return int(q[0]), int(q[1])


@register_attack("mixup003", positional="quality")
class JpegMixup(Attack):
    """Paper 003 §2.2, eq. (1) (the equation's symbols were lost in the text; reconstructed from the prose):
    ``I_jpeg = sum_k lambda_k * J_k(I_m, Q_k)`` -- an instance-agnostic mix-up, after Zhang et al.'s mixup, of
    several JPEG simulators ``J_k`` each at its own random quality ``Q_k``, with random convex weights
    ``lambda`` (here: flat Dirichlet, ``lambda_k >= 0``, ``sum lambda_k = 1``, drawn per forward pass).

    Args:
        kinds: simulator names from :data:`MIXUP_KINDS`; default :data:`PAPER003_KINDS`, the paper's set
            {JPEG-SS, JPEG-Mask (HiDDeN's), MBRS (hard-rounded simulation)}; ``jpegdrop``, ``diffjpeg``,
            ``jpegmask`` (MBRS square), ``jpegss-mbrs`` can be mixed in too.
        quality: range of the integer quality factors, drawn independently per simulator (the paper does not
            give the range; default 10..90).

    ``last_weights`` / ``last_qualities`` hold the last draw. Always applied (the paper keeps JPEG present).
    """


    def __init__(
        self,
        kinds: Sequence[str] | str = PAPER003_KINDS,
        quality: int | tuple[int, int] = (10, 90),
        generator: torch.Generator | None = None,
    ):
        super().__init__(generator)
        if isinstance(kinds, str):
            kinds = (kinds,)
        kinds = tuple(kinds)
        bad = [k for k in kinds if k not in MIXUP_KINDS]
        if not kinds or bad:
            raise AttackError(
                f"JpegMixup kinds must be a non-empty list of {', '.join(MIXUP_KINDS)}; got {list(kinds)}"
            )
        self.kinds = kinds
        lo, hi = _check_quality_range("quality", quality)
        self.quality: int | tuple[int, int] = (lo, hi) if lo != hi else lo
        self.sims = nn.ModuleList([MIXUP_KINDS[k](generator) for k in kinds])
        self.last_weights: list[float] = []
        self.last_qualities: list[int] = []

    def draw_weights(self) -> list[float]:
        """Flat-Dirichlet convex weights (normalised exponential draws)."""
        e = [-math.log(max(uniform(self.generator, 0.0, 1.0), 1e-12)) for _ in self.sims]
        s = sum(e)
        return [v / s for v in e]

    def mix(self, x: torch.Tensor, quality: int | None = None) -> torch.Tensor:
        """Eq. (1) with the weights and qualities drawn now; ``quality`` fixes every ``Q_k`` (paper: 90)."""
        check_batch(x)
        lo, hi = _check_quality_range("quality", self.quality)
        w = self.draw_weights()
        qs = [quality if quality is not None else randint(self.generator, lo, hi) for _ in self.sims]
        self.last_weights, self.last_qualities = w, qs
        out = None
        for wk, qk, sim in zip(w, qs, self.sims):
            assert isinstance(sim, JpegSimulator)
            y = wk * sim.simulate(x, qk)
            out = y if out is None else out + y
        assert out is not None
        return out

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        return self.mix(x)


@register_attack("paper003", positional="quality")
class Paper003Attack(Attack):
    """Paper 003's attack layer (§2.2): five attacks -- JPEG (the JpegMixup simulator), Gaussian noise,
    Gaussian blur, random scaling, random crop. JPEG is always present: per mini-batch one branch is drawn
    (``probs`` over ``jpeg, noise, blur, scaling, crop``, default uniform); ``jpeg`` is the mix-up at random
    qualities, every other branch is applied to the mix-up with all ``Q_k`` fixed to ``base_quality`` (90 in
    the paper). The paper takes the other attacks from HiDDeN without giving their parameters; the defaults
    here are ours: noise sigma 0..0.04, blur sigma 0.5..2, scale 0.5..1 (down and back up), crop keeping
    0.5..1 of the area (black fill). ``last_choice`` is the branch name drawn last.
    """

    BRANCHES = ("jpeg", "noise", "blur", "scaling", "crop")

    def __init__(
        self,
        quality: int | tuple[int, int] = (10, 90),
        base_quality: int = 90,
        noise: Range = (0.0, 0.04),
        blur: Range = (0.5, 2.0),
        scale: Range = (0.5, 1.0),
        crop: Range = (0.5, 1.0),
        probs: Sequence[float] | None = None,
        kinds: Sequence[str] | str = PAPER003_KINDS,
        generator: torch.Generator | None = None,
    ):
        super().__init__(generator)
        self.mixup = JpegMixup(kinds, quality, generator)
        self.kinds = self.mixup.kinds
        self.quality = self.mixup.quality
        self.base_quality = _check_quality_range("base_quality", base_quality)[0]
        self.noise = check_range("noise", noise, 0.0, 1.0)
        self.blur = check_range("blur", blur, 0.0, 20.0, lo_open=True)
        self.scale = check_range("scale", scale, 0.05, 4.0)
        self.crop = check_range("crop", crop, 0.0, 1.0, lo_open=True)
        self._probs = _check_weights(probs, len(self.BRANCHES), "probs", "Paper003Attack")
        self.probs = None if probs is None else tuple(self._probs)
        self.others = nn.ModuleDict(
            {
                "noise": GaussianNoise(self.noise, generator=generator),
                "blur": GaussianBlur(self.blur, generator=generator),
                "scaling": Resize(self.scale, generator=generator),
                "crop": Crop(self.crop, generator=generator),
            }
        )
        self.last_choice: str | None = None

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        u = uniform(self.generator, 0.0, 1.0)
        acc, branch = 0.0, self.BRANCHES[-1]
        for name, p in zip(self.BRANCHES, self._probs):
            acc += p
            if u < acc:
                branch = name
                break
        self.last_choice = branch
        if branch == "jpeg":
            return self.mixup.mix(x)
        return apply_layer(self.others[branch], self.mixup.mix(x, self.base_quality), cover)


_RANGE_RE = re.compile(r"(?P<key>[A-Za-z0-9_]+)=(?P<lo>\d+)\.\.(?P<hi>\d+)")


class RandomQuality(Attack):
    """A real codec at a random integer quality per forward pass, forward-real / backward-identity
    (paper 000 §3.3; the mixed training of paper 000 §4 uses several qualities).

    ``codec`` is a codec spec with exactly one integer range ``key=lo..hi``, e.g. ``'jpeg:q=10..90'``,
    ``'webp:q=30..90'``, ``'jpeg2000:x1000=100..900'``; a new codec is built per draw through
    :func:`robusthide.codecs.get_codec`. ``last_quality``, ``last_codec`` (spec) and ``last_nbytes`` hold the
    last draw.
    """

    spec_name = "real"

    def __init__(
        self,
        codec: str = "jpeg:q=10..90",
        workers: int | None = None,
        grad: str = "identity",
        generator: torch.Generator | None = None,
    ):
        super().__init__(generator)
        self.grad = check_grad(grad)
        if not isinstance(codec, str):
            raise AttackError(
                f"RandomQuality codec must be a spec string like 'jpeg:q=10..90', got {codec!r}"
            )
        matches = list(_RANGE_RE.finditer(codec))
        if len(matches) != 1:
            raise AttackError(f"RandomQuality codec spec {codec!r} must hold exactly one range key=lo..hi")
        m = matches[0]
        self.lo, self.hi = int(m["lo"]), int(m["hi"])
        if self.lo > self.hi:
            raise AttackError(f"RandomQuality codec spec {codec!r}: range must have lo <= hi")
        self._template = codec[: m.start()] + m["key"] + "={}" + codec[m.end() :]
        self.codec = codec.strip()
        self.workers = workers
        for q in {self.lo, self.hi}:  # fail now on a bad spec, not in the middle of training
            get_codec(self._template.format(q), workers)
        self.last_quality: int | None = None
        self.last_codec: str | None = None
        self.last_nbytes: list[int] = []

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        q = randint(self.generator, self.lo, self.hi)
        spec = self._template.format(q)
        res = get_codec(spec, self.workers)(x.detach().to(device="cpu", dtype=torch.float32))
        self.last_quality, self.last_codec, self.last_nbytes = q, spec, list(res.nbytes)
        return real_output(x, res.images, self.grad)

    def spec(self) -> str:
        return f"real({self.codec})" if self.grad == "identity" else f"real({self.codec};grad={self.grad})"
