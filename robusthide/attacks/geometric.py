"""Geometric edits for training geometry-robust watermarks: crops anywhere, aspect cuts, rotations.

kornia-style: :func:`sample_geometry` draws the parameters of a batch from a generator (they can be logged
and replayed), :func:`apply_geometry` applies them with one ``grid_sample``.

Two kinds of views, both the size of the input:

* **in place** (``inplace=True``): the crop (side fractions ``fw``, ``fh`` at centre ``c``) stays where it
  was in the frame, slightly misaligned (scale ``jitter``, rotation ``angle``, shift ``t``), and the rest of
  the frame is filled with the crop's mean colour -- a cropout. The periodic ``geo`` models
  (:mod:`robusthide.nets.geo`) train on these: their extractor finds the phase, scale, rotation and
  mirror of a real crop itself (:mod:`robusthide.watermark.sync`), so the decoder must only tolerate what
  the search leaves over and read the part of the frame that holds the image.
* **centred**: the crop, rotated by ``angle`` (black corners where it leaves the rotated image), is shown in
  the centre of the frame at its original scale up to ``jitter``, the rest filled with its mean colour: the
  view the extractor builds for a crop taken anywhere.

In normalised coordinates (``[-1, 1]``, ``align_corners=False``) a canvas point ``u`` inside the content
box samples the marked image at ``x = R(angle) (c + u / j) + t`` (centred) or ``R(angle) (u / j) + t``
(in place), where ``R`` rotates in pixel units (it depends on the aspect ratio ``w / h``).

:class:`RandomGeometry` is the attack layer (``geometry(...)`` in the config grammar of
:mod:`robusthide.attacks.config`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from robusthide.attacks.base import Attack, AttackError, Range, check_batch, check_range, register_attack


@dataclass
class GeometryParams:
    """Per-image parameters (tensors of length N): crop sides ``fw``, ``fh`` in (0, 1], crop centre
    ``cx``, ``cy`` (normalised), rotation ``angle`` in degrees, scale mismatch ``jx``, ``jy`` of the view
    (1: the content is shown at its original scale), and the shift ``tx``, ``ty`` (normalised) of the
    content in the view. ``inplace`` views keep the crop where it was in the frame (a cropout with a small
    misalignment: what the periodic ``geo`` models are trained on, since their extractor searches the
    phase); the others centre it (what the extractor's search views of a crop look like)."""

    fw: torch.Tensor
    fh: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    angle: torch.Tensor
    jx: torch.Tensor
    jy: torch.Tensor
    tx: torch.Tensor | None = None
    ty: torch.Tensor | None = None
    inplace: bool = False
    #: a further shift in view pixels (None: none): what a decoder with a stride-2 first layer must learn to
    #: tolerate up to one feature pixel, since the extractor's cyclic shifts move in whole feature pixels
    px: torch.Tensor | None = None
    py: torch.Tensor | None = None


def _u(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def sample_geometry(n: int, gen: torch.Generator, area: tuple[float, float] = (0.25, 1.0),
                    aspect: float = 0.35, angle: float = 12.0, angle_p: float = 0.4,
                    jitter: float = 0.1, shift: float = 0.0, inplace: bool = False,
                    shift_px: float = 0.0) -> GeometryParams:
    """Draw the parameters of ``n`` images: area kept uniform in ``area``; log aspect of the crop uniform in
    ``[-aspect, aspect]`` (sides clipped to 1); rotation uniform in ``[-angle, angle]`` degrees with
    probability ``angle_p`` (else 0); crop centre uniform where the crop fits; scale mismatch per axis
    uniform in ``[1 - jitter, 1 + jitter]``; shift uniform in ``[-shift, shift]`` (normalised units), plus,
    when ``shift_px`` > 0, a shift uniform in ``[-shift_px, shift_px]`` view pixels (drawn after the rest,
    so the other draws do not change)."""
    a = _u(gen, n, *area)
    r = torch.exp(_u(gen, n, -aspect, aspect))
    fw = (a * r).sqrt().clamp(max=1.0)
    fh = (a / r).sqrt().clamp(max=1.0)
    cx = _u(gen, n, -1, 1) * (1 - fw)
    cy = _u(gen, n, -1, 1) * (1 - fh)
    rot = torch.where(torch.rand(n, generator=gen) < angle_p, _u(gen, n, -angle, angle), torch.zeros(n))
    jx, jy = _u(gen, n, 1 - jitter, 1 + jitter), _u(gen, n, 1 - jitter, 1 + jitter)
    tx, ty = _u(gen, n, -shift, shift), _u(gen, n, -shift, shift)
    px = py = None
    if shift_px > 0:
        px, py = _u(gen, n, -shift_px, shift_px), _u(gen, n, -shift_px, shift_px)
    return GeometryParams(fw, fh, cx, cy, rot, jx, jy, tx, ty, inplace, px, py)


def apply_geometry(x: torch.Tensor, p: GeometryParams) -> torch.Tensor:
    """The view (N x C x h x w, same size as ``x``) of each image after the edit ``p``: a canvas point ``u``
    inside the content box samples ``x`` at ``R(angle) (c + u / j) + t`` (centred views, box of half sides
    ``f * j`` at the centre) or at ``R(angle) (u / j) + t`` (``inplace`` views, box of half sides ``f`` at
    ``c``); outside the box, the box's mean colour."""
    n, _, h, w = x.shape
    dev, dt = x.device, torch.float32
    asp = w / h
    t = math.pi / 180 * p.angle.to(dev, dt)
    cos, sin = torch.cos(t), torch.sin(t)
    jx, jy = p.jx.to(dev, dt), p.jy.to(dev, dt)
    cx, cy = p.cx.to(dev, dt), p.cy.to(dev, dt)
    zero = torch.zeros_like(cx)
    tx = zero if p.tx is None else p.tx.to(dev, dt)
    ty = zero if p.ty is None else p.ty.to(dev, dt)
    if p.px is not None and p.py is not None:  # pixels -> normalised units ([-1, 1] spans w or h pixels)
        tx = tx + p.px.to(dev, dt) * 2 / w
        ty = ty + p.py.to(dev, dt) * 2 / h
    if p.inplace:
        bx, by, ex, ey = cx, cy, p.fw.to(dev, dt), p.fh.to(dev, dt)
        ox, oy = tx, ty
    else:
        bx, by = zero, zero
        ex, ey = (p.fw.to(dev, dt) * jx).clamp(max=1), (p.fh.to(dev, dt) * jy).clamp(max=1)
        ox, oy = cos * cx - sin / asp * cy + tx, asp * sin * cx + cos * cy + ty
    theta = torch.zeros(n, 2, 3, device=dev, dtype=dt)
    # R = [[cos, -sin / asp], [asp * sin, cos]] rotates in pixel units
    theta[:, 0, 0], theta[:, 0, 1] = cos / jx, -sin / asp / jy
    theta[:, 1, 0], theta[:, 1, 1] = asp * sin / jx, cos / jy
    theta[:, 0, 2], theta[:, 1, 2] = ox, oy
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    y = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    ux = (torch.arange(w, device=dev, dtype=dt) + 0.5) / w * 2 - 1
    uy = (torch.arange(h, device=dev, dtype=dt) + 0.5) / h * 2 - 1
    inside = ((ux[None, None, :] - bx[:, None, None]).abs() <= ex[:, None, None]) & \
             ((uy[None, :, None] - by[:, None, None]).abs() <= ey[:, None, None])
    inside = inside[:, None].to(dt)
    mean = (y * inside).sum(dim=(2, 3), keepdim=True) / inside.sum(dim=(2, 3), keepdim=True).clamp_min(1)
    return (y * inside + mean * (1 - inside)).to(x.dtype)


def random_geometry(x: torch.Tensor, gen: torch.Generator, **kw) -> torch.Tensor:
    """:func:`apply_geometry` with parameters drawn by :func:`sample_geometry` (``kw``) from ``gen``."""
    return apply_geometry(x, sample_geometry(x.shape[0], gen, **kw))


def _pair(name: str, v: Range) -> tuple[float, float]:
    return (v, v) if isinstance(v, float) else v  # type: ignore[return-value]


@register_attack("geometry")
class RandomGeometry(Attack):
    """A random crop anywhere, aspect cut and rotation per image (:func:`sample_geometry` from the layer's
    generator, :func:`apply_geometry`): ``geometry(area=0.2..1, inplace=true, angle=2.5)``. Parameters as
    :func:`sample_geometry`'s (``area`` a range or a number in (0, 1]; the others numbers). ``last_params``
    holds the last draw."""

    def __init__(self, area: Range = (0.25, 1.0), aspect: float = 0.35, angle: float = 12.0,
                 angle_p: float = 0.4, jitter: float = 0.1, shift: float = 0.0, inplace: bool = False,
                 shift_px: float = 0.0, generator: torch.Generator | None = None):
        super().__init__(generator)
        self.area = check_range("area", area, 0.0, 1.0, lo_open=True)
        self.aspect = float(check_range("aspect", aspect, 0.0, 3.0, allow_range=False))
        self.angle = float(check_range("angle", angle, 0.0, 180.0, allow_range=False))
        self.angle_p = float(check_range("angle_p", angle_p, 0.0, 1.0, allow_range=False))
        self.jitter = float(check_range("jitter", jitter, 0.0, 0.9, allow_range=False))
        self.shift = float(check_range("shift", shift, 0.0, 2.0, allow_range=False))
        self.shift_px = float(check_range("shift_px", shift_px, 0.0, 64.0, allow_range=False))
        if not isinstance(inplace, bool):
            raise AttackError(f"inplace must be true or false, got {inplace!r}")
        self.inplace = inplace
        self.last_params: GeometryParams | None = None

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        gen = self.generator if self.generator is not None else torch.default_generator
        self.last_params = sample_geometry(x.shape[0], gen, _pair("area", self.area), self.aspect, self.angle,
                                           self.angle_p, self.jitter, self.shift, self.inplace, self.shift_px)
        return apply_geometry(x, self.last_params)
