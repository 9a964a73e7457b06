"""``robusthide bench threads``: fast embed and extract at 1080p against torch's intra-op threads, with and
without a busy core (issue 20, item 12: one call must never be several times slower under contention).

Each configuration runs in a fresh process restricted to ``cores`` CPUs (``os.sched_setaffinity``), with
``torch.set_num_threads(threads)``; ``busy`` spinning processes are pinned to the first of those CPUs for the
whole measurement. Times are medians over ``repeats`` calls after one warm-up, in milliseconds.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_CHILD = r"""
import json, os, sys, time
cores, threads, repeats = (int(v) for v in sys.argv[1:4])
if cores and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
import numpy as np, torch
if threads:
    torch.set_num_threads(threads)
from robusthide.watermark.watermarker import Watermarker
wm = Watermarker.from_pretrained("default")
rng = np.random.default_rng(0)
small = rng.integers(0, 256, (34, 60, 3), dtype=np.uint8)
from PIL import Image
img = np.asarray(Image.fromarray(small).resize((1920, 1080), Image.BICUBIC))
marked = wm.embed(img, 5, refine=0)
wm.extract(marked)
def med(f):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(ts)), 1)
print(json.dumps({"embed_ms": med(lambda: wm.embed(img, 5, refine=0)), "extract_ms": med(lambda: wm.extract(marked)),
                  "torch_threads": torch.get_num_threads()}))
"""

_SPIN = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


def _cpus(cores: int) -> list[int]:
    avail = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    return avail[:cores] if cores else avail


def measure(cores: int, threads: int, busy: int, repeats: int) -> dict[str, Any]:
    """One configuration: (cores the process may use, torch threads (0: torch's default), busy cores)."""
    spinners = [subprocess.Popen([sys.executable, "-c", _SPIN, str(c)]) for c in _cpus(cores)[:busy]]
    try:
        time.sleep(0.2)
        res = subprocess.run([sys.executable, "-c", _CHILD, str(cores), str(threads), str(repeats)],
                             capture_output=True, text=True, check=False)
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        from robusthide import RobustHideError

        raise RobustHideError(f"bench threads: the measuring process failed ({last})")
    row = json.loads(res.stdout.strip().splitlines()[-1])
    return {"cores": cores or len(_cpus(0)), "threads": threads or row["torch_threads"], "busy_cores": busy, **row}


def run(out: str | Path, cores: int = 2, threads: list[int] | None = None, busy: list[int] | None = None,
        repeats: int = 7, note: str = "") -> dict[str, Any]:
    """Measure every (threads, busy) pair on ``cores`` CPUs; write OUT.json and OUT.md; return the results."""
    threads = threads or [1, 2, 0]
    busy = busy if busy is not None else [0, 1]
    rows = [measure(cores, t, b, repeats) for b in busy for t in threads]
    cmd = (f"robusthide bench threads --out {out} --cores {cores} --threads {','.join(map(str, threads))} "
           f"--busy {','.join(map(str, busy))} --repeats {repeats}")
    res = {"command": cmd, "note": note, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs visible, python "
           f"{platform.python_version()}", "rows": rows}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    md = ["# Fast embed and extract at 1080p against torch threads, with a busy core", "", f"Command: `{cmd}`",
          "", res["machine"] + (f"; {note}" if note else ""), "",
          "| cores | torch threads | busy cores | embed (ms) | extract (ms) |", "|---|---|---|---|---|"]
    md += [f"| {r['cores']} | {r['threads']} | {r['busy_cores']} | {r['embed_ms']} | {r['extract_ms']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    return res
