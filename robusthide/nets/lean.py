"""A lean encoder/decoder family for CPU training (this project's design, not from a paper).

Designed for speed on a few CPU cores: an early stride-2 convolution so most work runs at half
resolution (``stem_stride=4``: a quarter), 32-48 channels, no normalisation layers (so there is no
train/eval mismatch, the failure users of the HiDDeN code report), SiLU activations. The message enters
through a linear "message processor" to a 16 x 16 map (as MBRS does) and is read out by a linear layer
on a 16 x 16 feature map.

The encoder outputs a one-channel (luma) residual, linear (no tanh: a bounded output saturates while the
message path warms up without image loss, and saturated units get no gradient when the image loss
arrives; the image loss bounds it instead). The chroma-free residual is a
deliberate choice: colour streaks were the visible artefact of the first models, and 4:2:0 JPEG discards
most chroma detail anyway.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robusthide.nets.registry import register_model


def conv(cin: int, cout: int, stride: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride, 1)]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.c2 = nn.Conv2d(ch, ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(F.silu(self.c1(x)))


class LeanEncoder(nn.Module):
    """(cover N x 3 x S x S in [0,1], bits N x L in {0,1}) -> luma residual N x 1 x S x S (about +-1)."""

    def __init__(self, n_bits: int = 64, size: int = 128, ch: int = 32, msg_ch: int = 16, blocks: int = 3,
                 stem_stride: int = 2):
        super().__init__()
        if size % 16:
            raise ValueError(f"size must be a multiple of 16, got {size}")
        if stem_stride not in (2, 4):
            raise ValueError(f"stem_stride must be 2 or 4, got {stem_stride}")
        self.n_bits, self.size, self.msg_ch = n_bits, size, msg_ch
        self.grid = min(16, size // 2)
        self.msg_fc = nn.Linear(n_bits, msg_ch * self.grid * self.grid)
        # stride 2: body at S/2 (the shipped default model's layout); 4: at S/4, about 2.5x fewer operations.
        # Modules are created in the same order for both, so a seed gives the stride-2 model it always gave.
        self.stem = nn.Sequential(conv(3, ch, 2), conv(ch, ch, stem_stride // 2))
        self.fuse = conv(ch + msg_ch, ch)
        self.body = nn.Sequential(*[ResBlock(ch) for _ in range(blocks)])
        ups: list[nn.Module] = []
        for i in range(stem_stride // 2):
            ups += [nn.Conv2d(ch if i == 0 else 16, 4 * 16, 3, 1, 1), nn.PixelShuffle(2), nn.SiLU(inplace=True)]
        self.up = nn.Sequential(*ups)
        self.head = nn.Sequential(conv(16 + 3, 16), nn.Conv2d(16, 1, 3, 1, 1))

    def forward(self, cover: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        n, _, h, w = cover.shape
        x = cover * 2 - 1
        f = self.stem(x)
        m = self.msg_fc(bits.to(f.dtype) * 2 - 1).view(n, self.msg_ch, self.grid, self.grid)
        m = F.interpolate(m, size=f.shape[-2:], mode="nearest")
        f = self.body(self.fuse(torch.cat([f, m], 1)))
        f = self.up(f)
        return self.head(torch.cat([f, x], 1))


class LeanDecoder(nn.Module):
    """image N x 3 x S x S in [0,1] -> bit logits N x L (positive = bit 1)."""

    def __init__(self, n_bits: int = 64, size: int = 128, ch: int = 32, blocks: int = 2, map_ch: int = 4):
        super().__init__()
        if size % 16:
            raise ValueError(f"size must be a multiple of 16, got {size}")
        self.n_bits, self.size = n_bits, size
        c2 = ch * 2
        downs = [conv(3, ch, 2), conv(ch, c2, 2)]
        s = size // 4
        while s > 16:
            downs.append(conv(c2, c2, 2))
            s //= 2
        self.features = nn.Sequential(*downs, *[ResBlock(c2) for _ in range(blocks)])
        self.to_map = nn.Conv2d(c2, map_ch, 3, 1, 1)
        self.fc = nn.Linear(map_ch * s * s, n_bits)
        self.map_side = s

    @property
    def stride(self) -> int:
        """Working pixels per cell of the bit map (:meth:`bit_map`): 8 at the default size 128."""
        return self.size // self.map_side

    def bit_map(self, img: torch.Tensor) -> torch.Tensor:
        """The convolutional part: image N x 3 x h x w -> map N x 4 x h/stride x w/stride. Convolutions only, so
        a picture wider than S gives the maps of all its S-wide windows at once, ``stride`` pixels apart (up to
        their edges' padding): the slide search reads many placements of one band from one wide canvas."""
        return self.to_map(self.features(img * 2 - 1))

    def read_map(self, f: torch.Tensor) -> torch.Tensor:
        """Bit logits N x L of maps N x 4 x s x s (:meth:`bit_map` of S x S images)."""
        return self.fc(f.flatten(1).float())

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.read_map(self.bit_map(img))


@register_model("lean", forwards_to="robusthide.nets.watermark_model:WatermarkModel")
def lean(n_bits: int = 64, size: int = 128, ch: int = 32, enc_blocks: int = 3, dec_blocks: int = 2,
         stem_stride: int = 2, map_ch: int = 4, **kw) -> nn.Module:
    """The lean watermarking model (see :class:`robusthide.nets.watermark_model.WatermarkModel`);
    ``stem_stride`` 4 runs the encoder body at a quarter of the working resolution (faster); ``map_ch``: channels
    of the decoder's bit map (4 in every shipped model; more gives the last layer more values per bit)."""
    from robusthide.nets.watermark_model import WatermarkModel

    return WatermarkModel(LeanEncoder(n_bits, size, ch, blocks=enc_blocks, stem_stride=stem_stride),
                          LeanDecoder(n_bits, size, ch, blocks=dec_blocks, map_ch=map_ch), **kw)
