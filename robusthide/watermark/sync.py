"""Blind re-synchronisation: the searches extraction runs before decoding (this project's design).

Two searches: ``crop`` (below) for the whole-image models, and ``geometry`` for the periodic ``geo`` models
(:mod:`robusthide.nets.geo`): mirror x per-axis side fractions x every cyclic shift of the tile
(:func:`geometry_views`, :func:`search_logits`; docs/geometry.md). Both pay for their hypotheses in the
p-value (:func:`decode_search`).

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

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from robusthide.nets.watermark_model import resize

if TYPE_CHECKING:
    from robusthide.payload import DecodeResult

#: ``search`` modes of extraction: ``none`` (read the image as it is), ``crop`` (centred crops) and
#: ``geometry`` (flips x per-axis scales, for the translation-invariant ``geo`` models).
SEARCH_MODES = ("none", "crop", "geometry")
#: Per-axis scale hypotheses of the geometry search: the side fraction a crop kept, from 1 down to 0.53,
#: a ratio of 0.9 apart (the periodic ``geo`` models are trained with a +-5 % scale mismatch, so every
#: fraction in between lies within reach of one of them; :mod:`robusthide.attacks.geometric`).
GEOMETRY_SCALES = (1.0, 0.9, 0.81, 0.73, 0.66, 0.59, 0.53)
#: Rotation hypotheses of the geometry search, in degrees (the ``geo`` models are trained with +-2.5 deg).
GEOMETRY_ANGLES = (0.0,)
#: How many of the most confident hypotheses the geometry search tries to decode (the p-value still pays
#: for all of them).
GEOMETRY_TRIES = 64
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


def geometry_views(image: torch.Tensor, size: int, scales: tuple[float, ...] = GEOMETRY_SCALES,
                   angles: tuple[float, ...] = GEOMETRY_ANGLES,
                   flips: bool = True) -> tuple[torch.Tensor, list[dict[str, float | bool]]]:
    """The decoder inputs (H x C x S x S) for one image (1 x C x h x w in [0, 1]) under every geometry
    hypothesis, and the hypotheses (``flip``, ``angle``, ``kx``, ``ky``). For a hypothesis, the image
    (mirrored back when ``flip``, turned back by ``angle`` degrees) fills the central ``kx`` S x ``ky`` S
    box of the S x S canvas, the rest is its mean colour: a crop that kept side fractions ``(kx, ky)`` of
    the marked image then shows the mark at its original scale, which is what the periodic ``geo`` decoder
    folds (it finds the phase itself, so where the box sits does not matter). The image is first resized
    to 2S x 2S once (antialiased); every view is one ``grid_sample`` of it."""
    src = resize(image.float(), (2 * size, 2 * size))
    fill = src.mean(dim=(2, 3), keepdim=True)
    hyps: list[dict[str, float | bool]] = [{"flip": f, "angle": a, "kx": kx, "ky": ky}
                                           for f in ((False, True) if flips else (False,))
                                           for a in angles for kx in scales for ky in scales]
    n = len(hyps)
    dev, dt = src.device, src.dtype
    t = torch.tensor([-math.radians(float(h["angle"])) for h in hyps], dtype=dt, device=dev)
    kx = torch.tensor([float(h["kx"]) for h in hyps], dtype=dt, device=dev)
    ky = torch.tensor([float(h["ky"]) for h in hyps], dtype=dt, device=dev)
    sx = torch.tensor([-1.0 if h["flip"] else 1.0 for h in hyps], dtype=dt, device=dev)
    asp = image.shape[-1] / image.shape[-2]  # the rotation turns the image's pixels, not its normalised square
    theta = torch.zeros(n, 2, 3, dtype=dt, device=dev)  # canvas u -> image x = F R(-angle) (u / k)
    theta[:, 0, 0], theta[:, 0, 1] = sx * torch.cos(t) / kx, -sx * torch.sin(t) / asp / ky
    theta[:, 1, 0], theta[:, 1, 1] = asp * torch.sin(t) / kx, torch.cos(t) / ky
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    views = F.grid_sample((src - fill).expand(n, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
                          align_corners=False)
    u = (torch.arange(size, dtype=dt, device=dev) + 0.5) / size * 2 - 1
    inside = (u.abs()[None, None, :] <= kx[:, None, None]) & (u.abs()[None, :, None] <= ky[:, None, None])
    return views * inside[:, None].to(dt) + fill, hyps


@torch.no_grad()
def search_logits(decoder: torch.nn.Module, image: torch.Tensor, size: int,
                  search: str) -> tuple[torch.Tensor, list[dict[str, float | bool]]]:
    """Bit logits (H x L) of one image (1 x C x h x w in [0, 1]) under every hypothesis of ``search``
    (``crop`` or ``geometry``), and the hypotheses (``side`` for crops; ``flip``, ``angle``, ``kx``, ``ky``
    for geometry, and the tile phase ``shift`` (dy, dx) when the decoder reads every cyclic shift, as the
    periodic ``geo`` decoder does). Grayscale images are expanded to three channels."""
    mode = check_search(search)
    if mode == "crop":
        views, sides = centred_crop_views(image, size)
        hyps: list[dict[str, float | bool]] = [{"side": k} for k in sides]
    elif mode == "geometry":
        views, hyps = geometry_views(image, size)
    else:
        raise ValueError("search_logits needs a search mode other than 'none'")
    if views.shape[1] == 1:
        views = views.expand(-1, 3, -1, -1)
    if mode == "geometry" and hasattr(decoder, "all_shifts"):
        logits = torch.cat([decoder.all_shifts(v) for v in views.split(32)])  # H x P^2 x L
        p = int(round(logits.shape[1] ** 0.5))
        hyps = [{**h, "shift": (2 * (s // p), 2 * (s % p))} for h in hyps for s in range(p * p)]
        return logits.flatten(0, 1).float(), hyps
    return decoder(views).float(), hyps


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


def decode_search(logits: torch.Tensor, n_bits: int, threshold: float | None = None,
                  max_tries: int | None = None) -> tuple[DecodeResult, int]:
    """The payload of the best hypothesis (logits H x L) and its index: hypotheses are decoded from the most
    confident on (at most ``max_tries`` of them; None: all of them up to 1024 hypotheses, else
    :data:`GEOMETRY_TRIES`) until one is detected; its p-value is multiplied by H (Bonferroni over the
    search, tried or not), so ``detected`` (p <= ``threshold``, default the design rate 1e-6) keeps its
    false-positive bound. Returns a :class:`robusthide.payload.DecodeResult` with the corrected p-value,
    detection and confidence."""
    from robusthide.payload import decode_bits
    from robusthide.payload.detection import DEFAULT_FPR, confidence_from_p

    thr = DEFAULT_FPR if threshold is None else float(threshold)
    h = logits.shape[0]
    best = None
    tries = max_tries if max_tries is not None else (h if h <= 1024 else GEOMETRY_TRIES)
    for i in torch.argsort(logits.float().abs().mean(dim=1), descending=True)[:tries].tolist():
        r = decode_bits(torch.sigmoid(logits[i].float()).numpy(), n_bits, threshold=thr / h)
        p = min(1.0, r.p_value * h)
        if best is None or p < best[0]:
            best = (p, r, i)
        if r.ok and p <= thr:
            break
    p, r, i = best
    r.p_value, r.detected, r.confidence = p, bool(r.ok and p <= thr), confidence_from_p(p, thr)
    return r, i
