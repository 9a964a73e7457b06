"""``robusthide bench scale``: throughput of :func:`robusthide.scale.run_job` (Ray Data) against ``--workers``.

A local Ray on this machine (``--cpus`` CPUs, node address 127.0.0.1, no dashboard) marks a folder of ``n``
512 x 512 PNG photos (skimage's, resized), then verifies the marked folder, once per worker count, each run
into a fresh output and results folder. Wall time of the whole job (actor start and model loading included,
Ray's own start-up excluded); images per second. Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from robusthide.io.results import write_keeping_reading


def _photos(folder: Path, n: int) -> None:
    import numpy as np
    from PIL import Image
    from skimage import data

    srcs = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    for i in range(n):
        im = Image.fromarray(srcs[i % len(srcs)]).resize((512, 512), Image.BICUBIC)
        a = np.roll(np.asarray(im), 7 * i, axis=1)  # distinct images
        Image.fromarray(a).save(folder / f"img{i:04d}.png")


def run(out: str, n: int = 24, workers: list[int] | None = None, cpus: int = 2, refine: int | None = None,
        batch_size: int = 4, model: str = "default") -> dict:
    import ray

    from robusthide.scale import run_job

    workers = workers or [1, 2]
    load0 = round(os.getloadavg()[0], 2)  # other work on the machine skews the figures: reported
    rows = []
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                 logging_level="warning")
    try:
        with tempfile.TemporaryDirectory() as d:
            src = Path(d) / "in"
            src.mkdir()
            _photos(src, n)
            for w in workers:
                e = run_job("embed", src, Path(d) / f"res-e{w}", out_dir=Path(d) / f"out{w}", message=1234,
                            model=model, workers=w, batch_size=batch_size, refine=refine)
                x = run_job("extract", Path(d) / f"out{w}", Path(d) / f"res-x{w}", model=model, workers=w,
                            batch_size=batch_size)
                rows.append({"workers": w, "embed_s": e["seconds"], "embed_per_s": round(n / e["seconds"], 2),
                             "extract_s": x["seconds"], "extract_per_s": round(n / x["seconds"], 2),
                             "errors": e["errors"] + x["errors"], "detected": x["detected"]})
    finally:
        if started:
            ray.shutdown()
    refine_txt = "the model's" if refine is None else str(refine)
    cmd = (f"robusthide bench scale --out {out} --n {n} --workers {','.join(map(str, workers))} --cpus {cpus} "
           f"--batch-size {batch_size} --model {model}" + ("" if refine is None else f" --refine {refine}"))
    res = {"command": cmd, "n": n, "cpus": cpus, "refine": refine_txt, "ray": ray.__version__,
           "load_average": [load0, round(os.getloadavg()[0], 2)], "rows": rows}
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"# Ray Data throughput against --workers ({model}, Ray {res['ray']})", "", f"Command: `{cmd}`", "",
             f"A local Ray with {cpus} CPUs marks {n} PNG photos of 512 x 512 (refinement: {refine_txt}), then "
             "verifies them; one actor per worker, one torch thread each. Wall time of each job, actor start and "
             "model loading included. 1-minute load average at the start and the end: "
             f"{res['load_average']} (the machine is shared).", "",
             "| workers | embed s | embed images/s | extract s | extract images/s | errors | detected |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workers']} | {r['embed_s']} | {r['embed_per_s']} | {r['extract_s']} | "
                     f"{r['extract_per_s']} | {r['errors']} | {r['detected']}/{n} |")
    write_keeping_reading(p.with_suffix(".md"), "\n".join(lines) + "\n")  # a person's reading stays
    return res
