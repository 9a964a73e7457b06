"""False positives of the slide stage's extra bands alone (``SLIDE_BANDS``, added in session 27), over the clean
images of an earlier ``robusthide fpr`` run (issue 19: 0 in >= 10 000 clean images through every stage).

The slide stage gained the bands of :data:`robusthide.watermark.sync.SLIDE_BANDS` (a side cut by a quarter and
resized back to the photo's shape). Its other hypotheses are the ones the earlier slide runs read; with more
hypotheses each one's threshold only shrinks (uniform Bonferroni within the stage, at most 1024 decoded, in score
order), so an image that neither the earlier slide run nor this run of the new bands alone (with the stage's whole
budget over fewer hypotheses: a looser threshold) flags is clean for the slide stage as it is now.
``docs/scripts/fpr_total.py`` takes the result as ``--stage-alone`` (its search is ``slide:bands``)::

    .venv/bin/python docs/scripts/fpr_slide_bands.py --like docs/results/fpr-staged-all-s11.json \\
        --out docs/results/fpr-slidebands-all-s11
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--like", type=Path, required=True, help="results (.json) of the run whose images to read")
    ap.add_argument("--out", required=True, help="output prefix (.md and .json)")
    a = ap.parse_args(argv)
    from robusthide.watermark import sync
    from robusthide.watermark.fpr import measure_fpr, write_fpr

    like = json.loads(a.like.read_text())
    sync.slide_hypotheses = functools.partial(sync.slide_hypotheses, aspects=())  # the extra bands only
    res = measure_fpr(like["model"], like["data"], like["split"], like["photo_patches"], like["synthetic"],
                      like["seed"], progress=False, search="slide")
    res["search"] = "slide:bands"
    write_fpr(res, a.out)
    md = Path(a.out).with_suffix(".md")
    lines = md.read_text().splitlines()
    lines[2] = (f"Command: `.venv/bin/python docs/scripts/fpr_slide_bands.py --like {a.like} --out {a.out}` (the "
                f"slide stage's bands of SLIDE_BANDS alone, over the images of {a.like.name})")
    md.write_text("\n".join(lines) + "\n")
    print(f"{res['false_positives']} false positives in {res['clean_images']} clean images -> {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
