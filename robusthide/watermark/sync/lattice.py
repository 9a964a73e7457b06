"""The rotation stage of the geometry search (:func:`rotation_fold_logits`): the angle and scale of the mark's tile
lattice, read from the decoder's features (:func:`lattice_scores`; the periodic mark is its own synchronisation
template, Kutter 1999), then the fold search at the angles found.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from robusthide.watermark.sync.fold import (
    GEOMETRY_CANDIDATES,
    GEOMETRY_FOLD_ANGLES,
    GEOMETRY_FOLD_OFFSETS,
    GEOMETRY_FOLD_RATIOS,
    GEOMETRY_FOLD_REFINE,
    GEOMETRY_PHASES,
    GEOMETRY_REFINE_TOP,
    pooled_maps,
    read_folds,
    turned_view_maps,
)
from robusthide.watermark.sync.views import Frames, frame_list

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
    frames = frame_list(image)
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
            maps = turned_view_maps(pooled_maps(decoder, frames, size, vh), vh, fold_angles, (kx,) if kx == ky else ())
            lg, hy = read_folds(decoder, frames, size, maps, GEOMETRY_FOLD_RATIOS, GEOMETRY_FOLD_REFINE,
                                 GEOMETRY_FOLD_OFFSETS, GEOMETRY_REFINE_TOP, GEOMETRY_CANDIDATES // 2,
                                 GEOMETRY_PHASES, 1, share)
            logits.append(lg)
            hyps += hy
    if not logits:
        return torch.zeros(0, decoder.n_bits), []
    return torch.cat(logits), hyps
