"""Refined embed in fp32 against bf16 (``RefineConfig.precision``) on the first N validation photos at 512 px:
seconds per image, PSNR, and raw BER with no edit, after JPEG 50 and after WebP 50 (docs/geometry.md).

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/refine_precision_probe.py --model geo256 --n 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch
from PIL import Image

from robusthide.codecs import get_codec
from robusthide.training.data import list_images
from robusthide.watermark.watermarker import Watermarker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="geo256")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--data", default="data/photos/train")
    a = ap.parse_args()
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained(a.model)
    rng = np.random.default_rng(0)
    base = wm.refine_config(None)
    for f in list_images(a.data, "val")[: a.n]:
        im = np.asarray(Image.open(f).convert("RGB").resize((512, 512), Image.BICUBIC))
        bits = rng.integers(0, 2, wm.n_bits)
        for precision in ("fp32", "bf16"):
            t = time.perf_counter()
            m = wm.embed_bits(im, bits, refine=dataclasses.replace(base, precision=precision))
            row = {"file": f.name, "precision": precision, "seconds": round(time.perf_counter() - t, 2),
                   "psnr": round(float(10 * np.log10(255**2 / np.mean((m.astype(float) - im) ** 2))), 2)}
            for spec in ("identity", "jpeg:q=50", "webp:q=50"):
                x = m
                if spec != "identity":
                    y = get_codec(spec)(torch.from_numpy(m).permute(2, 0, 1)[None].float() / 255).images
                    x = (y[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                row[spec] = float(np.mean(wm.decode_bits(x, search="none")[0].reshape(-1) != bits))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
