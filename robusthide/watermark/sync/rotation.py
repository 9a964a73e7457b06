"""Rotations (``search='rotate'``, :func:`rotation_views`): the image turned back by -5 ... 5 degrees in steps
of 0.5 (the default model reads a rotation within about 0.25 degree of the true one at 0-1 % raw BER), with
the frame kept (black corners) or straightened (a photo editor's crop, resized back), and mirrored: 82
hypotheses, the 16 most confident decoded, the p-value paying for all of them. About 15-17 times the time
of a plain read (docs/results/bench-search.md).

Turns (``search='turn'``, session 25, :func:`turn_hypotheses`): rotations past the rotation search's 5 degrees. Turned
back within about half a degree of the true angle, the default model reads a photo turned by any angle up to 45
degrees with black corners, and straightened (cropped to fill) up to about 15 (docs/results/turn-probe.md). The
search tries 5.5 ... 45 degrees either way in steps of 0.5 (black corners; also straightened up to
:data:`TURN_CROP_MAX`) and the quarter turns (an editor's rotate button, or a photo whose orientation tag was
lost: :func:`turn_views` turns the picture back exactly, its sides swapped), mirrored too: 366 hypotheses, read
as the corner search reads its 300 (:func:`screened_logits`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from robusthide.nets.watermark_model import resize
from robusthide.watermark.sync.views import affine_views, mirror_hypotheses

if TYPE_CHECKING:
    from collections.abc import Sequence

#: Angles (degrees) of the rotation search: -5 ... 5 in steps of 0.5. Turned back by an angle within 0.25
#: degrees of the true one, the default model reads a rotated photo at 0-1 % raw BER (docs/geometry.md).
ROTATION_ANGLES = tuple(i / 2 for i in range(-10, 11))


#: Angles (degrees) of the turn search: 5.5 ... 45 either way in steps of 0.5, past :data:`ROTATION_ANGLES`.
TURN_ANGLES = tuple(sorted(s * i / 2 for i in range(11, 91) for s in (-1, 1)))


#: The largest angle the turn search also tries straightened (``fill='crop'``): the straighten of a 4:3 photo
#: turned by 10 degrees keeps 0.82 of each side (68 % of the area), at 15 degrees 0.76 (58 %), and past 10 degrees
#: the straightened reads fall to the search's threshold (15 degrees: a median p-value of 1e-10 at the true angle,
#: 1e-8 a quarter degree off, where the stage asks about 1e-9.3; docs/results/turn-probe.md).
TURN_CROP_MAX = 10.0


#: The quarter turns (degrees, counter-clockwise) the turn search undoes exactly.
QUARTER_TURNS = (90, 180, 270)


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
