"""Reframing as platforms do it, read by the default model (docs/geometry.md, "Status (session 20)").

The first N validation photos (long side at most 1536 px) are marked, then the centre is cut to 4:5, 1:1 and
16:9 (where the photo is not that already), resized so that its short side is 1080 px (16:9: its height) and
saved as JPEG 75. Each is read four ways: as it is (``--search none``), with the default (staged) search,
with the reframing search alone, and by an oracle that pads it back to the original's aspect ratio with its
mean colour (what the best reframing hypothesis can do). Also: the same cut resized back to the original's
shape (the ``reframe:WxH`` codec, then JPEG 75), read with the default search. One JSON line per case, then
the counts.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/reframe_probe.py --n 8
"""

from __future__ import annotations

import argparse
import io
import json

import numpy as np
import torch
from PIL import Image

from robusthide.codecs import get_codec
from robusthide.training.data import list_images
from robusthide.watermark.watermarker import Watermarker

TARGETS = {"4:5": 0.8, "1:1": 1.0, "16:9": 16 / 9}


def _jpeg(im: Image.Image) -> np.ndarray:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=75)
    return np.asarray(Image.open(buf).convert("RGB"))


def _padded(c: np.ndarray, aspect: float) -> np.ndarray:
    """``c`` centred in a frame of ``aspect`` (width / height), the rest its mean colour."""
    ch, cw = c.shape[:2]
    hh, ww = (ch, round(ch * aspect)) if aspect > cw / ch else (round(cw / aspect), cw)
    out = np.empty((hh, ww, 3), np.uint8)
    out[:] = c.mean((0, 1)).round().astype(np.uint8)
    y0, x0 = (hh - ch) // 2, (ww - cw) // 2
    out[y0:y0 + ch, x0:x0 + cw] = c
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--data", default="data/photos/train")
    a = ap.parse_args()
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained("default")
    rows = []
    for i, f in enumerate(list_images(a.data, "val")[: a.n]):
        im = Image.open(f).convert("RGB")
        im.thumbnail((1536, 1536))
        cover = np.asarray(im)
        h, w = cover.shape[:2]
        msg = 1234 if i % 2 else 77
        marked = wm.embed(cover, msg)
        for name, asp in TARGETS.items():
            if abs(w / h - asp) < 0.02:
                continue
            cw, ch = (round(h * asp), h) if asp < w / h else (w, round(w / asp))
            x0, y0 = (w - cw) // 2, (h - ch) // 2
            s = 1080 / (ch if name == "16:9" else min(cw, ch))
            post = _jpeg(Image.fromarray(marked[y0:y0 + ch, x0:x0 + cw]).resize((round(cw * s), round(ch * s)),
                                                                                 Image.BICUBIC))
            back = get_codec(f"reframe:{name.replace(':', 'x')}|jpeg:q=75")(marked[None]).images[0]
            reads = {"none": wm.extract(post, search="none"), "staged": wm.extract(post),
                     "reframe": wm.extract(post, search="reframe"),
                     "oracle": wm.extract(_padded(post, w / h), search="none"), "resized_back": wm.extract(back)}
            row = {"file": f.name, "size": [w, h], "to": name,
                   **{k: bool(r.detected) and r.message == msg for k, r in reads.items()},
                   **{f"{k}_p": float(r.p_value) for k, r in reads.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({k: f"{sum(r[k] for r in rows)} of {len(rows)}"
                      for k in ("none", "staged", "reframe", "oracle", "resized_back")}))


if __name__ == "__main__":
    main()
