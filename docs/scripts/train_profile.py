"""Where a training step's CPU time goes, for the papers' nets (docs/results/reproduce-plan.md, "Where a step goes").

For each (config, size) this builds :class:`robusthide.training.trainer.Trainer` as ``train_speed.py`` does, runs
``--warm`` steps, then times, in this process's CPU seconds per step (``time.process_time``), each part of a step
on its own, interleaved round by round so that a change of load on a shared machine hits every part alike:

* ``step``: the whole :meth:`Trainer.step`;
* ``data``: the batch of covers (:meth:`ImageBank.sample`);
* ``attack``: the step's attack on a marked batch (real JPEG and simulators; no gradient);
* ``enc_dec``: embed + decode (on the clamped marked images), their losses, backward and Adam step;
* ``disc``: the three discriminator passes of :func:`adversarial_losses` (bf16 with ``train.adv_amp``),
  both backwards and its Adam step.

Run it with one torch thread::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python docs/scripts/train_profile.py \\
        --case configs/hidden-30bit.yaml:64 --case configs/mbrs-64bit.yaml:64 --rounds 6

Extra ``--set`` overrides apply to every case (``--set train.amp=false``); ``--plain-adversary`` runs the
adversarial losses as before issue 23 (see train_variants.py; with ``--set train.adv_amp=false``: the old
step). It prints one JSON object per case
and, with ``--out``, merges them into that file under ``"profile"``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def profile_case(config: str, size: int, warm: int, rounds: int, extra: list[str], plain: bool = False,
                 ops: int = 0) -> dict:
    import torch
    import torch.nn.functional as F

    import robusthide.training.trainer as trainer_mod
    from robusthide.training.adversary import adversarial_losses
    from robusthide.training.config import load_config
    from robusthide.training.data import step_generator
    from robusthide.training.trainer import Trainer

    if plain:
        from train_variants import plain_adversary

        adversarial_losses = trainer_mod.adversarial_losses = plain_adversary

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"out={tmp}", "name=profile", "val.every=0", "ckpt.every=1000000", f"model.size={size}",
                     f"train.full_size=[{size}]", "train.threads=1", *extra]
        cfg = load_config(config, overrides)
        tr = Trainer(cfg, progress=False)
        t = cfg["train"]
        for _ in range(warm):
            tr.step()
        cl = torch.channels_last if t.get("channels_last", True) else torch.contiguous_format
        B = t["batch"]

        def data(k: int):
            return tr.bank.sample(B, size, step_generator(cfg["seed"], k))

        cover = data(0).contiguous(memory_format=cl)
        bits = torch.randint(0, 2, (B, tr.model.n_bits), generator=torch.Generator().manual_seed(0)).float()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=tr.amp):
            marked0 = tr.model.embed(cover, bits).float()

        def attack(k: int):
            a, _ = tr.strategy.at(k)
            with torch.no_grad():
                return a(marked0, cover, step_generator(k, k))

        def enc_dec(k: int):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=tr.amp):
                marked = tr.model.embed(cover, bits).float()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=tr.amp):
                logits = tr.model.decode(marked.clamp(0, 1).contiguous(memory_format=cl)).float()
            loss = F.mse_loss(torch.sigmoid(logits), bits) + F.mse_loss(marked, cover)
            tr.opt.zero_grad(set_to_none=True)
            loss.backward()
            tr.opt.step()
            return marked.detach()

        def disc(k: int):
            if tr.d_opt is None:
                return None
            marked = marked0.clone().requires_grad_(True)
            g_loss, d_loss = adversarial_losses(tr.model.discriminator, cover, marked,
                                                amp=tr.amp and bool(t.get("adv_amp")))
            g_loss.backward()
            tr.d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            tr.d_opt.step()
            return None

        parts = {"step": lambda k: tr.step(), "data": data, "attack": attack, "enc_dec": enc_dec, "disc": disc}
        cpu = {p: 0.0 for p in parts}
        for r in range(rounds):
            for name, fn in parts.items():
                c0 = time.process_time()
                fn(warm + r)
                cpu[name] += time.process_time() - c0
        top = []
        if ops:  # torch.profiler over two whole steps: the operators' share of the self CPU time
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                for _ in range(2):
                    tr.step()
            avg = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in avg)
            top = [{"op": e.key, "share": round(e.self_cpu_time_total / total, 4)}
                   for e in sorted(avg, key=lambda e: -e.self_cpu_time_total)[:ops]]
    per = {p: v / rounds for p, v in cpu.items()}
    rest = per["step"] - sum(v for p, v in per.items() if p != "step")
    overrides = [*extra, "@plain-adversary"] if plain else extra
    return {"config": config, "size": size, "arch": cfg["model"]["arch"], "overrides": overrides, "amp": tr.amp,
            "channels_last": bool(t.get("channels_last", True)), "rounds": rounds,
            "cpu_s": {p: round(v, 4) for p, v in per.items()}, "cpu_s_rest": round(rest, 4),
            "share_of_step": {p: round(v / per["step"], 3) for p, v in per.items() if p != "step"},
            **({"top_ops": top} if top else {}),
            "loadavg_after": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", required=True, metavar="CONFIG:SIZE")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override for every case")
    ap.add_argument("--warm", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--plain-adversary", action="store_true", help="the adversarial losses as before issue 23")
    ap.add_argument("--ops", type=int, default=0, help="also the N operators of most self CPU time (torch.profiler)")
    ap.add_argument("--out", default=None, help="merge the rows into this JSON file under 'profile'")
    a = ap.parse_args()
    rows = []
    for case in a.case:
        config, _, size = case.rpartition(":")
        r = profile_case(config, int(size), a.warm, a.rounds, a.set, a.plain_adversary, a.ops)
        rows.append(r)
        print(json.dumps(r), flush=True)
    if a.out:
        out = Path(a.out)
        doc = json.loads(out.read_text()) if out.exists() else {}
        cmd = ("OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python docs/scripts/train_profile.py "
               + " ".join(f"--case {c}" for c in a.case) + "".join(f" --set {s}" for s in a.set)
               + (" --plain-adversary" if a.plain_adversary else "") + (f" --ops {a.ops}" if a.ops else "")
               + f" --warm {a.warm} --rounds {a.rounds} --out {a.out}")
        prof = doc.setdefault("profile", {"commands": [], "rows": []})
        new = {(x["config"], x["size"], tuple(x["overrides"])) for x in rows}
        prof["rows"] = [r for r in prof["rows"] if (r["config"], r["size"], tuple(r["overrides"])) not in new] + rows
        prof["commands"] = list(dict.fromkeys([*prof["commands"], cmd]))
        out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
