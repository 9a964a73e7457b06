"""How far off may the angle be when the default model reads a turned photo? (issue 19; docs/geometry.md,
"Status (session 25)").

Marked validation photos (long side at most 1024 px, the ones after the first six) are turned by 8, 15, 20, 30
and 45 degrees, with black corners and straightened (``rotate:A,fill=black|crop``), then saved as JPEG 80, and
read under the one hypothesis that turns them back by the true angle plus an error e of -1 ... +1 degree in
quarter steps (:func:`robusthide.watermark.sync.rotation_views`, no mirror). A read counts when the message is
exact; the table gives how many of the photos read and the median log10 p-value of one hypothesis (a search
of the turn stage's 366 hypotheses with 1/10 of the budget asks about 1e-6 x 0.1 x 8/7 / 183, log10 -9.3).

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/turn_probe.py --n 4 --out docs/results/turn-probe
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from robusthide.codecs import get_codec
from robusthide.training.data import list_images
from robusthide.watermark.sync import decode_search, rotation_views
from robusthide.watermark.watermarker import Watermarker

ANGLES = (8.0, 15.0, 20.0, 30.0, 45.0)
ERRORS = (-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)


def reads(wm: Watermarker, x: torch.Tensor, angle: float, fill: str, msg: int) -> list[tuple[bool, float]]:
    """(exact, log10 p-value) of ``x`` turned back by ``angle`` + e for every e of :data:`ERRORS`."""
    views, hyps = rotation_views(x, wm.model.size, angles=tuple(angle + e for e in ERRORS), flips=False)
    keep = [i for i, h in enumerate(hyps) if h["fill"] == fill]
    with torch.no_grad():
        logits = wm.model.decoder(views[keep]).float()
    out = []
    for j in range(len(keep)):
        r, _ = decode_search(logits[j:j + 1], wm.n_bits)
        out.append((r.message == msg, float(np.log10(max(r.p_value, 1e-300)))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="photos (default 4)")
    ap.add_argument("--out", type=Path, required=True, help="output prefix: PREFIX.json and PREFIX.md")
    a = ap.parse_args()
    torch.set_num_threads(1)
    wm = Watermarker.from_pretrained("default")
    table: dict[str, list[list[tuple[bool, float]]]] = {}
    for i, f in enumerate(list_images("data/photos/train", "val")[6:6 + a.n]):
        im = Image.open(f).convert("RGB")
        im.thumbnail((1024, 1024))
        msg = 700 + i
        marked = wm.embed(np.asarray(im), msg)
        for angle in ANGLES:
            for fill in ("black", "crop"):
                out = get_codec(f"rotate:{angle:g},fill={fill}|jpeg:q=80").code_one(marked)[0]
                x = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)[None].float() / 255
                table.setdefault(f"{angle:g} {fill}", []).append(reads(wm, x, angle, fill, msg))
    cmd = f"OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/turn_probe.py --n {a.n} --out {a.out}"
    lines = [f"# Turned photos read at the true angle plus an error ({a.n} validation photos, JPEG 80)", "",
             f"Command: `{cmd}`", "", "Each cell: photos read exactly / median log10 p-value of the one hypothesis.",
             "", "| turn, fill | " + " | ".join(f"{e:+.2f}" for e in ERRORS) + " |",
             "|---|" + "---:|" * len(ERRORS)]
    for key, per_photo in table.items():
        cells = []
        for j in range(len(ERRORS)):
            col = [p[j] for p in per_photo]
            cells.append(f"{sum(ok for ok, _ in col)} / {np.median([lp for _, lp in col]):.0f}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    a.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "errors": ERRORS, "reads": table}) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
