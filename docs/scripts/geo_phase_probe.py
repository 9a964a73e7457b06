"""Issue 19 probe (session 13): does a periodic ``geo`` model read every translation, and crops at their true
scale? Two measurements on validation photos, for one weights file, at a working size of ``--size`` px:

1. **Translations.** Crops of ``--size`` px (one image pixel = one working pixel) are marked, shifted by d
   working pixels (reflected at the border) and read with every cyclic shift of the tile
   (``TileDecoder.all_shifts``); the table gives the raw BER of the best shift, per photo.
2. **Crops at their true scale.** 512-px crops are marked and cut with the codec interface's crops (resized
   back), then shown to the decoder at the crop's true side fractions (no scale search) and read with every
   cyclic shift: the raw BER of the best shift, per photo, and whether the most confident shift is that one.

Run: .venv/bin/python docs/scripts/geo_phase_probe.py WEIGHTS --out docs/results/NAME.md [--n 8] [--size 256]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from robusthide import Watermarker
from robusthide.evaluation.attacks_grammar import attack_runner
from robusthide.evaluation.images import image_set
from robusthide.watermark.sync import affine_views

SHIFTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 17.0)
CROPS = {"crop:0.7": (0.8367, 0.8367), "crop:0.7,x=1,y=0": (0.8367, 0.8367), "crop:w=0.75,x=0": (0.75, 1.0),
         "crop:0.5,x=0.2,y=0.8": (0.7071, 0.7071), "crop:0.5,x=0,y=0|jpeg:q=75": (0.7071, 0.7071)}


def shifted(x: torch.Tensor, dx: float, dy: float = 0.0) -> torch.Tensor:
    """``x`` moved right by ``dx`` and down by ``dy`` pixels (bilinear, reflected at the border)."""
    s = x.shape[-1]
    theta = torch.tensor([[1.0, 0.0, -2 * dx / s], [0.0, 1.0, -2 * dy / s]])[None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def best_shift(lg: torch.Tensor, word: np.ndarray) -> tuple[float, bool]:
    bers = ((lg > 0).numpy() != (word > 0)[None]).mean(1)
    return float(bers.min()), int(np.argmax(lg.abs().mean(1).numpy())) == int(np.argmin(bers))


def tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    a = ap.parse_args()
    torch.manual_seed(0)
    wm = Watermarker.from_pretrained(a.weights)
    wm.model.size = a.size
    dec = wm.model.decoder
    rng = np.random.default_rng(0)
    cmd = (f".venv/bin/python docs/scripts/geo_phase_probe.py {a.weights} --out {a.out} --n {a.n} "
           f"--size {a.size}")
    lines = [f"# Does `{wm.name}` read every translation?", "", f"Command: `{cmd}`", "",
             f"Working size {a.size} px, {a.n} validation photos (seed 0), refine 0. Raw BER % of the best cyclic "
             "shift (256 bits; the payload decodes up to 6.6 %).", "", "## 1. Translations (working pixels)", "",
             "| photo | " + " | ".join(f"d = {d:g}" for d in SHIFTS) + " |", "|---" * (len(SHIFTS) + 1) + "|"]
    with torch.no_grad():
        for i, it in enumerate(image_set("data/photos/train", n=a.n, size=a.size, seed=0, split="val")):
            word = np.asarray(wm.encode_message(int(rng.integers(0, 2 ** 60))))
            x = tensor(wm.embed_bits(it.load(), word, refine=0))
            bers = [best_shift(dec.all_shifts(shifted(x, d))[0], word)[0] for d in SHIFTS]
            lines.append(f"| {i} | " + " | ".join(f"{100 * b:.1f}" for b in bers) + " |")
        lines += ["", "## 2. Crops at their true scale (512-px photos; * = the most confident shift is the best)",
                  "", "| crop | side fractions | phases | BER % per photo |", "|---|---|---|---|"]
        items = image_set("data/photos/train", n=a.n, size=512, seed=0, split="val")
        covers = np.stack([it.load() for it in items])
        words = [np.asarray(wm.encode_message(int(rng.integers(0, 2 ** 60)))) for _ in items]
        marked = np.stack([wm.embed_bits(c, w, refine=0) for c, w in zip(covers, words)])
        for spec, (kx, ky) in CROPS.items():
            att = attack_runner(spec)(marked, covers, seed=0)[0]
            for steps in ((0.0,), (0.0, 1.0), (0.0, 0.5, 1.0, 1.5)):
                cells = []
                for img, word in zip(att, words):
                    v = affine_views(tensor(img), a.size, [{"flip": False, "angle": 0.0, "kx": kx, "ky": ky}])
                    v = torch.cat([shifted(v, dx, dy) for dy in steps for dx in steps])
                    b, right = best_shift(dec.all_shifts(v).flatten(0, 1), word)
                    cells.append(f"{100 * b:.1f}{'*' if right else ''}")
                lines.append(f"| `{spec}` | {kx}, {ky} | {len(steps) ** 2} | " + " ".join(cells) + " |")
    open(a.out, "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
