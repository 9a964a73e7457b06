"""Does a net learn identity? Training-BER curves of short runs of one config under variants
(docs/results/hidden-learns.md, issue 23).

Each probe builds one :class:`robusthide.training.trainer.Trainer` from ``--config`` with the common overrides
(``--size`` px, identity noise, no validation, no checkpoints, one torch thread) plus the probe's own ``;``-separated
``--set`` overrides, and trains it ``--steps`` steps. It records the training BER, message loss and PSNR of every
step and writes, per probe, the mean of each window of ``--window`` steps (the curve) and the message-loss form in
effect (``msg_loss_form``) into ``--out`` (JSON, merged by probe name, so probes can be run one by one). Run
with one thread, one probe at a time::

    nice -n 5 env OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/hidden_probes.py --config configs/hidden-30bit.yaml \\
        --probe 'paper=train.adv_weight=0' --steps 400 --out docs/results/hidden-learns.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path


def run_probe(config: str, size: int, sets: list[str], steps: int, window: int) -> dict:
    import robusthide.training.trainer as trainer_mod
    from robusthide.training.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(config, [f"out={tmp}", "name=probe", "val.every=0", "ckpt.every=1000000",
                                   f"model.size={size}", f"train.full_size=[{size}]", "train.threads=1",
                                   "noise.pool=[{name: identity, p: 1}]", "noise.slices=1", *sets])
        tr = trainer_mod.Trainer(cfg, progress=False)
        tr.start()
        rows = []
        c0 = time.process_time()
        for _ in range(steps):
            rows.append(tr.step())
        cpu = time.process_time() - c0

    def curve(key: str) -> list[float]:
        return [round(sum(r[key] for r in rows[i:i + window]) / len(rows[i:i + window]), 4)
                for i in range(0, len(rows), window)]

    return {"steps": steps, "window": window, "cpu_s": round(cpu, 1), "msg_loss_form": cfg["train"]["msg_loss"],
            "ber": curve("ber"),
            "msg_loss": curve("msg_loss"), "psnr": curve("psnr"),
            "last_ber": round(sum(r["ber"] for r in rows[-window:]) / window, 4)}


def plot(doc: dict, png: str) -> None:
    """Every probe's training-BER curve (window means) in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.get_cmap("tab20").colors
    for i, (name, r) in enumerate(doc.items()):
        x = [r["window"] * (k + 1) for k in range(len(r["ber"]))]
        ax.plot(x, [100 * b for b in r["ber"]], label=name, lw=1.2, color=colors[(2 * i) % 20 + (2 * i) // 20],
                ls="--" if name.startswith("lean") else "-")
    ax.set_xlabel("step (batch 16, 64 px, identity noise)")
    ax.set_ylabel("training BER (%), mean of each window")
    ax.set_ylim(0, 55)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--probe", action="append", default=[], metavar="NAME=K=V;K=V",
                    help="a probe: its name, '=', then its overrides ('' = the config as it is)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--window", type=int, default=25)
    ap.add_argument("--out", default=None, help="merge the results into this JSON file, keyed by probe name")
    ap.add_argument("--png", default=None, help="then plot every probe of --out into this PNG")
    a = ap.parse_args()
    for p in a.probe:
        name, _, sets = p.partition("=")
        r = run_probe(a.config, a.size, sets.split(";"), a.steps, a.window)
        r.update(config=a.config, size=a.size, sets=sets,
                 command="nice -n 5 env OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/hidden_probes.py "
                         + " ".join(shlex.quote(x) for x in sys.argv[1:]))
        print(f"{name:28s} BER per {a.window} steps: {' '.join(f'{b:.2f}' for b in r['ber'])}  ({r['cpu_s']} CPU s)",
              flush=True)
        if a.out:
            out = Path(a.out)
            doc = json.loads(out.read_text()) if out.exists() else {}
            doc[name] = r
            out.write_text(json.dumps(doc, indent=1) + "\n")
    if a.png and a.out:
        plot(json.loads(Path(a.out).read_text()), a.png)


if __name__ == "__main__":
    main()
