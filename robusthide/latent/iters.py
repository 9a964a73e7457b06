"""``robusthide latent iters``: hyperbase's bit accuracy against editing iterations (issue 24, item 3).

For each *series* (an :class:`~robusthide.latent.editing.EditConfig`: the paper's defaults with some fields
changed, e.g. ``lr=1e-2`` or ``rounding=ste``) one editing run per image keeps y after each iteration count
of ``at`` (``edit_latent(..., keep=)``). Each kept y is read twice:

* **float**: the decoder on g_s(y) with y *not* rounded (the image rounded to 8 bits), what the optimiser
  would reach without quantisation of the latent;
* **coded**: the real range-coded bitstream of y (rounded y, escapes included), decoded and rounded to 8
  bits, as the receiver reads it, with its payload bpp and PSNR.

The gap between the two is the cost of quantising the edited latent. CPU seconds per iteration (process
time, one image) give the cost of a point. Results go to ``out``.md / .json / .png.
"""

from __future__ import annotations

import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

from robusthide import RobustHideError
from robusthide.latent.api import to_8bit
from robusthide.latent.editing import EditConfig, edit_latent
from robusthide.latent.models import ScaleHyperprior
from robusthide.latent.report import md_head, write_results
from robusthide.latent.stegnet import BasicDecoder
from robusthide.metrics import psnr

#: paper 004 Table 2 (DIV2K): hyperbase_q -> (PSNR, bpp, accuracy %)
PAPER_HYPERBASE = {"3": (23.08, 1.64, 74.18), "4": (23.20, 1.57, 80.58), "5": (23.74, 1.66, 81.21),
                   "6": (23.28, 3.53, 91.75), "7": (23.82, 3.42, 92.58), "8": (24.90, 3.83, 92.20)}

_KEYS = {f.name for f in fields(EditConfig)} - {"iters", "seed", "log_every"}


def parse_series(spec: str, base: EditConfig) -> tuple[str, EditConfig]:
    """``LABEL`` or ``LABEL:key=value,key=value`` -> (label, ``base`` with those EditConfig fields changed).
    Keys: lr, lambda1-5, tv_beta, rounding, ce_reduction, clamp_grad, lattice (rounds of
    :func:`~robusthide.latent.editing.lattice_descent` after the last iteration)."""
    label, _, rest = spec.partition(":")
    if not label:
        raise RobustHideError(f"--series {spec!r}: expected LABEL[:key=value,...]")
    changes: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in _KEYS:
            raise RobustHideError(f"--series {spec!r}: bad item {item!r} (keys: {', '.join(sorted(_KEYS))})")
        if key in ("rounding", "ce_reduction"):
            changes[key] = value
        elif key == "lattice":
            if not value.isdigit():
                raise RobustHideError(f"--series {spec!r}: lattice takes a number of rounds >= 0, got {value!r}")
            changes[key] = int(value)
        elif key == "clamp_grad":
            if value not in ("0", "1", "true", "false"):
                raise RobustHideError(f"--series {spec!r}: clamp_grad takes true or false, got {value!r}")
            changes[key] = value in ("1", "true")
        else:
            try:
                changes[key] = float(value)
            except ValueError:
                raise RobustHideError(f"--series {spec!r}: {key} takes a number, got {value!r}") from None
    cfg = replace(base, **changes)
    if cfg.rounding not in ("noise", "ste") or cfg.ce_reduction not in ("sum", "mean"):
        raise RobustHideError(f"--series {spec!r}: rounding is noise|ste, ce_reduction is sum|mean")
    return label, cfg


def _read(codec: ScaleHyperprior, dec: BasicDecoder, y: torch.Tensor, x: torch.Tensor,
          t: torch.Tensor) -> dict[str, float]:
    size = tuple(x.shape[-2:])

    def acc(img: torch.Tensor) -> float:
        return float(((dec(img) > 0).float() == t).float().mean())

    with torch.no_grad():
        acc_float = acc(to_8bit(codec.synthesize(y, size)))
        c = codec.compress_latent(y)
        img = to_8bit(codec.synthesize(codec.decompress_latent(c.y_string, c.z_string, c.z_shape), size))
        bpp = 8.0 * (len(c.y_string) + len(c.z_string)) / (size[0] * size[1])
        return {"acc_float": acc_float, "acc_coded": acc(img), "bpp": bpp, "psnr": float(psnr(img, x))}


def run(
    codec: tuple[str, ScaleHyperprior], decoder: BasicDecoder, covers: list[torch.Tensor], series: list[tuple[str,
    EditConfig]], at: tuple[int, ...], out: str | Path, seed: int = 0, settings: dict | None = None,
    command: str = "", log=print,
) -> dict:
    """Accuracy against iterations for each series on ``covers`` (each 1 x 3 x H x W); writes ``out``."""
    at = tuple(sorted({int(k) for k in at}))
    if not at or at[0] < 0:
        raise RobustHideError("--at: give iteration counts >= 0, e.g. 0,100,300,1000")
    label, m = codec
    g = torch.Generator().manual_seed(seed)
    targets = [(torch.rand(1, decoder.data_depth, *x.shape[-2:], generator=g) > 0.5).float() for x in covers]
    result_series, t_start = [], time.time()
    for name, cfg in series:
        cfg = replace(cfg, iters=at[-1], seed=seed)
        per_img, cpu = [], 0.0
        for i, (x, t) in enumerate(zip(covers, targets)):
            t0 = time.process_time()
            res = edit_latent(m, decoder, x, t, cfg, keep=at)
            cpu += time.process_time() - t0
            per_img.append({k: _read(m, decoder, res.snapshots[k], x, t) for k in at})
            log(f"[{time.time() - t_start:.0f}s] {name}: image {i + 1}/{len(covers)}: "
                f"{per_img[-1][at[-1]]['acc_coded']:.3f} after {at[-1]}")
        points = [{"iters": k, **{f: float(np.mean([p[k][f] for p in per_img]))
                                  for f in ("acc_float", "acc_coded", "bpp", "psnr")},
                   "acc_coded_min": float(np.min([p[k]["acc_coded"] for p in per_img])),
                   "acc_coded_max": float(np.max([p[k]["acc_coded"] for p in per_img]))} for k in at]
        result_series.append({"label": name, "edit": dict(vars(cfg)), "points": points,
                              "cpu_s_per_iter": cpu / max(1, at[-1] * len(covers))})
    result = {"settings": {**(settings or {}), "codec": label, "codec_meta": m.meta, "N": m.N, "M": m.M,
                           "n": len(covers), "size": list(covers[0].shape[-2:]), "at": list(at), "seed": seed,
                           "decoder_id": decoder.decoder_id(), "seconds": round(time.time() - t_start, 1),
                           "command": command},
              "paper_div2k": {q: dict(zip(("psnr", "bpp", "accuracy"), v)) for q, v in PAPER_HYPERBASE.items()},
              "series": result_series}
    path = write_results(result, out, to_markdown(result))
    _plot(result, path.with_suffix(".png"))
    return result


def to_markdown(r: dict) -> str:
    s = r["settings"]
    lines = md_head(
        f"Hyperbase accuracy against editing iterations (codec {s['codec']}, M = {s['M']})",
        f"{s['n']} validation crop{'s' if s['n'] > 1 else ''} of {s['size'][0]} x {s['size'][1]} px, 1 bit per "
        f"pixel, decoder id "
        f"{s['decoder_id']}, seed {s['seed']}. Each series is one editing run per image (paper 004 eq. 1, "
        "1 - SSIM for LPIPS, no discriminator); y is read after each iteration count. **coded**: the real "
        "range-coded bitstream, decoded and rounded to 8 bits (what the receiver reads); **float**: the "
        "decoder on g_s(y) without rounding y. Mean over images (coded min-max in brackets). Paper 004 "
        "Table 2 (DIV2K, 512 px): hyperbase_6 91.75 % at 3.53 bpp, 23.28 dB (CompressAI q6, M = 320); "
        f"hyperbase_5 81.21 % at 1.66 bpp (q5, M = 192). Took {s['seconds']} s.",
        command=s.get("command", ""))
    for ser in r["series"]:
        e = ser["edit"]
        lines += [f"## {ser['label']}", "",
                  f"lr {e['lr']:g}, rounding {e['rounding']}, clamp gradient {e.get('clamp_grad', False)}, CE "
                  f"{e['ce_reduction']}, lambda1 "
                  f"{'codec' if e['lambda1'] is None else format(e['lambda1'], 'g')}, lambda2 {e['lambda2']:g}, "
                  f"lambda4 {e['lambda4']:.4g}, lambda5 {e['lambda5']:.4g}"
                  + (f"; then at most {e['lattice']} rounds of lattice descent on the rounded y at the last count "
                     "(robusthide/latent/editing.py; its time is in the CPU figures)" if e.get("lattice") else "")
                  + f"; {ser['cpu_s_per_iter']:.3f} CPU s per iteration and image (one thread).", "",
                  "| iterations | accuracy coded | accuracy float | bpp | PSNR | CPU s / image |",
                  "|---|---|---|---|---|---|"]
        for p in ser["points"]:
            lines.append(f"| {p['iters']} | {100 * p['acc_coded']:.2f} % ({100 * p['acc_coded_min']:.1f}-"
                         f"{100 * p['acc_coded_max']:.1f}) | {100 * p['acc_float']:.2f} % | {p['bpp']:.3f} | "
                         f"{p['psnr']:.2f} | {p['iters'] * ser['cpu_s_per_iter']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def _plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, ser in enumerate(r["series"]):
        k = [p["iters"] for p in ser["points"]]
        col = f"C{i}"
        ax.plot(k, [100 * p["acc_coded"] for p in ser["points"]], "o-", color=col, label=f"{ser['label']} (coded)")
        ax.plot(k, [100 * p["acc_float"] for p in ser["points"]], "--", color=col, alpha=0.6,
                label=f"{ser['label']} (float y)")
        bx.plot(k, [p["bpp"] for p in ser["points"]], "o-", color=col, label=ser["label"])
    ax.axhline(91.75, color="k", ls=":", label="paper hyperbase_6 (DIV2K, M 320)")
    ax.axhline(81.21, color="grey", ls=":", label="paper hyperbase_5 (M 192)")
    ax.set_xlabel("editing iterations")
    ax.set_ylabel("bit accuracy (%)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    bx.set_xlabel("editing iterations")
    bx.set_ylabel("payload bpp (coded)")
    bx.grid(alpha=0.3)
    bx.legend(fontsize=7)
    s = r["settings"]
    fig.suptitle(f"codec {s['codec']} (M {s['M']}), {s['n']} crop{'s' if s['n'] > 1 else ''} of {s['size'][0]} px")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
