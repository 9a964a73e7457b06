"""MBRS (Jia et al. 2021, paper 002 §3.1 and §4.3.5; structure of its public code per ANCHORS.md).

With L message bits, s = sqrt(L) and k = log2(H / s) (paper 002 §3.1: L = (H / 2^k) x (W / 2^k)):

* Encoder (64 channels, ``blocks`` = 4): image -> ConvBNReLU -> ``blocks`` SE blocks. Message processor:
  message reshaped to 1 x s x s -> ConvBNReLU -> k transposed convolutions (kernel 2, stride 2, each
  doubling H and W) -> max(blocks - k, 1) SE blocks; then ``blocks`` SE blocks on the message map.
  Concatenate both -> ConvBNReLU -> concatenate the raw image -> 1x1 convolution to 3 = encoded image.
* Decoder: ConvBNReLU -> SE block -> k stages of (SE block, stride-2 SE block doubling the channels) down
  to s x s -> ConvBNReLU back to 64 -> max(blocks - k, 0) SE blocks -> 3x3 convolution to 1 channel ->
  flatten to L. MBRS's code ends in ConvBNReLU, so its outputs are >= 0 (a bug: a bit can never be
  pushed below 0); here the last layer is a plain convolution and its outputs are logits (positive = 1).
* Diffusion variant against crop (paper 002 §4.3.5, ``diffusion=True``): Linear(L -> 256) reshaped to
  16 x 16 before the message processor (so s = 16, any L), Linear(256 -> L) after the decoder.
* Discriminator: 4 ConvBNReLU (64) -> global average pool -> Linear(64, 1).

The message processor expands s x s to exactly ``size`` x ``size`` and the decoder flattens an s x s map,
so both nets are tied to ``size`` (``fixed_size = True``):
:class:`~robusthide.nets.image_model.FullResolutionModel` resizes other images to ``size`` and upsamples
the residual, as :class:`~robusthide.nets.watermark_model.WatermarkModel` does.

As for HiDDeN: images enter as [0, 1] and are mapped to [-1, 1] inside, the message enters as +-1 (MBRS
feeds {0, 1}), the last 1x1 convolution of the encoder runs in float32 under autocast. Strength factor
(paper 002 §3.3): ``embed(cover, bits, strength=S)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robusthide.nets.blocks import (
    ArchitectureError,
    ConvBNReLU,
    SEBottleneck,
    conv_stack,
    run_fp32,
    se_stack,
    up_stack,
)
from robusthide.nets.image_model import FullResolutionModel
from robusthide.nets.registry import register_model


def mbrs_geometry(n_bits: int, size: int, diffusion: bool = False, diffusion_length: int = 256) -> tuple[int, int]:
    """(s, k): the side of the message map and the number of x2 scale steps between it and ``size``.

    Raises :class:`ArchitectureError` (a ValueError) when L (or ``diffusion_length``) is not a perfect square
    or ``size / s`` is not a power of two.
    """
    if n_bits < 1:
        raise ArchitectureError(f"mbrs: n_bits must be >= 1, got {n_bits}")
    length = diffusion_length if diffusion else n_bits
    s = math.isqrt(length)
    if s * s != length:
        if diffusion:
            raise ArchitectureError(f"mbrs: diffusion_length must be a perfect square, got {diffusion_length}")
        raise ArchitectureError(f"mbrs: the message length must be a perfect square without diffusion "
                                f"(got n_bits={n_bits}); use diffusion=True for other lengths")
    ratio = size // s
    if ratio < 1 or size % s or ratio & (ratio - 1):
        raise ArchitectureError(f"mbrs: size / sqrt({'diffusion_length' if diffusion else 'n_bits'}) must be "
                                f"a power of two (size={size}, sqrt={s})")
    return s, ratio.bit_length() - 1


class MBRSEncoder(nn.Module):
    """(cover N x 3 x S x S in [0, 1], bits N x L in {0, 1}) -> encoded image N x 3 x S x S (about [0, 1])."""

    fixed_size = True

    def __init__(self, n_bits: int = 64, size: int = 128, ch: int = 64, blocks: int = 4,
                 diffusion: bool = False, diffusion_length: int = 256):
        super().__init__()
        self.side, k = mbrs_geometry(n_bits, size, diffusion, diffusion_length)
        self.n_bits, self.size = n_bits, size
        self.diffusion = nn.Linear(n_bits, diffusion_length) if diffusion else None
        self.image_pre = ConvBNReLU(3, ch)
        self.image_blocks = se_stack(ch, ch, blocks)
        self.message_processor = nn.Sequential(ConvBNReLU(1, ch), up_stack(ch, ch, k),
                                               se_stack(ch, ch, max(blocks - k, 1)))
        self.message_blocks = se_stack(ch, ch, blocks)
        self.after_concat = ConvBNReLU(2 * ch, ch)
        self.final = nn.Conv2d(ch + 3, 3, 1)

    def forward(self, cover: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        n, _, h, w = cover.shape
        if (h, w) != (self.size, self.size):
            raise ArchitectureError(f"MBRSEncoder works at {self.size}x{self.size}, got {h}x{w} "
                                    "(use FullResolutionModel.embed for other sizes)")
        x = cover * 2 - 1
        f = self.image_blocks(self.image_pre(x))
        m = bits.to(x.dtype) * 2 - 1
        if self.diffusion is not None:
            m = self.diffusion(m)
        m = self.message_blocks(self.message_processor(m.reshape(n, 1, self.side, self.side)))
        g = self.after_concat(torch.cat([f, m.to(f.dtype)], 1))
        return (run_fp32(self.final, torch.cat([g.float(), x.float()], 1)) + 1) / 2


class MBRSDecoder(nn.Module):
    """image N x 3 x S x S in [0, 1] -> bit logits N x L (no final ReLU: logits of either sign)."""

    fixed_size = True

    def __init__(self, n_bits: int = 64, size: int = 128, ch: int = 64, blocks: int = 4,
                 diffusion: bool = False, diffusion_length: int = 256):
        super().__init__()
        self.side, k = mbrs_geometry(n_bits, size, diffusion, diffusion_length)
        self.n_bits, self.size = n_bits, size
        layers: list[nn.Module] = [ConvBNReLU(3, ch), SEBottleneck(ch, ch)]
        c = ch
        for _ in range(k):
            layers += [SEBottleneck(c, c), SEBottleneck(c, 2 * c, stride=2)]
            c *= 2
        layers += [ConvBNReLU(c, ch), se_stack(ch, ch, max(blocks - k, 0))]
        self.features = nn.Sequential(*layers)
        self.to_bits = nn.Conv2d(ch, 1, 3, 1, 1)
        self.inverse_diffusion = nn.Linear(diffusion_length, n_bits) if diffusion else None

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        if (h, w) != (self.size, self.size):
            raise ArchitectureError(f"MBRSDecoder works at {self.size}x{self.size}, got {h}x{w} "
                                    "(use FullResolutionModel.decode for other sizes)")
        x = self.to_bits(self.features(img * 2 - 1)).flatten(1)
        if self.inverse_diffusion is not None:
            x = self.inverse_diffusion(x)
        return x


class MBRSDiscriminator(nn.Module):
    """image N x 3 x H x W in [0, 1] -> logit N x 1; positive = "a cover" (cover label 1, marked 0)."""

    def __init__(self, ch: int = 64, blocks: int = 4):
        super().__init__()
        self.features = nn.Sequential(conv_stack(3, ch, blocks), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(ch, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(img * 2 - 1).flatten(1))


@register_model("mbrs")
def mbrs(n_bits: int = 64, size: int = 128, ch: int = 64, blocks: int = 4, diffusion: bool = False,
         diffusion_length: int = 256, disc_blocks: int = 4, discriminator: bool = True,
         amplitude: float | None = None) -> nn.Module:
    """MBRS as a :class:`~robusthide.nets.image_model.FullResolutionModel` (nets at ``size`` x ``size``).

    L = ``n_bits`` must be a perfect square with size / sqrt(L) a power of two, unless ``diffusion=True``
    (then ``diffusion_length``, 256 in the paper, must be). ``discriminator=False`` leaves the adversary out.
    ``amplitude`` is accepted and ignored (see :func:`robusthide.nets.hidden.hidden`).
    """
    del amplitude
    if ch < 1 or blocks < 1 or disc_blocks < 1:
        raise ArchitectureError(f"mbrs: ch and block counts must be >= 1 (ch={ch}, blocks={blocks})")
    return FullResolutionModel(
        MBRSEncoder(n_bits, size, ch, blocks, diffusion, diffusion_length),
        MBRSDecoder(n_bits, size, ch, blocks, diffusion, diffusion_length),
        MBRSDiscriminator(ch, disc_blocks) if discriminator else None,
    )
