"""A watermarking model that works at any image size (the residual-upsampling scheme).

The networks run at a fixed working resolution S (e.g. 128). To mark an image of any size
(the scheme TrustMark uses, here with a perceptual mask):

1. the cover is resized to S x S (antialiased) and the encoder produces a luma residual r in [-1, 1];
2. the residual is scaled by ``amplitude`` and by a JND-style mask of the small cover
   (:class:`robusthide.nets.masking.PerceptualMask`);
3. residual and mask are upsampled (bilinear) to the full size and added to every RGB channel of the
   full-resolution cover, times a test-time strength factor (MBRS's strength factor);
4. the decoder reads an antialiased S x S resize of whatever image it is given.

Optional embed-time refinement (``refine``): the encoder's output is a starting point that a few Adam steps
(or, with ``optimizer: ngd``, normalised gradient steps, which move pixels in proportion to their
gradient) then adjust, per image, against the fixed decoder -- the fixed-network optimisation of FNNS (paper 004's
baseline, Kishore et al. 2021) applied to our residual: a hinge on the decoder's logit margin, on the marked
image and on a differentiable JPEG of it, plus an L2 penalty that keeps the change small. It fixes the
images whose bits the feed-forward encoder gets wrong even before any attack. When the full-resolution
cover is at hand (:meth:`WatermarkModel.embed`, the Watermarker), the refinement sees the exact deployment
path (:func:`deployment_view`: upsampling, clipping to [0, 1] and 8-bit rounding at full size, then the
decoder's resize), so saturated pixels and rounding cannot undo what it optimised at the working size.
With ``codecs`` (codec specs, e.g. ``["h264:crf=28"]``) the hinge also covers the marked image after each
real codec at the size it is saved at, forward real and backward identity: paper 000's pseudo-differentiable
codec, applied per image at embed time instead of in training. ``boost`` then re-refines, at a higher
strength, the images whose bits still do not all read back (:meth:`WatermarkModel.reads`).

Training runs exactly this pipeline with the attacks applied at the full resolution, so the network
learns the deployment path.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robusthide.nets.masking import PerceptualMask


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with antialiasing when shrinking (no-op when the size already matches)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


#: Defaults of the embed-time refinement (``refine={"steps": N, ...}``; steps 0 = off).
REFINE_DEFAULTS = {"steps": 0, "lr": 0.02, "margin": 1.0, "weight": 1.0, "quality": 50, "optimizer": "adam",
                   "boost": 0, "boost_factor": 1.15, "codecs": []}
REFINE_OPTIMIZERS = ("adam", "ngd")


def decoder_view(r: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """How the decoder sees a working-size residual once it has been upsampled to a large image and the
    image resized back (bilinear up by ``factor``, antialiased bilinear down): a mild blur."""
    s = r.shape[-2:]
    up = F.interpolate(r, scale_factor=factor, mode="bilinear", align_corners=False)
    return F.interpolate(up, size=tuple(s), mode="bilinear", align_corners=False, antialias=True)


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


def refine_codecs(specs: list[str]) -> list:
    """The real codecs of the refinement's ``codecs`` setting (a list of codec specs); a malformed or
    unavailable spec raises the codec registry's one-line error."""
    from robusthide.codecs import get_codec

    return [get_codec(t) for t in specs]


def through_codecs(full: torch.Tensor, codecs: list, size: int) -> list[torch.Tensor]:
    """``full`` after each real codec, resized to ``size`` x ``size`` for the decoder: forward the real
    codec, backward identity (the pseudo-differentiable codec of paper 000, §3.3)."""
    outs = []
    for c in codecs:
        y = c(full.detach().float()).images.to(full.dtype)
        outs.append(resize(full + (y - full).detach(), (size, size)))
    return outs


class WatermarkModel(nn.Module):
    """Encoder + decoder + perceptual mask, working at ``encoder.size`` and applied at any size."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, amplitude: float = 6 / 255,
                 mask: dict | None = None, refine: dict | None = None):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.n_bits: int = encoder.n_bits
        self.size: int = encoder.size
        self.amplitude = float(amplitude)
        self.mask = PerceptualMask(**(mask or {}))
        unknown = sorted(set(refine or {}) - set(REFINE_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown refine keys {unknown} (known: {sorted(REFINE_DEFAULTS)})")
        self.refine_cfg = {**REFINE_DEFAULTS, **(refine or {})}
        opt = self.refine_cfg["optimizer"]
        if opt not in REFINE_OPTIMIZERS:
            raise ValueError(f"refine optimizer must be one of {REFINE_OPTIMIZERS}, got {opt!r}")
        self._codecs: tuple[tuple[str, ...], list] = ((), [])
        self.refine_codecs  # noqa: B018 -- a malformed or unavailable codec spec fails at construction

    @property
    def default_search(self) -> str:
        """The extraction search this model is read with by default: its ``search`` metadata, else its
        decoder's ``default_search`` (``geometry`` for the periodic ``geo`` decoder), else ``none``."""
        meta = getattr(self, "meta", None) or {}
        return str(meta.get("search") or getattr(self.decoder, "default_search", "none"))

    @property
    def default_schema(self) -> str | None:
        """The payload schema messages use by default: its ``schema`` metadata, else its encoder's
        ``default_schema``, else None (the payload's default for the bit count)."""
        meta = getattr(self, "meta", None) or {}
        return meta.get("schema") or getattr(self.encoder, "default_schema", None)

    @property
    def refine_codecs(self) -> list:
        """The real codecs of ``refine_cfg["codecs"]`` (built once per setting)."""
        specs = self.refine_cfg["codecs"]
        key = tuple([specs] if isinstance(specs, str) else specs)
        if self._codecs[0] != key:
            self._codecs = (key, refine_codecs(list(key)))
        return self._codecs[1]

    def small_residual(self, small: torch.Tensor, bits: torch.Tensor, strength: float = 1.0,
                       refine: int | None = None, cover: torch.Tensor | None = None) -> torch.Tensor:
        """The masked luma residual at the working resolution, from the cover resized to S x S (``strength``
        is the factor it will be applied with; only the refinement uses it). ``refine``: refinement steps
        for this call (None: the model's ``refine`` setting; 0: off, the fast feed-forward path). ``cover``:
        the full-size cover, if at hand: the refinement then optimises through :func:`deployment_view`."""
        r, m = self.encode(small, bits)
        cap = self.mask.cap(small)
        steps = self.refine_steps(refine)
        if steps <= 0:
            return self.bound(r * m, cap, strength)
        r = r.detach()
        cover = None if cover is None else view_cover(cover, self.size)  # shrunk once, for every boost round

        def refined(i: torch.Tensor, s: float) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor] | None]:
            """Refined, capped residual of images ``i`` applied at strength ``s``, and their view."""
            c = None if cap is None else cap[i]
            view = None if cover is None else deployment_view(cover[i], self.size, s)
            return self.bound(self.refine(small[i], bits[i], r[i], m[i], s, steps, c, view) * m[i], c, s), view

        every = torch.arange(small.shape[0], device=small.device)
        out, view = refined(every, strength)
        todo = every[~self.reads(out, small, bits, strength, view)] if self.refine_cfg["boost"] else every[:0]
        for k in range(1, int(self.refine_cfg["boost"]) + 1):
            if todo.numel() == 0:
                break
            s = strength * float(self.refine_cfg["boost_factor"]) ** k
            sub, view = refined(todo, s)
            out[todo] = sub * (s / strength)  # the caller applies ``strength``
            todo = todo[~self.reads(sub, small[todo], bits[todo], s, view)]
        return out

    @torch.no_grad()
    def reads(self, res: torch.Tensor, small: torch.Tensor, bits: torch.Tensor, strength: float,
              view: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Per image: does the decoder read every bit right from the marked image (``view`` of the residual,
        default: ``small`` plus :func:`decoder_view`), from its JPEG at the refinement's quality (this
        package's DiffJPEG with hard rounding) and after each real codec of the ``codecs`` setting (both at
        the full size when ``view`` is a :func:`deployment_view`)?
        The check of the refinement's ``boost``: images that fail it are refined again at a strength
        ``boost_factor`` times higher (at most ``boost`` times); the per-pixel cap still holds."""
        from robusthide.attacks.simulators.jpeg import DiffJPEG

        jpeg = DiffJPEG(int(self.refine_cfg["quality"]), rounding="ste", backend="own")  # hard rounding forward
        if view is None:
            full = x = (small + strength * decoder_view(res)).clamp(0, 1).float()
            xj = jpeg(x)
        else:  # JPEG at the size the image is saved at, as a platform would compress it
            full = view.marked(res).float()
            x, xj = resize(full, (self.size, self.size)), resize(jpeg(full), (self.size, self.size))
        xs = [x, xj, *through_codecs(full, self.refine_codecs, self.size)]
        sign = (bits.float() * 2 - 1).repeat(len(xs), 1)
        ok = (self.decoder(torch.cat(xs)).float() * sign > 0).view(len(xs), x.shape[0], -1)
        return ok.all(dim=2).all(dim=0)

    def encode(self, small: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r, m)``: the encoder's raw output for the S x S cover and the scale it is applied with (the
        perceptual mask times ``amplitude``); the residual before the cap is ``r * m``."""
        return self.encoder(small, bits).float(), self.mask(small) * self.amplitude

    def refine_steps(self, refine: int | None = None) -> int:
        """Refinement steps of a call: ``refine``, or the model's setting when None (0 = the fast path)."""
        return int(self.refine_cfg["steps"] if refine is None else refine)

    @staticmethod
    def bound(res: torch.Tensor, cap: torch.Tensor | None, strength: float = 1.0) -> torch.Tensor:
        """Clamp the residual so that ``strength * res`` stays within the per-pixel ``cap`` (None: as is)."""
        if cap is None:
            return res
        c = cap / max(float(strength), 1e-6)
        return torch.maximum(torch.minimum(res, c), -c)

    def refine(self, small: torch.Tensor, bits: torch.Tensor, r0: torch.Tensor, m: torch.Tensor,
               strength: float = 1.0, steps: int | None = None,
               cap: torch.Tensor | None = None,
               view: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Adjust the encoder output ``r0`` per image against the fixed decoder (see the module docstring):
        minimise ``mean(relu(margin - logit * sign(bit)))`` over the marked image, its differentiable JPEG
        at ``quality`` (:class:`robusthide.attacks.simulators.jpeg.DiffJPEG`, straight-through rounding) and
        the marked image after each real codec of ``codecs`` (forward real, backward identity; at the full
        size when ``view`` is a :func:`deployment_view`), plus ``weight * mean(delta ** 2)``, with Adam
        (``optimizer: adam``) or normalised gradient steps of RMS ``lr`` (``ngd``); stop early once every
        margin holds. ``view`` maps the working-size residual to the decoder's input (default: ``small``
        plus :func:`decoder_view`)."""
        from robusthide.attacks.simulators.jpeg import DiffJPEG

        c = self.refine_cfg
        jpeg = DiffJPEG(int(c["quality"]), rounding="ste", backend="own")
        # callers may run under no_grad or inference_mode: leave both, and copy their (inference) tensors
        with torch.inference_mode(False), torch.enable_grad():
            small, r0, m = (t.detach().float().clone() for t in (small, r0, m))
            cap = None if cap is None else cap.detach().float().clone()
            sign = (bits.detach().float().clone() * 2 - 1).repeat(2 + len(self.refine_codecs), 1)
            delta = torch.zeros_like(r0, requires_grad=True)
            lr = float(c["lr"])
            opt = torch.optim.Adam([delta], lr=lr) if c["optimizer"] == "adam" else None
            for _ in range(int(c["steps"] if steps is None else steps)):
                res = self.bound((r0 + delta) * m, cap, strength)
                if view is None:
                    full = x = (small + strength * decoder_view(res)).clamp(0, 1)
                else:
                    full = view.marked(res)
                    x = resize(full, (self.size, self.size))
                xs = [x, jpeg(x), *through_codecs(full, self.refine_codecs, self.size)]
                margin = self.decoder(torch.cat(xs)).float() * sign
                hinge = F.relu(float(c["margin"]) - margin)
                if not bool((hinge > 0).any()):
                    break
                loss = hinge.mean() + float(c["weight"]) * delta.pow(2).mean()
                (g,) = torch.autograd.grad(loss, [delta])
                if opt is None:  # ngd: a step of RMS lr per image, pixels moved in proportion to their gradient
                    rms = g.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
                    delta.data.sub_(lr * g / rms)
                else:
                    delta.grad = g
                    opt.step()
        return r0 + delta.detach()

    def embed_parts(self, cover: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training forward pass (no refinement): ``(marked, unbounded, small)``, where ``unbounded`` is
        the masked working-size residual before the per-pixel cap and ``small`` the cover at S x S. A loss on
        ``unbounded`` reaches the encoder also where the cap clips its output (the clip passes no gradient)."""
        small = resize(cover, (self.size, self.size))
        r, m = self.encode(small, bits)
        unbounded = r * m
        res = self.bound(unbounded, self.mask.cap(small))
        return (cover + resize(res, tuple(cover.shape[-2:]))).clamp(0, 1), unbounded, small

    def residual(self, cover: torch.Tensor, bits: torch.Tensor, strength: float = 1.0,
                 refine: int | None = None) -> torch.Tensor:
        """The masked luma residual at full resolution (N x 1 x H x W), before the strength factor."""
        small = resize(cover, (self.size, self.size))
        return resize(self.small_residual(small, bits, strength, refine, cover), tuple(cover.shape[-2:]))

    def embed(self, cover: torch.Tensor, bits: torch.Tensor, strength: float = 1.0,
              refine: int | None = None) -> torch.Tensor:
        """Marked image (N x 3 x H x W in [0, 1], not yet rounded) for covers of any size."""
        r = self.residual(cover, bits, strength, refine)
        return (cover + strength * r).clamp(0, 1)

    def decode(self, image: torch.Tensor) -> torch.Tensor:
        """Bit logits (N x L) from an image of any size."""
        return self.decoder(resize(image, (self.size, self.size)))

    def forward(self, cover: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        marked = self.embed(cover, bits)
        return marked, self.decode(marked)
