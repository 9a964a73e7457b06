"""``robusthide bench api``: embed and extract times of the Watermarker on 512x512, 1080p and 12 MP images.

Median of several runs after a warm-up, on numpy uint8 images in memory (file decoding/encoding is not
included: it depends on the format, not on robusthide). A model with embed-time refinement is timed twice:
with its refinement in fp32 (the default) and in bf16 (``--refine-precision bf16``: fp32 where the CPU has no
native bf16, as the row says), and on the fast path (``refine=0``). Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

SIZES = {"512x512": (512, 512), "1920x1080": (1080, 1920), "12MP (4000x3000)": (3000, 4000)}


def _image(h: int, w: int) -> np.ndarray:
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.BICUBIC))


def run(out: str, model: str = "default", repeats: int = 7) -> dict:
    import dataclasses

    import torch  # lazy: `robusthide --help` must not import torch

    from robusthide.training.hardware import cpu_has_bf16
    from robusthide.watermark.watermarker import Watermarker

    wm = Watermarker.from_pretrained(model)
    bits = wm.encode_message(1234)
    rows = []
    cfg = wm.refine_config(None)
    steps = cfg.steps
    variants = [(dataclasses.replace(cfg, precision=p), p) for p in ("fp32", "bf16")] if steps else []
    variants.append((0, ""))
    native = cpu_has_bf16() or wm.device.type == "cuda"
    for (name, (h, w)), (refine, precision) in ((s, r) for s in SIZES.items() for r in variants):
        img = _image(h, w)
        marked = wm.embed_bits(img, bits, refine=refine)
        wm.extract(marked)
        te, tx = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            marked = wm.embed_bits(img, bits, refine=refine)
            t1 = time.perf_counter()
            res = wm.extract(marked)
            t2 = time.perf_counter()
            te.append(t1 - t0)
            tx.append(t2 - t1)
        rows.append({"size": name, "refine": steps if refine else 0, "precision": precision,
                     "embed_ms": round(1000 * statistics.median(te), 1),
                     "extract_ms": round(1000 * statistics.median(tx), 1),
                     "total_ms": round(1000 * (statistics.median(te) + statistics.median(tx)), 1),
                     "decoded_ok": bool(res.detected)})
    res = {"command": f"robusthide bench api --out {out} --model {model} --repeats {repeats}",
           "threads": torch.get_num_threads(), "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(), "native_bf16": native, "rows": rows}
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.with_suffix(".json").write_text(json.dumps(res, indent=1))
    lines = [f"# Watermarker speed ({model}; {res['threads']} threads, torch {res['torch']})", "",
             f"Command: `{res['command']}`", "",
             "Median of runs on in-memory uint8 images (file I/O excluded). extract = decode + BCH + p-value.", "",
             "| image | refine steps | embed ms | extract ms | embed + extract ms | message read back |",
             "|---|---|---|---|---|---|"]
    bf16 = "bf16" if native else "bf16 requested: fp32, no native bf16"
    for r in rows:
        how = "0 (fast path)"
        if r["refine"]:
            how = f"{r['refine']} ({bf16 if r['precision'] == 'bf16' else r['precision']})"
        lines.append(f"| {r['size']} | {how} | {r['embed_ms']} | {r['extract_ms']} | "
                     f"{r['total_ms']} | {r['decoded_ok']} |")
    p.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return res
