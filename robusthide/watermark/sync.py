"""Blind re-synchronisation after a centred crop (this project's design, not from a paper).

The decoder reads a fixed S x S resize of the whole image. A platform that crops the centre of a photo
and resizes it back (a zoom) moves every part of the mark: after a crop keeping 96 % of the area the
default model reads 20 % of the bits wrong, after 90 % 35 %. Placed back where it was in the original
frame, the same crop reads almost every bit (0 % after a crop keeping 90 % of the area, 0.6 % at 70 %),
because the mark is spread over the whole image (docs/results/default-crops.md and
default-crops-search.md, commands in the default model's card).

The search tries every frame the image could be the centre of: for each side fraction k from
``min_side`` to 1 in steps of 1 / (``oversample`` x S) (the decoder needs the alignment to about a
quarter of a working-size pixel), the image is shrunk to k of a 2S x 2S view, placed in its centre, the
rest filled with the image's mean colour (one ``grid_sample`` for all k), and the view resized to S x S
as the decoder reads any image. Every hypothesis is decoded in one batch; :func:`most_confident` picks
the one with the largest mean absolute logit. The detection test pays for the search:
:meth:`robusthide.watermark.watermarker.Watermarker.extract` multiplies the p-value by the number of
hypotheses (Bonferroni), so the false-positive rate stays within its design bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from robusthide.nets.watermark_model import resize

if TYPE_CHECKING:
    from robusthide.payload import DecodeResult

#: ``search`` modes of extraction: ``none`` (read the image as it is) and ``crop`` (centred crops).
SEARCH_MODES = ("none", "crop")
#: Smallest side fraction the crop search tries (0.8: 64 % of the area kept).
MIN_SIDE = 0.8


def check_search(search: str | None) -> str:
    """``search`` normalised (None -> ``none``), or a ValueError naming the modes."""
    s = "none" if search is None else str(search)
    if s not in SEARCH_MODES:
        raise ValueError(f"search must be one of {', '.join(SEARCH_MODES)}, got {search!r}")
    return s


def side_fractions(size: int, min_side: float = MIN_SIDE, oversample: int = 4) -> list[float]:
    """The side fractions k the crop search tries: 1, 1 - d, 1 - 2d, ... down to ``min_side``, with
    d = 1 / (``oversample`` x S): the decoder needs the frame aligned to about a quarter of a working-size
    pixel."""
    if not 0 < min_side <= 1:
        raise ValueError(f"min_side must be in (0, 1], got {min_side}")
    step = oversample * size
    return [1 - i / step for i in range(int(round((1 - min_side) * step)) + 1)]


def centred_crop_views(image: torch.Tensor, size: int, min_side: float = MIN_SIDE, oversample: int = 4,
                       render: int = 2) -> tuple[torch.Tensor, list[float]]:
    """The decoder inputs (H x C x S x S) for one image (1 x C x h x w in [0, 1]) under every centred-crop
    hypothesis, and the side fraction k of each (1.0 first). Each view is rendered at ``render`` x S: the
    image, resized to that size once (antialiased), is sampled bilinearly into the central k x k square of
    the view, the rest is the image's mean colour; the views are then resized to S x S (antialiased) as the
    decoder always reads an image."""
    x = image.float()
    r = render * size
    src = resize(x, (r, r))
    fill = x.mean(dim=(2, 3), keepdim=True)
    sides = side_fractions(size, min_side, oversample)
    k = torch.tensor(sides, dtype=src.dtype, device=src.device).view(-1, 1, 1, 1)
    t = (torch.arange(r, dtype=src.dtype, device=src.device) + 0.5) / r * 2 - 1  # pixel centres in [-1, 1]
    grid = torch.stack(torch.broadcast_tensors(t.view(1, -1), t.view(-1, 1)), dim=-1)[None] / k
    views = F.grid_sample((src - fill).expand(len(sides), -1, -1, -1), grid, mode="bilinear",
                          padding_mode="zeros", align_corners=False) + fill
    return resize(views, (size, size)), sides


def most_confident(logits: torch.Tensor) -> int:
    """Index of the hypothesis whose logits (H x L) have the largest mean absolute value."""
    return int(logits.float().abs().mean(dim=1).argmax())


@torch.no_grad()
def crop_search_logits(decoder: torch.nn.Module, image: torch.Tensor, size: int,
                       min_side: float = MIN_SIDE) -> tuple[torch.Tensor, list[float]]:
    """Bit logits (H x L) of one image (1 x C x h x w) under every centred-crop hypothesis, and their sides."""
    views, sides = centred_crop_views(image, size, min_side)
    if views.shape[1] == 1:
        views = views.expand(-1, 3, -1, -1)
    return decoder(views).float(), sides


def decode_search(logits: torch.Tensor, n_bits: int, threshold: float | None = None) -> tuple[DecodeResult, int]:
    """The payload of the best hypothesis (logits H x L) and its index: hypotheses are decoded from the most
    confident on until one is detected; its p-value is multiplied by H (Bonferroni over the search), so
    ``detected`` (p <= ``threshold``, default the design rate 1e-6) keeps its false-positive bound. Returns
    a :class:`robusthide.payload.DecodeResult` with the corrected p-value, detection and confidence."""
    from robusthide.payload import decode_bits
    from robusthide.payload.detection import DEFAULT_FPR, confidence_from_p

    thr = DEFAULT_FPR if threshold is None else float(threshold)
    h = logits.shape[0]
    best = None
    for i in torch.argsort(logits.float().abs().mean(dim=1), descending=True).tolist():
        r = decode_bits(torch.sigmoid(logits[i].float()).numpy(), n_bits, threshold=thr / h)
        p = min(1.0, r.p_value * h)
        if best is None or p < best[0]:
            best = (p, r, i)
        if r.ok and p <= thr:
            break
    p, r, i = best
    r.p_value, r.detected, r.confidence = p, bool(r.ok and p <= thr), confidence_from_p(p, thr)
    return r, i
