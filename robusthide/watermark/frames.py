"""A video's frames read together: the geometry search of a periodic ``geo`` model over several frames, and the
staged search of a whole-image model over the frames of one clip, their evidence pooled per hypothesis (a crop,
reframing or rotation of a clip is the same in every frame). A mixin of
:class:`robusthide.watermark.watermarker.Watermarker`; :mod:`robusthide.watermark.video` calls it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from robusthide import RobustHideError

if TYPE_CHECKING:
    from robusthide.watermark.watermarker import ExtractResult

#: how many of a video's frames the staged search's reframing stage reads (evenly spaced; about 0.13 s each
#: for the default model on one core): the plain read pools every frame read, the reframing stage these
REFRAME_FRAMES = 16
#: where the reframing bands of a video's frames sit: the centre only (a platform reframes a clip about its
#: centre; the bands at either end, for one side cut off a photo, would triple the cost per frame)
VIDEO_REFRAME_ANCHORS = ("centre",)
#: at most this many frames of a video, evenly spaced, are kept at full size for the staged search's inset stage
#: (a clip letterboxed or pillarboxed in another frame: the box must be cut from the frame as it is)
INSET_FRAMES = 8
#: how many of a video's frames (evenly spaced) the staged search's geometric stages read, pooled per hypothesis:
#: the slide, rotation, crop, corner, turn and anywhere stages (each costs about an image's search per frame)
GEOMETRY_FRAMES = 8


class FramesMixin:
    """:meth:`extract_frames` and :meth:`decide_frames_staged` of a
    :class:`~robusthide.watermark.watermarker.Watermarker` (its ``model``, ``device``, ``mirror``, ``n_bits``,
    ``soft_share`` and ``_result``)."""

    def extract_frames(self, frames: list[torch.Tensor]) -> ExtractResult:
        """:meth:`extract` with the geometry search of a periodic ``geo`` model over several frames of one
        video (each 1 x C x H x W float in [0, 1]), their evidence pooled
        (:func:`robusthide.watermark.sync.search_stages`): a crop or reframing of a clip is the same in every
        frame, so the frames' folds add up."""
        from robusthide.watermark.sync import decode_stages, search_stages

        if not hasattr(self.model.decoder, "feature_maps"):
            raise RobustHideError("pooled frames are read by the geometry search of a periodic geo model only")
        if not frames:
            raise RobustHideError("no frames to read")
        xs = [f.to(self.device, torch.float32) for f in frames]
        stages = ((lg.cpu(), h) for lg, h in search_stages(self.model.decoder, xs, self.model.size, "geometry"))
        return self._result(*decode_stages(stages, self.n_bits, soft_share=self.soft_share))

    @torch.no_grad()
    def decide_frames_staged(self, plain: torch.Tensor, hyps: list[dict], frames: list[torch.Tensor],
                             reframe_frames: int = REFRAME_FRAMES,
                             inset_frames: list[torch.Tensor] | None = None,
                             progress: Callable[[str], None] | None = None) -> ExtractResult:
        """The staged search of a whole-image model over the frames of one video: the frames' pooled plain read
        (``plain``: their mean logits, and ``hyps``, from :meth:`frame_hypothesis_logits`), then, only when it
        does not detect, the inset search on ``inset_frames`` (full-size frames, 1 x C x H x W each, uint8 or
        float in [0, 1]; a clip letterboxed or pillarboxed in another frame: the boxes found on their mean,
        :mod:`robusthide.watermark.inset`, the logits of every frame averaged per box), then the reframing search
        (:func:`robusthide.watermark.sync.reframe_hypotheses`, the centred bands: :data:`VIDEO_REFRAME_ANCHORS`)
        on up to ``reframe_frames`` of ``frames`` (1 x C x h x w each, at the aspect of the video; evenly
        spaced), their logits averaged per hypothesis: a platform reframes every frame of a clip the same way;
        then, on up to :data:`GEOMETRY_FRAMES` of ``frames`` (evenly spaced), every other stage of the image's staged
        search in its order (slide, rotation, centred crop, corner, turn, anywhere;
        :func:`robusthide.watermark.sync.frames_stage_logits`), each hypothesis' logits averaged over those frames:
        a clip cropped off the centre, straightened or turned in an editor is edited alike in every frame.
        Each stage pays its share of the staged search (:data:`robusthide.watermark.sync.STAGED_SHARES`), as for
        an image. ``progress``: called with each later stage's name as it starts (a progress bar's hook)."""
        from robusthide.watermark.inset import inset_hypotheses
        from robusthide.watermark.sync import (
            STAGED_SHARES,
            decode_stages,
            frames_stage_logits,
            search_logits,
            staged_hypotheses,
        )

        if isinstance(reframe_frames, bool) or not isinstance(reframe_frames, int) or reframe_frames < 1:
            raise RobustHideError(f"reframe_frames must be a positive integer, got {reframe_frames!r}")

        def unit(f: torch.Tensor) -> torch.Tensor:  # a frame as float in [0, 1], from uint8 or float
            return f.float().div(255) if f.dtype == torch.uint8 else f.float()

        def spaced(n: int) -> list[torch.Tensor]:  # up to n of the frames, evenly spaced, on the model's device
            pick = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
            return [frames[i].to(self.device, torch.float32) for i in pick]

        def inset() -> Iterator[tuple[torch.Tensor, list[dict]]]:
            mean = sum(unit(f) for f in inset_frames) / len(inset_frames) if inset_frames else None
            boxes = inset_hypotheses(mean) if mean is not None else []
            if boxes:
                total, ih = None, []
                for f in inset_frames:
                    lg, ih = search_logits(self.model.decoder, unit(f).to(self.device), self.model.size,
                                           "inset", self.mirror, staged=True, boxes=boxes)
                    total = lg if total is None else total + lg
                yield (total / len(inset_frames)).float().cpu(), ih

        def reframe() -> Iterator[tuple[torch.Tensor, list[dict]]]:
            rows = [search_logits(self.model.decoder, f, self.model.size, "reframe", self.mirror,
                                  reframe_anchors=VIDEO_REFRAME_ANCHORS) for f in spaced(reframe_frames)]
            if rows[0][1]:
                yield sum((lg for lg, _ in rows[1:]), rows[0][0]) / len(rows), rows[0][1]

        def stages() -> Iterator[tuple[torch.Tensor, list[dict]]]:
            yield plain, staged_hypotheses(hyps, "none")
            if not frames:
                return
            geo: list[torch.Tensor] = []  # the frames the geometric stages read, once one of them runs
            for stage, _ in STAGED_SHARES:
                if stage == "none":
                    continue
                if progress is not None:
                    progress(stage)
                if stage == "inset":
                    rows: Iterator[tuple[torch.Tensor, list[dict]]] = inset()
                elif stage == "reframe":
                    rows = reframe()
                else:  # frames of the first one's size (a stream that changes size mid-way is read at its first)
                    geo = geo or [f for f in spaced(GEOMETRY_FRAMES) if f.shape == frames[0].shape]
                    rows = iter([frames_stage_logits(self.model.decoder, geo, self.model.size, stage, self.mirror)])
                for lg, h in rows:
                    yield lg.float().cpu(), staged_hypotheses(h, stage)

        return self._result(*decode_stages(stages(), self.n_bits, soft_share=self.soft_share))
