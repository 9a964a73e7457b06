"""How often the rotation stage's lattice estimate (robusthide.watermark.sync.lattice_angles) finds the angle
of a turned geo256 mark (session 18). Usage, from the repository root:

    .venv/bin/python docs/scripts/lattice_angle_probe.py 6 10

(6 photos of data/photos/train, every 13th from the 4th in name order; embed with 10 refinement steps). Each
photo is turned by 8, -12, 20, -30 and 40 degrees, with black corners and straightened; the script prints the
rank of the true angle (within 1 degree) among the estimate's first 6 candidates (9 = not among them) and the
shares ranked first / in the first two / in the first three.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from robusthide import Watermarker
from robusthide.evaluation.attacks_grammar import attack_runner
from robusthide.watermark import sync

ANGLES = (8, -12, 20, -30, 40)


def main(n: int, refine: int) -> None:
    torch.set_num_threads(1)
    files = sorted(Path("data/photos/train").iterdir())[3::13][:n]
    geo = Watermarker.from_pretrained("geo256")
    dec = geo.model.decoder
    ranks = []
    for f in files:
        im = Image.open(f).convert("RGB")
        im.thumbnail((512, 512))
        cover = np.asarray(im)
        marked = geo.embed(cover, 0x1234, refine=refine)
        row = []
        for a in ANGLES:
            for fill in ("", ",fill=crop"):
                x = attack_runner(f"rotate:{a}{fill}")(marked[None], cover[None], seed=0)[0][0]
                t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float() / 255
                whole = {"flip": False, "angle": 0.0, "kx": 1.0, "ky": 1.0}
                fm, _ = sync.pooled_maps(dec, t, 256, [whole])[0]
                est = sync.lattice_angles(fm, dec.tile, t.shape[-1] / t.shape[-2], k=6)
                row.append(next((i for i, (e, _) in enumerate(est) if abs(e - a) <= 1.0), 9))
        ranks += row
        print(f.name[:22], row, flush=True)
    r = np.array(ranks)
    print(f"first {(r == 0).mean():.2f}  first two {(r <= 1).mean():.2f}  first three {(r <= 2).mean():.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
