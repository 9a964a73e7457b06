"""Everyday photo edits behind the codec interface: a phone editor's sliders, its filters and a caption.

The edits people make before they post a photo change its colours and tones, not its geometry: every result
keeps the input's shape and carries no bitstream (``nbytes`` 0), like the distortions of
:mod:`robusthide.codecs.geometric`. Each is Pillow's own operation where Pillow has one:

* ``brightness:F``, ``contrast:F``, ``saturation:F`` -- ``PIL.ImageEnhance`` Brightness, Contrast (about the
  image's mean grey) and Color with the factor ``F`` in [0, 4] (1: unchanged; 0: black, flat grey, greyscale).
* ``gamma:G`` -- the tone curve ``255 (x / 255) ^ (1 / G)``, ``G`` in [0.2, 5] (``G > 1`` lifts the mid-tones,
  as an editor's gamma or "shadows" slider).
* ``hue:D`` -- every hue turned by ``D`` degrees in [-180, 180] (Pillow's HSV; saturation and value kept).
* ``temperature:T`` -- white balance, ``T`` in [-1, 1]: red gained by ``1 + 0.2 T`` and blue by ``1 - 0.2 T``
  (``T > 0`` warmer, an editor's "warmth").
* ``grayscale`` -- Pillow's ITU-R 601 luma, the same grey in all three channels.
* ``sharpen:A`` -- ``PIL.ImageFilter.UnsharpMask`` of ``radius=`` (default 2 pixels) and amount ``A`` in [0, 5]
  (``percent`` = 100 ``A``, threshold 0).
* ``vignette:S`` -- corners darkened: each pixel times ``1 - S r^2``, ``r`` its distance from the centre with
  the corners at 1, ``S`` in [0, 1].
* ``text:H`` -- a caption: white text of height ``H`` in (0, 0.5] of the picture with a black outline, centred
  across at ``y=`` (0..1, default 0.85) of the height, as a story or a meme puts it; ``say=`` the words, letters
  and digits with ``_`` for a space (default ``robusthide_was_here``). Pillow's built-in font.
* ``filter:NAME`` -- a preset in the manner of a phone editor's filters, made of the edits above
  (:data:`FILTERS`): ``vivid``, ``warm``, ``cool``, ``fade``, ``vintage``, ``mono`` and ``dramatic``.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from robusthide.codecs.geometric import _Geometric, _position
from robusthide.codecs.registry import get_codec, register_codec


def _number(name: str, v: object, lo: float, hi: float) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or not lo <= v <= hi:
        raise ValueError(f"{name} must be a number in [{lo:g}, {hi:g}], got {v!r}")
    return float(v)


class _Edit(_Geometric):
    """An everyday edit: keeps the shape, no bitstream, Pillow."""

    def __init__(self, spec: str = "", workers: int | None = None):
        super().__init__(spec, workers)
        self.library = f"Pillow {Image.__version__}"


class _Enhance(_Edit):
    """``PIL.ImageEnhance.<enhancer>`` with one factor in [0, 4]."""

    enhancer: type = ImageEnhance.Brightness

    def __init__(self, spec: str = "", workers: int | None = None, factor: float = 1.0):
        super().__init__(spec, workers)
        self.factor = _number("factor", factor, 0, 4)

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        return np.asarray(self.enhancer(Image.fromarray(image)).enhance(self.factor)), 0


@register_codec("brightness", positional="factor")
class Brightness(_Enhance):
    """Brightness: every pixel times ``factor`` (``PIL.ImageEnhance.Brightness``)."""

    summary = "brightness factor 0..4 (1: unchanged), PIL.ImageEnhance.Brightness"
    enhancer = ImageEnhance.Brightness


@register_codec("contrast", positional="factor")
class Contrast(_Enhance):
    """Contrast about the image's mean grey (``PIL.ImageEnhance.Contrast``)."""

    summary = "contrast factor 0..4 about the mean grey (1: unchanged), PIL.ImageEnhance.Contrast"
    enhancer = ImageEnhance.Contrast


@register_codec("saturation", positional="factor")
class Saturation(_Enhance):
    """Colour saturation (``PIL.ImageEnhance.Color``; 0: greyscale)."""

    summary = "saturation factor 0..4 (0: grey, 1: unchanged), PIL.ImageEnhance.Color"
    enhancer = ImageEnhance.Color


def _lut(curve: np.ndarray) -> list[int]:
    return np.clip(np.round(curve), 0, 255).astype(int).tolist()


@register_codec("gamma", positional="gamma")
class Gamma(_Edit):
    """The tone curve ``255 (x / 255) ^ (1 / gamma)`` on every channel (``gamma > 1`` lifts the mid-tones)."""

    summary = "tone curve 255 (x/255)^(1/G), G 0.2..5 (G > 1 brighter mid-tones)"

    def __init__(self, spec: str = "", workers: int | None = None, gamma: float = 1.0):
        super().__init__(spec, workers)
        self.gamma = _number("gamma", gamma, 0.2, 5)
        self.table = _lut(255 * (np.arange(256) / 255) ** (1 / self.gamma)) * 3

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        return np.asarray(Image.fromarray(image).point(self.table)), 0


@register_codec("hue", positional="degrees")
class Hue(_Edit):
    """Every hue turned by ``degrees`` (Pillow's HSV, 256 hue steps; saturation and value kept)."""

    summary = "turn every hue by D degrees, -180..180 (HSV)"

    def __init__(self, spec: str = "", workers: int | None = None, degrees: float = 0.0):
        super().__init__(spec, workers)
        self.degrees = _number("degrees", degrees, -180, 180)
        self.shift = round(self.degrees / 360 * 256) % 256

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        if self.shift == 0:
            return image.copy(), 0
        hsv = np.array(Image.fromarray(image).convert("HSV"))
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + self.shift) % 256
        return np.asarray(Image.fromarray(hsv, mode="HSV").convert("RGB")), 0


@register_codec("temperature", positional="warmth")
class Temperature(_Edit):
    """White balance: red times ``1 + 0.2 warmth``, blue times ``1 - 0.2 warmth`` (an editor's "warmth")."""

    summary = "white balance, warmth -1..1 (> 0 warmer: red up, blue down by 20 % at 1)"

    def __init__(self, spec: str = "", workers: int | None = None, warmth: float = 0.0):
        super().__init__(spec, workers)
        self.warmth = _number("warmth", warmth, -1, 1)
        x = np.arange(256, dtype=np.float64)
        self.table = _lut(x * (1 + 0.2 * self.warmth)) + _lut(x) + _lut(x * (1 - 0.2 * self.warmth))

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        return np.asarray(Image.fromarray(image).point(self.table)), 0


@register_codec("grayscale")
class Grayscale(_Edit):
    """Pillow's ITU-R 601 luma in all three channels (a black-and-white filter)."""

    summary = "black and white: Pillow's ITU-R 601 luma in all three channels"

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        grey = np.asarray(ImageOps.grayscale(Image.fromarray(image)))
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2)), 0


@register_codec("sharpen", positional="amount")
class Sharpen(_Edit):
    """``PIL.ImageFilter.UnsharpMask`` (``radius`` pixels, percent = 100 ``amount``, threshold 0)."""

    summary = "unsharp mask, amount 0..5 (percent = 100 x amount), radius= pixels (default 2)"

    def __init__(self, spec: str = "", workers: int | None = None, amount: float = 1.0, radius: float = 2.0):
        super().__init__(spec, workers)
        self.amount = _number("amount", amount, 0, 5)
        self.radius = _number("radius", radius, 0.1, 50)

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        flt = ImageFilter.UnsharpMask(radius=self.radius, percent=round(100 * self.amount), threshold=0)
        return np.asarray(Image.fromarray(image).filter(flt)), 0


@register_codec("vignette", positional="strength")
class Vignette(_Edit):
    """Corners darkened: each pixel times ``1 - strength r^2``, ``r`` the distance from the centre (corners 1)."""

    summary = "darken the corners: x (1 - S r^2), r = 1 at the corners, S 0..1"

    def __init__(self, spec: str = "", workers: int | None = None, strength: float = 0.3):
        super().__init__(spec, workers)
        self.strength = _number("strength", strength, 0, 1)
        self.library = "numpy"

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        h, w = image.shape[:2]
        y = (np.arange(h) + 0.5) / h * 2 - 1
        x = (np.arange(w) + 0.5) / w * 2 - 1
        gain = 1 - self.strength * (y[:, None] ** 2 + x[None, :] ** 2) / 2
        return np.clip(np.round(image * gain[..., None]), 0, 255).astype(np.uint8), 0


_SAY = re.compile(r"^[A-Za-z0-9_]{1,64}$")


@functools.lru_cache(maxsize=16)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=px)


@register_codec("text", positional="height")
class Text(_Edit):
    """A caption: white text, ``height`` of the picture's height, black outline, centred at ``y``."""

    summary = "a caption: white text of height H (0..0.5 of the picture) at y= (default 0.85), say=words_like_this"

    def __init__(self, spec: str = "", workers: int | None = None, height: float = 0.08, y: float = 0.85,
                 say: str = "robusthide_was_here"):
        super().__init__(spec, workers)
        self.height = _number("height", height, 1e-3, 0.5)
        self.y = _position("y", y)
        if not isinstance(say, str) or not _SAY.match(say):
            raise ValueError(f"say must be 1-64 letters, digits or _ (for a space), got {say!r}")
        self.words = say.replace("_", " ")

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        h, w = image.shape[:2]
        px = max(4, round(self.height * h))
        out = Image.fromarray(image)
        draw = ImageDraw.Draw(out)
        draw.text((w / 2, self.y * h), self.words, fill=(255, 255, 255), font=_font(px), anchor="mm",
                  stroke_width=max(1, px // 12), stroke_fill=(0, 0, 0))
        return np.asarray(out), 0


#: the ``filter`` presets: chains of the edits above, in the manner of a phone editor's filters
FILTERS: dict[str, str] = {
    "vivid": "contrast:1.2|saturation:1.35",
    "warm": "temperature:0.5|saturation:1.1",
    "cool": "temperature:-0.5",
    "fade": "contrast:0.8|brightness:1.08|saturation:0.8",
    "vintage": "contrast:0.85|temperature:0.4|saturation:0.85|vignette:0.35",
    "mono": "grayscale|contrast:1.15",
    "dramatic": "contrast:1.4|saturation:0.9|sharpen:0.6|vignette:0.3",
}


@register_codec("filter", positional="preset")
class Filter(_Edit):
    """A preset of :data:`FILTERS`, applied as its chain of edits."""

    summary = f"a phone-editor-like filter preset: {', '.join(FILTERS)}"

    def __init__(self, spec: str = "", workers: int | None = None, preset: str = "vivid"):
        super().__init__(spec, workers)
        if preset not in FILTERS:
            raise ValueError(f"preset must be one of {', '.join(FILTERS)}, got {preset!r}")
        self.preset = preset
        self.steps = [get_codec(s, workers=1) for s in FILTERS[preset].split("|")]

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        for step in self.steps:
            image, _ = step.code_one(image)
        return image, 0
