"""A picture shown inside a larger one, behind the codec interface: ``pad``, ``inset`` and ``collage``.

These are the everyday edits that put a photo *inside* a frame rather than cutting it: an app that posts a photo
whole to a square or 4:5 feed pads it (white, black, or a blurred copy of the photo behind it); a screenshot
shows it with the app's bars around it; a collage puts it beside other photos. The interface keeps shapes, so
each result is resampled back to the input's size, as ``reframe`` does (a detector that resizes what it
receives to its working size sees the same picture):

* ``pad:A`` -- pad to the aspect ratio ``A`` (``1x1``, ``4x5``, ``9x16``: width x height), the photo centred;
  ``fill`` ``white`` (default), ``black``, ``grey`` or ``blur`` (the photo itself, enlarged to cover the frame
  and blurred, as story apps fill the margins).
* ``inset:S`` -- the photo shrunk to the fraction ``S`` of each side and placed at ``x=``, ``y=`` (0..1 of the
  free space; default the centre) in a frame of its own size, with a bar of ``bar=`` of the height (default
  0.06) across the top and the bottom in another grey, as a screenshot's status and navigation bars; ``fill``
  as for ``pad`` (default ``grey``).
* ``collage:N`` -- an N x N grid (``N`` 2 or 3) of photos with white gaps of ``gap=`` of the side (default
  0.01); this image goes in the cell ``cell=`` (default 0, row by row) and the other cells take, with
  ``others=photos`` (default), photos of scikit-image's own (public domain, unmarked: an evaluation that
  marks every image of a batch then measures one mark among unmarked photos), with ``others=batch``, the next
  images of the batch (the image itself when the batch has one).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFilter

if TYPE_CHECKING:
    from collections.abc import Sequence

from robusthide.codecs.geometric import _aspect, _check_interp, _Geometric, _position, resample
from robusthide.codecs.registry import register_codec

FILLS = {"white": 255, "black": 0, "grey": 128}
#: scikit-image's photos the collage puts beside the image (``others=photos``), in this order
COLLAGE_PHOTOS = ("coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "astronaut", "camera",
                  "immunohistochemistry")


@functools.lru_cache(maxsize=1)
def _collage_photos() -> tuple[np.ndarray, ...]:
    """:data:`COLLAGE_PHOTOS` as H x W x 3 uint8 arrays (files inside scikit-image's wheel: no download)."""
    from skimage import data

    out = []
    for name in COLLAGE_PHOTOS:
        a = np.asarray(getattr(data, name)())
        out.append(np.ascontiguousarray(np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3]))
    return tuple(out)


def _fill(name: object, allowed: tuple[str, ...]) -> str:
    if name not in allowed:
        raise ValueError(f"fill must be one of {', '.join(allowed)}, got {name!r}")
    return str(name)


def _canvas(photo: np.ndarray, h: int, w: int, fill: str) -> np.ndarray:
    """An h x w canvas: a flat grey level, or (``blur``) the photo enlarged to cover it and blurred."""
    if fill != "blur":
        return np.full((h, w, photo.shape[2]), FILLS[fill], dtype=np.uint8)
    ph, pw = photo.shape[:2]
    s = max(h / ph, w / pw)
    big = Image.fromarray(photo).resize((max(w, math.ceil(pw * s)), max(h, math.ceil(ph * s))),
                                        Image.Resampling.BILINEAR)
    x0, y0 = (big.width - w) // 2, (big.height - h) // 2
    big = big.crop((x0, y0, x0 + w, y0 + h)).filter(ImageFilter.GaussianBlur(radius=max(h, w) / 40))
    return np.asarray(big)


@register_codec("pad", positional="aspect")
class Pad(_Geometric):
    """Pad to aspect ratio ``aspect`` with the photo centred (``fill``: white, black, grey or blur), resized
    back to the input's size."""

    summary = "pad to aspect WxH (1x1, 4x5, 9x16) with the photo centred, fill=white|black|grey|blur"

    def __init__(self, spec: str = "", workers: int | None = None, aspect: object = "1x1", fill: str = "white",
                 interp: str = "bicubic"):
        super().__init__(spec, workers)
        self.aspect = _aspect(aspect)
        self.fill = _fill(fill, (*FILLS, "blur"))
        self.interp = _check_interp(interp)
        self.library = f"Pillow {Image.__version__}"

    def box(self, h: int, w: int) -> tuple[int, int, int, int]:
        """The padded frame's (height, width) and where the photo sits in it (y0, x0)."""
        ph, pw = (h, max(w, round(h * self.aspect))) if w / h < self.aspect else (max(h, round(w / self.aspect)), w)
        return ph, pw, (ph - h) // 2, (pw - w) // 2

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        h, w = image.shape[:2]
        ph, pw, y0, x0 = self.box(h, w)
        out = _canvas(image, ph, pw, self.fill).copy()
        out[y0:y0 + h, x0:x0 + w] = image
        return resample(out, (h, w), self.interp), 0


@register_codec("inset", positional="scale")
class Inset(_Geometric):
    """The photo shrunk to ``scale`` of each side at ``x``, ``y`` in a frame of its size with bars (a
    screenshot)."""

    summary = "the photo shrunk to S of each side at x=,y= in a screenshot-like frame (bar=, fill=)"

    def __init__(self, spec: str = "", workers: int | None = None, scale: float = 0.7, x: float = 0.5,
                 y: float = 0.5, bar: float = 0.06, fill: str = "grey", interp: str = "bicubic"):
        super().__init__(spec, workers)
        ok = isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale)
        if not ok or not 0.1 <= scale <= 1:
            raise ValueError(f"scale must be a number in [0.1, 1], got {scale!r}")
        okb = isinstance(bar, (int, float)) and not isinstance(bar, bool) and math.isfinite(bar)
        if not okb or not 0 <= bar <= 0.2:
            raise ValueError(f"bar must be a number in [0, 0.2], got {bar!r}")
        self.scale, self.bar = float(scale), float(bar)
        self.at = (_position("x", x), _position("y", y))
        self.fill = _fill(fill, (*FILLS, "blur"))
        self.interp = _check_interp(interp)
        self.library = f"Pillow {Image.__version__}"

    def box(self, h: int, w: int) -> tuple[int, int, int, int]:
        """Where the photo sits in the frame: (y0, x0, height, width)."""
        bh = round(self.bar * h)
        ih, iw = max(1, round(h * self.scale)), max(1, round(w * self.scale))
        ih = min(ih, h - 2 * bh)
        return bh + round((h - 2 * bh - ih) * self.at[1]), round((w - iw) * self.at[0]), ih, iw

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        h, w = image.shape[:2]
        y0, x0, ih, iw = self.box(h, w)
        out = _canvas(image, h, w, self.fill).copy()
        bh = round(self.bar * h)
        if bh:
            out[:bh], out[h - bh:] = 40, 235
        out[y0:y0 + ih, x0:x0 + iw] = resample(image, (ih, iw), self.interp)
        return tuple(out), 0


@register_codec("collage", positional="n")
class Collage(_Geometric):
    """An ``n`` x ``n`` grid of photos with white gaps, this one in cell ``cell`` (``others``: scikit-image's
    photos or the batch's)."""

    summary = "an NxN grid (2 or 3) of photos with white gaps (gap=), this one in cell cell=, others=photos|batch"

    def __init__(self, spec: str = "", workers: int | None = None, n: int = 2, cell: int = 0, gap: float = 0.01,
                 others: str = "photos", interp: str = "bicubic"):
        super().__init__(spec, workers)
        if n not in (2, 3):
            raise ValueError(f"n must be 2 or 3, got {n!r}")
        if isinstance(cell, bool) or not isinstance(cell, int) or not 0 <= cell < n * n:
            raise ValueError(f"cell must be an integer in [0, {n * n - 1}], got {cell!r}")
        okg = isinstance(gap, (int, float)) and not isinstance(gap, bool) and math.isfinite(gap)
        if not okg or not 0 <= gap <= 0.1:
            raise ValueError(f"gap must be a number in [0, 0.1], got {gap!r}")
        if others not in ("photos", "batch"):
            raise ValueError(f"others must be photos or batch, got {others!r}")
        self.n, self.cell, self.gap, self.others = n, cell, float(gap), others
        self.interp = _check_interp(interp)
        self.library = f"Pillow {Image.__version__}"

    def cells(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """(y0, x0, height, width) of each cell of an h x w frame, row by row."""
        g = round(self.gap * max(h, w))
        ch, cw = (h - (self.n - 1) * g) // self.n, (w - (self.n - 1) * g) // self.n
        return [(r * (ch + g), c * (cw + g), ch, cw) for r in range(self.n) for c in range(self.n)]

    def code_one(self, image: np.ndarray, others: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, int]:
        h, w = image.shape[:2]
        out = np.full_like(image, 255)
        if others is None:
            others = _collage_photos() if self.others == "photos" else ()
        rest = list(others) or [image]
        tiles = [rest[i % len(rest)] for i in range(self.n * self.n)]
        tiles[self.cell] = image
        for (y0, x0, ch, cw), t in zip(self.cells(h, w), tiles):
            out[y0:y0 + ch, x0:x0 + cw] = resample(np.ascontiguousarray(t), (ch, cw), self.interp)
        return tuple(out), 0

    def code_batch(self, batch: np.ndarray) -> tuple[np.ndarray, list[int]]:
        n = len(batch)
        if self.others == "photos":
            outs = [self.code_one(im)[0] for im in batch]
        else:
            outs = [self.code_one(im, [batch[(i + k) % n] for k in range(1, n)] if n > 1 else None)[0]
                    for i, im in enumerate(batch)]
        return np.stack(outs), [0] * n
