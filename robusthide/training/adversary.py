"""The adversarial image loss of HiDDeN and MBRS (paper 002 §3.1 "Adversary"; HiDDeN §3).

A discriminator A tells covers from marked images; the encoder is also trained to fool it. As in both
papers' code, with binary cross-entropy on logits and labels cover = 1, marked = 0:

* discriminator loss  ``d_loss = BCE(A(I_co), 1) + BCE(A(I_en.detach()), 0)``  (paper 002's L_A);
* generator loss      ``g_loss = BCE(A(I_en), 1)``  (paper 002's L_E2, in the non-saturating form the
  code uses), added to the encoder/decoder loss with weight ``train.adv_weight`` (HiDDeN 1e-3, MBRS 1e-4).

How the trainer should use it (one step)::

    # once: G optimiser WITHOUT the discriminator's parameters, and a separate Adam for D (both papers:
    # Adam, lr 1e-3); save d_opt.state_dict() in the checkpoint next to the main optimiser for exact resume
    opt = torch.optim.Adam(generator_parameters(model), lr=t["lr"])
    d_opt = torch.optim.Adam(model.discriminator.parameters(), lr=t["lr"])

    marked, logits = net(cover, bits, attack, gen, amp)           # as now
    loss = w_msg * msg_loss + w_img * mse
    if adv_weight > 0:
        g_loss, d_loss = adversarial_losses(model.discriminator, cover, marked)
        loss = loss + adv_weight * g_loss
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    if adv_weight > 0:
        d_opt.zero_grad(set_to_none=True)   # (g_loss's pass leaves nothing in D's .grad: D frozen there)
        d_loss.backward(); d_opt.step()     # d_loss saw marked.detach(): it only reaches D

``d_loss`` is computed on ``marked.detach()``, so its graph is separate from ``loss`` and survives
``loss.backward()``; the generator step does not change D's weights (D is not in ``opt``). In a stage where
only the decoder trains (``trainable == "decoder"``) skip both adversarial terms. The discriminator is
called outside the DDP-wrapped module: under DDP, all-reduce its gradients (or wrap it in its own
``DistributedDataParallel``) before ``d_opt.step()``. Logits are taken in float32 (autocast-safe).

Cost (docs/results/reproduce-plan.md, "Where a step goes"): the pass of ``g_loss`` runs with D's parameters
frozen, so its backward computes the gradient for ``marked`` only; the weight gradients it used to leave in
D's ``.grad`` were cleared before the D step anyway, so the numbers are the same. ``amp=True``
(``train.adv_amp``) runs the three passes under bf16 autocast, as the encoder and decoder run; in float32
they took more CPU time than the encoder and decoder together (HiDDeN at 64 px).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


def adversarial_losses(discriminator: nn.Module, cover: torch.Tensor, marked: torch.Tensor,
                       amp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g_loss, d_loss)`` for covers and marked images (N x 3 x H x W in [0, 1]); see the module docstring.

    ``g_loss`` carries gradient to the encoder through ``marked`` only (D's parameters are frozen for its
    pass); ``d_loss`` reaches only the discriminator. ``amp``: the passes under bf16 autocast.
    """
    dev = marked.device.type
    params = [p for p in discriminator.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
            d_marked = discriminator(marked).float()
    finally:
        for p in params:
            p.requires_grad_(True)
    g_loss = F.binary_cross_entropy_with_logits(d_marked, torch.ones_like(d_marked))
    with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
        d_cover = discriminator(cover.detach()).float()
        d_fake = discriminator(marked.detach()).float()
    d_loss = (F.binary_cross_entropy_with_logits(d_cover, torch.ones_like(d_cover))
              + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    return g_loss, d_loss


def generator_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The model's parameters except those of ``model.discriminator`` (if it has one): for the main optimiser."""
    disc = getattr(model, "discriminator", None)
    skip = {id(p) for p in disc.parameters()} if isinstance(disc, nn.Module) else set()
    return (p for p in model.parameters() if id(p) not in skip)
