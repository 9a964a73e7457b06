"""Evaluation images: a folder (optionally its validation split) or arrays, at full size or as S x S crops.

Images are loaded lazily (one batch at a time), so a matrix over many full-resolution photos does not
hold them all in memory. Selection and crops are seeded: the same (folder, n, size, seed) gives the
same pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from robusthide import RobustHideError


@dataclass
class ImageItem:
    """One evaluation image: a name, its (height, width) and a loader returning uint8 H x W x 3."""

    name: str
    hw: tuple[int, int]
    load: Callable[[], np.ndarray]


def _as_rgb_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise RobustHideError(f"{name}: expected an H x W x 3 RGB image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise RobustHideError(f"{name}: expected uint8 pixels, got {arr.dtype}")
    return np.ascontiguousarray(arr[..., :3])


def _read(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RobustHideError(f"{path}: not a readable image ({msg})") from None


def _header_hw(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RobustHideError(f"{path}: not a readable image ({msg})") from None


def crop_square(img: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """A ``size`` x ``size`` crop: at a random position drawn from ``rng``, or centred when ``rng`` is None.

    Images whose shorter side is below ``size`` are first enlarged (bicubic) to that shorter side.
    """
    h, w = img.shape[:2]
    if min(h, w) < size:
        f = size / min(h, w)
        nw, nh = max(size, round(w * f)), max(size, round(h * f))
        img = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BICUBIC))
        h, w = img.shape[:2]
    if rng is None:
        y, x = (h - size) // 2, (w - size) // 2
    else:
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(img[y:y + size, x:x + size])


def list_image_files(folder: str | Path, split: str | None = None) -> list[Path]:
    """Images under ``folder`` (recursively, sorted); ``split='val'|'train'`` keeps that split only: the one
    folder listing of the training data, :func:`robusthide.training.data.list_images`."""
    from robusthide.training.data import list_images

    return list_images(folder, split)


def image_set(source: str | Path | Sequence[np.ndarray] | Sequence[ImageItem], n: int | None = None,
              size: int | str | None = None, seed: int = 0, split: str | None = None,
              crop: str = "random") -> list[ImageItem]:
    """The evaluation images.

    ``source``: a folder (``split`` picks ``'val'`` / ``'train'`` by file-name hash) or a list of uint8
    H x W x 3 arrays (or already built items). ``n``: keep n of them (a seeded choice, in listing
    order). ``size``: ``None`` / ``'full'`` for full resolution, or S for S x S crops (``crop`` =
    ``'random'``: seeded positions; ``'centre'``).
    """
    if size in (None, "full"):
        sq: int | None = None
    else:
        try:
            sq = int(size)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise RobustHideError(f"size must be a number of pixels or 'full', got {size!r}") from None
        if sq < 16:
            raise RobustHideError(f"crop size must be at least 16 px, got {sq}")
    if crop not in ("random", "centre", "center"):
        raise RobustHideError(f"crop must be 'random' or 'centre', got {crop!r}")

    items: list[ImageItem]
    if isinstance(source, (str, Path)):
        files = list_image_files(source, split)
        items = [ImageItem(str(p.relative_to(source)) if Path(source) in p.parents else p.name,
                           (0, 0), (lambda p=p: _read(p))) for p in files]
        paths = dict(zip([it.name for it in items], files))
    else:
        items = []
        paths = {}
        for i, a in enumerate(source):
            if isinstance(a, ImageItem):
                items.append(a)
                continue
            arr = _as_rgb_uint8(a, f"image {i}")
            items.append(ImageItem(f"image{i:04d}", arr.shape[:2], (lambda arr=arr: arr)))
        if not items:
            raise RobustHideError("no images given")
    if n is not None:
        if n < 1:
            raise RobustHideError(f"n must be at least 1, got {n}")
        if n < len(items):
            keep = np.sort(np.random.default_rng(seed).choice(len(items), size=n, replace=False))
            items = [items[int(i)] for i in keep]
    out: list[ImageItem] = []
    for i, it in enumerate(items):
        if sq is not None:
            centre = crop in ("centre", "center")

            def load(it: ImageItem = it, i: int = i, centre: bool = centre) -> np.ndarray:
                return crop_square(it.load(), sq, None if centre else np.random.default_rng([seed, i]))

            out.append(ImageItem(it.name, (sq, sq), load))
        elif it.hw == (0, 0):
            out.append(ImageItem(it.name, _header_hw(paths[it.name]), it.load))
        else:
            out.append(it)
    return out
