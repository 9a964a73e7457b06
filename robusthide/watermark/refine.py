"""Embed-time refinement: the encoder's residual adjusted per image against the fixed decoder.

The encoder's output is a starting point that a few Adam steps (or, with ``optimizer='ngd'``, normalised
gradient steps, which move pixels in proportion to their gradient) then adjust, per image, against the
fixed decoder -- the fixed-network optimisation of FNNS (paper 004's baseline, Kishore et al. 2021) applied
to the residual of :class:`robusthide.nets.watermark_model.WatermarkModel`: a hinge on the decoder's logit
margin, on the marked image and on a differentiable JPEG of it, plus an L2 penalty that keeps the change
small. It fixes the images whose bits the feed-forward encoder gets wrong even before any attack. When the
full-resolution cover is at hand (the :class:`~robusthide.watermark.watermarker.Watermarker`), the
refinement sees the exact deployment path (:func:`deployment_view`: upsampling, clipping to [0, 1] and
8-bit rounding at full size, then the decoder's resize), so saturated pixels and rounding cannot undo what
it optimised at the working size. With ``codecs`` (codec specs, e.g. ``["h264:crf=28"]``) the hinge also
covers the marked image after each real codec at the size it is saved at, forward real and backward
identity: paper 000's pseudo-differentiable codec, applied per image at embed time instead of in training.
``boost`` then re-refines, at a higher strength, the images whose bits still do not all read back
(:func:`reads`).

The settings are one :class:`RefineConfig`; a weights file stores them as the ``refine`` entry of its
``kwargs`` (``model.refine_cfg``), read with :meth:`RefineConfig.from_dict`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
import torch.nn.functional as F

from robusthide import RobustHideError
from robusthide.nets.watermark_model import clamp_to_cap, resize

REFINE_OPTIMIZERS = ("adam", "ngd")
REFINE_PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class RefineConfig:
    """The embed-time refinement's settings (``steps`` 0: off, the fast feed-forward path).

    ``lr`` step size (Adam's, or the RMS of an ``ngd`` step); ``margin`` of the logit hinge; ``weight`` of the
    L2 penalty on the change; ``quality`` of the differentiable JPEG in the hinge; ``optimizer`` adam | ngd;
    ``boost`` rounds of re-refinement at ``boost_factor`` times the strength for images that do not read
    back; ``codecs`` real codec specs the hinge and the check also cover; ``precision`` of the decoder's
    passes inside the refinement loop: ``fp32``, or ``bf16`` (autocast, where the device runs it natively:
    CUDA, or a CPU with AVX512-BF16 / AMX; elsewhere fp32). bf16 makes the decoder passes about twice as fast, but
    the marked image then depends on the CPU's bf16 support; the final check of ``boost`` stays in fp32."""

    steps: int = 0
    lr: float = 0.02
    margin: float = 1.0
    weight: float = 1.0
    quality: int = 50
    optimizer: str = "adam"
    boost: int = 0
    boost_factor: float = 1.15
    codecs: tuple[str, ...] = field(default_factory=tuple)
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in REFINE_PRECISIONS:
            raise RobustHideError(f"refine precision must be one of {', '.join(REFINE_PRECISIONS)}, "
                                  f"got {self.precision!r}")
        if self.optimizer not in REFINE_OPTIMIZERS:
            raise RobustHideError(f"refine optimizer must be one of {', '.join(REFINE_OPTIMIZERS)}, "
                                  f"got {self.optimizer!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise RobustHideError(f"refine steps must be an integer >= 0, got {self.steps!r}")
        codecs = (self.codecs,) if isinstance(self.codecs, str) else tuple(self.codecs)
        object.__setattr__(self, "codecs", codecs)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RefineConfig:
        """From a weights file's ``refine`` settings (missing keys: the defaults); unknown keys are an error."""
        d = dict(d or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise RobustHideError(f"unknown refine keys {unknown} (known: {sorted(known)})")
        if "steps" in d and isinstance(d["steps"], float) and d["steps"].is_integer():
            d["steps"] = int(d["steps"])
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a weights file stores them (``codecs`` as a list)."""
        out = asdict(self)
        out["codecs"] = list(self.codecs)
        return out

    def with_steps(self, steps: int | None) -> RefineConfig:
        """These settings with ``steps`` for one call (None: as they are)."""
        if steps is None:
            return self
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise RobustHideError(f"refine must be a number of steps >= 0, got {steps!r}")
        return replace(self, steps=steps)

    def real_codecs(self) -> list:
        """The real codecs of ``codecs`` (a malformed or unavailable spec raises the registry's one-line error)."""
        return refine_codecs(list(self.codecs))


def decoder_precision(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of the refinement's decoder passes: bf16 where ``precision`` asks for it and
    ``device`` runs it natively (CUDA, or a CPU with native bf16), else none (fp32)."""
    from robusthide.training.hardware import cpu_has_bf16

    native = device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())
    if precision == "bf16" and native:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def refine_codecs(specs: list[str]) -> list:
    """The real codecs of a list of codec specs."""
    from robusthide.codecs import get_codec

    return [get_codec(t) for t in specs]


def decoder_view(r: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """How the decoder sees a working-size residual once it has been upsampled to a large image and the
    image resized back (bilinear up by ``factor``, antialiased bilinear down): a mild blur."""
    s = r.shape[-2:]
    up = F.interpolate(r, scale_factor=factor, mode="bilinear", align_corners=False)
    return F.interpolate(up, size=tuple(s), mode="bilinear", align_corners=False, antialias=True)


def at_strength(res: torch.Tensor, cap: torch.Tensor | None, strength: float = 1.0) -> torch.Tensor:
    """The embed path's cap: the network's residual ``res`` clamped per pixel so that ``strength * res`` (how
    the Watermarker applies it) stays within ``cap`` (None: as is). The clamp is to ``cap / strength`` before
    the multiplication, not ``strength * res`` to ``cap`` after it: the two differ in the last float bit, and
    this order is the one every shipped output (and the ONNX runtime) was made with."""
    return res if cap is None else clamp_to_cap(res, cap / max(float(strength), 1e-6))


#: Above this many pixels the deployment view runs on a copy of the cover resized to this area.
EXACT_VIEW_MAX_PIXELS = 2048 * 2048


def view_cover(cover: torch.Tensor, size: int) -> torch.Tensor:
    """The cover :func:`deployment_view` works on: as is, or resized to :data:`EXACT_VIEW_MAX_PIXELS` when
    larger (a no-op on a cover that is already a view cover)."""
    h, w = cover.shape[-2:]
    if h * w > EXACT_VIEW_MAX_PIXELS:
        k = (EXACT_VIEW_MAX_PIXELS / (h * w)) ** 0.5
        cover = resize(cover, (max(size, round(h * k)), max(size, round(w * k))))
    return cover.detach().float()


def deployment_view(cover: torch.Tensor, size: int, strength: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The decoder's input as a differentiable function of the working-size residual ``res`` (N x 1 x S x S)
    for this full-size ``cover`` (N x C x H x W in [0, 1], C = 1 or 3): ``resize_S(round8(clip(cover +
    strength * up(res))))``, with the 8-bit rounding straight-through. Covers above
    :data:`EXACT_VIEW_MAX_PIXELS` are first resized to that area (rounding then averages out anyway)."""
    cover = view_cover(cover, size)

    def marked(res: torch.Tensor) -> torch.Tensor:
        x = (cover + strength * resize(res, tuple(cover.shape[-2:]))).clamp(0, 1)
        x = x + ((x * 255).round() / 255 - x).detach()
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def view(res: torch.Tensor) -> torch.Tensor:
        return resize(marked(res), (size, size))

    view.marked = marked  # the full-size (or 4 MP) marked image, for checks at the deployment size
    return view


def through_codecs(full: torch.Tensor, codecs: list, size: int) -> list[torch.Tensor]:
    """``full`` after each real codec, resized to ``size`` x ``size`` for the decoder: forward the real
    codec, backward identity (the pseudo-differentiable codec of paper 000, §3.3)."""
    outs = []
    for c in codecs:
        y = c(full.detach().float()).images.to(full.dtype)
        outs.append(resize(full + (y - full).detach(), (size, size)))
    return outs


class Refiner:
    """The refinement of one model under one :class:`RefineConfig` (its real codecs built once)."""

    def __init__(self, model: Any, cfg: RefineConfig):
        self.model, self.cfg = model, cfg
        self.codecs = cfg.real_codecs()
        self._decoder = None

    def decoder(self, device: torch.device) -> tuple[torch.nn.Module, contextlib.AbstractContextManager, bool]:
        """The decoder of the refinement's passes, their autocast context and whether inputs go channels-last:
        the model's own decoder in fp32; for ``precision: bf16`` where it runs natively, a channels-last copy
        (oneDNN's bf16 convolutions and their backward are fastest in that layout; the model's own decoder
        keeps its layout, so extraction is unchanged)."""
        ctx = decoder_precision(self.cfg.precision, device)
        if isinstance(ctx, contextlib.nullcontext):
            return self.model.decoder, ctx, False
        if self._decoder is None:
            import copy

            self._decoder = copy.deepcopy(self.model.decoder).to(memory_format=torch.channels_last)
        return self._decoder, ctx, True

    def hinge_views(self, full: torch.Tensor, x: torch.Tensor, jpeg: Callable[[torch.Tensor], torch.Tensor]
                    ) -> list[torch.Tensor]:
        """The decoder inputs the refinement's hinge covers, each N x C x S x S: the marked image ``x`` at the
        working size, its differentiable ``jpeg``, and ``full`` (the marked image at the size it is saved at)
        after each real codec (:func:`through_codecs`)."""
        return [x, jpeg(x), *through_codecs(full, self.codecs, self.model.size)]

    @torch.no_grad()
    def reads(self, res: torch.Tensor, small: torch.Tensor, bits: torch.Tensor, strength: float,
              view: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Per image: does the decoder read every bit right from the marked image (``view`` of the residual,
        default: ``small`` plus :func:`decoder_view`), from its JPEG at the refinement's quality (this
        package's DiffJPEG with hard rounding) and after each real codec of ``codecs`` (both at the full
        size when ``view`` is a :func:`deployment_view`)? The check of ``boost``: images that fail it are
        refined again at a strength ``boost_factor`` times higher (at most ``boost`` times); the per-pixel
        cap still holds."""
        from robusthide.attacks.simulators.jpeg import DiffJPEG

        m = self.model
        jpeg = DiffJPEG(int(self.cfg.quality), rounding="ste", backend="own")  # hard rounding forward
        if view is None:
            full = x = (small + strength * decoder_view(res)).clamp(0, 1).float()
            xj = jpeg(x)
        else:  # JPEG at the size the image is saved at, as a platform would compress it
            full = view.marked(res).float()
            x, xj = resize(full, (m.size, m.size)), resize(jpeg(full), (m.size, m.size))
        xs = [x, xj, *through_codecs(full, self.codecs, m.size)]
        sign = (bits.float() * 2 - 1).repeat(len(xs), 1)
        ok = (m.decoder(torch.cat(xs)).float() * sign > 0).view(len(xs), x.shape[0], -1)
        return ok.all(dim=2).all(dim=0)

    def refine(self, small: torch.Tensor, bits: torch.Tensor, r0: torch.Tensor, mask: torch.Tensor,
               strength: float = 1.0, cap: torch.Tensor | None = None,
               view: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Adjust the encoder output ``r0`` per image against the fixed decoder (see the module docstring):
        minimise ``mean(relu(margin - logit * sign(bit)))`` over the marked image, its differentiable JPEG
        at ``quality`` (:class:`robusthide.attacks.simulators.jpeg.DiffJPEG`, straight-through rounding) and
        the marked image after each real codec (forward real, backward identity; at the full size when
        ``view`` is a :func:`deployment_view`), plus ``weight * mean(delta ** 2)``, with Adam or normalised
        gradient steps of RMS ``lr`` (``ngd``); stop early once every margin holds. ``view`` maps the
        working-size residual to the decoder's input (default: ``small`` plus :func:`decoder_view`)."""
        from robusthide.attacks.simulators.jpeg import DiffJPEG

        c, m = self.cfg, self.model
        jpeg = DiffJPEG(int(c.quality), rounding="ste", backend="own")
        # callers may run under no_grad or inference_mode: leave both, and copy their (inference) tensors
        with torch.inference_mode(False), torch.enable_grad():
            small, r0, mask = (t.detach().float().clone() for t in (small, r0, mask))
            cap = None if cap is None else cap.detach().float().clone()
            sign = bits.detach().float().clone() * 2 - 1
            delta = torch.zeros_like(r0, requires_grad=True)
            lr = float(c.lr)
            opt = torch.optim.Adam([delta], lr=lr) if c.optimizer == "adam" else None
            dec, ctx, cl = self.decoder(small.device)
            for _ in range(int(c.steps)):
                res = at_strength((r0 + delta) * mask, cap, strength)
                if view is None:
                    full = x = (small + strength * decoder_view(res)).clamp(0, 1)
                else:
                    full = view.marked(res)
                    x = resize(full, (m.size, m.size))
                xs = self.hinge_views(full, x, jpeg)
                batch = torch.cat(xs)
                if cl:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                with ctx:
                    margin = dec(batch).float() * sign.repeat(len(xs), 1)
                hinge = F.relu(float(c.margin) - margin)
                if not bool((hinge > 0).any()):
                    break
                loss = hinge.mean() + float(c.weight) * delta.pow(2).mean()
                (g,) = torch.autograd.grad(loss, [delta])
                if opt is None:  # ngd: a step of RMS lr per image, pixels moved in proportion to their gradient
                    rms = g.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
                    delta.data.sub_(lr * g / rms)
                else:
                    delta.grad = g
                    opt.step()
        return r0 + delta.detach()

    def small_residual(self, small: torch.Tensor, bits: torch.Tensor, strength: float = 1.0,
                       cover: torch.Tensor | None = None) -> torch.Tensor:
        """The refined residual at the working resolution, capped for ``strength`` (:func:`at_strength`; to
        be applied at ``strength``), with ``boost``; ``cover``: the full-size cover, if at hand: the refinement
        then optimises through :func:`deployment_view`."""
        m, c = self.model, self.cfg
        r, mask = m.encode(small, bits)
        cap = m.cap(small)
        if c.steps <= 0:
            return at_strength(r * mask, cap, strength)
        r = r.detach()
        cover = None if cover is None else view_cover(cover, m.size)  # shrunk once, for every boost round

        def refined(i: torch.Tensor, s: float) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor] | None]:
            """Refined, capped residual of images ``i`` applied at strength ``s``, and their view."""
            ci = None if cap is None else cap[i]
            view = None if cover is None else deployment_view(cover[i], m.size, s)
            return at_strength(self.refine(small[i], bits[i], r[i], mask[i], s, ci, view) * mask[i], ci, s), view

        every = torch.arange(small.shape[0], device=small.device)
        out, view = refined(every, strength)
        todo = every[~self.reads(out, small, bits, strength, view)] if c.boost else every[:0]
        for k in range(1, int(c.boost) + 1):
            if todo.numel() == 0:
                break
            s = strength * float(c.boost_factor) ** k
            sub, view = refined(todo, s)
            out[todo] = sub * (s / strength)  # the Watermarker applies ``strength`` (this order: bit-identical)
            todo = todo[~self.reads(sub, small[todo], bits[todo], s, view)]
        return out
