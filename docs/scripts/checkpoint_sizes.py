"""Size of one column's checkpoint of issue 23's reproductions at 64 px (docs/results/reproduce-plan.md, "Carrying").

For HiDDeN (``p000-table1``) and MBRS (``mbrs-table6``) this builds a column's Trainer from its ``robusthide
reproduce`` config (``--net --size 64``), makes one optimiser step of zero gradients so that both Adam
optimisers hold their moments, as in any saved checkpoint, and sums the bytes of the checkpoint's tensors by
prefix: ``model`` (the watermark nets), ``model.discriminator``, ``optim`` and ``d_optim`` (the Adam moments).
No photo is read. Run::

    .venv/bin/python docs/scripts/checkpoint_sizes.py --out docs/results/reproduce-plan-speed.json

It prints the sizes in MiB and merges them into the file under ``"checkpoint_mib"``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def sizes(name: str, net: str) -> dict[str, float]:
    import torch

    import robusthide.training.trainer as trainer_mod
    from robusthide.evaluation.reproduce import get_reproduction, variant
    from robusthide.evaluation.reproduce_columns import column_config

    original = trainer_mod.image_banks
    trainer_mod.image_banks = lambda *a, **k: (None, None)  # the checkpoint does not depend on the photos
    try:
        rep = variant(get_reproduction(name), net=net, size=64, seed=1, tag="size")
        with tempfile.TemporaryDirectory() as tmp:
            cfg = column_config(rep, rep.columns[0], 10, tmp, tmp, warm=False)
            tr = trainer_mod.Trainer(cfg, device="cpu", progress=False)
            for opt in (tr.opt, tr.d_opt):
                for g in opt.param_groups:
                    for p in g["params"]:
                        p.grad = torch.zeros_like(p)
                opt.step()
            tensors, doc = tr.checkpoint()
    finally:
        trainer_mod.image_banks = original
    out: dict[str, float] = {}
    for k, v in tensors.items():
        pre = "model.discriminator" if k.startswith("model.discriminator.") else k.split(".")[0]
        out[pre] = out.get(pre, 0.0) + v.numel() * v.element_size() / 2**20
    out = {k: round(v, 2) for k, v in out.items()}
    out["total"] = round(sum(out.values()), 2)
    out["weights_only"] = round(out["model"] + out.get("model.discriminator", 0.0), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    res = {f"{name} ({net})": sizes(name, net) for name, net in (("p000-table1", "hidden"), ("mbrs-table6", "mbrs"))}
    print(json.dumps(res, indent=1))
    if a.out:
        out = Path(a.out)
        doc = json.loads(out.read_text()) if out.exists() else {}
        doc["checkpoint_mib"] = {"command": f".venv/bin/python docs/scripts/checkpoint_sizes.py --out {a.out}", **res}
        out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
