"""``robusthide fpr`` and ``robusthide contact-sheet``: the two checks of a watermark model beside its codec
figures, its false-positive rate on clean images and a contact sheet of marked photos for people to judge."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robusthide import RobustHideError
from robusthide.cli import cmd_watermark
from robusthide.cli.args import SEARCHES
from robusthide.cli.cmd_watermark import schema_arg


def register(sub: argparse._SubParsersAction) -> None:
    _register_fpr(sub)
    _register_contact(sub)


def _fpr(a: argparse.Namespace) -> int:
    from robusthide.watermark.fpr import measure_fpr, write_fpr

    res = measure_fpr(a.model, a.data, a.split if a.split != "all" else None, a.n, a.synthetic, a.seed,
                      search=a.search, soft_share=a.soft_share)
    write_fpr(res, a.out)
    print(json.dumps(res) if a.json else f"{res['false_positives']} false positives in {res['clean_images']} "
          f"clean images -> {a.out}.md")
    return 0


def _register_fpr(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("fpr", help="measure the false-positive rate of detection on clean images")
    f.add_argument("--model", default="default")
    f.add_argument("--data", default="data/photos/train")
    f.add_argument("--split", default="val", help="val (hash split, default), train, or all")
    f.add_argument("--n", type=int, default=10000, help="photo patches")
    f.add_argument("--synthetic", type=int, default=600)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--search", choices=SEARCHES, default=None,
                   help="decode through a search, as extract --search does (default: the model's own)")
    f.add_argument("--soft-share", type=float, default=None, metavar="F",
                   help="decide with the soft-decision test at this share of the budget (0 <= F < 1) instead of "
                        "the weights' own: measure a share before a model ships with it")
    f.add_argument("--out", default="docs/results/fpr")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_fpr)


def _contact(a: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from robusthide.io.images import read_image_rgb
    from robusthide.training.data import list_images
    from robusthide.watermark.contact_sheet import contact_sheet, residual_stats

    if Path(a.out).suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise RobustHideError(f"--out must end in .png, .jpg or .webp, got {a.out!r}")
    wm = cmd_watermark.load_watermarker(a)
    files = list_images(a.data, None)
    want = [w.strip() for w in a.names.split(",")] if a.names else None
    chosen = [f for f in files if want is None or any(f.name.startswith(w) for w in want)]
    if want and len(chosen) < len(want):
        raise RobustHideError(f"only {len(chosen)} of {len(want)} names found in {a.data}")
    rows = []
    rng = np.random.default_rng(a.seed)
    for f in chosen:
        im = Image.fromarray(read_image_rgb(f))
        im = im.resize((a.resize, max(16, round(im.height * a.resize / im.width))), Image.LANCZOS)
        cover = np.asarray(im)
        marked = wm.embed_bits(cover, rng.integers(0, 2, wm.n_bits))
        h, w = cover.shape[:2]
        ch, cw = min(h, a.crop_h), min(w, a.crop_w)
        x0 = (w - cw) // 2
        rows.append((f"{f.name} ({w}x{h}, top-centre crop at 1:1)", cover[:ch, x0:x0 + cw], marked[:ch, x0:x0 + cw]))
    if a.astronaut:
        from skimage import data as skdata

        cover = skdata.astronaut()
        marked = wm.embed_bits(cover, rng.integers(0, 2, wm.n_bits))
        rows.append(("skimage astronaut (512x512, face at 1:1)", cover[20:308, 64:448], marked[20:308, 64:448]))
    out = contact_sheet(rows, a.out, width=a.crop_w)
    stats = [{"label": label, **residual_stats(c, m)} for label, c, m in rows]
    doc = {"model": str(a.model), "unit": "grey levels (0-255), all channels of the crop shown", "rows": stats,
           "mean": {k: round(float(np.mean([r[k] for r in stats if r[k] is not None])), 3)
                    for k in ("rms", "p99", "rms_flat", "rms_texture") if any(r[k] is not None for r in stats)}}
    side = out.with_suffix(".json")
    side.write_text(json.dumps(doc, indent=1) + "\n")
    for r in stats:
        split = "".join(f", {k[4:]} {r[k]:.2f}" for k in ("rms_flat", "rms_texture") if r[k] is not None)
        print(f"{r['label']}: residual RMS {r['rms']:.2f}{split}, p99 {r['p99']:.2f}, max {r['max']:.0f}")
    print(f"wrote {out}, {side}")
    return 0


def _register_contact(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("contact-sheet", help="cover | marked | residual x10 for photos, for people to judge")
    c.add_argument("--model", default="default")
    c.add_argument("--schema", type=schema_arg, default=None, help="id or name (default: all schemas)")
    c.add_argument("--data", default="data/photos/train")
    c.add_argument("--names", help="comma-separated file-name prefixes")
    c.add_argument("--resize", type=int, default=1024, help="resize photos to this width first (web size)")
    c.add_argument("--crop-w", type=int, default=384)
    c.add_argument("--crop-h", type=int, default=288)
    c.add_argument("--astronaut", action="store_true", help="add skimage's astronaut (skin)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default="docs/results/default-contact-sheet.png")
    c.set_defaults(func=_contact)
