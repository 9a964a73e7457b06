"""``robusthide latent bench-liso``: LISO and LISO-JPEG against FNNS on the same images and bits per pixel.

The covers and target bits are exactly those of ``robusthide latent bench`` (same photo folder, split, crop
seed and message seed), so the rows line up with docs/results/latent.md. Each method is read by its own
decoder: FNNS by the fixed FNNS decoder, LISO and LISO-JPEG by the decoder trained with them. Rows:

* ``FNNS`` (float32, 96 bpp), ``FNNS-png``, ``FNNS-jpgQ`` (the FNNS image saved as real JPEG Q), and
  ``FNNS-JPGQ_TRAIN`` for Q = the LISO-JPEG quality (DiffJPEG in the loop, then real JPEG);
* ``LISO`` (float32), ``LISO-png``, ``LISO-jpgQ`` (the LISO image saved as real JPEG Q);
* ``LISO-JPEG`` (trained with the JPEG layer at Q, saved as real JPEG Q).

Columns as in bench.py: PSNR, bpp from real file sizes, bit accuracy, RSBPP rate, and the StegExpose-style
detectors (fused: chi-square, RS, SPA, primary sets).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from robusthide.latent import steganalysis as sa
from robusthide.latent.bench import PAPER_DIV2K, PAPER_DIV2K_DETECT, _acc, _coded_row, _row
from robusthide.latent.fnns import FnnsConfig, fnns_embed
from robusthide.latent.liso import Liso, load_liso
from robusthide.latent.report import md_head, write_results

#: paper 004 Table 2 (DIV2K): LISO rows; PSNR, BPP, accuracy %, RSBPP rate
PAPER_DIV2K_LISO = {
    "LISO-png": (33.83, 17.08, 100.00, 0.062), "LISO-jpg90": (27.44, 3.35, 57.40, 0.044),
    "LISO-jpg70": (29.14, 1.61, 52.09, 0.026), "LISO-jpg50": (28.66, 1.19, 50.69, 0.012),
    "LISO-JPEG": (15.41, 4.20, 99.47, 0.236),
}
#: paper 004 Table 4 (DIV2K): detection accuracy % and PSNR of the LISO rows
PAPER_DIV2K_LISO_DETECT = {"LISO": 0, "LISO-jpg90": 4}


def _saved_rows(prefix: str, stegos: list, covers: list, targets: list, decoder, qualities: tuple[int, ...]) -> list:
    from robusthide.codecs import get_codec

    rows = [_row(prefix, stegos, covers, covers, [_acc(decoder, s, t) for s, t in zip(stegos, targets)],
                 [96.0] * len(stegos))]
    png = [get_codec("png")(s) for s in stegos]
    rows.append(_coded_row(f"{prefix}-png", png, covers, covers, decoder, targets))
    for q in qualities:
        jc = get_codec(f"jpeg:q={q}")
        clean = [jc(x).images for x in covers]
        js = [jc(s) for s in stegos]
        rows.append(_coded_row(f"{prefix}-jpg{q}", js, clean, covers, decoder, targets))
    return rows


def run(
    liso: str | Path, liso_jpeg: str | Path | None, fnns_decoder: str | None, data: str | Path, out: str | Path,
    n: int = 8, size: int = 128, fnns_steps: int = 30, liso_iters: int | None = None, seed: int = 0,
    qualities: tuple[int, ...] = (90, 70, 50), max_side: int = 512, log=print, command: str = "",
) -> dict:
    """LISO / LISO-JPEG / FNNS rows on ``n`` validation crops of ``size`` px; writes ``out``.md / .json.

    ``fnns_decoder``: a weights file, a zoo name or ``fnns-r:SEED``; None: the zoo's default decoder."""
    from robusthide.codecs import get_codec
    from robusthide.latent.api import resolve_decoder
    from robusthide.training.data import ImageBank

    t0 = time.time()
    model = load_liso(liso)
    jmodel: Liso | None = load_liso(liso_jpeg) if liso_jpeg else None
    fdec = resolve_decoder(fnns_decoder)
    bank = ImageBank(data, split="val", max_side=max_side, min_side=size)
    covers = [c[None] for c in bank.fixed_set(n, size, seed=1234 + seed)]  # as bench.run
    g = torch.Generator().manual_seed(seed)
    targets = [(torch.rand(1, fdec.data_depth, size, size, generator=g) > 0.5).float() for _ in covers]
    rows = []
    f_st = [fnns_embed(fdec, x, t, FnnsConfig(steps=fnns_steps)) for x, t in zip(covers, targets)]
    rows += _saved_rows("FNNS", f_st, covers, targets, fdec, qualities)
    log(f"[{time.time() - t0:.0f}s] FNNS done")
    l_st = [model.embed(x, t, liso_iters) for x, t in zip(covers, targets)]
    rows += _saved_rows("LISO", l_st, covers, targets, model.decoder, qualities)
    log(f"[{time.time() - t0:.0f}s] LISO done")
    if jmodel is not None:
        q = int(jmodel.jpeg) if jmodel.jpeg is not None else 90
        jc = get_codec(f"jpeg:q={q}")
        clean = [jc(x).images for x in covers]
        tr = [jc(fnns_embed(fdec, x, t, FnnsConfig(steps=fnns_steps, jpeg_train=q))) for x, t in zip(covers, targets)]
        rows.append(_coded_row(f"FNNS-JPG{q}_TRAIN", tr, clean, covers, fdec, targets))
        lj = [jc(jmodel.embed(x, t, liso_iters)) for x, t in zip(covers, targets)]
        rows.append(_coded_row("LISO-JPEG", lj, clean, covers, jmodel.decoder, targets))
        log(f"[{time.time() - t0:.0f}s] LISO-JPEG done")
    meta = {k: getattr(m, "meta", {}) for k, m in (("liso", model), ("liso_jpeg", jmodel)) if m is not None}
    result = {
        "settings": {"n": n, "size": size, "fnns_steps": fnns_steps,
                     "fnns_decoder": fnns_decoder or Path(fdec.spec).name, "fnns_decoder_id": fdec.decoder_id(),
                     "liso": str(liso), "liso_jpeg": str(liso_jpeg or ""),
                     "liso_meta": meta, "liso_iters": liso_iters or model.iters, "seed": seed, "data": str(data),
                     "seconds": round(time.time() - t0, 1), "command": command},
        "rows": rows,
    }
    write_results(result, out, to_markdown(result))
    return result


def to_markdown(r: dict) -> str:
    s = r["settings"]
    lines = md_head(
        "LISO and LISO-JPEG vs FNNS on our photos (paper 004's baselines)",
        f"{s['n']} validation crops of {s['size']} x {s['size']} px (photo folder `{s['data']}`, the covers and"
        f" bits of `robusthide latent bench`), 1 bit per pixel. FNNS: decoder `{s['fnns_decoder']}` (id"
        f" {s['fnns_decoder_id']}), {s['fnns_steps']} L-BFGS steps. LISO: `{s['liso']}`, LISO-JPEG:"
        f" `{s['liso_jpeg'] or '-'}`, {s['liso_iters']} learned steps, each read by its own decoder."
        f" Took {s['seconds']} s.",
        command=s.get("command") or "",
    )
    lines += [
        "| method | PSNR | bpp | accuracy | RSBPP rate | flagged (fused) | balanced acc. (fused) |"
        " paper DIV2K PSNR / bpp / acc. / RSBPP rate / detection |",
        "|---|---|---|---|---|---|---|---|",
    ]
    paper = {**PAPER_DIV2K, **PAPER_DIV2K_LISO}
    detect = {**PAPER_DIV2K_DETECT, **PAPER_DIV2K_LISO_DETECT}
    for row in r["rows"]:
        p, pd = paper.get(row["method"]), detect.get(row["method"])
        ptxt = (f"{p[0]:g} / {p[1]:g} / {p[2]:g} % / {p[3]:g}" if p else "-") + (f" / {pd} %" if pd is not None else "")
        lines.append(
            f"| {row['method']} | {row['psnr']:.2f} | {row['bpp']:.3f} | {100 * row['accuracy']:.2f} % |"
            f" {row['rsbpp_rate']:.3f} | {100 * row['detected']['fused']:.0f} % |"
            f" {100 * row['balanced_accuracy']['fused']:.0f} % | {ptxt} |"
        )
    names = " / ".join(k.replace("_", " ") for k in sa.THRESHOLDS)
    lines += ["", f"Per-detector flag rates on the stego images ({names}):", ""]
    for row in r["rows"]:
        d = row["detected"]
        lines.append(f"- {row['method']}: {' / '.join(f'{100 * d[k]:.0f} %' for k in sa.THRESHOLDS)}")
    lines += ["", "Paper figures: Table 2 (DIV2K, 512 x 512, 100 images) and Table 4 (DIV2K); the paper does not"
              " state LISO-JPEG's quality (ours is in the row name of FNNS-JPGQ_TRAIN beside it).", ""]
    return "\n".join(lines)
