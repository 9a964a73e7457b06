"""Reading and writing image files safely: one-line errors, EXIF orientation, atomic writes.

* :func:`read_image_rgb` -- any file Pillow reads -> uint8 ``H x W x 3`` RGB, EXIF orientation applied
  (``ImageOps.exif_transpose``), the whole file decoded up front so a truncated file is an error here and
  not later; a pixel-count guard (:data:`MAX_PIXELS`, 200 MP) against decompression bombs.
* :func:`write_image` -- write to a temporary file in the destination folder, then ``os.replace`` it into
  place (a reader never sees half a file; a failed write leaves the old file), refusing to overwrite a
  given source file.

Errors are :class:`robusthide.RobustHideError` with one-line messages (the CLI prints them, exit 2).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from robusthide import RobustHideError

#: Largest image accepted, in pixels (200 megapixels). Pillow's own guard is raised to match, so files
#: between Pillow's default (89 MP) and this limit open without a DecompressionBombWarning.
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

#: Extensions of lossless formats :func:`write_image` may be asked for by the CLI (decoded images must
#: not be compressed again).
LOSSLESS_EXTENSIONS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}

#: Extensions treated as images when walking folders.
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                    ".pgm", ".pnm", ".jp2", ".j2k", ".avif", ".jxl", ".heic", ".tga"}


def _register_optional_plugins() -> None:
    """Let Pillow open JPEG XL (and AVIF on old Pillow) files when the plugins are installed."""
    for mod in ("pillow_jxl",) + (() if "AVIF" in Image.OPEN else ("pillow_avif",)):
        try:
            __import__(mod)
        except ImportError:
            pass


def read_image_rgb(path: str | os.PathLike, return_mode: bool = False):
    """Read an image file as uint8 ``H x W x 3`` RGB (EXIF orientation applied).

    Grayscale, palette, RGBA (alpha dropped), CMYK and 16-bit images are converted to 8-bit RGB; with
    ``return_mode=True`` the original Pillow mode is returned too, as ``(array, mode)``, so a caller can
    say that a conversion happened. Raises :class:`RobustHideError` (one line) for a missing, unreadable,
    truncated or oversized file.
    """
    p = Path(path)
    if not p.exists():
        raise RobustHideError(f"no such file: {p}")
    if p.is_dir():
        raise RobustHideError(f"{p} is a folder, not an image file")
    _register_optional_plugins()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise RobustHideError(f"{p}: image is {w} x {h} = {w * h / 1e6:.0f} MP, above the "
                                          f"{MAX_PIXELS / 1e6:.0f} MP limit")
                im.load()  # decode everything now: a truncated file fails here
                mode = im.mode
                im = ImageOps.exif_transpose(im)
                arr = _to_rgb8(im)
    except RobustHideError:
        raise
    except Image.DecompressionBombError as e:
        raise RobustHideError(f"{p}: too many pixels ({e})") from None
    except UnidentifiedImageError:
        raise RobustHideError(f"{p}: not an image file (or a format this installation cannot read)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
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
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        scale = 255.0 if a.max() <= 1.0 else 1.0
        g = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(g[..., None], 3, axis=2))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return np.array(im.convert("RGB"), dtype=np.uint8)


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def write_image(path: str | os.PathLike, array: np.ndarray,
                overwrite_guard_src: str | os.PathLike | None = None, format: str | None = None) -> Path:
    """Write a uint8 ``H x W x 3`` (or ``H x W``) image atomically; return the path written.

    The format comes from ``format`` or the extension. The data goes to a temporary file in the same
    folder first, then replaces ``path`` in one step. If ``overwrite_guard_src`` is given and ``path`` is
    that file (same path after resolving links, or the same inode), nothing is written and
    :class:`RobustHideError` is raised. The folder is created if needed.
    """
    p = Path(path)
    if overwrite_guard_src is not None and _same_file(p, Path(overwrite_guard_src)):
        raise RobustHideError(f"refusing to overwrite the input file {overwrite_guard_src}")
    arr = np.asarray(array)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise RobustHideError(f"write_image needs uint8 H x W x 3 images, got {arr.shape} {arr.dtype}")
    fmt = format or Image.registered_extensions().get(p.suffix.lower())
    if fmt is None:
        raise RobustHideError(f"{p}: unknown image file extension '{p.suffix}'")
    if p.exists() and p.is_dir():
        raise RobustHideError(f"{p} is a folder")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise RobustHideError(f"cannot write {p}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(arr).save(f, format=fmt)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp, p)
    except (OSError, ValueError, KeyError) as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise RobustHideError(f"cannot write {p}: {e}") from None
    return p
