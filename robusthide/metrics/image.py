"""Image-quality metrics, all computed on uint8 images.

Inputs: numpy uint8 ``H x W x 3`` or ``N x H x W x 3``, float numpy in [0, 1] of those shapes, or torch
tensors ``3 x H x W`` / ``N x 3 x H x W`` (float in [0, 1], or uint8). Floats are first *rounded* to uint8
(:func:`robusthide.codecs.base.to_uint8_batch`), so the numbers are those of the images one would save.
Every metric is computed per image and then averaged over the batch (``reduction="none"`` gives the
per-image values).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robusthide.metrics.bits import MetricError

#: BT.601 luma weights (ITU-R BT.601; also JPEG/JFIF's Y)
BT601 = (0.299, 0.587, 0.114)


def as_uint8_images(x: Any) -> np.ndarray:
    """Any accepted image batch -> uint8 ``N x H x W x 3`` (floats rounded, not truncated)."""
    from robusthide.codecs.base import CodecError, to_uint8_batch

    try:
        arr, _ = to_uint8_batch(x)
    except CodecError as e:
        raise MetricError(str(e)) from None
    return arr


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_uint8_images(a), as_uint8_images(b)
    if x.shape != y.shape:
        raise MetricError(f"image batches differ in shape: {x.shape} vs {y.shape}")
    if x.shape[0] == 0:
        raise MetricError("empty image batch")
    return x, y


def _reduce(v: np.ndarray, reduction: str) -> float | np.ndarray:
    if reduction == "mean":
        return float(np.mean(v))
    if reduction == "none":
        return v
    raise MetricError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def luma(images: np.ndarray, luma_range: str = "full") -> np.ndarray:
    """BT.601 luma of uint8 RGB ``... x 3`` as float64, not rounded.

    ``full``: Y = 0.299 R + 0.587 G + 0.114 B in [0, 255] (JPEG/JFIF). ``studio``: Y = 16 + (65.481 R +
    128.553 G + 24.966 B) / 255 in [16, 235] (MATLAB ``rgb2ycbcr``, used by many super-resolution papers;
    PSNR on it is 20 log10(255/219) = 1.32 dB higher for the same error).
    """
    rgb = images.astype(np.float64)
    if luma_range == "full":
        return rgb @ np.array(BT601)
    if luma_range == "studio":
        return 16.0 + rgb @ (np.array([65.481, 128.553, 24.966]) / 255.0)
    raise MetricError(f"luma_range must be 'full' or 'studio', got {luma_range!r}")


def psnr_from_mse(mse: Any, peak: float = 255.0) -> Any:
    """The one PSNR formula: 10 log10(peak^2 / MSE) in dB, ``inf`` where the MSE is 0.

    Computed in the input's own kind, so that callers keep their exact numbers: a torch tensor with
    ``torch.log10`` in its dtype (no special case at 0: 1/0 is inf), numpy (arrays and numpy scalars) with
    ``np.log10``, a Python number with ``math.log10`` (the two logarithms differ in the last bit for a few
    per cent of inputs). Peak 255 for 8-bit pixel values, 1 for images in [0, 1].
    """
    if hasattr(mse, "detach"):  # a torch tensor (torch is not imported by the metrics)
        return 10 * (peak * peak / mse).log10()
    if isinstance(mse, (np.ndarray, np.generic)):
        with np.errstate(divide="ignore"):
            out = np.where(mse > 0, 10.0 * np.log10(peak * peak / np.maximum(mse, 1e-300)), np.inf)
        return out[()] if out.ndim == 0 else out
    m = float(mse)
    return math.inf if m == 0 else 10 * math.log10(peak * peak / m)


def _psnr_from_mse(mse: np.ndarray, peak: float = 255.0) -> np.ndarray:
    return psnr_from_mse(np.asarray(mse), peak)


def psnr(a: Any, b: Any, channel: str = "rgb", reduction: str = "mean", luma_range: str = "full") -> Any:
    """PSNR in dB on uint8 images, peak 255: 10 log10(255^2 / MSE), MSE over all pixels (and channels).

    ``channel="rgb"``: MSE over R, G, B; ``channel="y"``: on BT.601 luma (see :func:`luma`). Identical
    images give ``inf``.
    """
    x, y = _pair(a, b)
    if channel == "rgb":
        d = x.astype(np.float64) - y.astype(np.float64)
    elif channel == "y":
        d = luma(x, luma_range) - luma(y, luma_range)
    else:
        raise MetricError(f"channel must be 'rgb' or 'y', got {channel!r}")
    mse = (d * d).reshape(len(x), -1).mean(axis=1)
    return _reduce(_psnr_from_mse(mse), reduction)


def psnr_y(a: Any, b: Any, reduction: str = "mean", luma_range: str = "full") -> Any:
    """PSNR on BT.601 luma (``psnr(..., channel="y")``)."""
    return psnr(a, b, "y", reduction, luma_range)


def ssim(a: Any, b: Any, reduction: str = "mean") -> Any:
    """SSIM on uint8 RGB (Wang et al. 2004 settings), via ``skimage.metrics.structural_similarity``:
    ``channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False``
    (11 x 11 Gaussian window, K1 = 0.01, K2 = 0.03), mean over the three channels' SSIM maps.
    Images must be at least 11 x 11 pixels.
    """
    from skimage.metrics import structural_similarity

    x, y = _pair(a, b)
    if min(x.shape[1:3]) < 11:
        raise MetricError(f"SSIM needs images of at least 11 x 11 pixels, got {x.shape[1]} x {x.shape[2]}")
    kw = dict(channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    v = np.array([structural_similarity(p, q, **kw) for p, q in zip(x, y)])
    return _reduce(v, reduction)


def delta_e2000_lab(lab1: Any, lab2: Any) -> np.ndarray:
    """CIEDE2000 colour difference of CIELAB values ``... x 3`` (``skimage.color.deltaE_ciede2000``,
    kL = kC = kH = 1; Sharma, Wu & Dalal 2005)."""
    from skimage.color import deltaE_ciede2000

    return deltaE_ciede2000(np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64))


def delta_e_map(a: Any, b: Any) -> np.ndarray:
    """Per-pixel CIEDE2000 (``N x H x W``) between uint8 sRGB images, via ``skimage.color.rgb2lab``
    (D65, 2 degree observer)."""
    from skimage.color import rgb2lab

    x, y = _pair(a, b)
    return np.stack([delta_e2000_lab(rgb2lab(p), rgb2lab(q)) for p, q in zip(x, y)])


def ciede2000(a: Any, b: Any, reduction: str = "mean", percentile: float = 99.0) -> dict[str, Any]:
    """CIEDE2000 on uint8 sRGB: ``{"mean": ..., "p99": ...}`` -- per image the mean and the 99th percentile
    (linear interpolation) of the per-pixel Delta E 2000, then averaged over images."""
    m = delta_e_map(a, b).reshape(len(as_uint8_images(a)), -1)
    return {"mean": _reduce(m.mean(axis=1), reduction),
            f"p{percentile:g}": _reduce(np.percentile(m, percentile, axis=1), reduction)}


def apd(a: Any, b: Any, reduction: str = "mean") -> Any:
    """Average pixel discrepancy (paper 000, section 4, last paragraph: "APD between cover and container
    images is 9.13/255"). The paper's text gives no formula; we use the usual definition from the
    image-in-image hiding literature it follows (Baluja 2017): the mean absolute difference of the uint8
    pixel values over all pixels and channels, on the 0-255 scale. The value is in units of 1/255: 9.13
    here is the paper's "9.13/255"."""
    x, y = _pair(a, b)
    d = np.abs(x.astype(np.int16) - y.astype(np.int16)).reshape(len(x), -1).mean(axis=1)
    return _reduce(d, reduction)


def quality_report(cover: Any, marked: Any) -> dict[str, float]:
    """All image metrics at once (batch means): psnr, psnr_y, ssim, ciede2000 mean / p99, apd."""
    c = ciede2000(cover, marked)
    return {"psnr": psnr(cover, marked), "psnr_y": psnr_y(cover, marked), "ssim": ssim(cover, marked),
            "ciede2000_mean": c["mean"], "ciede2000_p99": c["p99"], "apd": apd(cover, marked)}


def edge_trace(cover: Any, container: Any, secret: Any, reduction: str = "mean") -> Any:
    """How much of ``secret``'s outline shows in the residual ``container - cover``: the Pearson correlation
    between the residual's magnitude (luma, absolute) and the Sobel edge magnitude of the secret's luma
    (resized to the container's size).

    Issue 22's measure of "no visible trace": compare it with the same figure for an *unrelated* image in
    place of ``secret`` (the residual follows the cover's texture, so both are usually above 0; a trace of the
    secret shows as a gap between the two).
    """
    from skimage.filters import sobel
    from skimage.transform import resize

    c, m = _pair(cover, container)
    s = as_uint8_images(secret)
    if len(s) != len(c):
        raise MetricError(f"edge_trace: {len(c)} covers but {len(s)} secrets")
    res = np.abs(luma(m) - luma(c))
    out = np.empty(len(c))
    for i in range(len(c)):
        edges = sobel(luma(s[i:i + 1])[0])
        if edges.shape != res.shape[1:]:
            edges = resize(edges, res.shape[1:], order=1, anti_aliasing=True)
        a, b = res[i].ravel(), edges.ravel()
        sa, sb = a.std(), b.std()
        out[i] = 0.0 if sa == 0 or sb == 0 else float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))
    return _reduce(out, reduction)
