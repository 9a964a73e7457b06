"""Does a training config in the attack form draw what its old noise-pool form drew?

For each pair (old config with ``noise.pool`` + the old ``robusthide/training/noise_pool.py``, new config with
``noise.attack``), every step of a list runs both attacks on the same batch with the step's generator
(``step_generator(seed + 7919, step)``, as the trainer does) and records: the generator state after the
attack (equal = the same random numbers consumed), the largest pixel difference of the outputs, and the
entries drawn. Usage (the old files from git)::

    git show 95814a1:robusthide/training/noise_pool.py > /tmp/eq/old_noise_pool.py
    git show 95814a1:configs/default-lean64.yaml > /tmp/eq/default-lean64.old.yaml   (and the others)
    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/noise_pool_equivalence.py /tmp/eq \\
        default-lean64 default-lean64-r5 geo256 --out docs/results/noise-pool-equivalence.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch

from robusthide.training.config import load_config
from robusthide.training.data import step_generator
from robusthide.training.strategies import build_strategy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old", help="folder with old_noise_pool.py and NAME.old.yaml")
    ap.add_argument("names", nargs="+")
    ap.add_argument("--steps", default="0,1,2,3,4,5,6,7,400,1200,2400,2401,2402,5000")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("old_noise_pool", Path(a.old) / "old_noise_pool.py")
    old_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old_mod)
    report = {"steps": [int(s) for s in a.steps.split(",")], "batch": a.batch, "size": a.size, "configs": {}}
    for name in a.names:
        old_cfg = load_config(Path(a.old) / f"{name}.old.yaml")
        new_cfg = load_config(f"configs/{name}.yaml")
        pool = old_mod.NoisePool(old_cfg["noise"]["pool"], old_cfg["noise"]["slices"])
        strategy = build_strategy(new_cfg)
        rows = []
        for step in report["steps"]:
            g = torch.Generator().manual_seed(1000 + step)
            cover = torch.rand(a.batch, 3, a.size, a.size, generator=g)
            x = (cover + 0.02 * torch.randn(cover.shape, generator=g)).clamp(0, 1)
            g_old = step_generator(old_cfg["seed"] + 7919, step)
            g_new = step_generator(new_cfg["seed"] + 7919, step)
            y_old = pool.for_step(step)(x, cover, g_old)
            attack, _ = strategy.at(step)
            y_new = attack(x, cover, g_new)
            same_rng = bool(torch.equal(g_old.get_state(), g_new.get_state()))
            drawn = pool.for_step(step).last
            rows.append({"step": step, "same_random_numbers": same_rng,
                         "max_abs_diff_255": round(float((y_old - y_new).abs().max()) * 255, 4),
                         "entries": drawn})
            print(name, rows[-1], flush=True)
        report["configs"][name] = rows
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
