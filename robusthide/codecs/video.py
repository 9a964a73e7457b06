"""Video codecs through PyAV (FFmpeg), fully in memory: MPEG-4 Part 2, XVID, H.264, H.265, VP9, AV1 (XVID's
libxvid encoder through the system ``ffmpeg`` program, over pipes).

Paper 000 (Table 4) attacks its data-hiding network with MPEG-4 and XVID: the batch is written as the
consecutive frames of ONE clip at 30 fps with OpenCV's ``VideoWriter`` and read back. ``mode=clip`` (the
default) does the same: frame ``i`` of the clip is image ``i`` of the batch, so inter-frame prediction
between the batch's images is part of the attack. ``mode=frames`` codes every image as its own one-frame
clip (intra only), images in parallel threads (PyAV releases the GIL while coding), one encoder thread
each. In ``clip`` mode the encoder runs one thread, or ``workers`` threads when the codec is built with
``get_codec(spec, workers=N)``: x264, x265 and FFmpeg's mpeg4 produce slightly different bitstreams
with different thread counts, so by default results do not depend on the machine's core count.

Parameters (not all codecs take all of them; a wrong one is a clear error):

* ``crf=`` constant-quality factor (h264 0..51 default 23, h265 0..51 default 28, vp9 0..63 default 31,
  av1 1..63 default 35), or ``bitrate=`` (``500k``, ``2M`` or bits/s), not both;
* ``q=`` (mpeg4/xvid/xvid-opencv only): fixed quantiser 1..31 (FFmpeg ``-q:v``);
* ``preset=``: x264/x265 preset name (default medium); VP9 ``cpu-used`` 0..8 (default 4: FFmpeg's own
  default, 1, is several times slower); SVT-AV1 preset 0..13 (default 8);
* ``fps=`` frame rate (default 30); ``mode=clip|frames``; ``container=`` where a codec allows several.

MPEG-4 / XVID without ``bitrate=``/``q=`` reproduce OpenCV ``VideoWriter``'s FFmpeg defaults, which is
what paper 000 ran ("no bitrate setting"): ``bit_rate = fps * W * H``, ``qmin = 3``, ``gop_size = 12``,
no B-frames. Checked against ``cv2.VideoWriter(fourcc='XVID', 30 fps)`` on 16 frames of the astronaut:
clip sizes within 2 % and PSNR within 0.5 dB at 128x128 and 512x512 (the rate control saturates at
``qmin``, so the quantiser is effectively 3).

``xvid`` is the real libxvid encoder, run as the system ``ffmpeg`` program through pipes (PyAV's FFmpeg has
no libxvid; Debian's ffmpeg has), with the same settings; where no such ffmpeg exists the codec is
unavailable and says how to install it. ``xvid-opencv`` is what OpenCV's ``VideoWriter('XVID')`` writes:
FFmpeg's ``mpeg4`` encoder in an AVI whose stream carries the ``XVID`` fourcc (pixel-identical to
``mpeg4:container=avi``).

Sizes: frames are converted to ``yuv420p`` (BT.601, limited range: part of what a real pipeline does);
odd sizes (and sizes below an encoder's minimum: 16 for x265, 8 for SVT-AV1) are padded by edge
replication and cropped back after decoding. ``nbytes``: in ``clip`` mode the whole container (headers
included) is shared equally among the frames (the first ``total % N`` frames get one byte more, so the
sizes sum to the clip size); in ``frames`` mode each image's one-frame clip.

The decoder must give back exactly as many frames as were encoded (encoder and decoder are flushed);
anything else raises :class:`~robusthide.codecs.CodecError`. Impossible packet timestamps (libx265
leaves the dts of a one-frame clip uninitialised) are repaired before muxing. Logging: libx265 gets
``log-level=none``; SVT-AV1 reads ``SVT_LOG`` which we default to 1 (errors only) on import.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import shutil
import subprocess
from fractions import Fraction
from typing import Any

import numpy as np

from robusthide.codecs.base import Codec, CodecError, default_workers, thread_pool
from robusthide.codecs.registry import register_codec

os.environ.setdefault("SVT_LOG", "1")

_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                 "veryslow", "placebo")


def parse_bitrate(v: Any) -> int:
    """``'500k'`` -> 500000, ``'2M'`` -> 2000000, ``800000`` -> 800000 (bits per second)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        b = float(v)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(v))
        if not m:
            raise ValueError(f"bitrate must look like 500k, 2M or 800000, got {v!r}")
        b = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]
    if not math.isfinite(b) or not 1e3 <= b <= 1e9:
        raise ValueError(f"bitrate must be between 1k and 1000M bits/s, got {v!r}")
    return int(round(b))


def _pyav() -> Any:
    import av

    return av


def _encoder_ok(name: str) -> tuple[bool, str]:
    try:
        av = _pyav()
    except ImportError:
        return False, "PyAV is not installed (pip install av)"
    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - PyAV raises several types for an unknown codec
        return False, f"the FFmpeg inside PyAV {av.__version__} has no {name} encoder"
    return True, ""


def _decoder_ok(names: tuple[str, ...]) -> bool:
    av = _pyav()
    for n in names:
        try:
            av.codec.Codec(n, "r")
            return True
        except Exception:  # noqa: BLE001,S112
            continue
    return False


def _ffmpeg_version() -> str:
    av = _pyav()
    v = av.library_versions.get("libavcodec", ())
    return ".".join(str(x) for x in v)


def _fix_dts(packet: Any, last_dts: int | None, n: int) -> int | None:
    """Repair an impossible decoding timestamp before muxing; return the packet's dts.

    FFmpeg's libx265 wrapper leaves the dts of a one-frame clip uninitialised (seen: +-4e18), which the
    mp4 muxer then rejects at random ("Not yet implemented ... patches welcome"). A valid dts is at most
    the pts, no earlier than the pts minus the clip length (B-frame delay), and increasing.
    """
    pts, dts = packet.pts, packet.dts
    if pts is None:
        return dts if dts is not None else last_dts
    if dts is None or dts > pts or dts < pts - n - 16 or (last_dts is not None and dts <= last_dts):
        packet.dts = dts = pts if last_dts is None else min(pts, last_dts + 1)
    return dts


class VideoCodec(Codec):
    """Shared implementation; subclasses set the class attributes below."""

    encoder: str = ""
    decoders: tuple[str, ...] = ()       # any one of these must exist to decode
    containers: tuple[str, ...] = ("mp4",)
    codec_tag: str | None = None
    crf_range: tuple[int, int] | None = None
    default_crf: int | None = None
    presets: tuple[str, ...] | tuple[int, int] | None = None
    default_preset: str | int | None = None
    takes_q: bool = False
    min_size: int = 2

    def __init__(self, spec: str = "", workers: int | None = None, crf: int | None = None,
                 bitrate: Any = None, q: int | None = None, preset: Any = None, fps: float = 30,
                 mode: str = "clip", container: str | None = None):
        super().__init__(spec, workers)
        if crf is not None and self.crf_range is None:
            raise ValueError(f"{self.name} has no crf= (use bitrate= or q=)")
        if q is not None and not self.takes_q:
            raise ValueError(f"{self.name} has no q= (use crf= or bitrate=)")
        if preset is not None and self.presets is None:
            raise ValueError(f"{self.name} has no preset=")
        given = [k for k, v in (("crf", crf), ("bitrate", bitrate), ("q", q)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of {', '.join(given)}")
        self.crf = self.bitrate = self.q = None
        if crf is not None:
            lo, hi = self.crf_range  # type: ignore[misc]
            if isinstance(crf, bool) or not isinstance(crf, int) or not lo <= crf <= hi:
                raise ValueError(f"crf must be an integer in {lo}..{hi}, got {crf!r}")
            self.crf = crf
        elif bitrate is not None:
            self.bitrate = parse_bitrate(bitrate)
        elif q is not None:
            if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 31:
                raise ValueError(f"q must be an integer in 1..31, got {q!r}")
            self.q = q
        elif self.default_crf is not None:
            self.crf = self.default_crf
        self.preset = None
        if self.presets is not None:
            p = self.default_preset if preset is None else preset
            if isinstance(self.presets[0], str):
                if not isinstance(p, str) or p.lower() not in self.presets:
                    raise ValueError(f"preset must be one of {', '.join(self.presets)}, got {p!r}")  # type: ignore[arg-type]
                self.preset = p.lower()
            else:
                lo, hi = self.presets  # type: ignore[misc]
                if isinstance(p, bool) or not isinstance(p, int) or not lo <= p <= hi:
                    raise ValueError(f"preset must be an integer in {lo}..{hi}, got {p!r}")
                self.preset = p
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) \
                or not 0 < fps <= 1000:
            raise ValueError(f"fps must be a number in (0, 1000], got {fps!r}")
        self.fps = fps
        if mode not in ("clip", "frames"):
            raise ValueError(f"mode must be clip or frames, got {mode!r}")
        self.mode = mode
        c = self.containers[0] if container is None else container
        if c not in self.containers:
            raise ValueError(f"container must be one of {', '.join(self.containers)}, got {c!r}")
        self.container = c
        self.library = self._library()

    @classmethod
    def _library(cls) -> str:
        av = _pyav()
        return f"PyAV {av.__version__} (FFmpeg libavcodec {_ffmpeg_version()}, {cls.encoder})"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        ok, why = _encoder_ok(cls.encoder)
        if not ok:
            return False, why
        if not _decoder_ok(cls.decoders):
            return False, f"the FFmpeg inside PyAV has no {' or '.join(cls.decoders)} decoder for {cls.name}"
        return True, cls._library()

    # -- per-codec encoder settings ---------------------------------------------------------------------
    def _options(self) -> dict[str, str]:
        opts: dict[str, str] = {}
        if self.crf is not None:
            opts["crf"] = str(self.crf)
        if self.preset is not None:
            opts["preset"] = str(self.preset)
        return opts

    def _configure(self, stream: Any, width: int, height: int, threads: int) -> None:
        cc = stream.codec_context
        if self.bitrate is not None:
            cc.bit_rate = self.bitrate
        cc.thread_count = threads

    # -- coding ------------------------------------------------------------------------------------------
    def code_batch(self, batch: np.ndarray) -> tuple[np.ndarray, list[int]]:
        n = len(batch)
        if self.mode == "clip":
            # one encoder thread unless workers= is given: the bitstream of x264/x265/mpeg4 depends on
            # the thread count, and results should not depend on the machine's core count
            return self._code_clip(batch, threads=self.workers or 1)
        workers = self.workers or default_workers()
        w = min(n, workers)
        if w <= 1:
            outs = [self._code_clip(im[None], threads=1) for im in batch]
        else:
            outs = list(thread_pool(w).map(lambda im: self._code_clip(im[None], threads=1), batch))
        return np.concatenate([o[0] for o in outs]), [o[1][0] for o in outs]

    def _padded(self, batch: np.ndarray) -> np.ndarray:
        n, h, w, _ = batch.shape
        ph = max(self.min_size, h + (h & 1)) - h
        pw = max(self.min_size, w + (w & 1)) - w
        if ph or pw:
            batch = np.pad(batch, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        return batch

    def encode_clip(self, batch: np.ndarray, threads: int = 1) -> bytes:
        """Encode a uint8 N x H x W x 3 batch (even sizes) as one clip; return the container's bytes."""
        av = _pyav()
        n, h, w, _ = batch.shape
        buf = io.BytesIO()
        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            with av.open(buf, "w", format=self.container) as out:
                stream = out.add_stream(self.encoder, rate=rate, options=self._options())
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                stream.time_base = 1 / rate
                if self.codec_tag:
                    stream.codec_tag = self.codec_tag
                self._configure(stream, w, h, threads)
                last_dts = None
                for i in range(n + 1):
                    if i < n:
                        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(batch[i]), format="rgb24")
                        frame.pts = i
                    for packet in stream.encode(frame if i < n else None):
                        last_dts = _fix_dts(packet, last_dts, n)
                        out.mux(packet)
        except (av.FFmpegError, ValueError) as e:
            raise CodecError(f"{self.spec}: {self.encoder} could not encode {n} frame(s) "
                             f"of {w}x{h}: {e}") from e
        return buf.getvalue()

    def decode_clip(self, data: bytes) -> list[np.ndarray]:
        """Decode every frame of a clip, in presentation order."""
        av = _pyav()
        frames = []
        try:
            with av.open(io.BytesIO(data), "r") as inp:
                stream = inp.streams.video[0]
                for frame in inp.decode(stream):
                    frames.append((frame.pts if frame.pts is not None else len(frames),
                                   frame.to_ndarray(format="rgb24")))
        except (av.FFmpegError, ValueError) as e:
            raise CodecError(f"{self.spec}: could not decode the {self.name} clip: {e}") from e
        frames.sort(key=lambda t: t[0])
        return [f for _, f in frames]

    def _code_clip(self, batch: np.ndarray, threads: int) -> tuple[np.ndarray, list[int]]:
        n, h, w, _ = batch.shape
        data = self.encode_clip(self._padded(batch), threads=threads)
        frames = self.decode_clip(data)
        if len(frames) != n:
            raise CodecError(f"{self.spec}: the decoder returned {len(frames)} frame(s) for {n} encoded")
        out = np.stack(frames)[:, :h, :w]
        total = len(data)
        sizes = [total // n + (1 if i < total % n else 0) for i in range(n)]
        return np.ascontiguousarray(out), sizes


@register_codec("mpeg4", positional="bitrate")
class MPEG4(VideoCodec):
    """MPEG-4 Part 2 (FFmpeg ``mpeg4``), mp4 or avi; default = OpenCV VideoWriter 'mp4v' (paper 000)."""

    summary = "MPEG-4 Part 2 (FFmpeg mpeg4), bitrate= or q=1..31, default = OpenCV VideoWriter (paper 000)"
    encoder = "mpeg4"
    decoders = ("mpeg4",)
    containers = ("mp4", "avi")
    takes_q = True

    def _configure(self, stream: Any, width: int, height: int, threads: int) -> None:
        cc = stream.codec_context
        cc.gop_size = 12
        cc.max_b_frames = 0
        if self.q is not None:
            # fixed quantiser: PyAV cannot set the per-frame quality that FFmpeg's -q:v uses, so pin the
            # rate control's range instead (qmin = qmax = q) under a bitrate it never reaches
            cc.bit_rate = 1_000_000_000
            cc.qmin = cc.qmax = self.q
        elif self.bitrate is not None:
            cc.bit_rate = self.bitrate
        else:  # OpenCV VideoWriter's FFmpeg defaults
            cc.bit_rate = int(round(self.fps * width * height))
            cc.qmin = 3
        cc.thread_count = threads


@register_codec("xvid-opencv", positional="bitrate")
class XVIDOpenCV(MPEG4):
    """What OpenCV's ``VideoWriter('XVID')`` writes: FFmpeg's own ``mpeg4`` encoder in AVI with the ``XVID``
    fourcc (OpenCV maps the fourcc to the MPEG-4 codec id, whose first encoder is FFmpeg's ``mpeg4``), so its
    pixels are those of ``mpeg4:container=avi``. Kept because the committed paper 000 Table 4 results
    (docs/results/p000-tables2-4) were made with it under the name ``xvid``; ``xvid`` is now libxvid."""

    summary = "OpenCV's 'XVID': FFmpeg's mpeg4 encoder in AVI tagged XVID (pixels = mpeg4; not libxvid)"
    containers = ("avi",)
    codec_tag = "XVID"


#: the fix named where libxvid is missing
XVID_FIX = "install the system ffmpeg, whose Debian / Ubuntu build has libxvid: apt-get install ffmpeg"


@functools.lru_cache(maxsize=4)
def ffmpeg_xvid(binary: str | None = None) -> tuple[str | None, str]:
    """``(path, version)`` of an ``ffmpeg`` binary with the libxvid encoder, or ``(None, why not)``.

    ``binary``: a path or command name (default: ``$ROBUSTHIDE_FFMPEG`` or ``ffmpeg`` on ``PATH``). Cached per
    process (``ffmpeg_xvid.cache_clear()`` after changing either).
    """
    name = binary or os.environ.get("ROBUSTHIDE_FFMPEG") or "ffmpeg"
    path = shutil.which(name)
    if path is None:
        return None, f"no '{name}' program on PATH (PyAV's FFmpeg has no libxvid); {XVID_FIX}"
    try:
        enc = subprocess.run([path, "-hide_banner", "-nostdin", "-encoders"], capture_output=True, text=True,
                             timeout=30, check=False)
        ver = subprocess.run([path, "-hide_banner", "-nostdin", "-version"], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"{path} does not run ({type(e).__name__}); {XVID_FIX}"
    if not re.search(r"^\s*V\S*\s+libxvid\s", enc.stdout, re.M):
        return None, f"{path} has no libxvid encoder; {XVID_FIX}"
    m = re.search(r"ffmpeg version (\S+)", ver.stdout)
    return path, (m.group(1) if m else "unknown version")


@register_codec("xvid", positional="bitrate")
class XVID(MPEG4):
    """XVID: MPEG-4 Part 2 ASP from libxvid (the system ``ffmpeg`` program), in AVI tagged ``XVID``.

    PyAV's FFmpeg has no libxvid, so the clip is encoded by the system ``ffmpeg`` through pipes (raw
    yuv420p frames in, the AVI out, nothing on disk) and decoded by PyAV like ``mpeg4``. The frames are
    converted to yuv420p by PyAV exactly as for the other video codecs, so only the encoder differs from
    ``mpeg4``. Defaults as ``mpeg4`` (OpenCV VideoWriter's FFmpeg settings, paper 000): ``bit_rate = fps *
    W * H``, ``qmin = 3``, GOP 12, no B-frames; ``q=`` a fixed quantiser, ``bitrate=`` a target rate.
    Unavailable (with the fix in the reason) where no ``ffmpeg`` with libxvid is found
    (:func:`ffmpeg_xvid`; ``$ROBUSTHIDE_FFMPEG`` names another binary).
    """

    summary = "XVID (libxvid via the system ffmpeg, pipes), bitrate= or q=1..31, OpenCV-like defaults"
    containers = ("avi",)
    codec_tag = "XVID"

    @classmethod
    def _library(cls) -> str:
        path, version = ffmpeg_xvid()
        return f"libxvid via {path} (ffmpeg {version}); decoded by PyAV {_pyav().__version__}"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        path, why = ffmpeg_xvid()
        if path is None:
            return False, why
        if not _decoder_ok(cls.decoders):
            return False, "the FFmpeg inside PyAV has no mpeg4 decoder for xvid"
        return True, cls._library()

    def ffmpeg_args(self, width: int, height: int, threads: int) -> list[str]:
        """The ``ffmpeg`` command line (after the binary) that encodes raw yuv420p on stdin to AVI on stdout."""
        rate = Fraction(self.fps).limit_denominator(1001)
        args = ["-hide_banner", "-loglevel", "error", "-nostdin",
                "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-r", str(rate), "-i", "pipe:0",
                "-c:v", "libxvid", "-g", "12", "-bf", "0", "-threads", str(threads)]
        if self.q is not None:
            args += ["-q:v", str(self.q)]
        elif self.bitrate is not None:
            args += ["-b:v", str(self.bitrate)]
        else:  # OpenCV VideoWriter's FFmpeg defaults, as mpeg4
            args += ["-b:v", str(int(round(self.fps * width * height))), "-qmin", "3"]
        return args + ["-vtag", self.codec_tag or "XVID", "-f", "avi", "pipe:1"]

    def encode_clip(self, batch: np.ndarray, threads: int = 1) -> bytes:
        av = _pyav()
        n, h, w, _ = batch.shape
        path, why = ffmpeg_xvid()
        if path is None:
            raise CodecError(f"{self.spec}: {why}")
        raw = b"".join(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
                       .reformat(format="yuv420p").to_ndarray().tobytes() for f in batch)
        try:
            r = subprocess.run([path, *self.ffmpeg_args(w, h, threads)], input=raw, capture_output=True,
                               timeout=600, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            raise CodecError(f"{self.spec}: {path} failed on {n} frame(s) of {w}x{h}: {type(e).__name__}") from e
        if r.returncode != 0 or not r.stdout:
            last = (r.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise CodecError(f"{self.spec}: libxvid could not encode {n} frame(s) of {w}x{h}: {last}")
        return r.stdout


@register_codec("h264", positional="crf")
class H264(VideoCodec):
    """H.264 / AVC (libx264) in mp4; crf 0..51 (23) or bitrate; preset ultrafast..placebo (medium)."""

    summary = "H.264 (libx264), crf 0..51 or bitrate=, preset"
    encoder = "libx264"
    decoders = ("h264",)
    containers = ("mp4", "matroska", "avi")
    crf_range = (0, 51)
    default_crf = 23
    presets = _X26X_PRESETS
    default_preset = "medium"


@register_codec("h265", positional="crf")
class H265(VideoCodec):
    """H.265 / HEVC (libx265) in mp4; crf 0..51 (28) or bitrate; preset (medium). Logging off."""

    summary = "H.265/HEVC (libx265), crf 0..51 or bitrate=, preset"
    encoder = "libx265"
    decoders = ("hevc",)
    containers = ("mp4", "matroska")
    crf_range = (0, 51)
    default_crf = 28
    presets = _X26X_PRESETS
    default_preset = "medium"
    min_size = 16

    def _options(self) -> dict[str, str]:
        return {**super()._options(), "x265-params": "log-level=none"}


@register_codec("vp9", positional="crf")
class VP9(VideoCodec):
    """VP9 (libvpx-vp9) in webm; crf 0..63 (31, constant quality) or bitrate; preset = cpu-used 0..8 (4)."""

    summary = "VP9 (libvpx-vp9), crf 0..63 or bitrate=, preset = cpu-used 0..8"
    encoder = "libvpx-vp9"
    decoders = ("vp9", "libvpx-vp9")
    containers = ("webm", "matroska")
    crf_range = (0, 63)
    default_crf = 31
    presets = (0, 8)
    default_preset = 4

    def _options(self) -> dict[str, str]:
        opts: dict[str, str] = {"cpu-used": str(self.preset), "deadline": "good", "row-mt": "1"}
        if self.crf is not None:
            opts.update(crf=str(self.crf), b="0")  # constant-quality mode needs b:v 0
        return opts


@register_codec("av1", positional="crf")
class AV1(VideoCodec):
    """AV1 (SVT-AV1 ``libsvtav1``) in mp4; crf 1..63 (35) or bitrate; preset 0..13 (8). Decoded by dav1d."""

    summary = "AV1 (libsvtav1, decoded by libdav1d), crf 1..63 or bitrate=, preset 0..13"
    encoder = "libsvtav1"
    decoders = ("libdav1d", "libaom-av1")
    containers = ("mp4", "webm", "matroska")
    crf_range = (1, 63)
    default_crf = 35
    presets = (0, 13)
    default_preset = 8
    min_size = 8
