"""Safe file primitives shared by every reader and writer of robusthide.

* :func:`check_regular` / :func:`open_regular` -- only regular files are read: a FIFO, a device or a socket
  named ``x.png`` is refused at once (it is opened non-blocking, so a FIFO without a writer cannot hang us).
* :func:`open_image` -- open an image lazily (header only) and refuse it *before decoding* when its pixel
  count is above a limit (:data:`MAX_PIXELS` by default, or the ``max_pixels`` of the call). Pillow's own
  process-wide guard (``Image.MAX_IMAGE_PIXELS``) is never switched off.
* :func:`atomic_output` / :func:`write_bytes_atomic` -- THE atomic writer: a temporary file made with
  ``mkstemp`` (``O_CREAT | O_EXCL | O_NOFOLLOW``, unpredictable name) in the target folder, filled, flushed,
  fsynced and moved into place with ``os.replace`` (which replaces a symlink, never follows it). On any error,
  or Ctrl-C, the temporary file is removed and an existing output is left intact.
* :func:`list_images` -- THE folder walk: regular image files under a folder, sorted, skipping given subtrees.

Every failure is a :class:`robusthide.RobustHideError` with a one-line message naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

from robusthide import RobustHideError

#: Largest image accepted by default, in pixels (50 megapixels). Above it an image is refused from its header,
#: before any pixel is decoded; marking an image at this limit peaks at the memory written in
#: docs/robustness-of-io.md. Each reader takes ``max_pixels`` to change it per call.
MAX_PIXELS = 50_000_000

#: THE list of file extensions treated as images (folder walks, CLI input detection).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                              ".pgm", ".pnm", ".jp2", ".j2k", ".avif", ".jxl", ".heic", ".tga"})

#: The subset of :data:`IMAGE_EXTENSIONS` that data sets (training, evaluation) are read from.
PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})

_PIL_GUARD = threading.Lock()
_LIVE_TEMPS: set[str] = set()
_LIVE_LOCK = threading.Lock()


def _why(e: OSError) -> str:
    return e.strerror or (str(e).splitlines()[0] if str(e) else type(e).__name__)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path` if it is a regular file (symlinks followed); else a one-line error."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise RobustHideError(f"{p}: no such file") from None
    except OSError as e:
        raise RobustHideError(f"{p}: cannot read ({_why(e)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise RobustHideError(f"{p}: is a folder, not a file (use --recursive for folders)")
    if not stat.S_ISREG(st.st_mode):
        raise RobustHideError(f"{p}: is {_kind(st.st_mode)}, not a regular file")
    return p


def open_regular(path: str | os.PathLike) -> IO[bytes]:
    """Open a regular file for binary reading. Opened non-blocking and checked with ``fstat`` on the open
    descriptor, so a FIFO (even one swapped in after a check) is refused instead of blocking forever."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise RobustHideError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise RobustHideError(f"{p}: is a folder, not a file (use --recursive for folders)") from None
    except OSError as e:
        raise RobustHideError(f"{p}: cannot read ({_why(e)})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            if stat.S_ISDIR(mode):
                raise RobustHideError(f"{p}: is a folder, not a file (use --recursive for folders)")
            raise RobustHideError(f"{p}: is {_kind(mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of a regular file; ``limit``: refuse files larger than this many bytes."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if limit is not None and size > limit:
            raise RobustHideError(f"{path}: {size} bytes, above the {limit}-byte limit")
        try:
            return f.read()
        except OSError as e:
            raise RobustHideError(f"{path}: cannot read ({_why(e)})") from None


def check_pixels(path: str | os.PathLike, w: int, h: int, max_pixels: int | None = None) -> None:
    """Refuse an empty image, or one above ``max_pixels`` (default :data:`MAX_PIXELS`)."""
    limit = MAX_PIXELS if max_pixels is None else int(max_pixels)
    if w <= 0 or h <= 0:
        raise RobustHideError(f"{path}: empty image ({w} x {h})")
    if w * h > limit:
        raise RobustHideError(f"{path}: image is {w} x {h} = {w * h / 1e6:.1f} MP, above the {limit / 1e6:g} MP "
                              "limit (raise it with max_pixels / --max-pixels if you have the memory)")


def register_image_plugins() -> None:
    """Let Pillow open JPEG XL (and AVIF on old Pillow) files when the plugins are installed."""
    for mod in ("pillow_jxl",) + (() if "AVIF" in Image.OPEN else ("pillow_avif",)):
        try:
            __import__(mod)
        except ImportError:
            pass


@contextlib.contextmanager
def open_image(path: str | os.PathLike, max_pixels: int | None = None,
               data: bytes | None = None) -> Iterator[Image.Image]:
    """``with open_image(path) as im:`` -- open an image file lazily (its header only) after checking it is a
    regular file, and refuse it before any decoding when it has more than ``max_pixels`` pixels (default
    :data:`MAX_PIXELS`). The file is closed when the block ends. With ``data`` (the file's bytes: stdin, an
    upload) those bytes are read instead and ``path`` only names them in messages.

    Pillow's guard stays on: only while the header is parsed, and only when the caller's limit is above it,
    Pillow's ``MAX_IMAGE_PIXELS`` is raised to that limit (under a lock, restored at once)."""
    limit = MAX_PIXELS if max_pixels is None else int(max_pixels)
    if limit <= 0:
        raise RobustHideError(f"max_pixels must be positive, got {max_pixels}")
    register_image_plugins()
    if data is not None and not data:
        raise RobustHideError(f"{path}: not a readable image (empty file)")
    with (open_regular(path) if data is None else io.BytesIO(data)) as f:
        try:
            with _PIL_GUARD:
                old = Image.MAX_IMAGE_PIXELS
                if old is not None and old < limit:
                    Image.MAX_IMAGE_PIXELS = limit
                try:
                    with warnings.catch_warnings():  # the bomb check is ours; a damaged header's warnings
                        warnings.simplefilter("ignore")  # (corrupt EXIF, ...) end in our one-line error or nowhere
                        im = Image.open(f)
                finally:
                    Image.MAX_IMAGE_PIXELS = old
        except Image.DecompressionBombError:
            raise RobustHideError(f"{path}: image is above the {limit / 1e6:g} MP limit (decompression bomb?)") \
                from None
        except UnidentifiedImageError:
            raise RobustHideError(f"{path}: not a readable image (not an image file, or a format this installation "
                                  "cannot read)") from None
        except Exception as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise RobustHideError(f"{path}: not a readable image ({msg})") from None
        with im:
            w, h = im.size
            check_pixels(path, w, h, limit)
            yield im


def frame_count(im: Image.Image) -> int:
    """Frames (pages) of an open image: 1 for still images."""
    try:
        return int(getattr(im, "n_frames", 1) or 1)
    except Exception:
        return 1


# -- writing ----------------------------------------------------------------------------------------------

def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.abspath(a) == os.path.abspath(b) or a.resolve() == b.resolve()


def remove_temporaries() -> int:
    """Remove the temporary files of writes still in progress (called on Ctrl-C); how many were removed."""
    with _LIVE_LOCK:
        live = list(_LIVE_TEMPS)
        _LIVE_TEMPS.clear()
    n = 0
    for t in live:
        with contextlib.suppress(OSError):
            os.unlink(t)
            n += 1
    return n


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, protect: Iterable[str | os.PathLike] = (),
                  overwrite: bool = True, mkdir: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path`` (same suffix) to write the output to; when the block ends
    without error it is fsynced and moved onto ``path`` with ``os.replace``; on any error it is removed and
    ``path`` is left as it was. ``protect``: files that must not be replaced (inputs); ``overwrite=False``:
    refuse an existing ``path``. OSErrors become one-line errors naming the path."""
    p = Path(path)
    for q in protect:
        if _same_file(p, Path(q)):
            raise RobustHideError(f"refusing to overwrite the input {q} (choose another output, or --in-place)")
    if p.is_dir():
        raise RobustHideError(f"{p}: is a folder, cannot write a file there")
    if not overwrite and (p.exists() or p.is_symlink()):
        raise RobustHideError(f"{p} exists (use --overwrite)")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        if mkdir:
            parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=f".tmp{p.suffix}", dir=parent)
    except OSError as e:
        raise RobustHideError(f"cannot write {p}: {_why(e)}") from None
    os.close(fd)
    with _LIVE_LOCK:
        _LIVE_TEMPS.add(tmp)
    ok = False
    try:
        yield Path(tmp)
        try:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            try:
                mode = stat.S_IMODE(os.stat(p).st_mode)  # keep the mode of the file replaced
            except OSError:
                mask = os.umask(0)
                os.umask(mask)
                mode = 0o666 & ~mask
            os.chmod(tmp, mode)
            os.replace(tmp, p)
        except FileNotFoundError:
            raise RobustHideError(f"cannot write {p}: the temporary file was removed (interrupted?)") from None
        except OSError as e:
            raise RobustHideError(f"cannot write {p}: {_why(e)}") from None
        ok = True
    except OSError as e:  # raised by the caller's writing into the temporary file
        if e.errno == errno.ENOSPC:
            raise RobustHideError(f"cannot write {p}: no space left on the device") from None
        raise RobustHideError(f"cannot write {p}: {_why(e)}") from None
    finally:
        with _LIVE_LOCK:
            _LIVE_TEMPS.discard(tmp)
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, protect: Iterable[str | os.PathLike] = (),
                       overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_output`); return ``path``."""
    p = Path(path)
    with atomic_output(p, protect=protect, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return p


# -- folders ----------------------------------------------------------------------------------------------

def _inside(p: Path, root: Path) -> bool:
    try:
        p.relative_to(root)
        return True
    except ValueError:
        return False


def list_images(folder: str | os.PathLike, exts: Iterable[str] | None = None,
                exclude: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Regular files under ``folder`` (recursively, sorted) whose extension is in ``exts`` (default
    :data:`IMAGE_EXTENSIONS`), leaving out hidden temporaries and everything under the ``exclude`` folders
    (e.g. an output folder inside the input tree). FIFOs, devices and broken links are skipped."""
    root = Path(folder)
    if not root.is_dir():
        raise RobustHideError(f"{root}: no such folder")
    want = {e.lower() for e in (exts if exts is not None else IMAGE_EXTENSIONS)}
    skip = [Path(os.path.abspath(x)) for x in exclude]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(os.path.abspath(dirpath))
        dirnames[:] = sorted(d for d in dirnames if not any(_inside(here / d, s) for s in skip))
        for name in filenames:
            q = Path(dirpath) / name
            if q.suffix.lower() not in want or (name.startswith(".") and ".tmp" in name):
                continue
            try:
                if stat.S_ISREG(q.stat().st_mode):
                    out.append(q)
            except OSError:
                continue
    return sorted(out)
