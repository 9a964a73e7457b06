"""Issue 19 probe (session 15): a model reads a marked clip after the geometric edits of a platform or an editor,
with the library's video extractor (``robusthide.watermark.video.extract_video`` with the model's default search:
for a periodic ``geo`` model the frames' features pooled, then the image's geometry search; for a whole-image model
the staged search, each stage's logits pooled over the frames; session 34 added the off-centre crop and the
rotation).

Clips: ``--n`` validation photos (seed 0), each a 1280 x 720 crop panned by 2 px per frame for ``--frames`` frames
(H.264 CRF 12), marked with a random integer of the model's schema (H.264 CRF 18), then edited and re-encoded
by ffmpeg (libx264 CRF 23): cropped, reframed to 9:16 or 1:1, mirrored, scaled to 480p, rotated. A clip counts
when the message comes back exactly and is detected.

Run: .venv/bin/python docs/scripts/geo_video_probe.py WEIGHTS --out docs/results/NAME.md [--n 4] [--frames 24]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from robusthide import Watermarker
from robusthide.evaluation.images import image_set
from robusthide.watermark.video import embed_video, extract_video

W, H = 1280, 720
#: edit name -> ffmpeg video filter (the input is the marked 1280 x 720 clip)
EDITS = {
    "re-encode": "null",
    "crop 70 % of the area, top left": "crop=1071:602:0:0",
    "reframe 9:16 (centre), 720 x 1280": "crop=405:720,scale=720:1280",
    "reframe 1:1 (left), 1080 x 1080": "crop=720:720:0:0,scale=1080:1080",
    "mirror": "hflip",
    "480p": "scale=854:480",
    "crop half the area, right + 480p": "crop=905:509:375:211,scale=854:480",
    "crop 70 % of the area at (0.3, 0.7)": "crop=1071:602:63:83",
    "rotate 3 degrees (black corners)": "rotate=3*PI/180",
}


def write_clip(frame: np.ndarray, path: Path, frames: int) -> None:
    """A pan over ``frame`` (H x >= W + 2 frames x 3), ``frames`` frames of W x H, H.264 CRF 12."""
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt, s.options = W, H, "yuv420p", {"crf": "12"}
        for i in range(frames):
            img = np.ascontiguousarray(frame[:H, 2 * i:2 * i + W])
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--frames", type=int, default=24)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained(a.weights)
    rng = np.random.default_rng(0)
    items = image_set("data/photos/train", n=a.n, size=None, seed=0, split="val")
    cmd = (f".venv/bin/python docs/scripts/geo_video_probe.py {a.weights} --out {a.out} --n {a.n} "
           f"--frames {a.frames}")
    results = {name: [] for name in EDITS}
    times = {name: 0.0 for name in EDITS}
    clean: list[bool] = []
    clean_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for k, it in enumerate(items):
            photo = it.load()
            if photo.shape[0] < H or photo.shape[1] < W + 2 * a.frames:
                from PIL import Image

                scale = max(H / photo.shape[0], (W + 2 * a.frames) / photo.shape[1])
                size = (int(np.ceil(photo.shape[1] * scale)), int(np.ceil(photo.shape[0] * scale)))
                photo = np.asarray(Image.fromarray(photo).resize(size, Image.LANCZOS))
            src, marked = d / f"src{k}.mp4", d / f"marked{k}.mp4"
            write_clip(photo, src, a.frames)
            msg = int(rng.integers(0, wm.capacity()["max_int"] + 1))
            embed_video(wm, src, marked, wm.encode_message(msg), crf=18)
            for name, vf in EDITS.items():
                edited = d / f"edit{k}.mp4"
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(marked), "-vf", vf, "-c:v", "libx264",
                                "-crf", "23", "-pix_fmt", "yuv420p", str(edited)], check=True)
                t0 = time.time()
                r = extract_video(wm, edited)
                times[name] += time.time() - t0
                results[name].append(bool(r.detected and r.message == msg))
                print(k, name, r.detected, r.message == msg, f"{r.p_value:.2e}", flush=True)
            t0 = time.time()
            r = extract_video(wm, src)  # the clip before marking: every stage runs, nothing may be found
            clean_s += time.time() - t0
            clean.append(bool(r.detected))
            print(k, "unmarked", r.detected, f"{r.p_value:.2e}", flush=True)
    lines = [f"# `{wm.name}`: marked clips after a platform's geometric edits, read by the video extractor", "",
             f"Command: `{cmd}`", "",
             f"{a.n} validation photos (seed 0), each a {W} x {H} clip of {a.frames} frames panning 2 px per frame, "
             "marked (H.264 CRF 18), edited and re-encoded by ffmpeg (libx264 CRF 23). The extractor runs the "
             "model's default search over the frames; one torch thread. "
             "x = message read back exactly and detected, . = not.", "",
             "| edit (ffmpeg filter) | message exact | per clip | s per clip |", "|---|---:|---|---:|"]
    for name, vf in EDITS.items():
        ok = results[name]
        lines.append(f"| {name} (`{vf}`) | {sum(ok)}/{len(ok)} | {''.join('x' if o else '.' for o in ok)} | "
                     f"{times[name] / len(ok):.1f} |")
    lines.append(f"| unmarked: the source clip (! = a false positive) | detected {sum(clean)}/{len(clean)}"
                 f" | {''.join('!' if c else '.' for c in clean)} | {clean_s / len(clean):.1f} |")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
