"""Everyday edits made with an independent tool (ImageMagick), read back by each watermark model (issue 19).

A new user's check, as the issue asks ("tried as a new user would ... with independent tools"): the photos that
ship inside scikit-image's wheel (none of them in the training photos) are marked with each model's defaults, then
edited by ImageMagick's ``convert`` the way phone editors, platforms and people do (filters, a 4:5 crop for a
feed, a screenshot, stickers of text, thumbnails, rotations, crops off the centre, a slight keystone), and read
with ``Watermarker.extract`` and its default search. Writes a Markdown table (message exact per edit and model,
photos that read / photos) and the JSON of every read::

    .venv/bin/python docs/scripts/everyday_edits.py --model default --model default:soft=0.5 \
        --model lean128-r6 --model geo256 --out docs/results/everyday-edits

Needs ImageMagick 6 (``apt-get install imagemagick``; ``--convert`` names the binary). One torch thread; the
message is 1234 (it fits every model's default schema), seeds are not involved (no randomness).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: edit name -> ImageMagick arguments between the input and the output file (the output's extension last)
EDITS: dict[str, tuple[list[str], str]] = {
    "JPEG Q30": (["-quality", "30"], "jpg"),
    "filter (contrast + saturation), JPEG 90": (["-sigmoidal-contrast", "4x50%", "-modulate", "100,130",
                                                 "-quality", "90"], "jpg"),
    "gamma 1.4, JPEG 80": (["-gamma", "1.4", "-quality", "80"], "jpg"),
    "grayscale, JPEG 90": (["-colorspace", "Gray", "-quality", "90"], "jpg"),
    "256-colour GIF": (["-colors", "256"], "gif"),
    "blur 1.2 px, JPEG 85": (["-blur", "0x1.2", "-quality", "85"], "jpg"),
    "sharpen, JPEG 90": (["-unsharp", "0x2+1.5+0", "-quality", "90"], "jpg"),
    "text sticker in the middle, JPEG 90": (["-fill", "white", "-stroke", "black", "-pointsize", "48",
                                             "-gravity", "center", "-annotate", "+0+0", "@someone",
                                             "-quality", "90"], "jpg"),
    "thumbnail 30 %, JPEG 85": (["-resize", "30%", "-quality", "85"], "jpg"),
    "half size and back, JPEG 70": (["-resize", "50%", "-resize", "200%", "-quality", "70"], "jpg"),
    "mirrored, JPEG 80": (["-flop", "-quality", "80"], "jpg"),
    "quarter turn, JPEG 90": (["-rotate", "90", "-quality", "90"], "jpg"),
    "feed crop to 4:5 at the centre, 1080 x 1350, JPEG 85": (["-gravity", "center", "-crop", "4:5", "+repage",
                                                              "-resize", "1080x1350!", "-quality", "85"], "jpg"),
    "screenshot (white frame, caption)": (["-bordercolor", "white", "-border", "60x140", "-fill", "black",
                                           "-pointsize", "30", "-gravity", "north", "-annotate", "+0+40",
                                           "Screenshot 12:04"], "png"),
    "meme bars (padded to 120 % x 150 %), JPEG 85": (["-background", "white", "-gravity", "center", "-extent",
                                                      "120%x150%", "-quality", "85"], "jpg"),
    "rotated 3 degrees, cropped to 88 % of the turned canvas, JPEG 90": (
        ["-rotate", "3", "-gravity", "center", "-crop", "88%x88%+0+0", "+repage", "-quality", "90"], "jpg"),
    "crop 70 % x 75 % at the top left + (40, 20) px, JPEG 75": (
        ["-gravity", "northwest", "-crop", "70%x75%+40+20", "+repage", "-quality", "75"], "jpg"),
    "crop 60 % x 60 % off the centre, zoomed 200 %, JPEG 85": (
        ["-gravity", "center", "-crop", "60%x60%+30+20", "+repage", "-resize", "200%", "-quality", "85"], "jpg"),
    "slight keystone (perspective), JPEG 90": (
        ["-distort", "Perspective", "0,0 10,8  %[fx:w-1],0 %[fx:w-12],4  0,%[fx:h-1] 4,%[fx:h-10]  "
         "%[fx:w-1],%[fx:h-1] %[fx:w-6],%[fx:h-3]", "-quality", "90"], "jpg"),
}

#: scikit-image's photos (the wheel's own files; not among the training photos)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")


def photos() -> dict:
    import skimage.data as d

    return {"astronaut": d.astronaut(), "chelsea": d.chelsea(), "coffee": d.coffee(), "rocket": d.rocket(),
            "motorcycle": d.stereo_motorcycle()[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append",
                    help="zoo name (repeat; default: default); NAME:soft=F reads with the soft-decision test at the"
                         " share F of the detection budget instead of the weights' own (docs/payload.md)")
    ap.add_argument("--out", required=True, help="output stem: OUT.md and OUT.json")
    ap.add_argument("--convert", default="/usr/bin/convert", help="ImageMagick 6's convert")
    ap.add_argument("--message", type=int, default=1234)
    ap.add_argument("--add", action="store_true",
                    help="add these models' columns to the results already in OUT.json (each column keeps the "
                         "command that measured it)")
    a = ap.parse_args(argv)
    if shutil.which(a.convert) is None or b"ImageMagick" not in subprocess.run(
            [a.convert, "-version"], capture_output=True).stdout:
        print(f"everyday_edits: {a.convert} is not ImageMagick (apt-get install imagemagick)", file=sys.stderr)
        return 2
    import numpy as np
    import torch
    from PIL import Image

    from robusthide.watermark.watermarker import Watermarker

    torch.set_num_threads(1)
    models = a.model or ["default"]
    cmd = "python docs/scripts/everyday_edits.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out = Path(a.out)
    before = json.loads(out.with_suffix(".json").read_text()) if a.add else {"commands": {}, "rows": []}
    rows: list[dict] = [r for r in before["rows"] if r["model"] not in models]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for name in models:
            zoo_name, _, soft = name.partition(":soft=")
            wm = Watermarker.from_pretrained(zoo_name)
            if soft:
                wm.soft_share = float(soft)
            for pname, arr in photos().items():
                marked = wm.embed(np.ascontiguousarray(arr), a.message)
                src = t / f"{zoo_name}-{pname}.png"
                Image.fromarray(marked).save(src)
                for edit, (args, ext) in EDITS.items():
                    dst = t / f"{zoo_name}-{pname}-edit.{ext}"
                    subprocess.run([a.convert, str(src), *args, str(dst)], check=True, capture_output=True)
                    with Image.open(dst) as im:
                        img = np.asarray(im.convert("RGB"))
                    t0 = time.perf_counter()
                    r = wm.extract(img)
                    rows.append({"model": name, "photo": pname, "edit": edit, "size": list(img.shape[1::-1]),
                                 "exact": bool(r.detected and r.message == a.message), "detected": r.detected,
                                 "p_value": r.p_value, "seconds": round(time.perf_counter() - t0, 2),
                                 "geometry": r.geometry})
                    print(f"{name} {pname} {edit}: {'exact' if rows[-1]['exact'] else 'no'}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    commands = {**{m: c for m, c in before["commands"].items() if m not in models}, **{m: cmd for m in models}}
    models = list(commands)
    out.with_suffix(".json").write_text(json.dumps({"commands": commands, "photos": list(PHOTOS),
                                                    "edits": {k: v[0] for k, v in EDITS.items()}, "rows": rows},
                                                   indent=1, default=str))
    lines = [f"# Everyday edits with ImageMagick, read back ({len(PHOTOS)} scikit-image photos)", "",
             "Commands: " + "; ".join(f"`{c}`" for c in dict.fromkeys(commands.values())), "",
             "Each photo marked with the model's defaults (message 1234), edited by ImageMagick "
             "(`convert MARKED.png ARGS OUT`, the arguments in the JSON), read by `Watermarker.extract` with the "
             "model's default search. Cells: photos whose message reads exact, of "
             f"{len(PHOTOS)}; the median time of a read in brackets (one thread, beside two trainings). "
             "`NAME:soft=F`: the model read with the soft-decision test at the share F of the budget (not "
             "its weights' own).", "",
             "| edit | " + " | ".join(f"`{m}`" for m in models) + " |", "|---|" + "---:|" * len(models)]
    for edit in EDITS:
        cells = []
        for m in models:
            rs = [r for r in rows if r["model"] == m and r["edit"] == edit]
            cells.append(f"{sum(r['exact'] for r in rs)} ({1000 * np.median([r['seconds'] for r in rs]):.0f} ms)")
        lines.append(f"| {edit} | " + " | ".join(cells) + " |")
    tot = [sum(r["exact"] for r in rows if r["model"] == m) for m in models]
    lines.append("| **all** | " + " | ".join(f"**{n} of {len(PHOTOS) * len(EDITS)}**" for n in tot) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
