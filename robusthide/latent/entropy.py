"""Entropy models of the scale hyperprior (Ballé et al. 2018): a factorized prior for z and a zero-mean
Gaussian conditional for y, with CompressAI's parameter/buffer names.

* :class:`EntropyBottleneck` -- per-channel learned CDF (Ballé 2018, appendix 6.1), noise relaxation in
  training, rounding around the learned medians at coding time.
* :class:`GaussianConditional` -- likelihood N(0, sigma^2) * U(-1/2, 1/2); for coding, sigma is mapped to
  the first entry of a fixed ``scale_table`` (64 log-spaced scales 0.11 .. 256, CompressAI's
  ``get_scale_table``) that is >= sigma, so encoder and decoder use the same finite set of tables.

Probability tables (:meth:`tables`) are computed in float64 and range-coded by :mod:`.coder`. The training
likelihoods run in float32 even inside a bf16 autocast region (:func:`full_precision`): the rate is a sum of
-log2 of many probabilities, which bf16's 8-bit mantissa would bias.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import ndtr
from torch import Tensor, nn

from robusthide.latent.coder import Table
from robusthide.latent.gdn import LowerBound

SCALES_MIN, SCALES_MAX, SCALES_LEVELS = 0.11, 256.0, 64


def full_precision(t: Tensor) -> Tensor:
    """``t`` as float32 when it is a lower-precision float (bf16 or fp16 from an autocast region), else itself."""
    return t.float() if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64) else t


def get_scale_table(lo: float = SCALES_MIN, hi: float = SCALES_MAX, levels: int = SCALES_LEVELS) -> Tensor:
    return torch.exp(torch.linspace(math.log(lo), math.log(hi), levels))


class EntropyBottleneck(nn.Module):
    """Factorized density model of z (one non-parametric CDF per channel)."""

    def __init__(self, channels: int, tail_mass: float = 1e-9, init_scale: float = 10.0,
                 filters: tuple[int, ...] = (3, 3, 3, 3)):
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.tail_mass = float(tail_mass)
        self.likelihood_lower_bound = LowerBound(1e-9)
        fs = (1,) + self.filters + (1,)
        scale = init_scale ** (1 / (len(self.filters) + 1))
        for i in range(len(self.filters) + 1):
            init = float(np.log(np.expm1(1 / scale / fs[i + 1])))
            self.register_parameter(f"_matrix{i}", nn.Parameter(torch.full((channels, fs[i + 1], fs[i]), init)))
            self.register_parameter(f"_bias{i}", nn.Parameter(torch.empty(channels, fs[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(self.filters):
                self.register_parameter(f"_factor{i}", nn.Parameter(torch.zeros(channels, fs[i + 1], 1)))
        self.quantiles = nn.Parameter(torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        t = float(np.log(2 / self.tail_mass - 1))
        self.register_buffer("target", torch.tensor([-t, 0.0, t]))

    def medians(self) -> Tensor:
        return self.quantiles[:, 0, 1].detach()

    def _logits_cumulative(self, x: Tensor, stop_gradient: bool) -> Tensor:
        for i in range(len(self.filters) + 1):
            m, b = getattr(self, f"_matrix{i}"), getattr(self, f"_bias{i}")
            if stop_gradient:
                m, b = m.detach(), b.detach()
            x = torch.matmul(F.softplus(m.to(x.dtype)), x) + b.to(x.dtype)
            if i < len(self.filters):
                f = getattr(self, f"_factor{i}")
                f = f.detach() if stop_gradient else f
                x = x + torch.tanh(f.to(x.dtype)) * torch.tanh(x)
        return x

    def likelihood(self, z: Tensor) -> Tensor:
        """P(z) of (noisy or rounded) z, B x C x H x W (bin width 1); float32 even under autocast."""
        with torch.autocast(z.device.type, enabled=False):
            return self._likelihood(full_precision(z))

    def _likelihood(self, z: Tensor) -> Tensor:
        c = z.shape[1]
        v = z.transpose(0, 1).reshape(c, 1, -1)
        lower = self._logits_cumulative(v - 0.5, stop_gradient=False)
        upper = self._logits_cumulative(v + 0.5, stop_gradient=False)
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        lik = self.likelihood_lower_bound(lik)
        return lik.reshape(c, z.shape[0], *z.shape[2:]).transpose(0, 1)

    def quantize(self, z: Tensor, noise: bool) -> Tensor:
        """z + U(-1/2, 1/2) in training, else round(z - median) + median."""
        if noise:
            return z + torch.empty_like(z).uniform_(-0.5, 0.5)
        med = self.medians().view(1, -1, 1, 1).to(z.dtype)
        return torch.round(z - med) + med

    def symbols(self, z: Tensor) -> Tensor:
        return torch.round(z - self.medians().view(1, -1, 1, 1)).long()

    def dequantize(self, sym: Tensor) -> Tensor:
        return sym.float() + self.medians().view(1, -1, 1, 1)

    def aux_loss(self) -> Tensor:
        """Fits ``quantiles`` to the tail_mass/2, 1/2, 1 - tail_mass/2 points of each CDF (not the rate)."""
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()

    @torch.no_grad()
    def tables(self) -> list[Table]:
        """One probability table per channel: offsets around the median from the fitted quantiles."""
        q = self.quantiles.detach().double()
        med = q[:, 0, 1]
        minima = torch.clamp(torch.ceil(med - q[:, 0, 0]), min=0).long()
        maxima = torch.clamp(torch.ceil(q[:, 0, 2] - med), min=0).long()
        out = []
        for c in range(self.channels):
            k = torch.arange(-int(minima[c]), int(maxima[c]) + 1, dtype=torch.float64)
            samples = (k + med[c]).view(1, 1, -1)
            lower = self._logits_cumulative_double(samples - 0.5, c)
            upper = self._logits_cumulative_double(samples + 0.5, c)
            sign = -torch.sign(lower + upper)
            pmf = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).view(-1).numpy()
            tail = float(torch.sigmoid(lower[0, 0, 0]) + torch.sigmoid(-upper[0, 0, -1]))
            out.append(Table(np.append(pmf, max(tail, 1e-12)).astype(np.float64), -int(minima[c])))
        return out

    def _logits_cumulative_double(self, x: Tensor, c: int) -> Tensor:
        for i in range(len(self.filters) + 1):
            m = getattr(self, f"_matrix{i}")[c:c + 1].double()
            x = torch.matmul(F.softplus(m), x) + getattr(self, f"_bias{i}")[c:c + 1].double()
            if i < len(self.filters):
                x = x + torch.tanh(getattr(self, f"_factor{i}")[c:c + 1].double()) * torch.tanh(x)
        return x


class GaussianConditional(nn.Module):
    """Zero-mean Gaussian conditional of y given scales from the hyper-synthesis (scale hyperprior)."""

    scale_table: Tensor

    def __init__(self, scale_bound: float = SCALES_MIN, tail_mass: float = 1e-9):
        super().__init__()
        self.tail_mass = float(tail_mass)
        self.lower_bound_scale = LowerBound(scale_bound)
        self.likelihood_lower_bound = LowerBound(1e-9)
        self.register_buffer("scale_table", get_scale_table())

    def likelihood(self, y: Tensor, scales: Tensor) -> Tensor:
        """P(y) under N(0, scales^2) * U(-1/2, 1/2); float32 even under autocast."""
        with torch.autocast(y.device.type, enabled=False):
            return self._likelihood(full_precision(y), full_precision(scales))

    def _likelihood(self, y: Tensor, scales: Tensor) -> Tensor:
        s = self.lower_bound_scale(scales)
        v = torch.abs(y)
        upper = 0.5 * torch.erfc(-((0.5 - v) / s) / math.sqrt(2))
        lower = 0.5 * torch.erfc(-((-0.5 - v) / s) / math.sqrt(2))
        return self.likelihood_lower_bound(upper - lower)

    def indexes(self, scales: Tensor) -> Tensor:
        """Index of the first table scale >= sigma (CompressAI's ``build_indexes``)."""
        s = self.lower_bound_scale(scales)
        idx = torch.full(s.shape, len(self.scale_table) - 1, dtype=torch.long)
        for t in self.scale_table[:-1]:
            idx -= (s <= t).long()
        return idx

    def tables(self) -> list[Table]:
        """One table per scale of ``scale_table``: values -K .. K, K = ceil(sigma * z_{1 - tail/2})."""
        z = -float(_ndtri(self.tail_mass / 2))
        out = []
        for s in self.scale_table.double().tolist():
            k = int(math.ceil(s * z))
            v = np.arange(-k, k + 1, dtype=np.float64)
            pmf = ndtr((v + 0.5) / s) - ndtr((v - 0.5) / s)
            tail = 2.0 * float(ndtr(-(k + 0.5) / s))
            out.append(Table(np.append(pmf, max(tail, 1e-12)), -k))
        return out


def _ndtri(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))
