"""Every search as stages: :func:`search_logits` reads one search of one image, :func:`search_stages` and
:func:`staged_stages` list the stages of the geometry and staged searches lazily, and :func:`frames_stage_logits`
reads one stage over the frames of a clip.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from robusthide.nets.watermark_model import resize
from robusthide.watermark.sync.bands import (
    SLIDE_WINDOW,
    mirror_reframings,
    reframe_hypotheses,
    slide_hypotheses,
    slide_logits,
)
from robusthide.watermark.sync.corner import corner_hypotheses
from robusthide.watermark.sync.decision import STAGED_SHARES, check_search, staged_hypotheses
from robusthide.watermark.sync.fold import (
    GEOMETRY_POOL_FRAMES,
    GEOMETRY_QUICK_SHARE,
    fold_search_logits,
    geometry_views,
    quick_fold_logits,
)
from robusthide.watermark.sync.lattice import GEOMETRY_ROTATION_SHARE, rotation_fold_logits
from robusthide.watermark.sync.rotation import rotation_views, turn_hypotheses, turn_views
from robusthide.watermark.sync.views import (
    Frames,
    affine_views,
    centred_crop_views,
    frame_list,
    mirror_hypotheses,
    mirror_views,
    screened_logits,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

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
        frames = frame_list(image)
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
