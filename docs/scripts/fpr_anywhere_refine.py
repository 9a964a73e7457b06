"""False positives of the anywhere search's refined rows alone (issue 19, session 32), over the clean images of a
``robusthide fpr`` run (0 in >= 10 000 clean images through every stage the extractor runs).

The refinement (:func:`robusthide.watermark.anywhere.anywhere_refined`) adds the finer grid's rows next to the
most confident screened rows, and the p-value of every row then pays for the whole finer grid (103 272 rows,
:func:`robusthide.watermark.anywhere.anywhere_fine_count`), a stricter threshold than the screened grid's alone.
So an image that neither a run of the screened grid alone (``robusthide fpr --search anywhere`` before the
refinement: the screened rows the refined search decodes are among the ones that run decoded, at a looser
threshold) nor this run of the refined rows alone (every one of them decoded, each at 1 / 103 272 of the whole
budget) flags is clean for the refined search, alone or as a stage. ``docs/scripts/fpr_total.py`` takes the
result as ``--stage-alone`` (its search is ``anywhere:refine``). The images are those of an earlier run
(``--like``) or given as ``robusthide fpr`` takes them; ``--screened-out`` also writes the screened grid's own
decision on the same images (the run of ``robusthide fpr --search anywhere`` would decide the same: one screening,
both decisions)::

    .venv/bin/python docs/scripts/fpr_anywhere_refine.py --like docs/results/fpr-anywhere-all-s20.json \\
        --out docs/results/fpr-anywhererefine-all-s20
    .venv/bin/python docs/scripts/fpr_anywhere_refine.py --split all --n 1000 --synthetic 0 --seed 11 \\
        --out docs/results/fpr-anywhererefine-all-s11 --screened-out docs/results/fpr-anywhere-all-s11
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _command_line(path: str, command: str, what: str) -> None:
    """Put the command that made a results file, and what it measured, on the ``Command:`` line of its .md."""
    md = Path(path).with_suffix(".md")
    lines = md.read_text().splitlines()
    lines[2] = f"Command: `{command}` ({what})"
    md.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--like", type=Path, help="results (.json) of the run whose images to read")
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default="data/photos/train")
    ap.add_argument("--split", default="all")
    ap.add_argument("--n", type=int, default=250, help="photo patches")
    ap.add_argument("--synthetic", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="output prefix (.md and .json)")
    ap.add_argument("--screened-out", help="also write the screened grid's decision here (.md and .json)")
    a = ap.parse_args(argv)
    from robusthide.watermark import anywhere
    from robusthide.watermark.fpr import measure_fpr, write_fpr
    from robusthide.watermark.sync import decode_stages
    from robusthide.zoo import load_model

    if a.like is not None:
        like = json.loads(a.like.read_text())
        args = (like["model"], like["data"], like["split"], like["photo_patches"], like["synthetic"], like["seed"])
    else:
        args = (a.model, a.data, None if a.split == "all" else a.split, a.n, a.synthetic, a.seed)
    model = load_model(args[0])
    soft = float(getattr(model, "soft_share", 0.0))
    screened = []

    def refined_only(decoder, image, size, window, refine=None):  # the refined rows alone, at the finer grid's
        hyps = anywhere.anywhere_hypotheses(window)                  # count; the screened grid's own decision aside
        logits = anywhere.anywhere_logits(decoder, image, size, hyps)
        screened.append(decode_stages([(logits.cpu(), hyps)], model.n_bits, soft_share=soft)[0])
        fine_logits, fine = anywhere.anywhere_refined(decoder, image, size, hyps, logits, window)
        return fine_logits, [{**h, "of": anywhere.anywhere_fine_count(window)} for h in fine]

    anywhere.anywhere_search = refined_only
    res = measure_fpr(*args, progress=True, search="anywhere")
    cmd = ".venv/bin/python docs/scripts/fpr_anywhere_refine.py " + " ".join(argv if argv is not None else sys.argv[1:])
    source = f"the images of {a.like.name}" if a.like is not None else "its clean images"
    write_fpr({**res, "search": "anywhere:refine"}, a.out)
    _command_line(a.out, cmd, f"the anywhere search's refined rows alone, over {source}")
    print(f"refined rows: {res['false_positives']} false positives in {res['clean_images']} clean images")
    if a.screened_out:
        fp = sum(bool(r.detected) for r in screened)
        write_fpr({**res, "search": "anywhere", "false_positives": fp, "observed_fpr": fp / res["clean_images"],
                   "upper_95": 3.0 / res["clean_images"] if fp == 0 else None,
                   "ecc_decoded_but_rejected": sum(bool(r.ok) for r in screened) - fp,
                   "min_p_value": min([1.0, *(float(r.p_value) for r in screened)])}, a.screened_out)
        _command_line(a.screened_out, cmd, f"the anywhere search's screened grid alone, over {source}: the "
                      "decision `--search anywhere` makes without the refinement")
        print(f"screened grid: {fp} false positives in {res['clean_images']} clean images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
