"""Geometric distortions behind the codec interface: ``resize`` and ``crop`` (no bitstream, ``nbytes`` 0).

The codec interface keeps shapes (a decoded batch has the shape of its input), so both distortions come
back to the original size, as a detector that resamples what it receives to its working size sees them:

* ``resize:S`` -- downscale by ``S`` (each side to ``round(S * side)``, at least 1 pixel), then resample
  back to the original size. ``S`` in [0.05, 4] (``S > 1`` upscales first). This is the platform resize
  of the noise pool (``robusthide.training.noise_pool``, ``resize``) as a real, uint8 operation.
* ``crop:A`` -- keep a window of area ratio ``A`` in (0, 1] with the image's aspect ratio (sides
  ``round(sqrt(A) * side)``), centred (``pos=center``, default) or at a random place
  (``pos=random``, ``seed=`` integer, default 0: offsets of image ``i`` are the ``i``-th draws of
  ``numpy.random.default_rng(seed)``, so the same spec on the same batch gives the same result), then
  resample the window back to the full size (a crop-and-rescale, as when a platform crops a picture and
  shows it at the original size). :meth:`Crop.window` gives the exact window.

``interp``: ``bicubic`` (default; Pillow's default), ``bilinear``, ``lanczos``, ``nearest`` or ``area``
(box filter when shrinking, bilinear when enlarging). Resampling is Pillow's ``Image.resize``, which
filters with a support widened by the scale factor when shrinking (antialiased, like platform
resizers), and releases the GIL (threads across the batch).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from robusthide.codecs.base import Codec
from robusthide.codecs.registry import register_codec

_INTERP = ("bicubic", "bilinear", "lanczos", "nearest", "area")
_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
            "lanczos": Image.Resampling.LANCZOS, "nearest": Image.Resampling.NEAREST}


def _check_interp(interp: object) -> str:
    if not isinstance(interp, str) or interp.lower() not in _INTERP:
        raise ValueError(f"interp must be one of {', '.join(_INTERP)}, got {interp!r}")
    return interp.lower()


def resample(image: np.ndarray, size: tuple[int, int], interp: str) -> np.ndarray:
    """Resize a uint8 H x W x 3 image to ``size = (h, w)`` with Pillow (``area``: box down, bilinear up)."""
    h, w = size
    if (h, w) == image.shape[:2]:
        return image
    if interp == "area":
        shrink = h * w < image.shape[0] * image.shape[1]
        flt = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    else:
        flt = _FILTERS[interp]
    return np.asarray(Image.fromarray(image).resize((w, h), resample=flt))


class _Geometric(Codec):
    lossy = True
    bitstream = False

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, f"Pillow {Image.__version__}"


@register_codec("resize", positional="scale")
class Resize(_Geometric):
    """Downscale by ``scale`` then back to the original size; ``interp`` (bicubic)."""

    summary = "resize by scale (0.05..4) and back to the original size, interp=bicubic|bilinear|area|..."

    def __init__(self, spec: str = "", workers: int | None = None, scale: float = 0.5,
                 interp: str = "bicubic"):
        super().__init__(spec, workers)
        ok = isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale)
        if not ok or not 0.05 <= scale <= 4:
            raise ValueError(f"scale must be a number in [0.05, 4], got {scale!r}")
        self.scale = float(scale)
        self.interp = _check_interp(interp)
        self.library = f"Pillow {Image.__version__}"

    def small_size(self, h: int, w: int) -> tuple[int, int]:
        """The intermediate size (h, w)."""
        return max(1, round(h * self.scale)), max(1, round(w * self.scale))

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        h, w = image.shape[:2]
        small = resample(image, self.small_size(h, w), self.interp)
        return resample(small, (h, w), self.interp), 0


@register_codec("crop", positional="area")
class Crop(_Geometric):
    """Keep a window of area ratio ``area`` (centred or ``pos=random``, ``seed``), resized back up."""

    summary = "crop a window of area ratio A (centre or pos=random,seed=) and resize it back to full size"

    def __init__(self, spec: str = "", workers: int | None = None, area: float = 0.9, pos: str = "center",
                 seed: int = 0, interp: str = "bicubic"):
        super().__init__(spec, workers)
        ok = isinstance(area, (int, float)) and not isinstance(area, bool) and math.isfinite(area)
        if not ok or not 0 < area <= 1:
            raise ValueError(f"area must be a number in (0, 1], got {area!r}")
        self.area = float(area)
        if pos not in ("center", "centre", "random"):
            raise ValueError(f"pos must be center or random, got {pos!r}")
        self.pos = "center" if pos == "centre" else pos
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        self.interp = _check_interp(interp)
        self.library = f"Pillow {Image.__version__}"

    def window_size(self, h: int, w: int) -> tuple[int, int]:
        """Window (height, width): the image's aspect ratio, area ratio ``area`` up to rounding."""
        r = math.sqrt(self.area)
        return min(h, max(1, round(h * r))), min(w, max(1, round(w * r)))

    def windows(self, n: int, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """``(y0, x0, height, width)`` of the window kept in each of ``n`` images."""
        ch, cw = self.window_size(h, w)
        if self.pos == "center":
            return [((h - ch) // 2, (w - cw) // 2, ch, cw)] * n
        rng = np.random.default_rng(self.seed)
        ys = rng.integers(0, h - ch + 1, size=n)
        xs = rng.integers(0, w - cw + 1, size=n)
        return [(int(y), int(x), ch, cw) for y, x in zip(ys, xs)]

    def window(self, h: int, w: int, index: int = 0) -> tuple[int, int, int, int]:
        """The window of image ``index`` of a batch."""
        return self.windows(index + 1, h, w)[index]

    def code_one(self, image: np.ndarray,
                 win: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, int]:
        h, w = image.shape[:2]
        y0, x0, ch, cw = win if win is not None else self.window(h, w)
        return resample(np.ascontiguousarray(image[y0:y0 + ch, x0:x0 + cw]), (h, w), self.interp), 0

    def code_batch(self, batch: np.ndarray) -> tuple[np.ndarray, list[int]]:
        n, h, w, _ = batch.shape
        wins = self.windows(n, h, w)
        outs = [self.code_one(im, win) for im, win in zip(batch, wins)]
        return np.stack([o[0] for o in outs]), [0] * n
