"""How lattice_descent (robusthide/latent/editing.py) was chosen: on the first 3 `div2k` crops at 256 px, one
edit each (the tables' setting: Adam lr 0.1, 200 iterations, lambda5 1/288), then each variant of the greedy
lattice pass from the same y (docs/results/latent-lattice.md, "Reading"). One JSON line per image and variant.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/lattice_sweep.py

Variants: ``lattice_descent``'s switches: ``toward`` restricts the moves to y's other rounding neighbour;
``adaptive`` doubles the share moved after a kept move (up to 8 times the start); ``share`` is the start.
(True, True, 1/64) is the shipped pass.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import torch

from robusthide.latent import tables
from robusthide.latent.api import resolve_codec, resolve_decoder
from robusthide.latent.editing import EditConfig, Eq1, codec_lambda1, edit_latent, lattice_descent
from robusthide.latent.iters import _read

VARIANTS = {"free-fixed": (False, False, 1 / 256), "free-adapt": (False, True, 1 / 256),
            "toward-fixed": (True, False, 1 / 256), "toward-adapt": (True, True, 1 / 256),
            "toward-adapt-64": (True, True, 1 / 64)}


def main() -> None:
    torch.set_num_threads(1)
    codec = resolve_codec("latent-hp-q6")
    dec = resolve_decoder("resume/latent-liso/liso.safetensors")
    covers = [c.image for c in tables.covers("data/photos/train", "div2k", 3, 256, 0)]
    g = torch.Generator().manual_seed(0)
    targets = [(torch.rand(1, dec.data_depth, *x.shape[-2:], generator=g) > 0.5).float() for x in covers]
    cfg = replace(EditConfig(), lr=0.1, lambda5=0.003472, iters=200, seed=0)
    for i, (x, t) in enumerate(zip(covers, targets)):
        y = edit_latent(codec, dec, x, t, cfg).y
        print(json.dumps({"image": i, "variant": "none", **_read(codec, dec, y, x, t)}), flush=True)
        obj = Eq1(codec, dec, x, t, cfg, codec_lambda1(codec))
        for name, (toward, adaptive, share) in VARIANTS.items():
            t0 = time.process_time()
            yq = lattice_descent(obj, y, 200, share, toward, adaptive)
            print(json.dumps({"image": i, "variant": name, **_read(codec, dec, yq, x, t),
                              "cpu_s": time.process_time() - t0}), flush=True)


if __name__ == "__main__":
    main()
