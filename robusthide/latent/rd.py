"""``robusthide latent rd``: the codecs alone against Pillow JPEG and WebP, rate-distortion on validation photos.

Every codec compresses the same crops (the photo folder's val split, ``ImageBank.fixed_set`` as in bench.py).
Rates are **whole-file** bits per pixel for every format: the ``.rhl`` file of ``latent compress`` (header
and CRC included), the JPEG or WebP file. On small crops a JPEG header is a noticeable share of the file
(about 600 bytes: 0.07 bpp at 256 px), so the comparison is stated with it. PSNR is on the decoded 8-bit image
against the crop, averaged over images; bpp is averaged too.

For each codec point the table gives the PSNR of JPEG and WebP at the same bpp, and the bpp they need for the
same PSNR. Both are interpolated on their curves in log-rate. The rate difference at equal PSNR is the
one-point form of BD-rate: negative means fewer bits than JPEG. With two or more codec points, the BD-rate
of the set against each anchor is computed over the overlapping range (``bjontegaard``, pchip).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from robusthide import RobustHideError
from robusthide.latent.report import md_head, write_json

JPEG_QUALITIES = tuple(range(5, 100, 5))
WEBP_QUALITIES = tuple(range(5, 100, 10))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    from robusthide.metrics import psnr

    return float(psnr(a, b))


def anchor_curve(spec: str, qualities: tuple[int, ...], covers: list[torch.Tensor]) -> list[dict]:
    """(q, mean bpp, mean PSNR) of a Pillow codec (``jpeg`` or ``webp``) at each quality."""
    from robusthide.codecs import get_codec

    out = []
    for q in qualities:
        c = get_codec(f"{spec}:q={q}")
        rs = [c(x) for x in covers]
        out.append({"q": q, "bpp": float(np.mean([r.bpp()[0] for r in rs])),
                    "psnr": float(np.mean([_psnr(r.images, x) for r, x in zip(rs, covers)]))})
    return out


def codec_point(codec, covers: list[torch.Tensor]) -> dict:
    """Mean whole-file bpp and PSNR of a learned codec (``latent compress`` files, decoded)."""
    from robusthide.latent.api import compress_bytes, decode_bytes

    bpp, ps, payload = [], [], []
    for x in covers:
        data, info = compress_bytes(codec, x)
        bpp.append(info.bpp)
        payload.append(info.payload_bpp)
        ps.append(_psnr(decode_bytes(codec, data), x))
    return {"bpp": float(np.mean(bpp)), "payload_bpp": float(np.mean(payload)), "psnr": float(np.mean(ps))}


def _interp(xs: list[float], ys: list[float], x: float, log_x: bool) -> float | None:
    """y at x on the curve (xs increasing after sorting); None outside the curve's range."""
    order = np.argsort(xs)
    xa, ya = np.asarray(xs, dtype=np.float64)[order], np.asarray(ys, dtype=np.float64)[order]
    if not xa[0] <= x <= xa[-1]:
        return None
    if log_x:
        return float(np.interp(np.log(x), np.log(xa), ya))
    return float(np.exp(np.interp(x, xa, np.log(ya))))


def compare(point: dict, curve: list[dict]) -> dict:
    """Anchor PSNR at the point's bpp, anchor bpp at the point's PSNR, and the rate difference (%)."""
    b, p = [c["bpp"] for c in curve], [c["psnr"] for c in curve]
    psnr_at = _interp(b, p, point["bpp"], log_x=True)
    bpp_at = _interp(p, b, point["psnr"], log_x=False)
    return {"psnr_at_bpp": psnr_at, "bpp_at_psnr": bpp_at,
            "psnr_gain": None if psnr_at is None else point["psnr"] - psnr_at,
            "rate_diff_pct": None if bpp_at is None else 100.0 * (point["bpp"] / bpp_at - 1.0)}


def bd_rate(points: list[dict], curve: list[dict]) -> float | None:
    """BD-rate (%) of two or more codec points against an anchor curve (pchip); None when undefined (fewer
    than two points, or points whose PSNR does not rise with the rate, as for codecs of different trainings)."""
    import warnings

    import bjontegaard

    if len(points) < 2:
        return None
    pts = sorted(points, key=lambda d: d["bpp"])
    if any(b["psnr"] <= a["psnr"] for a, b in zip(pts, pts[1:])):
        return None  # not a rate-distortion curve: the interpolation is undefined
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(bjontegaard.bd_rate([c["bpp"] for c in curve], [c["psnr"] for c in curve],
                                             [d["bpp"] for d in pts], [d["psnr"] for d in pts], method="pchip",
                                             require_matching_points=False))
    except (ValueError, ZeroDivisionError):
        return None


def run(codecs: list[tuple[str, object]], data: str | Path, out: str | Path, n: int = 32, size: int = 256,
        seed: int = 0, max_side: int = 512, command: str = "", log=print) -> dict:
    """R-D of each (label, codec) against JPEG and WebP on ``n`` val crops; writes ``out``.md/.json/.png."""
    from robusthide.training.data import ImageBank

    if not codecs:
        raise RobustHideError("rd needs at least one codec: --codec [LABEL=]WEIGHTS (or a shipped quality)")
    t0 = time.time()
    bank = ImageBank(data, split="val", max_side=max_side, min_side=size)
    covers = [c[None] for c in bank.fixed_set(n, size, seed=1234 + seed)]
    jpeg = anchor_curve("jpeg", JPEG_QUALITIES, covers)
    webp = anchor_curve("webp", WEBP_QUALITIES, covers)
    log(f"[{time.time() - t0:.0f}s] JPEG and WebP curves done")
    points = []
    for label, codec in codecs:
        pt = {"codec": label, "arch": getattr(codec, "arch", "hyperprior"), "N": codec.N, "M": codec.M,
              "meta": dict(getattr(codec, "meta", {})), **codec_point(codec, covers)}
        pt["vs_jpeg"], pt["vs_webp"] = compare(pt, jpeg), compare(pt, webp)
        points.append(pt)
        log(f"[{time.time() - t0:.0f}s] {label}: {pt['bpp']:.3f} bpp, {pt['psnr']:.2f} dB")
    result = {"settings": {"n": n, "size": size, "seed": seed, "data": str(data), "command": command,
                           "seconds": round(time.time() - t0, 1)},
              "jpeg": jpeg, "webp": webp, "codecs": points,
              "bd_rate": {"jpeg": bd_rate(points, jpeg), "webp": bd_rate(points, webp)}}
    out = write_json(result, out)
    _plot(result, out.with_suffix(".png"))
    out.with_suffix(".md").write_text(to_markdown(result, out.with_suffix(".png").name))
    return result


def _plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for name, curve, style in (("Pillow JPEG", r["jpeg"], "o-"), ("Pillow WebP", r["webp"], "s-")):
        ax.plot([c["bpp"] for c in curve], [c["psnr"] for c in curve], style, ms=3, label=name)
    for p in r["codecs"]:
        ax.plot([p["bpp"]], [p["psnr"]], "*", ms=11, label=f"{p['arch']} {p['codec']}")
    hi = max([p["bpp"] for p in r["codecs"]] + [1.0]) * 1.6
    ax.set_xlim(0, hi)
    ax.set_xlabel("bits per pixel (whole file)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"{r['settings']['n']} validation crops of {r['settings']['size']} px")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _f(v: float | None, fmt: str, unit: str = "") -> str:
    return "-" if v is None else format(v, fmt) + unit


def to_markdown(r: dict, png: str) -> str:
    s = r["settings"]
    lines = md_head(
        "Latent codecs alone vs Pillow JPEG and WebP (rate-distortion)",
        f"{s['n']} validation crops of {s['size']} x {s['size']} px (photo folder `{s['data']}`, val split, crop"
        f" seed {1234 + s['seed']}). bpp = whole-file bits / pixels for every format (our `.rhl` from"
        f" `latent compress`, JPEG and WebP files); PSNR on the decoded 8-bit image. Took {s['seconds']} s.",
        command=s.get("command") or "",
    )
    lines += [f"![R-D curves]({png})", "",
              "| codec | arch, N / M | training (lambda, steps, crop) | bpp (payload) | PSNR |"
              " JPEG PSNR at same bpp | JPEG bpp at same PSNR | rate vs JPEG | WebP PSNR at same bpp |"
              " rate vs WebP |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for p in r["codecs"]:
        m, j, w = p["meta"], p["vs_jpeg"], p["vs_webp"]
        steps = m.get("steps", m.get("step", "?"))  # "steps": older codec files; "step": robusthide/2
        lines.append(
            f"| {p['codec']} | {p['arch']}, {p['N']} / {p['M']} | {m.get('lmbda', '?')}, {steps},"
            f" {m.get('size', '?')} | {p['bpp']:.3f} ({p['payload_bpp']:.3f}) | {p['psnr']:.2f} |"
            f" {_f(j['psnr_at_bpp'], '.2f')} | {_f(j['bpp_at_psnr'], '.3f')} | {_f(j['rate_diff_pct'], '+.1f', ' %')} |"
            f" {_f(w['psnr_at_bpp'], '.2f')} | {_f(w['rate_diff_pct'], '+.1f', ' %')} |")
    bd = r["bd_rate"]
    lines += ["", f"BD-rate of the codec set (pchip, overlapping range): vs JPEG {_f(bd['jpeg'], '+.1f', ' %')},"
              f" vs WebP {_f(bd['webp'], '+.1f', ' %')} ('-': fewer than two codec points, or no overlap).",
              "", "Anchor curves (q: bpp / PSNR):", "",
              "- JPEG: " + ", ".join(f"q{c['q']} {c['bpp']:.3f} / {c['psnr']:.2f}" for c in r["jpeg"]),
              "- WebP: " + ", ".join(f"q{c['q']} {c['bpp']:.3f} / {c['psnr']:.2f}" for c in r["webp"]), ""]
    return "\n".join(lines)
