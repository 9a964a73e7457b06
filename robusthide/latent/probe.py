"""``robusthide latent bench-train``: short training probes of the codecs, for the compute plan of issue 24.

Each probe trains one architecture (the scale hyperprior of models.py or the ELIC-style codec of elic.py)
with train.py's loss (``lmbda * 255^2 * MSE + bpp``, Adam, clipped gradients, auxiliary quantile loss) on
random crops of the photo folder's train split, for a budget of *CPU* seconds (so that a probe costs the
same on a busy shared machine as on an idle one; a wall-clock cap stops it in any case). It records, per step, the loss,
bpp, PSNR and the *CPU* seconds of the step (``time.process_time``, one thread), which do not depend on what
else runs on the machine, and the wall seconds, which do. A learning curve ``L(t) = a + b * t^-c`` is fitted
to the per-step loss of each probe (scipy ``curve_fit``, t = step + 1). The fits come from a few dozen to a few hundred
steps: they describe the start of training, and extrapolating them far is a guess (docs/results/latent-plan.md).
``precisions`` ``("fp32", "bf16")`` probes each model in float32 and in bf16 autocast (train.py's ``amp``), which
needs a CPU with native bf16 (AVX512-BF16 or AMX).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import torch

from robusthide import RobustHideError
from robusthide.latent.report import md_head, write_results
from robusthide.metrics import psnr_from_mse


def _model(arch: str, N: int, M: int) -> torch.nn.Module:
    if arch == "hyperprior":
        from robusthide.latent.models import ScaleHyperprior

        return ScaleHyperprior(N, M)
    if arch == "elic":
        from robusthide.latent.elic import ElicLite

        return ElicLite(N, M)
    raise RobustHideError(f"unknown codec architecture {arch!r} (hyperprior or elic)")


def probe(arch: str, size: int, bank, seconds: float = 150.0, max_steps: int = 10000, batch: int = 8,
          lmbda: float = 0.0483, N: int = 64, M: int = 192, lr: float = 5e-4, seed: int = 0,
          max_wall: float = 1800.0, precision: str = "fp32") -> dict:
    """Train for ``seconds`` of process CPU time (or ``max_steps``, or ``max_wall`` wall seconds); per-step
    loss, bpp, PSNR, CPU and wall seconds. ``precision``: ``fp32``, or ``bf16`` (autocast)."""
    from robusthide.latent.train import codec_step
    from robusthide.training.data import step_generator

    torch.manual_seed(seed)
    model = _model(arch, N, M).train()
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(main, lr=lr)
    aux = torch.optim.Adam([model.entropy_bottleneck.quantiles], lr=1e-2)
    recs = []
    t_start, c_start = time.time(), time.process_time()
    step = 0
    while step < max_steps and time.process_time() - c_start < seconds and time.time() - t_start < max_wall:
        c0, w0 = time.process_time(), time.time()
        x = bank.sample(batch, size, step_generator(seed, step))
        o, mse, loss, _ = codec_step(model, opt, aux, main, x, lmbda, amp=precision == "bf16")
        recs.append({"step": step, "loss": loss.item(), "bpp": o["bpp"].item(),
                     "psnr": float(psnr_from_mse(mse.detach().clamp_min(1e-10), peak=1.0)),
                     "cpu_s": time.process_time() - c0, "wall_s": time.time() - w0})
        step += 1
    n_params = sum(p.numel() for p in model.parameters())
    cpu = [r["cpu_s"] for r in recs[2:]] or [r["cpu_s"] for r in recs]
    wall = [r["wall_s"] for r in recs[2:]] or [r["wall_s"] for r in recs]
    return {"arch": arch, "size": size, "precision": precision, "batch": batch, "N": N, "M": M, "lmbda": lmbda,
            "lr": lr,
            "params": n_params, "steps": len(recs), "wall_s": time.time() - t_start,
            "cpu_s_per_step": float(np.median(cpu)),
            "wall_s_per_step": float(np.median(wall)), "curve": fit_curve([r["loss"] for r in recs]), "log": recs}


def fit_curve(losses: list[float]) -> dict | None:
    """Fit L(t) = a + b * t^-c (t = step + 1) to the per-step loss; None with fewer than 10 steps."""
    from scipy.optimize import curve_fit

    y = np.asarray(losses, dtype=np.float64)
    if y.size < 10:
        return None
    t = np.arange(1, y.size + 1, dtype=np.float64)
    ys = y

    def f(t: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
        return a + b * t ** (-c)

    try:
        (a, b, c), _ = curve_fit(f, t, ys, p0=(float(ys[-1]) * 0.5, float(ys[0]), 0.5),
                                 bounds=([0.0, 0.0, 0.01], [np.inf, np.inf, 3.0]), maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    resid = float(np.sqrt(np.mean((f(t, a, b, c) - ys) ** 2)))
    return {"a": float(a), "b": float(b), "c": float(c), "rmse": resid, "last_smoothed": float(np.mean(y[-5:])),
            "fitted_at": {str(s): float(f(np.array([s], dtype=np.float64), a, b, c)[0])
                          for s in (1000, 10000, 100000)}}


def run(out: str | Path, data: str | Path, archs: tuple[str, ...] = ("hyperprior", "elic"),
        sizes: tuple[int, ...] = (128, 256), seconds: float = 150.0, batch: int = 8, lmbda: float = 0.0483,
        N: int = 64, M: int = 192, max_side: int = 512, log=print, command: str = "",
        max_wall: float = 180.0, precisions: tuple[str, ...] = ("fp32",)) -> dict:
    """One probe per (arch, size, precision); writes ``out``.json (with per-step logs) and ``out``.md."""
    from robusthide.training.data import ImageBank
    from robusthide.training.hardware import cpu_has_bf16

    for s in sizes:
        if s % 64:
            raise RobustHideError(f"probe sizes must be multiples of 64 px, got {s}")
    for prec in precisions:
        if prec not in ("fp32", "bf16"):
            raise RobustHideError(f"unknown precision {prec!r} (fp32 or bf16)")
    if "bf16" in precisions and not cpu_has_bf16():
        raise RobustHideError("bf16 probes need a CPU with native bf16 (AVX512-BF16 or AMX); this one has neither")
    bank = ImageBank(data, split="train", max_side=max_side, min_side=max(sizes))  # one bank serves every size
    probes = []
    for arch in archs:
        for s in sizes:
            for prec in precisions:
                p = probe(arch, s, bank, seconds=seconds, batch=batch, lmbda=lmbda, N=N, M=M, max_wall=max_wall,
                          precision=prec)
                probes.append(p)
                log(f"{arch} {s} px {prec}: {p['steps']} steps, {p['cpu_s_per_step']:.2f} CPU s/step,"
                    f" {p['wall_s_per_step']:.2f} wall s/step")
    result = {"settings": {"seconds": seconds, "max_wall": max_wall, "batch": batch, "lmbda": lmbda, "N": N, "M": M,
                           "threads": torch.get_num_threads(), "torch": torch.__version__,
                           "cpu": platform.processor() or platform.machine(), "data": str(data),
                           "command": command},
              "probes": probes}
    write_results(result, out, to_markdown(result))
    return result


def to_markdown(r: dict) -> str:
    s = r["settings"]
    lines = md_head(
        "Codec training probes (issue 24 compute plan)",
        f"Each probe trains for {s['seconds']:g} s of process CPU time or {s.get('max_wall', 0):g} s of wall"
        f" clock, whichever comes first, batch {s['batch']}, lambda {s['lmbda']}"
        f" (quality 6), N {s['N']} / M {s['M']}, {s['threads']} torch thread(s), torch {s['torch']}."
        " CPU s/step is the process CPU time of one step (median, first two steps left out); wall s/step"
        " depends on the other jobs of the shared machine. Fit: L(t) = a + b t^-c on the R-D loss.",
        command=s.get("command") or "",
    )
    lines += ["| arch | crop | precision | params | steps | CPU s/step | wall s/step | last loss (5-step mean) |"
              " last bpp | last PSNR | fit a / b / c | fit at 10k / 100k steps |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in r["probes"]:
        c = p["curve"]
        last = p["log"][-5:] if p["log"] else []
        bpp = float(np.mean([x["bpp"] for x in last])) if last else float("nan")
        ps = float(np.mean([x["psnr"] for x in last])) if last else float("nan")
        ftxt = f"{c['a']:.3f} / {c['b']:.3f} / {c['c']:.2f}" if c else "-"
        atxt = f"{c['fitted_at']['10000']:.3f} / {c['fitted_at']['100000']:.3f}" if c else "-"
        lines.append(f"| {p['arch']} | {p['size']} | {p.get('precision', 'fp32')} | {p['params'] / 1e6:.2f} M |"
                     f" {p['steps']} |"
                     f" {p['cpu_s_per_step']:.2f} | {p['wall_s_per_step']:.2f} |"
                     f" {c['last_smoothed'] if c else float('nan'):.3f} | {bpp:.3f} | {ps:.2f} | {ftxt} | {atxt} |")
    lines.append("")
    return "\n".join(lines)
