"""Exploratory (session 9): the geo model read after crops with a fine scale grid (ratio 0.97, isotropic; a
side cut: kx only), to tell the scale grid from the decoder as the limit. Usage:
    python docs/scripts/geo_finegrid.py WEIGHTS N_PHOTOS   (validation photos of data/photos/train, 512 px)
"""
import sys

import numpy as np
import torch
from PIL import Image

from robusthide import Watermarker
from robusthide.codecs import get_codec
from robusthide.training.data import list_images
from robusthide.watermark.sync import decode_search, geometry_views

torch.set_num_threads(2)
wm = Watermarker.from_pretrained(sys.argv[1])
dec = wm.model.decoder
paths = list_images("data/photos/train", split="val")[:int(sys.argv[2])]
scales = tuple(round(0.97 ** i, 4) for i in range(23))  # 1 .. 0.5
rng = np.random.default_rng(0)
for spec in ["crop:0.7", "crop:0.5,x=0.2,y=0.8", "crop:0.5,x=0.2,y=0.8|jpeg:q=75", "crop:w=0.75,x=0", "rotate:2"]:
    ok = 0
    for p in paths:
        im = Image.open(p).convert("RGB")
        im.thumbnail((512, 512))
        img = np.asarray(im)
        msg = int(rng.integers(0, 2**60))
        marked = wm.embed(img, msg, refine=0)
        att = get_codec(spec)(marked[None]).images[0]
        x = torch.from_numpy(np.ascontiguousarray(att)).permute(2, 0, 1)[None].float() / 255
        if spec.startswith("crop:w"):
            sc = [(kx, ky) for kx in scales for ky in scales if abs(ky - 1) < 0.02]
        else:
            sc = [(k, k) for k in scales]
        views = []
        with torch.no_grad():
            for kx, ky in sc:
                v, _ = geometry_views(x, 128, scales=(kx, ky) if kx != ky else (kx,), angles=(0.0,), flips=False)
                views.append(v[1:2] if kx != ky else v[:1])
            lg = torch.cat([dec.all_shifts(v) for v in torch.cat(views).split(32)]).flatten(0, 1)
        n_tests = 2 * 49 * 49 * 256  # the fine grid's size, mirrored, both axes (Bonferroni, conservative)
        r, i = decode_search(lg, wm.n_bits, max_tries=64)
        p = min(1.0, r.p_value / lg.shape[0] * n_tests)
        ok += int(r.ok and r.message == msg and p <= 1e-6)
    print(f"{spec:32s} message exact {ok}/{len(paths)}", flush=True)
