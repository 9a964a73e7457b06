"""Issue 19 probe (session 14): message-exact rate of a periodic ``geo`` model under the issue's geometric edits,
read by the library's extractor (``Watermarker.extract``, geometry search by default: the fractional-fold search
of robusthide/watermark/sync/) at a working size of ``--size`` px.

Validation photos (512-px crops, seed 0), each marked with a random 60-bit integer (schema ``balanced``, refine 0),
edited with the codec interface's specs (resized back to 512 px), and read; a photo counts when the message comes
back exactly and is detected (p-value paying for every hypothesis the search could have read).

Run: .venv/bin/python docs/scripts/geo_search_probe.py WEIGHTS --out docs/results/NAME.md [--n 8] [--size 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from robusthide import Watermarker
from robusthide.evaluation.attacks_grammar import attack_runner
from robusthide.evaluation.images import image_set

EDITS = ("none", "jpeg:q=50", "flip:h", "crop:0.7", "crop:0.7,x=0.9,y=0.1", "crop:w=0.75,x=0",
         "crop:0.5,x=0.2,y=0.8", "crop:0.5,x=1,y=1|jpeg:q=75", "crop:w=0.4,x=0.3", "reframe:4x5", "reframe:16x9",
         "reframe:9x16|jpeg:q=75", "rotate:2", "rotate:5,fill=crop")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained(a.weights)
    wm.model.size = a.size
    rng = np.random.default_rng(0)
    items = image_set("data/photos/train", n=a.n, size=512, seed=0, split="val")
    covers = np.stack([it.load() for it in items])
    msgs = [int(rng.integers(0, 2 ** 60)) for _ in items]
    marked = np.stack([wm.embed(c, m, refine=0) for c, m in zip(covers, msgs)])
    cmd = f".venv/bin/python docs/scripts/geo_search_probe.py {a.weights} --out {a.out} --n {a.n} --size {a.size}"
    lines = [f"# `{wm.name}` under geometric edits, read by the geometry search", "", f"Command: `{cmd}`", "",
             f"{a.n} validation photos (512 px, seed 0), working size {a.size} px, refine 0, one torch thread. "
             "x = message read back exactly and detected, . = not.", "",
             "| edit | message exact | per photo | s per image |", "|---|---:|---|---:|"]
    for spec in EDITS:
        att = marked if spec == "none" else attack_runner(spec)(marked, covers, seed=0)[0]
        t0 = time.time()
        ok = []
        for img, m in zip(att, msgs):
            r = wm.extract(img)
            ok.append(bool(r.detected and r.message == m))
        row = (f"| `{spec}` | {sum(ok)}/{len(ok)} | {''.join('x' if o else '.' for o in ok)} | "
               f"{(time.time() - t0) / len(ok):.1f} |")
        lines.append(row)
        print(row, flush=True)
    open(a.out, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
