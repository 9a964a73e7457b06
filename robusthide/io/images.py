"""Reading and writing image files safely: one-line errors, EXIF orientation, atomic writes.

* :func:`read_image_rgb` -- any regular file Pillow reads -> uint8 ``H x W x 3`` RGB, EXIF orientation applied
  (``ImageOps.exif_transpose``), the whole file decoded up front so a truncated file is an error here and
  not later; refused from its header, before decoding, above ``max_pixels`` (:data:`MAX_PIXELS`); a
  multi-frame file (animated GIF/PNG/WebP, multi-page TIFF) is refused rather than cut to its first frame.
* :func:`write_image` -- through the one atomic writer (:func:`robusthide.io.safe.atomic_output`): a
  ``mkstemp`` file in the destination folder, then ``os.replace`` (a reader never sees half a file; a failed
  write leaves the old file), refusing to overwrite a given source file.

Errors are :class:`robusthide.RobustHideError` with one-line messages (the CLI prints them, exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from robusthide import RobustHideError
from robusthide.io.safe import IMAGE_EXTENSIONS, MAX_PIXELS, atomic_output, frame_count, open_image

__all__ = ["IMAGE_EXTENSIONS", "LOSSLESS_EXTENSIONS", "MAX_PIXELS", "read_image_rgb", "write_image"]

#: Extensions of lossless formats :func:`write_image` may be asked for by the CLI (decoded images must
#: not be compressed again).
LOSSLESS_EXTENSIONS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def read_image_rgb(path: str | os.PathLike, return_mode: bool = False, max_pixels: int | None = None):
    """Read an image file as uint8 ``H x W x 3`` RGB (EXIF orientation applied).

    Grayscale, palette, RGBA (alpha dropped), CMYK and 16-bit images are converted to 8-bit RGB; with
    ``return_mode=True`` the original Pillow mode is returned too, as ``(array, mode)``, so a caller can
    say that a conversion happened. Raises :class:`RobustHideError` (one line) for a missing, unreadable,
    truncated, multi-frame or oversized file (more than ``max_pixels`` pixels, default :data:`MAX_PIXELS`),
    and for anything that is not a regular file (FIFO, device).
    """
    p = Path(path)
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with open_image(p, limit) as im:
            n = frame_count(im)
            if n > 1:
                raise RobustHideError(f"{p}: has {n} frames or pages; only single-frame images are supported "
                                      "(save the frame you want as its own file)")
            im.load()  # decode everything now: a truncated file fails here
            mode = im.mode
            im = ImageOps.exif_transpose(im)
            arr = _to_rgb8(im)
    except RobustHideError as e:
        raise RobustHideError(str(e) if str(e).startswith(str(p)) else f"{p}: {e}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "truncated" in msg.lower():
            raise RobustHideError(f"{p}: truncated or damaged image file ({msg})") from None
        raise RobustHideError(f"{p}: cannot read image ({msg})") from None
    return (arr, mode) if return_mode else arr


def _to_rgb8(im: Image.Image) -> np.ndarray:
    if im.mode == "RGB":
        return np.array(im, dtype=np.uint8)
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im).astype(np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        g = np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(g[..., None], 3, axis=2))
    if im.mode == "F":  # 32-bit float: 0..1 or 0..255, anything else is refused (never clipped silently)
        a = np.asarray(im, dtype=np.float64)
        lo, hi = (float(a.min()), float(a.max())) if np.isfinite(a).all() else (float("nan"), float("nan"))
        if not (lo >= 0 and hi <= 255):
            raise RobustHideError(f"float image values range {lo:g}..{hi:g}; expected 0..1 or 0..255")
        g = np.rint(a * (255.0 if hi <= 1.0 else 1.0)).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(g[..., None], 3, axis=2))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return np.array(im.convert("RGB"), dtype=np.uint8)


def write_image(path: str | os.PathLike, array: np.ndarray,
                overwrite_guard_src: str | os.PathLike | None = None, format: str | None = None) -> Path:
    """Write a uint8 ``H x W x 3`` (or ``H x W``) image atomically; return the path written.

    The format comes from ``format`` or the extension. The data goes to a ``mkstemp`` file in the same
    folder first, then replaces ``path`` in one step (:func:`robusthide.io.safe.atomic_output`). If
    ``overwrite_guard_src`` is given and ``path`` is that file (same path after resolving links, or the same
    inode), nothing is written and :class:`RobustHideError` is raised. The folder is created if needed.
    """
    p = Path(path)
    arr = np.asarray(array)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise RobustHideError(f"write_image needs uint8 H x W x 3 images, got {arr.shape} {arr.dtype}")
    fmt = format or Image.registered_extensions().get(p.suffix.lower())
    if fmt is None:
        raise RobustHideError(f"{p}: unknown image file extension '{p.suffix}'")
    protect = [overwrite_guard_src] if overwrite_guard_src is not None else []
    with atomic_output(p, protect=protect) as tmp:
        try:
            with open(tmp, "wb") as f:
                Image.fromarray(arr).save(f, format=fmt)
        except (ValueError, KeyError) as e:
            raise RobustHideError(f"cannot write {p}: {e}") from None
    return p
