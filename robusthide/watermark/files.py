"""Image files for the watermarking CLI: read with EXIF orientation applied, keep ICC/EXIF, write safely.

* Only regular files are read (:func:`robusthide.io.safe.open_image`: a FIFO or device is refused), and an
  image above ``max_pixels`` (default :data:`robusthide.io.safe.MAX_PIXELS`) is refused from its header,
  before decoding. A multi-frame file (animated GIF/PNG/WebP, multi-page TIFF) is refused: marking only its
  first frame would drop the others.
* 16-bit PNG/TIFF are read with OpenCV (``IMREAD_UNCHANGED``; Pillow narrows 16-bit RGB to 8 bits) and
  written back as 16-bit PNG/TIFF; 32-bit float grayscale TIFF (Pillow mode ``F``) in [0, 1] or [0, 255] is
  read as 16-bit grayscale (written back as 16-bit).
* EXIF orientation is applied on read (to the 16-bit path too) and the orientation tag reset to 1 on write;
  the ICC profile and the EXIF are carried over where the output format allows (JPEG, PNG, WebP, TIFF).
  Only real EXIF is kept: the structural tags of a TIFF (sizes, strips, tiles, sample format...), which
  Pillow reports in ``getexif()`` for TIFF files, are removed, so they cannot break or crop the output.
* Writes go through the one atomic writer (:func:`robusthide.io.safe.atomic_output`); the input is never
  overwritten unless explicitly allowed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from robusthide import RobustHideError
from robusthide.io.safe import MAX_PIXELS, frame_count, open_image, read_bytes
from robusthide.io.safe import write_bytes_atomic as _write_atomic

__all__ = ["FORMATS", "MAX_PIXELS", "ImageFile", "encode_image", "output_format", "read_image_file",
           "write_bytes_atomic"]

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP"}

#: TIFF structural tags: they describe one file's pixel layout and must never be copied as "EXIF".
_STRUCTURAL_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 317,
                              320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 512, 513, 514, 529, 530, 531,
                              532, 34675})


@dataclass
class ImageFile:
    array: np.ndarray          # H x W, H x W x 3 or H x W x 4; uint8 or uint16
    path: Path
    icc: bytes | None = None
    exif: bytes | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def rgb8(self) -> np.ndarray:
        """The pixels as 8-bit ``H x W x 3`` RGB (a writable copy): 16 bits rounded to 8, gray repeated to RGB,
        alpha dropped -- what :func:`robusthide.io.images.read_image_rgb` gives for the same file."""
        a = self.array
        if a.dtype == np.uint16:
            a = np.rint(a.astype(np.float64) / 257.0).astype(np.uint8)
        if a.ndim == 2:
            a = a[..., None]
        a = np.repeat(a[..., :1], 3, axis=2) if a.shape[2] < 3 else a[..., :3]
        return np.array(a, dtype=np.uint8, order="C")


def orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an ``H x W [x C]`` array, as ``ImageOps.exif_transpose`` does."""
    t = {2: lambda x: x[:, ::-1], 3: lambda x: x[::-1, ::-1], 4: lambda x: x[::-1],
         5: lambda x: x.swapaxes(0, 1), 6: lambda x: np.rot90(x, -1), 7: lambda x: np.rot90(x.swapaxes(0, 1), 2),
         8: lambda x: np.rot90(x, 1)}.get(int(orientation))
    return np.ascontiguousarray(t(a)) if t else a


def _clean_exif(exif: Image.Exif | None) -> bytes | None:
    """The EXIF to carry over: without TIFF structural tags, orientation reset to 1; None when empty."""
    if exif is None or len(exif) == 0:
        return None
    for tag in list(exif):
        if tag in _STRUCTURAL_TAGS:
            del exif[tag]
    if 0x0112 in exif:
        exif[0x0112] = 1
    if len(exif) == 0:
        return None
    try:
        return exif.tobytes()
    except Exception:  # an EXIF block Pillow cannot write back: drop it rather than fail the image
        return None


def _float_to_u16(a: np.ndarray, p: Path) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        raise RobustHideError(f"{p}: float image contains NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0 and hi <= 1:
        top = 1.0
    elif lo >= 0 and hi <= 255:
        top = 255.0
    else:
        raise RobustHideError(f"{p}: float image values range {lo:g}..{hi:g}; expected 0..1 or 0..255")
    return np.rint(a * (65535.0 / top)).astype(np.uint16)


def read_image_file(path: str | Path, max_pixels: int | None = None, data: bytes | None = None) -> ImageFile:
    """Read an image file for marking: uint8 or uint16 array (gray, RGB or with alpha), EXIF orientation applied,
    ICC and cleaned EXIF kept. One-line :class:`RobustHideError` for anything that is not a readable,
    single-frame image of at most ``max_pixels`` pixels in a regular file. ``data``: the file's bytes (stdin,
    an upload), read instead of ``path``, which then only names them in messages."""
    p = Path(path)
    try:
        with open_image(p, max_pixels, data) as im:
            n = frame_count(im)
            if n > 1:
                raise RobustHideError(f"{p}: has {n} frames or pages; only single-frame images can be marked "
                                      "(marking the first would drop the others): save the frame you want on its own")
            icc = im.info.get("icc_profile")
            exif = im.getexif()
            orientation = int(exif.get(0x0112, 1) or 1)
            bits = exif.get(258) if im.format == "TIFF" else None
            tiff16 = im.format == "TIFF" and (bits == 16 or (isinstance(bits, tuple) and 16 in bits))
            sixteen = im.mode in ("I;16", "I;16B", "I;16L", "I") or tiff16 or (
                im.format == "PNG" and im.info.get("bitdepth", 8) == 16) or _png_16bit(p, im, data)
            im.load()
            if sixteen:
                arr = orient(_read16(p, data), orientation)
            elif im.mode == "F":
                arr = orient(_float_to_u16(np.asarray(im), p), orientation)
            else:
                im = ImageOps.exif_transpose(im)
                if im.mode in ("RGB", "L", "RGBA", "LA"):
                    arr = np.asarray(im)
                else:
                    arr = np.asarray(im.convert("RGBA" if ("A" in im.mode or "transparency" in im.info) else "RGB"))
    except RobustHideError:
        raise
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RobustHideError(f"{p}: not a readable image ({msg})") from None
    return ImageFile(arr, p, icc, _clean_exif(exif))


def _png_16bit(p: Path, im: Image.Image, data: bytes | None = None) -> bool:
    if im.format != "PNG":
        return False
    head = _head(p) if data is None else data[:33]
    return len(head) >= 25 and head[12:16] == b"IHDR" and head[24] == 16


def _head(p: Path, n: int = 33) -> bytes:
    from robusthide.io.safe import open_regular

    with open_regular(p) as f:
        return f.read(n)


def _read16(p: Path, data: bytes | None = None) -> np.ndarray:
    try:
        import cv2
    except ModuleNotFoundError:  # OpenCV is in the `torch` extra: a torch-free install marks 8-bit images
        raise RobustHideError(f"{p}: a 16-bit image needs OpenCV: pip install 'robusthide[torch]'") from None

    raw = read_bytes(p) if data is None else data
    a = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise RobustHideError(f"{p}: could not decode 16-bit image")
    if a.dtype not in (np.uint8, np.uint16):
        raise RobustHideError(f"{p}: unsupported sample type {a.dtype} (8/16-bit integers or 32-bit float gray)")
    if a.ndim == 3 and a.shape[2] == 3:
        a = a[..., ::-1]
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(a)


def output_format(path: str | Path, fmt: str | None = None) -> str:
    if fmt:
        f = fmt.upper().replace("JPG", "JPEG")
        if f not in set(FORMATS.values()):
            raise RobustHideError(f"unknown output format '{fmt}' (png, jpeg, webp, tiff, bmp)")
        return f
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise RobustHideError(f"{path}: unknown output extension '{ext}' (use .png, .jpg, .webp, .tif, .bmp)")
    return FORMATS[ext]


def encode_image(arr: np.ndarray, fmt: str, quality: int = 95, icc: bytes | None = None,
                 exif: bytes | None = None) -> bytes:
    """Encode an image array as ``fmt`` (PNG, JPEG, WEBP, TIFF, BMP) bytes; ``quality`` (1-100) for JPEG/WebP."""
    if fmt in ("JPEG", "WEBP") and not (isinstance(quality, int) and 1 <= quality <= 100):
        raise RobustHideError(f"quality must be an integer from 1 to 100, got {quality!r}")
    if arr.dtype == np.uint16:
        if fmt not in ("PNG", "TIFF"):
            arr = np.rint(arr.astype(np.float64) / 257).astype(np.uint8)
        else:
            import cv2

            a = arr
            if a.ndim == 3:
                a = a[..., [2, 1, 0, 3]] if a.shape[2] == 4 else a[..., ::-1]
            ok, enc = cv2.imencode(".png" if fmt == "PNG" else ".tif", np.ascontiguousarray(a))
            if not ok:
                raise RobustHideError("could not encode 16-bit image")
            return enc.tobytes()
    im = Image.fromarray(arr)
    if fmt == "JPEG" and im.mode in ("RGBA", "LA"):
        raise RobustHideError("JPEG cannot store an alpha channel: choose .png or .webp")
    kw: dict[str, Any] = {}
    if icc and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        kw["icc_profile"] = icc
    if exif and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        kw["exif"] = exif
    if fmt in ("JPEG", "WEBP"):
        kw["quality"] = int(quality)
    if fmt == "JPEG":
        kw["subsampling"] = 0 if quality >= 90 else 2
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def write_bytes_atomic(path: str | Path, data: bytes, protect: list[Path] | None = None,
                       overwrite: bool = True) -> Path:
    """Write ``data`` atomically (the one writer, :func:`robusthide.io.safe.write_bytes_atomic`)."""
    return _write_atomic(path, data, protect=protect or [], overwrite=overwrite)
