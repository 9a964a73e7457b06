"""Measure the false-positive rate of detection on clean (unmarked) images.

Clean inputs: random patches (64 px to 1024 px, any aspect) of photos the model never saw (the
validation split), plus synthetic images (flat colours, gradients, white/pink noise, checkerboards,
text-like stripes). Each is decoded and tested exactly as ``Watermarker.extract`` does; the design
false-positive rate of the detector is 1e-6 per image (see docs/payload.md), so over N clean images
the expected number of false positives is N * 1e-6.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from robusthide import RobustHideError
from robusthide.training.data import list_images, load_rgb


def synthetic(rng: np.random.Generator, n: int, size: int = 256) -> list[np.ndarray]:
    out = []
    for i in range(n):
        k = i % 6
        if k == 0:
            im = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (size, size, 3))
        elif k == 1:
            t = np.linspace(0, 1, size)
            a, b = rng.random(3), rng.random(3)
            im = ((a[None, None] * t[None, :, None] + b[None, None] * t[:, None, None]) / 2 * 255)
        elif k == 2:
            im = rng.integers(0, 256, (size, size, 3))
        elif k == 3:
            f = np.fft.fftfreq(size)
            amp = 1 / np.maximum(np.hypot(f[:, None], f[None, :]), 1 / size)
            ph = np.exp(2j * np.pi * rng.random((3, size, size)))
            im = np.real(np.fft.ifft2(amp[None] * ph)).transpose(1, 2, 0)
            im = (im - im.min()) / (np.ptp(im) + 1e-9) * 255
        elif k == 4:
            c = int(rng.integers(2, 32))
            y, x = np.mgrid[:size, :size]
            im = np.repeat((((y // c + x // c) % 2) * 255)[..., None], 3, 2)
        else:
            im = np.repeat((np.sin(np.arange(size) * rng.random() * 2)[None, :] > 0)[..., None] * 255, 3, 2)
            im = np.broadcast_to(im, (size, size, 3))
        out.append(np.ascontiguousarray(np.clip(im, 0, 255).astype(np.uint8)))
    return out


def photo_patches(folder: str, split: str | None, n: int, rng: np.random.Generator) -> list[torch.Tensor]:
    imgs = [load_rgb(p, 2048) for p in list_images(folder, split)]
    out = []
    for _ in range(n):
        im = imgs[int(rng.integers(len(imgs)))]
        h, w = im.shape[1:]
        ph = int(rng.integers(64, min(h, 1024) + 1))
        pw = int(np.clip(ph * math.exp(rng.normal(0, 0.4)), 64, min(w, 1024)))
        y, x = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
        out.append(im[:, y:y + ph, x:x + pw])
    return out


def measure_fpr(model_name: str, folder: str, split: str | None = "val", n_photo: int = 10000,
                n_synth: int = 600, seed: int = 0, progress: bool = True, search: str | None = None,
                mirror: bool = True, soft_share: float | None = None) -> dict:
    """Detections among clean images, each decoded as ``Watermarker.extract`` does: the image as it is and
    its mirror image (``mirror``, the default of extraction; ``search='crop'`` / ``'rotate'`` / ``'geometry'``:
    through that search's stages, mirrored too, :func:`robusthide.watermark.sync.decode_stages`), the p-values
    paying for every hypothesis (:func:`robusthide.watermark.sync.decode_search`). ``search`` None: the
    model's own, as ``extract`` reads by default (``geometry`` for the ``geo`` models). ``soft_share``: the
    soft-decision test's share of the budget (docs/payload.md) instead of the weights' own (None), to measure a
    share before a model ships with it."""
    from robusthide.watermark.sync import (
        check_search,
        decode_search,
        decode_stages,
        hypothesis_weights,
        mirror_hypotheses,
        mirror_views,
        search_stages,
    )
    from robusthide.zoo import load_model

    model = load_model(model_name)
    try:
        search = check_search(getattr(model, "default_search", "none") if search is None else search)
    except ValueError as e:
        raise RobustHideError(str(e)) from None
    rng = np.random.default_rng(seed)
    items = photo_patches(folder, split, n_photo, rng)
    items += [torch.from_numpy(s).permute(2, 0, 1) for s in synthetic(rng, n_synth)]
    size = model.size
    soft = float(getattr(model, "soft_share", 0.0)) if soft_share is None else float(soft_share)
    if not 0 <= soft < 1:
        raise RobustHideError(f"soft share must be in [0, 1), got {soft}")

    def decoded():
        """One payload decode per clean image, as ``Watermarker.extract`` does it."""
        if search != "none":  # every stage of the search, as extraction decides (stops at a detection)
            for c in tqdm(items, disable=not progress, desc=f"clean images, {search} search"):
                yield decode_stages(search_stages(model.decoder, c[None].float() / 255, size, search, mirror),
                                    model.n_bits, soft_share=soft)[0]
            return
        hyps = mirror_hypotheses([{}]) if mirror else [{}]
        weights = hypothesis_weights(hyps)
        for i in tqdm(range(0, len(items), 64), disable=not progress, desc="clean images"):
            small = torch.cat([F.interpolate(c[None].float() / 255, size=(size, size), mode="bilinear",
                                             antialias=True, align_corners=False) for c in items[i:i + 64]])
            logits = model.decoder(mirror_views(small) if mirror else small).float()
            for lg in logits.view(len(hyps), small.shape[0], -1).transpose(0, 1):  # per image: H x L
                yield decode_search(lg, model.n_bits, weights=weights, soft_share=soft)[0]

    positives, pmin, kinds = 0, 1.0, []
    with torch.no_grad():
        for r in decoded():
            positives += bool(r.detected)
            pmin = min(pmin, float(r.p_value))
            kinds.append(r.ok)
    n = len(items)
    res = {"model": model_name, "clean_images": n, "photo_patches": n_photo, "synthetic": n_synth,
           "false_positives": positives, "observed_fpr": positives / n,
           "upper_95": (3.0 / n) if positives == 0 else None, "ecc_decoded_but_rejected": int(sum(kinds)) - positives,
           "min_p_value": pmin, "design_fpr": 1e-6, "seed": seed, "data": folder, "split": split,
           "search": search, "mirror": bool(mirror)}
    if soft > 0:  # the share of the budget for the soft-decision test (both tests decided each image)
        res["soft_share"] = soft
    if soft_share is not None:  # given, not the weights' own
        res["soft_share_given"] = soft
    if search == "staged" and not hasattr(model.decoder, "feature_maps"):  # which stages this version reads
        from robusthide.watermark.sync import STAGED_SHARES

        res["stages"] = [name for name, _ in STAGED_SHARES]
    return res


def write_fpr(res: dict, out: str) -> None:
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.with_suffix(".json").write_text(json.dumps(res, indent=1))
    cmd = (f"robusthide fpr --model {res['model']} --data {res['data']} --split {res['split'] or 'all'} "
           f"--n {res['photo_patches']} --synthetic {res['synthetic']} --seed {res['seed']}"
           + (f" --search {res['search']}" if res.get("search", "none") != "none" else "")
           + (f" --soft-share {res['soft_share_given']:g}" if "soft_share_given" in res else "") + f" --out {out}")
    ub = "-" if res["upper_95"] is None else f"{res['upper_95']:.1e}"
    p.with_suffix(".md").write_text(
        f"# False positives on clean images ({res['model']})\n\nCommand: `{cmd}`\n\n"
        "| clean images | photo patches | synthetic | false positives | observed rate | 95% upper bound | "
        "smallest p-value | design rate |\n|---|---|---|---|---|---|---|---|\n"
        f"| {res['clean_images']} | {res['photo_patches']} | {res['synthetic']} | {res['false_positives']} | "
        f"{res['observed_fpr']:.2e} | {ub} | {res['min_p_value']:.2e} | 1e-6 |\n\n"
        "Photo patches: random crops (64-1024 px, random aspect) of the validation photos, which the model "
        "never saw in training; synthetic: flat colours, gradients, white and 1/f noise, checkerboards, "
        f"stripes. {res['ecc_decoded_but_rejected']} clean images decoded to a valid BCH word but were "
        "rejected by the p-value threshold. The 95% upper bound with zero observed is 3/N (rule of three).\n"
        + (f"Each image was read through the {res['search']} search, every stage `extract` runs, mirrored images "
           "where the search reads them; the p-values pay for every hypothesis the search could have read.\n"
           if res.get("search", "none") != "none" else
           "Each image was read as it is and mirrored, as `extract` reads it; the p-values pay for both "
           "(the mirror images get 1/8 of the false-positive budget).\n" if res.get("mirror") else "")
        + (f"Decided by the hard and the soft-decision test together (soft share {res['soft_share']:g} of the "
           "budget; docs/payload.md), " + ("as given by `--soft-share`, not the weights' own.\n"
                                           if "soft_share_given" in res else "as the model's extractor decides.\n")
           if res.get("soft_share") else ""))
