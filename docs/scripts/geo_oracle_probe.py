"""Issue 19 diagnosis (session 15): raw BER of a periodic ``geo`` model read at the *true* geometry of an edit.

For each of ``--n`` validation photos (512 px, seed 0, a random 60-bit integer, refine 0), the edited image is
rendered at the edit's exact side fractions (x 0.99, 1, 1.01), optionally also moved by 2 px down / right
(``--phases``: the 4 renderings), folded at ratio 1 at the fold offsets ``--offsets`` (feature pixels), read at
every cyclic shift, and the best raw BER against the true word is printed per photo (%). This separates what the
decoder can read from what the search finds (docs/geometry.md, "Status (session 15)").

Run: .venv/bin/python docs/scripts/geo_oracle_probe.py WEIGHTS --edit 'crop:0.5,x=0.2,y=0.8' 0.7071 0.7071
     [--edit SPEC KX KY ...] [--n 8] [--offsets 0,0.5] [--phases]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from robusthide import Watermarker
from robusthide.evaluation.attacks_grammar import attack_runner
from robusthide.evaluation.images import image_set
from robusthide.nets.geo import fractional_fold, phase_assignment
from robusthide.watermark.sync import affine_views


def true_geometry_reading(dec: torch.nn.Module, img: np.ndarray, word: np.ndarray, kx: float, ky: float,
                          offsets: tuple[float, ...] = (0.0, 0.5),
                          moves: tuple[tuple[int, int], ...] = ((0, 0),)) -> tuple[float, np.ndarray]:
    """The reading of ``img`` (H x W x 3 uint8) closest to ``word`` among its renderings at the true side
    fractions ``kx``, ``ky`` (x 0.99, 1, 1.01), moved by each of ``moves`` px, folded at ratio 1 at ``offsets``
    and read at every cyclic shift: (its raw BER, its logits)."""
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    best, out = 2.0, None
    for dk in (0.99, 1.0, 1.01):
        for sy, sx in moves:
            hyp = {"flip": False, "angle": 0.0, "kx": kx * dk, "ky": ky * dk}
            f, w = dec.feature_maps(affine_views(torch.roll(x, (sy, sx), (2, 3)), 256, [hyp]))
            t = fractional_fold(f, w, phase_assignment(f.shape[-2], dec.tile, (1.0,), offsets),
                                phase_assignment(f.shape[-1], dec.tile, (1.0,), offsets))[0]
            lg = dec.shift_logits(t.flatten(0, 1)).reshape(-1, word.size).numpy()
            err = ((lg > 0) != word).mean(-1)
            if err.min() < best:
                best, out = float(err.min()), lg[int(err.argmin())]
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("--edit", nargs=3, action="append", required=True, metavar=("SPEC", "KX", "KY"))
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--offsets", default="0,0.5")
    ap.add_argument("--phases", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained(a.weights)
    wm.model.size = 256
    dec = wm.model.decoder
    offsets = tuple(float(v) for v in a.offsets.split(","))
    moves = ((0, 0), (0, 2), (2, 0), (2, 2)) if a.phases else ((0, 0),)
    items = image_set("data/photos/train", n=a.n, size=512, seed=0, split="val")
    covers = np.stack([it.load() for it in items])
    rng = np.random.default_rng(0)
    msgs = [int(rng.integers(0, 2 ** 60)) for _ in items]
    words = [wm.encode_message(m) for m in msgs]
    marked = np.stack([wm.embed(c, m, refine=0) for c, m in zip(covers, msgs)])
    for spec, kx, ky in a.edit:
        att = attack_runner(spec)(marked, covers, seed=0)[0]
        out = []
        for img, word in zip(att, words):
            with torch.no_grad():
                out.append(true_geometry_reading(dec, img, word, float(kx), float(ky), offsets, moves)[0])
        print(spec, " ".join(f"{b * 100:.1f}" for b in out), flush=True)


if __name__ == "__main__":
    main()
