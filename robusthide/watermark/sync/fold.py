"""The geometry search of the periodic ``geo`` models (:class:`robusthide.nets.geo.TileDecoder`; docs/geometry.md):
mirror x per-axis side fractions x fractional fold periods x every cyclic shift of the tile, read from the decoder's
feature maps (:func:`fold_search_logits`), and its quick stage (:func:`quick_fold_logits`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from robusthide.watermark.sync.decision import ranking_scores
from robusthide.watermark.sync.views import Frames, affine_views, frame_list

if TYPE_CHECKING:
    from collections.abc import Sequence

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


#: At most this many frames of a video, spread evenly, are pooled in the full geometry search (each costs its
#: 60 decoder passes); the quick stage pools every frame read.
GEOMETRY_POOL_FRAMES = 8


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


def fold_energy(t: torch.Tensor) -> torch.Tensor:
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


def pooled_maps(decoder: torch.nn.Module, image: Frames, size: int,
                hyps: Sequence[dict[str, Any]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Feature maps and fold weights of the views of ``hyps`` (:func:`affine_views`, one decoder pass each), for
    one image (1 x C x h x w in [0, 1]) or pooled over the frames of a video (a sequence of them: every
    frame's view under the same hypothesis shows the mark at the same place). Pooled, a map is
    (sum f w / sum w, mean w) over the frames, so that its fold (:func:`robusthide.nets.geo.fractional_fold`)
    is exactly the fold of every frame's evidence together."""
    frames = frame_list(image)
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


def turned_view_maps(maps: Sequence[tuple[torch.Tensor, torch.Tensor]], vhyps: Sequence[dict[str, Any]],
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
    e, t = fold_energy(t)[0], t[0]  # (Ry O) x (Rx O)
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

    1. Feature maps (:func:`view_maps`, :func:`turned_view_maps`): views (:func:`geometry_views`) for mirror x
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
    maps = turned_view_maps(*view_maps(decoder, image, size, scales, flips, narrow), fold_angles, fold_angle_scales)
    return read_folds(decoder, image, size, maps, ratios, refine, offsets, refine_top, candidates, phases,
                       phase_top, budget)


def read_folds(decoder: torch.nn.Module, image: Frames, size: int,
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
    by the hypothesis' ``turn`` as :func:`turned_view_maps` turns them, at row / column ratios ``ry`` / ``rx`` and
    ``off``sets."""
    from robusthide.nets.geo import fractional_fold, phase_assignment

    turn = float(vh.get("turn", 0.0))
    f, w = pooled_maps(decoder, image, size, [{**vh, "angle": float(vh["angle"]) - turn, "phase": phase}])[0]
    if turn:
        f, w = rotated_maps(f, w, turn)
    p = decoder.tile
    return fractional_fold(f, w, phase_assignment(f.shape[-2], p, (ry,), (off[0],)).to(f.device),
                           phase_assignment(f.shape[-1], p, (rx,), (off[1],)).to(f.device))[0, 0, 0]


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
