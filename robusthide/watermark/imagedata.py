"""Convert user images (PIL, numpy, torch) to the float RGB the networks use, and back.

What is kept, and how:

* **alpha** — split off, left untouched, put back;
* **grayscale** — replicated to RGB for the networks; the luma-only residual adds the same value to
  R, G and B, so the result is exactly grey again and is returned as grayscale;
* **16-bit** (numpy uint16, PIL ``I;16``) — scaled by 1/65535, marked in float, returned as uint16
  (the residual keeps 16-bit precision);
* **float** arrays/tensors in [0, 1] — returned as float, not rounded (round them yourself, or save
  through the CLI, which rounds to the output bit depth). Float values outside [0, 1] (e.g. 0..255 data)
  are an error that says so, never clipped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from robusthide import RobustHideError

MIN_SIDE = 16  # below this an image carries too few pixels to resize to the working size meaningfully


@dataclass
class ImageData:
    """An image as an RGB float tensor 1 x 3 x H x W in [0, 1] plus what is needed to rebuild it."""

    rgb: torch.Tensor
    kind: str          # 'pil' | 'numpy' | 'torch'
    mode: str          # 'RGB' | 'L' | 'RGBA' | 'LA'
    dtype: Any         # numpy dtype / torch dtype of the original
    alpha: np.ndarray | torch.Tensor | None = None
    layout: str = "HWC"  # numpy: HWC or HW; torch: CHW or NCHW


def _check_size(h: int, w: int) -> None:
    """Refuse an empty image or one whose smaller side is below :data:`MIN_SIDE` (embed and extract alike)."""
    if h == 0 or w == 0:
        raise RobustHideError(f"empty image ({w}x{h})")
    if min(h, w) < MIN_SIDE:
        raise RobustHideError(f"image too small ({w}x{h}); the smallest side must be at least {MIN_SIDE} px")


def uint8_view(image: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(RGB or gray uint8 array, alpha or None) for 8-bit numpy/PIL images; None for other kinds."""
    if isinstance(image, Image.Image):
        if image.mode not in ("RGB", "L", "RGBA", "LA"):
            return None
        image = np.asarray(image)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        return np.ascontiguousarray(image), None
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[..., :3]), (image[..., 3:].copy() if image.shape[2] == 4 else None)
    if image.ndim == 3 and image.shape[2] == 2:
        return np.ascontiguousarray(image[..., 0]), image[..., 1:].copy()
    if image.ndim == 3 and image.shape[2] == 1:
        return None
    return None


def _from_numpy(a: np.ndarray, kind: str = "numpy") -> ImageData:
    if a.ndim == 2:
        mode, layout, rgb_a, alpha = "L", "HW", np.repeat(a[..., None], 3, axis=2), None
    elif a.ndim == 3 and a.shape[2] in (1, 2, 3, 4):
        c = a.shape[2]
        layout = "HWC"
        if c == 1:
            mode, rgb_a, alpha = "L", np.repeat(a, 3, axis=2), None
        elif c == 2:
            mode, rgb_a, alpha = "LA", np.repeat(a[..., :1], 3, axis=2), a[..., 1:].copy()
        elif c == 3:
            mode, rgb_a, alpha = "RGB", a, None
        else:
            mode, rgb_a, alpha = "RGBA", a[..., :3], a[..., 3:].copy()
    else:
        raise RobustHideError(f"unsupported image array shape {a.shape} (expected H x W or H x W x 1..4)")
    _check_size(a.shape[0], a.shape[1])
    if a.dtype == np.uint8:
        f = rgb_a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        f = rgb_a.astype(np.float32) / 65535.0
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(rgb_a).all():
            raise RobustHideError("image contains NaN or infinite values")
        lo, hi = float(rgb_a.min()), float(rgb_a.max())
        if lo < 0 or hi > 1:
            hint = " (divide 0..255 data by 255, or pass uint8)" if lo >= 0 and hi <= 255 else ""
            raise RobustHideError(f"float image values must lie in [0, 1], got {lo:g}..{hi:g}{hint}")
        f = rgb_a.astype(np.float32)
    else:
        raise RobustHideError(f"unsupported image dtype {a.dtype} (use uint8, uint16 or float in [0, 1])")
    t = torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1)[None]
    return ImageData(t, kind, mode, a.dtype, alpha, layout)


def to_image_data(image: Any) -> ImageData:
    """Accept PIL images, numpy arrays (uint8/uint16/float) and torch tensors (3 x H x W or 1 x 3 x H x W)."""
    if isinstance(image, Image.Image):
        m = image.mode
        if m in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(image).astype(np.uint16)
        elif m in ("RGB", "L", "RGBA", "LA"):
            arr = np.asarray(image)
        elif m in ("P", "PA", "CMYK", "YCbCr", "1", "LAB", "HSV", "RGBX", "RGBa", "La"):
            conv = "RGBA" if ("A" in m or "transparency" in image.info) else "RGB"
            arr = np.asarray(image.convert(conv))
        else:
            raise RobustHideError(f"unsupported image mode {m}")
        d = _from_numpy(arr, "pil")
        d.dtype = arr.dtype
        return d
    if isinstance(image, np.ndarray):
        return _from_numpy(image)
    if isinstance(image, torch.Tensor):
        t = image.detach()
        layout = "CHW"
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise RobustHideError(f"pass one image at a time (got a batch of {t.shape[0]})")
            layout, t = "NCHW", t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
            raise RobustHideError(f"unsupported tensor shape {tuple(image.shape)} (expected 3 x H x W)")
        d = _from_numpy(t.permute(1, 2, 0).cpu().numpy() if t.dtype != torch.uint8
                        else t.permute(1, 2, 0).cpu().numpy(), "torch")
        d.dtype, d.layout = image.dtype, layout
        d.rgb = d.rgb.to(image.device)
        return d
    raise RobustHideError(f"unsupported image type {type(image).__name__} (PIL, numpy or torch)")


def from_image_data(d: ImageData, rgb: torch.Tensor) -> Any:
    """Rebuild an image of the original kind/mode/dtype from a 1 x 3 x H x W float RGB tensor."""
    x = rgb[0].detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    gray = d.mode in ("L", "LA")
    if gray:
        x = x.mean(axis=2, keepdims=True)
    if d.kind == "torch":
        dt = d.dtype
        out = x
        if dt == torch.uint8:
            out = np.rint(out * 255).astype(np.uint8)
        if d.alpha is not None:
            out = np.concatenate([out, d.alpha.astype(out.dtype)], axis=2)
        t = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)
        t = t.to(dt) if dt != torch.uint8 else t
        t = t.to(d.rgb.device)
        return t[None] if d.layout == "NCHW" else t
    dt = np.dtype(d.dtype)
    if dt == np.uint8:
        out = np.rint(x * 255).astype(np.uint8)
    elif dt == np.uint16:
        out = np.rint(x * 65535).astype(np.uint16)
    else:
        out = x.astype(dt)
    if d.alpha is not None:
        out = np.concatenate([out, d.alpha.astype(out.dtype)], axis=2)
    elif d.layout == "HW" or (gray and d.kind == "pil"):
        out = out[..., 0]
    if d.kind == "pil":
        if out.dtype == np.uint16:
            return Image.fromarray(out if out.ndim == 2 else out[..., 0], mode="I;16") if gray else \
                Image.fromarray(np.rint(out.astype(np.float32) / 257).astype(np.uint8))
        return Image.fromarray(out)
    return out
