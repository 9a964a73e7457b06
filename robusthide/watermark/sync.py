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
of a plain read (docs/results/bench-search.md), so it is an option, not the default (docs/geometry.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from robusthide.nets.watermark_model import resize

if TYPE_CHECKING:
    from collections.abc import Sequence

    from robusthide.payload import DecodeResult

#: ``search`` modes of extraction: ``none`` (read the image as it is), ``crop`` (centred crops), ``rotate``
#: (rotations about the centre, black corners or straightened) and ``geometry`` (flips x per-axis scales, for
#: the translation-invariant ``geo`` models).
SEARCH_MODES = ("none", "crop", "geometry", "rotate")
#: Angles (degrees) of the rotation search: -5 ... 5 in steps of 0.5. Turned back by an angle within 0.25
#: degrees of the true one, the default model reads a rotated photo at 0-1 % raw BER (docs/geometry.md).
ROTATION_ANGLES = tuple(i / 2 for i in range(-10, 11))
#: How many of the rotation search's most confident hypotheses are decoded (the p-value pays for all).
ROTATION_TRIES = 16
#: Per-axis scale hypotheses of the geometry search: the side fraction a crop kept, from 1 down to 0.53,
#: a ratio of 0.9 apart (the periodic ``geo`` models are trained with a +-5 % scale mismatch, so every
#: fraction in between lies within reach of one of them; :mod:`robusthide.attacks.geometric`).
GEOMETRY_SCALES = (1.0, 0.9, 0.81, 0.73, 0.66, 0.59, 0.53)
#: Rotation hypotheses of the geometry search, in degrees (the ``geo`` models are trained with +-2.5 deg).
GEOMETRY_ANGLES = (0.0,)
#: How many of the most confident hypotheses the geometry search tries to decode (the p-value still pays
#: for all of them).
GEOMETRY_TRIES = 64
#: Smallest side fraction the crop search tries (0.8: 64 % of the area kept).
MIN_SIDE = 0.8


def mirror_views(views: torch.Tensor) -> torch.Tensor:
    """The views (H x C x h x w) followed by their mirror images (left-right): 2H views, mirrored second."""
    return torch.cat([views, views.flip(-1)])


def mirror_hypotheses(hyps: Sequence[dict[str, float | bool]]) -> list[dict[str, float | bool]]:
    """The hypotheses of :func:`mirror_views`' rows: each of ``hyps`` with ``flip`` False, then with True."""
    return [{**h, "flip": False} for h in hyps] + [{**h, "flip": True} for h in hyps]


def hypothesis_weights(hyps: Sequence[dict[str, float | bool]]) -> torch.Tensor | None:
    """Weighted-Bonferroni weights of a whole-image search's hypotheses (mirror images share 1/8 of the
    false-positive budget, :func:`robusthide.payload.mirror_weights`); None (every hypothesis alike) for the
    geometry search, whose mirror images are part of its grid, and for searches without mirror images."""
    from robusthide.payload import mirror_weights

    if not hyps or any("kx" in h for h in hyps) or not any(h.get("flip") for h in hyps):
        return None
    return torch.from_numpy(mirror_weights([bool(h.get("flip")) for h in hyps]))


def decision_args(hyps: Sequence[dict[str, float | bool]]) -> dict[str, torch.Tensor | int | None]:
    """The keyword arguments of :func:`decode_search` for a search's hypotheses: the mirror images' weights
    (:func:`hypothesis_weights`) and, for the rotation search, at most :data:`ROTATION_TRIES` decodes."""
    rotate = bool(hyps) and "fill" in hyps[0]
    return {"weights": hypothesis_weights(hyps), "max_tries": ROTATION_TRIES if rotate else None}


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


def geometry_views(image: torch.Tensor, size: int, scales: tuple[float, ...] = GEOMETRY_SCALES,
                   angles: tuple[float, ...] = GEOMETRY_ANGLES,
                   flips: bool = True) -> tuple[torch.Tensor, list[dict[str, float | bool]]]:
    """The decoder inputs (H x C x S x S) for one image (1 x C x h x w in [0, 1]) under every geometry
    hypothesis, and the hypotheses (``flip``, ``angle``, ``kx``, ``ky``). For a hypothesis, the image
    (mirrored back when ``flip``, turned back by ``angle`` degrees) fills the central ``kx`` S x ``ky`` S
    box of the S x S canvas, the rest is its mean colour: a crop that kept side fractions ``(kx, ky)`` of
    the marked image then shows the mark at its original scale, which is what the periodic ``geo`` decoder
    folds (it finds the phase itself, so where the box sits does not matter). The image is first resized
    to 2S x 2S once (antialiased); every view is one ``grid_sample`` of it (:func:`affine_views`)."""
    hyps: list[dict[str, float | bool]] = [{"flip": f, "angle": a, "kx": kx, "ky": ky}
                                           for f in ((False, True) if flips else (False,))
                                           for a in angles for kx in scales for ky in scales]
    return affine_views(image, size, hyps), hyps


def affine_views(image: torch.Tensor, size: int, hyps: Sequence[dict[str, float | bool]]) -> torch.Tensor:
    """The views (H x C x S x S) of :func:`geometry_views` for the given hypotheses (``flip``, ``angle``,
    ``kx``, ``ky`` each)."""
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
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    views = F.grid_sample((src - fill).expand(n, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
                          align_corners=False)
    u = (torch.arange(size, dtype=dt, device=dev) + 0.5) / size * 2 - 1
    inside = (u.abs()[None, None, :] <= kx[:, None, None]) & (u.abs()[None, :, None] <= ky[:, None, None])
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
    from robusthide.codecs.geometric import inscribed_sides

    h, w = image.shape[-2:]
    base: list[dict[str, float | bool | str]] = []
    for a in angles:
        base.append({"angle": float(a), "fill": "black"})
        if a != 0:
            base.append({"angle": float(a), "fill": "crop"})
    hyps = mirror_hypotheses(base) if flips else [{**b, "flip": False} for b in base]
    aff = []
    for hy in hyps:
        k = inscribed_sides(float(hy["angle"]), int(h), int(w))[0] if hy["fill"] == "crop" else 1.0
        aff.append({"flip": bool(hy["flip"]), "angle": float(hy["angle"]), "kx": k, "ky": k})
    return affine_views(image, size, aff), hyps


@torch.no_grad()
def search_logits(decoder: torch.nn.Module, image: torch.Tensor, size: int, search: str,
                  mirror: bool = True) -> tuple[torch.Tensor, list[dict[str, float | bool]]]:
    """Bit logits (H x L) of one image (1 x C x h x w in [0, 1]) under every hypothesis of ``search``
    (``none``: the S x S resize; ``crop``; ``rotate``; ``geometry``), and the hypotheses (``side`` for crops;
    ``angle`` and ``fill`` for rotations, :func:`rotation_views`; ``flip``,
    ``angle``, ``kx``, ``ky`` for geometry, and the tile phase ``shift`` (dy, dx) when the decoder reads every
    cyclic shift, as the periodic ``geo`` decoder does). ``mirror``: the ``none``, ``crop`` and ``rotate``
    searches also read the mirror image (hypotheses with ``flip`` True, after the others; decode with
    :func:`decision_args`). Grayscale images are expanded to three channels."""
    mode = check_search(search)
    hyps: list[dict[str, float | bool]]
    if mode == "crop":
        views, sides = centred_crop_views(image, size)
        hyps = [{"side": k} for k in sides]
    elif mode == "rotate":  # its hypotheses hold the mirror images already
        views, hyps = rotation_views(image, size, flips=mirror)
        if views.shape[1] == 1:
            views = views.expand(-1, 3, -1, -1)
        return torch.cat([decoder(v) for v in views.split(64)]).float(), hyps
    elif mode == "geometry":
        views, hyps = geometry_views(image, size)
    else:
        views, hyps = resize(image.float(), (size, size)), [{}]
    if views.shape[1] == 1:
        views = views.expand(-1, 3, -1, -1)
    if mode == "geometry" and hasattr(decoder, "all_shifts"):
        logits = torch.cat([decoder.all_shifts(v) for v in views.split(32)])  # H x P^2 x L
        p = int(round(logits.shape[1] ** 0.5))
        hyps = [{**h, "shift": (2 * (s // p), 2 * (s % p))} for h in hyps for s in range(p * p)]
        return logits.flatten(0, 1).float(), hyps
    if mirror and mode != "geometry":
        views, hyps = mirror_views(views), mirror_hypotheses(hyps)
    return decoder(views).float(), hyps


def most_confident(logits: torch.Tensor) -> int:
    """Index of the hypothesis whose logits (H x L) have the largest mean absolute value."""
    return int(logits.float().abs().mean(dim=1).argmax())


def decode_search(logits: torch.Tensor, n_bits: int, threshold: float | None = None,
                  max_tries: int | None = None, weights: torch.Tensor | None = None) -> tuple[DecodeResult, int]:
    """The payload of the best hypothesis (logits H x L) and its index: hypotheses are decoded from the most
    confident on (at most ``max_tries`` of them; None: all of them up to 1024 hypotheses, else
    :data:`GEOMETRY_TRIES`) until one is detected; its p-value is multiplied by H (Bonferroni over the
    search, tried or not), or divided by its weight when ``weights`` are given (weighted Bonferroni,
    :func:`hypothesis_weights`), so ``detected`` (p <= ``threshold``, default the design rate 1e-6) keeps its
    false-positive bound. Returns a :class:`robusthide.payload.DecodeResult` with the corrected p-value,
    detection and confidence (:func:`robusthide.payload.decode_hypotheses`)."""
    from robusthide.payload import DEFAULT_FPR, decode_hypotheses

    thr = DEFAULT_FPR if threshold is None else float(threshold)
    h = logits.shape[0]
    tries = max_tries if max_tries is not None else (h if h <= 1024 else GEOMETRY_TRIES)
    w = None if weights is None else torch.as_tensor(weights).double().numpy()
    return decode_hypotheses(logits.detach().float().cpu().numpy(), n_bits, weights=w, threshold=thr,
                             max_tries=tries)
