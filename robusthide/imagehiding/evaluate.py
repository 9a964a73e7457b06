"""Evaluation of an exported image-hiding model: ``robusthide imagehide evaluate MODEL --data DIR``.

For ``n`` seeded (cover, secrets) groups -- random crops of the photos of ``DIR`` (by default its validation
split, :func:`robusthide.training.data.split_of`), resized to the model's working size ``S`` -- it measures,
on 8-bit images:

* container vs cover: PSNR, SSIM, APD (paper 003 §3.1 reports PSNR / SSIM, paper 000 §4 APD);
* revealed vs secret: PSNR, SSIM, APD, with no attack and after each attack of :data:`DEFAULT_ATTACKS`
  applied to the saved (8-bit) container: real JPEG (Pillow, 4:2:0), rescaling (down and back up, Pillow
  bicubic), Gaussian blur, Gaussian noise (paper 003 Tables 1 and 3: JPEG, Scaling, Blur, AWGN) and real
  JPEG 2000 (OpenCV ``x1000``) and WebP (paper 000 §4); plus the attacked container's PSNR against the
  cover (how strong the attack is) and, for codecs, bits per pixel.

Attack names: ``none``; any :func:`robusthide.codecs.get_codec` spec (``jpeg:q=50``, ``resize:0.5``,
``webp:q=50``, ``jpeg2000:x1000=50``...); ``blur:SIGMA`` (:class:`robusthide.attacks.GaussianBlur`);
``noise:SIGMA`` (:class:`robusthide.attacks.GaussianNoise`, seeded). Results go to ``OUT.json`` and
``OUT.md``.

``cover_size`` other than ``S`` evaluates the any-size path of :meth:`ImageHider.hide` (residual computed
at ``S`` and upsampled to the cover) and :meth:`ImageHider.reveal` (container resized to ``S``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robusthide import RobustHideError
from robusthide.imagehiding.api import ImageHider
from robusthide.imagehiding.refine import HideRefineConfig

#: Attacks evaluated by default (paper 003 Table 1 / 3 attack types, paper 000 §4 codecs).
DEFAULT_ATTACKS: tuple[str, ...] = (
    "none",
    "jpeg:q=90", "jpeg:q=75", "jpeg:q=50",
    "resize:0.75", "resize:0.5",
    "blur:1", "noise:0.02",
    "jpeg2000:x1000=100", "jpeg2000:x1000=50",
    "webp:q=75", "webp:q=50",
)

#: Numbers the papers report, for context (other data, sizes and networks: not directly comparable).
PAPER_NUMBERS = {
    "003 Table 1 (1 secret, COCO): revealed PSNR / SSIM": "no attack 29.76 / 0.916, JPEG 26.69 / 0.875, "
    "scaling 28.47 / 0.895, blur 28.32 / 0.905 (JPEG quality and attack parameters lost in the text)",
    "003 §3.1: container PSNR / SSIM (1 secret)": "33.94 dB / 0.9517",
    "003 Table 3: revealed PSNR, 2 / 3 secrets, no attack": "28.62 / 28.14 dB (containers 32.13 / 32.69 dB)",
    "000 §4 (JPEG + JPEG 2000 + WebP): APD cover-container / secret-revealed": "9.13 / 8.54 (x 1/255)",
}


#: rows of the contact sheet, and the attack whose revealed images it shows beside the clean ones
SHEET_ROWS, SHEET_ATTACK = 4, "jpeg:q=50"


def apply_attack(name: str, images: np.ndarray, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Apply one named attack to a uint8 ``N x H x W x 3`` batch; return ``(images, nbytes)``."""
    from robusthide.attacks import GaussianBlur, GaussianNoise
    from robusthide.codecs import get_codec

    key, _, arg = name.partition(":")
    if key == "none":
        return images, [0] * len(images)
    if key in ("blur", "noise"):
        try:
            sigma = float(arg)
        except ValueError:
            raise RobustHideError(f"attack {name!r}: expected {key}:SIGMA") from None
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        layer = (GaussianBlur(sigma) if key == "blur"
                 else GaussianNoise(sigma, generator=torch.Generator().manual_seed(seed)))
        y = layer(x)
        out = (y.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return np.ascontiguousarray(out), [0] * len(images)
    res = get_codec(name)(images)
    return res.images, list(res.nbytes)


def _fmt(v: float, nd: int = 2) -> str:
    return "inf" if math.isinf(v) else f"{v:.{nd}f}"


def evaluate(model: str | Path | ImageHider, data: str | Path, n: int = 100, split: str | None = "val",
             attacks: Sequence[str] = DEFAULT_ATTACKS, seed: int = 0, cover_size: int | None = None,
             max_side: int = 384, progress: bool = False, samples: bool = False,
             refine: HideRefineConfig | None = None) -> dict[str, Any]:
    """Evaluate a model; return the result document (see the module docstring). ``samples``: keep the first
    :data:`SHEET_ROWS` groups' images under ``_samples`` for :func:`write_report`'s contact sheet."""
    from tqdm import tqdm

    from robusthide.metrics import apd, edge_trace, psnr, ssim
    from robusthide.training.data import ImageBank

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise RobustHideError(f"n must be a positive integer, got {n!r}")
    hider = model if isinstance(model, ImageHider) else ImageHider.from_file(model)
    S, k = hider.size, hider.n_secrets
    csize = cover_size or S
    if csize < 16:
        raise RobustHideError(f"cover size must be at least 16, got {csize}")
    split_ = split if split in ("train", "val") else None
    bank = ImageBank(data, split_, max_side=max(max_side, csize), min_side=min(S, csize))
    covers_t = bank.fixed_set(n, csize, seed=1234 + seed)
    secrets_t = [bank.fixed_set(n, S, seed=2345 + 101 * seed + i) for i in range(k)]

    def u8(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray((t * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())

    covers = u8(covers_t)
    secrets = [u8(s) for s in secrets_t]
    t0 = time.time()
    containers = np.stack([hider.hide(covers[i], [s[i] for s in secrets], refine=refine)
                           for i in tqdm(range(n), disable=not progress, desc="hide")])
    doc: dict[str, Any] = {
        "model": str(model) if not isinstance(model, ImageHider) else hider.meta.get("name", "model"),
        "name": hider.meta.get("name", ""), "train_attack": hider.meta.get("attack", ""),
        "step": hider.meta.get("step", ""), "arch": hider.net.arch, "data": str(data), "split": split_ or "all",
        "n": n, "seed": seed, "size": S, "cover_size": csize, "n_secrets": k,
        "refine": None if refine is None or not refine.steps else dataclasses.asdict(refine),
        "container": {"psnr": psnr(covers, containers), "ssim": ssim(covers, containers),
                      "apd": apd(covers, containers)},
        "trace": {"secret": float(np.mean([edge_trace(covers, containers, s) for s in secrets])),
                  "unrelated": float(np.mean([edge_trace(covers, containers, np.roll(s, 1, axis=0))
                                              for s in secrets]))},
        "attacks": {},
    }
    kept: dict[str, Any] = {"cover": covers[:SHEET_ROWS], "container": containers[:SHEET_ROWS],
                               "secrets": [s[:SHEET_ROWS] for s in secrets], "revealed": {}}
    for name in tqdm(attacks, disable=not progress, desc="attacks"):
        attacked, nbytes = apply_attack(name, containers, seed)
        revealed = [hider.reveal(attacked[i]) for i in range(n)]
        row: dict[str, Any] = {"attacked_psnr": psnr(covers, attacked)}
        if any(nbytes):
            row["bpp"] = float(np.mean([8.0 * b / (csize * csize) for b in nbytes]))
        per = []
        for j in range(k):
            rv = np.stack([r[j] for r in revealed])
            per.append({"psnr": psnr(secrets[j], rv), "ssim": ssim(secrets[j], rv), "apd": apd(secrets[j], rv)})
        for key in ("psnr", "ssim", "apd"):
            row[key] = float(np.mean([p[key] for p in per]))
        if k > 1:
            row["per_secret"] = per
        doc["attacks"][name] = row
        if name in ("none", SHEET_ATTACK):
            kept["revealed"][name] = [np.stack([r[j] for r in revealed[:SHEET_ROWS]]) for j in range(k)]
    doc["seconds"] = round(time.time() - t0, 1)
    if samples:
        doc["_samples"] = kept
    doc["paper_numbers"] = PAPER_NUMBERS
    return doc


def to_markdown(doc: dict[str, Any]) -> str:
    """A Markdown report of :func:`evaluate`'s document."""
    c = doc["container"]
    lines = [
        f"# Image hiding: {doc.get('name') or doc['model']}",
        "",
        f"Model `{doc['model']}` (step {doc.get('step', '?')}), {doc['n_secrets']} secret image(s) at "
        f"{doc['size']} x {doc['size']}, covers {doc['cover_size']} x {doc['cover_size']}; trained against "
        f"`{doc.get('train_attack') or '(not recorded)'}`. {doc['n']} groups of random crops of `{doc['data']}` "
        f"(split {doc['split']}, seed {doc['seed']}). All metrics on 8-bit images; APD in units of 1/255.",
        "",
        *([f"Command: `{doc['command']}`", ""] if doc.get("command") else []),
        *([f"Embed-time refinement (robusthide/imagehiding/refine.py): {doc['refine']}.", ""]
          if doc.get("refine") else []),
        f"Container vs cover: PSNR {_fmt(c['psnr'])} dB, SSIM {c['ssim']:.4f}, APD {c['apd']:.2f}.",
        "",
        *([f"Trace of the secret in the container (metrics.edge_trace: correlation of |container - cover| with "
           f"the secret's Sobel edges): {doc['trace']['secret']:.4f}, against {doc['trace']['unrelated']:.4f} "
           f"for an unrelated image's edges (equal figures: no outline of the secret in the residual).", ""]
          if "trace" in doc else []),
        *([f"Contact sheet: `{doc['sheet']}`.", ""] if doc.get("sheet") else []),
        "| attack on the container | attacked container PSNR (dB) | bpp | revealed PSNR (dB) | revealed SSIM | "
        "revealed APD |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in doc["attacks"].items():
        bpp = f"{r['bpp']:.2f}" if "bpp" in r else ""
        lines.append(f"| `{name}` | {_fmt(r['attacked_psnr'])} | {bpp} | {_fmt(r['psnr'])} | {r['ssim']:.4f} | "
                     f"{r['apd']:.2f} |")
    lines += ["", "Reported in the papers (other data, sizes and networks; for orientation only):", ""]
    lines += [f"* {k}: {v}" for k, v in doc.get("paper_numbers", {}).items()]
    lines += ["", f"Evaluation took {doc.get('seconds', '?')} s.", ""]
    return "\n".join(lines)


def contact_sheet(doc: dict[str, Any], path: str | Path) -> Path:
    """A PNG: a caption (the container's PSNR / SSIM and issue 22's "no visible trace" measure, the edge trace
    of the secret against that of an unrelated image), then one row per sample group -- cover, container,
    |container - cover| x 10, then for each secret the secret, the revealed image and the one revealed after
    :data:`SHEET_ATTACK`."""
    from PIL import Image, ImageDraw

    from robusthide.io.safe import atomic_output

    s = doc["_samples"]
    size = s["container"].shape[1]

    def fit(a: np.ndarray) -> np.ndarray:
        if a.shape[0] == size and a.shape[1] == size:
            return a
        return np.asarray(Image.fromarray(a).resize((size, size), Image.BICUBIC))

    rows = []
    for i in range(len(s["cover"])):
        res = np.abs(s["container"][i].astype(np.int16) - s["cover"][i].astype(np.int16)) * 10
        tiles = [s["cover"][i], s["container"][i], np.clip(res, 0, 255).astype(np.uint8)]
        for j, sec in enumerate(s["secrets"]):
            tiles += [fit(sec[i])] + [fit(s["revealed"][a][j][i]) for a in ("none", SHEET_ATTACK)
                                      if a in s["revealed"]]
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    c, tr = doc.get("container", {}), doc.get("trace", {})
    after = f", revealed after {SHEET_ATTACK}" if SHEET_ATTACK in s["revealed"] else ""
    caption = [f"{doc.get('name', '')}: container {_fmt(c.get('psnr', float('nan')))} dB, SSIM "
               f"{_fmt(c.get('ssim', float('nan')), 4)}; edge trace {_fmt(tr.get('secret', float('nan')), 4)} "
               f"(secret) vs {_fmt(tr.get('unrelated', float('nan')), 4)} (unrelated image)",
               f"columns: cover, container, |container - cover| x 10; per secret: secret, revealed{after}"]
    caption = [part for line in caption for part in textwrap.wrap(line, max(20, sheet.shape[1] // 6))]
    band = Image.new("RGB", (sheet.shape[1], 14 * len(caption) + 6), "white")
    draw = ImageDraw.Draw(band)
    for k, line in enumerate(caption):
        draw.text((4, 3 + 14 * k), line, fill="black")
    sheet = np.concatenate([np.asarray(band), sheet], axis=0)
    out = Path(path)
    with atomic_output(out) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    return out


def write_report(doc: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``OUT.json``, ``OUT.md`` and the contact sheet ``OUT.png`` (atomically); return the first two.
    The document's ``_samples`` (the images of the sheet) are removed from ``doc``."""
    from robusthide.training.checkpoint import atomic_write

    base = Path(out)
    if base.suffix in (".json", ".md"):
        base = base.with_suffix("")
    j, m = base.with_name(base.name + ".json"), base.with_name(base.name + ".md")
    if "_samples" in doc:  # the sample images leave the document here (it is JSON from now on)
        png = base.with_name(base.name + ".png")
        contact_sheet(doc, png)
        doc["sheet"] = png.name
        del doc["_samples"]
    atomic_write(j, lambda p: p.write_text(json.dumps(doc, indent=1)))
    atomic_write(m, lambda p: p.write_text(to_markdown(doc)))
    return j, m
