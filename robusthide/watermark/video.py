"""Watermark videos with PyAV: mark the frames, re-encode, keep the audio; extract by soft-bit voting.

* ``embed_video``: every frame is marked with the same bits (``keyframes_only=True`` marks key frames and
  carries their residual to the frames in between, which is cheaper and nearly as robust for static
  shots). Video is re-encoded with the chosen codec (H.264 by default, CRF settable, yuv420p); the audio
  streams are copied (remuxed) without re-encoding when the output container accepts them.
* ``extract_video``: decodes up to ``max_frames`` frames spread over the video, averages the per-bit
  logits over frames (soft voting), for the frames as they are and for their mirror images (a mirrored
  clip), then decodes the payload as for an image, the p-value paying for both hypotheses. With the staged
  search (a whole-image model's default), a clip that this plain read does not detect is read again by the
  image's other stages (:meth:`Watermarker.decide_frames_staged`: inside a larger frame, reframed, a band of it,
  straightened, cropped at the centre, a corner or anywhere, turned), the frames' logits pooled per hypothesis.
  A periodic ``geo`` model instead pools the frames' features and runs the image's geometry search on them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robusthide import RobustHideError
from robusthide.io.safe import atomic_output, check_regular
from robusthide.metrics import psnr_from_mse
from robusthide.watermark.refine import RefineConfig

ENCODERS = {"h264": "libx264", "h265": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1", "mpeg4": "mpeg4"}
#: Valid CRF range of each encoder (mpeg4 has no CRF: its quality is the encoder's default).
CRF_RANGE = {"h264": (0, 51), "h265": (0, 51), "vp9": (0, 63), "av1": (0, 63)}


def check_crf(crf: int, codec: str) -> None:
    """Refuse a CRF outside the encoder's range (one line)."""
    lo, hi = CRF_RANGE.get(codec, (0, 63))
    if isinstance(crf, bool) or not isinstance(crf, int) or not lo <= crf <= hi:
        raise RobustHideError(f"CRF must be an integer from {lo} to {hi} for {codec}, got {crf!r}")


def _open(path: Path):
    import av

    check_regular(path)  # a FIFO named clip.mp4 would block av.open forever
    try:
        return av.open(str(path))
    except Exception as e:
        raise RobustHideError(f"{path}: not a readable video ({_first(e)})") from None


def _first(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def _check_video_size(path: Path, w: int, h: int) -> None:
    from robusthide.watermark.imagedata import MIN_SIDE

    if min(w, h) < MIN_SIDE:
        raise RobustHideError(f"{path}: video is too small ({w}x{h}); the smallest side must be at least "
                              f"{MIN_SIDE} px")


def video_psnr(a: Path, b: Path, max_frames: int = 60) -> float:
    """Mean PSNR (dB, RGB, 8-bit) between the first ``max_frames`` frames of two videos, frame by frame as
    decoded (the marked file as written, after encoding); 99.0 for identical frames."""
    ia, ib = _open(Path(a)), _open(Path(b))
    vals = []
    try:
        for fa, fb in zip(ia.decode(video=0), ib.decode(video=0)):
            xa, xb = fa.to_ndarray(format="rgb24"), fb.to_ndarray(format="rgb24")
            h, w = min(xa.shape[0], xb.shape[0]), min(xa.shape[1], xb.shape[1])
            mse = float(np.mean((xa[:h, :w].astype(np.float64) - xb[:h, :w]) ** 2))
            vals.append(99.0 if mse == 0 else min(99.0, psnr_from_mse(np.float64(mse))))
            if len(vals) >= max_frames:
                break
    except Exception as e:
        raise RobustHideError(f"{b}: cannot decode the written video ({_first(e)})") from None
    finally:
        ia.close()
        ib.close()
    if not vals:
        raise RobustHideError(f"{b}: the written video has no frames")
    return round(float(np.mean(vals)), 2)


def embed_video(wm, src: Path, dst: Path, bits: np.ndarray, strength: float = 1.0, crf: int = 18,
                codec: str = "h264", in_place: bool = False, keyframes_only: bool = False,
                refine: int | RefineConfig | None = 0,
                check: Callable[[Path], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Mark every frame of ``src`` into ``dst`` (written atomically: nothing is left at ``dst`` on failure).
    ``check(tmp)``: called on the written file before it is moved into place (re-read, verify); it may raise
    to abandon the output, and the dict it returns is merged into the result."""
    if codec not in ENCODERS:
        raise RobustHideError(f"unknown video codec '{codec}' ({', '.join(ENCODERS)})")
    if codec in CRF_RANGE:
        check_crf(crf, codec)
    src, dst = Path(src), Path(dst)
    with atomic_output(dst, protect=[] if in_place else [src]) as tmp:
        res = _embed_frames(wm, src, tmp, bits, strength, crf, codec, keyframes_only, refine)
        if check is not None:
            res.update(check(tmp))
    res["output"] = str(dst)
    return res


def _embed_frames(wm, src: Path, tmp: Path, bits: np.ndarray, strength: float, crf: int, codec: str,
                  keyframes_only: bool, refine: int | RefineConfig | None) -> dict[str, Any]:
    import av

    inp = _open(src)
    if not inp.streams.video:
        inp.close()
        raise RobustHideError(f"{src}: no video stream")
    vin = inp.streams.video[0]
    try:
        _check_video_size(src, vin.codec_context.width, vin.codec_context.height)
        out = av.open(str(tmp), "w")
    except BaseException:
        inp.close()
        raise
    n, psnrs = 0, []
    try:
        rate = vin.average_rate or 30
        vout = out.add_stream(ENCODERS[codec], rate=rate)
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.width += vout.width % 2
        vout.height += vout.height % 2
        vout.pix_fmt = "yuv420p"
        if codec in ("h264", "h265", "vp9", "av1"):
            vout.options = {"crf": str(crf)}
        audio_map = {}
        for a in inp.streams.audio:
            try:
                audio_map[a.index] = out.add_stream_from_template(a)
            except Exception:
                pass
        bits_t = wm.bits_tensor(bits)
        residual = None
        for packet in inp.demux():
            if packet.stream.type == "audio" and packet.stream.index in audio_map:
                if packet.dts is None:
                    continue
                packet.stream = audio_map[packet.stream.index]
                out.mux(packet)
                continue
            if packet.stream.type != "video" or packet.stream.index != vin.index:
                continue
            for frame in packet.decode():
                rgb = frame.to_ndarray(format="rgb24")
                if rgb.shape[0] % 2 or rgb.shape[1] % 2:
                    rgb = np.pad(rgb, ((0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0)), mode="edge")
                x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255).to(wm.device)
                with torch.no_grad():
                    if residual is None or not keyframes_only or frame.key_frame:
                        residual = wm.frame_residual(x, bits_t, strength, refine)
                    y = wm.apply_residual(x, residual, strength)
                marked = (y[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
                mse = float(np.mean((marked.astype(np.float64) - rgb) ** 2))
                psnrs.append(99.0 if mse == 0 else psnr_from_mse(np.float64(mse)))
                vf = av.VideoFrame.from_ndarray(marked, format="rgb24")
                vf.pts, vf.time_base = frame.pts, frame.time_base
                for p in vout.encode(vf):
                    out.mux(p)
                n += 1
        for p in vout.encode():
            out.mux(p)
    except RobustHideError:
        raise
    except Exception as e:
        raise RobustHideError(f"{src}: video processing failed ({_first(e)})") from None
    finally:
        out.close()
        inp.close()
    if n == 0:
        raise RobustHideError(f"{src}: the video has no frames")
    return {"input": str(src), "frames": n, "psnr": round(float(np.mean(psnrs)), 2)}


def extract_video(wm, src: Path, max_frames: int = 60, search: str | None = None,
                  progress: Callable[[str], None] | None = None):
    """Read the mark of a video from up to ``max_frames`` frames. ``search`` (None: the model's default):
    ``none`` soft-votes the bits of the frames as they are and mirrored (two pooled hypotheses,
    :meth:`Watermarker.frame_hypothesis_logits`); ``staged``, a whole-image model's default, reads a video so
    and, when that does not detect, by the image's other stages, each hypothesis pooled over the frames
    (:meth:`Watermarker.decide_frames_staged`);
    ``geometry`` (the default of the periodic ``geo`` models) runs
    the image's geometry search on the frames' pooled evidence (:meth:`Watermarker.extract_frames`), so a
    cropped, reframed or mirrored clip reads. The crop and rotation searches alone are refused, not ignored.
    ``progress`` (staged search): called with the name of each stage after the plain read as it starts."""
    from robusthide.nets.watermark_model import resize
    from robusthide.watermark.frames import INSET_FRAMES
    from robusthide.watermark.sync import check_search

    try:
        mode = check_search(wm.default_search if search is None else search)
    except ValueError as e:
        raise RobustHideError(str(e)) from None
    geometry = mode in ("geometry", "staged") and hasattr(wm.model.decoder, "feature_maps")
    staged = mode == "staged" and not geometry  # a whole-image model's default: pooled plain read, then reframing
    if staged:
        mode = "none"
    if mode != "none" and not geometry:
        raise RobustHideError(f"{src}: search {mode!r} works on images only, not on videos"
                              + (" (the geometry search reads videos with a periodic geo model)"
                                 if mode == "geometry" else ""))
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise RobustHideError(f"max_frames must be a positive integer, got {max_frames!r}")
    inp = _open(Path(src))
    if not inp.streams.video:
        inp.close()
        raise RobustHideError(f"{src}: no video stream")
    logits_sum, n, hyps = None, 0, []
    frames: list[torch.Tensor] = []  # geometry, staged: each frame at the size the search's views are drawn from
    full: list[torch.Tensor] = []  # staged: every step-th frame as it is, for the inset stage (uint8)
    step = max(1, -(-max_frames // INSET_FRAMES))
    side = 2 * int(wm.model.size)
    try:
        cc = inp.streams.video[0].codec_context
        _check_video_size(Path(src), cc.width, cc.height)
        for frame in inp.decode(video=0):
            x = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float().div(255)
            if geometry:
                frames.append(resize(x, (side, side)))
            else:
                lg, hyps = wm.frame_hypothesis_logits(x)
                logits_sum = lg if logits_sum is None else logits_sum + lg
                if staged:  # the reframing views are drawn from a 2S x 2S resize: keep the frame's aspect
                    frames.append(resize(x, (side, max(1, round(side * x.shape[-1] / x.shape[-2])))))
                    if n % step == 0:
                        full.append(torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)[None])
            n += 1
            if n >= max_frames:
                break
    except RobustHideError:
        raise
    except Exception as e:
        raise RobustHideError(f"{src}: video decoding failed ({_first(e)})") from None
    finally:
        inp.close()
    if n == 0:
        raise RobustHideError(f"{src}: the video has no frames")
    if geometry:
        return wm.extract_frames(frames)
    # average of logits = soft vote; treat each hypothesis like one image's logits
    if staged:
        return wm.decide_frames_staged(logits_sum / n, hyps, frames, inset_frames=full, progress=progress)
    return wm.decide(logits_sum / n, hyps)
