"""Perceptual attenuation of the watermark residual (a JND-style texture and luminance mask).

PSNR is blind to where the error sits: a residual of 2 grey levels in flat sky is visible, the same
residual in foliage is not. Following the classic just-noticeable-difference models (Chou & Li 1995:
visibility thresholds rise with local texture activity and away from mid-dark luminance), the residual is
multiplied by a mask computed from the cover's luma at the network's working resolution::

    sigma  = local standard deviation of Y over a k x k window              (texture activity)
    t      = sigma / (sigma + sigma_half)                                   (saturating, 0..1)
    m_tex  = floor + (1 - floor) * t
    m_lum  = clamp(lum_lo + lum_slope * Y, lum_lo, 1)                       (dark areas: smaller steps,
                                                                             CIELAB L* is steep there)
    mask   = m_tex * m_lum, then a 3x3 box blur to avoid hard seams

The mask is computed at the working resolution and upsampled with the residual, so it is the same for
training and for inference at any image size.

The mask scales the encoder's output, and an encoder can learn to undo a scale: the shipped model's
output is largest where the mask is smallest, in flat sky. :meth:`PerceptualMask.cap` therefore also
bounds the final residual per pixel (``cap`` = k, off by default), in grey levels::

    T_lum(Y) = 17 (1 - sqrt(Y / 127)) + 3    if Y < 127, else  3 (Y - 127) / 128 + 3   (Chou & Li 1995)
    cap      = k * T_lum(Y) + tex * sigma                                               (sigma in grey levels)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LUMA = (0.299, 0.587, 0.114)


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of an N x 3 x H x W RGB batch in [0, 1] -> N x 1 x H x W."""
    w = x.new_tensor(LUMA).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def local_sigma(y: torch.Tensor, window: int = 5) -> torch.Tensor:
    """Standard deviation of ``y`` (N x 1 x H x W) over a ``window`` x ``window`` neighbourhood (edges
    replicated), in the units of ``y``."""
    p = window // 2
    yp = F.pad(y, (p, p, p, p), mode="replicate")
    mu = F.avg_pool2d(yp, window, stride=1)
    var = (F.avg_pool2d(yp * yp, window, stride=1) - mu * mu).clamp_min(0)
    return torch.sqrt(var + 1e-8)


def luminance_threshold(y: torch.Tensor) -> torch.Tensor:
    """Chou & Li's (1995) background-luminance visibility threshold ``T_lum``, in grey levels, of luma
    ``y`` in [0, 1] (module docstring)."""
    g = y * 255
    return torch.where(g < 127, 17 * (1 - torch.sqrt(g.clamp_min(0) / 127)) + 3, 3 * (g - 127) / 128 + 3)


class PerceptualMask(nn.Module):
    """JND-style mask in [floor * lum_lo, 1] (see module docstring). No learnable parameters."""

    def __init__(self, window: int = 5, sigma_half: float = 0.02, floor: float = 0.3,
                 lum_lo: float = 0.4, lum_slope: float = 1.6, cap: float | None = None, tex: float = 0.5,
                 cap_lum_max: float | None = None):
        super().__init__()
        self.cap_k, self.tex, self.cap_lum_max = cap, tex, cap_lum_max
        if window % 2 != 1 or window < 3:
            raise ValueError(f"window must be odd and >= 3, got {window}")
        self.window, self.sigma_half, self.floor = window, sigma_half, floor
        self.lum_lo, self.lum_slope = lum_lo, lum_slope

    def _sigma(self, y: torch.Tensor) -> torch.Tensor:
        return local_sigma(y, self.window)

    def cap(self, cover: torch.Tensor) -> torch.Tensor | None:
        """Per-pixel bound of the applied residual (in [0, 1] units; module docstring), None when off.
        ``cap_lum_max`` limits its Chou-Li term to that many grey levels (the threshold rises to 20 at black,
        more than a good display hides in a dark flat area)."""
        if self.cap_k is None:
            return None
        y = luma(cover.float())
        t_lum = luminance_threshold(y)
        if self.cap_lum_max is not None:
            t_lum = t_lum.clamp(max=float(self.cap_lum_max))
        return (self.cap_k * t_lum + self.tex * self._sigma(y) * 255) / 255

    def jnd(self, cover: torch.Tensor, lum_max: float | None = None) -> torch.Tensor:
        """A per-pixel visibility threshold (N x 1 x H x W, [0, 1] units): ``T_lum(Y) + sigma``, the cap's
        two terms at full weight, with ``T_lum`` limited to ``lum_max`` grey levels when given (Chou-Li's
        threshold rises to 20 at black, which lets dark flat areas carry a visible mark). Training divides
        the residual by it (``train.jnd_weight``), so a grey level costs more in flat sky than in foliage."""
        y = luma(cover.float())
        t_lum = luminance_threshold(y)
        if lum_max is not None:
            t_lum = t_lum.clamp(max=float(lum_max))
        return (t_lum + self._sigma(y) * 255) / 255

    def forward(self, cover: torch.Tensor) -> torch.Tensor:
        y = luma(cover.float())
        sigma = self._sigma(y)
        t = sigma / (sigma + self.sigma_half)
        m_tex = self.floor + (1 - self.floor) * t
        m_lum = (self.lum_lo + self.lum_slope * y).clamp(self.lum_lo, 1.0)
        m = m_tex * m_lum
        return F.avg_pool2d(F.pad(m, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
