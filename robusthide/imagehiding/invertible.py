"""An invertible hiding network in the Haar-wavelet domain (HiNet-style; ours, beside paper 003's U-Nets).

Paper 003's pipeline learns two separate mappings (embed and reveal); an invertible network learns one, and
reveals by running it backwards, which is what lets the HiNet family (Jing et al., ICCV 2021) reach high
container *and* secret PSNR with small networks. Pieces (HiNet §3, in our notation):

* :class:`HaarDWT` -- the orthonormal one-level Haar transform: a 3-channel image of ``H x W`` becomes 12
  channels (LL, HL, LH, HH of each colour) of ``H/2 x W/2``; it is its own inverse (HiNet hides in this domain
  because it keeps the mark out of the colour statistics of the LL band, eq. 8's low-frequency loss).
* :class:`AffineCoupling` -- one invertible block (HiNet eqs. 1-2):
  ``x1' = x1 + phi(x2)``, ``x2' = x2 * exp(clamp * tanh(rho(x1'))) + eta(x1')``, inverted exactly by
  ``x2 = (x2' - eta(x1')) * exp(-clamp * tanh(rho(x1')))``, ``x1 = x1' - phi(x2)``; ``rho`` and ``eta`` share
  one sub-network here (two output halves), and the sub-networks are 3-layer conv nets (HiNet: 5-layer dense
  blocks), sized for a CPU.
* :class:`InvertibleHidingNetwork` -- the forward pass maps ``(DWT(cover), DWT(secrets))`` to
  ``(DWT(container), r)``; ``r`` (the "lost information") is dropped; the backward pass maps
  ``(DWT(attacked container), z)`` with ``z = 0`` back to the secrets (HiNet samples ``z`` from a Gaussian;
  the training loss teaches the network to make ``r`` carry nothing the secrets need). One to three secrets are
  stacked on the secret branch (12 channels each).

An optional ``restore`` network (ours, in the spirit of paper 003's decoupling network) cleans the attacked
container before the backward pass: a residual conv net in the wavelet domain, trained end to end with the
attack layer in the loop.

The class keeps :class:`~robusthide.imagehiding.nets.HidingNetwork`'s interface (``hide``, ``reveal``,
``arch``, ``size``, ``n_secrets``), so the trainer, the API and the exporter take either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from robusthide import RobustHideError

#: the keywords of :class:`InvertibleHidingNetwork` (``arch: hinet`` in a config's ``model`` section)
INVERTIBLE_KEYS = ("arch", "n_secrets", "size", "blocks", "hidden", "clamp", "restore", "downscale")


class HaarDWT(nn.Module):
    """Orthonormal one-level 2-D Haar transform of every channel (its own inverse: :meth:`inverse`)."""

    def __init__(self) -> None:
        super().__init__()
        h = torch.tensor([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float32) / 2
        self.register_buffer("matrix", h, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x C x H x W`` -> ``B x 4C x H/2 x W/2``, bands ``[LL, HL, LH, HH]`` of channel 0, then 1, ...
        Always in float32 (also under bf16 autocast: the cover's bands must not be rounded)."""
        b, c, h, w = x.shape
        with torch.autocast(x.device.type, enabled=False):
            p = F.pixel_unshuffle(x.float(), 2).view(b, c, 4, h // 2, w // 2)
            return torch.einsum("ij,bcjhw->bcihw", self.matrix, p).reshape(b, 4 * c, h // 2, w // 2)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        b, c4, h, w = y.shape
        with torch.autocast(y.device.type, enabled=False):
            p = torch.einsum("ij,bcjhw->bcihw", self.matrix, y.float().view(b, c4 // 4, 4, h, w))
            return F.pixel_shuffle(p.reshape(b, c4, h, w), 2)


def subnet(cin: int, cout: int, hidden: int) -> nn.Sequential:
    """A 3-layer conv net; the last layer starts at zero, so every coupling starts as the identity."""
    last = nn.Conv2d(hidden, cout, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Conv2d(cin, hidden, 3, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.2), last)


class AffineCoupling(nn.Module):
    """HiNet's invertible block (eqs. 1-2): additive on the cover branch, affine on the secret branch."""

    def __init__(self, c_cover: int, c_secret: int, hidden: int, clamp: float):
        super().__init__()
        self.clamp = clamp
        self.phi = subnet(c_secret, c_cover, hidden)
        self.rho_eta = subnet(c_cover, 2 * c_secret, hidden)

    def _scale_shift(self, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.rho_eta(x1).chunk(2, dim=1)
        return self.clamp * torch.tanh(s), t

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1 = x1 + self.phi(x2)
        s, t = self._scale_shift(x1)
        return x1, x2 * torch.exp(s) + t

    def inverse(self, y1: torch.Tensor, y2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._scale_shift(y1)
        x2 = (y2 - t) * torch.exp(-s)
        return y1 - self.phi(x2), x2


class Restore(nn.Module):
    """A residual conv net on the wavelet bands of an attacked container (ours; optional)."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.net = subnet(channels, channels, hidden)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.net(y)


def check_invertible_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise the keywords of :class:`InvertibleHidingNetwork` (one-line errors)."""
    unknown = sorted(set(kw) - set(INVERTIBLE_KEYS))
    if unknown:
        raise RobustHideError(f"unknown model keys for arch hinet: {', '.join(unknown)} "
                              f"(known: {', '.join(INVERTIBLE_KEYS)})")
    out = dict(arch="hinet", n_secrets=1, size=128, blocks=8, hidden=48, clamp=2.0, restore=False)
    out.update(kw)
    for key, lo in (("n_secrets", 1), ("size", 16), ("blocks", 1), ("hidden", 1), ("downscale", 1)):
        if key not in out:
            continue
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise RobustHideError(f"model.{key} must be an integer >= {lo}, got {v!r}")
    if out["n_secrets"] > 3:
        raise RobustHideError(f"n_secrets must be 1, 2 or 3 (paper 003 hides up to three), got {out['n_secrets']}")
    if out["size"] % 16:
        raise RobustHideError(f"size must be a multiple of 16 (JPEG MCUs), got {out['size']}")
    c = out["clamp"]
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c <= 10 or not math.isfinite(c):
        raise RobustHideError(f"model.clamp must be a number in (0, 10], got {c!r}")
    out["clamp"] = float(c)
    out["restore"] = bool(out["restore"])
    if "downscale" in out:  # absent (= 1) in the models of sessions 10-11; kept absent so their metadata stays
        if out["downscale"] not in (1, 2, 4):
            raise RobustHideError(f"model.downscale must be 1, 2 or 4, got {out['downscale']!r}")
        if out["downscale"] == 1:
            del out["downscale"]
    return out


class InvertibleHidingNetwork(nn.Module):
    """Hide ``n_secrets`` images in a cover with one invertible network; reveal by inverting it."""

    progressive = False
    amplify = 1.0
    #: it runs at any (even) image size: :class:`~robusthide.imagehiding.api.ImageHider` hides at the cover's size
    fully_convolutional = True

    def __init__(self, **kwargs: Any):
        super().__init__()
        kw = check_invertible_kwargs(kwargs)
        self.arch = kw
        self.n_secrets: int = kw["n_secrets"]
        self.size: int = kw["size"]
        self.dwt = HaarDWT()
        #: the network runs on the images area-averaged by this factor (:meth:`hide`); sizes must be multiples
        #: of :attr:`multiple`
        self.downscale: int = kw.get("downscale", 1)
        self.multiple: int = 2 * self.downscale
        c_cover, c_secret = 12, 12 * self.n_secrets
        self.blocks = nn.ModuleList(AffineCoupling(c_cover, c_secret, kw["hidden"], kw["clamp"])
                                    for _ in range(kw["blocks"]))
        self.restore = Restore(c_cover, kw["hidden"]) if kw["restore"] else None

    def _check(self, x: torch.Tensor, what: str) -> None:
        k = self.multiple
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] % k or x.shape[-1] % k:
            sides = "even H and W" if k == 2 else f"H and W multiples of {k}"
            raise RobustHideError(f"{what} must be B x 3 x H x W with {sides}, got {tuple(x.shape)}")

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        d = self.downscale
        return x if d == 1 else F.avg_pool2d(x.float(), d)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        d = self.downscale
        return x if d == 1 else F.interpolate(x.float(), scale_factor=d, mode="bicubic", align_corners=False)

    def forward_bands(self, cover: torch.Tensor, secrets: Sequence[torch.Tensor]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(DWT(container), r)``: the forward pass in the wavelet domain."""
        x1 = self.dwt(cover)
        x2 = torch.cat([self.dwt(s) for s in secrets], dim=1)
        for blk in self.blocks:
            x1, x2 = blk(x1, x2)
        return x1, x2

    def hide(self, cover: torch.Tensor, secrets: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(M, R)`` with ``M = C + R`` (not clamped)."""
        if len(secrets) != self.n_secrets:
            raise RobustHideError(f"this model hides {self.n_secrets} secret image(s), got {len(secrets)}")
        self._check(cover, "the cover")
        for s in secrets:
            if s.shape != cover.shape:
                raise RobustHideError(f"each secret must have the cover's shape {tuple(cover.shape)}, "
                                      f"got {tuple(s.shape)}")
        if self.downscale == 1:
            y1, _ = self.forward_bands(cover, secrets)
            container = self.dwt.inverse(y1)
            return container, container - cover
        small = self._down(cover)  # the robust operating point: hide in the area-averaged images, upsample R
        y1, _ = self.forward_bands(small, [self._down(s) for s in secrets])
        residual = self._up(self.dwt.inverse(y1) - small)
        return cover + residual, residual

    def reveal(self, attacked: torch.Tensor) -> tuple[list[torch.Tensor], None, None]:
        """``(secrets^, None, None)``: the backward pass from the container's bands and ``z = 0``."""
        self._check(attacked, "the container")
        y1 = self.dwt(self._down(attacked))
        if self.restore is not None:
            y1 = self.restore(y1)
        y2 = y1.new_zeros(y1.shape[0], 12 * self.n_secrets, *y1.shape[-2:])
        for blk in reversed(self.blocks):
            y1, y2 = blk.inverse(y1, y2)
        return [self._up(self.dwt.inverse(s)) for s in y2.chunk(self.n_secrets, dim=1)], None, None

    def low_frequency(self, x: torch.Tensor) -> torch.Tensor:
        """The LL band of each colour (HiNet's low-frequency wavelet loss, eq. 8, compares these)."""
        return self.dwt(x)[:, 0::4]
