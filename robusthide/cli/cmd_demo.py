"""``robusthide demo``: embed a message in a sample photo, attack it with real codecs, read it back."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

ATTACKS = ["identity", "jpeg:q=75", "jpeg:q=50", "webp:q=50", "resize:0.5|jpeg:q=80", "h264:crf=28", "avif:q=50",
           "jpeg2000:x1000=100", "crop:0.9|jpeg:q=80", "flip:h|jpeg:q=80", "rotate:3|jpeg:q=80", "rotate:2",
           "reframe:4x5|jpeg:q=80", "reframe:4x5,pos=0.2|jpeg:q=80", "crop:w=0.75,x=0|jpeg:q=80", "crop:0.7,x=0,y=0",
           "pad:4x5|jpeg:q=80", "inset:0.6,x=0.2,y=0.8|jpeg:q=80", "rotate:12|jpeg:q=80", "rotate:90",
           "crop:0.7,x=0.3,y=0.7|jpeg:q=75", "crop:0.5,x=0.35,y=0.6|jpeg:q=75", "filter:vintage|jpeg:q=80",
           "hue:90|text:0.1|jpeg:q=80"]
#: geometric edits the default model does not read on every photo yet (issue 19, docs/geometry.md): shown.
#: Every other edit here is read by the default extraction (the staged search: as it is and mirrored, then as a
#: reframed band of a frame of another aspect ratio, centred or at one end (one side cut off), then turned back
#: by up to 5 degrees, then centred crops, then crops that kept a corner and the aspect ratio; since session 24,
#: right after the plain read, the photo inside a larger picture: padded for a feed, or in a screenshot; since
#: session 25, turned back by 5.5 to 45 degrees or a quarter turn; since session 26, after the reframing
#: stage, a band of a common frame anywhere along it; since session 32, last, a crop of the same aspect anywhere)
NOT_YET = {"crop:0.5,x=0.35,y=0.6|jpeg:q=75": "half the area off the centre and the corners, then JPEG: read on "
                                               "some photos only"}


def _how(res) -> str:
    """How the staged search found the mark: nothing for the image as it is."""
    g, notes = res.geometry or {}, []
    if g.get("flip"):
        notes.append("mirror image read")
    if g.get("angle"):
        notes.append(f"turned back {g['angle']:g} deg")
    if res.crop_side is not None and res.crop_side < 1:
        notes.append(f"centred crop, side {res.crop_side:.3f}")
    if g.get("band"):
        from robusthide.watermark.sync import band_text

        notes.append(f"reframed: {band_text(g)}")
    if g.get("corner"):
        from robusthide.watermark.sync import corner_text

        notes.append(f"cropped to {corner_text(g)}")
    if g.get("anywhere_side"):
        from robusthide.watermark.anywhere import anywhere_text

        notes.append(anywhere_text(g))
    if g.get("box_px"):
        from robusthide.watermark.inset import inset_text

        notes.append(f"found inside {inset_text(g)}")
    return f"  ({'; '.join(notes)})" if notes else ""


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    from robusthide.metrics import psnr_from_mse

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else psnr_from_mse(np.float64(mse))


def _demo(a: argparse.Namespace) -> int:
    import numpy as np
    from skimage import data as skdata

    from robusthide.codecs import CodecError, get_codec
    from robusthide.watermark.files import encode_image, write_bytes_atomic
    from robusthide.watermark.watermarker import Watermarker

    cover = skdata.astronaut()  # 512 x 512, public domain (NASA)
    out = Path(a.out)
    wm = Watermarker.from_pretrained(a.model)
    from robusthide.payload.codec import message_value

    msg = message_value(a.message)  # digits: an integer message, as embed -m reads it
    marked = wm.embed(cover, msg)
    write_bytes_atomic(out / "cover.png", encode_image(cover, "PNG"))
    write_bytes_atomic(out / "marked.png", encode_image(marked, "PNG"))
    rows = []
    print(f"model '{wm.name}': {wm.n_bits} raw bits; message {msg!r}; marked PSNR {_psnr(cover, marked):.2f} dB")
    W = max(24, *map(len, ATTACKS))
    print(f"{'attack':{W}s} {'bpp':>6s} {'bit errors':>11s}  detected  p-value   message")
    for spec in ATTACKS:
        try:
            if spec == "identity":
                att, bpp = marked, None
            else:
                r = get_codec(spec)(marked)
                att, bpp = r.images, r.bpp()[0]
        except CodecError as e:
            print(f"{spec:{W}s} skipped: {e}")
            continue
        res = wm.extract(att)
        sent = wm.encode_message(msg)
        errs = int(np.sum(np.array(res.bits) != sent))
        rows.append({"attack": spec, "bpp": bpp, "bit_errors": errs, "detected": res.detected,
                     "p_value": res.p_value, "message": res.message, "geometry": res.geometry})
        bpps = f"{bpp:6.2f}" if bpp is not None else "     -"
        note = f"  ({NOT_YET[spec]})" if spec in NOT_YET and not res.detected else _how(res)
        print(f"{spec:{W}s} {bpps} {errs:5d}/{wm.n_bits:<5d}  {str(res.detected):8s}  {res.p_value:8.1e}  "
              f"{res.message!r}{note}")
    clean = wm.extract(cover)
    print(f"{'unmarked cover':{W}s} {'-':>6s} {'-':>11s}  {str(clean.detected):8s}  {clean.p_value:8.1e}  "
          f"{clean.message!r}")
    if any(r["attack"] in NOT_YET and not r["detected"] for r in rows):
        print("Crops keeping half the area off the centre and off the corners are read on some photos only, not "
              "yet on all (issue 19; docs/geometry.md).")
    (out / "demo.json").write_text(json.dumps(rows, indent=1, default=str))
    print(f"wrote {out}/cover.png, {out}/marked.png, {out}/demo.json")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("demo", help="mark a sample photo, attack it with real codecs, read the message back")
    d.add_argument("--model", default="default")
    d.add_argument("-m", "--message", default="1234", help="digits are an integer, anything else text")
    d.add_argument("--out", default="demo-out")
    d.set_defaults(func=_demo)
