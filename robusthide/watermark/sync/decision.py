"""The decision over a search's hypotheses: which to decode first, how many, and the p-value that pays for all
of them (weighted Bonferroni; :mod:`robusthide.payload`), for every search of :mod:`robusthide.watermark.sync`.

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

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

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


#: How many of the rotation search's most confident hypotheses are decoded (the p-value pays for all).
ROTATION_TRIES = 16


#: How many of the most confident hypotheses the geometry search tries to decode (the p-value still pays
#: for all of them).
GEOMETRY_TRIES = 64


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


def staged_hypotheses(hyps: Sequence[dict[str, Any]], stage: str) -> list[dict[str, Any]]:
    """``hyps`` of one stage of the staged search, tagged with the stage and its share (:data:`STAGED_SHARES`)."""
    share = dict(STAGED_SHARES)[stage]
    return [{**h, "stage": stage, "share": share} for h in hyps]


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
