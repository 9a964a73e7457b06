"""Reframed video clips, read by the default model (docs/geometry.md, "Status (session 21)").

For each of the first N validation photos, an 8-frame 16:9 clip at 1280 x 720 (the photo's centred 16:9 cut,
panned by 2 px a frame) is marked (``embed_video``, H.264 CRF 18), then every frame is cut at the centre to
1:1, 4:5 and 9:16 (the new shape kept, as platforms do) and re-encoded with H.264 CRF 23. Each clip is read
with ``--search none`` (the frames' pooled plain read) and with the default, staged search (the pooled
plain read, then each later stage pooled over the frames: the reframing stage since session 21, every stage of
the image's since session 34). The unmarked clips are read too (a false positive would show).
One JSON line per case, then the counts; ``--out FILE`` also writes them as JSON.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/video_reframe_probe.py --n 8 \
        --out docs/results/video-reframe-probe.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from robusthide.training.data import list_images
from robusthide.watermark.video import embed_video, extract_video
from robusthide.watermark.watermarker import Watermarker

CUTS = {"1:1": 1.0, "4:5": 0.8, "9:16": 9 / 16}
W, H, FRAMES = 1280, 720, 8


def _write(path: Path, frames: list[np.ndarray], crf: int) -> None:
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt, s.options = w, h, "yuv420p", {"crf": str(crf)}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as inp:
        return [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def _clip(f: Path) -> list[np.ndarray]:
    im = Image.open(f).convert("RGB")
    w, h = im.size
    cw, ch = (w, round(w * H / W)) if w / h < W / H else (round(h * W / H), h)
    im = im.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)).resize((W, H), Image.BICUBIC)
    a = np.asarray(im)
    return [np.roll(a, 2 * i, axis=1) for i in range(FRAMES)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--data", default="data/photos/train")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained("default")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for i, f in enumerate(list_images(a.data, "val")[: a.n]):
            msg = 1234 if i % 2 else 77
            _write(d / "c.mp4", _clip(f), 18)
            embed_video(wm, d / "c.mp4", d / "m.mp4", wm.encode_message(msg), crf=18)
            for marked, src in ((True, d / "m.mp4"), (False, d / "c.mp4")):
                frames = _frames(src)
                for name, asp in CUTS.items():
                    cw = round(H * asp) // 2 * 2
                    x0 = (W - cw) // 2
                    _write(d / "r.mp4", [f[:, x0:x0 + cw] for f in frames], 23)
                    t0 = time.perf_counter()
                    none = extract_video(wm, d / "r.mp4", search="none")
                    t1 = time.perf_counter()
                    staged = extract_video(wm, d / "r.mp4")
                    t2 = time.perf_counter()
                    row = {"file": f.name, "marked": marked, "to": name,
                           "none": bool(none.detected) and none.message == msg,
                           "staged": bool(staged.detected) and staged.message == msg,
                           "none_detected": bool(none.detected), "staged_detected": bool(staged.detected),
                           "none_p": float(none.p_value), "staged_p": float(staged.p_value),
                           "band": (staged.geometry or {}).get("band"), "none_s": round(t1 - t0, 2),
                           "staged_s": round(t2 - t1, 2)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    marked, clean = [r for r in rows if r["marked"]], [r for r in rows if not r["marked"]]
    summary = {"command": "OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/video_reframe_probe.py --n "
                          f"{a.n}" + (f" --out {a.out}" if a.out else ""),
               **{f"{k} {cut}": f"{sum(r[k] for r in marked if r['to'] == cut)} of "
                                f"{sum(r['to'] == cut for r in marked)}" for k in ("none", "staged") for cut in CUTS},
               "false positives (unmarked, staged)": f"{sum(r['staged_detected'] for r in clean)} of {len(clean)}",
               "staged seconds, mean (marked / unmarked)": [
                   round(float(np.mean([r["staged_s"] for r in rows if r["marked"] is m])), 2) for m in (True, False)]}
    print(json.dumps(summary))
    if a.out:
        Path(a.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
