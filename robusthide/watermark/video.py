"""Watermark videos with PyAV: mark the frames, re-encode, keep the audio; extract by soft-bit voting.

* ``embed_video``: every frame is marked with the same bits (``keyframes_only=True`` marks key frames and
  carries their residual to the frames in between, which is cheaper and nearly as robust for static
  shots). Video is re-encoded with the chosen codec (H.264 by default, CRF settable, yuv420p); the audio
  streams are copied (remuxed) without re-encoding when the output container accepts them.
* ``extract_video``: decodes up to ``max_frames`` frames spread over the video, averages the per-bit
  logits over frames (soft voting), then decodes the payload as for an image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from robusthide import RobustHideError

ENCODERS = {"h264": "libx264", "h265": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1", "mpeg4": "mpeg4"}


def _open(path: Path):
    import av

    try:
        return av.open(str(path))
    except Exception as e:
        raise RobustHideError(f"{path}: not a readable video ({str(e).splitlines()[0]})") from None


def embed_video(wm, src: Path, dst: Path, bits: np.ndarray, strength: float = 1.0, crf: int = 18,
                codec: str = "h264", in_place: bool = False, keyframes_only: bool = False,
                refine: int | None = 0) -> dict[str, Any]:
    import os

    import av

    if codec not in ENCODERS:
        raise RobustHideError(f"unknown video codec '{codec}' ({', '.join(ENCODERS)})")
    src, dst = Path(src), Path(dst)
    if not in_place and dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise RobustHideError(f"refusing to overwrite the input {src}")
    inp = _open(src)
    if not inp.streams.video:
        inp.close()
        raise RobustHideError(f"{src}: no video stream")
    vin = inp.streams.video[0]
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}{dst.suffix}")
    out = av.open(str(tmp), "w")
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
        bits_t = wm._bits_tensor(bits)
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
                        residual = wm.model.residual(x, bits_t, strength, refine)
                    y = (x + strength * residual).clamp(0, 1)
                marked = (y[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
                mse = float(np.mean((marked.astype(np.float64) - rgb) ** 2))
                psnrs.append(99.0 if mse == 0 else 10 * np.log10(255**2 / mse))
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
        raise RobustHideError(f"{src}: video processing failed ({str(e).splitlines()[0]})") from None
    finally:
        out.close()
        inp.close()
        if n == 0 and tmp.exists():
            tmp.unlink()
    if n == 0:
        raise RobustHideError(f"{src}: the video has no frames")
    os.replace(tmp, dst)
    return {"input": str(src), "output": str(dst), "frames": n, "psnr": round(float(np.mean(psnrs)), 2)}


def extract_video(wm, src: Path, max_frames: int = 60):
    from robusthide.payload import decode_bits
    from robusthide.watermark.watermarker import ExtractResult

    inp = _open(Path(src))
    if not inp.streams.video:
        inp.close()
        raise RobustHideError(f"{src}: no video stream")
    logits_sum, n = None, 0
    try:
        for frame in inp.decode(video=0):
            x = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float().div(255)
            with torch.no_grad():
                lg = wm.model.decode(x.to(wm.device))[0].float().cpu()
            logits_sum = lg if logits_sum is None else logits_sum + lg
            n += 1
            if n >= max_frames:
                break
    except Exception as e:
        raise RobustHideError(f"{src}: video decoding failed ({str(e).splitlines()[0]})") from None
    finally:
        inp.close()
    if n == 0:
        raise RobustHideError(f"{src}: the video has no frames")
    # average of logits = soft vote; treat it like one image's logits
    p = torch.sigmoid(logits_sum / n).numpy()
    return ExtractResult.from_decoded(decode_bits(p, wm.n_bits), p)
