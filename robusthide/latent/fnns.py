"""FNNS baselines of paper 004 (Kishore et al. 2021, "train the images, not the network").

The stego image is the cover plus a perturbation optimised so that the *fixed* decoder outputs the message:
L-BFGS (lr 0.1) on the float pixels, minimising BCE(decoder(attack(x')), M), the perturbation clamped to
+-eps (0.3) and the image to [0, 1] after every step (ANCHORS.md, FNNS section); stops early once every
bit decodes. The image is saved (PNG/JPEG) only afterwards, as in FNNS (no rounding in the loop: it would
flatten the loss that L-BFGS's line search reads). Variants (Tables 1-3):

* FNNS (float, 96 bpp), FNNS-png (8-bit PNG) -- no attack in the loop;
* FNNS-jpgQ -- the same stego image saved as real JPEG at quality Q (90/70/50);
* FNNS-JPGQ_TRAIN -- differentiable JPEG at Q in the loop (``robusthide.attacks.DiffJPEG``), then real JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class FnnsConfig:
    steps: int = 100  # outer L-BFGS steps (each up to ``inner`` evaluations)
    inner: int = 10
    lr: float = 0.1
    eps: float = 0.3
    mse_weight: float = 0.0  # FNNS's optional distortion term (0 = the original constraint-only form)
    jpeg_train: int | None = None  # quality of DiffJPEG in the loop (FNNS-JPG*_TRAIN)


def fnns_embed(decoder: nn.Module, cover: Tensor, target: Tensor, cfg: FnnsConfig | None = None) -> Tensor:
    """The FNNS stego image (float, 1 x 3 x H x W in [0, 1]) for target bits (1 x D x H x W)."""
    cfg = cfg or FnnsConfig()
    decoder.eval().requires_grad_(False)
    attack: nn.Module | None = None
    if cfg.jpeg_train is not None:
        from robusthide.attacks import DiffJPEG

        attack = DiffJPEG(int(cfg.jpeg_train))
    x = cover.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=cfg.lr, max_iter=cfg.inner)

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        xi = x if attack is None else attack(x.clamp(0, 1))
        loss = F.binary_cross_entropy_with_logits(decoder(xi), target)
        if cfg.mse_weight:
            loss = loss + cfg.mse_weight * F.mse_loss(x, cover)
        loss.backward()
        return loss

    for _ in range(cfg.steps):
        opt.step(closure)
        with torch.no_grad():
            x.copy_((cover + (x - cover).clamp(-cfg.eps, cfg.eps)).clamp(0, 1))
            xi = x if attack is None else attack(x)
            if bool(((decoder(xi) > 0).float() == target).all()):
                break
    return x.detach()
