"""Image files for the watermarking CLI: read with EXIF orientation applied, keep ICC/EXIF, write safely.

* 16-bit PNG/TIFF are read with OpenCV (``IMREAD_UNCHANGED``; Pillow narrows 16-bit RGB to 8 bits) and
  written back as 16-bit PNG/TIFF.
* EXIF orientation is applied on read (and the EXIF orientation tag reset to 1 on write); the ICC profile
  and EXIF are carried over where the output format allows (JPEG, PNG, WebP, TIFF).
* Writes go to a temporary file in the destination folder and are moved into place; the input is never
  overwritten unless explicitly allowed.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from robusthide import RobustHideError

MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = None  # we check ourselves, with a clear message

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP"}


@dataclass
class ImageFile:
    array: np.ndarray          # H x W, H x W x 3 or H x W x 4; uint8 or uint16
    path: Path
    icc: bytes | None = None
    exif: bytes | None = None
    info: dict[str, Any] = field(default_factory=dict)


def read_image_file(path: str | Path) -> ImageFile:
    p = Path(path)
    if not p.exists():
        raise RobustHideError(f"{p}: no such file")
    if p.is_dir():
        raise RobustHideError(f"{p}: is a folder (use --recursive)")
    try:
        with Image.open(p) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise RobustHideError(f"{p}: image too large ({w}x{h} = {w * h / 1e6:.0f} MP; limit "
                                      f"{MAX_PIXELS / 1e6:.0f} MP)")
            if w == 0 or h == 0:
                raise RobustHideError(f"{p}: empty image")
            icc = im.info.get("icc_profile")
            exif = im.getexif()
            sixteen = im.mode in ("I;16", "I;16B", "I;16L", "I") or (
                im.format == "PNG" and im.info.get("bitdepth", 8) == 16) or _png_16bit(p, im)
            im.load()
            im = ImageOps.exif_transpose(im)
            if sixteen:
                arr = _read16(p)
            elif im.mode in ("RGB", "L", "RGBA", "LA"):
                arr = np.asarray(im)
            else:
                arr = np.asarray(im.convert("RGBA" if ("A" in im.mode or "transparency" in im.info) else "RGB"))
    except RobustHideError:
        raise
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RobustHideError(f"{p}: not a readable image ({msg})") from None
    if exif is not None and 0x0112 in exif:
        exif[0x0112] = 1
    return ImageFile(arr, p, icc, exif.tobytes() if exif else None)


def _png_16bit(p: Path, im: Image.Image) -> bool:
    if im.format != "PNG":
        return False
    with open(p, "rb") as f:
        head = f.read(33)
    return len(head) >= 25 and head[12:16] == b"IHDR" and head[24] == 16


def _read16(p: Path) -> np.ndarray:
    import cv2

    a = cv2.imdecode(np.fromfile(str(p), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise RobustHideError(f"{p}: could not decode 16-bit image")
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
    p = Path(path)
    for q in protect or []:
        if p.exists() and q.exists() and os.path.samefile(p, q):
            raise RobustHideError(f"refusing to overwrite the input {q} (use another -o, or --in-place)")
    if p.exists() and not overwrite:
        raise RobustHideError(f"{p} exists (use --overwrite)")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p
