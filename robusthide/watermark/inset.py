"""Where a photo sits inside a larger picture: padding, a screenshot, a collage (issue 19, session 24).

The whole-image models read a fixed resize of the whole frame, so a marked photo that fills only part of the
picture it is shown in reads at chance: padded to a square or to 4:5 for a feed that does not crop, letterboxed
for a story, captured in a screenshot with the app's bars around it, or pasted into a collage (0 of 24 on 4
validation photos before this stage, docs/geometry.md). Those frames draw the photo as an axis-aligned rectangle
whose sides are long straight edges (or the picture's own border), and a photo rarely holds four such edges in
the places a rectangle needs them. :func:`inset_boxes` finds the rectangles from those edges alone, without the
decoder, and the ``inset`` search (:mod:`robusthide.watermark.sync`) reads each one, resized to the working size,
as the plain read reads a whole frame.

The finder, on the luma at most :data:`FIND_SIDE` pixels on its long side:

1. **Edges** (:func:`edge_lines`): a horizontal edge at row y is where ``|Y[y] - Y[y - 1]| >`` :data:`EDGE_STEP`
   grey levels; runs of such pixels along the row, bridged over gaps of :data:`EDGE_GAP` of the side and joined
   over :data:`JOIN_GAP`, at least :data:`MIN_SIDE` of the side long, are lines (adjacent rows holding the same
   segment keep the strongest; the :data:`MAX_LINES` strongest are kept). The same for columns. A picture's own
   border is a line of its full length. Each line notes whether a canvas (flat rows) lies beyond it on either
   side (:func:`_canvas_beyond`).
2. **Flat margins** (:func:`flat_margins`): padding is flat. From each side, the rows (columns) of the border's
   colour, of any one colour, or smooth are skipped; where they stop is a line, even where the photo's edge has
   the padding's colour (white sky against white bars), and padding is centred (:func:`_centred`).
3. **JPEG's blocks** (:func:`_refined`): the largest step, and the last flat row, sit on an 8 x 8 block's
   boundary up to 7 pixels from the photo's edge; a line with a canvas on one side moves to where the photo
   starts, by the colours or, on a blurred copy of the photo (a story's background, session 25), by the texture.
4. **Boxes** (:func:`inset_boxes`): the padding's box first, then two horizontal and two vertical lines that
   each cover at least :data:`COVER` of the box's side, the box keeping at least :data:`MIN_SIDE` of each side of
   the picture and not the whole picture, ranked by how many of their sides have a canvas beyond them and how
   well they are covered (a side on the picture's border counts :data:`BORDER_WEIGHT`); boxes within
   :data:`SAME_BOX` of a better one are dropped, and at most :data:`MAX_BOXES` kept.

The search pays for :data:`MAX_BOXES` boxes and their mirror images whatever the finder returns (weighted
Bonferroni, ``of`` in :func:`robusthide.watermark.sync.hypothesis_weights`), so the boxes chosen from the
picture's content keep the false-positive bound.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

#: Long side (pixels) of the luma the finder works on; boxes are returned as fractions of the picture's sides.
FIND_SIDE = 1024
#: A pixel is on an edge when the luma steps by more than this (grey levels, 0-255) across it.
EDGE_STEP = 10.0
#: Gaps of at most this fraction of the side are bridged when an edge's pixels are joined into a segment.
EDGE_GAP = 0.02
#: How far (pixels of the finder's luma) a line may move to where the photo starts (:func:`_refined`).
REFINE_PX = 8
#: A line between a blurred canvas and a photo of the same colours moves by texture only when the photo's mean step
#: along a row is at least this many times the canvas' (plus :data:`FLAT_MOVE`) (:func:`_refined`).
TEXTURE_RATIO = 2.0
#: Segments of one row (column) this fraction of the side apart or closer are joined into one line.
JOIN_GAP = 0.1
#: The smallest side of a box and of a line, as a fraction of the picture's side.
MIN_SIDE = 0.2
#: Each side of a box must lie on its line over at least this fraction of its length.
COVER = 0.6
#: A row or column is flat (a canvas, padding) when its standard deviation is at most this (grey levels) ...
FLAT_STD = 3.0
#: ... and its mean is within this of the picture's border colour (grey levels).
FLAT_COLOUR = 12.0
#: The kinds of margin :func:`flat_margins` measures; the padding's box is read first.
MARGIN_KINDS = ("padding", "flat", "smooth")
#: A smooth margin's rows move at most this much between neighbouring pixels, on average (grey levels).
FLAT_MOVE = 2.0
#: A flat margin narrower than this fraction of the side is the photo's own edge (the margin counts as none).
MIN_MARGIN = 0.01
#: At most this many boxes are read; the search pays for this many (and their mirror images) in every picture.
MAX_BOXES = 8
#: Lines kept per orientation (the longest first), which bounds the pairs tried.
MAX_LINES = 16
#: Two boxes whose sides all lie within this fraction of the picture's side are the same box (3 pixels at
#: :data:`FIND_SIDE`; the two edges of a collage's gap are different boxes).
SAME_BOX = 0.003
#: A side on the picture's own border counts this much towards a box's rank (an edge inside the picture: 1):
#: a band cut off by one long line inside a photo (a horizon) is a box of three borders and one line.
BORDER_WEIGHT = 0.5
#: A canvas beyond a side: these many rows next to it are flat (each of one colour) ...
FLAT_NEAR = 2
#: ... or these many rows after them (:func:`_canvas_beyond`).
FLAT_STRIP = 12

# position, start, end (exclusive), edge strength (pixels on the edge), a canvas before the edge, one after it
Line = tuple[int, int, int, float, bool, bool]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the width and height


def luma_for_finding(image: np.ndarray) -> np.ndarray:
    """The luma (float32, 0-255) of an H x W x 3 (or H x W) uint8 or [0, 1] float image, box-averaged down so that
    its long side is at most :data:`FIND_SIDE` (whole factors, so that edges stay on pixel boundaries)."""
    a = np.asarray(image)
    a = a.astype(np.float32) * (255.0 if a.dtype.kind == "f" else 1.0)
    y = a if a.ndim == 2 else a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    f = int(np.ceil(max(y.shape) / FIND_SIDE))
    if f > 1:
        h, w = (y.shape[0] // f) * f, (y.shape[1] // f) * f
        y = y[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    return np.ascontiguousarray(y, dtype=np.float32)


def _canvas_beyond(y: np.ndarray, pos: int, s: int, e: int, before: bool) -> bool:
    """Whether a canvas lies before (or after) the edge between rows ``pos - 1`` and ``pos`` over columns ``s:e``:
    the :data:`FLAT_NEAR` rows next to it are flat (a collage's thin gap), or the :data:`FLAT_STRIP` rows from
    :data:`FLAT_NEAR` on are (a margin, beyond most of JPEG's ringing next to the edge, which reaches up to 7
    pixels within its 8 x 8 block)."""
    if before:
        lo = max(0, pos - FLAT_NEAR)
        near, far = y[lo:pos, s:e], y[max(0, lo - FLAT_STRIP):lo, s:e]
    else:
        near, far = y[pos:pos + FLAT_NEAR, s:e], y[pos + FLAT_NEAR:pos + FLAT_NEAR + FLAT_STRIP, s:e]
    return _flat(near) or _flat(far)


def _flat(strip: np.ndarray) -> bool:
    """Whether rows of luma are a canvas: of one colour each (standard deviation <= :data:`FLAT_STD`; the median
    row, so that a row or two of JPEG's ringing next to a photo's edge do not count)."""
    return bool(strip.size) and float(np.median(strip.std(axis=1))) <= FLAT_STD


def _runs(mask: np.ndarray, min_len: int) -> list[tuple[int, int, int]]:
    """(row, start, end) of every run of True at least ``min_len`` long in each row of a 2-D bool array."""
    p = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    p[:, 1:-1] = mask
    d = np.diff(p, axis=1)
    rs, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    keep = ends - starts >= min_len
    return list(zip(rs[keep].tolist(), starts[keep].tolist(), ends[keep].tolist()))


def _bridge(mask: np.ndarray, gap: int) -> np.ndarray:
    """``mask`` with gaps of at most ``gap`` pixels along each row filled (a closing along the rows)."""
    if gap <= 0:
        return mask
    from scipy.ndimage import binary_closing

    return binary_closing(mask, structure=np.ones((1, 2 * gap + 1), dtype=bool), border_value=0) | mask


def edge_lines(y: np.ndarray) -> list[Line]:
    """The horizontal lines of a luma image (transpose it for the vertical ones): (row, start, end, strength),
    the row being the first row below the edge (rows 0 and H: the picture's border, full length)."""
    h, w = y.shape
    step = np.abs(np.diff(y, axis=0)) > EDGE_STEP  # (h - 1) x w: the edge between rows i and i + 1
    bridged = _bridge(step, int(round(EDGE_GAP * w)))
    lines: list[Line] = [(r + 1, s, e, float(step[r, s:e].sum()), False, False)
                         for r, s, e in _runs(bridged, max(2, int(round(MIN_SIDE * w))))]
    lines = sorted(_suppress(_join(lines, int(round(JOIN_GAP * w)))), key=lambda ln: -ln[3])[:MAX_LINES]
    lines = [_refined(y, (p, s, e, st, _canvas_beyond(y, p, s, e, True), _canvas_beyond(y, p, s, e, False)))
             for p, s, e, st, _, _ in lines]
    return lines + [(0, 0, w, float(w), True, True), (h, 0, w, float(w), True, True)]


def _refined(y: np.ndarray, ln: Line) -> Line:
    """``ln`` moved to where the photo starts, when one side of it is a canvas (flat or smooth :data:`REFINE_PX`
    out, and next to the line of the same colours) and the other is not: JPEG's 8 x 8 blocks move the largest
    step, and the last flat row, to a block's boundary, up to 7 pixels off, and the decoder needs the box to
    about 0.2 % of its side. Across the segment, the mean distance from the canvas' colours (column by column)
    rises from about 0 on the canvas to its level D on the photo; the photo starts where it first reaches D / 2,
    within :data:`REFINE_PX` of the line. Where the canvas has the photo's colours (a blurred copy of the photo
    behind it, session 25), or no side passes as a canvas by its colours (JPEG's ringing on a blur), the texture
    decides: the mean step along each row is about 0 on a blurred canvas and larger on the photo
    (:data:`TEXTURE_RATIO`), and the photo starts where it first reaches halfway between the two."""
    pos, s, e = ln[:3]
    h, r = y.shape[0], REFINE_PX
    if not 2 * r <= pos <= h - 2 * r or e - s < 2:
        return ln

    def canvas(near: np.ndarray, far: np.ndarray) -> bool:  # flat, or smooth (a blurred background), and the same
        smooth = float(np.abs(np.diff(far, axis=1)).mean()) <= FLAT_MOVE / 2
        return (_flat(far) or smooth) and float(np.abs(near - far.mean(axis=0)).mean()) <= FLAT_COLOUR / 2

    band = y[pos - 2 * r:pos + 2 * r, s:e]  # row pos - 2r + i
    c_before = canvas(y[pos - FLAT_NEAR:pos, s:e], band[:r])
    c_after = canvas(y[pos:pos + FLAT_NEAR, s:e], band[3 * r:])
    if c_before and c_after:  # a gap between two canvases
        return ln
    if c_before or c_after:
        level = (band[:r] if c_before else band[3 * r:]).mean(axis=0)  # the canvas' colours, per column
        dist = np.abs(band - level).mean(axis=1)
        photo = float(np.median(dist[3 * r:] if c_before else dist[:r]))
        if photo > EDGE_STEP / 2:
            return (pos - 2 * r + _photo_starts(dist, 0.0, photo, c_before), *ln[1:])
    tex = np.abs(np.diff(band, axis=1)).mean(axis=1)
    t_before, t_after = float(np.median(tex[:r])), float(np.median(tex[3 * r:]))
    c_before = t_before <= FLAT_MOVE / 2 and t_after >= TEXTURE_RATIO * t_before + FLAT_MOVE
    if not (c_before or (t_after <= FLAT_MOVE / 2 and t_before >= TEXTURE_RATIO * t_after + FLAT_MOVE)):
        return ln
    canvas_t, photo_t = (t_before, t_after) if c_before else (t_after, t_before)
    return (pos - 2 * r + _photo_starts(tex, canvas_t, photo_t, c_before), *ln[1:])


def _photo_starts(profile: np.ndarray, canvas: float, photo: float, c_before: bool) -> int:
    """Where the photo starts in ``profile`` (4 :data:`REFINE_PX` rows across a line, at ``canvas`` on the canvas'
    side and ``photo`` on the photo's): going from the canvas (before the line when ``c_before``, else after it),
    the first row within :data:`REFINE_PX` of the line at least halfway between the two, or one past it going up;
    the line's own row (2 :data:`REFINE_PX`) when none is."""
    r = REFINE_PX
    window = np.arange(r, 3 * r + 1)  # rows pos - r ... pos + r
    mid = (canvas + photo) / 2
    if c_before:
        hit = window[profile[window] >= mid]
        return int(hit[0]) if hit.size else 2 * r
    hit = window[::-1][profile[window[::-1]] >= mid]
    return int(hit[0]) + 1 if hit.size else 2 * r


def _join(lines: list[Line], gap: int) -> list[Line]:
    """Segments of one row with at most ``gap`` pixels between them are one line (a photo's edge fades where
    the photo takes the colour of what is around it)."""
    out: list[Line] = []
    for ln in sorted(lines):
        last = out[-1] if out else None
        if last is not None and last[0] == ln[0] and ln[1] - last[2] <= gap:
            out[-1] = (last[0], last[1], max(last[2], ln[2]), last[3] + ln[3], last[4] and ln[4], last[5] and ln[5])
        else:
            out.append(ln)
    return out


def _suppress(lines: list[Line]) -> list[Line]:
    """Lines one row apart that overlap mostly are one edge spread over two rows: keep the strongest."""
    out: list[Line] = []
    for ln in sorted(lines, key=lambda ln: -ln[3]):
        if any(abs(ln[0] - o[0]) <= 1 and min(ln[2], o[2]) - max(ln[1], o[1]) > 0.5 * (ln[2] - ln[1])
               for o in out):
            continue
        out.append(ln)
    return out


def flat_margins(y: np.ndarray, kind: str = "padding") -> dict[str, int]:
    """How far flat rows (columns) reach in from each side of a luma image: the first row (``top``; ``bottom``:
    one past the last) or column (``left``, ``right``) that is not flat, 0 (or the side) when that is less
    than :data:`MIN_MARGIN` of the side. ``kind``: ``padding``, rows of one colour (standard deviation <=
    :data:`FLAT_STD`), that of the picture's border; ``flat``, rows of one colour each (a screenshot's margin
    beyond the app's bars); ``smooth``, rows whose neighbouring pixels are at most :data:`FLAT_MOVE` apart on
    average (a column crossing the bars and the margin, or a blurred copy of the photo filling the frame)."""
    h, w = y.shape

    def reach(rows: np.ndarray) -> int:
        if kind == "padding":
            flat = ((rows.std(axis=1) <= FLAT_STD)
                    & (np.abs(rows.mean(axis=1) - float(np.median(rows[0]))) <= FLAT_COLOUR))
        elif kind == "flat":
            flat = rows.std(axis=1) <= FLAT_STD
        else:
            flat = np.abs(np.diff(rows, axis=1)).mean(axis=1) <= FLAT_MOVE
        n = int(np.argmin(flat)) if not flat.all() else len(flat)
        return n if n >= MIN_MARGIN * len(flat) else 0  # a row or two: the photo's own edge, not a margin

    return {"top": reach(y), "bottom": h - reach(y[::-1]), "left": reach(y.T), "right": w - reach(y.T[::-1])}


def _margin_box(y: np.ndarray, m: dict[str, int]) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) margins ``m`` leave, each side moved off JPEG's blocks (:func:`_refined`)."""
    top = _refined(y, (m["top"], m["left"], m["right"], 0.0, True, False))[0]
    bot = _refined(y, (m["bottom"], m["left"], m["right"], 0.0, False, True))[0]
    left = _refined(y.T, (m["left"], m["top"], m["bottom"], 0.0, True, False))[0]
    right = _refined(y.T, (m["right"], m["top"], m["bottom"], 0.0, False, True))[0]
    return left, top, right, bot


def _centred(m: dict[str, int], h: int, w: int) -> list[dict[str, int]]:
    """The margins ``m`` made symmetric where two opposite ones differ: an app pads a photo about its centre, and a
    smooth edge of the photo (a sky) reads as more margin on its side only."""
    t, b = min(m["top"], h - m["bottom"]), min(m["left"], w - m["right"])
    sym = {"top": t, "bottom": h - t, "left": b, "right": w - b}
    return [sym] if sym != m and sym != {"top": 0, "bottom": h, "left": 0, "right": w} else []


def inset_boxes(image: np.ndarray, max_boxes: int = MAX_BOXES) -> list[Box]:
    """The rectangles (x0, y0, x1, y1, fractions of the width and height) where a photo may sit inside the
    picture ``image`` (H x W x 3 or H x W, uint8 or [0, 1] float), the most edge-bound first, at most
    ``max_boxes`` of them (see the module's docstring). The whole picture is never one of them."""
    y = luma_for_finding(image)
    h, w = y.shape
    if min(h, w) < 16:
        return []
    rows, cols = edge_lines(y), edge_lines(y.T)
    first: list[tuple[int, int, int, int]] = []  # padding's boxes come first: the surest of all
    seen: list[dict[str, int]] = []
    for kind in MARGIN_KINDS:
        m = flat_margins(y, kind)
        if m in seen or m == {"top": 0, "bottom": h, "left": 0, "right": w}:
            continue
        seen.append(m)
        if m["bottom"] - m["top"] < MIN_SIDE * h or m["right"] - m["left"] < MIN_SIDE * w:
            continue
        for sym in _centred(m, h, w):  # padding is centred: the narrower margin of two opposite ones, twice
            if sym not in seen:
                seen.append(sym)
                first.append(_margin_box(y, sym))
        left, top, right, bot = _margin_box(y, m)
        if kind == "padding":  # the other kinds' boxes are ranked with the rest, from the lines below
            first.append((left, top, right, bot))
        # a margin's edges are lines along the box they leave, a canvas beyond them where of one colour there
        rows += [(top, left, right, 0.0, _canvas_beyond(y, top, left, right, True), False),
                 (bot, left, right, 0.0, False, _canvas_beyond(y, bot, left, right, False))]
        cols += [(left, top, bot, 0.0, _canvas_beyond(y.T, left, top, bot, True), False),
                 (right, top, bot, 0.0, False, _canvas_beyond(y.T, right, top, bot, False))]
    r, c = np.array(rows, dtype=np.float64), np.array(cols, dtype=np.float64)
    t, b, lf, rt = (a.reshape(sh) for a, sh in ((r, (-1, 1, 1, 1, 6)), (r, (1, -1, 1, 1, 6)),
                                                 (c, (1, 1, -1, 1, 6)), (c, (1, 1, 1, -1, 6))))
    y0, y1, x0, x1 = t[..., 0], b[..., 0], lf[..., 0], rt[..., 0]

    def cover(line: np.ndarray, a: np.ndarray, z: np.ndarray) -> np.ndarray:  # the part of [a, z) the line covers
        return np.clip(np.minimum(line[..., 2], z) - np.maximum(line[..., 1], a), 0, None) / np.maximum(z - a, 1)

    covers = np.stack(np.broadcast_arrays(cover(t, x0, x1), cover(b, x0, x1), cover(lf, y0, y1),
                                          cover(rt, y0, y1)))
    ok = ((y1 - y0 >= MIN_SIDE * h) & (x1 - x0 >= MIN_SIDE * w) & (covers.min(axis=0) >= COVER)
          & ~((y0 == 0) & (y1 == h) & (x0 == 0) & (x1 == w)))
    border = np.stack(np.broadcast_arrays(y0 == 0, y1 == h, x0 == 0, x1 == w))
    flat_out = np.stack(np.broadcast_arrays(t[..., 4], b[..., 5], lf[..., 4], rt[..., 5])) > 0
    score = (2.0 * flat_out.sum(axis=0) + (covers * np.where(border, BORDER_WEIGHT, 1.0)).sum(axis=0)
             + 1e-3 * (x1 - x0) * (y1 - y0) / (h * w))
    idx = np.argwhere(ok)
    order = np.argsort(-score[ok], kind="stable")
    found = first + [(int(cols[k][0]), int(rows[i][0]), int(cols[m][0]), int(rows[j][0])) for i, j, k, m in idx[order]]
    boxes: list[Box] = []
    for x0_, y0_, x1_, y1_ in found:
        box = (x0_ / w, y0_ / h, x1_ / w, y1_ / h)
        if box == (0.0, 0.0, 1.0, 1.0) or any(max(abs(p - q) for p, q in zip(box, o)) <= SAME_BOX for o in boxes):
            continue
        boxes.append(box)
        if len(boxes) == max_boxes:
            break
    return boxes


def inset_hypotheses(image: torch.Tensor, whole: bool = False, max_boxes: int = MAX_BOXES) -> list[dict[str, Any]]:
    """The ``inset`` search's hypotheses for one image (1 x C x h x w in [0, 1]): each box of :func:`inset_boxes`
    (``box``: fractions x0, y0, x1, y1; ``box_px``: the pixels), with ``whole`` the whole picture first. Each
    carries ``of``: the hypotheses the search pays for, found or not (``max_boxes`` (+ 1 with ``whole``), and
    their mirror images), and ``flip`` False."""
    h, w = image.shape[-2:]
    x = image[0].detach().float()
    y = x[0] if x.shape[0] == 1 else 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    f = math.ceil(max(h, w) / FIND_SIDE)  # the finder's own box average (luma_for_finding), done in torch
    if f > 1:
        y = torch.nn.functional.avg_pool2d(y[None, None], f)[0, 0]
    boxes = ([(0.0, 0.0, 1.0, 1.0)] if whole else []) + inset_boxes(y.cpu().numpy(), max_boxes)
    of = 2 * (max_boxes + int(whole))
    out = []
    for b in boxes:
        px = (round(b[0] * w), round(b[1] * h), round(b[2] * w), round(b[3] * h))
        out.append({"flip": False, "box": [round(v, 4) for v in b], "box_px": list(px), "of": of})
    return out


def inset_views(image: torch.Tensor, size: int, hyps: list[dict[str, Any]]) -> torch.Tensor:
    """The decoder inputs (H x C x S x S) of the ``inset`` hypotheses: each box cut from the full-size image and
    resized to the working size, as the plain read resizes a whole picture."""
    from robusthide.nets.watermark_model import resize

    views = []
    for hy in hyps:
        x0, y0, x1, y1 = hy["box_px"]
        views.append(resize(image[..., y0:y1, x0:x1].float(), (size, size)))
    return torch.cat(views) if views else image.new_zeros((0, image.shape[1], size, size), dtype=torch.float32)


def inset_text(geo: dict[str, Any]) -> str:
    """Where the inset search found the mark, for people: "the box x 77-653, y 55-487 (pixels) of the picture"."""
    x0, y0, x1, y1 = geo["box_px"]
    return f"the box x {x0}-{x1}, y {y0}-{y1} (pixels) of the picture"
