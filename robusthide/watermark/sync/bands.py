"""Reframing (``search='reframe'``, session 20, :func:`reframe_hypotheses`): a platform that reframes a photo to
4:5, 1:1 or 16:9 keeps a centred band of it, whole along one axis, and resizes it. Placed back in a frame of the
original's aspect ratio (the rest filled with the mean colour), the default model reads it (an oracle with the
true aspect read 19 of 21 reframings of 8 photos after JPEG 75, docs/geometry.md). The original's aspect is
unknown, so the bands of every common one are hypotheses (:data:`REFRAME_ASPECTS`, both axes, with the mirror
images). Since session 21 each band is also tried at either end of the frame (``anchor`` ``start`` / ``end``):
a photo of a common aspect with one side cut off, by any amount, is the band r = a / X of a frame of its
original aspect X at one of its ends, so one-sided cuts read too (the position must be right within about a
pixel of the decoder's input, which the aspect ratio gives exactly).

Slides (``search='slide'``, session 26, :func:`slide_hypotheses`): the same bands anywhere along the frame, read
from a few wide canvases in one decoder pass each (:func:`slide_logits`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from robusthide.nets.watermark_model import resize
from robusthide.watermark.sync.decision import ranking_scores
from robusthide.watermark.sync.views import SCREEN_TOP, affine_views, mirror_hypotheses, native_bf16, screened_logits

if TYPE_CHECKING:
    from collections.abc import Sequence

#: the original aspect ratios (width / height) the reframing search tries: the common photo, screen and
#: video frames, landscape and portrait
REFRAME_ASPECTS = (1.0, 5 / 4, 4 / 3, 3 / 2, 16 / 10, 16 / 9, 2.0, 21 / 9,
                   4 / 5, 3 / 4, 2 / 3, 10 / 16, 9 / 16, 1 / 2, 9 / 21)


#: aspect ratios within this relative difference of the image's own are not tried (the plain read covers them)
REFRAME_MIN_CHANGE = 0.02


#: where a reframing band may sit in its frame: the centre (a platform's reframing), or either end (one side cut
#: off); ``start`` is the left (``axis`` x) or the top (y) of the frame
REFRAME_ANCHORS = ("centre", "start", "end")


def reframe_hypotheses(h: int, w: int, aspects: Sequence[float] = REFRAME_ASPECTS,
                       anchors: Sequence[str] = REFRAME_ANCHORS) -> list[dict[str, Any]]:
    """The reframing hypotheses of an h x w image (aspect a = w / h): for each aspect ratio X of ``aspects``
    other than a, the image as the band r = min(a, X) / max(a, X) of a larger frame, across its width
    (``kx`` = r) or its height (``ky`` = r), at each of ``anchors``: the box it fills in :func:`affine_views`,
    moved by ``ox`` / ``oy`` (canvas units; -(1 - r) puts it at the start of the frame). Both axes, because a
    reframing comes two ways: a platform's (the image has the new aspect X' = a and the original was X: the
    band is across the width when X > a) and one resized back to the original's shape (the image has the
    original aspect and the band was cut to X: across the width when X < a). The ends: a photo of aspect X with
    one side cut off has aspect a, and is the band a / X of its frame at that end, whatever was cut. Each
    hypothesis also has ``band`` (r), ``axis`` ("x" or "y"), ``anchor``, ``angle`` 0 and ``flip`` False;
    equal boxes are listed once, the centred bands first."""
    bad = set(anchors) - set(REFRAME_ANCHORS)
    if bad:
        raise ValueError(f"unknown reframing anchor(s) {sorted(bad)} (known: {', '.join(REFRAME_ANCHORS)})")
    a = w / h
    out, seen = [], set()
    for anchor in anchors:
        for asp in aspects:
            if abs(asp / a - 1) <= REFRAME_MIN_CHANGE:
                continue
            r = min(a, asp) / max(a, asp)
            for axis in ("x", "y"):
                key = (axis, round(r, 4), anchor)
                if key in seen:
                    continue
                seen.add(key)
                off = {"centre": 0.0, "start": -(1 - r), "end": 1 - r}[anchor]
                out.append({"flip": False, "angle": 0.0, "kx": r if axis == "x" else 1.0,
                            "ky": r if axis == "y" else 1.0, "band": round(r, 4), "axis": axis, "anchor": anchor,
                            "ox": off if axis == "x" else 0.0, "oy": off if axis == "y" else 0.0})
    return out


def mirror_reframings(hyps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`mirror_hypotheses` for reframing hypotheses: the mirror of the view of a band at one end across the
    width is the view of the mirror image with the band at the other end (``ox`` negated, ``anchor`` swapped),
    so each listed hypothesis still gives its row's view in :func:`affine_views`."""
    swap = {"start": "end", "end": "start", "centre": "centre"}
    out = mirror_hypotheses(hyps)
    for h in out[len(hyps):]:
        if h.get("axis") == "x" and "anchor" in h:
            h["anchor"], h["ox"] = swap[str(h["anchor"])], -float(h["ox"])
    return out


def band_text(geo: dict[str, Any]) -> str:
    """Where a reframing hypothesis puts the image, in words: "a centred band (0.562 of the width)", "the left
    part (0.750 of the width)", ..."""
    across = "width" if geo.get("axis") == "x" else "height"
    if geo.get("anchor") == "slide":
        return f"a band at {float(geo['position']):.2f} along the {across} ({float(geo['band']):.3f} of it)"
    where = {"start": "the left part" if across == "width" else "the top part",
             "end": "the right part" if across == "width" else "the bottom part"}.get(geo.get("anchor", "centre"),
                                                                                       "a centred band")
    return f"{where} ({float(geo['band']):.3f} of the {across})"


#: the aspect ratios (width / height) of the slide search's frames and bands: the common photo and post shapes
SLIDE_ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9, 4 / 5, 3 / 4, 2 / 3, 9 / 16)


#: the slide search's largest step of a band's offset (canvas half-sides): the default model reads a band placed
#: 0.004 off as at its true place, and none 0.008 off (0.5 of a working pixel; docs/results/slide-probe.md)
SLIDE_STEP = 0.006


#: the narrowest band the slide search tries (0.5: half of the frame)
SLIDE_MIN_BAND = 0.5


#: bands the slide search tries whatever the image's aspect: 0.75, one side cut by a quarter and resized back to
#: the photo's shape (issue 19's row), which no common frame gives a 3:2 photo (1:1 is 0.667 of it, 4:3 0.889)
SLIDE_BANDS = (0.75,)


#: canvas half-sides between two windows of one wide canvas in :func:`slide_logits`: the default decoder's
#: stride (8 working pixels) at its size 128
SLIDE_WINDOW = 2 * 8 / 128


def slide_hypotheses(h: int, w: int, aspects: Sequence[float] = SLIDE_ASPECTS, step: float = SLIDE_STEP,
                     min_band: float = SLIDE_MIN_BAND, window: float = SLIDE_WINDOW,
                     bands: Sequence[float] = SLIDE_BANDS) -> list[dict[str, Any]]:
    """The slide hypotheses of an h x w image: the bands of :func:`reframe_hypotheses` (``aspects``, both axes,
    r >= ``min_band``) anywhere along the frame, not only centred or at an end: a square dragged off the centre
    of a 4:3 photo in a phone editor, or a platform's reframing that kept a face; then each band r of ``bands``
    that no aspect gave (a side cut by a quarter and resized back to the photo's shape). For a band r, the offsets
    -(1 - r) + i d (canvas half-sides) up to 1 - r, with d = ``window`` / ceil(``window`` / ``step``) (at most
    ``step``, and a whole number of steps per ``window``, so that :func:`slide_logits` reads them from a few
    wide canvases), without the ends and the centre of a common frame's band (the reframing stage reads those;
    a band of ``bands`` has them too). Each hypothesis also has
    ``band``, ``axis``, ``anchor`` ("slide"), ``position`` (0 at the start of the frame, 1 at the end: the
    ``pos`` of the ``reframe`` codec), ``angle`` 0 and ``flip`` False."""
    if not 0 < step < 1 or not 0 < min_band < 1 or not window > 0:
        raise ValueError(f"step and min_band must be in (0, 1) and window positive, got {step}, {min_band}, {window}")
    d = window / math.ceil(window / step - 1e-9)
    a = w / h
    out, seen = [], set()
    ratios = [min(a, asp) / max(a, asp) for asp in aspects if abs(asp / a - 1) > REFRAME_MIN_CHANGE]
    for r, extra in [(r, False) for r in ratios] + [(float(b), True) for b in bands]:
        if r < min_band or r >= 1:
            continue
        for axis in ("x", "y"):
            if (axis, round(r, 4)) in seen:
                continue
            seen.add((axis, round(r, 4)))
            for i in range(0 if extra else 1, math.floor(2 * (1 - r) / d + 1e-9) + 1):
                off = -(1 - r) + d * i
                if not extra and (abs(off) < 1e-9 or abs(off - (1 - r)) < 1e-9):
                    continue
                out.append({"flip": False, "angle": 0.0, "kx": r if axis == "x" else 1.0,
                            "ky": r if axis == "y" else 1.0, "band": round(r, 4), "axis": axis, "anchor": "slide",
                            "position": round((off + 1 - r) / (2 * (1 - r)), 4), "ox": off if axis == "x" else 0.0,
                            "oy": off if axis == "y" else 0.0})
    return out


def _wide_canvases(src: torch.Tensor, fill: torch.Tensor, size: int, r: float, offsets: Sequence[float],
                   length: int, axis: str) -> torch.Tensor:
    """Canvases (P x C x S x ``length``, or ``length`` x S for ``axis`` y) showing the image ``src`` (resized to
    2S x 2S, less its mean ``fill``) as a band r of the frame at each offset of ``offsets`` (canvas half-sides
    of the first S-wide window), sampled as :func:`affine_views` samples a band, the rest ``fill``: the canvas'
    window starting ``k x stride`` pixels on shows the band ``k x stride x 2 / S`` earlier."""
    dev, dt = src.device, src.dtype
    u = (torch.arange(length, dtype=dt, device=dev) + 0.5) / size * 2 - 1  # along the band's axis
    v = (torch.arange(size, dtype=dt, device=dev) + 0.5) / size * 2 - 1   # across it
    b = torch.tensor(list(offsets), dtype=dt, device=dev).view(-1, 1, 1)
    along = ((u.view(1, 1, -1) - b) / r).expand(-1, size, -1)
    across = v.view(1, -1, 1).expand(len(offsets), -1, length)
    grid = torch.stack((along, across) if axis == "x" else (across.transpose(1, 2), along.transpose(1, 2)), -1)
    views = F.grid_sample((src - fill).expand(len(offsets), -1, -1, -1), grid, mode="bilinear",
                          padding_mode="zeros", align_corners=False)
    inside = ((u.view(1, -1) - b.view(-1, 1)).abs() <= r).to(dt)
    inside = inside[:, None, None, :] if axis == "x" else inside[:, None, :, None]
    return views * inside + fill


@torch.no_grad()
def slide_logits(decoder: torch.nn.Module, image: torch.Tensor, size: int, hyps: Sequence[dict[str, Any]],
                 top: int = SCREEN_TOP) -> torch.Tensor:
    """Bit logits (H x L, float32) of :func:`slide_hypotheses`. A decoder with a convolutional bit map
    (``bit_map``, ``read_map``, ``stride``: the lean decoder) reads every placement of one band that lies a whole
    number of windows (``stride`` working pixels) from another in one pass over a wide canvas: for a band r, one
    canvas per phase, S + k x stride wide, in bf16 where the device has it (as :func:`screened_logits`); its
    S-wide windows of the map give the logits, as the band's own view does up to the padding at the window's
    edges (session 26: the same decision on 32 of 32 marked crops, docs/results/slide-probe.md). The ``top``
    most confident rows are read again in float32 from their own views (:func:`affine_views`), so a marked image
    is decided on exact logits. Other decoders read every view (:func:`screened_logits`)."""
    x = image.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if not hyps:
        return torch.zeros(0, 0)
    if not all(hasattr(decoder, k) for k in ("bit_map", "read_map", "stride")):
        return screened_logits(decoder, affine_views(x, size, hyps), hyps, top)
    src = resize(x, (2 * size, 2 * size))
    fill = src.mean(dim=(2, 3), keepdim=True)
    stride, side = int(decoder.stride), int(decoder.map_side)
    win = 2 * stride / size
    groups: dict[tuple[str, float], list[tuple[int, int, float]]] = {}
    for i, h in enumerate(hyps):
        axis = str(h["axis"])
        r, off = (float(h["kx"]), float(h["ox"])) if axis == "x" else (float(h["ky"]), float(h["oy"]))
        j = math.floor((off + 1 - r) / win + 1e-6)
        groups.setdefault((axis, r), []).append((i, j, round(off - win * j, 9)))
    logits = torch.empty(len(hyps), decoder.n_bits, dtype=torch.float32, device=x.device)
    bf16 = native_bf16(x.device)
    for (axis, r), rows in groups.items():
        last = max(j for _, j, _ in rows)
        phases = sorted({ph for _, _, ph in rows})
        canvases = _wide_canvases(src, fill, size, r, [ph + win * last for ph in phases], size + stride * last, axis)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            maps = decoder.bit_map(canvases.contiguous(memory_format=torch.channels_last) if bf16 else canvases)
        where = {ph: n for n, ph in enumerate(phases)}
        wins = [maps[where[ph], :, :, last - j:last - j + side] if axis == "x" else
                maps[where[ph], :, last - j:last - j + side, :] for _, j, ph in rows]
        logits[[i for i, _, _ in rows]] = decoder.read_map(torch.stack(wins).float()).float()
    if min(top, len(hyps)) > 0:
        best = torch.topk(ranking_scores(logits, hyps), min(top, len(hyps))).indices
        logits[best] = decoder(affine_views(x, size, [hyps[int(b)] for b in best])).float()
    return logits
