"""Can a whole-image model read a crop anchored at a corner, the aspect kept (a phone editor's corner drag)?
(issue 19; docs/geometry.md, "Status (session 23)"; ``--model lean128-r6`` in session 30).

Such a crop keeps the top-left (or another) corner of the photo and the fraction k of each side; the staged
search has no hypothesis for it (its crop stage tries centred crops, its reframing stage bands whose aspect
changed). This probe reads each crop under the one hypothesis that knows k and the corner (``affine_views`` with
``kx = ky = k + e`` and the box moved into that corner), for an error e in k:

* ``oracle``: the first 8 validation photos (long side at most 1024 px), marked, cut to k = 0.95 ... 0.71 (90 to
  50 % of the area) at each of the 4 corners, saved as JPEG 75; e = 0;
* ``tolerance``: the next 6 photos, k = 0.9 and 0.8 at the 4 corners, e = -0.008 ... +0.008.

A message counts when it is exact and detected at the design rate 1e-6 with this one hypothesis (by the model's
own tests: the soft-decision one too where its weights carry a share), and "in a search" when its p-value is also
below 3e-10: what a stage of about 300 hypotheses with a tenth of the budget would ask of each (1e-6 x 0.1 / 300).
``median_errors``: the raw bit errors of the read (before error correction), median over the reads.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/corner_crop_probe.py --out docs/results/corner-crop-probe.json
    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/corner_crop_probe.py --model lean128-r6 \
        --out docs/results/corner-crop-probe-lean128-r6.json
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from robusthide.training.data import list_images
from robusthide.watermark.sync import affine_views, decode_search
from robusthide.watermark.watermarker import Watermarker

CORNERS = {"top-left": (-1, -1), "top-right": (1, -1), "bottom-left": (-1, 1), "bottom-right": (1, 1)}
SEARCH_P = 3e-10


def corner_crop(marked: np.ndarray, k: float, corner: str) -> torch.Tensor:
    """The k x k corner of ``marked`` (uint8 H x W x 3) through JPEG 75, as 1 x 3 x h x w in [0, 1]."""
    sx, sy = CORNERS[corner]
    h0, w0 = marked.shape[:2]
    w, h = round(w0 * k), round(h0 * k)
    x0, y0 = (0 if sx < 0 else w0 - w), (0 if sy < 0 else h0 - h)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(marked[y0:y0 + h, x0:x0 + w])).save(buf, "JPEG", quality=75)
    return torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1)[None].float() / 255


def read(wm: Watermarker, x: torch.Tensor, k: float, corner: str, errors: tuple[float, ...], msg: int
         ) -> list[tuple[bool, float, int]]:
    """(exact and detected, p-value, raw bit errors) of the crop read under the corner hypothesis with k + e, per
    error e."""
    sx, sy = CORNERS[corner]
    hyps = [{"flip": False, "angle": 0.0, "kx": k + e, "ky": k + e, "ox": sx * (1 - k - e), "oy": sy * (1 - k - e)}
            for e in errors]
    with torch.no_grad():
        logits = wm.model.decoder(affine_views(x, wm.model.size, hyps)).float()
    sent = torch.as_tensor(np.asarray(wm.encode_message(msg)), dtype=torch.bool)
    out = []
    for j in range(len(errors)):
        r, _ = decode_search(logits[j:j + 1], wm.n_bits, soft_share=wm.soft_share)
        out.append((bool(r.detected and r.message == msg), float(r.p_value), int(((logits[j] > 0) != sent).sum())))
    return out


def tally(reads: list[tuple[bool, float, int]]) -> dict[str, float | int]:
    return {"n": len(reads), "exact": sum(ok for ok, _, _ in reads),
            "exact_in_a_search": sum(ok and p <= SEARCH_P for ok, p, _ in reads),
            "median_p": float(np.median([p for _, p, _ in reads])),
            "median_errors": float(np.median([e for _, _, e in reads]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", default="default", help="a zoo name or a weights file (default: default)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained(a.model)
    photos = list_images("data/photos/train", "val")
    doc: dict = {"model": a.model, "n_bits": wm.n_bits, "search_p": SEARCH_P, "oracle": {}, "tolerance": {}}
    parts = (("oracle", photos[:8], (0.95, 0.9, 0.85, 0.8, 0.71), (0.0,)),
             ("tolerance", photos[8:14], (0.9, 0.8), (-0.008, -0.004, -0.002, 0.0, 0.002, 0.004, 0.008)))
    for part, files, ks, errors in parts:
        reads: dict[tuple[float, float], list[tuple[bool, float, int]]] = {}
        for i, f in enumerate(files):
            im = Image.open(f).convert("RGB")
            im.thumbnail((1024, 1024))
            msg = 300 + i
            marked = wm.embed(np.asarray(im), msg)
            for k in ks:
                for corner in CORNERS:
                    for e, r in zip(errors, read(wm, corner_crop(marked, k, corner), k, corner, errors, msg)):
                        reads.setdefault((k, e), []).append(r)
        doc[part] = {f"k={k:g} e={e:+.3f}": {"area": round(k * k, 3), **tally(v)} for (k, e), v in reads.items()}
    a.out.write_text(json.dumps(doc, indent=1) + "\n")
    for part in ("oracle", "tolerance"):
        for key, v in doc[part].items():
            print(f"{part:9s} {key:16s} area {v['area']:.2f}: exact {v['exact']}/{v['n']}, in a search "
                  f"{v['exact_in_a_search']}/{v['n']}, median p {v['median_p']:.1e}, "
                  f"median raw errors {v['median_errors']:g} of {wm.n_bits}")


if __name__ == "__main__":
    main()
