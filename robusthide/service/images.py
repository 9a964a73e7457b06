"""Images of the service, in memory: uploads decoded by the CLI's own reader, the PSNR, the residual view.

:func:`decode_upload` is :func:`robusthide.watermark.files.read_image_file` on the uploaded bytes (regular
checks, pixel limit from the header before decoding, single frame, 16-bit kept, EXIF orientation applied,
ICC/EXIF kept), with the pixel limit answered as 413.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from robusthide import RobustHideError
from robusthide.service.settings import TooLarge
from robusthide.watermark.files import ImageFile, read_image_file


def decode_upload(data: bytes, name: str, max_pixels: int) -> ImageFile:
    """The uploaded image as :class:`ImageFile` (uint8 or uint16 array); the CLI's one-line errors, naming
    ``name``; :class:`TooLarge` above ``max_pixels``."""
    try:
        return read_image_file(name, max_pixels=max_pixels, data=data)
    except RobustHideError as e:
        if " MP limit" in str(e):  # robusthide.io.safe: the pixel limit, checked from the header
            raise TooLarge(str(e)) from None
        raise


def psnr(cover: np.ndarray, marked: np.ndarray) -> float:
    """PSNR of the marked image in dB (peak 255, or 65535 for 16-bit), as ``robusthide embed`` prints it."""
    x, y = cover.astype(np.float64), marked.astype(np.float64)
    peak = 65535.0 if cover.dtype == np.uint16 else 255.0
    mse = float(np.mean((x - y) ** 2))
    from robusthide.metrics import psnr_from_mse

    return float("inf") if mse == 0 else round(float(psnr_from_mse(np.float64(mse), peak)), 2)


def _colour(a: np.ndarray) -> np.ndarray:
    """The colour (or gray) channels, alpha dropped, in 8-bit grey levels."""
    if a.ndim == 3 and a.shape[2] in (2, 4):
        a = a[..., :-1]
    a = a.astype(np.float32)
    return a / 257 if a.max(initial=0) > 255 else a


def residual_png(cover: np.ndarray, marked: np.ndarray, max_side: int = 1024) -> tuple[bytes, float]:
    """Where the mark is: ``|marked - cover|`` (largest over the colour channels, in grey levels), shrunk
    to ``max_side`` and amplified so that its 99.5th percentile is full scale, coloured with matplotlib's
    *magma* map; (PNG bytes, the gain applied)."""
    from matplotlib import colormaps

    d = np.abs(_colour(marked) - _colour(cover))
    d = d.max(axis=2) if d.ndim == 3 else d
    im = Image.fromarray(np.ascontiguousarray(d, dtype=np.float32), "F")
    scale = max_side / max(im.size)
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BOX)
    d = np.asarray(im)
    top = float(np.percentile(d, 99.5))
    gain = 255.0 / top if top > 0 else 1.0
    rgba = colormaps["magma"](np.clip(d * gain / 255.0, 0, 1), bytes=True)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(buf, format="PNG")
    return buf.getvalue(), round(gain, 2)
