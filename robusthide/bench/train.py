"""``robusthide bench train``: images/s of a full training step (forward, loss, backward, Adam).

Measures each architecture at 128 x 128, batch 16 (or as given), fp32 and bf16 autocast, channels_last,
on synthetic inputs with the identity attack (codec cost is measured by ``bench codecs``), after a
warm-up; the median of several timed repeats. Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path


def time_train_step(arch: str, size: int = 128, batch: int = 16, amp: bool = True, steps: int = 8,
                    repeats: int = 3, **kw) -> float:
    import torch  # lazy: `robusthide --help` must not import torch
    import torch.nn.functional as F

    from robusthide.nets.registry import create_model

    torch.manual_seed(0)
    model = create_model(arch, size=size, **kw).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    bits = torch.randint(0, 2, (batch, model.n_bits)).float()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            marked, logits = model(x, bits)
        loss = F.binary_cross_entropy_with_logits(logits.float(), bits) + F.mse_loss(marked.float(), x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - t0))
    return statistics.median(rates)


def run(out: str, archs: list[str], size: int, batch: int) -> dict:
    import torch

    from robusthide.training.hardware import cpu_bf16_flags

    rows = []
    for arch in archs:
        for amp in (False, True):
            try:
                ips = time_train_step(arch, size, batch, amp)
            except Exception as e:  # an architecture may not support this size
                rows.append({"arch": arch, "amp": amp, "error": str(e).splitlines()[0]})
                continue
            rows.append({"arch": arch, "amp": amp, "img_per_s": round(ips, 1)})
    res = {"command": f"robusthide bench train --out {out} --size {size} --batch {batch} --archs {','.join(archs)}",
           "size": size, "batch": batch, "threads": torch.get_num_threads(), "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(), "cpu_bf16": cpu_bf16_flags(), "rows": rows}
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.with_suffix(".json").write_text(json.dumps(res, indent=1))
    lines = [f"# Training throughput ({size}x{size}, batch {batch}, {res['threads']} threads, torch {res['torch']})",
             "", f"Command: `{res['command']}`", "",
             f"CPU bf16 instructions: {', '.join(res['cpu_bf16']) or 'none (bf16 autocast runs emulated, slower)'}.",
             "", "| architecture | autocast | images/s |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {'bf16' if r['amp'] else 'fp32'} | {r.get('img_per_s', r.get('error'))} |")
    p.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return res
