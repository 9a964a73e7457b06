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

Refinement (session 32, :func:`anywhere_refined`): the grid above leaves a placement up to half a pixel off per
axis and k up to half a step off, which costs the default model several errors; the neighbours of the most
confident rows on a grid ``split`` times finer in k, x and y (:func:`anywhere_neighbours`) are read again in
float32. The p-value then pays for every row of the finer grid (:func:`anywhere_fine_count`, 103 272 rows at the
default spacings, against 13 540): at the share of 0.12 meant for an anywhere stage of the staged search both
declare a mark at 2 errors of 64 bits or fewer (:func:`robusthide.payload.max_detectable_errors`), and the refined
rows have fewer errors. On 12 validation photos at 512 px cropped to 70 % and 50 % of the area at (0.3, 0.7) and
(0.35, 0.6), then JPEG 75, the fewest errors of the rows tried fell from a median of 2.5 and 7.5 to 0 and 1, and
the photos within those 2 errors from 6 and 2 of 12 to 10 and 8 (docs/results/anywhere-refine-probe.md); on
29 photos the search alone reads those crops on 25 and 17 instead of 11 and 4
(docs/results/anywhere-refined-default.md).
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
#: how many times finer the refinement's grid is than the screened one, in k and in each axis
ANYWHERE_SPLIT = 2
#: how many of the most confident screened rows the refinement reads the neighbours of
ANYWHERE_REFINE_TOP = 8
#: whether the search reads the refined rows (:func:`anywhere_refined`): on since session 33, when their
#: false-positive runs covered the 10 140 clean images of the staged search's (0 false positives; issue 19,
#: docs/scripts/fpr_anywhere_refine.py, docs/results/fpr-staged-total.md)
ANYWHERE_REFINE = True


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
    out = []
    for k in _sides(scale_step, min_side):
        offs = [-(1 - k) + d * i for i in range(_places(k, d))]
        out += [_row(k, ox, oy) for oy in offs for ox in offs]
    return out


def _sides(scale_step: float, min_side: float) -> list[float]:
    """The side fractions k = 1 - ``scale_step`` ... ``min_side``."""
    return [1 - scale_step * i for i in range(1, int(math.floor((1 - min_side) / scale_step + 1e-9)) + 1)]


def _places(k: float, d: float) -> int:
    """How many box centres of spacing d fit along one axis at the side fraction k."""
    return math.floor(2 * (1 - k) / d + 1e-9) + 1


def _row(k: float, ox: float, oy: float) -> dict[str, Any]:
    """One hypothesis of :func:`anywhere_hypotheses`."""
    return {"flip": False, "angle": 0.0, "kx": k, "ky": k, "ox": ox, "oy": oy, "anywhere_side": round(k, 4),
            "position": (round((ox + 1 - k) / (2 * (1 - k)), 4), round((oy + 1 - k) / (2 * (1 - k)), 4))}


def anywhere_fine_count(window: float, step: float = ANYWHERE_STEP, scale_step: float = ANYWHERE_SCALE_STEP,
                        min_side: float = ANYWHERE_MIN_SIDE, split: int = ANYWHERE_SPLIT) -> int:
    """How many rows the grid ``split`` times finer than :func:`anywhere_hypotheses`' has (the same as
    ``len(anywhere_hypotheses(window, step / split, scale_step / split, min_side))``; it holds the screened
    grid): the number of hypotheses the refined search's p-value pays for."""
    d = _spacing(window, step) / split
    return sum(_places(k, d) ** 2 for k in _sides(scale_step / split, min_side))


def anywhere_neighbours(rows: Sequence[dict[str, Any]], window: float, step: float = ANYWHERE_STEP,
                        scale_step: float = ANYWHERE_SCALE_STEP, min_side: float = ANYWHERE_MIN_SIDE,
                        split: int = ANYWHERE_SPLIT) -> list[dict[str, Any]]:
    """The rows of the grid ``split`` times finer (:func:`anywhere_fine_count`) next to each of ``rows`` (rows of
    :func:`anywhere_hypotheses` with the same spacings): the fine side fractions within one fine step of the row's
    k and, at each, the fine box centres within one fine step of the row's (the nearest and one on either side,
    per axis); each once, and none of the screened grid's own (read already)."""
    d, fs = _spacing(window, step) / split, scale_step / split
    n_k = len(_sides(fs, min_side))
    seen: set[tuple[int, int, int]] = set()
    out = []
    for r in rows:
        ik = round((1 - float(r["kx"])) / fs)
        for jk in range(max(1, ik - 1), min(n_k, ik + 1) + 1):
            k = 1 - fs * jk
            last = _places(k, d) - 1
            near = [round((float(r[o]) + 1 - k) / d) for o in ("ox", "oy")]
            for jy in range(max(0, near[1] - 1), min(last, near[1] + 1) + 1):
                for jx in range(max(0, near[0] - 1), min(last, near[0] + 1) + 1):
                    key = (jk, jx, jy)
                    if key in seen or all(j % split == 0 for j in key):
                        continue
                    seen.add(key)
                    out.append(_row(k, -(1 - k) + d * jx, -(1 - k) + d * jy))
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
    from robusthide.watermark.sync import affine_views, native_bf16, ranking_scores, screened_logits

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
    bf16 = native_bf16(x.device)
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


@torch.no_grad()
def anywhere_refined(decoder: torch.nn.Module, image: torch.Tensor | Sequence[torch.Tensor], size: int,
                     hyps: Sequence[dict[str, Any]], logits: torch.Tensor, window: float,
                     top: int = ANYWHERE_REFINE_TOP, split: int = ANYWHERE_SPLIT
                     ) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The refinement of the anywhere search: the float32 logits (N x L) and hypotheses of the finer grid's rows
    next to the ``top`` most confident of ``hyps`` (rows of :func:`anywhere_hypotheses` at the default spacings,
    ``logits`` from :func:`anywhere_logits`; :func:`anywhere_neighbours`), each read from its own view; for the
    frames of one clip (a sequence of images), each row's logits averaged over the frames."""
    from robusthide.watermark.sync import affine_views, ranking_scores

    if not hyps or top < 1:
        return torch.zeros(0, logits.shape[1] if logits.ndim == 2 else 0), []
    best = torch.topk(ranking_scores(logits, hyps), min(top, len(hyps))).indices
    fine = anywhere_neighbours([hyps[int(b)] for b in best], window, split=split)
    frames = [image] if isinstance(image, torch.Tensor) else list(image)
    total = None
    for f in frames:
        x = f.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        views = affine_views(x, size, fine)
        lg = torch.cat([decoder(v) for v in views.split(128)]).float()
        total = lg if total is None else total + lg
    return (total if len(frames) == 1 else total / len(frames)), fine


def anywhere_search(decoder: torch.nn.Module, image: torch.Tensor | Sequence[torch.Tensor], size: int,
                    window: float, refine: bool | None = None) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The anywhere search of one image (1 x C x h x w in [0, 1]): the logits and hypotheses of the screened grid
    (:func:`anywhere_logits`) and, with ``refine`` (None: :data:`ANYWHERE_REFINE`), of the refined rows after them
    (:func:`anywhere_refined`), every row then tagged ``of`` the finer grid's size (:func:`anywhere_fine_count`:
    the weighted Bonferroni of :func:`robusthide.watermark.sync.hypothesis_weights` pays for all of it).
    ``image`` may also be the frames of one clip (a sequence of such images): a clip is cropped alike in every
    frame, so each row's logits are averaged over the frames (a soft vote, as the video extractor's other
    stages), and the refinement reads the neighbours of the rows most confident on that average."""
    frames = [image] if isinstance(image, torch.Tensor) else list(image)
    if not frames:
        raise ValueError("no image to search")
    hyps = anywhere_hypotheses(window)
    logits = anywhere_logits(decoder, frames[0], size, hyps)
    if len(frames) > 1:
        logits = (logits + sum(anywhere_logits(decoder, f, size, hyps) for f in frames[1:])) / len(frames)
    if not (ANYWHERE_REFINE if refine is None else refine):
        return logits, hyps
    fine_logits, fine = anywhere_refined(decoder, frames if len(frames) > 1 else frames[0], size, hyps, logits,
                                         window)
    n = anywhere_fine_count(window)
    return torch.cat([logits, fine_logits]), [{**h, "of": n} for h in [*hyps, *fine]]
