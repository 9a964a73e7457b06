"""The ``anywhere`` search: a crop kept anywhere in the frame, its aspect ratio kept (this project's design).

A phone editor's free crop with the aspect locked keeps the fraction k of each side of the photo at any place,
not only at the centre (the ``crop`` search) or at a corner (the ``corner`` search). Placed back where it was in
the frame, the rest filled with its mean colour, a whole-image model reads it as it reads those (issue 19).
Here the place is unknown in two dimensions as well as k, so the hypotheses are a three-dimensional grid:
k = 1 - ``scale_step`` ... ``min_side``, and at each k the box centre (``ox``, ``oy``, canvas half-sides) on a
square grid of spacing at most ``step`` over ``|o| <= 1 - k`` (:func:`anywhere_hypotheses`).

How fine that grid must be is the decoder's position tolerance: a hypothesis off by more than it reads the mark
at chance. The default model reads a picture moved by a quarter of a working pixel as at its place and loses a
quarter of the reads at half a pixel (docs/results/shift-tolerance.md), so the grid has one-pixel spacing and
13 540 rows per image; a decoder that tolerated two pixels would need a grid of two pixels and steps of 0.024 in k,
1 650 rows. The spacings are therefore arguments.

The rows are read as :func:`robusthide.watermark.sync.slide_logits` reads its bands, in two dimensions: a
decoder with a convolutional bit map (``bit_map``, ``read_map``, ``stride``) reads every placement of one k that
lies a whole number of map cells (``stride`` working pixels) from another in one pass over a canvas (S + n x
stride) wide and high (:func:`anywhere_canvases`), one canvas per pair of sub-cell phases, in bf16 where the
device has it; the most confident rows are read again in float32 from their own views (:func:`affine_views`).
The p-value pays for every row (Bonferroni), tried or not.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from robusthide.nets.watermark_model import resize

if TYPE_CHECKING:
    from collections.abc import Sequence

#: the largest spacing of the box centres (canvas half-sides): a working pixel at the size 128
ANYWHERE_STEP = 2 / 128
#: the spacing of the side fraction k
ANYWHERE_SCALE_STEP = 0.012
#: the smallest side fraction tried (0.7: half of the area)
ANYWHERE_MIN_SIDE = 0.7


def _spacing(window: float, step: float) -> float:
    """The largest spacing at most ``step`` that divides ``window`` (a whole number of rows per map cell)."""
    return window / math.ceil(window / step - 1e-9)


def anywhere_hypotheses(window: float, step: float = ANYWHERE_STEP, scale_step: float = ANYWHERE_SCALE_STEP,
                        min_side: float = ANYWHERE_MIN_SIDE) -> list[dict[str, Any]]:
    """The hypotheses of the ``anywhere`` search: for each side fraction k = 1 - ``scale_step`` ... ``min_side``,
    the box centre at ``ox`` = -(1 - k) + i d and ``oy`` = -(1 - k) + j d (canvas half-sides, up to 1 - k), d the
    largest spacing at most ``step`` that divides ``window`` (the decoder's map cell, ``2 x stride / S``). Each row
    has ``kx = ky = k``, ``ox``, ``oy``, ``anywhere_side`` (k), ``position`` (x, y: 0 at the start of the frame, 1
    at its end, the ``x=`` and ``y=`` of the ``crop`` codec), ``angle`` 0 and ``flip`` False."""
    if not 0 < min_side < 1 or not 0 < scale_step < 1 or not 0 < step < 1 or not window > 0:
        raise ValueError(f"min_side, scale_step and step must be in (0, 1) and window positive, "
                         f"got {min_side}, {scale_step}, {step}, {window}")
    d = _spacing(window, step)
    ks = [1 - scale_step * i for i in range(1, int(math.floor((1 - min_side) / scale_step + 1e-9)) + 1)]
    out = []
    for k in ks:
        offs = [-(1 - k) + d * i for i in range(math.floor(2 * (1 - k) / d + 1e-9) + 1)]
        for oy in offs:
            for ox in offs:
                out.append({"flip": False, "angle": 0.0, "kx": k, "ky": k, "ox": ox, "oy": oy,
                            "anywhere_side": round(k, 4),
                            "position": (round((ox + 1 - k) / (2 * (1 - k)), 4),
                                         round((oy + 1 - k) / (2 * (1 - k)), 4))})
    return out


def anywhere_text(geo: dict[str, Any]) -> str:
    """Where an ``anywhere`` hypothesis puts the image, in words: "a crop of 0.800 of each side at (0.25, 0.60)"."""
    px, py = geo["position"]
    return f"a crop of {float(geo['anywhere_side']):.3f} of each side at ({px:.2f}, {py:.2f})"


def anywhere_canvases(src: torch.Tensor, fill: torch.Tensor, size: int, k: float,
                      centres: Sequence[tuple[float, float]], height: int, width: int) -> torch.Tensor:
    """Canvases (P x C x ``height`` x ``width``) showing ``src`` (the image resized to 2S x 2S, less its mean
    ``fill``) as the fraction k of each side of the frame, its box centred at each (cx, cy) of ``centres``
    (canvas half-sides of the first S x S window), sampled as :func:`affine_views` samples a box, the rest
    ``fill``: the canvas' window starting (a, b) x stride pixels on shows the box (b, a) x 2 x stride / S
    earlier."""
    dev, dt = src.device, src.dtype
    ux = (torch.arange(width, dtype=dt, device=dev) + 0.5) / size * 2 - 1
    uy = (torch.arange(height, dtype=dt, device=dev) + 0.5) / size * 2 - 1
    cx = torch.tensor([c[0] for c in centres], dtype=dt, device=dev).view(-1, 1)
    cy = torch.tensor([c[1] for c in centres], dtype=dt, device=dev).view(-1, 1)
    gx, gy = (ux.view(1, -1) - cx) / k, (uy.view(1, -1) - cy) / k  # P x W, P x H
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    views = F.grid_sample((src - fill).expand(len(centres), -1, -1, -1), grid, mode="bilinear",
                          padding_mode="zeros", align_corners=False)
    inside = (gy.abs() <= 1)[:, None, :, None] & (gx.abs() <= 1)[:, None, None, :]
    return views * inside.to(dt) + fill


@torch.no_grad()
def anywhere_logits(decoder: torch.nn.Module, image: torch.Tensor, size: int, hyps: Sequence[dict[str, Any]],
                    top: int = 8) -> torch.Tensor:
    """Bit logits (H x L, float32) of :func:`anywhere_hypotheses` for one image (1 x C x h x w in [0, 1]): per k
    and pair of sub-cell phases one canvas (:func:`anywhere_canvases`), its bit map's S x S windows read by the
    decoder's ``read_map`` (bf16 where the device has it natively), then the ``top`` most confident rows again
    in float32 from their own views. A decoder without a convolutional bit map reads every view, screened
    (:func:`robusthide.watermark.sync.screened_logits`)."""
    from robusthide.watermark.sync import _cpu_bf16, affine_views, ranking_scores, screened_logits

    x = image.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if not hyps:
        return torch.zeros(0, 0)
    if not all(hasattr(decoder, a) for a in ("bit_map", "read_map", "stride", "map_side")):
        return screened_logits(decoder, affine_views(x, size, hyps), hyps, top)
    src = resize(x, (2 * size, 2 * size))
    fill = src.mean(dim=(2, 3), keepdim=True)
    stride, side = int(decoder.stride), int(decoder.map_side)
    win = 2 * stride / size
    groups: dict[float, list[tuple[int, int, int, float, float]]] = {}
    for i, h in enumerate(hyps):
        k = float(h["kx"])
        jx, jy = (math.floor((float(h[o]) + 1 - k) / win + 1e-6) for o in ("ox", "oy"))
        groups.setdefault(k, []).append((i, jx, jy, round(float(h["ox"]) - win * jx, 9),
                                         round(float(h["oy"]) - win * jy, 9)))
    logits = torch.empty(len(hyps), decoder.n_bits, dtype=torch.float32, device=x.device)
    bf16 = x.device.type == "cuda" or (x.device.type == "cpu" and _cpu_bf16())
    for k, rows in groups.items():
        lx, ly = max(r[1] for r in rows), max(r[2] for r in rows)
        phases = sorted({(r[3], r[4]) for r in rows})
        canvases = anywhere_canvases(src, fill, size, k, [(px + win * lx, py + win * ly) for px, py in phases],
                                     size + stride * ly, size + stride * lx)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            maps = decoder.bit_map(canvases.contiguous(memory_format=torch.channels_last) if bf16 else canvases)
        where = {ph: n for n, ph in enumerate(phases)}
        wins = [maps[where[(px, py)], :, ly - jy:ly - jy + side, lx - jx:lx - jx + side]
                for _, jx, jy, px, py in rows]
        logits[[r[0] for r in rows]] = decoder.read_map(torch.stack(wins).float()).float()
    if min(top, len(hyps)) > 0:
        best = torch.topk(ranking_scores(logits, hyps), min(top, len(hyps))).indices
        logits[best] = decoder(affine_views(x, size, [hyps[int(b)] for b in best])).float()
    return logits
