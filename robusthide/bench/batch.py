"""``robusthide bench batch``: :meth:`Watermarker.embed_batch` / :meth:`Watermarker.extract_batch` against
one call per image.

Sets of ``n`` in-memory uint8 images (file I/O excluded): all 512 x 512, all 1920 x 1080, and mixed sizes
(256 px to 1080p). Embed is the fast path (``refine=0``; with the refinement every image runs on its own, so a
batch gains nothing). The fastest of ``repeats`` runs after a warm-up (the least disturbed on a shared
machine); images per second. The command line: ``--list FILE`` against one process per file. Writes
``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

from robusthide.bench.timing import best_seconds
from robusthide.io.results import write_keeping_reading

if TYPE_CHECKING:  # numpy and torch load when a bench runs, not when the CLI starts
    import numpy as np

MIXED = [(256, 256), (512, 512), (480, 640), (1080, 1920), (768, 1024), (300, 451), (1024, 768), (512, 384)]



def _images(kind: str, n: int) -> list[np.ndarray]:
    import numpy as np
    from PIL import Image
    from skimage import data

    srcs = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    sizes = {"512x512": [(512, 512)], "1920x1080": [(1080, 1920)], "mixed": MIXED}[kind]
    return [np.asarray(Image.fromarray(srcs[i % len(srcs)]).resize((w, h), Image.BICUBIC))
            for i, (h, w) in ((i, sizes[i % len(sizes)]) for i in range(n))]


def _time_set(wm, imgs: list[np.ndarray], repeats: int, batch_size: int) -> dict:
    """Images per second of one set, one call per image and batched, and whether every message reads back."""
    n = len(imgs)
    msgs = [i % 2048 for i in range(n)]
    marked = wm.embed_batch(imgs, msgs, refine=0, batch_size=batch_size)
    t = {
        "embed_single": best_seconds(lambda: [wm.embed(im, m, refine=0) for im, m in zip(imgs, msgs)], repeats),
        "embed_batch": best_seconds(lambda: wm.embed_batch(imgs, msgs, refine=0, batch_size=batch_size), repeats),
        "extract_single": best_seconds(lambda: [wm.extract(im) for im in marked], repeats),
        "extract_batch": best_seconds(lambda: wm.extract_batch(marked, batch_size=batch_size), repeats),
    }
    return {**{f"{k}_per_s": round(n / v, 1) for k, v in t.items()},
            "embed_speedup": round(t["embed_single"] / t["embed_batch"], 2),
            "extract_speedup": round(t["extract_single"] / t["extract_batch"], 2),
            "all_read": [r.message for r in wm.extract_batch(marked)] == msgs}


def _cli(n: int, model: str) -> list[dict]:
    """Seconds of ``robusthide embed|extract --list`` (one process) against one ``robusthide`` process per
    file, on ``n`` 512 x 512 PNG files (fast-path embed); one run each, process start-up included."""
    import subprocess
    import sys
    import tempfile

    from PIL import Image

    def timed(*args: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "robusthide", *args], check=True, capture_output=True)
        return time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "in"
        src.mkdir()
        files = []
        for i, im in enumerate(_images("512x512", n)):
            files.append(src / f"img{i:03d}.png")
            Image.fromarray(im).save(files[-1])
        lst = Path(d) / "list.txt"
        lst.write_text("".join(f"{f}\n" for f in files))
        common = ["-m", "5", "--refine", "0", "--model", model]
        t = {"embed_files": sum(timed("embed", str(f), "-o", str(Path(d) / "one" / f.name), *common) for f in files),
             "embed_list": timed("embed", "--list", str(lst), "-o", str(Path(d) / "listed"), *common)}
        marked = sorted((Path(d) / "listed").glob("*.png"))
        t["extract_files"] = sum(timed("extract", str(f), "--json", "--model", model) for f in marked)
        t["extract_list"] = timed("extract", "--list", str(lst), "--json", "--model", model)
    return [{"command": cmd, "n": n, "files_s": round(t[f"{cmd}_files"], 1), "list_s": round(t[f"{cmd}_list"], 1),
             "speedup": round(t[f"{cmd}_files"] / t[f"{cmd}_list"], 1)} for cmd in ("embed", "extract")]


def run(out: str, model: str = "default", n: int = 16, repeats: int = 3, batch_size: int = 64,
        cli: bool = True) -> dict:
    load0 = round(os.getloadavg()[0], 2)  # other work on the machine skews the figures: reported
    import torch

    from robusthide.watermark.watermarker import Watermarker

    wm = Watermarker.from_pretrained(model)
    rows = []
    for kind in ("512x512", "1920x1080", "mixed"):
        rows.append({"images": kind, "n": n, **_time_set(wm, _images(kind, n), repeats, batch_size)})
    cli_rows = _cli(n, model) if cli else []
    cmd = f"robusthide bench batch --out {out} --model {model} --n {n} --repeats {repeats} --batch-size {batch_size}"
    cmd += "" if cli else " --no-cli"
    res = {"command": cmd, "threads": torch.get_num_threads(), "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(), "rows": rows, "cli": cli_rows,
           "load_average": [load0, round(os.getloadavg()[0], 2)]}
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"# Batches against one call per image ({model}; {res['threads']} threads, torch {res['torch']})", "",
             f"Command: `{cmd}`", "", "## The Python API: `embed_batch` / `extract_batch` against one call per image",
             "",
             f"{n} in-memory uint8 images per set (file I/O excluded), the fastest of {repeats} runs after a warm-up; "
             "embed is the fast path (`refine=0`), extract = decode + BCH + p-value. Images per second. "
             f"1-minute load average at the start and the end: {res['load_average']} (the machine is shared).", "",
             "| images | embed, one at a time | embed_batch | speed-up | extract, one at a time | extract_batch | "
             "speed-up | every message read |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['images']} | {r['embed_single_per_s']} | {r['embed_batch_per_s']} | "
                     f"{r['embed_speedup']}x | "
                     f"{r['extract_single_per_s']} | {r['extract_batch_per_s']} | {r['extract_speedup']}x | "
                     f"{r['all_read']} |")
    if cli_rows:
        lines += ["", "## The command line: `--list FILE` against one process per file", "",
                  f"{n} PNG files of 512 x 512; `robusthide embed --list FILE -o DIR -m 5 --refine 0` (and "
                  "`extract --list FILE --json`) in one process, against one `robusthide embed FILE -o OUT ...` "
                  "(`extract FILE --json`) process per file. Seconds for all files, one run, process start-up "
                  "(Python, torch, the model) included.", "",
                  "| command | one process per file, s | --list, s | speed-up |", "|---|---|---|---|"]
        lines += [f"| {r['command']} | {r['files_s']} | {r['list_s']} | {r['speedup']}x |" for r in cli_rows]
    write_keeping_reading(p.with_suffix(".md"), "\n".join(lines) + "\n")  # a person's reading stays
    return res
