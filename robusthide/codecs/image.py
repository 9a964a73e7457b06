"""Still-image codecs, all in memory: JPEG, JPEG 2000, WebP, AVIF, JPEG XL and PNG.

Each codec encodes one uint8 RGB image with a real library and decodes it back with the same library
(paper 000 §3.3: the forward pass of a "real codec" layer is exactly the decoded image). Parameters are
validated when the codec is built: a bad value raises ``ValueError``, which
:func:`robusthide.codecs.get_codec` turns into a one-line :class:`~robusthide.codecs.CodecError` naming
the spec.

GIL, measured (``robusthide bench codecs`` repeats the probe: the median wake-up delay of a thread that
sleeps 0.5 ms in a loop while another thread codes; a library that holds the GIL delays it by about
the length of a call): Pillow JPEG/WebP/AVIF/PNG, simplejpeg, OpenCV (JPEG, JPEG 2000), imagecodecs
(JPEG XL) and pillow-jxl-plugin release the GIL (median delay ~0.1 ms for 256x256 images, calls of
1-70 ms); Pillow's JPEG 2000 (OpenJPEG) holds it (median delay 12 ms for 22 ms calls). So the
``ratio=``/``psnr=`` JPEG 2000 modes set ``releases_gil = False`` and code batches in a process pool;
everything else uses threads.
"""

from __future__ import annotations

import importlib
import io
import math
from functools import cache, lru_cache
from importlib import metadata
from typing import Any

import numpy as np
from PIL import Image, features

from robusthide.codecs.base import Codec
from robusthide.codecs.registry import register_codec

_PIL_SUBSAMPLING = {444: 0, 422: 1, 420: 2}


# -- helpers -------------------------------------------------------------------------------------------

def _check_range(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
    return v


def _check_float(name: str, v: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if ok:
        ok = (lo < v if lo_open else lo <= v) and v <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise ValueError(f"{name} must be a number in {bracket}{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _check_choice(name: str, v: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v.lower() not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {v!r}")
    return v.lower()


@cache
def _dist_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _pil() -> str:
    return f"Pillow {Image.__version__}"


def _has_module(mod: str) -> bool:
    try:
        importlib.import_module(mod)
    except ImportError:
        return False
    return True


def _pil_encode(image: np.ndarray, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **params)
    return buf.getvalue()


def _pil_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _cv2_encode_decode(image: np.ndarray, ext: str, params: list[int]) -> tuple[np.ndarray, int]:
    import cv2

    ok, enc = cv2.imencode(ext, np.ascontiguousarray(image[..., ::-1]), params)
    if not ok:  # pragma: no cover - OpenCV reports failures this way
        raise RuntimeError(f"OpenCV could not encode {ext}")
    dec = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    if dec is None:  # pragma: no cover
        raise RuntimeError(f"OpenCV could not decode its own {ext}")
    return np.ascontiguousarray(dec[..., ::-1]), int(enc.size)


# -- JPEG ----------------------------------------------------------------------------------------------

@register_codec("jpeg", positional="q")
class JPEG(Codec):
    """Baseline JPEG. ``q`` 1-100, ``subsampling`` 420|422|444, ``backend`` pillow|simplejpeg|opencv."""

    library = "Pillow"
    summary = "JPEG (ITU T.81), q 1..100; backend=pillow|simplejpeg|opencv (paper 000 used OpenCV)"

    def __init__(self, spec: str = "", workers: int | None = None, q: int = 75, subsampling: int = 420,
                 backend: str = "pillow"):
        super().__init__(spec, workers)
        self.q = _check_range("q", q, 1, 100)
        if subsampling not in _PIL_SUBSAMPLING:
            raise ValueError(f"subsampling must be 420, 422 or 444, got {subsampling!r}")
        self.subsampling = subsampling
        self.backend = _check_choice("backend", backend, ("pillow", "simplejpeg", "opencv"))
        if self.backend == "simplejpeg":
            if not _has_module("simplejpeg"):
                raise ValueError("backend simplejpeg is not installed (pip install simplejpeg)")
            self.library = f"simplejpeg {_dist_version('simplejpeg')}"
        elif self.backend == "opencv":
            if not _has_module("cv2"):
                raise ValueError("backend opencv is not installed (pip install opencv-python-headless)")
            import cv2

            self.library = f"OpenCV {cv2.__version__}"
        else:
            self.library = _pil()

    @classmethod
    def available(cls) -> tuple[bool, str]:
        libs = [f"{_pil()} (libjpeg-turbo {features.version('libjpeg_turbo') or '?'})"]
        if _has_module("simplejpeg"):
            libs.append(f"simplejpeg {_dist_version('simplejpeg')}")
        if _has_module("cv2"):
            import cv2

            libs.append(f"OpenCV {cv2.__version__}")
        return True, "; ".join(libs)

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        if self.backend == "pillow":
            data = _pil_encode(image, "JPEG", quality=self.q, subsampling=_PIL_SUBSAMPLING[self.subsampling])
            return _pil_decode(data), len(data)
        if self.backend == "simplejpeg":
            import simplejpeg

            sub = {444: "444", 422: "422", 420: "420"}[self.subsampling]
            data = simplejpeg.encode_jpeg(np.ascontiguousarray(image), quality=self.q, colorspace="RGB",
                                          colorsubsampling=sub)
            return simplejpeg.decode_jpeg(data, colorspace="RGB"), len(data)
        import cv2

        sub = {444: cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444, 422: cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
               420: cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420}[self.subsampling]
        return _cv2_encode_decode(image, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, self.q,
                                                  cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sub])


# -- JPEG 2000 -----------------------------------------------------------------------------------------

@register_codec("jpeg2000", positional="x1000")
class JPEG2000(Codec):
    """JPEG 2000 (OpenJPEG). Exactly one of:

    * ``x1000`` 0..1000 (default 500): OpenCV's ``IMWRITE_JPEG2000_COMPRESSION_X1000``, 1000 = best.
      OpenCV sets the OpenJPEG rate to ``1000 / x1000``, i.e. a compression ratio of 2 at 500 (this is
      what paper 000 calls "quality 100..900", 100 being the strongest compression). OpenCV clamps 0 to 1
      (with a warning); we pass ``max(1, x1000)`` ourselves so nothing is printed.
    * ``ratio`` >= 1: compression ratio (raw 24-bit size / coded size), Pillow ``quality_mode='rates'``.
    * ``bpp`` in (0, 24]: target bits per pixel, i.e. ``ratio = 24 / bpp`` (a reading of paper 000's
      "quality" V as V/1000 bpp, measured in docs/results/j2k-x1000.md).
    * ``psnr`` > 0: target PSNR in dB, Pillow ``quality_mode='dB'``.

    The Pillow modes use the irreversible 9/7 wavelet (the usual lossy JPEG 2000), one quality layer and
    the JP2 container like OpenCV's ``.jp2``, so sizes compare across modes.
    Pillow's OpenJPEG binding holds the GIL while encoding, so those modes run batches in processes.
    """

    library = "OpenCV"
    summary = "JPEG 2000 (OpenJPEG): x1000=0..1000 (OpenCV, paper 000) | ratio=R | bpp=B | psnr=dB (Pillow)"

    def __init__(self, spec: str = "", workers: int | None = None, x1000: int | None = None,
                 ratio: float | None = None, psnr: float | None = None, bpp: float | None = None):
        super().__init__(spec, workers)
        given = [k for k, v in (("x1000", x1000), ("ratio", ratio), ("psnr", psnr), ("bpp", bpp)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"give exactly one of x1000=, ratio=, bpp=, psnr= (got {', '.join(given)})")
        if bpp is not None:
            ratio = 24.0 / _check_float("bpp", bpp, 0.0, 24.0, lo_open=True)
        if not given:
            x1000 = 500
        self.x1000 = self.ratio = self.psnr = None
        if x1000 is not None:
            self.x1000 = _check_range("x1000", x1000, 0, 1000)
            if not _has_module("cv2"):
                raise ValueError("x1000= needs OpenCV (pip install opencv-python-headless); "
                                 "use ratio= or psnr= (Pillow) instead")
            import cv2

            self.library = f"OpenCV {cv2.__version__}"
            self.releases_gil = True
        else:
            if ratio is not None:
                self.ratio = _check_float("ratio", ratio, 1.0, 1e6)
            else:
                self.psnr = _check_float("psnr", psnr, 0.0, 200.0, lo_open=True)
            if not features.check("jpg_2000"):
                raise ValueError("ratio=/bpp=/psnr= need Pillow built with OpenJPEG; use x1000= (OpenCV) instead")
            self.library = f"{_pil()} (OpenJPEG {features.version('jpg_2000')})"
            self.releases_gil = False

    @classmethod
    def available(cls) -> tuple[bool, str]:
        libs = []
        if _has_module("cv2"):
            import cv2

            libs.append(f"OpenCV {cv2.__version__} (x1000)")
        if features.check("jpg_2000"):
            libs.append(f"{_pil()} (OpenJPEG {features.version('jpg_2000')}; ratio, psnr)")
        if not libs:
            return False, "neither OpenCV nor Pillow with OpenJPEG is installed"
        return True, "; ".join(libs)

    def pillow_params(self) -> dict[str, Any]:
        """The Pillow ``save`` parameters of the ratio/psnr modes (also used by the tests)."""
        if self.ratio is not None:
            return {"quality_mode": "rates", "quality_layers": [self.ratio], "irreversible": True}
        return {"quality_mode": "dB", "quality_layers": [self.psnr], "irreversible": True}

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        if self.x1000 is not None:
            import cv2

            return _cv2_encode_decode(image, ".jp2",
                                      [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, max(1, self.x1000)])
        data = _pil_encode(image, "JPEG2000", no_jp2=False, **self.pillow_params())
        return _pil_decode(data), len(data)


# -- WebP ----------------------------------------------------------------------------------------------

@register_codec("webp", positional="q")
class WebP(Codec):
    """Lossy WebP (libwebp through Pillow). ``q`` 0..100, ``method`` 0..6 (speed/size trade-off, 4)."""

    library = "Pillow"
    summary = "lossy WebP (libwebp via Pillow), q 0..100, method 0..6"

    def __init__(self, spec: str = "", workers: int | None = None, q: int = 75, method: int = 4):
        super().__init__(spec, workers)
        self.q = _check_range("q", q, 0, 100)
        self.method = _check_range("method", method, 0, 6)
        self.library = f"{_pil()} (libwebp {features.version('webp')})"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not features.check("webp"):
            return False, f"{_pil()} was built without WebP support"
        return True, f"{_pil()} (libwebp {features.version('webp')})"

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        data = _pil_encode(image, "WEBP", quality=self.q, method=self.method, lossless=False)
        return _pil_decode(data), len(data)


# -- AVIF ----------------------------------------------------------------------------------------------

def _avif_module(backend: str) -> Any:
    """The Pillow plugin module of an AVIF backend: Pillow's own (>= 11.2) or pillow-avif-plugin."""
    if backend == "pillow":
        return importlib.import_module("PIL.AvifImagePlugin")
    return importlib.import_module("pillow_avif.AvifImagePlugin")


@lru_cache(maxsize=1)
def _avif_backends() -> dict[str, str]:
    """Available AVIF backends -> 'library version (libavif, encoders)'."""
    out = {}
    if features.check("avif"):
        from PIL import _avif

        out["pillow"] = f"{_pil()} (libavif {_avif.libavif_version}; {_avif.codec_versions()})"
    try:
        pa = importlib.import_module("pillow_avif._avif")
        out["plugin"] = (f"pillow-avif-plugin {_dist_version('pillow-avif-plugin')} "
                         f"(libavif {pa.libavif_version}; {pa.codec_versions()})")
    except ImportError:
        pass
    return out


@register_codec("avif", positional="q")
class AVIF(Codec):
    """AVIF (libavif, AV1 intra). ``q`` 0..100, ``speed`` 0..10 (6), ``subsampling`` 420|444.

    ``backend``: ``pillow`` (Pillow's own AVIF support, >= 11.2) or ``plugin`` (pillow-avif-plugin);
    default the first available. The backend's plugin is called directly, so which of the two is
    registered for ``Image.save(format='AVIF')`` does not matter. ``max_threads=1``: one thread per image
    (batches are parallel across images), which also makes the output independent of the core count.
    """

    library = "Pillow"
    summary = "AVIF (libavif/aom via Pillow or pillow-avif-plugin), q 0..100, speed 0..10"

    def __init__(self, spec: str = "", workers: int | None = None, q: int = 75, speed: int = 6,
                 subsampling: int = 420, backend: str = "auto"):
        super().__init__(spec, workers)
        self.q = _check_range("q", q, 0, 100)
        self.speed = _check_range("speed", speed, 0, 10)
        if subsampling not in (420, 444):
            raise ValueError(f"subsampling must be 420 or 444, got {subsampling!r}")
        self.subsampling = subsampling
        backends = _avif_backends()
        backend = _check_choice("backend", backend, ("auto", "pillow", "plugin"))
        if backend == "auto":
            backend = next(iter(backends), backend)
        if backend not in backends:
            raise ValueError(f"AVIF backend {backend} is not available here "
                             f"(available: {', '.join(backends) or 'none'})")
        self.backend = backend
        self.library = backends[backend]

    @classmethod
    def available(cls) -> tuple[bool, str]:
        b = _avif_backends()
        if not b:
            return False, "no AVIF support: needs Pillow >= 11.2 built with libavif, or pillow-avif-plugin"
        return True, "; ".join(b.values())

    def save_params(self) -> dict[str, Any]:
        """The plugin's save parameters (also used by the tests)."""
        return {"quality": self.q, "speed": self.speed, "max_threads": 1,
                "subsampling": "4:2:0" if self.subsampling == 420 else "4:4:4"}

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        mod = _avif_module(self.backend)
        im = Image.fromarray(image)
        im.encoderinfo = self.save_params()
        im.encoderconfig = ()
        buf = io.BytesIO()
        mod._save(im, buf, "")
        data = buf.getvalue()
        with mod.AvifImageFile(io.BytesIO(data)) as dec:
            return np.asarray(dec.convert("RGB")), len(data)


# -- JPEG XL -------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _jxl_backends() -> dict[str, str]:
    out = {}
    try:
        import imagecodecs

        if imagecodecs.JPEGXL.available:
            out["imagecodecs"] = f"imagecodecs {imagecodecs.__version__} ({imagecodecs.jpegxl_version()})"
    except ImportError:
        pass
    if _has_module("pillow_jxl"):
        out["pillow"] = f"pillow-jxl-plugin {_dist_version('pillow-jxl-plugin')}"
    return out


def jxl_quality_from_distance(d: float) -> float:
    """Inverse of libjxl's ``JxlEncoderDistanceFromQuality`` (for pillow-jxl-plugin, which takes a quality).

    libjxl: ``d = 0.1 + (100 - q) * 0.09`` for q >= 30, ``d = 53/3000 q^2 - 23/20 q + 25`` below.
    """
    if d <= 6.4:
        return 100.0 - (d - 0.1) / 0.09
    # solve 53/3000 q^2 - 23/20 q + 25 - d = 0 for the root in [0, 30)
    a, b, c = 53 / 3000, -23 / 20, 25 - d
    return max(0.0, (-b - math.sqrt(max(0.0, b * b - 4 * a * c))) / (2 * a))


@register_codec("jxl", positional="d")
class JXL(Codec):
    """JPEG XL (libjxl), lossy. ``d``: Butteraugli distance 0.01..25 (1 ~ visually lossless; default 2),
    ``effort`` 1..9 (7).

    ``backend``: ``imagecodecs`` (takes the distance directly; default) or ``pillow``
    (pillow-jxl-plugin, which takes a quality: we pass :func:`jxl_quality_from_distance`; its bundled
    libjxl may differ, so sizes are close, not identical). One thread per image.
    """

    library = "imagecodecs"
    summary = "JPEG XL (libjxl via imagecodecs or pillow-jxl-plugin), d = distance 0.01..25, effort 1..9"

    def __init__(self, spec: str = "", workers: int | None = None, d: float = 2.0, effort: int = 7,
                 backend: str = "auto"):
        super().__init__(spec, workers)
        self.d = _check_float("d (distance)", d, 0.01, 25.0)
        self.effort = _check_range("effort", effort, 1, 9)
        backends = _jxl_backends()
        backend = _check_choice("backend", backend, ("auto", "imagecodecs", "pillow"))
        if backend == "auto":
            backend = next(iter(backends), backend)
        if backend not in backends:
            raise ValueError(f"JPEG XL backend {backend} is not available here "
                             f"(available: {', '.join(backends) or 'none'})")
        self.backend = backend
        self.library = backends[backend]

    @classmethod
    def available(cls) -> tuple[bool, str]:
        b = _jxl_backends()
        if not b:
            return False, "no JPEG XL library: pip install imagecodecs (with libjxl) or pillow-jxl-plugin"
        return True, "; ".join(b.values())

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        if self.backend == "imagecodecs":
            import imagecodecs

            data = imagecodecs.jpegxl_encode(np.ascontiguousarray(image), distance=self.d, effort=self.effort,
                                             numthreads=1)
            dec = imagecodecs.jpegxl_decode(data, numthreads=1)
            return np.ascontiguousarray(dec[..., :3]), len(data)
        import pillow_jxl  # noqa: F401  (registers the JXL format)

        data = _pil_encode(image, "JXL", quality=jxl_quality_from_distance(self.d), effort=self.effort,
                           num_threads=0)
        return _pil_decode(data), len(data)


# -- PNG -----------------------------------------------------------------------------------------------

@register_codec("png", positional="level")
class PNG(Codec):
    """Lossless PNG (zlib via Pillow), for reference sizes. ``level`` 0..9 (zlib level, 6)."""

    library = "Pillow"
    lossy = False
    summary = "lossless PNG (Pillow/zlib), level 0..9: reference sizes"

    def __init__(self, spec: str = "", workers: int | None = None, level: int = 6):
        super().__init__(spec, workers)
        self.level = _check_range("level", level, 0, 9)
        self.library = f"{_pil()} (zlib {features.version('zlib')})"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, f"{_pil()} (zlib {features.version('zlib')})"

    def code_one(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        data = _pil_encode(image, "PNG", compress_level=self.level)
        return _pil_decode(data), len(data)
