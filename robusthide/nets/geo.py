"""A periodic ("tiled") encoder/decoder pair for geometry-robust watermarks (this project's design).

The shipped default reads a fixed S x S resize of the whole image with a decoder whose last layer is
position-specific, so any crop off the centre moves every part of the mark and reads at chance. Here the
message is laid out in a *tile* of ``period`` x ``period`` working pixels that repeats over the working
canvas, so that any window of the marked image holds every part of the message, at some cyclic shift:

* :class:`TileEncoder` is the lean encoder (:mod:`robusthide.nets.lean`) with a periodic message map: the
  "message processor" (a linear layer, as in MBRS) writes the bits into one tile of ``msg_ch`` x g x g
  cells, and that tile is repeated over the feature map; every other layer is a convolution, so the
  residual is periodic up to the content it adapts to.
* :class:`TileDecoder` extracts features at half resolution, folds them onto one tile (the average of every
  position with the same phase, weighted by a learned presence score: the tiles of a partial crop, or of
  the canvas the extractor fills around it, count as much as they carry), and reads the bits from the
  folded tile with a position-specific linear layer, as the lean decoder does from its 16 x 16 map. During
  training the tile grid is where the encoder put it (phase 0); :meth:`TileDecoder.all_shifts` reads every
  cyclic shift at once (a circular cross-correlation through the FFT), which is how the extractor finds
  the phase of a crop taken anywhere (:mod:`robusthide.watermark.sync`).

This is the classical periodic watermark with a self-synchronising fold (Kutter 1999), with the carriers
and the readout learned against real codecs as the default model's are.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from robusthide.nets.lean import ResBlock, conv
from robusthide.nets.registry import register_model

if TYPE_CHECKING:
    from collections.abc import Sequence


class TileEncoder(nn.Module):
    """(cover N x 3 x S x S in [0,1], bits N x L in {0,1}) -> luma residual N x 1 x S x S (about +-1), periodic
    with period ``period`` working pixels up to the content. Messages use the payload schema ``robust``
    by default (256 bits: 72 data bits, BCH t = 21, decoded past t by ordered-statistics decoding)."""

    default_schema = "robust"

    def __init__(self, n_bits: int = 256, size: int = 128, ch: int = 32, msg_ch: int = 16, blocks: int = 3,
                 period: int = 32):
        super().__init__()
        if period % 4 or size % period:
            raise ValueError(f"period must be a multiple of 4 dividing size {size}, got {period}")
        self.n_bits, self.size, self.period, self.msg_ch = n_bits, size, period, msg_ch
        self.grid = period // 4  # message cells of 2 x 2 feature pixels (4 x 4 working pixels)
        self.msg_fc = nn.Linear(n_bits, msg_ch * self.grid * self.grid)
        self.stem = nn.Sequential(conv(3, ch, 2), conv(ch, ch))
        self.fuse = conv(ch + msg_ch, ch)
        self.body = nn.Sequential(*[ResBlock(ch) for _ in range(blocks)])
        self.up = nn.Sequential(nn.Conv2d(ch, 4 * 16, 3, 1, 1), nn.PixelShuffle(2), nn.SiLU(inplace=True))
        self.head = nn.Sequential(conv(16 + 3, 16), nn.Conv2d(16, 1, 3, 1, 1))

    def message_map(self, bits: torch.Tensor, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
        """The message tile (N x msg_ch x period/2 x period/2 at feature resolution) repeated over h x w."""
        n = bits.shape[0]
        m = self.msg_fc(bits.to(dtype) * 2 - 1).view(n, self.msg_ch, self.grid, self.grid)
        m = F.interpolate(m, scale_factor=2, mode="nearest")
        reps = (-(-h // m.shape[-2]), -(-w // m.shape[-1]))
        return m.repeat(1, 1, *reps)[..., :h, :w]

    def forward(self, cover: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        x = cover * 2 - 1
        f = self.stem(x)
        m = self.message_map(bits, f.shape[-2], f.shape[-1], f.dtype)
        f = self.body(self.fuse(torch.cat([f, m], 1)))
        return self.head(torch.cat([self.up(f), x], 1))


class BlurDown(nn.Sequential):
    """``conv(cin, cout, 2)`` made tolerant of one-pixel shifts: the same layers at stride 1, then a
    [1 2 1] x [1 2 1] / 16 blur subsampled by 2 ("BlurPool", Zhang 2019, *Making convolutional networks
    shift-invariant again*, §3). A plain stride-2 convolution sees a different sampling of the mark after an
    odd shift, and the periodic decoder's cyclic shifts move by whole feature pixels (2 working pixels), so
    without it odd translations read at chance (docs/geometry.md). Same parameters, same state-dict keys."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, 1, 1), nn.SiLU(inplace=True))
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("blur", ((k[:, None] * k[None]) / 16).expand(cout, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return F.conv2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), self.blur.to(y.dtype), stride=2, groups=y.shape[1])


def fold(features: torch.Tensor, weights: torch.Tensor, period: int) -> torch.Tensor:
    """Fold N x C x h x w features onto one ``period`` x ``period`` tile: the ``weights``-weighted mean
    (N x 1 x h x w, >= 0) of every position with the same phase (position mod ``period``; h and w are cut
    to multiples of ``period``)."""
    n, c, h, w = features.shape
    th, tw = h // period, w // period
    f = (features * weights)[..., :th * period, :tw * period].reshape(n, c, th, period, tw, period)
    wt = weights[..., :th * period, :tw * period].reshape(n, 1, th, period, tw, period)
    return f.sum(dim=(2, 4)) / wt.sum(dim=(2, 4)).clamp_min(1e-6)


def phase_assignment(n: int, period: int, ratios: Sequence[float], offsets: Sequence[float] = (0.0,)) -> torch.Tensor:
    """Bilinear phase-assignment matrices of a fold at fractional periods: for every (ratio r, offset o), the
    ``period`` x ``n`` matrix that sends position y (counted from the centre, ``y - n // 2``) to the phase
    ``(r y + o) mod period``, split between its two neighbouring integer phases. Returns
    (len(ratios) * len(offsets)) x ``period`` x ``n``, ratios outer. Ratio 1 and offset 0 give the integer
    fold of :func:`fold` up to a cyclic shift; a ratio r folds a mark whose period is ``period`` / r."""
    return _phase_assignment(int(n), int(period), tuple(float(r) for r in ratios),
                             tuple(float(o) for o in offsets)).clone()


@lru_cache(maxsize=512)
def _phase_assignment(n: int, period: int, ratios: tuple[float, ...], offsets: tuple[float, ...]) -> torch.Tensor:
    y = torch.arange(n, dtype=torch.float64) - n // 2
    r = torch.tensor(ratios, dtype=torch.float64).repeat_interleave(len(offsets))[:, None]
    o = torch.tensor(offsets, dtype=torch.float64).repeat(len(ratios))[:, None]
    ph = (y[None] * r + o) % period  # (R O) x n
    lo = ph.floor()
    fr = (ph - lo).float()[:, None]
    lo = lo.long()[:, None]
    m = torch.zeros(ph.shape[0], period, n)
    m.scatter_add_(1, lo % period, 1 - fr)
    m.scatter_add_(1, (lo + 1) % period, fr)
    return m


def fractional_fold(features: torch.Tensor, weights: torch.Tensor, by: torch.Tensor,
                    bx: torch.Tensor) -> torch.Tensor:
    """:func:`fold` at every pair of fractional periods at once: ``features`` N x C x h x w, ``weights``
    N x 1 x h x w, phase assignments ``by`` (Ry x P x h) and ``bx`` (Rx x P x w) from
    :func:`phase_assignment`. The fold is separable, ``B_y (f w) B_x^T / B_y w B_x^T``, so every (row ratio,
    column ratio) pair costs two matrix products. Returns N x Ry x Rx x C x P x P."""
    ry, p, _ = by.shape
    rx = bx.shape[0]
    my, mxt = by.flatten(0, 1), bx.flatten(0, 1).T
    t = my @ (features * weights) @ mxt  # N x C x (Ry P) x (Rx P)
    wt = my @ weights[:, 0] @ mxt
    t = t / wt[:, None].clamp_min(1e-9)
    n, c = t.shape[:2]
    return t.view(n, c, ry, p, rx, p).permute(0, 2, 4, 1, 3, 5)


class TileDecoder(nn.Module):
    """image N x 3 x S x S in [0,1] -> bit logits N x L (positive = bit 1) read from the folded tile at phase 0;
    :meth:`all_shifts` reads every cyclic shift. Extraction searches geometry by default. ``antialias``: the
    first layer is a :class:`BlurDown` (shift-tolerant) instead of a stride-2 convolution."""

    default_search = "geometry"

    def __init__(self, n_bits: int = 256, size: int = 128, ch: int = 32, feat_ch: int = 16, blocks: int = 3,
                 period: int = 32, antialias: bool = False):
        super().__init__()
        self.n_bits, self.size, self.period = n_bits, size, period
        self.tile = period // 2  # at feature resolution
        first = BlurDown(3, ch) if antialias else conv(3, ch, 2)
        self.features = nn.Sequential(first, conv(ch, ch), *[ResBlock(ch) for _ in range(blocks)])
        self.to_feat = nn.Conv2d(ch, feat_ch + 1, 3, 1, 1)
        self.fc = nn.Linear(feat_ch * self.tile * self.tile, n_bits)

    def feature_maps(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The features (N x feat_ch x h/2 x w/2) and the fold's presence weights (N x 1 x h/2 x w/2, summing
        to 1 per image)."""
        out = self.to_feat(self.features(img * 2 - 1)).float()
        f, s = out[:, :-1], out[:, -1:]
        return f, torch.softmax(s.flatten(1), 1).view_as(s)

    def folded(self, img: torch.Tensor) -> torch.Tensor:
        """The presence-weighted fold of the features (N x feat_ch x tile x tile)."""
        return fold(*self.feature_maps(img), self.tile)

    def presence(self, img: torch.Tensor) -> torch.Tensor:
        """Where the mark is: the fold's weights (N x 1 x h/2 x w/2, summing to 1 per image)."""
        return self.feature_maps(img)[1]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.fc(self.folded(img).flatten(1))

    def all_shifts(self, img: torch.Tensor) -> torch.Tensor:
        """Bit logits for every cyclic shift of the tile (N x tile^2 x L; shift (dy, dx) at index
        ``dy * tile + dx``): the folded tile rolled by (-dy, -dx) then read by :attr:`fc`, computed for
        all shifts at once as a circular cross-correlation in the Fourier domain."""
        return self.shift_logits(self.folded(img))

    def shift_logits(self, t: torch.Tensor) -> torch.Tensor:
        """:meth:`all_shifts` of folded tiles (N x C x P x P) rather than of images."""
        n, c, p, _ = t.shape
        k = self.fc.weight.float().view(self.n_bits, c, p, p)
        spec = torch.einsum("ncyx,lcyx->nlyx", torch.fft.fft2(t), torch.fft.fft2(k).conj())
        corr = torch.fft.ifft2(spec).real  # corr[n, l, s] = sum_q k[l, q] t[n, q + s]
        return corr.flatten(2).transpose(1, 2) + self.fc.bias.float()


@register_model("geo")
def geo(n_bits: int = 256, size: int = 128, ch: int = 32, enc_blocks: int = 3, dec_blocks: int = 3,
        msg_ch: int = 16, feat_ch: int = 16, period: int = 32, antialias: bool = False, **kw) -> nn.Module:
    """The periodic watermarking model (see :class:`robusthide.nets.watermark_model.WatermarkModel` for the
    residual-upsampling scheme it runs in); ``antialias``: the decoder's :class:`BlurDown` first layer."""
    from robusthide.nets.watermark_model import WatermarkModel

    return WatermarkModel(TileEncoder(n_bits, size, ch, msg_ch, enc_blocks, period),
                          TileDecoder(n_bits, size, ch, feat_ch, dec_blocks, period, antialias), **kw)
