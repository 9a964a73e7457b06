"""Can the embed-time refinement make a crop readable? (issue 19, session 31: no)

The refinement (robusthide/watermark/refine.py) adjusts each image's residual against the fixed decoder with a hinge
on the decoder's logits for the marked image, its JPEG and the real codecs (:meth:`Refiner.hinge_views`). This probe
adds views of sampled crops to the hinge: each step, ``ncrops`` boxes (area ``amin``..``amax``, log-aspect within
+-0.5, anywhere in the frame), each the working-size JPEG of the marked image kept inside the box and the rest filled
with the box's mean colour (what a search's placed-back crop looks like). The first ``--n`` validation photos (long
side 1024) are then read as docs/scripts/corner_crop_probe.py reads them: cut to k = 0.71 and 0.8 of each side at the
four corners, JPEG 75, at the true geometry, and whole (k = 1). ``--variant name:steps:ncrops:amin:amax`` (ncrops 0:
the shipped refinement with that many steps).

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/crop_refine_probe.py --n 4 --variant base:10:0:0:0 \\
        --variant crops:10:4:0.35:0.8 --variant crops:40:4:0.35:0.8 --variant crops:40:8:0.35:0.8 \\
        --out docs/results/crop-refine-probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from corner_crop_probe import CORNERS, corner_crop, read  # noqa: E402

from robusthide.training.data import list_images  # noqa: E402
from robusthide.watermark.refine import Refiner  # noqa: E402
from robusthide.watermark.watermarker import Watermarker  # noqa: E402


def crop_views(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(N x G) x C x S x S: each image of ``x`` kept inside each box (y0, y1, x0, x1 in [0, 1]), the rest its mean."""
    n, c, s, _ = x.shape
    u = (torch.arange(s, dtype=x.dtype) + 0.5) / s
    my = ((u[None] >= boxes[:, 0:1]) & (u[None] <= boxes[:, 1:2])).to(x.dtype)
    mx = ((u[None] >= boxes[:, 2:3]) & (u[None] <= boxes[:, 3:4])).to(x.dtype)
    m = (my[:, :, None] * mx[:, None, :])[:, None]
    xs = x[:, None]
    fill = ((xs * m).sum(dim=(-1, -2), keepdim=True) / m.sum(dim=(-1, -2), keepdim=True)).detach()
    return (xs * m + fill * (1 - m)).reshape(-1, c, s, s)


class CropRefiner(Refiner):
    """The refinement with ``n_crops`` sampled crop views of the JPEG view added to its hinge (seeded, so the marked
    image is reproducible). Only for one image at a time (the views of a batch would be shared)."""

    n_crops, amin, amax = 0, 0.35, 0.8
    gen = torch.Generator().manual_seed(0)

    def hinge_views(self, full, x, jpeg):
        views = super().hinge_views(full, x, jpeg)
        if not self.n_crops:
            return views
        a = self.amin + (self.amax - self.amin) * torch.rand(self.n_crops, generator=self.gen)
        r = torch.exp((torch.rand(self.n_crops, generator=self.gen) * 2 - 1) * 0.5)
        h, w = (a / r).sqrt().clamp(max=1.0), (a * r).sqrt().clamp(max=1.0)
        y0 = (1 - h) * torch.rand(self.n_crops, generator=self.gen)
        x0 = (1 - w) * torch.rand(self.n_crops, generator=self.gen)
        crops = crop_views(views[1], torch.stack([y0, y0 + h, x0, x0 + w], 1))
        return views + list(crops.split(x.shape[0]))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lean128-r6")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--variant", action="append", required=True, help="name:steps:ncrops:amin:amax")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained(a.model)
    ims = []
    for f in list_images("data/photos/train", "val")[:a.n]:
        im = Image.open(f).convert("RGB")
        im.thumbnail((1024, 1024))
        ims.append(np.asarray(im))
    doc: dict = {"model": a.model, "n": a.n, "variants": {}}
    for v in a.variant:
        _, steps, nc, amin, amax = v.split(":")
        cfg = replace(wm.refine_config(None), steps=int(steps))
        r = CropRefiner(wm.model, cfg)
        r.n_crops, r.amin, r.amax = int(nc), float(amin), float(amax)
        r.gen = torch.Generator().manual_seed(0)
        wm._refiners = {cfg: r}
        quality, seconds, reads = [], [], {}
        for i, im in enumerate(ims):
            t0 = time.perf_counter()
            marked = wm.embed(im, 300 + i, refine=cfg)
            seconds.append(time.perf_counter() - t0)
            quality.append(psnr(marked, im))
            for k in (0.71, 0.8):
                for corner in CORNERS:
                    reads.setdefault(k, []).extend(read(wm, corner_crop(marked, k, corner), k, corner, (0.0,), 300 + i))
            reads.setdefault(1.0, []).extend(read(wm, corner_crop(marked, 1.0, "top-left"), 1.0, "top-left", (0.0,),
                                                  300 + i))
        out = {"psnr": round(float(np.mean(quality)), 2), "embed_s": round(float(np.mean(seconds)), 2)}
        for k, rr in reads.items():
            out[f"k={k}"] = {"exact": sum(ok for ok, _, _ in rr), "n": len(rr),
                             "median_errors": float(np.median([e for _, _, e in rr]))}
        doc["variants"][v] = out
        print(v, json.dumps(out), flush=True)
    a.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
