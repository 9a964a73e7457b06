"""Issue 19 (session 16): which payload decoder reads a 256-bit ``geo`` mark after crops, at the true geometry.

For each of ``--n`` validation photos (512 px, seed 0, refine 0) and each edit, the marked image is edited, read
by the decoder at the edit's exact side fractions (x 0.99, 1, 1.01; the 4 renderings moved by 0 or 2 px; fold
offsets 0 and 0.5; every cyclic shift), and the reading closest to the embedded word is kept: what a search that
finds the right hypothesis hands to the payload decoder. Its errors and reliabilities (|logit|) are then put on
a random codeword of each code compared (a linear code's decoding does not depend on the codeword), and each
decoder counts the photos whose codeword it returns with a p-value (robusthide.payload.detection) at or below
``--threshold``: by default 1.26e-15, the per-hypothesis threshold of the full geometry search's phase 0
(1e-6 spread over its 47 616 weighted hypotheses, robusthide/watermark/sync/).

Decoders: bounded-distance BCH (t errors, as bchlib decodes); ordered-statistics decoding of order 2
(robusthide/payload/osd.py) on the 256-bit schemas ``robust`` (72 data bits) and ``balanced`` (108); with
``--ldpc``, the ``ldpc`` package's BP+OSD decoder (OSD-CS of order 40; ``pip install ldpc``) on ``robust``.

Run: .venv/bin/python docs/scripts/osd_compare.py WEIGHTS [--n 16] [--ldpc]
Weights: robusthide export runs/geo256-aa3 -o /tmp/aa3.safetensors --name geo256-aa3 --size 256
(after ``mkdir -p runs && cp -r resume/geo256-aa3 runs/``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from geo_oracle_probe import true_geometry_reading  # docs/scripts, beside this script

from robusthide import Watermarker
from robusthide.evaluation.attacks_grammar import attack_runner
from robusthide.evaluation.images import image_set
from robusthide.payload import get_schema, p_value
from robusthide.payload.codec import _subcode
from robusthide.payload.osd import ordered_statistics_decode

MOVES = ((0, 0), (0, 2), (2, 0), (2, 2))
EDITS = (("none", 1, 1), ("jpeg:q=50", 1, 1), ("crop:0.7,x=0.9,y=0.1", .8367, .8367), ("crop:w=0.4,x=0.3", .4, 1),
         ("crop:0.5,x=0.2,y=0.8", .7071, .7071), ("crop:0.5,x=1,y=1|jpeg:q=75", .7071, .7071),
         ("crop:0.3,x=0.6,y=0.3", .5477, .5477), ("crop:0.5,x=0.5,y=0.2|jpeg:q=60", .7071, .7071))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--threshold", type=float, default=1.26e-15)
    ap.add_argument("--ldpc", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained(a.weights)
    wm.model.size = 256
    items = image_set("data/photos/train", n=a.n, size=512, seed=0, split="val")
    covers = np.stack([it.load() for it in items])
    rng = np.random.default_rng(0)
    msgs = [int(rng.integers(0, 2 ** 60)) for _ in items]
    words = np.stack([wm.encode_message(m) for m in msgs])
    marked = np.stack([wm.embed(c, m, refine=0) for c, m in zip(covers, msgs)])
    codes = {name: get_schema(256, name) for name in ("robust", "balanced")}
    ldpc = None
    if a.ldpc:
        from ldpc import BpOsdDecoder
        from ldpc.mod2 import nullspace

        pcm = nullspace(_subcode(codes["robust"])[1])
        pcm = (pcm.toarray() if hasattr(pcm, "toarray") else np.asarray(pcm)).astype(np.uint8)
        ldpc = (pcm, BpOsdDecoder(pcm, error_rate=0.05, max_iter=1, bp_method="minimum_sum", osd_method="OSD_CS",
                                  osd_order=40))
    cols = ["BCH robust", "BCH balanced", "OSD robust", "OSD balanced"] + (["ldpc BP+OSD robust"] if ldpc else [])
    print(f"| edit | raw BER % (mean) | {' | '.join(cols)} |")
    print("|---|---:|" + "---:|" * len(cols))
    times: dict[str, list[float]] = {c: [] for c in cols}
    with torch.no_grad():
        for spec, kx, ky in EDITS:
            att = marked if spec == "none" else attack_runner(spec)(marked, covers, seed=0)[0]
            lgs = np.stack([true_geometry_reading(wm.model.decoder, i, w, kx, ky, moves=MOVES)[1]
                            for i, w in zip(att, words)])
            errs, rels = (lgs > 0).astype(np.uint8) ^ words, np.abs(lgs)
            hits = dict.fromkeys(cols, 0)
            for z, r in zip(errs, rels):
                ne = int(z.sum())
                for name, s in codes.items():
                    hits[f"BCH {name}"] += ne <= s.t and p_value(256, s, ne) <= a.threshold
                    offset, rows = _subcode(s)
                    cw = offset ^ (rng.integers(0, 2, rows.shape[0]) @ rows % 2).astype(np.uint8)
                    t0 = time.perf_counter()
                    got = ordered_statistics_decode(cw ^ z ^ offset, r, rows, 2) ^ offset
                    times[f"OSD {name}"].append(time.perf_counter() - t0)
                    e = int((got != (cw ^ z)).sum())
                    hits[f"OSD {name}"] += bool((got == cw).all()) and p_value(256, s, e, 4) <= a.threshold
                    if ldpc and name == "robust":
                        pcm, dec = ldpc
                        dec.update_channel_probs(np.clip(1 / (1 + np.exp(np.clip(r, 0, 30))), 1e-6, 0.5 - 1e-6))
                        t0 = time.perf_counter()
                        got = (cw ^ z) ^ dec.decode((pcm @ (cw ^ z ^ offset) % 2).astype(np.uint8)).astype(np.uint8)
                        times["ldpc BP+OSD robust"].append(time.perf_counter() - t0)
                        e = int((got != (cw ^ z)).sum())
                        hits["ldpc BP+OSD robust"] += bool((got == cw).all()) and p_value(256, s, e, 4) <= a.threshold
            counts = " | ".join(f"{hits[c]}/{len(errs)}" for c in cols)
            print(f"| `{spec}` | {100 * errs.mean():.1f} | {counts} |", flush=True)
    print("\nms per decode: " + ", ".join(f"{c} {1000 * np.mean(t):.1f}" for c, t in times.items() if t))


if __name__ == "__main__":
    main()
