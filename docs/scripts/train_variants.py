"""Speed and losses of variants of one training config, measured side by side (docs/results/reproduce-plan.md).

For one (config, size) this builds one :class:`robusthide.training.trainer.Trainer` per variant (a variant is a
``;``-separated list of ``--set`` overrides; the first is the reference), all with the same seed and photos,
and runs them step by step in turn: step k of every variant, then step k + 1, so that a change of load on a
shared machine hits every variant alike. It reports each variant's CPU seconds per step (this process's
``time.process_time``; the first ``--warm`` steps not counted), its speed-up over the reference, and the
largest relative difference of its logged losses (``loss``, ``msg_loss``, ``psnr``) from the reference's at the
same step: the same training gives differences of float noise that grow with the steps (early training is
chaotic: ``train.channels_last=false``, a change of memory layout only, is the yardstick). The token
``@plain-adversary`` in a variant runs the adversarial losses as they were before the discriminator's generator
pass was frozen (three float32 passes, D's weight gradients of that pass computed and thrown away). Run it with
one torch thread::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python docs/scripts/train_variants.py --case configs/hidden-30bit.yaml:64 \\
        --variant "" --variant "train.adv_amp=true" --steps 8

With ``--out`` the result is merged into that JSON file under ``"variants"``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def plain_adversary(disc, cover, marked, amp=False):
    """The adversarial losses as before issue 23: three float32 passes, D not frozen (``amp`` ignored)."""
    import torch
    import torch.nn.functional as F

    d_marked = disc(marked).float()
    g_loss = F.binary_cross_entropy_with_logits(d_marked, torch.ones_like(d_marked))
    d_cover, d_fake = disc(cover.detach()).float(), disc(marked.detach()).float()
    return g_loss, (F.binary_cross_entropy_with_logits(d_cover, torch.ones_like(d_cover))
                    + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))


def compare(config: str, size: int, variants: list[str], warm: int, steps: int) -> dict:
    import torch

    import robusthide.training.trainer as trainer_mod
    from robusthide.training.config import load_config

    banks: dict[str, object] = {}
    original = trainer_mod.image_banks

    def shared_banks(data, validation, max_side):  # the photos once in memory for every variant
        key = json.dumps([data, validation, max_side], sort_keys=True)
        if key not in banks:
            banks[key] = original(data, validation, max_side=max_side)
        return banks[key]

    trainer_mod.image_banks = shared_banks
    frozen = trainer_mod.adversarial_losses
    plain = ["@plain-adversary" in v for v in variants]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            trainers = []
            for i, v in enumerate(variants):
                sets = [s for s in v.split(";") if s.strip() and s.strip() != "@plain-adversary"]
                cfg = load_config(config, [f"out={tmp}", f"name=v{i}", "val.every=0", "ckpt.every=1000000",
                                           f"model.size={size}", f"train.full_size=[{size}]", "train.threads=1",
                                           *sets])
                trainers.append(trainer_mod.Trainer(cfg, progress=False))
            cpu = [0.0] * len(variants)
            rows: list[list[dict]] = [[] for _ in variants]
            for k in range(warm + steps):
                for i, tr in enumerate(trainers):
                    trainer_mod.adversarial_losses = plain_adversary if plain[i] else frozen
                    c0 = time.process_time()
                    rows[i].append(tr.step())
                    if k >= warm:
                        cpu[i] += time.process_time() - c0
    finally:
        trainer_mod.image_banks = original
        trainer_mod.adversarial_losses = frozen
    out = []
    for i, v in enumerate(variants):
        diff = {key: max(abs(a[key] - b[key]) / max(abs(b[key]), 1e-12) for a, b in zip(rows[i], rows[0]))
                for key in ("loss", "msg_loss", "psnr")}
        out.append({"variant": v, "cpu_s_per_step": round(cpu[i] / steps, 4),
                    "speedup": round(cpu[0] / cpu[i], 3),
                    "max_rel_diff": {k: float(f"{d:.3g}") for k, d in diff.items()},
                    "losses": [round(r["loss"], 6) for r in rows[i]]})
    return {"config": config, "size": size, "warm_steps": warm, "timed_steps": steps,
            "threads": torch.get_num_threads(), "variants": out, "loadavg_after": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", required=True, metavar="CONFIG:SIZE")
    ap.add_argument("--variant", action="append", required=True, metavar="K=V;K=V",
                    help="overrides of one variant ('' = the config as it is); the first is the reference")
    ap.add_argument("--warm", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--out", default=None, help="merge the result into this JSON file under 'variants'")
    a = ap.parse_args()
    config, _, size = a.case.rpartition(":")
    r = compare(config, int(size), a.variant, a.warm, a.steps)
    for v in r["variants"]:
        print(f"{v['variant'] or '(config)':45s} {v['cpu_s_per_step']:.3f} CPU s/step  x{v['speedup']:.2f}  "
              f"max rel. diff {v['max_rel_diff']}", flush=True)
    if a.out:
        out = Path(a.out)
        doc = json.loads(out.read_text()) if out.exists() else {}
        r["command"] = ("OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python docs/scripts/train_variants.py "
                        f"--case {a.case} " + " ".join(f"--variant '{v}'" for v in a.variant)
                        + f" --warm {a.warm} --steps {a.steps} --out {a.out}")
        runs = [x for x in doc.get("variants", []) if x.get("command") != r["command"]]
        doc["variants"] = [*runs, r]
        out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
