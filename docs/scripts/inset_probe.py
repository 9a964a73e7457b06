"""Probes of the inset stage (robusthide/watermark/inset.py; docs/geometry.md, "Status (session 24)").

``reads``: validation photos (long side 1024) marked by the default model, put inside larger pictures by hand
(padded to 1:1, 4:5 and 9:16, two screenshot-like frames, a 2 x 2 collage of validation photos), JPEG 80, read
by ``Watermarker.extract`` with the model's default search::

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/inset_probe.py reads --n 4

``boxes``: whether the photo's true box is among the boxes the finder returns, for codec specs of
robusthide/codecs/framing.py on 512-px centre crops of validation photos (``--no-refine``: without moving lines
off JPEG's block boundaries, ``REFINE_PX`` 0)::

    .venv/bin/python docs/scripts/inset_probe.py boxes --n 16 'inset:0.8|jpeg:q=80' 'pad:4x5|jpeg:q=70'
"""

from __future__ import annotations

import argparse
import io
import json

import numpy as np
from PIL import Image


def _jpeg(im: Image.Image, q: int = 80) -> Image.Image:
    b = io.BytesIO()
    im.save(b, "JPEG", quality=q)
    return Image.open(b).convert("RGB")


def _pad(im: Image.Image, aspect: float, fill: tuple[int, int, int]) -> Image.Image:
    w, h = im.size
    W, H = (w, round(w / aspect)) if w / h > aspect else (round(h * aspect), h)
    c = Image.new("RGB", (W, H), fill)
    c.paste(im, ((W - w) // 2, (H - h) // 2))
    return c


def _screenshot(im: Image.Image, frac: float, pos: tuple[float, float], fill: tuple[int, int, int],
                canvas: tuple[int, int]) -> Image.Image:
    """The photo at ``frac`` of the canvas' width, at ``pos``, between a dark top bar and a light bottom bar."""
    H, W = canvas
    w = round(W * frac)
    h = round(w * im.size[1] / im.size[0])
    if h > H * 0.9:
        h = round(H * 0.9)
        w = round(h * im.size[0] / im.size[1])
    a = np.full((H, W, 3), fill, np.uint8)
    top, bottom = int(H * 0.06), int(H * 0.08)
    a[:top], a[-bottom:] = 30, 245
    c = Image.fromarray(a)
    x, y = round(pos[0] * (W - w)), round(top + pos[1] * (H - top - bottom - h))
    c.paste(im.resize((w, h), Image.Resampling.BICUBIC), (x, y))
    return c


def _collage(im: Image.Image, others: list[Image.Image]) -> Image.Image:
    w, h = im.size
    c = Image.new("RGB", (2 * w + 12, 2 * h + 12), (255, 255, 255))
    for i, t in enumerate([im, *others][:4]):
        c.paste(t.resize((w, h)), ((i % 2) * (w + 12), (i // 2) * (h + 12)))
    return c


EDITS = {
    "pad 1:1 white": lambda m, o: _pad(m, 1.0, (255, 255, 255)),
    "pad 4:5 black": lambda m, o: _pad(m, 0.8, (0, 0, 0)),
    "pad 9:16 grey": lambda m, o: _pad(m, 9 / 16, (40, 40, 40)),
    "screenshot 80 %, landscape": lambda m, o: _screenshot(m, 0.8, (0.5, 0.3), (250, 250, 250), (1080, 1920)),
    "screenshot 60 %, portrait, off-centre": lambda m, o: _screenshot(m, 0.6, (0.2, 0.7), (20, 20, 20), (1920, 1080)),
    "collage 2 x 2": lambda m, o: _collage(m, o),
}


def reads(n: int) -> dict:
    import torch

    from robusthide.training.data import list_images
    from robusthide.watermark.watermarker import Watermarker

    torch.manual_seed(0)
    wm = Watermarker.from_pretrained("default")
    rng = np.random.default_rng(0)
    ims = []
    for p in list_images("data/photos/train", "val")[:n]:
        im = Image.open(p).convert("RGB")
        im.thumbnail((1024, 1024))
        ims.append(im)
    out = {k: 0 for k in EDITS}
    for i, im in enumerate(ims):
        msg = int(rng.integers(0, 2048))
        marked = wm.embed(im, msg)
        others = [ims[(i + j) % len(ims)] for j in (1, 2, 3)]
        for k, f in EDITS.items():
            r = wm.extract(_jpeg(f(marked, others), 80))
            out[k] += bool(r.detected and r.message == msg)
    return {"photos": len(ims), "message exact": out}


def boxes(n: int, specs: list[str], refine: bool, verbose: bool = False) -> dict:
    from robusthide.codecs import get_codec
    from robusthide.training.data import list_images
    from robusthide.watermark import inset

    if not refine:
        inset.REFINE_PX = 0  # _refined then finds no canvas and leaves every line where the step is
    ims = []
    for p in list_images("data/photos/train", "val")[:n]:
        im = Image.open(p).convert("RGB")
        im.thumbnail((1024, 1024))
        a = np.asarray(im)
        h, w = a.shape[:2]
        s = min(512, h, w)
        ims.append(np.ascontiguousarray(a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]))
    out = {}
    for spec in specs:
        first = get_codec(spec.split("|")[0])
        hits = 0
        for a in ims:
            H, W = a.shape[:2]
            if spec.startswith("pad"):
                ph, pw, y0, x0 = first.box(H, W)
                truth = (x0 / pw, y0 / ph, (x0 + W) / pw, (y0 + H) / ph)
            elif spec.startswith("inset"):
                y0, x0, h, w = first.box(H, W)
                truth = (x0 / W, y0 / H, (x0 + w) / W, (y0 + h) / H)
            else:
                y0, x0, h, w = first.cells(H, W)[first.cell]
                truth = (x0 / W, y0 / H, (x0 + w) / W, (y0 + h) / H)
            found = inset.inset_boxes(get_codec(spec)(a).images)
            hits += any(max(abs(u - v) for u, v in zip(b, truth)) < 0.004 for b in found)
            if verbose:
                print(spec, [round(v, 3) for v in truth], [[round(v, 3) for v in b] for b in found[:3]])
        out[spec] = hits
    return {"photos": len(ims), "refine": refine, "true box found": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reads")
    r.add_argument("--n", type=int, default=4)
    b = sub.add_parser("boxes")
    b.add_argument("specs", nargs="+")
    b.add_argument("--n", type=int, default=16)
    b.add_argument("--no-refine", action="store_true")
    b.add_argument("--verbose", action="store_true", help="print each truth and the first boxes found")
    a = ap.parse_args()
    res = reads(a.n) if a.cmd == "reads" else boxes(a.n, a.specs, not a.no_refine, a.verbose)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
