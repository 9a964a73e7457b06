"""Sum several ``robusthide fpr`` results into one false-positive count (issue 19: 0 in >= 10 000 clean images).

Each results file is one run of ``robusthide fpr`` (its own seed, so its own random crops); this script adds
them up and writes one Markdown table: every run with its command, then the total, the observed rate, its
95 % upper bound (3 / N with no false positive, the rule of three; else the exact Clopper-Pearson bound) and
the smallest p-value any clean image reached. Runs must read the same model with the same search::

    .venv/bin/python docs/scripts/fpr_total.py docs/results/fpr-staged-all-s1[1-7].json \
        --out docs/results/fpr-staged-total.md

A search that gained stages since a run (the corner stage in session 23, the inset stage in session 24, the turn
stage in session 25, the slide stage in session 26, the slide stage's extra bands ``slide:bands`` in session 27,
written by ``docs/scripts/fpr_slide_bands.py``, the anywhere stage in session 32, and its refined rows
``anywhere:refine``, written by ``docs/scripts/fpr_anywhere_refine.py``) is covered by ``--stage-alone FILE``:
a run of that stage alone (``robusthide fpr --search corner``) with the same seed, split, photos and counts, so
over the same clean images. The staged decision detects when one of its stages does, each at its share of the
budget, and the stage alone has the whole budget: an image that neither run flags is not flagged by the staged
search with the new stage either (the other stages' shares only shrank).
A run read a stage itself when its results file lists it (``stages``, written since session 24) or when
``--read STAGE:FILE`` says so (runs made before the field existed, after the stage was added).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SAME_IMAGES = ("seed", "data", "split", "photo_patches", "synthetic")


def upper_95(fp: int, n: int) -> float:
    """One-sided 95 % upper bound of a rate seen ``fp`` times in ``n``."""
    if fp == 0:
        return 3.0 / n
    from scipy.stats import beta

    return float(beta.ppf(0.95, fp + 1, n - fp))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path, help="robusthide fpr results (.json) of the staged search")
    ap.add_argument("--stage-alone", action="append", default=[], type=Path, metavar="FILE",
                    help="a run of one later stage alone over the same images as one of FILES (repeatable)")
    ap.add_argument("--read", action="append", default=[], metavar="STAGE:FILE",
                    help="the staged run FILE read STAGE itself (made after STAGE was added; repeatable)")
    ap.add_argument("--out", type=Path, required=True, help="Markdown table to write")
    a = ap.parse_args(argv)
    runs = [json.loads(f.read_text()) for f in a.files]
    kinds = {(r["model"], r["search"], r.get("mirror")) for r in runs}
    if len(kinds) != 1:
        sys.exit(f"fpr_total: the runs read different models or searches: {sorted(map(str, kinds))}")
    model, search, _ = kinds.pop()
    alone: dict[tuple[int, str], tuple[Path, dict]] = {}
    for f in a.stage_alone:
        r = json.loads(f.read_text())
        match = [i for i, s in enumerate(runs) if all(s.get(k) == r.get(k) for k in SAME_IMAGES)]
        if not match or r["model"] != model:
            sys.exit(f"fpr_total: {f} has no staged run over the same images (same {', '.join(SAME_IMAGES)})")
        alone[(match[0], r["search"])] = (f, r)
    read = {(i, s) for i, r in enumerate(runs) for s in r.get("stages", [])}
    for spec in a.read:
        stage, _, name = spec.partition(":")
        idx = [i for i, f in enumerate(a.files) if str(f) == name or f.name == name]
        if not idx:
            sys.exit(f"fpr_total: --read {spec}: {name} is not one of the staged runs")
        read.add((idx[0], stage))
    order = ("corner", "inset", "turn", "slide", "slide:bands", "anywhere", "anywhere:refine")  # as they were added
    stages = sorted({s for _, s in alone}, key=lambda s: order.index(s) if s in order else len(order))
    n = sum(r["clean_images"] for r in runs)
    fp = sum(r["false_positives"] for r in runs) + sum(r["false_positives"] for _, r in alone.values())
    cmd = (" ".join(str(f) for f in a.files) + "".join(f" --stage-alone {f}" for f in a.stage_alone)
           + "".join(f" --read {x}" for x in a.read))
    lines = [f"# False positives of `{model}` through the `{search}` search, {len(runs)} runs together", "",
             f"Command: `.venv/bin/python docs/scripts/fpr_total.py {cmd} --out {a.out}`", "",
             f"| results file | seed | clean images | false positives | smallest p-value |"
             f"{''.join(f' `{s}` stage: alone (file, false positives) or read by the run |' for s in stages)}",
             "|---|---:|---:|---:|---:|" + "---|" * len(stages)]
    for i, (f, r) in enumerate(zip(a.files, runs)):
        extra = ""
        for s in stages:
            g = alone.get((i, s))
            extra += f" {g[0].name}, {g[1]['false_positives']} |" if g else (" read by the run |" if (i, s) in read
                                                                              else " - |")
        lines.append(f"| {f.name} | {r['seed']} | {r['clean_images']} | {r['false_positives']} | "
                     f"{r['min_p_value']:.2e} |{extra}")
    covered = {s: sum(r["clean_images"] for i, r in enumerate(runs) if (i, s) in alone or (i, s) in read)
               for s in stages}
    full = sum(r["clean_images"] for i, r in enumerate(runs)
               if all((i, s) in alone or (i, s) in read for s in stages))
    lines += [f"| **total** | | **{n}** | **{fp}** | {min(r['min_p_value'] for r in runs):.2e} |"
              + "".join(f" {covered[s]} images |" for s in stages), "",
              f"Observed rate {fp / n:.2e}; 95 % upper bound {upper_95(fp, n):.1e}; design rate 1e-6 (the "
              "p-value threshold, which pays for every hypothesis of the search). Each run's own file gives its "
              "command, its crops (random positions and sizes, 64-1024 px, of the photos its `--split` names) and "
              "its synthetic images."]
    if stages:
        lines += ["", f"Stages added to the staged search after some of these runs were made ({', '.join(stages)}) "
                  "were run alone over the same images: the staged search flags an image only when one of its "
                  "stages does at its share of the budget, so an image that neither its staged run nor the stage "
                  "alone (with the whole budget) flags is clean for the staged search with that stage too. "
                  f"**{full} of the {n} images are covered for every stage** (alone, or read by the run itself); "
                  f"the count for the staged search as it is now is {full} clean images, {fp} false positives"
                  + (f", 95 % upper bound {upper_95(fp, full):.1e}." if full else ".")]
    if "slide:bands" in stages:
        lines += ["", "`slide:bands`: the bands the slide stage gained in session 27 (`SLIDE_BANDS`), alone "
                  "(docs/scripts/fpr_slide_bands.py). The stage's other hypotheses are those its earlier runs read; "
                  "with more hypotheses in the stage each one's threshold only shrank, so an image that neither the "
                  "earlier slide run nor the new bands alone flags is clean for the slide stage as it is now."]
    if "anywhere:refine" in stages:
        lines += ["", "`anywhere:refine`: the anywhere stage's refined rows (session 32, on by default since session "
                  "33), alone (docs/scripts/fpr_anywhere_refine.py). With them on, every row of the stage, screened or "
                  "refined, pays for the 103 272 rows of the finer grid, a stricter threshold than either run's, so an "
                  "image that neither the `anywhere` run (the screened rows) nor this one flags is clean for the "
                  "stage as it is now."]
    a.out.write_text("\n".join(lines) + "\n")
    print(f"{fp} false positives in {n} clean images -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
