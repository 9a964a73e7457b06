"""``robusthide bench onnx-install``: a real ``pip install 'robusthide[onnx]'`` against the full install.

Given the interpreter of a fresh virtual environment where ``pip install 'robusthide[onnx]'`` ran, and the current
interpreter (the full install: torch and ``make``'s ``.[dev,jxl]``), for each:

* what is installed: the distributions, whether torch can be found, where ``robusthide`` is imported from
  (the installed copy: the probe runs outside the source tree, without PYTHONPATH);
* its size on disk: every file under ``sys.prefix`` (apparent bytes, as ``du -sb``), ``du -sk`` where there is
  a ``du``, and the bytes of the distributions' RECORD files (pip, setuptools and wheel left out);
* the CLI as a person runs it, in wall-clock seconds (start-up and imports included), fastest of ``repeats``
  after a warm-up: ``robusthide embed astronaut.png -o marked.png -m 1234 --refine 0`` (the fast path in both)
  and ``robusthide extract marked.png --json``; the message each reads, and the largest difference between
  the two environments' marked files in grey levels.

Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from robusthide import RobustHideError
from robusthide.io.results import write_keeping_reading

#: run in each interpreter (cwd: a temporary folder, no PYTHONPATH): what is installed and how big it is
PROBE = """
import importlib.util, json, os, sys
from importlib import metadata
def tree(p):
    total = 0
    for root, _, files in os.walk(p):
        for f in files:
            fp = os.path.join(root, f)
            if not os.path.islink(fp):
                total += os.lstat(fp).st_size
    return total
dists, record = {}, 0
for d in metadata.distributions():
    name = d.metadata["Name"]
    dists[name] = d.version
    if name not in ("pip", "setuptools", "wheel"):
        record += sum(f.locate().stat().st_size for f in (d.files or []) if f.locate().is_file())
import robusthide
print(json.dumps({"python": sys.version.split()[0], "prefix": sys.prefix,
                  "torch_found": importlib.util.find_spec("torch") is not None,
                  "onnxruntime_found": importlib.util.find_spec("onnxruntime") is not None,
                  "robusthide_from": os.path.dirname(robusthide.__file__), "distributions": dict(sorted(dists.items())),
                  "record_mb": round(record / 2**20, 1), "prefix_mb": round(tree(sys.prefix) / 2**20, 1)}))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def probe(python: str, cwd: str) -> dict:
    """What :data:`PROBE` reports in interpreter ``python``, plus ``du -sk`` of its prefix where there is a du."""
    p = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=600, env=_env(), cwd=cwd)
    if p.returncode != 0:
        raise RobustHideError(f"{python}: the probe failed: {(p.stderr.strip().splitlines() or ['no output'])[-1]}")
    info = json.loads(p.stdout)
    du = shutil.which("du")
    if du:
        out = subprocess.run([du, "-sk", info["prefix"]], capture_output=True, text=True, timeout=600).stdout
        info["du_mb"] = round(int(out.split()[0]) / 1024, 1) if out.split() else None
    return info


def _cli(python: str, args: list[str], cwd: str, repeats: int) -> tuple[float, str]:
    """(fastest wall seconds of ``python -m robusthide ARGS`` after a warm-up, the stdout of the last run)."""
    best, out = float("inf"), ""
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        p = subprocess.run([python, "-m", "robusthide", *args], capture_output=True, text=True, timeout=600,
                           env=_env(), cwd=cwd)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise RobustHideError(f"{python} -m robusthide {' '.join(args)}: "
                                  f"{(p.stderr.strip().splitlines() or ['failed'])[-1]}")
        out = p.stdout
        if i:
            best = min(best, dt)
    return round(best, 2), out


def run(python: str, out: str, repeats: int = 3) -> dict:
    """Probe and time the ``[onnx]`` environment of ``python`` against the current interpreter's."""
    import numpy as np
    from PIL import Image
    from skimage import data

    envs = {"onnx": python, "full": sys.executable}
    res: dict = {"command": f"robusthide bench onnx-install --python {python} --out {out} --repeats {repeats}",
                 "repeats": repeats, "load_average": [round(os.getloadavg()[0], 2)], "envs": {}}
    with tempfile.TemporaryDirectory() as d:
        Image.fromarray(data.astronaut()).save(Path(d) / "astronaut.png")
        marked = {}
        for name, py in envs.items():
            info = probe(py, d)
            m = f"marked-{name}.png"
            embed_s, _ = _cli(py, ["embed", "astronaut.png", "-o", m, "-m", "1234", "--refine", "0", "--overwrite"],
                              d, repeats)
            extract_s, text = _cli(py, ["extract", m, "--json", "--bits"], d, repeats)
            row = json.loads(text)
            marked[name] = (np.asarray(Image.open(Path(d) / m)).astype(int), row["bits"])
            res["envs"][name] = {**info, "embed_s": embed_s, "extract_s": extract_s, "message": row["message"],
                                 "detected": row["detected"]}
        res["max_diff_grey_levels"] = int(np.abs(marked["onnx"][0] - marked["full"][0]).max())
        res["same_bits"] = marked["onnx"][1] == marked["full"][1]
    res["load_average"].append(round(os.getloadavg()[0], 2))
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    write_keeping_reading(p.with_suffix(".md"), _markdown(res))
    return res


def _markdown(res: dict) -> str:
    o, f = res["envs"]["onnx"], res["envs"]["full"]
    lines = ["# A `pip install 'robusthide[onnx]'` against the full install", "", f"Command: `{res['command']}`", "",
             "| | `[onnx]` venv | full venv |", "|---|---|---|",
             f"| interpreter | `{o['prefix']}` | `{f['prefix']}` |",
             f"| torch installed | {o['torch_found']} | {f['torch_found']} |",
             f"| onnxruntime installed | {o['onnxruntime_found']} | {f['onnxruntime_found']} |",
             f"| robusthide imported from | `{o['robusthide_from']}` | `{f['robusthide_from']}` |",
             f"| distributions | {len(o['distributions'])} | {len(f['distributions'])} |",
             f"| size on disk, `du -sk` (MB) | {o.get('du_mb')} | {f.get('du_mb')} |",
             f"| files under the prefix (MB) | {o['prefix_mb']} | {f['prefix_mb']} |",
             f"| RECORD bytes of the distributions (MB) | {o['record_mb']} | {f['record_mb']} |",
             f"| `embed astronaut.png -o marked.png -m 1234 --refine 0` (s) | {o['embed_s']} | {f['embed_s']} |",
             f"| `extract marked.png --json` (s) | {o['extract_s']} | {f['extract_s']} |",
             f"| message read back | {o['message']} | {f['message']} |", "",
             f"The two environments' marked files differ by at most {res['max_diff_grey_levels']} grey level(s); "
             f"the bits each read from its own file are {'identical' if res['same_bits'] else 'different'}. "
             f"Times: wall clock of the whole command (start-up and imports included), fastest of {res['repeats']} "
             f"after a warm-up, 512 x 512 PNG; 1-minute load average at the start and the end: "
             f"{res['load_average']} (the machine is shared). The full venv is `make`'s (`.[dev,jxl]` with the CPU "
             "wheel of torch: also Ray, playwright, the service...).", "",
             "Distributions of the `[onnx]` venv: " + ", ".join(f"{k} {v}" for k, v in o["distributions"].items())
             + "."]
    return "\n".join(lines) + "\n"
