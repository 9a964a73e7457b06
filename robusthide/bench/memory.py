"""``robusthide bench memory``: peak memory of ``robusthide embed`` against image size, what the pixel limit
(:data:`robusthide.io.safe.MAX_PIXELS`) bounds.

For each size, a photo-like PNG is written into a temporary folder and ``robusthide embed`` runs on it in a
fresh process (the whole path: read, mark with the model's default refinement, encode, re-read and verify);
that process's peak resident memory (``ru_maxrss``) and wall time go to ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import json
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

_CHILD = """
import resource, sys
from robusthide.cli.main import main
rc = main(sys.argv[1:])
sys.stdout.write(f"MAXRSS_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} RC {rc}\\n")
"""


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
            res = subprocess.run([sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True, check=False)
            wall = time.perf_counter() - t0
            line = [ln for ln in res.stdout.splitlines() if ln.startswith("MAXRSS_KB")]
            kb = int(line[0].split()[1]) if line else None
            rows.append({"megapixels": round(w * h / 1e6, 2), "width": w, "height": h, "exit": res.returncode,
                         "peak_rss_mb": round(kb / 1024, 1) if kb else None,
                         "bytes_per_pixel": round(kb * 1024 / (w * h), 1) if kb else None,
                         "wall_s": round(wall, 1), "stderr": res.stderr.strip().splitlines()[-1:] or []})
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
