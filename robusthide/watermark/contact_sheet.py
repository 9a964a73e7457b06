"""A contact sheet for people to judge visibility: cover | marked | residual x10, one row per photo.

PSNR misses the artefacts people see (colour streaks in flat sky, patterns on skin); this sheet is the
check. The residual panel shows ``128 + 10 * (marked - cover)`` per channel, clipped;
:func:`residual_stats` puts numbers on each panel (RMS and 99th percentile, in grey levels), and splits
the RMS between flat and textured parts of the cover: a residual that follows the content is much
weaker on flat areas than on texture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def contact_sheet(rows: list[tuple[str, np.ndarray, np.ndarray]], out: str | Path, width: int = 384,
                  gain: float = 10.0) -> Path:
    """rows: (label, cover uint8 HxWx3, marked uint8 HxWx3) -> PNG at ``out``."""
    tiles = []
    for label, cover, marked in rows:
        h, w = cover.shape[:2]
        th = max(1, round(h * width / w))
        res = np.clip(128 + gain * (marked.astype(np.float32) - cover.astype(np.float32)), 0, 255).astype(np.uint8)
        panel = [Image.fromarray(a).resize((width, th), Image.LANCZOS if a is not res else Image.NEAREST)
                 for a in (cover, marked, res)]
        row = Image.new("RGB", (3 * width + 8, th + 18), "white")
        for i, p in enumerate(panel):
            row.paste(p, (i * (width + 4), 18))
        ImageDraw.Draw(row).text((4, 3), f"{label}   (cover | marked | residual x{gain:g})", fill="black")
        tiles.append(row)
    sheet = Image.new("RGB", (max(t.width for t in tiles), sum(t.height + 6 for t in tiles)), "white")
    y = 0
    for t in tiles:
        sheet.paste(t, (0, y))
        y += t.height + 6
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out


#: Local standard deviation of the cover's luma (5 x 5 window, grey levels) below which a pixel counts
#: as flat, and at or above which it counts as texture, in :func:`residual_stats`.
FLAT_SIGMA, TEXTURE_SIGMA = 1.5, 8.0


def cover_sigma(rgb: np.ndarray, window: int = 5) -> np.ndarray:
    """Local standard deviation of the cover's BT.601 luma, in grey levels (the perceptual mask's texture
    measure, :func:`robusthide.nets.masking.local_sigma`)."""
    import torch

    from robusthide.nets.masking import local_sigma, luma

    t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
    t = t.permute(2, 0, 1)[None] if t.ndim == 3 else t[None, None].expand(1, 3, -1, -1)
    return local_sigma(luma(t), window)[0, 0].numpy()


def residual_stats(cover: np.ndarray, marked: np.ndarray) -> dict[str, float | None]:
    """``marked - cover`` over every channel of the crop, in grey levels: RMS, 99th percentile of |d|, max,
    and the RMS over the cover's flat pixels (``rms_flat``, local sigma < :data:`FLAT_SIGMA`) and textured
    ones (``rms_texture``, sigma >= :data:`TEXTURE_SIGMA`), None where the crop has no such pixels."""
    d = marked.astype(np.float64) - cover.astype(np.float64)
    a = np.abs(d)
    sigma = cover_sigma(cover)
    d2 = (d ** 2).reshape(*sigma.shape, -1).mean(-1)

    def rms(sel: np.ndarray) -> float | None:
        return round(float(np.sqrt(d2[sel].mean())), 3) if sel.any() else None

    return {"rms": round(float(np.sqrt((d ** 2).mean())), 3), "p99": round(float(np.percentile(a, 99)), 3),
            "max": round(float(a.max()), 3), "rms_flat": rms(sigma < FLAT_SIGMA),
            "rms_texture": rms(sigma >= TEXTURE_SIGMA)}
