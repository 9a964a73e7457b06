"""Seconds per training step of the papers' nets through the project's trainer (docs/results/reproduce-plan.md).

For each (config, size) this builds :class:`robusthide.training.trainer.Trainer` from the config file with the
overrides given (as ``robusthide train CONFIG --set ...`` does), runs ``--warm`` steps, then times ``--steps``
steps of :meth:`Trainer.step` (covers, messages, embed, the config's real codec / simulator, decode, losses,
backward, Adam, the discriminator): wall-clock seconds and this process's CPU seconds per step. On a shared
machine the CPU seconds are the better estimate of the step's cost on an idle core; the load average is
recorded beside them. Run it with one torch thread::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python docs/scripts/train_speed.py \\
        --case configs/hidden-30bit.yaml:64 --case configs/hidden-30bit.yaml:128 \\
        --case configs/mbrs-64bit.yaml:64 --case configs/mbrs-64bit.yaml:128 --steps 12

It writes ``docs/results/reproduce-plan-speed.json`` (nothing under runs/: the runs go to a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def time_case(config: str, size: int, warm: int, steps: int, extra: list[str]) -> dict:
    import torch

    from robusthide.training.config import load_config
    from robusthide.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"out={tmp}", "name=speed", "val.every=0", "ckpt.every=1000000", f"model.size={size}",
                     f"train.full_size=[{size}]", "train.threads=1", *extra]
        cfg = load_config(config, overrides)
        tr = Trainer(cfg, progress=False)
        for _ in range(warm):
            tr.step()
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            tr.step()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"config": config, "size": size, "arch": cfg["model"]["arch"], "n_bits": cfg["model"]["n_bits"],
            "batch": cfg["train"]["batch"], "strategy": cfg["train"]["strategy"], "overrides": extra,
            "threads": torch.get_num_threads(), "warm_steps": warm, "timed_steps": steps,
            "wall_s_per_step": wall / steps, "cpu_s_per_step": cpu / steps,
            "loadavg_after": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", required=True, metavar="CONFIG:SIZE")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override for every case")
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--out", default="docs/results/reproduce-plan-speed.json")
    a = ap.parse_args()
    rows = []
    for case in a.case:
        config, _, size = case.rpartition(":")
        r = time_case(config, int(size), a.warm, a.steps, a.set)
        rows.append(r)
        print(f"{config} {size}x{size}: {r['wall_s_per_step']:.2f} s/step wall, {r['cpu_s_per_step']:.2f} s/step "
              f"CPU (load {r['loadavg_after']:.1f})", flush=True)
    cmd = ("OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python docs/scripts/train_speed.py "
           + " ".join(f"--case {c}" for c in a.case) + "".join(f" --set {s}" for s in a.set)
           + f" --warm {a.warm} --steps {a.steps}")
    doc = {"command": cmd, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "rows": rows}
    out = Path(a.out)
    if out.exists():  # several invocations add up
        old = json.loads(out.read_text())
        new = {(x["config"], x["size"], tuple(x["overrides"])) for x in rows}
        doc["rows"] = [r for r in old.get("rows", []) if (r["config"], r["size"], tuple(r["overrides"])) not in new]
        doc["rows"] += rows
        doc["command"] = "; ".join(dict.fromkeys(c for c in [*old.get("command", "").split("; "), cmd] if c))
        doc = {**old, **doc}  # other sections (train_profile.py's "profile", train_variants.py's "variants") stay
    out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
