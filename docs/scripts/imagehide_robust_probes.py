"""Cheap probes of the routes to robust image hiding (issue 22): which one can reach >= 27 dB after real JPEG Q50
and >= 28 dB after resize 50 % / blur 1 at a >= 34 dB container, at 128 x 128?

Each sub-command measures a few validation groups (the crops of ``robusthide imagehide evaluate``) and merges
its figures into ``docs/results/imagehide-robust-probes.json`` under its own key:

    python docs/scripts/imagehide_robust_probes.py bounds --n 64     # the secret itself after each attack
    python docs/scripts/imagehide_robust_probes.py bands --n 8       # where the revealed error comes from
    python docs/scripts/imagehide_robust_probes.py genie --n 64      # a linear scheme that knows the cover
    python docs/scripts/imagehide_robust_probes.py genie-apd --n 64  # the same at paper 000's APD, after its codecs
    python docs/scripts/imagehide_robust_probes.py rate --n 64       # bits of the secret at 27-31 dB
    python docs/scripts/imagehide_robust_probes.py scale --n 8 --model MODEL   # MODEL at downscale 1, 2, 4
    python docs/scripts/imagehide_robust_probes.py plot runs/imagehide-hinet-robust runs/imagehide-hinet-robust2 \
        --start-key scale_runs_imagehide-hinet-robust_model128.safetensors_n8
    python docs/scripts/imagehide_robust_probes.py refine --n 8 --steps 0,25,50,100,200 --attacks jpeg:q=50
    python docs/scripts/imagehide_robust_probes.py refine --n 8 --steps 0,10,25,50 --lr 0.0005 \
        --attacks jpeg:q=50,resize:0.5,blur:1

Run with ``nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python ...`` (shared cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robusthide.imagehiding.api import ImageHider
from robusthide.imagehiding.evaluate import apply_attack
from robusthide.metrics import psnr, ssim
from robusthide.training.data import ImageBank

OUT = Path("docs/results/imagehide-robust-probes.json")
EVAL_ATTACKS = ("none", "jpeg:q=50", "resize:0.5", "blur:1")


def u8(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray((t.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())


def tt(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255


def groups(n: int, size: int = 128, data: str = "data/photos/train") -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` (cover, secret) groups of ``imagehide evaluate --n n`` (same seeds)."""
    bank = ImageBank(data, "val", max_side=384, min_side=size)
    return u8(bank.fixed_set(n, size, seed=1234)), u8(bank.fixed_set(n, size, seed=2345))


def save(key: str, doc: dict, quiet: bool = False) -> None:
    all_ = json.loads(OUT.read_text()) if OUT.exists() else {}
    all_[key] = doc
    OUT.write_text(json.dumps(all_, indent=1) + "\n")
    if not quiet:
        print(json.dumps({key: doc}, indent=1))


def attacked(name: str, x: np.ndarray) -> np.ndarray:
    return apply_attack(name, x)[0]


def cmd_bounds(a: argparse.Namespace) -> None:
    """The secret itself after each attack, and after 2x / 4x down-up: how much of it the attacks leave."""
    _, secrets = groups(a.n)
    doc: dict = {"n": a.n}
    for name in ("jpeg:q=50", "resize:0.5", "blur:1", "jpeg:q=75", "resize:0.25"):
        doc[name] = psnr(secrets, attacked(name, secrets))
    s = tt(secrets)
    for f in (2, 4):
        small = F.interpolate(s, scale_factor=1 / f, mode="area")
        doc[f"area{f}x+bicubic"] = psnr(secrets, u8(F.interpolate(small, scale_factor=f, mode="bicubic")))
    save(f"bounds_n{a.n}", doc)


def _reveal(h: ImageHider, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return u8(h.net.reveal(tt(x))[0][0].float())


def cmd_bands(a: argparse.Namespace) -> None:
    """Add each attack's error to the clean container only in some Haar bands, reveal: which bands hurt."""
    h = ImageHider.from_pretrained(a.model)
    covers, secrets = groups(a.n)
    with torch.no_grad():
        m = u8(h.net.hide(tt(covers), [tt(secrets)])[0].float())
    dwt = h.net.dwt
    doc: dict = {"n": a.n, "model": a.model, "container_psnr": psnr(covers, m)}
    with torch.no_grad():
        for name in ("jpeg:q=50", "resize:0.5", "blur:1"):
            xm = tt(m)
            err = dwt(tt(attacked(name, m))) - dwt(xm)
            row = {}
            for band, idx in (("all", [0, 1, 2, 3]), ("LL", [0]), ("HL+LH+HH", [1, 2, 3]), ("HH", [3])):
                mask = torch.zeros(12)
                for c in range(3):
                    for i in idx:
                        mask[4 * c + i] = 1
                x = dwt.inverse(dwt(xm) + err * mask.view(1, 12, 1, 1))
                row[band] = psnr(secrets, u8(h.net.reveal(x)[0][0].float()))
            # the same error energy as white noise, and the error scaled down (how steep the reveal is)
            for k in (0.5, 0.25, 0.1):
                x = dwt.inverse(dwt(xm) + k * err)
                row[f"x{k}"] = psnr(secrets, u8(h.net.reveal(x)[0][0].float()))
            row["attacked_container_psnr"] = psnr(covers, attacked(name, m))
            doc[name] = row
    save(f"bands_{a.model}_n{a.n}", doc)


def cmd_genie(a: argparse.Namespace) -> None:
    """A linear analog scheme that knows the cover at the reveal (non-blind, so better than any blind one of
    its kind): container = cover + g (secret' - mean), g set for the PSNR budget; revealed = (A(container) -
    A(cover)) / g + mean, secret' = the secret (f = 1) or its 2x area-down, bicubic-up copy (f = 2)."""
    covers, secrets = groups(a.n)
    c, s = tt(covers), tt(secrets)
    doc: dict = {"n": a.n}
    for f in (1, 2):
        sl = F.interpolate(F.interpolate(s, scale_factor=1 / f, mode="area"), scale_factor=f, mode="bicubic")
        mu = sl.mean(dim=(1, 2, 3), keepdim=True)
        for target in (34.0, 30.0):
            g = (10 ** (-target / 10) / (sl - mu).pow(2).mean(dim=(1, 2, 3), keepdim=True)).sqrt()
            m = u8(c + g * (sl - mu))
            row = {"container_psnr": psnr(covers, m)}
            for name in EVAL_ATTACKS:
                d = tt(attacked(name, m)) - tt(attacked(name, covers))
                row[name] = psnr(secrets, u8(d / g + mu))
            doc[f"f{f}_container{target:g}"] = row
    save(f"genie_n{a.n}", doc)


#: paper 000 §4's codecs: JPEG Q50 and WebP Q50 (its training qualities for JPEG and WebP), JPEG 2000 at
#: x1000 = 500 (its "quality factor of 500", OpenCV's scale) and at x1000 = 50 (configs/imagehide-hinet-000.yaml)
APD_CODECS = ("jpeg:q=50", "webp:q=50", "jpeg2000:x1000=500", "jpeg2000:x1000=50")


def cmd_genie_apd(a: argparse.Namespace) -> None:
    """Paper 000 §4's operating point (issue 22: container APD <= 9.13 / 255, revealed secret APD <= 8.54 after
    JPEG, JPEG 2000 and WebP) for the cover-knowing linear scheme of :func:`cmd_genie`: the secret at full, half
    and quarter resolution, the container at 30, 28 and 27 dB (APD 6.6, 8.3 and 9.2)."""
    from robusthide.metrics.image import apd

    covers, secrets = groups(a.n)
    c, s = tt(covers), tt(secrets)
    doc: dict = {"n": a.n, "target_apd": {"container": 9.13, "secret": 8.54}}
    for f in (1, 2, 4):
        sl = s if f == 1 else F.interpolate(F.interpolate(s, scale_factor=1 / f, mode="area"), scale_factor=f,
                                            mode="bicubic")
        mu = sl.mean(dim=(1, 2, 3), keepdim=True)
        for target in (30.0, 28.0, 27.0):
            g = (10 ** (-target / 10) / (sl - mu).pow(2).mean(dim=(1, 2, 3), keepdim=True)).sqrt()
            m = u8(c + g * (sl - mu))
            row = {"container_psnr": psnr(covers, m), "container_apd": float(apd(covers, m))}
            for name in APD_CODECS:
                r = u8((tt(attacked(name, m)) - tt(attacked(name, covers))) / g + mu)
                row[name] = {"psnr": psnr(secrets, r), "apd": float(apd(secrets, r))}
            doc[f"f{f}_container{target:g}"] = row
    save(f"genie_apd_n{a.n}", doc)


def cmd_rate(a: argparse.Namespace) -> None:
    """How many bits the secret needs at 25-31 dB (real JPEG / WebP of the 128 x 128 secret): the payload a
    digital route (compress the secret, hide the bits robustly) would have to carry."""
    from robusthide.codecs import get_codec

    _, secrets = groups(a.n)
    doc: dict = {"n": a.n}
    for spec in ("jpeg:q=10", "jpeg:q=15", "jpeg:q=20", "jpeg:q=30", "webp:q=5", "webp:q=10", "webp:q=20",
                 "webp:q=35"):
        r = get_codec(spec)(secrets)
        bits = float(np.mean(r.nbytes)) * 8
        doc[spec] = {"psnr": psnr(secrets, r.images), "bits": bits, "bpp": bits / secrets[0].shape[0] ** 2}
    # the container's own JPEG Q50 stream, for scale
    covers, _ = groups(a.n)
    doc["cover_jpeg_q50_bits"] = float(np.mean(get_codec("jpeg:q=50")(covers).nbytes)) * 8
    save(f"rate_n{a.n}", doc)


def cmd_scale(a: argparse.Namespace) -> None:
    """A trained model's weights run at ``downscale`` 1, 2 and 4 (no training): container and revealed PSNR."""
    from robusthide.imagehiding.invertible import InvertibleHidingNetwork

    base = ImageHider.from_file(a.model).net
    covers, secrets = groups(a.n)
    doc: dict = {"n": a.n, "model": a.model}
    for d in (1, 2, 4):
        net = InvertibleHidingNetwork(**dict(base.arch, downscale=d)).eval()
        net.load_state_dict(base.state_dict())
        with torch.no_grad():
            m = u8(net.hide(tt(covers), [tt(secrets)])[0].float())
            row = {"container_psnr": psnr(covers, m), "container_ssim": ssim(covers, m)}
            for name in EVAL_ATTACKS:
                row[name] = psnr(secrets, u8(net.reveal(tt(attacked(name, m)))[0][0].float()))
        doc[f"downscale{d}"] = row
    save(f"scale_{a.model.replace('/', '_')}_n{a.n}", doc)  # e.g. scale_runs_RUN_model128.safetensors_n8


def _val_curve(run: str) -> list[dict]:
    rows = [json.loads(x) for x in Path(run, "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [r for r in rows if "val_psnr_container" in r]


def cmd_plot(a: argparse.Namespace) -> None:
    """The learning curves: refinement (revealed PSNR against refinement steps) and the robust training runs
    (validation PSNR against steps), into ``docs/results/imagehide-robust-probes.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = json.loads(OUT.read_text())
    fig, axes = plt.subplots(1, 1 + len(a.runs), figsize=(5.5 * (1 + len(a.runs)), 4.2))
    ax = axes[0]
    refines = [v for k, v in doc.items() if k.startswith("refine_")]
    for v, style in zip(refines, ("-", "--", ":", "-.")):
        steps = [r["step"] for r in v["curve"]]
        model = Path(v["model"]).parent.name if "/" in v["model"] else v["model"]
        tag = f"{model} vs {'+'.join(v['attacks'])}, lr {v['lr']:g}"
        for name, colour in zip(EVAL_ATTACKS, ("C0", "C1", "C2", "C3")):
            ax.plot(steps, [r[name] for r in v["curve"]], style, color=colour, marker="o", ms=3,
                    label=f"after {name} ({tag})")
    ax.axhline(27, color="grey", lw=0.8)
    ax.set(title="refinement against a fixed reveal network (8 pairs)", xlabel="refinement steps",
           ylabel="revealed PSNR (dB)")
    ax.legend(fontsize=6)
    for ax, run in zip(axes[1:], a.runs):
        rows = _val_curve(run)
        start = doc[a.start_key]["downscale2"] if a.start_key and run == a.runs[-1] else None
        if start:  # step 0 of the last run: its start network at downscale 2 (a scale probe on the same crops)
            rows = [{"step": 0, "val_psnr_container": start["container_psnr"],
                     **{f"val_psnr_secret[{k}]": start[k] for k in ("none", "jpeg:q=50", "resize:0.5")}}, *rows]
        steps = [r["step"] for r in rows]
        for k in rows[0]:
            if k.startswith("val_psnr"):
                ax.plot(steps, [r[k] for r in rows], marker="o", ms=3, label=k[4:])
        ax.axhline(27, color="grey", lw=0.8)
        ax.axhline(34, color="grey", lw=0.8, ls=":")
        ax.set(title=f"{Path(run).name} (validation)", xlabel="training step", ylabel="PSNR (dB)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT.with_suffix(".png"), dpi=110)
    print(f"wrote {OUT.with_suffix('.png')}")


def _layer(name: str) -> torch.nn.Module:
    from robusthide.attacks import GaussianBlur, Resize, build_attack

    key, _, arg = name.partition(":")
    if key == "jpeg":
        return build_attack(f"real({name})", seed=0)
    if key == "resize":
        return Resize(float(arg), interpolation="bicubic")
    if key == "blur":
        return GaussianBlur(float(arg))
    raise SystemExit(f"unknown attack {name}")


def cmd_refine(a: argparse.Namespace) -> None:
    """Refine the containers against the fixed reveal network with the attacks in the loop (mean of the clean
    reveal loss x ``clean`` and each attack's), projected on PSNR >= target; measure at each step count."""
    from robusthide.attacks.base import straight_through

    torch.manual_seed(0)
    h = ImageHider.from_pretrained(a.model)
    for p in h.net.parameters():
        p.requires_grad_(False)
    covers, secrets = groups(a.n)
    c, s = tt(covers), tt(secrets)
    with torch.no_grad():
        m0 = h.net.hide(c, [s])[0].float()
    names = [x for x in a.attacks.split(",") if x]
    layers = [_layer(x) for x in names]
    mse_max = 10 ** (-a.target / 10)
    delta = (m0.clamp(0, 1) - c).clone().requires_grad_(True)
    opt = torch.optim.Adam([delta], lr=a.lr)
    checkpoints = sorted({int(x) for x in a.steps.split(",")})
    key = a.key or f"refine_{a.model}_{'+'.join(names)}_t{a.target:g}_lr{a.lr:g}_n{a.n}"
    curve = []
    t0 = time.time()

    def measure(step: int) -> None:
        m = u8(c + delta.detach())
        row = {"step": step, "cpu_s": round(time.time() - t0, 1), "container_psnr": psnr(covers, m),
               "container_ssim": ssim(covers, m)}
        for name in EVAL_ATTACKS:
            row[name] = psnr(secrets, _reveal(h, attacked(name, m)))
        curve.append(row)
        print(json.dumps(row), flush=True)
        save(key, {"n": a.n, "model": a.model, "attacks": names, "clean_weight": a.clean, "target_psnr": a.target,
                   "lr": a.lr, "curve": curve}, quiet=True)

    for step in range(checkpoints[-1] + 1):
        if step in checkpoints:
            measure(step)
        if step == checkpoints[-1]:
            break
        x = straight_through(c + delta, ((c + delta).detach().clamp(0, 1) * 255).round() / 255)
        losses = [a.clean * F.mse_loss(h.net.reveal(x)[0][0].float(), s)] if a.clean else []
        for layer in layers:
            losses.append(F.mse_loss(h.net.reveal(layer(x, c).clamp(0, 1))[0][0].float(), s))
        loss = torch.stack(losses).sum() / (len(layers) + a.clean)
        (grad,) = torch.autograd.grad(loss, delta)
        delta.grad = grad
        opt.step()
        with torch.no_grad():
            delta.copy_((c + delta).clamp(0, 1) - c)
            mse = delta.pow(2).mean(dim=(1, 2, 3), keepdim=True)
            delta.mul_(torch.where(mse > mse_max, (mse_max / mse.clamp_min(1e-20)).sqrt(), torch.ones_like(mse)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bounds")
    b.add_argument("--n", type=int, default=64)
    d = sub.add_parser("bands")
    d.add_argument("--n", type=int, default=8)
    d.add_argument("--model", default="imagehide-hinet")
    for name in ("genie", "genie-apd", "rate"):
        sub.add_parser(name).add_argument("--n", type=int, default=64)
    sc = sub.add_parser("scale")
    sc.add_argument("--n", type=int, default=8)
    sc.add_argument("--model", required=True)
    pl = sub.add_parser("plot")
    pl.add_argument("runs", nargs="*", help="run folders whose validation curves to draw")
    pl.add_argument("--start-key", default="", help="the scale probe (its downscale2 row) that is step 0 of the "
                    "last run")
    r = sub.add_parser("refine")
    r.add_argument("--n", type=int, default=8)
    r.add_argument("--model", default="imagehide-hinet")
    r.add_argument("--steps", default="0,25,50,100,200")
    r.add_argument("--attacks", default="jpeg:q=50")
    r.add_argument("--target", type=float, default=34.0)
    r.add_argument("--lr", type=float, default=0.002)
    r.add_argument("--clean", type=float, default=1.0)
    r.add_argument("--key", default="")
    a = p.parse_args()
    torch.set_num_threads(1)
    {"bounds": cmd_bounds, "bands": cmd_bands, "refine": cmd_refine, "genie": cmd_genie, "genie-apd": cmd_genie_apd,
     "rate": cmd_rate,
     "scale": cmd_scale, "plot": cmd_plot}[a.cmd](a)


if __name__ == "__main__":
    main()
