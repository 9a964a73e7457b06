"""``robusthide bench memory``: peak memory of ``robusthide embed`` against image size, what the pixel limit
(:data:`robusthide.io.safe.MAX_PIXELS`) bounds.

For each size, a photo-like PNG is written into a temporary folder and ``python -m robusthide embed`` runs on it
in a fresh process (the whole path: read, mark with the model's default refinement, encode, re-read and verify);
that child's peak resident memory (``ru_maxrss`` of its own rusage, from ``os.wait4``) and wall time go to
``OUT.json`` and ``OUT.md``. The library never imports the CLI: the child is the installed command.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def child_peak(argv: list[str], stderr_path: Path) -> tuple[int, int]:
    """(exit code, peak resident memory in kB) of ``python -m robusthide ARGV`` run to its end in a child
    process (its own rusage, so earlier children do not count); its stderr goes to ``stderr_path``."""
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "robusthide", *argv], stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, int(usage.ru_maxrss)


def _photo(mp: float, path: Path) -> tuple[int, int]:
    """A smooth photo-like RGB PNG of about ``mp`` megapixels (4:3), written with little memory."""
    w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
    h = int(round(mp * 1e6 / w))
    small = np.random.default_rng(0).integers(0, 256, (max(2, h // 64), max(2, w // 64), 3), dtype=np.uint8)
    Image.fromarray(small).resize((w, h), Image.BICUBIC).save(path, compress_level=1)
    return w, h


def run(out: str | Path, megapixels: list[float], refine: int | None = None, note: str = "",
        progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Measure each size; write OUT.json and OUT.md; return the results."""
    extra = ["--refine", str(refine)] if refine is not None else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="robusthide-mem-") as d:
        for mp in megapixels:
            src, dst = Path(d) / "in.png", Path(d) / "out.png"
            w, h = _photo(mp, src)
            argv = ["embed", str(src), "-o", str(dst), "-m", "7", "--max-pixels", str(w * h), *extra]
            t0 = time.perf_counter()
            code, kb = child_peak(argv, Path(d) / "stderr.txt")
            wall = time.perf_counter() - t0
            stderr = (Path(d) / "stderr.txt").read_text(errors="replace")
            rows.append({"megapixels": round(w * h / 1e6, 2), "width": w, "height": h, "exit": code,
                         "peak_rss_mb": round(kb / 1024, 1) if kb else None,
                         "bytes_per_pixel": round(kb * 1024 / (w * h), 1) if kb else None,
                         "wall_s": round(wall, 1), "stderr": stderr.strip().splitlines()[-1:] or []})
            if progress:
                progress(rows[-1])
            src.unlink()
            dst.unlink(missing_ok=True)
    out = Path(out)
    cmd = (f"robusthide bench memory --out {out} --megapixels {' '.join(f'{m:g}' for m in megapixels)}"
           + (f" --refine {refine}" if refine is not None else ""))
    doc = {"command": cmd, "note": note, "machine": f"{platform.machine()}, python {platform.python_version()}",
           "rows": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    md = ["# Peak memory of `robusthide embed`", "", f"Command: `{cmd}`", "", doc["machine"] + (f"; {note}" if note
          else ""), "", "| megapixels | size | exit | peak RSS (MB) | bytes / pixel | wall (s) |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['megapixels']} | {r['width']} x {r['height']} | {r['exit']} | {r['peak_rss_mb']} | "
           f"{r['bytes_per_pixel']} | {r['wall_s']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    return doc
