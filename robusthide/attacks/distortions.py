"""Classic differentiable distortions of the noise layer.

Sources: HiDDeN's noise layers (Identity, Dropout, Cropout, Gaussian blur, Crop; reference-code facts in
``shared/reference/ANCHORS.md``), as used in MBRS (paper 002 §4.2.2 and Table 2: Identity, Cropout p=0.3,
Dropout p=0.3, Crop p=0.035 padded with white, Gaussian filter sigma=2), and paper 003 §2.2 (Gaussian noise,
Gaussian blur, random scaling, random cropping). Paper 000 §3.3 ("unified perspective"): each of them is a
distortion of the encoded image, differentiable, placed between encoder and decoder.

Conventions: ``forward(x, cover=None)``, ``x`` the marked batch ``N x 3 x H x W`` in [0, 1]; output of the
same shape (only ``Resize(keep_size=False)`` changes it). Continuous parameters accept a number or a ``(lo,
hi)`` range drawn uniformly once per forward pass from ``generator``; windows of Crop / Cropout / CropResize
are placed independently per image. Out-of-range parameters raise
:class:`~robusthide.attacks.base.AttackError` (a ``ValueError``) naming the allowed range.

HiDDeN's crop layer has a bug that always picks the minimum width of its range; here window height and
width follow the drawn area ratio and aspect, both properly sampled.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robusthide.attacks.base import (
    Attack,
    AttackError,
    Range,
    apply_layer,
    check_batch,
    check_int,
    check_range,
    draw,
    need_cover,
    rand,
    randint,
    randn,
    register_attack,
    ste_clamp,
    straight_through,
)

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area")


def _check_interp(mode: Any) -> str:
    if mode not in _INTERPOLATIONS:
        raise AttackError(f"interpolation must be one of {', '.join(_INTERPOLATIONS)}, got {mode!r}")
    return mode


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str, antialias: bool) -> torch.Tensor:
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest-exact")
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    down = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=antialias and down)


@register_attack("identity")
class Identity(Attack):
    """No distortion (MBRS §3.2 "Identity": keeps the decoding ability without attack)."""


    def __init__(self) -> None:
        super().__init__(None)

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        return check_batch(x)


@register_attack("uint8")
class Uint8(Attack):
    """8-bit rounding ``round(255 x) / 255``, straight-through (forward rounded, backward identity): what
    saving the image as it is does to it; the no-attack member of a training pool."""

    def __init__(self) -> None:
        super().__init__(None)

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        return straight_through(x, (x.detach() * 255).round() / 255)


@register_attack("noise", positional="sigma")
class GaussianNoise(Attack):
    """Additive white Gaussian noise ``x + sigma * N(0, 1)`` per pixel and channel (paper 003 §2.2).

    ``sigma`` in [0, 1] (pixel scale [0, 1]) or a range; ``clip``: clamp the result to [0, 1] (forward),
    with an identity gradient.
    """


    def __init__(self, sigma: Range = 0.05, clip: bool = True, generator: torch.Generator | None = None):
        super().__init__(generator)
        self.sigma = check_range("sigma", sigma, 0.0, 1.0)
        if not isinstance(clip, bool):
            raise AttackError(f"clip must be true or false, got {clip!r}")
        self.clip = clip

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        s = draw(self.sigma, self.generator)
        y = x + s * randn(x.shape, self.generator, x)
        return ste_clamp(y) if self.clip else y


@register_attack("blur", positional="sigma")
class GaussianBlur(Attack):
    """Gaussian low-pass filter (HiDDeN / MBRS "GF", MBRS Table 2 uses sigma = 2; paper 003 §2.2 blurring).

    ``sigma`` in (0, 20] or a range; ``kernel`` odd in 3..127, or ``None`` for ``2*ceil(3*sigma) + 1``.
    Borders are reflected (replicated for images smaller than the kernel radius), so constants are kept.
    """


    def __init__(
        self, sigma: Range = 2.0, kernel: int | None = None, generator: torch.Generator | None = None
    ):
        super().__init__(generator)
        self.sigma = check_range("sigma", sigma, 0.0, 20.0, lo_open=True)
        self.kernel = None if kernel is None else check_int("kernel", kernel, 3, 127, odd=True)

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        from kornia.filters import gaussian_blur2d

        check_batch(x)
        s = draw(self.sigma, self.generator)
        k = self.kernel or 2 * math.ceil(3 * s) + 1
        border = "reflect" if k // 2 < min(x.shape[-2:]) else "replicate"
        return gaussian_blur2d(x, (k, k), (s, s), border_type=border)


@register_attack("median", positional="kernel")
class MedianFilter(Attack):
    """Median filter over a ``kernel x kernel`` window (odd, 3..15), borders reflected (replicated when the
    image is smaller than the radius). Gradient flows to the median pixel of each window."""


    def __init__(self, kernel: int = 3):
        super().__init__(None)
        self.kernel = check_int("kernel", kernel, 3, 15, odd=True)

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        k, r = self.kernel, self.kernel // 2
        mode = "reflect" if r < min(x.shape[-2:]) else "replicate"
        xp = F.pad(x, (r, r, r, r), mode=mode)
        win = xp.unfold(2, k, 1).unfold(3, k, 1)  # N x C x H x W x k x k
        return win.reshape(*win.shape[:4], k * k).median(dim=-1).values


@register_attack("resize", positional="scale")
class Resize(Attack):
    """Rescale by ``scale`` (paper 003 §2.2 random scaling) and, with ``keep_size`` (default), back to the
    original size, so the layer only removes (or, above 1, interpolates) detail.

    ``scale`` in [0.05, 4] or a range; ``interpolation`` nearest | bilinear | bicubic | area (both ways);
    ``antialias`` filters before bilinear / bicubic downscaling (as image libraries do); ``between``: a
    layer applied at the rescaled size before the way back (a platform's resize then compression:
    ``resize(0.5..0.9, between=real(jpeg:q=50..90))``). Output clamped to [0, 1] (bicubic overshoots),
    identity gradient.
    """

    layer_params = ("between",)

    def __init__(
        self,
        scale: Range = 0.5,
        interpolation: str = "bilinear",
        keep_size: bool = True,
        antialias: bool = True,
        between: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__(generator)
        if between is not None and not isinstance(between, nn.Module):
            raise AttackError(f"between must be an attack layer, got {type(between).__name__}")
        self.between = between
        self.scale = check_range("scale", scale, 0.05, 4.0)
        self.interpolation = _check_interp(interpolation)
        if not isinstance(keep_size, bool) or not isinstance(antialias, bool):
            raise AttackError("keep_size and antialias must be true or false")
        self.keep_size = keep_size
        self.antialias = antialias

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        s = draw(self.scale, self.generator)
        h, w = x.shape[-2:]
        size = (max(1, round(h * s)), max(1, round(w * s)))
        y = _resize(x, size, self.interpolation, self.antialias)
        if self.between is not None:
            y = apply_layer(self.between, y, None if cover is None else _resize(cover, size, self.interpolation,
                                                                                 self.antialias))
        if self.keep_size:
            y = _resize(y, (h, w), self.interpolation, self.antialias)
        return ste_clamp(y)


def window_size(h: int, w: int, ratio: float, aspect: float = 1.0) -> tuple[int, int]:
    """Window ``(hh, ww)`` of area closest to ``ratio * h * w``, with ``(hh/h) / (ww/w)`` about ``aspect``."""
    hr = min(1.0, math.sqrt(ratio * aspect))
    hh = min(h, max(1, round(hr * h)))
    ww = min(w, max(1, round(ratio * h * w / hh)))
    return hh, ww


class _Windowed(Attack):
    """Shared logic: a random window of area ``ratio`` per image (``last_windows``: (top, left, h, w))."""

    def _setup(self, ratio: Range, aspect: Range) -> None:
        self.ratio = check_range("ratio", ratio, 0.0, 1.0, lo_open=True)
        self.aspect = check_range("aspect", aspect, 0.25, 4.0)
        self.last_windows: list[tuple[int, int, int, int]] = []

    def _windows(self, x: torch.Tensor, per_image: bool = True) -> tuple[int, int, torch.Tensor, torch.Tensor]:
        n, _, h, w = x.shape
        r, a = draw(self.ratio, self.generator), draw(self.aspect, self.generator)
        if per_image:
            hh, ww = window_size(h, w, r, a)
        else:  # each side scaled by its square root, rounded (the old training noise pool's window)
            hh, ww = min(h, max(1, round(h * math.sqrt(r * a)))), min(w, max(1, round(w * math.sqrt(r / a))))
        if not per_image:  # one window for the whole batch
            top, left = randint(self.generator, 0, h - hh), randint(self.generator, 0, w - ww)
            tops, lefts = [top] * n, [left] * n
        else:
            tops = [randint(self.generator, 0, h - hh) for _ in range(n)]
            lefts = [randint(self.generator, 0, w - ww) for _ in range(n)]
        self.last_windows = [(t, le, hh, ww) for t, le in zip(tops, lefts)]
        return hh, ww, torch.tensor(tops, device=x.device), torch.tensor(lefts, device=x.device)

    def _mask(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 1 x H x W`` bool mask, True inside each image's window."""
        hh, ww, tops, lefts = self._windows(x)
        rows = torch.arange(x.shape[-2], device=x.device)[None]
        cols = torch.arange(x.shape[-1], device=x.device)[None]
        mr = (rows >= tops[:, None]) & (rows < tops[:, None] + hh)
        mc = (cols >= lefts[:, None]) & (cols < lefts[:, None] + ww)
        return (mr[:, :, None] & mc[:, None, :])[:, None]


def _check_fill(fill: Any) -> float:
    names = {"black": 0.0, "white": 1.0, "gray": 0.5, "grey": 0.5}
    if isinstance(fill, str):
        if fill not in names:
            raise AttackError(f"fill must be black, white, gray or a number in [0, 1], got {fill!r}")
        return names[fill]
    return float(check_range("fill", fill, 0.0, 1.0, allow_range=False))


@register_attack("crop", positional="ratio")
class Crop(_Windowed):
    """HiDDeN / MBRS crop: keep a window of area ``ratio`` of the image at a random place, fill the rest
    with ``fill`` (0 black, HiDDeN's zeros; 1 white, MBRS §4.2.2 "pad ... with (255, 255, 255)").

    ``ratio`` in (0, 1] or a range (MBRS Table 2: 0.035); ``aspect``: window aspect relative to the image's
    (1 = same shape; a range gives random shapes), in [0.25, 4]. The kept area is the integer window
    closest to ``ratio * H * W`` (exact when the sides allow it).
    """


    def __init__(
        self,
        ratio: Range = 0.5,
        fill: float | str = 0.0,
        aspect: Range = 1.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__(generator)
        self._setup(ratio, aspect)
        self.fill = _check_fill(fill)

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        m = self._mask(x)
        return torch.where(m, x, torch.full_like(x, self.fill))


@register_attack("cropresize", positional="ratio")
class CropResize(_Windowed):
    """A real crop of area ``ratio`` (random place per image) resized back to ``H x W`` (a platform crop +
    rescale). ``ratio`` in (0, 1] or a range; ``aspect`` as in :class:`Crop`; ``interpolation`` for the
    upscaling; ``per_image=false``: one window for the whole batch (one draw of its place), its sides
``round(sqrt(ratio * aspect) H)`` and ``round(sqrt(ratio / aspect) W)``."""


    def __init__(
        self,
        ratio: Range = 0.7,
        interpolation: str = "bilinear",
        aspect: Range = 1.0,
        per_image: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__(generator)
        self._setup(ratio, aspect)
        self.interpolation = _check_interp(interpolation)
        if not isinstance(per_image, bool):
            raise AttackError(f"per_image must be true or false, got {per_image!r}")
        self.per_image = per_image

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        h, w = x.shape[-2:]
        hh, ww, tops, lefts = self._windows(x, self.per_image)
        if not self.per_image:
            t, le = int(tops[0]), int(lefts[0])
            return ste_clamp(_resize(x[..., t : t + hh, le : le + ww], (h, w), self.interpolation, True))
        crops = torch.stack(
            [
                x[i, :, t : t + hh, le : le + ww]
                for i, (t, le) in enumerate(zip(tops.tolist(), lefts.tolist()))
            ]
        )
        return ste_clamp(_resize(crops, (h, w), self.interpolation, True))


@register_attack("cropout", positional="ratio")
class Cropout(_Windowed):
    """HiDDeN's Cropout (MBRS Table 2: p = 0.3): keep a random window of area ``ratio`` of the marked image,
    take every other pixel from the cover. ``ratio`` in (0, 1] or a range; needs ``cover``."""

    needs_cover = True

    def __init__(self, ratio: Range = 0.3, aspect: Range = 1.0, generator: torch.Generator | None = None):
        super().__init__(generator)
        self._setup(ratio, aspect)

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        c = need_cover(x, cover, "Cropout")
        return torch.where(self._mask(x), x, c)


@register_attack("dropout", positional="p")
class Dropout(Attack):
    """HiDDeN's Dropout: each pixel (all three channels) is taken from the cover with probability ``p``, else
    kept from the marked image. ``p`` in [0, 1] or a range; needs ``cover``. ``p = 0`` returns ``x`` exactly,
    ``p = 1`` the cover.

    Note the convention: HiDDeN's and MBRS's Dropout(p) (MBRS Table 2: p = 0.3) *keeps* a share ``p`` of the
    marked pixels (MBRS's code: ``where(rand > p, cover, marked)``), so it is ``dropout(0.7)`` here, and
    ``dropout:p=0.3`` in ``robusthide evaluate`` (whose ``p`` is the share kept,
    :data:`robusthide.evaluation.attacks_grammar.DISTORTIONS`). MBRS's code draws per channel, HiDDeN's and
    this layer per pixel."""

    needs_cover = True

    def __init__(self, p: Range = 0.3, generator: torch.Generator | None = None):
        super().__init__(generator)
        self.p = check_range("p", p, 0.0, 1.0)

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        c = need_cover(x, cover, "Dropout")
        p = draw(self.p, self.generator)
        n, _, h, w = x.shape
        from_cover = rand((n, 1, h, w), self.generator, x) < p
        return torch.where(from_cover, c, x)


@register_attack("brightness-contrast", positional="brightness")
class BrightnessContrast(Attack):
    """Brightness / contrast change ``y = clamp((x - 0.5) * contrast + 0.5 + brightness, 0, 1)``.

    ``brightness`` in [-1, 1] (additive, pixel scale) and ``contrast`` in [0, 4] (gain around mid-grey),
    numbers or ranges; the clamp has an identity gradient.
    """


    def __init__(
        self, brightness: Range = 0.0, contrast: Range = 1.0, generator: torch.Generator | None = None
    ):
        super().__init__(generator)
        self.brightness = check_range("brightness", brightness, -1.0, 1.0)
        self.contrast = check_range("contrast", contrast, 0.0, 4.0)

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        b = draw(self.brightness, self.generator)
        c = draw(self.contrast, self.generator)
        return ste_clamp((x - 0.5) * c + 0.5 + b)
