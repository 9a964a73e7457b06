"""How exactly the default model needs a cut's position (docs/geometry.md, "Status (session 21)").

The first 6 validation photos (long side at most 1024 px) are marked; the left 85 % or 70 % of the width is kept
and saved as JPEG 75 (12 cuts). Each is read under the hypothesis "the left part of a wider frame" with the
band's width off by -6 ... +6 % of the frame (``affine_views`` with ``kx`` and ``ox``): the count of exact
messages per error.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/side_cut_tolerance.py
"""

from __future__ import annotations

import io
import json

import numpy as np
import torch
from PIL import Image

from robusthide.training.data import list_images
from robusthide.watermark.sync import affine_views, decode_search
from robusthide.watermark.watermarker import Watermarker

ERRORS = (-0.06, -0.04, -0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.04, 0.06)


def main() -> None:
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained("default")
    size = wm.model.size
    hits = dict.fromkeys(ERRORS, 0)
    n = 0
    for i, f in enumerate(list_images("data/photos/train", "val")[:6]):
        im = Image.open(f).convert("RGB")
        im.thumbnail((1024, 1024))
        msg = 77 + i
        marked = wm.embed(np.asarray(im), msg)
        for keep in (0.85, 0.7):
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(marked[:, : round(marked.shape[1] * keep)])).save(buf, "JPEG",
                                                                                                     quality=75)
            x = torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
            hyps = [{"flip": False, "angle": 0.0, "kx": keep + e, "ky": 1.0, "ox": -(1 - keep - e)} for e in ERRORS]
            with torch.no_grad():
                logits = wm.model.decoder(affine_views(x, size, hyps)).float()
            for j, e in enumerate(ERRORS):
                r, _ = decode_search(logits[j : j + 1], wm.n_bits)
                hits[e] += int(r.detected and r.message == msg)
            n += 1
    print(json.dumps({f"{e:+.2f}": f"{hits[e]} of {n}" for e in ERRORS}))


if __name__ == "__main__":
    main()
