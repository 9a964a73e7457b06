"""Embed-time refinement of a container against the fixed reveal network (ours, issue 22).

The trained embedder gives a first container ``M0``; the refinement then optimises the container itself, at the
working size, so that the *fixed* reveal network returns the secrets more exactly, while the container stays
within a PSNR budget of the cover -- the image-hiding analogue of the watermark's embed-time refinement and of
FNNS (paper 004's baseline: optimise the image against a fixed decoder):

    minimise_M   mean over {identity, A_1 .. A_k} of  mean_i || R_i(A(q(M))) - S_i ||^2   (EOT over the attacks)
    subject to   PSNR(M, C) >= target_psnr,  0 <= M <= 1

by Adam on ``M - C`` with a projection onto the PSNR ball after every step (``q``: 8-bit rounding with an
identity gradient, as the container is saved as an 8-bit image). The attacks ``A_j`` are attack specs
(``real(jpeg:q=50)``: forward real, backward identity; ``resize(0.5, interpolation=bicubic)``, ``blur(1)``:
differentiable). Against a *robust* reveal network (``model.downscale: 2``) 25 steps against JPEG Q50, resize
0.5 and blur 1 gain 1.0-1.6 dB after each (docs/results/imagehide-robust-probes.md); against a clean one they
gain nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from robusthide import RobustHideError
from robusthide.attacks.base import straight_through


@dataclass(frozen=True)
class HideRefineConfig:
    """Settings of :func:`refine_container`. ``attack``: one attack spec of
    :func:`robusthide.attacks.build_attack` (e.g. ``"real(jpeg:q=50)"``) or several; the loss is the mean of the
    clean reveal's and each attack's (one attack: half and half)."""

    steps: int = 100
    lr: float = 0.002
    target_psnr: float = 34.0
    attack: str | tuple[str, ...] | None = None
    seed: int = 0

    @property
    def attacks(self) -> tuple[str, ...]:
        """The attack specs (none, one or several)."""
        if not self.attack:
            return ()
        return (self.attack,) if isinstance(self.attack, str) else tuple(self.attack)

    def __post_init__(self) -> None:
        if isinstance(self.attack, list):
            object.__setattr__(self, "attack", tuple(self.attack))
        if not (self.attack is None or isinstance(self.attack, str)
                or isinstance(self.attack, tuple) and all(isinstance(x, str) and x for x in self.attack)):
            raise RobustHideError(f"refine attack must be an attack spec or a list of them, got {self.attack!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise RobustHideError(f"refine steps must be an integer >= 0, got {self.steps!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise RobustHideError(f"refine lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.target_psnr, (int, float)) and 10 <= self.target_psnr <= 80):
            raise RobustHideError(f"target PSNR must be in [10, 80] dB, got {self.target_psnr!r}")


def _quantize(x: torch.Tensor) -> torch.Tensor:
    return straight_through(x, (x.detach().clamp(0, 1) * 255).round() / 255)


def _reveal_loss(net: torch.nn.Module, x: torch.Tensor, secrets: Sequence[torch.Tensor]) -> torch.Tensor:
    revealed, _, _ = net.reveal(x)
    return torch.stack([F.mse_loss(r.float(), s) for r, s in zip(revealed, secrets)]).mean()


def refine_container(net: torch.nn.Module, cover: torch.Tensor, secrets: Sequence[torch.Tensor],
                     container: torch.Tensor, cfg: HideRefineConfig) -> torch.Tensor:
    """The refined container (``B x 3 x S x S`` in [0, 1], not rounded) starting from ``container``."""
    if cfg.steps == 0:
        return container
    layers = []
    if cfg.attacks:
        from robusthide.attacks import build_attack

        layers = [build_attack(spec, seed=cfg.seed + i).to(cover.device) for i, spec in enumerate(cfg.attacks)]
    mse_max = 10 ** (-cfg.target_psnr / 10)
    delta = (container.detach().clamp(0, 1) - cover).clone().requires_grad_(True)
    opt = torch.optim.Adam([delta], lr=cfg.lr)
    secrets = [s.float() for s in secrets]
    for _ in range(cfg.steps):
        with torch.enable_grad():
            x = _quantize(cover + delta)
            loss = _reveal_loss(net, x, secrets)
            for layer in layers:
                loss = loss + _reveal_loss(net, layer(x, cover).clamp(0, 1), secrets)
            loss = loss / (1 + len(layers))
            (grad,) = torch.autograd.grad(loss, delta)
        delta.grad = grad
        opt.step()
        with torch.no_grad():  # back into [0, 1] and onto the PSNR ball, image by image
            delta.copy_((cover + delta).clamp(0, 1) - cover)
            mse = delta.pow(2).mean(dim=(1, 2, 3), keepdim=True)
            delta.mul_(torch.where(mse > mse_max, (mse_max / mse.clamp_min(1e-20)).sqrt(), torch.ones_like(mse)))
    return (cover + delta).detach()
