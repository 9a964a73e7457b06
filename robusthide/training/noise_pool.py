"""The noise pool of the default watermarking model: real codecs in the loop (paper 000) plus the
distortions platforms apply, drawn per batch slice (paper 000's mixed training splits a batch into
slices, one distortion per slice).

Real codecs run forward-real / backward-identity (paper 000 §3.3, ``x + (codec(x) - x).detach()``), at a
random quality per slice. The pool is given as a list of entries ``{name, p, ...params}``:

* ``identity`` (uint8 rounding only, straight-through)
* ``jpeg`` q_lo..q_hi, ``webp`` q_lo..q_hi, ``jpeg2000`` x1000 lo..hi, ``avif`` q_lo..q_hi,
  ``h264`` crf lo..hi (x264 ``preset``, default ultrafast) — real codecs via :mod:`robusthide.codecs`
* ``resize`` scale lo..hi (down then back up, bilinear/bicubic/area), ``blur`` sigma lo..hi,
  ``noise`` sigma lo..hi, ``cropresize`` area lo..hi, ``brightness`` delta
* ``resize_jpeg``: a platform chain, resize then JPEG.
* any other name (or ``spec:``) is a layer of :mod:`robusthide.attacks` (e.g. ``jpegmask``, ``jpegss``,
  ``diffjpeg``), built with :func:`robusthide.attacks.build_attack`.

An entry with ``from_step: K`` joins the pool at step K (a curriculum: easy distortions first, harder
codecs once the message path works), so a whole multi-stage recipe is one config file.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from robusthide.codecs import get_codec


def straight_through(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Forward ``y``, backward identity (paper 000 §3.3)."""
    return x + (y - x).detach()


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _randint(gen: torch.Generator, lo: int, hi: int) -> int:
    return int(torch.randint(int(lo), int(hi) + 1, (1,), generator=gen))


def real_codec(x: torch.Tensor, spec: str) -> torch.Tensor:
    y = get_codec(spec)(x.detach().float()).images.to(x.dtype)
    return straight_through(x, y)


def _gauss_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = _gauss_kernel(sigma, x.device)
    r = k.numel() // 2
    c = x.shape[1]
    xp = F.pad(x, (r, r, r, r), mode="reflect")
    xp = F.conv2d(xp, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(xp, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def apply_entry(x: torch.Tensor, cover: torch.Tensor, e: dict[str, Any], gen: torch.Generator) -> torch.Tensor:
    """Apply one pool entry with parameters drawn from ``gen``."""
    name = e["name"]
    h, w = x.shape[-2:]
    if name == "identity":
        return straight_through(x, (x.detach() * 255).round() / 255)
    if name in ("jpeg", "webp", "avif"):
        q = _randint(gen, e.get("q_lo", 50), e.get("q_hi", 50))
        return real_codec(x, f"{name}:q={q}")
    if name == "jpeg2000":
        r = _randint(gen, e.get("lo", 300), e.get("hi", 900))
        return real_codec(x, f"jpeg2000:x1000={r}")
    if name == "h264":
        crf = _randint(gen, e.get("lo", 23), e.get("hi", 30))
        return real_codec(x, f"h264:crf={crf},preset={e.get('preset', 'ultrafast')},mode=frames")
    if name == "resize":
        s = _uniform(gen, e.get("lo", 0.5), e.get("hi", 0.9))
        small = (max(16, round(h * s)), max(16, round(w * s)))
        y = F.interpolate(x, size=small, mode="bilinear", antialias=True, align_corners=False)
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
    if name == "resize_jpeg":
        s = _uniform(gen, e.get("lo", 0.5), e.get("hi", 0.9))
        q = _randint(gen, e.get("q_lo", 50), e.get("q_hi", 90))
        small = (max(16, round(h * s)), max(16, round(w * s)))
        y = F.interpolate(x, size=small, mode="bilinear", antialias=True, align_corners=False)
        y = real_codec(y, f"jpeg:q={q}")
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
    if name == "blur":
        return blur(x, _uniform(gen, e.get("lo", 0.4), e.get("hi", 1.2)))
    if name == "noise":
        s = _uniform(gen, e.get("lo", 0.0), e.get("hi", 0.02))
        return x + s * torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
    if name == "cropresize":
        a = _uniform(gen, e.get("lo", 0.8), e.get("hi", 1.0))
        ch, cw = max(8, round(h * math.sqrt(a))), max(8, round(w * math.sqrt(a)))
        y0, x0 = _randint(gen, 0, h - ch), _randint(gen, 0, w - cw)
        y = x[..., y0:y0 + ch, x0:x0 + cw]
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
    if name == "brightness":
        d = _uniform(gen, -e.get("delta", 0.05), e.get("delta", 0.05))
        c = 1 + _uniform(gen, -e.get("contrast", 0.1), e.get("contrast", 0.1))
        return (x - 0.5) * c + 0.5 + d
    if name == "geometry":  # crops anywhere, aspect cuts, rotations (robusthide.attacks.geometric), then maybe a codec
        from robusthide.attacks.geometric import random_geometry

        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in e.items()
              if k in ("area", "aspect", "angle", "angle_p", "jitter", "shift", "inplace")}
        y = random_geometry(x, gen, **kw)
        after = e.get("after") or []
        if after and _uniform(gen, 0, 1) < float(e.get("after_p", 0.5)):
            y = apply_entry(y, cover, after[_randint(gen, 0, len(after) - 1)], gen)
        return y
    return _attack_layer(e)(x, cover, gen)


_LAYERS: dict[str, torch.nn.Module] = {}


def _attack_layer(e: dict[str, Any]):
    """Any layer of :mod:`robusthide.attacks` (``name: jpegmask`` or ``spec: 'jpegss(50)'``), reseeded from
    the step's generator on every call so that runs stay a pure function of (seed, step)."""
    from robusthide.attacks import build_attack

    spec = e.get("spec", e["name"])
    if spec not in _LAYERS:
        _LAYERS[spec] = build_attack(spec)
    layer = _LAYERS[spec]

    def run(x: torch.Tensor, cover: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        for m in layer.modules():
            if hasattr(m, "generator"):
                m.generator = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
        return layer(x, cover)

    return run


class NoisePool(torch.nn.Module):
    """Split the batch into ``slices`` slices; each gets one entry drawn by probability ``p``."""

    def __init__(self, entries: list[dict[str, Any]], slices: int = 4):
        super().__init__()
        if not entries:
            raise ValueError("empty noise pool")
        self.entries = entries
        self.slices = slices
        p = torch.tensor([float(e.get("p", 1.0)) for e in entries])
        self.probs = p / p.sum()
        self.last: list[str] = []
        self._by_step: dict[tuple[int, ...], NoisePool] = {}

    def for_step(self, step: int) -> NoisePool:
        """The pool of the entries active at ``step`` (``from_step`` <= step)."""
        active = tuple(i for i, e in enumerate(self.entries) if step >= int(e.get("from_step", 0)))
        if len(active) == len(self.entries):
            return self
        if not active:
            raise ValueError(f"no noise pool entry is active at step {step}")
        if active not in self._by_step:
            self._by_step[active] = NoisePool([self.entries[i] for i in active], self.slices)
        return self._by_step[active]

    def forward(self, x: torch.Tensor, cover: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        k = max(1, min(self.slices, n))
        bounds = [round(i * n / k) for i in range(k + 1)]
        outs, self.last = [], []
        for i in range(k):
            j = int(torch.multinomial(self.probs, 1, generator=gen))
            e = self.entries[j]
            self.last.append(e["name"])
            sl = slice(bounds[i], bounds[i + 1])
            outs.append(apply_entry(x[sl], cover[sl], e, gen))
        return torch.cat(outs).clamp(0, 1)
