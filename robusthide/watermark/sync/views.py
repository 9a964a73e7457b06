"""The views a search shows the decoder: each hypothesis rendered as a S x S decoder input (:func:`affine_views`),
the centred-crop views, mirror images, and the screened decoder pass that reads many views at about half the cost.

The decoder reads a fixed S x S resize of the whole image. A platform that crops the centre of a photo
and resizes it back (a zoom) moves every part of the mark: after a crop keeping 96 % of the area the
default model reads 20 % of the bits wrong, after 90 % 35 %. Placed back where it was in the original
frame, the same crop reads almost every bit (0 % after a crop keeping 90 % of the area, 0.6 % at 70 %),
because the mark is spread over the whole image (docs/results/default-crops.md and
default-crops-search.md, commands in the default model's card).

The crop search (``search='crop'``, :func:`centred_crop_views`) tries every frame the image could be the centre
of: for each side fraction k from ``min_side`` to 1 in steps of 1 / (``oversample`` x S) (the decoder needs the
alignment to about a quarter of a working-size pixel), the image is shrunk to k of a 2S x 2S view, placed in its
centre, the rest filled with the image's mean colour (one ``grid_sample`` for all k), and the view resized to S
x S as the decoder reads any image. Every hypothesis is decoded in one batch; :func:`most_confident` picks the
one with the largest mean absolute logit. The detection test pays for the search:
:meth:`robusthide.watermark.watermarker.Watermarker.extract` multiplies the p-value by the number of hypotheses
(Bonferroni), so the false-positive rate stays within its design bound.

Mirror images (session 11): a whole-image model (every model but the periodic ``geo`` ones, whose geometry
search has its own flips) is also read from the mirror image, by default, with every search including
``none`` (:func:`mirror_views`): people mirror selfies. Resizing commutes with the mirror, so the mirrored
hypotheses are the working-size views flipped left to right, one more decoder row each. The test pays for
them by weighted Bonferroni (:func:`hypothesis_weights`, :func:`robusthide.payload.mirror_weights`): the
mirror hypotheses share 1/8 of the false-positive budget, the image as it is keeps 7/8.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Union

import torch
import torch.nn.functional as F

from robusthide.nets.watermark_model import resize
from robusthide.watermark.sync.decision import ranking_scores

if TYPE_CHECKING:
    from collections.abc import Sequence

#: Smallest side fraction the crop search tries (0.8: 64 % of the area kept).
MIN_SIDE = 0.8


def mirror_views(views: torch.Tensor) -> torch.Tensor:
    """The views (H x C x h x w) followed by their mirror images (left-right): 2H views, mirrored second."""
    return torch.cat([views, views.flip(-1)])


def mirror_hypotheses(hyps: Sequence[dict[str, float | bool]]) -> list[dict[str, float | bool]]:
    """The hypotheses of :func:`mirror_views`' rows: each of ``hyps`` with ``flip`` False, then with True."""
    return [{**h, "flip": False} for h in hyps] + [{**h, "flip": True} for h in hyps]


def side_fractions(size: int, min_side: float = MIN_SIDE, oversample: int = 4) -> list[float]:
    """The side fractions k the crop search tries: 1, 1 - d, 1 - 2d, ... down to ``min_side``, with
    d = 1 / (``oversample`` x S): the decoder needs the frame aligned to about a quarter of a working-size
    pixel."""
    if not 0 < min_side <= 1:
        raise ValueError(f"min_side must be in (0, 1], got {min_side}")
    step = oversample * size
    return [1 - i / step for i in range(int(round((1 - min_side) * step)) + 1)]


#: rows of a screened decoder pass (:func:`screened_logits`) decoded again in float32
SCREEN_TOP = 8


def native_bf16(device: torch.device) -> bool:
    """True where ``device`` runs bf16 natively: CUDA, or a CPU with AVX512-BF16 / AMX
    (:func:`robusthide.training.hardware.cpu_has_bf16`); elsewhere bf16 is slower than float32."""
    from robusthide.training.hardware import cpu_has_bf16

    return device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())


def screened_logits(decoder: torch.nn.Module, views: torch.Tensor, hyps: Sequence[dict[str, Any]],
                    top: int = SCREEN_TOP) -> torch.Tensor:
    """Bit logits (H x L, float32) of ``views`` for a search with many hypotheses, at about half the cost: the
    decoder runs in bf16 where the device does natively (CUDA, or a CPU with AVX512-BF16 / AMX; elsewhere this is
    the plain float32 pass), then the ``top`` most confident rows (:func:`ranking_scores`) again in float32, so a
    marked image's hypothesis is decided on float32 logits. The p-value's bound does not depend on which rows
    are float32: under no mark every row's bits are as random in bf16 as in float32."""
    dev = views.device
    if not native_bf16(dev) or views.shape[0] <= top:
        return decoder(views).float()
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        logits = decoder(views.contiguous(memory_format=torch.channels_last)).float()
    best = torch.topk(ranking_scores(logits, hyps), top).indices
    logits[best] = decoder(views[best]).float()
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


Frames = Union[torch.Tensor, "Sequence[torch.Tensor]"]


def frame_list(image: Frames) -> list[torch.Tensor]:
    """One image (1 x C x h x w) as a list of one frame; a sequence of frames as a list."""
    return [image] if isinstance(image, torch.Tensor) else list(image)


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
