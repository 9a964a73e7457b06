"""Issue 19 diagnosis (session 17): where a failed geometry search loses a photo: the ranking, or the reading.

For each chosen validation photo (512 px, seed 0, a random 60-bit integer as in geo_search_probe.py, refine 0),
the edited image goes through the full geometry search (``fold_search_logits``) and every hypothesis is scored
against the true word. Printed per photo: the hypothesis with the lowest raw BER (its rank by the search's
shift z-score, its side fractions, fold offset, phase, angle), the top-ranked hypothesis, the lowest BER among
the 64 the search decodes, and, for the half-area crops, the best reading at the true geometry (side fractions
0.7071, x 0.99 / 1 / 1.01, fold offsets 0-0.75, moves of 0-2 px; ``true_geometry_reading``).

Run: .venv/bin/python docs/scripts/geo_rank_probe.py WEIGHTS SPEC [--n 16] [--photos 5,6,7,9,10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from geo_oracle_probe import true_geometry_reading

from robusthide import Watermarker
from robusthide.evaluation.attacks_grammar import attack_runner
from robusthide.evaluation.images import image_set
from robusthide.watermark import sync


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("spec")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--photos", default="", help="comma-separated indices among the --n photos (default: all)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained(a.weights)
    wm.model.size = 256
    dec = wm.model.decoder
    items = image_set("data/photos/train", n=a.n, size=512, seed=0, split="val")
    covers = np.stack([it.load() for it in items])
    rng = np.random.default_rng(0)
    msgs = [int(rng.integers(0, 2 ** 60)) for _ in items]
    words = [wm.encode_message(m) for m in msgs]
    idx = [int(i) for i in a.photos.split(",")] if a.photos else list(range(a.n))
    marked = np.stack([wm.embed(covers[i], msgs[i], refine=0) for i in idx])
    att = attack_runner(a.spec)(marked, covers[idx], seed=0)[0]
    moves = ((0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (2, 2))
    for j, i in enumerate(idx):
        x = torch.from_numpy(att[j]).permute(2, 0, 1)[None].float() / 255
        t0 = time.time()
        with torch.no_grad():
            lg, hyps = sync.fold_search_logits(dec, x, 256)
        z = sync.ranking_scores(lg, hyps)
        err = ((lg > 0).numpy() != words[i]).mean(-1)
        order = z.argsort(descending=True).numpy()
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        b, top = int(err.argmin()), int(order[0])
        h = hyps[b]
        oracle = float("nan")
        if "crop:0.5" in a.spec:
            with torch.no_grad():
                oracle = true_geometry_reading(dec, att[j], words[i], 0.7071, 0.7071, (0.0, 0.25, 0.5, 0.75),
                                               moves)[0]
        print(f"photo {i}: {time.time() - t0:.1f}s best BER {err[b] * 100:.1f}% rank {rank[b]} kx {h['kx']:.4f} "
              f"ky {h['ky']:.4f} off {h['offset']} ph {h['phase']} ang {h['angle']} | top1 BER {err[top] * 100:.1f}% "
              f"kx {hyps[top]['kx']:.4f} ky {hyps[top]['ky']:.4f} | true geometry {oracle * 100:.1f}% | "
              f"lowest BER among the 64 decoded {err[order[:64]].min() * 100:.1f}%", flush=True)


if __name__ == "__main__":
    main()
