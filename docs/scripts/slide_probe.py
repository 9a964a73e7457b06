"""How precisely must a band cut anywhere along a photo be placed for the default model to read it, and do the
windows of a wide canvas read it as the band's own view does? (issue 19; docs/geometry.md, "Status (session 26)").

A platform's or a phone editor's reframing keeps a band of the photo (a 1:1 square of a 4:3 photo keeps 0.75 of
its width) wherever the user dragged it. The reframing stage tries the centre and the two ends only. This probe
takes the first ``--n`` validation photos, cut to 4:3, 16:9 or 3:2 at 720 px high and marked, keeps a band at a
position off the centre and off the ends (1:1 at 0.3 and 0.8 of the way along, 1:1 at 0.2 of a 16:9 photo, 4:5 at
0.65 of a 3:2 one), saves it as JPEG 75, and reads it under the one band hypothesis with its offset off by e
(canvas half-sides; one working pixel of the decoder is 2 / 128 = 0.0156):

* ``tolerance``: message exact and detected at 1e-6 with this one hypothesis, and "in a search" when its p-value
  is also below 1e-10 (about what a stage of 1000 hypotheses with a tenth of the budget asks of each);
* ``wide``: at e = 0, the same read from the window of a wide canvas's decoder map (``slide_logits``' way, in
  float32) against the band's own view: same decision, and the share of equal bit signs.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/slide_probe.py --n 8 --out docs/results/slide-probe
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import robusthide.training.hardware as hardware
import robusthide.watermark.sync as sync
from robusthide.training.data import list_images
from robusthide.watermark.sync import affine_views, decode_search
from robusthide.watermark.watermarker import Watermarker

ERRORS = (-0.016, -0.012, -0.008, -0.004, 0.0, 0.004, 0.008, 0.012, 0.016)
#: (frame aspect, band aspect, position along the frame)
CASES = ((4 / 3, 1.0, 0.3), (4 / 3, 1.0, 0.8), (16 / 9, 1.0, 0.2), (3 / 2, 0.8, 0.65))
SEARCH_P = 1e-10


def band_crop(marked: np.ndarray, band_aspect: float, pos: float) -> tuple[torch.Tensor, float, float]:
    """The band of ``marked`` (uint8 H x W x 3) of aspect ``band_aspect`` at ``pos`` along the width, through JPEG
    75, as 1 x 3 x h x w in [0, 1], with its width fraction r and offset (canvas half-sides)."""
    h, w = marked.shape[:2]
    bw = round(h * band_aspect)
    x0 = round(pos * (w - bw))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(marked[:, x0:x0 + bw])).save(buf, "JPEG", quality=75)
    x = torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    r = bw / w
    return x, r, 2 * x0 / w + r - 1


def framed(im: Image.Image, aspect: float, height: int = 720) -> np.ndarray:
    """The photo's centre cut to ``aspect`` and resized to ``height`` rows."""
    w0, h0 = im.size
    cw, ch = (round(h0 * aspect), h0) if w0 / h0 > aspect else (w0, round(w0 / aspect))
    box = ((w0 - cw) // 2, (h0 - ch) // 2, (w0 - cw) // 2 + cw, (h0 - ch) // 2 + ch)
    return np.asarray(im.crop(box).resize((round(height * aspect), height), Image.LANCZOS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    a = ap.parse_args()
    torch.set_num_threads(1)
    hardware.cpu_has_bf16 = lambda: False  # the wide read in float32: the approximation of the windows alone
    wm = Watermarker.from_pretrained("default")
    dec, size = wm.model.decoder, wm.model.size
    tol: dict[str, list[tuple[bool, float]]] = {}
    wide = {"reads": 0, "same_decision": 0, "sign_agreement": []}
    for i, f in enumerate(list_images("data/photos/train", "val")[:a.n]):
        im = Image.open(f).convert("RGB")
        for aspect, band, pos in CASES:
            msg = 500 + i
            x, r, off = band_crop(wm.embed(framed(im, aspect), msg), band, pos)
            hyps = [{"flip": False, "angle": 0.0, "kx": r, "ky": 1.0, "ox": off + e, "oy": 0.0, "axis": "x",
                     "band": round(r, 4)} for e in ERRORS]
            with torch.no_grad():
                own = dec(affine_views(x, size, hyps)).float()
            for j, e in enumerate(ERRORS):
                res, _ = decode_search(own[j:j + 1], wm.n_bits)
                tol.setdefault(f"{aspect:.3f} {band:.2f} {pos} {e:+.3f}", []).append(
                    (bool(res.detected and res.message == msg), float(res.p_value)))
            exact = hyps[ERRORS.index(0.0)]
            fast = sync.slide_logits(dec, x, size, [exact], top=0)  # top 0: every row from the wide canvas
            a_res, _ = decode_search(own[ERRORS.index(0.0)][None], wm.n_bits)
            b_res, _ = decode_search(fast, wm.n_bits)
            wide["reads"] += 1
            wide["same_decision"] += int((a_res.detected, a_res.message) == (b_res.detected, b_res.message))
            wide["sign_agreement"].append(float(((fast[0] > 0) == (own[ERRORS.index(0.0)] > 0)).float().mean()))
    rows = []
    for key, v in tol.items():
        aspect, band, pos, e = key.split()
        rows.append({"frame": float(aspect), "band": float(band), "position": float(pos), "error": float(e),
                     "n": len(v), "exact": sum(ok for ok, _ in v), "exact_in_a_search": sum(ok and p <= SEARCH_P
                                                                                          for ok, p in v),
                     "median_p": float(np.median([p for _, p in v]))})
    agree = wide.pop("sign_agreement")
    wide.update(sign_agreement_min=min(agree), sign_agreement_median=float(np.median(agree)))
    doc = {"command": f"OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/slide_probe.py --n {a.n} --out {a.out}",
           "search_p": SEARCH_P, "tolerance": rows, "wide": wide}
    a.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    names = {1.333: "4:3", 1.778: "16:9", 1.5: "3:2"}
    lines = ["# Slide probe: a band cut anywhere along a photo, read under its one hypothesis", "",
             f"Command: `{doc['command']}`", "",
             f"{a.n} validation photos, JPEG 75 after the cut. Message exact under the one hypothesis (in a search: "
             f"also p <= {SEARCH_P:g}), the band's offset off by e canvas half-sides (1 working pixel = 0.0156).", "",
             "| frame, band, position | " + " | ".join(f"e {e:+.3f}" for e in ERRORS) + " |",
             "|---|" + "---:|" * len(ERRORS)]
    for aspect, band, pos in CASES:
        cells = [next(r for r in rows if r["frame"] == round(aspect, 3) and r["band"] == band
                      and r["position"] == pos and r["error"] == e) for e in ERRORS]
        lines.append(f"| {names[round(aspect, 3)]}, {band:g} x its height, {pos} | "
                     + " | ".join(f"{c['exact']} ({c['exact_in_a_search']})" for c in cells) + " |")
    lines += ["", f"Wide canvas against the band's own view at e = 0 (float32): the same decision on "
              f"{wide['same_decision']} of {wide['reads']}, bit signs equal on {wide['sign_agreement_median']:.3f} "
              f"(median) and {wide['sign_agreement_min']:.3f} (least) of the 64.", ""]
    a.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
