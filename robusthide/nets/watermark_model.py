"""A watermarking model that works at any image size (the residual-upsampling scheme).

The networks run at a fixed working resolution S (e.g. 128). To mark an image of any size
(the scheme TrustMark uses, here with a perceptual mask):

1. the cover is resized to S x S (antialiased) and the encoder produces a luma residual r in [-1, 1];
2. the residual is scaled by ``amplitude`` and by a JND-style mask of the small cover
   (:class:`robusthide.nets.masking.PerceptualMask`);
3. residual and mask are upsampled (bilinear) to the full size and added to every RGB channel of the
   full-resolution cover, times a test-time strength factor (MBRS's strength factor);
4. the decoder reads an antialiased S x S resize of whatever image it is given.

The network returns the residual (:meth:`WatermarkModel.small_residual`) and its per-pixel cap
(:meth:`WatermarkModel.cap`); the embed path applies both and the strength
(:func:`robusthide.watermark.refine.at_strength`), with the embed-time refinement against the decoder
(:mod:`robusthide.watermark.refine`, settings ``refine_cfg`` from the weights file) and the composition of the
marked image (:class:`robusthide.watermark.watermarker.Watermarker`). :meth:`WatermarkModel.embed` is the
training forward pass (strength 1).

Training runs exactly this pipeline with the attacks applied at the full resolution, so the network
learns the deployment path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robusthide import RobustHideError
from robusthide.nets.masking import PerceptualMask


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with antialiasing when shrinking (no-op when the size already matches)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _no_refine(refine: int | None) -> None:
    """The network's methods run the fast path only; the old ``refine=N`` argument says where it went."""
    if refine:
        raise RobustHideError("the embed-time refinement moved to robusthide.watermark.refine: mark with "
                              f"Watermarker(model).embed_bits(image, bits, refine={refine!r})")


def clamp_to_cap(res: torch.Tensor, cap: torch.Tensor | None) -> torch.Tensor:
    """``res`` clamped to ``[-cap, cap]`` per pixel (None: as is)."""
    if cap is None:
        return res
    return torch.maximum(torch.minimum(res, cap), -cap)


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
        #: the embed-time refinement settings this model ships with (a weights file's ``refine``), read by
        #: :class:`robusthide.watermark.refine.RefineConfig` (the zoo loader fills in the defaults)
        self.refine_cfg: dict = dict(refine or {})

    @property
    def default_search(self) -> str:
        """The extraction search this model is read with by default: its ``search`` metadata, else its
        decoder's ``default_search`` (``geometry`` for the periodic ``geo`` decoder), else ``staged`` (the
        plain read, then the inset, reframing, slide, rotation, crop, corner, turn and anywhere searches, each
        only when the ones before detect nothing; :mod:`robusthide.watermark.sync`)."""
        meta = getattr(self, "meta", None) or {}
        return str(meta.get("search") or getattr(self.decoder, "default_search", "staged"))

    @property
    def default_schema(self) -> str | None:
        """The payload schema messages use by default: its ``schema`` metadata, else its encoder's
        ``default_schema``, else None (the payload's default for the bit count)."""
        meta = getattr(self, "meta", None) or {}
        return meta.get("schema") or getattr(self.encoder, "default_schema", None)

    @property
    def soft_share(self) -> float:
        """The share of the false-positive budget the soft-decision test gets when this model's reads are
        decided (its ``soft_share`` metadata; 0, the hard test alone, by default;
        :mod:`robusthide.payload.soft_detection`)."""
        meta = getattr(self, "meta", None) or {}
        return float(meta.get("soft_share") or 0.0)

    def small_residual(self, small: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """The network's output: the masked luma residual ``r * m`` at the working resolution (N x 1 x S x S)
        for the covers resized to S x S, before the per-pixel cap and the strength, which the embed path
        applies (:func:`robusthide.watermark.refine.at_strength`, the Watermarker's)."""
        r, m = self.encode(small, bits)
        return r * m

    def encode(self, small: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r, m)``: the encoder's raw output for the S x S cover and the scale it is applied with (the
        perceptual mask times ``amplitude``); the residual before the cap is ``r * m``."""
        return self.encoder(small, bits).float(), self.mask(small) * self.amplitude

    def cap(self, small: torch.Tensor) -> torch.Tensor | None:
        """The per-pixel bound of the applied residual for the S x S covers (None: the model has none)."""
        return self.mask.cap(small)

    def embed_parts(self, cover: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training forward pass (no refinement, strength 1): ``(marked, unbounded, small)``, where
        ``unbounded`` is the masked working-size residual before the per-pixel cap and ``small`` the cover at
        S x S. A loss on ``unbounded`` reaches the encoder also where the cap clips its output (the clip passes
        no gradient)."""
        small = resize(cover, (self.size, self.size))
        unbounded = self.small_residual(small, bits)
        res = clamp_to_cap(unbounded, self.cap(small))
        return (cover + resize(res, tuple(cover.shape[-2:]))).clamp(0, 1), unbounded, small

    def residual(self, cover: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """The masked luma residual at full resolution (N x 1 x H x W): :meth:`small_residual` upsampled,
        before the cap and the strength."""
        small = resize(cover, (self.size, self.size))
        return resize(self.small_residual(small, bits), tuple(cover.shape[-2:]))

    def embed(self, cover: torch.Tensor, bits: torch.Tensor, *, refine: int | None = None) -> torch.Tensor:
        """The training forward pass's marked image (N x 3 x H x W in [0, 1], not yet rounded; strength 1,
        cap applied) for covers of any size: a user marks images with
        :class:`robusthide.watermark.watermarker.Watermarker`, which applies the strength."""
        _no_refine(refine)
        return self.embed_parts(cover, bits)[0]

    def decode(self, image: torch.Tensor) -> torch.Tensor:
        """Bit logits (N x L) from an image of any size."""
        return self.decoder(resize(image, (self.size, self.size)))

    def forward(self, cover: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        marked = self.embed(cover, bits)
        return marked, self.decode(marked)
