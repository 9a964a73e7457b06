"""Training data: any folder of images, held in memory, sampled deterministically per step.

Each step's batch is a pure function of (seed, step), so a resumed run sees exactly the batches the
uninterrupted run would have seen, and DDP ranks take disjoint slices of the same global batch.

Photos are split into train/validation by a hash of the file name (``split_of``), so the split is
stable, disjoint and independent of the folder listing order.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from robusthide import RobustHideError
from robusthide.io.safe import PHOTO_EXTENSIONS as IMAGE_EXTS  # the one list of extensions (robusthide.io.safe)


def split_of(name: str, val_mod: int = 7) -> str:
    """'val' for about 1/val_mod of file names (by SHA-256 of the base name), else 'train'."""
    h = int(hashlib.sha256(Path(name).name.encode()).hexdigest()[:8], 16)
    return "val" if h % val_mod == 0 else "train"


def list_images(folder: str | Path, split: str | None = None) -> list[Path]:
    """The photos under ``folder`` (recursively, sorted, regular files only); ``split='val'|'train'`` keeps
    that split only (:func:`split_of`), None all of them. One-line errors for a missing folder, another
    split or no image."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RobustHideError(f"data folder not found: {folder}")
    if split is not None and split not in ("train", "val"):
        raise RobustHideError(f"split must be 'train' or 'val', got {split!r}")
    from robusthide.io.safe import list_images as _list

    files = _list(folder, IMAGE_EXTS)  # the one folder walk: regular files only, sorted
    if split is not None:
        files = [p for p in files if split_of(p.name) == split]
    if not files:
        raise RobustHideError(f"no images found in {folder}" + (f" (split {split})" if split else ""))
    return files


def load_rgb(path: Path, max_side: int) -> torch.Tensor:
    """uint8 3 x H x W tensor, downscaled so the shorter side is at most ``max_side``."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        s = min(im.size)
        if s > max_side:
            f = max_side / s
            im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.BICUBIC)
        return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).contiguous()


class ImageBank:
    """All images of a folder in memory (uint8), with deterministic random-crop sampling."""

    def __init__(self, folder: str | Path, split: str | None = None, max_side: int = 1024, min_side: int = 128):
        self.paths = list_images(folder, split)
        self.images = [im for im in (load_rgb(p, max_side) for p in self.paths) if min(im.shape[1:]) >= min_side]
        if not self.images:
            raise RobustHideError(f"no image of at least {min_side} px in {folder}")

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, size: int, gen: torch.Generator, max_zoom: float = 4.0,
               whole_p: float = 0.0) -> torch.Tensor:
        """n random crops resized to size x size, float in [0, 1]; crop side in [size, max_zoom*size].

        With probability ``whole_p`` an item is instead the whole photo squeezed to size x size (its aspect
        ratio lost), which is what the networks see when a full photo is marked at deployment."""
        out = torch.empty(n, 3, size, size)
        for i in range(n):
            im = self.images[int(torch.randint(len(self.images), (1,), generator=gen))]
            h, w = im.shape[1:]
            if whole_p > 0 and bool(torch.rand((), generator=gen) < whole_p):
                y, x, ch, cw = 0, 0, h, w
            else:
                hi = int(min(h, w, size * max_zoom))
                lo = min(size, hi)
                ch = cw = int(torch.randint(lo, hi + 1, (1,), generator=gen))
                y = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
                x = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
            crop = im[:, y:y + ch, x:x + cw].float().unsqueeze(0) / 255.0
            if (ch, cw) != (size, size):
                crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            if bool(torch.rand((), generator=gen) < 0.5):
                crop = crop.flip(-1)
            out[i] = crop[0].clamp(0, 1)
        # round to uint8 levels: covers are 8-bit images
        return (out * 255).round() / 255

    def fixed_set(self, n: int, size: int, seed: int = 1234) -> torch.Tensor:
        """A fixed validation set of n crops (centre-biased random crops, seeded)."""
        return self.sample(n, size, torch.Generator().manual_seed(seed), max_zoom=3.0)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator of one training step: a pure function of (seed, step)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63 - 1))
