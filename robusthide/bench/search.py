"""``robusthide bench search``: what each extraction search costs at 1080p (issue 19's speed target: extract
<= 100 ms for 1080p on 2 cores, including any search).

``Watermarker.extract`` on an in-memory uint8 1080p photo (marked, and the same photo unmarked, where every
hypothesis is decoded), and the marked photo turned by 3 degrees (black corners), for the plain read without
the mirror image (what extraction was before session 11), the plain read with the mirror image,
``--search reframe``, ``--search rotate``, ``--search crop``, ``--search corner`` (session 23), ``--search inset``
(session 24), ``--search turn`` (session 25), ``--search slide`` (session 26) and the default since session 19,
``--search staged``; for a ``geo``
model, the plain read and its geometry search. Median of ``repeats`` runs after a warm-up; the load average is
recorded, since on a shared machine only the ratios to the plain read are worth quoting.
Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

#: (label, search, mirror) of every row
CASES = (("plain read, no mirror (before session 11)", "none", False),
         ("--search none: as it is + mirror (the default before session 19)", "none", True),
         ("--search reframe", "reframe", True), ("--search rotate", "rotate", True),
         ("--search crop", "crop", True), ("--search corner", "corner", True), ("--search inset", "inset", True),
         ("--search turn", "turn", True), ("--search slide", "slide", True), ("--search anywhere", "anywhere", True),
         ("default: --search staged (none, then inset, reframe, slide, rotate, crop, corner, turn, anywhere)",
          "staged", True))
#: the rows for a periodic ``geo`` model, whose own search is ``geometry`` (quick stage, then the full search
#: when the quick stage detects nothing, as on the unmarked photo)
GEO_CASES = (("plain read, no mirror", "none", False), ("default: --search geometry", "geometry", True))


def run(out: str, model: str = "default", repeats: int = 5, threads: int | None = None) -> dict:
    import torch  # lazy: `robusthide --help` must not import torch

    from robusthide.bench.api import _image
    from robusthide.watermark.watermarker import Watermarker

    if threads is not None:
        torch.set_num_threads(threads)
    wm = Watermarker.from_pretrained(model)
    img = _image(1080, 1920)
    marked = wm.embed(img, 1234, refine=0)
    from robusthide.codecs import get_codec

    turned = get_codec("rotate:3")(marked[None]).images[0]
    load0 = os.getloadavg()[0]
    rows = []
    geo = wm.model.default_search == "geometry"
    for label, search, mirror in GEO_CASES if geo else CASES:
        w = Watermarker(wm.model, mirror=mirror)
        row: dict = {"case": label, "search": search, "mirror": mirror}
        for kind, x in (("marked", marked), ("turned", turned), ("clean", img)):
            r = w.extract(x, search=search)
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                r = w.extract(x, search=search)
                ts.append(time.perf_counter() - t0)
            row[f"{kind}_ms"] = round(1000 * statistics.median(ts), 1)
            row[f"{kind}_detected"] = bool(r.detected)
        rows.append(row)
    base = rows[0]
    for row in rows:
        row["marked_x"] = round(row["marked_ms"] / base["marked_ms"], 2)
        row["clean_x"] = round(row["clean_ms"] / base["clean_ms"], 2)
        row["turned_x"] = round(row["turned_ms"] / base["turned_ms"], 2)
    cmd = f"robusthide bench search --out {out} --model {model} --repeats {repeats}" + (
        f" --threads {threads}" if threads is not None else "")
    res = {"command": cmd, "threads": torch.get_num_threads(), "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)], "rows": rows}
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.with_suffix(".json").write_text(json.dumps(res, indent=1))
    lines = [f"# Extraction searches at 1080p ({model}; {res['threads']} threads, torch {res['torch']})", "",
             f"Command: `{cmd}`", "",
             f"Median of {repeats} runs on an in-memory uint8 1920x1080 photo, marked (fast path), marked and "
             f"turned by 3 degrees, and unmarked (every hypothesis decoded). 1-minute load average at the start "
             f"and the end: {res['load_average']} "
             f"on {res['cpus']} CPUs: on a shared machine quote the ratios, not the times.", "",
             "| extraction | marked ms | x plain | detected | turned 3 deg ms | x plain | detected | clean ms | "
             "x plain | detected |", "|---|---:|---:|---|---:|---:|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['marked_ms']} | {r['marked_x']} | {r['marked_detected']} | "
                     f"{r['turned_ms']} | {r['turned_x']} | {r['turned_detected']} | "
                     f"{r['clean_ms']} | {r['clean_x']} | {r['clean_detected']} |")
    p.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return res
