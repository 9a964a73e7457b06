"""``robusthide bench onnx``: install size and speed of the ONNX runtime path against torch.

* Install size: the bytes of every file each distribution installed (its ``RECORD``), with its required
  dependencies, transitively; numpy, needed by both, is counted apart.
* Speed: embed (fast path, ``refine=0``) and extract times, the fastest of ``repeats`` runs after a warm-up
  (the least disturbed on a shared machine), on in-memory uint8 images at 512 x 512 and 1920 x 1080, for
  :class:`robusthide.watermark.watermarker.Watermarker` (torch) and :class:`robusthide.onnxrt.OnnxWatermarker`
  (onnxruntime, as many threads as torch uses).
Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from robusthide import RobustHideError
from robusthide.bench.timing import best_seconds
from robusthide.io.results import write_keeping_reading

if TYPE_CHECKING:  # numpy and torch load when a bench runs, not when the CLI starts
    import numpy as np

SIZES = {"512x512": (512, 512), "1920x1080": (1080, 1920)}
SHARED = {"numpy"}



def _name(req: str) -> str | None:
    """The distribution named by a requirement string, or None when it only applies to an extra."""
    if "extra ==" in req:
        return None
    return re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")


def dist_bytes(name: str) -> int:
    """Bytes of the files distribution ``name`` installed (0 when it is not installed)."""
    try:
        files = metadata.distribution(name).files or []
    except metadata.PackageNotFoundError:
        return 0
    total = 0
    for f in files:
        p = Path(str(f.locate()))
        if p.is_file():
            total += p.stat().st_size
    return total


def install_size(name: str) -> dict:
    """MB of ``name`` alone and with its required dependencies (transitively, without :data:`SHARED`)."""
    seen: set[str] = set()
    todo = [name.lower()]
    while todo:
        n = todo.pop()
        if n in seen or n in SHARED:
            continue
        seen.add(n)
        try:
            todo += [d for d in (_name(r) for r in metadata.requires(n) or []) if d]
        except metadata.PackageNotFoundError:
            continue
    own = dist_bytes(name)
    return {"package": name, "version": metadata.version(name), "mb": round(own / 2**20, 1),
            "with_deps_mb": round(sum(dist_bytes(n) for n in seen) / 2**20, 1), "deps": sorted(seen - {name.lower()})}


def _image(h: int, w: int) -> np.ndarray:
    import numpy as np
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.BICUBIC))


def _best_ms(fn, repeats: int) -> float:
    return round(1000 * best_seconds(fn, repeats), 1)


def _time(wm, img: np.ndarray, bits: np.ndarray, kw: dict, marked: np.ndarray, repeats: int) -> dict:
    """Fastest embed and extract ms of one engine on one image, and the message it reads back."""
    return {"embed_ms": _best_ms(lambda: wm.embed_bits(img, bits, **kw), repeats),
            "extract_ms": _best_ms(lambda: wm.extract(marked), repeats), "message": wm.extract(marked).message}


#: run by :func:`torch_free_check` in the other interpreter: argv = ONNX folder, PNG to mark
CHECK = """
import json, sys
from importlib import metadata
import numpy as np
from PIL import Image
from robusthide.onnxrt import OnnxWatermarker
wm = OnnxWatermarker(sys.argv[1])
r = wm.extract(wm.embed(np.asarray(Image.open(sys.argv[2])), 1234))
dists = {d.metadata["Name"]: sum(f.locate().stat().st_size for f in (d.files or []) if f.locate().is_file())
         for d in metadata.distributions() if d.metadata["Name"] not in ("pip", "setuptools", "wheel", "robusthide")}
print(json.dumps({"torch_imported": "torch" in sys.modules, "message": r.message, "detected": r.detected,
                  "distributions": sorted(dists), "mb": round(sum(dists.values()) / 2**20, 1)}))
"""


def torch_free_check(python: str, folder: str, png: str) -> dict:
    """Mark and read ``png`` with the ONNX runtime in another interpreter ``python`` (a virtual environment
    holding only the runtime's dependencies, this source tree on PYTHONPATH): whether torch was imported,
    the message read back, and the distributions installed there with their total MB (pip, setuptools
    and robusthide itself left out)."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    p = subprocess.run([python, "-c", CHECK, folder, png], capture_output=True, text=True, timeout=600, env=env)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise RobustHideError(f"the torch-free check failed in {python}: {last}")
    return {"python": python, **json.loads(p.stdout)}


def run(out: str, model: str = "default", repeats: int = 7, torch_free_python: str | None = None) -> dict:
    load0 = round(os.getloadavg()[0], 2)  # other work on the machine skews the figures: reported
    import numpy as np
    import torch

    from robusthide.onnxrt import OnnxWatermarker
    from robusthide.onnxrt.export import export_onnx
    from robusthide.watermark.watermarker import Watermarker

    tw = Watermarker.from_pretrained(model)
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as d:
        export_onnx(model, d)
        ow = OnnxWatermarker(d, threads=threads)
        bits = tw.encode_message(1234)
        rows = []
        for name, (h, w) in SIZES.items():
            img = _image(h, w)
            marked = {}
            for engine, wm, kw in (("torch", tw, {"refine": 0}), ("onnxruntime", ow, {})):
                marked[engine] = wm.embed_bits(img, bits, **kw)
                rows.append({"size": name, "engine": engine} | _time(wm, img, bits, kw, marked[engine], repeats))
            rows[-1]["max_diff_grey_levels"] = int(np.abs(marked["torch"].astype(int) - marked["onnxruntime"]).max())
        free = None
        if torch_free_python:
            from PIL import Image

            Image.fromarray(_image(512, 512)).save(Path(d) / "photo.png")
            free = torch_free_check(torch_free_python, d, str(Path(d) / "photo.png"))
    import onnxruntime

    sizes = [install_size("torch"), install_size("onnxruntime")]
    cmd = f"robusthide bench onnx --out {out} --model {model} --repeats {repeats}"
    cmd += f" --torch-free-python {torch_free_python}" if torch_free_python else ""
    res = {"command": cmd, "model": model, "torch_free": free,
           "threads": threads, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
           "numpy_mb": round(dist_bytes("numpy") / 2**20, 1), "install": sizes, "rows": rows,
           "load_average": [load0, round(os.getloadavg()[0], 2)]}
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"# ONNX runtime path against torch ({model})", "", f"Command: `{res['command']}`", "",
             "## Install size", "",
             "Bytes of the files each distribution installed (its RECORD), alone and with its required "
             f"dependencies; numpy ({res['numpy_mb']} MB) is needed by both and not counted.", "",
             "| package | version | MB | with dependencies, MB | dependencies |", "|---|---|---|---|---|"]
    for s in sizes:
        lines.append(f"| {s['package']} | {s['version']} | {s['mb']} | {s['with_deps_mb']} | {', '.join(s['deps'])} |")
    if free:
        names = ", ".join(free["distributions"])
        lines += ["", f"A virtual environment with only the runtime's dependencies ({names}) "
                  f"holds {free['mb']} MB (numpy included; pip, setuptools and robusthide's own source left out); "
                  "with this source tree on "
                  f"PYTHONPATH, `robusthide.onnxrt` marked a 512 x 512 photo there and read back {free['message']} "
                  f"(detected: {free['detected']}); torch imported: {free['torch_imported']}."]
    lines += ["", f"## Speed ({threads} threads, torch {res['torch']}, onnxruntime {res['onnxruntime']})", "",
              f"Fastest of {repeats} runs after a warm-up, in-memory uint8 images (file I/O excluded); embed is the "
              "fast path "
              "(`refine=0`), extract = decode + BCH + p-value. The last column is the largest difference between "
              "the two marked images, in grey levels. 1-minute load average at the start and the end: "
              f"{res['load_average']} (the machine is shared).", "",
              "| image | engine | embed ms | extract ms | message read | max difference |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size']} | {r['engine']} | {r['embed_ms']} | {r['extract_ms']} | {r['message']} | "
                     f"{r.get('max_diff_grey_levels', '')} |")
    write_keeping_reading(p.with_suffix(".md"), "\n".join(lines) + "\n")  # a person's reading stays
    return res
