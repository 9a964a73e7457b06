"""PSNR and bits per pixel of JPEG 2000 at paper 000's settings on 128 x 128 crops (docs/results/j2k-x1000.md).

Paper 000 Table 2 tests JPEG 2000 at "quality" 100, 250, 500, 750 and 900 and trains at 500. This script codes
128 x 128 images from the validation photos (two sets, see :func:`images`) with our ``jpeg2000`` codec under
three readings of that number and writes the PSNR, the share of images coded losslessly and the mean bits per
pixel:

* ``x1000=V``: OpenCV's ``IMWRITE_JPEG2000_COMPRESSION_X1000`` (OpenJPEG rate = compression ratio
  1000 / V), the project's reading so far;
* ``bpp=V/1000``: V thousandths of a bit per pixel (compression ratio 24000 / V);
* ``psnr=V/10``: a target PSNR of V/10 dB (Pillow's ``quality_mode='dB'``).

JPEG at Q = 10, 50 and 90 on the same crops is measured for reference (paper 000 Table 1's attacks).

Run: ``.venv/bin/python docs/scripts/j2k_x1000.py --n 64`` (writes docs/results/j2k-x1000.json; the .md is
written by hand from it).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from robusthide.codecs import get_codec
from robusthide.evaluation.images import image_set
from robusthide.metrics import psnr

VALUES = (100, 250, 500, 750, 900)
READINGS = {
    "x1000": lambda v: f"jpeg2000:x1000={v}",
    "bpp": lambda v: f"jpeg2000:bpp={v / 1000:g}",
    "psnr": lambda v: f"jpeg2000:psnr={v / 10:g}",
}
REFERENCE = ("jpeg:q=10", "jpeg:q=50", "jpeg:q=90")


def images(kind: str, data: str, n: int, size: int, seed: int) -> np.ndarray:
    """``crops``: one seeded ``size``-px crop of each full-resolution validation photo (at most ``n``);
    ``reproduce``: the test images of ``robusthide reproduce`` (``n`` squares of 1-4x ``size`` from the photos
    downscaled to 512 px, resized to ``size``: the training crops' distribution)."""
    if kind == "crops":
        return np.stack([it.load() for it in image_set(data, n=n, size=size, seed=seed, split="val")])
    from robusthide.evaluation.reproduce import test_images

    return np.stack(test_images(data, n, size, seed=seed))


def measure(data: str, n: int, size: int, seed: int, kind: str = "crops") -> dict:
    batch = images(kind, data, n, size, seed)
    rows = []
    cases = [(r, v, f(v)) for r, f in READINGS.items() for v in VALUES]
    cases += [("reference", int(s.rpartition("=")[2]), s) for s in REFERENCE]
    for reading, v, spec in cases:
        res = get_codec(spec)(batch)
        p = [psnr(batch[i], res.images[i]) for i in range(len(batch))]
        finite = [x for x in p if math.isfinite(x)]
        rows.append({"reading": reading, "value": v, "spec": spec,
                     "psnr_mean_finite": float(np.mean(finite)) if finite else None,
                     "psnr_median": float(np.median(p)),
                     "lossless_share": float(np.mean([not math.isfinite(x) for x in p])),
                     "psnr_min": float(min(p)),
                     "bpp_mean": float(np.mean(res.bpp()))})
    return {"data": data, "split": "val", "images": kind, "n": len(batch), "size": size, "seed": seed, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/photos/train")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/results/j2k-x1000.json")
    a = ap.parse_args()
    doc = {"command": f".venv/bin/python docs/scripts/j2k_x1000.py --n {a.n} --size {a.size} --seed {a.seed}",
           "sets": [measure(a.data, a.n, a.size, a.seed, kind) for kind in ("crops", "reproduce")]}
    Path(a.out).write_text(json.dumps(doc, indent=1))
    for res in doc["sets"]:
        print(f"{res['images']}: {res['n']} images of {res['size']}x{res['size']}")
        for r in res["rows"]:
            pm = "-" if r["psnr_mean_finite"] is None else f"{r['psnr_mean_finite']:.2f}"
            print(f"  {r['spec']:<24} PSNR(finite) {pm:>6}  median {r['psnr_median']:6.2f}  "
                  f"lossless {100 * r['lossless_share']:5.1f} %  min {r['psnr_min']:.2f}  bpp {r['bpp_mean']:.3f}")


if __name__ == "__main__":
    main()
