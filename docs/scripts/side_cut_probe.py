"""One side cut off, read by the default model (docs/geometry.md, "Status (session 21)").

The first N validation photos (long side at most 1024 px) are marked, then 10, 25 or 40 % of the width or the
height is cut off at one side (left, right, top, bottom), the rest kept as it is and saved as JPEG 75. Each is
read with the default (staged) search as it is now (reframing bands centred or at either end of the frame) and
with the reframing bands centred only (the search before session 21). One JSON line per case, then the counts
per cut and the mean seconds per read.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/side_cut_probe.py --n 8 --out docs/results/side-cut-probe.json
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from robusthide.training.data import list_images
from robusthide.watermark import sync
from robusthide.watermark.watermarker import Watermarker

KEEP = (0.9, 0.75, 0.6)
SIDES = ("left", "right", "top", "bottom")


def _jpeg(a: np.ndarray, q: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _cut(a: np.ndarray, keep: float, side: str) -> np.ndarray:
    h, w = a.shape[:2]
    if side in ("left", "right"):
        c = round(w * keep)
        return a[:, :c] if side == "left" else a[:, w - c:]
    c = round(h * keep)
    return a[:c] if side == "top" else a[h - c:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--data", default="data/photos/train")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained("default")
    every = sync.reframe_hypotheses
    centred = functools.partial(every, anchors=("centre",))
    rows = []
    for i, f in enumerate(list_images(a.data, "val")[: a.n]):
        im = Image.open(f).convert("RGB")
        im.thumbnail((1024, 1024))
        cover = np.asarray(im)
        msg = 1234 if i % 2 else 77
        marked = wm.embed(cover, msg)
        for keep in KEEP:
            for side in SIDES:
                post = _jpeg(_cut(marked, keep, side))
                reads = {}
                for name, fn in (("now", every), ("centred_only", centred)):
                    sync.reframe_hypotheses = fn  # the search looks the function up by name
                    t0 = time.perf_counter()
                    r = wm.extract(post)
                    reads[name] = (bool(r.detected) and r.message == msg, float(r.p_value), time.perf_counter() - t0)
                sync.reframe_hypotheses = every
                row = {"file": f.name, "size": [cover.shape[1], cover.shape[0]], "keep": keep, "side": side,
                       **{k: v[0] for k, v in reads.items()}, **{f"{k}_p": v[1] for k, v in reads.items()},
                       **{f"{k}_s": round(v[2], 3) for k, v in reads.items()}}
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = {"command": "OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/side_cut_probe.py --n "
                          f"{a.n}" + (f" --out {a.out}" if a.out else ""),
               **{f"{k} keep {keep}": f"{sum(r[k] for r in rows if r['keep'] == keep)} of "
                                      f"{sum(r['keep'] == keep for r in rows)}"
                  for k in ("now", "centred_only") for keep in KEEP},
               "mean seconds (now / centred only)": [round(float(np.mean([r[f"{k}_s"] for r in rows])), 3)
                                                     for k in ("now", "centred_only")]}
    print(json.dumps(summary))
    if a.out:
        Path(a.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
