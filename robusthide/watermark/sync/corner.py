"""Corners (``search='corner'``, session 23, :func:`corner_hypotheses`): a phone editor's crop dragged from one
corner with the aspect ratio locked keeps the opposite corner of the photo and the same fraction k of each
side. Placed back in that corner of the frame, the default model reads it when k is right to about 0.002
(docs/results/corner-crop-probe.json), so the search tries k = 0.996 ... 0.7 in steps of
:data:`CORNER_STEP` at the four corners (300 hypotheses, no mirror images). Its decoder pass runs in bf16
where the hardware has it natively, and the most confident rows again in float32 (:func:`screened_logits`).
"""

from __future__ import annotations

from typing import Any

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
