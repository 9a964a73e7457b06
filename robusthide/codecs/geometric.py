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


def _fraction(name: str, v: object) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or not 0 < v <= 1:
        raise ValueError(f"{name} must be a number in (0, 1], got {v!r}")
    return float(v)


def _position(name: str, v: object) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or not 0 <= v <= 1:
        raise ValueError(f"{name} must be a number in [0, 1] (0: left/top edge, 1: right/bottom), got {v!r}")
    return float(v)


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

    summary = ("crop a window of area ratio A (or sides w=,h=) at the centre, at x=,y= (0..1) or pos=random,seed=, "
               "resized back to full size")

    def __init__(self, spec: str = "", workers: int | None = None, area: float = 0.9, pos: str = "center",
                 seed: int = 0, interp: str = "bicubic", w: float | None = None, h: float | None = None,
                 x: float | None = None, y: float | None = None):
        super().__init__(spec, workers)
        ok = isinstance(area, (int, float)) and not isinstance(area, bool) and math.isfinite(area)
        if not ok or not 0 < area <= 1:
            raise ValueError(f"area must be a number in (0, 1], got {area!r}")
        self.area = float(area)
        self.sides = None if w is None and h is None else (_fraction("w", 1.0 if w is None else w),
                                                            _fraction("h", 1.0 if h is None else h))
        if self.sides is not None:
            self.area = self.sides[0] * self.sides[1]
        self.at = None if x is None and y is None else (_position("x", 0.5 if x is None else x),
                                                         _position("y", 0.5 if y is None else y))
        if pos not in ("center", "centre", "random"):
            raise ValueError(f"pos must be center or random, got {pos!r}")
        self.pos = "center" if pos == "centre" else pos
        if self.at is not None and self.pos == "random":
            raise ValueError("give either x=/y= or pos=random, not both")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed
        self.interp = _check_interp(interp)
        self.library = f"Pillow {Image.__version__}"

    def window_size(self, h: int, w: int) -> tuple[int, int]:
        """Window (height, width): the image's aspect ratio, area ratio ``area`` up to rounding."""
        fw, fh = self.sides if self.sides is not None else (math.sqrt(self.area),) * 2
        return min(h, max(1, round(h * fh))), min(w, max(1, round(w * fw)))

    def windows(self, n: int, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """``(y0, x0, height, width)`` of the window kept in each of ``n`` images."""
        ch, cw = self.window_size(h, w)
        if self.at is not None:
            return [(round((h - ch) * self.at[1]), round((w - cw) * self.at[0]), ch, cw)] * n
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


@register_codec("flip", positional="axis")
class Flip(_Geometric):
    """Mirror the image: ``h`` (left-right, the selfie mirror) or ``v`` (upside down)."""

    summary = "mirror the image: flip:h (left-right) or flip:v (top-bottom)"

    def __init__(self, spec: str = "", workers: int | None = None, axis: str = "h"):
        super().__init__(spec, workers)
        if axis not in ("h", "v"):
            raise ValueError(f"axis must be h or v, got {axis!r}")
        self.axis = axis
        self.library = "numpy"

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        return np.ascontiguousarray(image[:, ::-1] if self.axis == "h" else image[::-1]), 0


def inscribed_sides(angle: float, h: int, w: int) -> tuple[float, float]:
    """Side fractions (of w, h) of the largest rectangle of the image's aspect ratio inside the image rotated
    by ``angle`` degrees about its centre (what a photo editor's straighten tool keeps)."""
    t = math.radians(abs(angle) % 180)
    c, s = abs(math.cos(t)), abs(math.sin(t))
    k = min(w / (w * c + h * s), h / (w * s + h * c))
    return k, k


@register_codec("rotate", positional="angle")
class Rotate(_Geometric):
    """Rotate by ``angle`` degrees (counter-clockwise) about the centre; ``fill=black`` keeps the frame with
    black corners, ``fill=crop`` keeps the largest centred rectangle of the image's aspect ratio that holds
    no corner, resized back to full size (a photo editor's straighten). A multiple of 90 degrees is an exact
    quarter turn (an editor's rotate button); as every codec keeps the input's shape, a picture that is not
    square is turned and then resampled to its own width and height (a whole-image decoder, which reads any
    picture at S x S, sees the same as from the turned picture; a file turned by a tool keeps its swapped
    sides)."""

    summary = ("rotate by angle degrees: fill=black (corners) or fill=crop (straighten: crop and resize back); "
               "multiples of 90 turn exactly")

    def __init__(self, spec: str = "", workers: int | None = None, angle: float = 5.0, fill: str = "black",
                 interp: str = "bicubic"):
        super().__init__(spec, workers)
        ok = isinstance(angle, (int, float)) and not isinstance(angle, bool) and math.isfinite(angle)
        if not ok or not -360 <= angle <= 360:
            raise ValueError(f"angle must be a number of degrees in [-360, 360], got {angle!r}")
        if fill not in ("black", "crop"):
            raise ValueError(f"fill must be black or crop, got {fill!r}")
        self.angle, self.fill = float(angle), fill
        self.interp = _check_interp(interp)
        self.library = f"Pillow {Image.__version__}"

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        h, w = image.shape[:2]
        if self.angle % 90 == 0:  # np.rot90 turns counter-clockwise, as Pillow's rotate does
            out = np.ascontiguousarray(np.rot90(image, int(self.angle // 90) % 4))
            return (out if out.shape == image.shape else resample(out, (h, w), self.interp)), 0
        flt = Image.Resampling.BILINEAR if self.interp in ("bilinear", "area") else _FILTERS[self.interp]
        out = np.asarray(Image.fromarray(image).rotate(self.angle, resample=flt, expand=False, fillcolor=0))
        if self.fill == "crop":
            fw, fh = inscribed_sides(self.angle, h, w)
            ch, cw = max(1, math.floor(h * fh)), max(1, math.floor(w * fw))
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            out = resample(np.ascontiguousarray(out[y0:y0 + ch, x0:x0 + cw]), (h, w), self.interp)
        return out, 0


def _aspect(v: object) -> float:
    if isinstance(v, str) and "x" in v:
        a, _, b = v.partition("x")
        try:
            return float(a) / float(b)
        except (ValueError, ZeroDivisionError):
            pass
    elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
        return float(v)
    raise ValueError(f"aspect must be W x H such as 4x5 or 16x9, or a positive number, got {v!r}")


@register_codec("reframe", positional="aspect")
class Reframe(_Geometric):
    """Crop the centre to the aspect ratio ``aspect`` (``4x5``, ``16x9``, ``1x1``: width x height), as a
    platform reframes a post, or the window at ``pos`` along the side that is cut (0: the left or top end, 1:
    the right or bottom end; a square dragged off the centre in a phone editor), and resize it back to the
    input's size (the interface keeps shapes; a decoder that resizes to its working size sees the same)."""

    summary = "crop the centre (or pos=0..1 along the cut side) to aspect WxH (4x5, 16x9, 1x1), resized back"

    def __init__(self, spec: str = "", workers: int | None = None, aspect: object = "4x5",
                 interp: str = "bicubic", pos: float | None = None):
        super().__init__(spec, workers)
        self.aspect = _aspect(aspect)
        self.interp = _check_interp(interp)
        self.pos = None if pos is None else _position("pos", pos)
        self.library = f"Pillow {Image.__version__}"

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        h, w = image.shape[:2]
        if w / h > self.aspect:
            ch, cw = h, max(1, round(h * self.aspect))
        else:
            ch, cw = max(1, round(w / self.aspect)), w
        if self.pos is None:
            y0, x0 = (h - ch) // 2, (w - cw) // 2
        else:
            y0, x0 = round((h - ch) * self.pos), round((w - cw) * self.pos)
        return resample(np.ascontiguousarray(image[y0:y0 + ch, x0:x0 + cw]), (h, w), self.interp), 0
