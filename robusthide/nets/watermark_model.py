"""A watermarking model that works at any image size (the residual-upsampling scheme).

The networks run at a fixed working resolution S (e.g. 128). To mark an image of any size
(the scheme TrustMark uses, here with a perceptual mask):

1. the cover is resized to S x S (antialiased) and the encoder produces a luma residual r in [-1, 1];
2. the residual is scaled by ``amplitude`` and by a JND-style mask of the small cover
   (:class:`robusthide.nets.masking.PerceptualMask`);
3. residual and mask are upsampled (bilinear) to the full size and added to every RGB channel of the
   full-resolution cover, times a test-time strength factor (MBRS's strength factor);
4. the decoder reads an antialiased S x S resize of whatever image it is given.

Training runs exactly this pipeline with the attacks applied at the full resolution, so the network
learns the deployment path.
"""

from __future__ import annotations

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


class WatermarkModel(nn.Module):
    """Encoder + decoder + perceptual mask, working at ``encoder.size`` and applied at any size."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, amplitude: float = 6 / 255,
                 mask: dict | None = None):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.n_bits: int = encoder.n_bits
        self.size: int = encoder.size
        self.amplitude = float(amplitude)
        self.mask = PerceptualMask(**(mask or {}))

    def small_residual(self, small: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """The masked luma residual at the working resolution, from the cover resized to S x S."""
        return self.encoder(small, bits).float() * self.mask(small) * self.amplitude

    def residual(self, cover: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """The masked luma residual at full resolution (N x 1 x H x W), before the strength factor."""
        small = resize(cover, (self.size, self.size))
        return resize(self.small_residual(small, bits), tuple(cover.shape[-2:]))

    def embed(self, cover: torch.Tensor, bits: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """Marked image (N x 3 x H x W in [0, 1], not yet rounded) for covers of any size."""
        r = self.residual(cover, bits)
        return (cover + strength * r).clamp(0, 1)

    def decode(self, image: torch.Tensor) -> torch.Tensor:
        """Bit logits (N x L) from an image of any size."""
        return self.decoder(resize(image, (self.size, self.size)))

    def forward(self, cover: torch.Tensor, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        marked = self.embed(cover, bits)
        return marked, self.decode(marked)
