"""How many errors the anywhere search's best rows have, screened grid against refined rows (issue 19, session 32).

Validation photos at 512 px are marked with the default model, cropped off the centre (70 % and 50 % of the area,
then JPEG 75, as in docs/results/anywhere-default.md), and read by the anywhere search
(:func:`robusthide.watermark.anywhere.anywhere_search` with ``refine=True``). For each it records the fewest bit
errors among the 64 screened rows the decoder tries first (``GEOMETRY_TRIES``, in score order) and among the
refined rows (:func:`robusthide.watermark.anywhere.anywhere_refined`), and how many errors each may have and still
be declared at a share of the false-positive budget (``--share``: the one the anywhere stage is to have in the
staged search; :func:`robusthide.payload.max_detectable_errors`)::

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/anywhere_refine_probe.py --n 12 --share 0.12 \\
        --out docs/results/anywhere-refine-probe
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ATTACKS = ("crop:0.7,x=0.3,y=0.7|jpeg:q=75", "crop:0.5,x=0.35,y=0.6|jpeg:q=75")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="validation photos")
    ap.add_argument("--share", type=float, default=0.12, help="the search's share of the 1e-6 budget")
    ap.add_argument("--out", required=True, help="output prefix (.md and .json)")
    a = ap.parse_args(argv)
    import numpy as np
    import torch

    from robusthide.codecs import get_codec
    from robusthide.evaluation.images import image_set
    from robusthide.payload import max_detectable_errors
    from robusthide.watermark.anywhere import anywhere_fine_count, anywhere_hypotheses, anywhere_search
    from robusthide.watermark.sync import GEOMETRY_TRIES, ranking_scores
    from robusthide.watermark.watermarker import Watermarker

    wm = Watermarker.from_pretrained("default")
    dec, size = wm.model.decoder, wm.model.size
    win = 2 * dec.stride / size
    n_coarse, n_fine = len(anywhere_hypotheses(win)), anywhere_fine_count(win)
    share = a.share
    cap = {"screened": max_detectable_errors(wm.n_bits, 0, threshold=1e-6 * share / n_coarse),
           "refined": max_detectable_errors(wm.n_bits, 0, threshold=1e-6 * share / n_fine)}
    rows = []
    for i, item in enumerate(image_set("data/photos/train", size=512, split="val")[:a.n]):
        msg = 100 + i
        sent = np.asarray(wm.encode_message(msg))
        marked = wm.embed(item.load(), msg)
        for spec in ATTACKS:
            img = get_codec(spec)(marked[None]).images[0]
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
            logits, _ = anywhere_search(dec, x, size, win, refine=True)
            errors = ((logits > 0).numpy() != sent).sum(1)
            tried = torch.topk(ranking_scores(logits[:n_coarse]), GEOMETRY_TRIES).indices.numpy()
            rows.append({"photo": item.name, "attack": spec, "screened": int(errors[tried].min()),
                         "refined": int(errors[n_coarse:].min())})
            print(rows[-1], flush=True)
    res = {"rows": rows, "cap": cap, "share": share, "screened_rows": n_coarse, "fine_grid": n_fine,
           "command": "OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/anywhere_refine_probe.py "
                      f"--n {a.n} --share {a.share:g} --out {a.out}"}
    Path(a.out).with_suffix(".json").write_text(json.dumps(res, indent=1))
    lines = ["# The anywhere search: fewest errors of the screened grid's tried rows and of the refined rows", "",
             f"Command: `{res['command']}`", "",
             f"Default model, {a.n} validation photos at 512 px. Declared at the share {share:g} of the budget: at "
             f"most {cap['screened']} errors of {wm.n_bits} on the screened grid ({n_coarse} rows), "
             f"{cap['refined']} with the refinement (its p-value pays for the finer grid, {n_fine} rows).", "",
             "| attack | median errors, screened | median errors, refined | within the cap, screened | "
             "within the cap, refined |", "|---|---:|---:|---:|---:|"]
    for spec in ATTACKS:
        rs = [r for r in rows if r["attack"] == spec]
        lines.append(f"| {spec.replace('|', ' then ')} | {statistics.median(r['screened'] for r in rs):g} | "
                     f"{statistics.median(r['refined'] for r in rs):g} | "
                     f"{sum(r['screened'] <= cap['screened'] for r in rs)} of {len(rs)} | "
                     f"{sum(r['refined'] <= cap['refined'] for r in rs)} of {len(rs)} |")
    Path(a.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
