"""A model whose encoder outputs the whole marked image (HiDDeN, MBRS), with the training-system interface.

HiDDeN and MBRS encoders map (cover, message) to an *encoded image* I_en, not to a residual. This wrapper
gives them the interface of :class:`robusthide.nets.watermark_model.WatermarkModel`:

* ``residual(cover, bits)`` = I_en - I_co (N x 3 x H x W), the watermark signal (paper 002 §3.3);
* ``embed(cover, bits, strength)`` = clamp(I_co + strength * (I_en - I_co), 0, 1) — MBRS's strength factor
  (paper 002 §3.3), 1 in training;
* ``decode(image)`` -> bit logits N x L (positive = bit 1);
* ``forward(cover, bits)`` -> (marked, logits).

Image size. A *fully convolutional* network (``fixed_size = False`` on the encoder / decoder, as for
HiDDeN, whose decoder ends in a global average pool) runs on the image at its own size; memory then grows
with the pixel count (64 channels at full resolution), and a net trained at 128 x 128 sees textures at a
different scale on large photos. A network tied to its working size ``size`` (``fixed_size = True``, as
for MBRS, whose message processor expands sqrt(L) x sqrt(L) to exactly ``size`` and whose decoder
flattens a sqrt(L) x sqrt(L) map) is run as ``WatermarkModel`` runs its nets: the cover is resized to
``size`` x ``size`` (antialiased), the residual I_en - I_co is computed there and upsampled (bilinear) to
the cover's size; the decoder reads an antialiased ``size`` x ``size`` resize of whatever it is given.
At the working size both paths are the plain networks, with no resizing.

An optional ``discriminator`` (the adversary of HiDDeN / MBRS) is held as ``.discriminator`` so that it is
saved and restored with the model; ``embed`` and ``decode`` never use it. Optimisers of the encoder and
decoder must leave its parameters out (see :mod:`robusthide.training.adversary`).
"""

from __future__ import annotations

import torch
from torch import nn

from robusthide.nets.watermark_model import resize


class FullResolutionModel(nn.Module):
    """Encoder (-> encoded image) + decoder (-> logits) [+ discriminator], see the module docstring.

    ``encoder(cover, bits)``: cover N x 3 x h x w in [0, 1], bits N x L in {0, 1} -> encoded image N x 3 x h x w
    (float32, about [0, 1], not clamped). ``decoder(image)`` -> logits N x L. Both carry ``n_bits``,
    ``size`` and ``fixed_size``.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, discriminator: nn.Module | None = None):
        super().__init__()
        if encoder.n_bits != decoder.n_bits:
            raise ValueError(f"encoder carries {encoder.n_bits} bits, decoder {decoder.n_bits}")
        self.encoder, self.decoder = encoder, decoder
        self.discriminator = discriminator
        self.n_bits: int = int(encoder.n_bits)
        self.size: int = int(encoder.size)

    def _working(self, x: torch.Tensor, fixed: bool) -> bool:
        """True if ``x`` must be resized to the working size for a network with ``fixed_size = fixed``."""
        return fixed and tuple(x.shape[-2:]) != (self.size, self.size)

    def residual(self, cover: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """I_en - I_co at the cover's size (N x 3 x H x W, float32), before the strength factor."""
        cover = cover.float()
        if not self._working(cover, bool(getattr(self.encoder, "fixed_size", False))):
            return self.encoder(cover, bits).float() - cover
        small = resize(cover, (self.size, self.size))
        r = self.encoder(small, bits).float() - small
        return resize(r, tuple(cover.shape[-2:]))

    def embed(self, cover: torch.Tensor, bits: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """Marked image ``clamp(cover + strength * (I_en - I_co), 0, 1)`` (N x 3 x H x W, not yet rounded)."""
        return (cover.float() + strength * self.residual(cover, bits)).clamp(0, 1)

    def decode(self, image: torch.Tensor) -> torch.Tensor:
        """Bit logits N x L (positive = bit 1) from an image of any size."""
        if self._working(image, bool(getattr(self.decoder, "fixed_size", False))):
            image = resize(image, (self.size, self.size))
        return self.decoder(image)

    def forward(self, cover: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        marked = self.embed(cover, bits)
        return marked, self.decode(marked)
