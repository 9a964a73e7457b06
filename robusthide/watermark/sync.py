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

Mirror images (session 11): a whole-image model (every model but the periodic ``geo`` ones, whose geometry
search has its own flips) is also read from the mirror image, by default, with every search including
``none`` (:func:`mirror_views`): people mirror selfies. Resizing commutes with the mirror, so the mirrored
hypotheses are the working-size views flipped left to right, one more decoder row each. The test pays for
them by weighted Bonferroni (:func:`hypothesis_weights`, :func:`robusthide.payload.mirror_weights`): the
mirror hypotheses share 1/8 of the false-positive budget, the image as it is keeps 7/8.

Rotations (``search='rotate'``, :func:`rotation_views`): the image turned back by -5 ... 5 degrees in steps
of 0.5 (the default model reads a rotation within about 0.25 degree of the true one at 0-1 % raw BER), with
the frame kept (black corners) or straightened (a photo editor's crop, resized back), and mirrored: 82
hypotheses, the 16 most confident decoded, the p-value paying for all of them. About 15-17 times the time
of a plain read (docs/results/bench-search.md).

Reframing (``search='reframe'``, session 20, :func:`reframe_hypotheses`): a platform that reframes a photo to
4:5, 1:1 or 16:9 keeps a centred band of it, whole along one axis, and resizes it. Placed back in a frame of the
original's aspect ratio (the rest filled with the mean colour), the default model reads it (an oracle with the
true aspect read 19 of 21 reframings of 8 photos after JPEG 75, docs/geometry.md). The original's aspect is
unknown, so the bands of every common one are hypotheses (:data:`REFRAME_ASPECTS`, both axes, with the mirror
images). Since session 21 each band is also tried at either end of the frame (``anchor`` ``start`` / ``end``):
a photo of a common aspect with one side cut off, by any amount, is the band r = a / X of a frame of its
original aspect X at one of its ends, so one-sided cuts read too (the position must be right within about a
pixel of the decoder's input, which the aspect ratio gives exactly).

Corners (``search='corner'``, session 23, :func:`corner_hypotheses`): a phone editor's crop dragged from one
corner with the aspect ratio locked keeps the opposite corner of the photo and the same fraction k of each
side. Placed back in that corner of the frame, the default model reads it when k is right to about 0.002
(docs/results/corner-crop-probe.json), so the search tries k = 0.996 ... 0.7 in steps of
:data:`CORNER_STEP` at the four corners (300 hypotheses, no mirror images). Its decoder pass runs in bf16
where the hardware has it natively, and the most confident rows again in float32 (:func:`screened_logits`).

Turns (``search='turn'``, session 25, :func:`turn_hypotheses`): rotations past the rotation search's 5 degrees. Turned
back within about half a degree of the true angle, the default model reads a photo turned by any angle up to 45
degrees with black corners, and straightened (cropped to fill) up to about 15 (docs/results/turn-probe.md). The
search tries 5.5 ... 45 degrees either way in steps of 0.5 (black corners; also straightened up to
:data:`TURN_CROP_MAX`) and the quarter turns (an editor's rotate button, or a photo whose orientation tag was
lost: :func:`turn_views` turns the picture back exactly, its sides swapped), mirrored too: 366 hypotheses, read
as the corner search reads its 300 (:func:`screened_logits`).

Staged (``search='staged'``, session 19; the default of the whole-image models, issue 19's "read geometry by
default, with no flag"): the plain read (as it is and mirrored) first, then (session 24) the inset search (the
boxes a photo may fill inside a larger picture, :mod:`robusthide.watermark.inset`), the reframing search (session
20), the rotation search, the crop search, (session 23) the corner search, (session 25) the turn search and
(session 32) the anywhere search (:mod:`robusthide.watermark.anywhere`), each only when the stages before it detect
nothing (:func:`staged_stages`). The stages share the false-positive budget :data:`STAGED_SHARES` (weighted
Bonferroni over all of them, :func:`hypothesis_weights`), so stopping at the first stage that detects keeps the
bound. A marked image read as it is costs what the plain read costs; an
unmarked one runs every stage (docs/results/bench-search.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Union

import torch
import torch.nn.functional as F

from robusthide.nets.watermark_model import resize

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from robusthide.payload import DecodeResult

#: ``search`` modes of extraction: ``none`` (read the image as it is), ``crop`` (centred crops), ``rotate``
#: (rotations about the centre, black corners or straightened), ``reframe`` (a band of a frame of another aspect
#: ratio, centred or at one end) and ``geometry`` (flips x per-axis scales, for the translation-invariant ``geo``
#: models), ``corner`` (a crop that kept one corner and the aspect ratio), ``inset`` (the whole picture and the
#: boxes a photo may fill inside it: padding, a screenshot, a collage), ``turn`` (rotations of 5.5-45 degrees and
#: quarter turns), ``slide`` (the bands of ``reframe`` anywhere along the frame), ``anywhere`` (a crop that kept the
#: aspect ratio, anywhere in the frame: :mod:`robusthide.watermark.anywhere`); ``staged`` (whole-image models:
#: ``none``, then ``inset``, ``reframe``, ``slide``, ``rotate``, ``crop``, ``corner``, ``turn`` and ``anywhere``,
#: each only when the ones before detect nothing; for a ``geo`` model the same as ``geometry``).
SEARCH_MODES = ("none", "crop", "geometry", "rotate", "reframe", "corner", "inset", "turn", "slide", "anywhere",
                "staged")
#: the stages of the ``staged`` search in order, with their shares of the false-positive budget (the rotation and
#: crop stages had 1/5 each until session 23, when the corner stage took 1/10 from them; the inset stage took
#: 1/20 from the plain read in session 24, the turn stage 1/10 in session 25, the slide stage 1/10 in session 26,
#: the anywhere stage 0.12 in session 32: as much as the plain read (0.09), the crop (0.02) and the slide stages
#: (0.01) could give with each of their rows still declared at as many errors, for every schema of 64 and 128
#: bits (:func:`robusthide.payload.max_detectable_errors`), and enough for the anywhere stage's refined rows to
#: be declared at 2 errors of 64 bits, as its screened rows are)
STAGED_SHARES = (("none", 0.16), ("inset", 0.05), ("reframe", 0.1), ("slide", 0.09), ("rotate", 0.15),
                 ("crop", 0.13), ("corner", 0.1), ("turn", 0.1), ("anywhere", 0.12))
#: Angles (degrees) of the rotation search: -5 ... 5 in steps of 0.5. Turned back by an angle within 0.25
#: degrees of the true one, the default model reads a rotated photo at 0-1 % raw BER (docs/geometry.md).
ROTATION_ANGLES = tuple(i / 2 for i in range(-10, 11))
#: How many of the rotation search's most confident hypotheses are decoded (the p-value pays for all).
ROTATION_TRIES = 16
#: Angles (degrees) of the turn search: 5.5 ... 45 either way in steps of 0.5, past :data:`ROTATION_ANGLES`.
TURN_ANGLES = tuple(sorted(s * i / 2 for i in range(11, 91) for s in (-1, 1)))
#: The largest angle the turn search also tries straightened (``fill='crop'``): the straighten of a 4:3 photo
#: turned by 10 degrees keeps 0.82 of each side (68 % of the area), at 15 degrees 0.76 (58 %), and past 10 degrees
#: the straightened reads fall to the search's threshold (15 degrees: a median p-value of 1e-10 at the true angle,
#: 1e-8 a quarter degree off, where the stage asks about 1e-9.3; docs/results/turn-probe.md).
TURN_CROP_MAX = 10.0
#: The quarter turns (degrees, counter-clockwise) the turn search undoes exactly.
QUARTER_TURNS = (90, 180, 270)
#: Per-axis side fractions of the geometry search's views (one decoder pass each, for every pair and
#: mirror): a ratio of 0.82 apart, the span one view's fractional folds cover (:data:`GEOMETRY_FOLD_RATIOS`).
GEOMETRY_SCALES = (1.0, 0.82, 0.67, 0.55)
#: Narrow side fractions for reframings that cut one axis hard (a 9:16 frame cut from 16:9 keeps 0.32 of the
#: width), each paired with :data:`GEOMETRY_NARROW_WITH` on the other axis: with the fold ratios they reach
#: side fractions down to 0.30. At the true scale the decoder reads such strips (docs/geometry.md).
GEOMETRY_NARROW_SCALES = (0.45, 0.37)
#: The side fractions of the other axis the narrow views are paired with (a reframing keeps it whole or zooms
#: in a little).
GEOMETRY_NARROW_WITH = (1.0, 0.82)
#: Fold ratios the geometry search tries first on each view's features, per axis: 0.96^j for j = -5 ... 5
#: (0.82 ... 1.22), the span between two views.
GEOMETRY_FOLD_RATIOS = tuple(0.96 ** j for j in range(-5, 6))
#: Finer ratios tried around each of the :data:`GEOMETRY_REFINE_TOP` most periodic coarse folds, per axis
#: (x 0.98 ... 1.02 by 1 %): the decoder needs the scale within about 1 % (docs/geometry.md).
GEOMETRY_FOLD_REFINE = tuple(0.99 ** j for j in range(-2, 3))
#: How many coarse folds (view, row ratio, column ratio), the most periodic first, are refined.
GEOMETRY_REFINE_TOP = 8
#: Sub-pixel phases of the fold, in feature pixels (0.5 is one working pixel; the cyclic shifts move by
#: whole feature pixels).
GEOMETRY_FOLD_OFFSETS = (0.0, 0.5)
#: The fold phases of the quick stage (:func:`quick_fold_logits`), in feature pixels.
GEOMETRY_QUICK_OFFSETS = GEOMETRY_FOLD_OFFSETS
#: Phases (dy, dx) in working pixels at which the full search renders the views of its best candidates again
#: (:func:`fold_search_logits`, step 5). The decoder's features have half the working resolution; with the
#: fold's interpolated offsets (:data:`GEOMETRY_FOLD_OFFSETS`) the views rendered half a working pixel over
#: align the mark within a quarter of a feature pixel. On 4 photos cropped to half their area in a corner then
#: JPEG 75, the best hypothesis read at 5.1-6.2 % raw BER without them and at 2.0-5.1 % with them (session 15).
GEOMETRY_PHASES = ((0.0, 0.0), (0.0, 0.5), (0.5, 0.0), (0.5, 0.5))
#: How many of the full search's best folds (the highest shift z-score, :func:`ranking_scores`) are rendered
#: again at every phase of :data:`GEOMETRY_PHASES`.
GEOMETRY_PHASE_TOP = 4
#: How many folds, the most periodic first (fold energy, :func:`fold_search_logits`), are read at every
#: cyclic shift.
GEOMETRY_CANDIDATES = 48
#: Rotation hypotheses of the geometry search, in degrees (the ``geo`` models are trained with +-2.5 deg).
GEOMETRY_ANGLES = (0.0,)
#: Rotations (degrees) the geometry search tries on the features of its isotropic views
#: (:func:`fold_search_logits`): +-0.5 ... +-5 in steps of 0.5 (the decoder reads a mark turned back within
#: about 0.5 degree).
GEOMETRY_FOLD_ANGLES = tuple(sorted(a / 2 * s for a in range(1, 11) for s in (-1, 1)))
#: The side fractions of the views whose features are turned: a rotation kept in its frame (1) or
#: straightened, which keeps 0.8-0.9 of each side up to 5 degrees.
GEOMETRY_FOLD_ANGLE_SCALES = (1.0, 0.82)
#: How many of the most confident hypotheses the geometry search tries to decode (the p-value still pays
#: for all of them).
GEOMETRY_TRIES = 64
#: The share of the false-positive budget (weighted Bonferroni) the geometry search's quick stage gets
#: (:func:`quick_fold_logits`): the whole image and its mirror image, at scale 1. The full search gets the rest.
#: The quick stage's 2 048 hypotheses then declare presence up to 36 corrected errors of 256 under the schema
#: ``robust`` (72 data bits, decoded past its BCH radius by ordered-statistics decoding), the full search up
#: to 30 (29 at its rendered phases, :data:`GEOMETRY_PHASE_SHARE`); an image that was not cropped or turned is
#: read in 2 decoder passes instead of 60 (:func:`search_stages`).
GEOMETRY_QUICK_SHARE = 0.25
#: The share of the full search's budget its rendered phases get (:data:`GEOMETRY_PHASES`, step 5 of
#: :func:`fold_search_logits`); the rest goes to its hypotheses at phase 0. With the quick stage at 1/4 this
#: leaves phase 0 half the budget, as in session 14 (30 errors of 256), and the phases 1/4 (29 errors).
GEOMETRY_PHASE_SHARE = 1 / 3
#: The share of the false-positive budget of the geometry search's rotation stage (:func:`rotation_fold_logits`),
#: tried when the quick stage and the full search read nothing. The full search gets what the two others leave.
GEOMETRY_ROTATION_SHARE = 0.1
#: Angles (degrees) the rotation stage's lattice estimate (:func:`lattice_scores`) chooses from: -45 ... 44.5 in
#: steps of 0.5 (the tile is square, so a quarter turn maps the lattice onto itself).
GEOMETRY_LATTICE_ANGLES = tuple(a / 2 for a in range(-90, 90))
#: Scales of the lattice (its frequency over the tile's) the estimate tries at each angle: 0.45-1.25, which
#: holds a straightened rotation's zoom (to 2.2 x) and stays clear of the lattice's diagonal alias at sqrt(2).
GEOMETRY_LATTICE_RATIOS = tuple(0.45 * (1.25 / 0.45) ** (i / 30) for i in range(31))
#: Harmonics of the tile lattice the estimate sums: every (m, n) != 0 with |m|, |n| <= 3.
GEOMETRY_LATTICE_HARMONICS = 3
#: How many estimated (angle, scale) pairs the rotation stage renders, each for the image and its mirror image.
GEOMETRY_ROTATION_CANDIDATES = 3
#: Turns (degrees) of the rotation stage's isotropic features beyond the rendered angle.
GEOMETRY_ROTATION_FOLD_ANGLES = (-1.0, -0.5, 0.5, 1.0)
#: At most this many frames of a video, spread evenly, are pooled in the full geometry search (each costs its
#: 60 decoder passes); the quick stage pools every frame read.
GEOMETRY_POOL_FRAMES = 8
#: Smallest side fraction the crop search tries (0.8: 64 % of the area kept).
MIN_SIDE = 0.8


def mirror_views(views: torch.Tensor) -> torch.Tensor:
    """The views (H x C x h x w) followed by their mirror images (left-right): 2H views, mirrored second."""
    return torch.cat([views, views.flip(-1)])


def mirror_hypotheses(hyps: Sequence[dict[str, float | bool]]) -> list[dict[str, float | bool]]:
    """The hypotheses of :func:`mirror_views`' rows: each of ``hyps`` with ``flip`` False, then with True."""
    return [{**h, "flip": False} for h in hyps] + [{**h, "flip": True} for h in hyps]


def hypothesis_weights(hyps: Sequence[dict[str, float | bool]]) -> torch.Tensor | None:
    """Weighted-Bonferroni weights of a search's hypotheses: for a whole-image search, mirror images share 1/8
    of the false-positive budget (:func:`robusthide.payload.mirror_weights`); for the geometry search, each
    hypothesis read is one of ``of`` it could have read (:func:`fold_search_logits`), weight 1 / ``of``; for
    the staged search, each stage's weights (uniform where the stage has none) times its ``share``.
    None (every hypothesis alike) for searches without mirror images."""
    from robusthide.payload import mirror_weights

    if hyps and "share" in hyps[0]:  # the staged search: each stage's own weights times its share
        out, i = [], 0
        while i < len(hyps):
            j = next((k for k in range(i, len(hyps)) if hyps[k]["stage"] != hyps[i]["stage"]), len(hyps))
            part = [{k: v for k, v in h.items() if k not in ("stage", "share")} for h in hyps[i:j]]
            w = hypothesis_weights(part)
            w = torch.full((j - i,), 1.0 / (j - i), dtype=torch.float64) if w is None else w
            out.append(w * float(hyps[i]["share"]))
            i = j
        return torch.cat(out)
    if hyps and "of" in hyps[0]:
        return torch.tensor([1.0 / float(h["of"]) for h in hyps], dtype=torch.float64)
    if not hyps or any("kx" in h for h in hyps) or not any(h.get("flip") for h in hyps):
        return None
    return torch.from_numpy(mirror_weights([bool(h.get("flip")) for h in hyps]))


def shift_group(hyps: Sequence[dict[str, Any]]) -> int | None:
    """How many consecutive hypotheses of a fold search are the cyclic shifts of one fold (P^2, as
    :func:`fold_search_logits` and :func:`quick_fold_logits` list them), or None for other searches."""
    if not hyps or "shift" not in hyps[0]:
        return None
    first = hyps[0]["shift"]
    return next((i for i in range(1, len(hyps)) if hyps[i]["shift"] == first), len(hyps))


def ranking_scores(logits: torch.Tensor, hyps: Sequence[dict[str, Any]] | None = None) -> torch.Tensor:
    """How likely each hypothesis (logits H x L) reads a mark, for choosing which to decode: its confidence,
    the mean absolute logit; for the fold searches' hypotheses (:func:`shift_group`), the z-score of that
    confidence among the cyclic shifts of its fold. A fold at the wrong scale or angle can give large logits at
    every shift; the right fold stands out at one shift only. On 8 validation photos reframed to 16:9
    (session 15, geo256-aa2 at step 4900) the readable hypothesis ranked first by the z-score on 6 of the 6
    that had one, and 14th to 17 939th by confidence."""
    conf = logits.float().abs().mean(dim=1)
    g = shift_group(hyps) if hyps is not None else None
    if g is None or g < 2 or conf.numel() % g:
        return conf
    c = conf.view(-1, g)
    return ((c - c.mean(1, keepdim=True)) / c.std(1, keepdim=True).clamp_min(1e-12)).flatten()


def decision_args(hyps: Sequence[dict[str, float | bool]],
                  logits: torch.Tensor | None = None) -> dict[str, torch.Tensor | int | None]:
    """The keyword arguments of :func:`decode_search` for a search's hypotheses: the mirror images' weights
    (:func:`hypothesis_weights`), for the rotation search at most :data:`ROTATION_TRIES` decodes, and with the
    ``logits``, the order in which to decode them (:func:`ranking_scores`)."""
    rotate = bool(hyps) and "fill" in hyps[0]
    out: dict[str, torch.Tensor | int | None] = {"weights": hypothesis_weights(hyps),
                                                 "max_tries": ROTATION_TRIES if rotate else None}
    if logits is not None:
        out["scores"] = ranking_scores(logits, hyps)
    return out


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


#: the corners a corner crop may keep, with the direction (x, y) its box moves in :func:`affine_views`
CORNERS = {"top-left": (-1, -1), "top-right": (1, -1), "bottom-left": (-1, 1), "bottom-right": (1, 1)}
#: step of the corner search's side fraction: the default model reads a corner crop with k off by 0.002 about as
#: well as at the true k, and loses half of them at 0.004 (docs/results/corner-crop-probe.json)
CORNER_STEP = 0.004
#: the smallest side fraction the corner search tries (0.7: half of the area)
CORNER_MIN_SIDE = 0.7


def corner_hypotheses(min_side: float = CORNER_MIN_SIDE, step: float = CORNER_STEP) -> list[dict[str, Any]]:
    """The corner-crop hypotheses: the image as the fraction k of each side of a larger frame of its own aspect,
    in one of its :data:`CORNERS` (``kx = ky = k``, the box moved there by ``ox`` / ``oy``), for k = 1 - ``step``
    down to ``min_side``; each also has ``corner``, ``corner_side`` (k), ``angle`` 0 and ``flip`` False."""
    if not 0 < min_side < 1 or not 0 < step < 1:
        raise ValueError(f"min_side and step must be in (0, 1), got {min_side} and {step}")
    ks = [1 - step * i for i in range(1, int(round((1 - min_side) / step)) + 1)]
    return [{"flip": False, "angle": 0.0, "kx": k, "ky": k, "ox": sx * (1 - k), "oy": sy * (1 - k),
             "corner": name, "corner_side": round(k, 4)} for k in ks for name, (sx, sy) in CORNERS.items()]


def corner_text(geo: dict[str, Any]) -> str:
    """Where a corner hypothesis puts the image, in words: "the top-left corner (0.800 of each side)"."""
    return f"the {geo['corner']} corner ({float(geo['corner_side']):.3f} of each side)"


#: rows of a screened decoder pass (:func:`screened_logits`) decoded again in float32
SCREEN_TOP = 8


def _cpu_bf16() -> bool:
    from robusthide.training.hardware import cpu_has_bf16

    return cpu_has_bf16()


def screened_logits(decoder: torch.nn.Module, views: torch.Tensor, hyps: Sequence[dict[str, Any]],
                    top: int = SCREEN_TOP) -> torch.Tensor:
    """Bit logits (H x L, float32) of ``views`` for a search with many hypotheses, at about half the cost: the
    decoder runs in bf16 where the device does natively (CUDA, or a CPU with AVX512-BF16 / AMX; elsewhere this is
    the plain float32 pass), then the ``top`` most confident rows (:func:`ranking_scores`) again in float32, so a
    marked image's hypothesis is decided on float32 logits. The p-value's bound does not depend on which rows
    are float32: under no mark every row's bits are as random in bf16 as in float32."""
    dev = views.device
    if not (dev.type == "cuda" or (dev.type == "cpu" and _cpu_bf16())) or views.shape[0] <= top:
        return decoder(views).float()
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        logits = decoder(views.contiguous(memory_format=torch.channels_last)).float()
    best = torch.topk(ranking_scores(logits, hyps), top).indices
    logits[best] = decoder(views[best]).float()
    return logits


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
    bf16 = x.device.type == "cuda" or (x.device.type == "cpu" and _cpu_bf16())
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


def geometry_hypotheses(scales: tuple[float, ...] = GEOMETRY_SCALES, angles: tuple[float, ...] = GEOMETRY_ANGLES,
                        flips: bool = True, narrow: tuple[float, ...] = ()) -> list[dict[str, float | bool]]:
    """The hypotheses (``flip``, ``angle``, ``kx``, ``ky``) of :func:`geometry_views`: mirror x ``angles`` x every
    pair of ``scales``, then each of ``narrow`` on one axis with each of :data:`GEOMETRY_NARROW_WITH` on the
    other."""
    pairs = [(kx, ky) for kx in scales for ky in scales]
    pairs += [p for n in narrow for w in GEOMETRY_NARROW_WITH for p in ((n, w), (w, n))]
    return [{"flip": f, "angle": a, "kx": kx, "ky": ky} for f in ((False, True) if flips else (False,))
            for a in angles for kx, ky in pairs]


def geometry_views(image: torch.Tensor, size: int, scales: tuple[float, ...] = GEOMETRY_SCALES,
                   angles: tuple[float, ...] = GEOMETRY_ANGLES, flips: bool = True,
                   narrow: tuple[float, ...] = ()) -> tuple[torch.Tensor, list[dict[str, float | bool]]]:
    """The decoder inputs (H x C x S x S) for one image (1 x C x h x w in [0, 1]) under every geometry
    hypothesis (:func:`geometry_hypotheses`), and the hypotheses. For a hypothesis, the image (mirrored back
    when ``flip``, turned back by ``angle`` degrees) fills the central ``kx`` S x ``ky`` S box of the S x S
    canvas, the rest is its mean colour: a crop that kept side fractions ``(kx, ky)`` of the marked image then
    shows the mark at its original scale, which is what the periodic ``geo`` decoder folds (it finds the phase
    itself, so where the box sits does not matter). The image is first resized to 2S x 2S once (antialiased);
    every view is one ``grid_sample`` of it (:func:`affine_views`)."""
    hyps = geometry_hypotheses(scales, angles, flips, narrow)
    return affine_views(image, size, hyps), hyps


def rotated_maps(features: torch.Tensor, weights: torch.Tensor, angle: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Square feature maps (N x C x h x h) and their fold weights turned back by ``angle`` degrees about the
    centre, as :func:`affine_views` turns an image (bilinear, zeros outside; the weights renormalised)."""
    t = -math.radians(float(angle))
    theta = torch.tensor([[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0]],
                         dtype=features.dtype, device=features.device)[None].expand(features.shape[0], -1, -1)
    grid = F.affine_grid(theta, list(features.shape), align_corners=False)
    f = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    w = F.grid_sample(weights, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return f, w / w.sum(dim=(-1, -2), keepdim=True).clamp_min(1e-12)


def _fold_energy(t: torch.Tensor) -> torch.Tensor:
    """How periodic the folds of :func:`robusthide.nets.geo.fractional_fold` (N x Ry x Rx x C x P x P) are: their
    variance over the tile, summed over channels; N x Ry x Rx. Reduced in the folds' memory order (one pass
    for the sum, one for the squares), about 20 times faster than ``var`` over the permuted axes."""
    n, ry, rx, c, p, _ = t.shape
    x = t.permute(0, 3, 1, 4, 2, 5)  # the contiguous layout N x C x Ry x P x Rx x P

    def tile_sum(y: torch.Tensor) -> torch.Tensor:
        return y.reshape(n, c, ry, p, rx * p).sum(3).view(n, c, ry, rx, p).sum(4)

    m = p * p
    s1, s2 = tile_sum(x), tile_sum(x * x)
    return ((s2 - s1 * s1 / m) / (m - 1)).sum(1)


Frames = Union[torch.Tensor, "Sequence[torch.Tensor]"]


def _frames(image: Frames) -> list[torch.Tensor]:
    """One image (1 x C x h x w) as a list of one frame; a sequence of frames as a list."""
    return [image] if isinstance(image, torch.Tensor) else list(image)


def pooled_maps(decoder: torch.nn.Module, image: Frames, size: int,
                hyps: Sequence[dict[str, Any]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Feature maps and fold weights of the views of ``hyps`` (:func:`affine_views`, one decoder pass each), for
    one image (1 x C x h x w in [0, 1]) or pooled over the frames of a video (a sequence of them: every
    frame's view under the same hypothesis shows the mark at the same place). Pooled, a map is
    (sum f w / sum w, mean w) over the frames, so that its fold (:func:`robusthide.nets.geo.fractional_fold`)
    is exactly the fold of every frame's evidence together."""
    frames = _frames(image)
    if not frames:
        raise ValueError("no frames to read")
    acc: list[list[torch.Tensor]] = []
    for x in frames:
        views = affine_views(x, size, hyps)
        if views.shape[1] == 1:
            views = views.expand(-1, 3, -1, -1)
        maps = [decoder.feature_maps(v) for v in views.split(1)]
        if len(frames) == 1:
            return maps
        if not acc:
            acc = [[f * w, w.clone()] for f, w in maps]
        else:
            for a, (f, w) in zip(acc, maps):
                a[0] += f * w
                a[1] += w
    return [(fw / w.clamp_min(1e-12), w / len(frames)) for fw, w in acc]


def view_maps(decoder: torch.nn.Module, image: Frames, size: int, scales: tuple[float, ...],
              flips: bool = True, narrow: tuple[float, ...] = ()
              ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[dict[str, Any]]]:
    """:func:`pooled_maps` of the views of :func:`geometry_views`, and their hypotheses."""
    hyps = geometry_hypotheses(scales, GEOMETRY_ANGLES, flips, narrow)
    return pooled_maps(decoder, image, size, hyps), hyps


def _search_maps(maps: Sequence[tuple[torch.Tensor, torch.Tensor]], vhyps: Sequence[dict[str, Any]],
                 fold_angles: tuple[float, ...], fold_angle_scales: tuple[float, ...]
                 ) -> list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]]:
    """Step 1 of :func:`fold_search_logits`: (features, fold weights, hypothesis) of every view
    (:func:`view_maps`), and of the isotropic views in ``fold_angle_scales`` also turned back by each of
    ``fold_angles`` more than they were rendered (the hypothesis' ``angle`` is the sum; ``turn`` the part
    done on the features)."""
    out: list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]] = []
    for (f, w), vh in zip(maps, vhyps):
        out.append((f, w, vh))
        if vh["kx"] == vh["ky"] and vh["kx"] in fold_angle_scales:
            out += [(*rotated_maps(f, w, a), {**vh, "angle": float(vh["angle"]) + a, "turn": a})
                    for a in fold_angles]
    return out


_Fold = tuple[float, float, float, tuple[float, float], torch.Tensor]


def _most_periodic(f: torch.Tensor, w: torch.Tensor, period: int, ry: Sequence[float], rx: Sequence[float],
                   offsets: Sequence[float], k: int) -> list[_Fold]:
    """The ``k`` most periodic folds of one map (1 x C x h x w features, 1 x 1 x h x w weights) over the row
    ratios ``ry`` x column ratios ``rx`` x ``offsets`` on each axis: (energy, row ratio, column ratio, offsets
    (y, x), fold C x P x P), the most periodic first."""
    from robusthide.nets.geo import fractional_fold, phase_assignment

    no = len(offsets)
    t = fractional_fold(f, w, phase_assignment(f.shape[-2], period, ry, offsets).to(f.device),
                        phase_assignment(f.shape[-1], period, rx, offsets).to(f.device))
    e, t = _fold_energy(t)[0], t[0]  # (Ry O) x (Rx O)
    top = e.flatten().topk(min(k, e.numel()))
    out = []
    for val, j in zip(top.values.tolist(), top.indices.tolist()):
        a, b = divmod(j, e.shape[1])
        out.append((val, ry[a // no], rx[b // no], (offsets[a % no], offsets[b % no]), t[a, b]))
    return out


@torch.no_grad()
def fold_search_logits(decoder: torch.nn.Module, image: Frames, size: int,
                       scales: tuple[float, ...] = GEOMETRY_SCALES,
                       narrow: tuple[float, ...] = GEOMETRY_NARROW_SCALES,
                       ratios: tuple[float, ...] = GEOMETRY_FOLD_RATIOS,
                       refine: tuple[float, ...] = GEOMETRY_FOLD_REFINE,
                       offsets: tuple[float, ...] = GEOMETRY_FOLD_OFFSETS,
                       refine_top: int = GEOMETRY_REFINE_TOP, candidates: int = GEOMETRY_CANDIDATES,
                       fold_angles: tuple[float, ...] = GEOMETRY_FOLD_ANGLES,
                       fold_angle_scales: tuple[float, ...] = GEOMETRY_FOLD_ANGLE_SCALES,
                       phases: tuple[tuple[float, float], ...] = GEOMETRY_PHASES, phase_top: int = GEOMETRY_PHASE_TOP,
                       flips: bool = True, budget: float = 1.0) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The geometry search of a periodic ``geo`` decoder (:class:`robusthide.nets.geo.TileDecoder`): bit
    logits (H x L) and hypotheses for one image (1 x C x h x w in [0, 1]), or for the frames of a video (a
    sequence of them, their evidence pooled by :func:`view_maps`).

    1. Feature maps (:func:`view_maps`, :func:`_search_maps`): views (:func:`geometry_views`) for mirror x
       side fractions ``scales`` per axis and the ``narrow`` strips, one decoder pass each; the features of
       the unrotated views with equal fractions in ``fold_angle_scales`` are also turned back by each of
       ``fold_angles`` (:func:`rotated_maps`; a rotation kept in its frame or straightened keeps about that
       scale). Turned
       back within 0.5 degree the decoder reads a rotated mark; 1 degree off it does not.
    2. Each map is folded at every pair of fractional periods (``ratios`` x ``offsets`` per axis,
       :func:`robusthide.nets.geo.fractional_fold`): a view whose fractions are a few % off the crop's
       shows the mark at a period a few % off the tile's, and the fold at the matching ratio undoes that
       without another decoder pass (the features are local; the fold is what drifts, by the error times
       the canvas's half-width).
    3. The ``refine_top`` most periodic folds (largest variance over the tile, summed over channels), and
       the most periodic fold of every map, are folded again at their ratios times ``refine`` per axis.
    4. The ``candidates`` most periodic folds of step 3, and the most periodic of every map, are read at
       every cyclic shift (:meth:`~robusthide.nets.geo.TileDecoder.shift_logits`). Every map keeps a
       candidate because turned maps are resampled, which smooths them: their folds are less periodic by
       that measure than an unturned map's, even where the unturned one reads nothing (a 0.5-degree turn).
    5. The ``phase_top`` best folds of step 4 (the highest shift z-score, :func:`ranking_scores`) are rendered
       again at the other ``phases`` (the content moved by half a working pixel down, right, or both;
       :func:`_phase_fold`), folded at the same ratios and offsets and read at every cyclic shift.

    Each hypothesis holds ``flip``, ``angle``, the side fractions ``kx``, ``ky`` it stands for, the fold's
    sub-pixel ``offset`` (y, x), the view's ``phase`` (dy, dx) and the tile ``shift`` (dy, dx) in working
    pixels, and ``of``: the number of hypotheses the search could have read at its phase (maps x every ratio
    and offset pair of steps 2-3 x shifts; times the other phases for step 5) divided by its share of the
    false-positive budget: ``budget`` (what :func:`search_stages` gives the search) times 1 -
    :data:`GEOMETRY_PHASE_SHARE` at phase 0, times :data:`GEOMETRY_PHASE_SHARE` at the other phases. The
    p-value pays for all of them (:func:`hypothesis_weights`), so the data-driven choice of candidates keeps
    the false-positive bound."""
    maps = _search_maps(*view_maps(decoder, image, size, scales, flips, narrow), fold_angles, fold_angle_scales)
    return _read_folds(decoder, image, size, maps, ratios, refine, offsets, refine_top, candidates, phases,
                       phase_top, budget)


def _read_folds(decoder: torch.nn.Module, image: Frames, size: int,
                maps: Sequence[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]], ratios: tuple[float, ...],
                refine: tuple[float, ...], offsets: tuple[float, ...], refine_top: int, candidates: int,
                phases: tuple[tuple[float, float], ...], phase_top: int, budget: float
                ) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Steps 2-5 of :func:`fold_search_logits` on the maps of step 1: bit logits (H x L) and hypotheses."""
    p = decoder.tile
    coarse = [(e, i, ry, rx) for i, (f, w, _) in enumerate(maps)
              for e, ry, rx, _, _ in _most_periodic(f, w, p, ratios, ratios, offsets, refine_top)]
    found = []
    best_of_map: dict[int, tuple[float, int, float, float]] = {}
    for c in coarse:  # each map's most periodic fold too (step 3)
        if c[1] not in best_of_map or c[0] > best_of_map[c[1]][0]:
            best_of_map[c[1]] = c
    picks = sorted(coarse, key=lambda c: -c[0])[:refine_top]
    picks += [c for c in best_of_map.values() if c not in picks]
    for _, i, ry, rx in picks:
        fy, fx = [ry * r for r in refine], [rx * r for r in refine]
        found += [(*c, i) for c in _most_periodic(maps[i][0], maps[i][1], p, fy, fx, offsets, candidates)]
    per_map = {}
    for c in sorted(found, key=lambda c: -c[0]):
        per_map.setdefault(c[5], c)
    top = sorted(found, key=lambda c: -c[0])[:candidates]
    found = top + [c for c in per_map.values() if not any(c is t for t in top)]
    logits = decoder.shift_logits(torch.stack([c[4] for c in found]))  # M x P^2 x L
    folds = [(ry, rx, off, i, (0.0, 0.0)) for _, ry, rx, off, _, i in found]
    if len(phases) > 1 and phase_top > 0:  # step 5
        z = ranking_scores(logits.flatten(0, 1), [{"shift": s} for _ in found for s in range(p * p)])
        best = z.view(len(found), -1).amax(1).argsort(descending=True)[:phase_top].tolist()
        more = [_phase_fold(decoder, image, size, maps[folds[j][3]][2], *folds[j][:3], ph)
                for j in best for ph in phases if any(ph)]
        logits = torch.cat([logits, decoder.shift_logits(torch.stack(more))])
        folds += [(*folds[j][:4], tuple(ph)) for j in best for ph in phases if any(ph)]
    universe = len(maps) * (len(ratios) * len(refine) * len(offsets)) ** 2 * p * p  # at one phase
    phased = sum(1 for ph in phases if any(ph)) if phase_top > 0 else 0
    share = GEOMETRY_PHASE_SHARE if phased else 0.0
    of = {False: universe / (float(budget) * (1 - share)),
          True: universe * phased / (float(budget) * share) if phased else math.inf}
    hyps: list[dict[str, Any]] = []
    for ry, rx, off, i, ph in folds:
        vh = maps[i][2]
        base = {"flip": vh["flip"], "angle": vh["angle"], "kx": float(vh["kx"]) * rx, "ky": float(vh["ky"]) * ry,
                "offset": off, "phase": ph, "of": of[any(ph)], "turn": float(vh.get("turn", 0.0))}
        hyps += [{**base, "shift": (2 * (s // p), 2 * (s % p))} for s in range(p * p)]
    return logits.flatten(0, 1).float(), hyps


def _phase_fold(decoder: torch.nn.Module, image: Frames, size: int, vh: dict[str, Any], ry: float, rx: float,
                off: tuple[float, float], phase: tuple[float, float]) -> torch.Tensor:
    """Step 5 of :func:`fold_search_logits`: the fold (C x P x P) of the view of hypothesis ``vh`` rendered
    again with its content moved by ``phase`` (dy, dx) working pixels (fractions allowed), its features turned
    by the hypothesis' ``turn`` as :func:`_search_maps` turns them, at row / column ratios ``ry`` / ``rx`` and
    ``off``sets."""
    from robusthide.nets.geo import fractional_fold, phase_assignment

    turn = float(vh.get("turn", 0.0))
    f, w = pooled_maps(decoder, image, size, [{**vh, "angle": float(vh["angle"]) - turn, "phase": phase}])[0]
    if turn:
        f, w = rotated_maps(f, w, turn)
    p = decoder.tile
    return fractional_fold(f, w, phase_assignment(f.shape[-2], p, (ry,), (off[0],)).to(f.device),
                           phase_assignment(f.shape[-1], p, (rx,), (off[1],)).to(f.device))[0, 0, 0]


def lattice_transform(angle: float, aspect: float) -> torch.Tensor:
    """The 2 x 2 map (x, y) of a view's normalised canvas onto the image that a hypothesis turned back by
    ``angle`` degrees reads, for an image ``aspect`` = width / height: :func:`affine_views`' rotation of the
    image's pixels. The mark's tile lattice in a view of an image turned by that angle is this map of the
    square lattice the encoder wrote."""
    t = -math.radians(float(angle))
    return torch.tensor([[math.cos(t), -math.sin(t) / aspect], [aspect * math.sin(t), math.cos(t)]],
                        dtype=torch.float64)


def lattice_scores(features: torch.Tensor, period: int, aspect: float,
                   angles: tuple[float, ...] = GEOMETRY_LATTICE_ANGLES,
                   ratios: tuple[float, ...] = GEOMETRY_LATTICE_RATIOS,
                   harmonics: int = GEOMETRY_LATTICE_HARMONICS) -> torch.Tensor:
    """How strongly a view's decoder features (1 x C x h x h) show the tile lattice turned by each of
    ``angles`` (and scaled by each of ``ratios``): the mean whitened power (the power spectrum over its
    7 x 7 local mean, summed over channels, Hann-windowed) at the lattice's frequencies, every
    (m, n) != 0 with |m|, |n| <= ``harmonics``. A periodic mark, however the image was turned, leaves
    sharp peaks there (any translation-equivariant feature of a periodic pattern is periodic on the same
    lattice: Kutter 1999's self-reference); the image content does not. angles x ratios.
    """
    f = features[0].float()
    f = f - f.mean(dim=(1, 2), keepdim=True)
    n = f.shape[-1]
    win = torch.hann_window(n, periodic=False, dtype=f.dtype, device=f.device)
    power = torch.fft.fftshift((torch.fft.fft2(f * win[:, None] * win[None]).abs() ** 2).sum(0))
    local = F.avg_pool2d(power[None, None], 7, 1, 3, count_include_pad=False)[0, 0]
    white = (power / local.clamp_min(1e-12))[None, None]
    mn = torch.tensor([(m, k) for m in range(-harmonics, harmonics + 1) for k in range(-harmonics, harmonics + 1)
                       if (m, k) != (0, 0)], dtype=torch.float64)
    base = n / period  # cycles of the fundamental over the view
    freq = torch.stack([torch.linalg.inv(lattice_transform(a, aspect)).T for a in angles])  # A x 2 x 2
    q = torch.einsum("aij,pj->api", freq, mn)[:, None] * (base * torch.tensor(ratios, dtype=torch.float64))[
        None, :, None, None]  # A x R x P x 2 (x, y) in cycles
    c = n // 2
    grid = ((c + q) / (n - 1) * 2 - 1).to(f.dtype)
    inside = (q.abs() < c - 1).all(-1).to(f.dtype)
    vals = F.grid_sample(white, grid.reshape(1, 1, -1, 2), align_corners=True).view(q.shape[:-1])
    return (vals * inside).sum(-1) / inside.sum(-1).clamp_min(1)


def lattice_angles(features: torch.Tensor, period: int, aspect: float, k: int = GEOMETRY_ROTATION_CANDIDATES,
                   outside: float = max(GEOMETRY_FOLD_ANGLES) + 0.25, apart: float = 4.0
                   ) -> list[tuple[float, float]]:
    """The ``k`` (angle, ratio) pairs of :data:`GEOMETRY_LATTICE_ANGLES` x :data:`GEOMETRY_LATTICE_RATIOS` at
    which :func:`lattice_scores` finds the tile lattice best, the best first: angles (degrees, as hypotheses
    turn back, :func:`affine_views`) beyond ``outside`` (what the full search turns already) and at least
    ``apart`` degrees from each other. A ratio r < 1 means the mark was enlarged by 1 / r.

    On 6 photos marked by ``geo256`` (refined) and turned by 8, -12, 20, -30 and 40 degrees, with black
    corners or straightened (60 images), the true angle came first on 85 % and in the first three on 93 %
    (session 18, docs/scripts/lattice_angle_probe.py)."""
    sc = lattice_scores(features, period, aspect)
    best, arg = sc.max(1)
    out: list[tuple[float, float]] = []
    for i in best.argsort(descending=True).tolist():
        a = GEOMETRY_LATTICE_ANGLES[i]
        if abs(a) > outside and all(abs(a - b) >= apart for b, _ in out):
            out.append((a, GEOMETRY_LATTICE_RATIOS[int(arg[i])]))
            if len(out) == k:
                break
    return out


@torch.no_grad()
def rotation_fold_logits(decoder: torch.nn.Module, image: Frames, size: int, budget: float = 1.0,
                         fold_angles: tuple[float, ...] = GEOMETRY_ROTATION_FOLD_ANGLES,
                         k: int = GEOMETRY_ROTATION_CANDIDATES,
                         quarter_turns: bool = True) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The rotation stage of the geometry search (:func:`search_stages`): rotations beyond the full search's
    +-5 degrees, up to +-45, kept in the frame or straightened, and with ``quarter_turns`` any of them (0
    included) plus a quarter, half or three-quarter turn. :func:`lattice_angles` reads the angle and
    scale of the tile lattice from the decoder's features of the whole view (the mark is its own
    synchronisation template). For each of the ``k`` best, the image and its mirror image (whose lattice
    turns the other way) are rendered turned back by that angle at the side fraction the scale gives, the
    features also turned by ``fold_angles`` more, and read as the full search reads its maps
    (:func:`fold_search_logits`, steps 2-5; its fold ratios cover the scale to +-20 %). The decoder needs
    the angle within about half a degree: the estimate's 0.5-degree grid and the feature turns give that.

    The lattice is square, so its angle is known modulo a quarter turn; with ``quarter_turns`` the best angle
    is also read a quarter, half and three-quarter turn over (a photo turned in a gallery app).

    The angles and scales are chosen from the data, so the p-value pays for every one they could have been:
    each (mirror, quarter turn, angle, scale) block's hypotheses get ``of`` = its own count x 2 x 4 x
    len(:data:`GEOMETRY_LATTICE_ANGLES`) x len(:data:`GEOMETRY_LATTICE_RATIOS`) / ``budget``
    (:func:`hypothesis_weights`). Returns no hypotheses when no angle qualifies."""
    frames = _frames(image)
    aspect = frames[0].shape[-1] / frames[0].shape[-2]
    share = float(budget) / (2 * 4 * len(GEOMETRY_LATTICE_ANGLES) * len(GEOMETRY_LATTICE_RATIOS))
    whole = {"flip": False, "angle": 0.0, "kx": 1.0, "ky": 1.0}
    f, _ = pooled_maps(decoder, frames, size, [whole])[0]
    logits: list[torch.Tensor] = []
    hyps: list[dict[str, Any]] = []
    blocks = [(a, r, 0) for a, r in lattice_angles(f, decoder.tile, aspect, k)]
    if quarter_turns:  # the best lattice angle, small ones included, a quarter, half and three-quarter turn over
        blocks += [(a, r, q) for a, r in lattice_angles(f, decoder.tile, aspect, 1, outside=-1.0)
                   for q in (90, 180, 270)]
    for a, r, q in blocks:
        # a quarter turn swaps the image's sides: its view needs side fractions (aspect, 1 / aspect) to show
        # the mark's square tile square again (in normalised coordinates the quarter turn is a pure rotation)
        kx, ky = (min(1.0, r) * aspect, min(1.0, r) / aspect) if q % 180 else (min(1.0, r),) * 2
        for flip in (False, True):
            turn = (a + q + 180) % 360 - 180  # in [-180, 180)
            vh = [{"flip": flip, "angle": -turn if flip else turn, "kx": kx, "ky": ky}]
            maps = _search_maps(pooled_maps(decoder, frames, size, vh), vh, fold_angles, (kx,) if kx == ky else ())
            lg, hy = _read_folds(decoder, frames, size, maps, GEOMETRY_FOLD_RATIOS, GEOMETRY_FOLD_REFINE,
                                 GEOMETRY_FOLD_OFFSETS, GEOMETRY_REFINE_TOP, GEOMETRY_CANDIDATES // 2,
                                 GEOMETRY_PHASES, 1, share)
            logits.append(lg)
            hyps += hy
    if not logits:
        return torch.zeros(0, decoder.n_bits), []
    return torch.cat(logits), hyps


@torch.no_grad()
def quick_fold_logits(decoder: torch.nn.Module, image: Frames, size: int,
                      offsets: tuple[float, ...] = GEOMETRY_QUICK_OFFSETS, flips: bool = True,
                      budget: float = GEOMETRY_QUICK_SHARE) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The quick stage of the geometry search (:func:`search_stages`): bit logits (H x L) and hypotheses for one
    image (1 x C x h x w in [0, 1]; or the frames of a video, pooled, :func:`view_maps`) read whole (side
    fractions 1) and, with ``flips``, mirrored, each folded at
    the tile's own period at every pair of sub-pixel ``offsets`` and read at every cyclic shift. This covers
    what keeps the mark's scale on the working-size view: codecs, photometric edits, resizing, mirroring. The
    hypotheses hold the keys of :func:`fold_search_logits`' and ``of`` = their number / ``budget``."""
    from robusthide.nets.geo import fractional_fold, phase_assignment

    maps, vhyps = view_maps(decoder, image, size, (1.0,), flips)
    f, w = torch.cat([m[0] for m in maps]), torch.cat([m[1] for m in maps])
    p = decoder.tile
    t = fractional_fold(f, w, phase_assignment(f.shape[-2], p, (1.0,), offsets).to(f.device),
                        phase_assignment(f.shape[-1], p, (1.0,), offsets).to(f.device))  # V x O x O x C x P x P
    pairs = [(a, b) for a in range(len(offsets)) for b in range(len(offsets))]
    folds = torch.stack([t[v, a, b] for v in range(len(vhyps)) for a, b in pairs])
    logits = decoder.shift_logits(folds)  # (V O O) x P^2 x L
    of = len(vhyps) * len(pairs) * p * p / float(budget)
    hyps = [{"flip": vh["flip"], "angle": 0.0, "kx": 1.0, "ky": 1.0, "offset": (offsets[a], offsets[b]),
             "phase": (0.0, 0.0), "turn": 0.0, "shift": (2 * (s // p), 2 * (s % p)), "of": of}
            for vh in vhyps for a, b in pairs for s in range(p * p)]
    return logits.flatten(0, 1).float(), hyps


def search_stages(decoder: torch.nn.Module, image: Frames, size: int, search: str,
                  mirror: bool = True) -> Iterator[tuple[torch.Tensor, list[dict[str, Any]]]]:
    """The stages of ``search`` for one image (1 x C x h x w in [0, 1]), lazily: (bit logits H x L,
    hypotheses) per stage. The geometry search of a folding ``geo`` decoder has two: the quick stage
    (:func:`quick_fold_logits`, :data:`GEOMETRY_QUICK_SHARE` of the false-positive budget), then the full
    search (:func:`fold_search_logits`, the rest). Their weights sum to 1 (weighted Bonferroni over both), so
    a decision may stop at the first stage that detects (:func:`decode_stages`) without changing the
    false-positive bound. It also reads the frames of a video (a sequence of images), pooled: every frame in
    the quick stage, :data:`GEOMETRY_POOL_FRAMES` of them spread evenly in the full search (``staged`` is the
    same for a ``geo`` decoder). The staged search of a whole-image model has three (:func:`staged_stages`).
    Every other search is one stage, :func:`search_logits`, of one image."""
    if check_search(search) in ("geometry", "staged") and hasattr(decoder, "feature_maps"):
        frames = _frames(image)
        yield quick_fold_logits(decoder, frames, size)
        step = max(1, math.ceil(len(frames) / GEOMETRY_POOL_FRAMES))
        yield fold_search_logits(decoder, frames[::step], size,
                                 budget=1.0 - GEOMETRY_QUICK_SHARE - GEOMETRY_ROTATION_SHARE)
        yield rotation_fold_logits(decoder, frames[::step], size, budget=GEOMETRY_ROTATION_SHARE)
        return
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"the {search} search reads one image, not a sequence of frames")
    if search == "staged":
        yield from staged_stages(decoder, image, size, mirror)
        return
    yield search_logits(decoder, image, size, search, mirror)


def staged_hypotheses(hyps: Sequence[dict[str, Any]], stage: str) -> list[dict[str, Any]]:
    """``hyps`` of one stage of the staged search, tagged with the stage and its share (:data:`STAGED_SHARES`)."""
    share = dict(STAGED_SHARES)[stage]
    return [{**h, "stage": stage, "share": share} for h in hyps]


def staged_stages(decoder: torch.nn.Module, image: torch.Tensor, size: int, mirror: bool = True,
                  first: tuple[torch.Tensor, list[dict[str, Any]]] | None = None
                  ) -> Iterator[tuple[torch.Tensor, list[dict[str, Any]]]]:
    """The stages of the staged search of a whole-image model, lazily (:data:`STAGED_SHARES`: the plain read,
    the inset, reframing, slide, rotation, crop, corner, turn and anywhere searches; a stage may have no
    hypotheses, the inset search when it finds no box, the slide search on a picture of an uncommon shape), their
    hypotheses tagged by :func:`staged_hypotheses`. ``first``: the plain read's logits and hypotheses when the
    caller has them (the Watermarker's 8-bit fast path), so that its first stage is bit-identical to
    ``search='none'``."""
    for stage, _ in STAGED_SHARES:
        if stage == "none" and first is not None:
            logits, hyps = first
        else:
            logits, hyps = search_logits(decoder, image, size, stage, mirror, staged=True)
        yield logits, staged_hypotheses(hyps, stage)


def frames_stage_logits(decoder: torch.nn.Module, frames: Sequence[torch.Tensor], size: int, stage: str,
                        mirror: bool = True) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The logits (H x L) and hypotheses of one stage of the staged search (``slide``, ``rotate``, ``crop``,
    ``corner``, ``turn`` or ``anywhere``) over the frames of one clip (each 1 x C x h x w in [0, 1], one size): an
    edit of a clip (a crop, a straighten, a turn) is the same in every frame, so each hypothesis' logits are
    averaged over the frames (a soft vote, as the video extractor's plain read pools its frames); the anywhere
    search refines on the frames' average (:func:`robusthide.watermark.anywhere.anywhere_search`). The
    hypotheses are untagged, as :func:`search_logits` returns them."""
    if not frames:
        raise ValueError("no frames to search")
    if stage == "anywhere":
        from robusthide.watermark.anywhere import anywhere_search

        return anywhere_search(decoder, list(frames), size,
                               2 * decoder.stride / size if hasattr(decoder, "stride") else SLIDE_WINDOW)
    rows = [search_logits(decoder, f, size, stage, mirror, staged=True) for f in frames]
    return sum((lg for lg, _ in rows[1:]), rows[0][0]) / len(rows), rows[0][1]


def decode_stages(stages: Iterable[tuple[torch.Tensor, list[dict[str, Any]]]], n_bits: int,
                  threshold: float | None = None,
                  soft_share: float = 0.0) -> tuple[DecodeResult, torch.Tensor, dict[str, Any]]:
    """Decide one image from its search stages (:func:`search_stages`): each stage is decoded
    (:func:`decode_search` with :func:`decision_args`) until one detects; later stages are then not computed.
    Returns the detected result, else the one with the smallest p-value, with its hypothesis' logits (L) and
    the hypothesis. ``soft_share``: as in :func:`decode_search`."""
    best: tuple[DecodeResult, torch.Tensor, dict[str, Any]] | None = None
    for logits, hyps in stages:
        if not hyps:  # a stage with nothing to try (the rotation stage when no angle qualifies)
            continue
        r, i = decode_search(logits, n_bits, threshold, soft_share=soft_share, **decision_args(hyps, logits))
        if best is None or r.p_value < best[0].p_value:
            best = (r, logits[i], hyps[i])
        if r.detected:
            break
    if best is None:
        raise ValueError("no search stage to decode")
    return best


def affine_views(image: torch.Tensor, size: int, hyps: Sequence[dict[str, float | bool]]) -> torch.Tensor:
    """The views (H x C x S x S) of :func:`geometry_views` for the given hypotheses (``flip``, ``angle``,
    ``kx``, ``ky`` each, and optionally ``phase`` (dy, dx): the content moved by that many view pixels, and
    ``oy`` / ``ox``: moved by that much of the canvas' half-side, :func:`reframe_hypotheses`)."""
    src = resize(image.float(), (2 * size, 2 * size))
    fill = src.mean(dim=(2, 3), keepdim=True)
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
    dy = torch.tensor([2.0 * float(h.get("phase", (0, 0))[0]) / size + float(h.get("oy", 0.0)) for h in hyps],
                      dtype=dt, device=dev)
    dx = torch.tensor([2.0 * float(h.get("phase", (0, 0))[1]) / size + float(h.get("ox", 0.0)) for h in hyps],
                      dtype=dt, device=dev)
    theta[:, 0, 2] = -(theta[:, 0, 0] * dx + theta[:, 0, 1] * dy)  # canvas u shows the image at u - (dx, dy)
    theta[:, 1, 2] = -(theta[:, 1, 0] * dx + theta[:, 1, 1] * dy)
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    views = F.grid_sample((src - fill).expand(n, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
                          align_corners=False)
    u = (torch.arange(size, dtype=dt, device=dev) + 0.5) / size * 2 - 1
    inside = (((u[None, None, :] - dx[:, None, None]).abs() <= kx[:, None, None])
              & ((u[None, :, None] - dy[:, None, None]).abs() <= ky[:, None, None]))
    return views * inside[:, None].to(dt) + fill


def rotation_views(image: torch.Tensor, size: int, angles: tuple[float, ...] = ROTATION_ANGLES,
                   flips: bool = True) -> tuple[torch.Tensor, list[dict[str, float | bool | str]]]:
    """The decoder inputs (H x C x S x S) for one image (1 x C x h x w in [0, 1]) under every rotation
    hypothesis of a whole-image model, and the hypotheses (``flip``, ``angle``, ``fill``): turned back by
    ``angle`` degrees about the centre, for ``fill='black'`` as it is (a rotation that kept the frame, with
    black corners), for ``fill='crop'`` also shrunk into the centred box a photo editor's straighten keeps
    (:func:`robusthide.codecs.geometric.inscribed_sides`, resized back to the full frame). The unrotated
    image is one hypothesis (angle 0, black); with ``flips``, every hypothesis is repeated for the mirror
    image, after the others."""
    base: list[dict[str, float | bool | str]] = []
    for a in angles:
        base.append({"angle": float(a), "fill": "black"})
        if a != 0:
            base.append({"angle": float(a), "fill": "crop"})
    hyps = mirror_hypotheses(base) if flips else [{**b, "flip": False} for b in base]
    return turned_back_views(image, size, hyps), hyps


def turned_back_views(image: torch.Tensor, size: int, hyps: Sequence[dict[str, Any]]) -> torch.Tensor:
    """The views (H x C x S x S) of rotation hypotheses (``angle``, ``fill`` black or crop, ``flip``;
    :func:`rotation_views`): the image turned back by ``angle`` about its centre, shrunk for ``crop`` into the
    box a straighten keeps (:func:`robusthide.codecs.geometric.inscribed_sides`)."""
    from robusthide.codecs.geometric import inscribed_sides

    h, w = image.shape[-2:]
    aff = []
    for hy in hyps:
        k = inscribed_sides(float(hy["angle"]), int(h), int(w))[0] if hy["fill"] == "crop" else 1.0
        aff.append({"flip": bool(hy["flip"]), "angle": float(hy["angle"]), "kx": k, "ky": k})
    return affine_views(image, size, aff)


def turn_hypotheses(flips: bool = True) -> list[dict[str, Any]]:
    """The turn search's hypotheses (``angle``, ``fill``, ``flip``): the :data:`QUARTER_TURNS` (``fill``
    ``quarter``), then every angle of :data:`TURN_ANGLES` with black corners and, up to :data:`TURN_CROP_MAX`,
    straightened; with ``flips``, all of them again for the mirror image, after the others."""
    base: list[dict[str, Any]] = [{"angle": float(q), "fill": "quarter"} for q in QUARTER_TURNS]
    for a in TURN_ANGLES:
        base.append({"angle": a, "fill": "black"})
        if abs(a) <= TURN_CROP_MAX:
            base.append({"angle": a, "fill": "crop"})
    return mirror_hypotheses(base) if flips else [{**b, "flip": False} for b in base]


def turn_views(image: torch.Tensor, size: int, hyps: Sequence[dict[str, Any]]) -> torch.Tensor:
    """The decoder inputs (H x C x S x S) of :func:`turn_hypotheses`: a quarter turn is undone exactly (the
    picture turned back by ``angle`` in its pixels, its sides swapped, then resized to S x S as the plain read
    resizes any picture; mirrored with ``flip``), every other hypothesis as :func:`turned_back_views`."""
    out = torch.empty(len(hyps), image.shape[1], size, size, dtype=torch.float32, device=image.device)
    quarter = [i for i, h in enumerate(hyps) if h["fill"] == "quarter"]
    other = [i for i, h in enumerate(hyps) if h["fill"] != "quarter"]
    for i in quarter:
        v = resize(torch.rot90(image.float(), -int(hyps[i]["angle"]) // 90, dims=(-2, -1)), (size, size))
        out[i] = (v.flip(-1) if hyps[i]["flip"] else v)[0]
    if other:
        out[other] = turned_back_views(image, size, [hyps[i] for i in other]).float()
    return out


@torch.no_grad()
def search_logits(decoder: torch.nn.Module, image: torch.Tensor, size: int, search: str,
                  mirror: bool = True, *, reframe_anchors: Sequence[str] | None = None, staged: bool = False,
                  boxes: list[dict[str, Any]] | None = None) -> tuple[torch.Tensor, list[dict[str, float | bool]]]:
    """Bit logits (H x L) of one image (1 x C x h x w in [0, 1]) under every hypothesis of ``search``
    (``none``: the S x S resize; ``crop``; ``rotate``; ``reframe``; ``geometry``), and the hypotheses (``side``
    for crops; ``kx``, ``ky``, ``band`` and ``axis`` for reframings, :func:`reframe_hypotheses`;
    ``angle`` and ``fill`` for rotations, :func:`rotation_views`; ``flip``, ``angle``, ``kx``, ``ky`` for
    geometry, and for the periodic ``geo`` decoders also the fold's ``offset``, the tile phase ``shift``
    (dy, dx) and the search's size ``of``, :func:`fold_search_logits`). ``mirror``: the ``none``, ``crop``
    and ``rotate`` searches also read the mirror image (hypotheses with ``flip`` True, after the others;
    decode with :func:`decision_args`). ``reframe_anchors``: where the reframing bands sit (None: every anchor of
    :data:`REFRAME_ANCHORS`). ``inset``: the boxes a photo may fill inside the picture
    (:mod:`robusthide.watermark.inset`; ``box``, ``box_px``), after the whole picture unless ``staged`` (a stage of
    the staged search, whose plain read came first); it may find none in a stage, and then returns no hypotheses.
    ``boxes``: the inset hypotheses to read (found on another picture of the same size: a video's mean frame).
    ``slide`` alone reads a picture of a shape it has no band for (every band under half of its frame) as it is
    and mirrored, as ``none``; in a stage it returns no hypotheses.
    Grayscale images are expanded to three channels."""
    mode = check_search(search)
    hyps: list[dict[str, float | bool]]
    if mode == "staged" and not hasattr(decoder, "feature_maps"):  # every stage (:func:`staged_stages`)
        stages = list(staged_stages(decoder, image, size, mirror))
        return torch.cat([lg for lg, hs in stages if hs]), [h for _, hs in stages for h in hs]
    if mode == "staged":
        mode = "geometry"
    if mode == "crop":
        views, sides = centred_crop_views(image, size)
        hyps = [{"side": k} for k in sides]
    elif mode == "rotate":  # its hypotheses hold the mirror images already
        views, hyps = rotation_views(image, size, flips=mirror)
        if views.shape[1] == 1:
            views = views.expand(-1, 3, -1, -1)
        return torch.cat([decoder(v) for v in views.split(64)]).float(), hyps
    elif mode == "geometry" and hasattr(decoder, "feature_maps"):  # both stages (:func:`search_stages`)
        stages = list(search_stages(decoder, image, size, mode))
        return torch.cat([lg for lg, hs in stages if hs]), [h for _, hs in stages for h in hs]
    elif mode == "geometry":
        views, hyps = geometry_views(image, size)
    elif mode == "reframe":
        hyps = (reframe_hypotheses(*image.shape[-2:]) if reframe_anchors is None
                else reframe_hypotheses(*image.shape[-2:], anchors=reframe_anchors))
        views = affine_views(image, size, hyps)
    elif mode == "inset":  # the boxes a photo may fill inside the picture (robusthide.watermark.inset)
        from robusthide.watermark.inset import inset_hypotheses, inset_views

        hyps = inset_hypotheses(image, whole=not staged) if boxes is None else [dict(b) for b in boxes]
        if not hyps:
            return torch.zeros(0, 0), []
        views = inset_views(image, size, hyps)
    elif mode == "turn":  # its hypotheses hold the mirror images already; 366 rows, screened as the corner search's
        hyps = turn_hypotheses(flips=mirror)
        views = turn_views(image, size, hyps)
        if views.shape[1] == 1:
            views = views.expand(-1, 3, -1, -1)
        return screened_logits(decoder, views, hyps), hyps
    elif mode == "slide" and (staged or slide_hypotheses(*image.shape[-2:])):  # 500-1100 rows, no mirror images
        win = 2 * decoder.stride / size if hasattr(decoder, "stride") else SLIDE_WINDOW
        hyps = slide_hypotheses(*image.shape[-2:], window=win)
        return slide_logits(decoder, image, size, hyps), hyps
    elif mode == "anywhere":  # no mirror images: thousands of rows already (robusthide.watermark.anywhere)
        from robusthide.watermark.anywhere import anywhere_search

        return anywhere_search(decoder, image, size, 2 * decoder.stride / size if hasattr(decoder, "stride")
                               else SLIDE_WINDOW)
    elif mode == "corner":  # no mirror images: 300 rows already (see the module's docstring)
        hyps = corner_hypotheses()
        views = affine_views(image, size, hyps)
        if views.shape[1] == 1:
            views = views.expand(-1, 3, -1, -1)
        return screened_logits(decoder, views, hyps), hyps
    else:
        views, hyps = resize(image.float(), (size, size)), [{}]
    if views.shape[1] == 1:
        views = views.expand(-1, 3, -1, -1)
    if mirror and mode == "reframe":  # a band at one end of the width mirrors to the other end
        views, hyps = mirror_views(views), mirror_reframings(hyps)
    elif mirror and mode != "geometry":  # the views are centred, so a view's mirror is the mirror image's view
        views, hyps = mirror_views(views), mirror_hypotheses(hyps)
    return decoder(views).float(), hyps


def most_confident(logits: torch.Tensor, hyps: Sequence[dict[str, Any]] | None = None) -> int:
    """Index of the hypothesis (logits H x L) most likely to read a mark (:func:`ranking_scores`; without
    ``hyps``, the largest mean absolute logit)."""
    return int(ranking_scores(logits, hyps).argmax())


def decode_search(logits: torch.Tensor, n_bits: int, threshold: float | None = None,
                  max_tries: int | None = None, weights: torch.Tensor | None = None,
                  scores: torch.Tensor | None = None, soft_share: float = 0.0) -> tuple[DecodeResult, int]:
    """The payload of the best hypothesis (logits H x L) and its index: hypotheses are decoded from the
    highest ``scores`` on (None: the most confident first; :func:`ranking_scores`), at most ``max_tries`` of
    them (None: all of them up to 1024 hypotheses, else :data:`GEOMETRY_TRIES`), until one is detected; its
    p-value is multiplied by H (Bonferroni over the search, tried or not), or divided by its weight when
    ``weights`` are given (weighted Bonferroni, :func:`hypothesis_weights`), so ``detected`` (p <=
    ``threshold``, default the design rate 1e-6) keeps its false-positive bound whatever the order. Returns a
    :class:`robusthide.payload.DecodeResult` with the corrected p-value, detection and confidence
    (:func:`robusthide.payload.decode_hypotheses`; ``soft_share`` > 0 adds the soft-decision test,
    :mod:`robusthide.payload.soft_detection`)."""
    from robusthide.payload import DEFAULT_FPR, decode_hypotheses

    thr = DEFAULT_FPR if threshold is None else float(threshold)
    h = logits.shape[0]
    tries = max_tries if max_tries is not None else (h if h <= 1024 else GEOMETRY_TRIES)
    w = None if weights is None else torch.as_tensor(weights).double().numpy()
    sc = None if scores is None else torch.as_tensor(scores).double().numpy()
    return decode_hypotheses(logits.detach().float().cpu().numpy(), n_bits, weights=w, threshold=thr,
                             max_tries=tries, scores=sc, soft_share=soft_share)
