"""Code editing for joint compression and steganography (paper 004 §3.2-3.3).

Given a cover x, y is initialised by the analysis transform, y <- g_a(x) (semi-amortised inference, Gao et
al. 2022's code editing), then Adam updates y alone (codec and steganography decoder frozen) to minimise
eq. 1::

    L = R + l1 * MSE + l2 * L_perc + l3 * L_adv + l4 * L_tv + l5 * L_acc

* R: bits of y and z under the hyperprior (eq. 1), in bits per pixel of the cover; rounding relaxed by
  additive uniform noise (AUN, §3.3; ``rounding="ste"`` is an option: round forward, identity back).
* MSE (eq. 2) between x and x_hat = g_s(y~); l1 defaults to the codec's own training lambda * 255^2
  ("the same as the pre-trained model", §4.1; CompressAI's loss lambda*255^2*MSE + bpp).
* L_perc: the paper uses LPIPS-VGG, whose weights cannot be obtained here; we use 1 - SSIM (11x11 window,
  kornia) as the stand-in and say so in every result.
* L_adv (eq. 3) = -log g_d(x_hat): only with a ``discriminator`` given (none is trained here; off by
  default, the paper's l3 = 1 is kept for when one is passed).
* L_tv (eq. 4): mean squared horizontal + vertical differences of x_hat, to the power beta (= 1). Eq. 4 as
  printed subtracts the vertical term (a sign lost in the text); we add it, the usual TV.
* L_acc (eq. 5): binary cross-entropy of the decoder's logits on x_hat against the message, *summed* over
  the D x H x W bits by default (``ce_reduction="sum"``; "mean" is the other reading). The paper does not
  say which; with the mean and l5 = 1/48 the message term is ~10^4 times weaker than l1 * MSE and the
  accuracy stays at chance (measured: 49 % after 60 iterations on a 64 x 64 crop), while the paper's own
  numbers (DIV2K hyperbase_8: 24.9 dB at 3.83 bpp, where the pretrained q8 codec alone gives ~37 dB at
  ~1.2 bpp) show a dominant message term, which the sum gives (x H*W).

Defaults are the paper's: l2 = 16, l3 = 1, l4 = 1/244, l5 = 1/48, Adam lr 1e-3, 1500 iterations (§4.1).
x_hat is clamped to [0, 1] and rounded to 8-bit levels before the message decoder, as the receiver sees it:
straight-through for the rounding, the clamp's own gradient for the clamp (``clamp_grad``, :func:`read_uint8`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robusthide import RobustHideError
from robusthide.latent.models import ScaleHyperprior, pad


@dataclass
class EditConfig:
    iters: int = 1500
    lr: float = 1e-3
    lambda1: float | None = None  # None: codec lambda * 255^2
    lambda2: float = 16.0
    lambda3: float = 1.0
    lambda4: float = 1.0 / 244.0
    lambda5: float = 1.0 / 48.0
    tv_beta: float = 1.0
    rounding: str = "noise"  # "noise" (AUN, paper) or "ste"
    ce_reduction: str = "sum"  # "sum" over the D x H x W bits or "mean"
    clamp_grad: bool = True  # the decoder's input gets the clamp's own gradient (zero outside [0, 1]); see read_uint8
    seed: int = 0
    log_every: int = 0
    lattice: int = 0  # rounds of lattice_descent on the rounded y after the iterations (0: none, the paper's)


@dataclass
class EditResult:
    y: Tensor  # the edited continuous latent (1 x M x h x w), to be rounded and entropy coded
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: dict[int, Tensor] = field(default_factory=dict)  # y after k iterations, for the k asked (``keep``)


def codec_lambda1(codec: ScaleHyperprior, default: float = 0.0130) -> float:
    """lambda1 of eq. 1: the codec's training lambda (metadata ``lmbda``) times 255^2."""
    try:
        lam = float(codec.meta.get("lmbda", default))
    except ValueError:
        lam = default
    return lam * 255.0**2


def ste_uint8(x: Tensor) -> Tensor:
    """Clamp to [0, 1] and round to 8-bit levels forward; identity backward."""
    return x + (torch.round(x.clamp(0, 1) * 255.0) / 255.0 - x).detach()


def read_uint8(x: Tensor) -> Tensor:
    """The image the receiver reads: clamp to [0, 1] (with its own gradient, zero outside), then round to 8-bit
    levels forward with the identity backward. Unlike :func:`ste_uint8`, a pixel already beyond 0 or 1 gets no
    gradient from the message term: pushing it further changes nothing the decoder sees (eq. 5 is a loss on
    the decoded image). With the straight-through clamp, a strong message term drives g_s's output out of
    range, where the decoder no longer sees the edits, and the image collapses (docs/results/latent-iters.md)."""
    xc = x.clamp(0, 1)
    return xc + (torch.round(xc * 255.0) / 255.0 - xc).detach()


def tv_loss(x: Tensor, beta: float = 1.0) -> Tensor:
    dx = (x[..., :, 1:] - x[..., :, :-1]) ** 2
    dy = (x[..., 1:, :] - x[..., :-1, :]) ** 2
    return (dx.mean() + dy.mean()) ** beta


def perceptual_loss(x: Tensor, x_hat: Tensor) -> Tensor:
    """Stand-in for LPIPS-VGG (no weights obtainable here): 1 - SSIM."""
    from kornia.metrics import ssim

    win = 11 if min(x.shape[-2:]) >= 11 else 3
    return 1.0 - ssim(x_hat.clamp(0, 1), x, win).mean()


def message_loss(decoder: nn.Module, x_hat: Tensor, target: Tensor) -> Tensor:
    """L_acc (eq. 5): BCE of the decoder logits vs the target bit plane (mean over bits)."""
    return F.binary_cross_entropy_with_logits(decoder(x_hat), target)


def bit_accuracy(decoder: nn.Module, x: Tensor, target: Tensor) -> float:
    with torch.no_grad():
        return float(((decoder(x) > 0).float() == target).float().mean())


def edit_latent(
    codec: ScaleHyperprior,
    decoder: nn.Module,
    cover: Tensor,
    target: Tensor,
    cfg: EditConfig | None = None,
    discriminator: nn.Module | None = None,
    callback: Callable[[dict[str, float]], None] | None = None,
    keep: Collection[int] = (),
) -> EditResult:
    """Optimise y for one cover (1 x 3 x H x W in [0, 1]) and target bits (1 x D x H x W), eq. 6. ``keep``:
    iteration counts k (0 to ``cfg.iters``) whose y, after k iterations, is returned in ``snapshots`` (one run
    gives the accuracy against iterations; a run of k iterations ends with the same y)."""
    cfg = cfg or EditConfig()
    keep = {int(k) for k in keep}
    if any(not 0 <= k <= cfg.iters for k in keep):
        raise ValueError(f"keep: iteration counts must be within 0..{cfg.iters}, got {sorted(keep)}")
    if cfg.ce_reduction not in ("sum", "mean"):
        raise ValueError(f"ce_reduction must be 'sum' or 'mean', got {cfg.ce_reduction!r}")
    if cfg.lattice < 0 or (cfg.lattice and not isinstance(codec, ScaleHyperprior)):
        raise RobustHideError(f"lattice must be a number of rounds >= 0, on a scale-hyperprior codec (ELIC codes "
                              f"round(y - mu) + mu), got {cfg.lattice!r} on {type(codec).__name__}")
    codec.eval().requires_grad_(False)
    decoder.eval().requires_grad_(False)
    lam1 = codec_lambda1(codec) if cfg.lambda1 is None else cfg.lambda1
    torch.manual_seed(cfg.seed)
    with torch.no_grad():
        y0 = codec.g_a(pad(cover))
    y = y0.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=cfg.lr)
    hist: list[dict[str, float]] = []
    snaps = {0: y0.clone()} if 0 in keep else {}
    objective = Eq1(codec, decoder, cover, target, cfg, lam1, discriminator)
    for it in range(cfg.iters):
        loss, parts, logits = objective(y, cfg.rounding)
        rate, mse, perc, tv, acc_loss = (parts[k] for k in ("rate", "mse", "perc", "tv", "acc_loss"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it + 1 in keep:
            snaps[it + 1] = y.detach().clone()
        if cfg.log_every and (it % cfg.log_every == 0 or it == cfg.iters - 1) or callback:
            rec = {
                "iter": it, "loss": loss.item(), "rate_bpp": rate.item(), "mse": mse.item(),
                "perc": perc.item(), "tv": tv.item(),
                "msg_loss": acc_loss.item() / (target.numel() if cfg.ce_reduction == "sum" else 1),  # per bit
                "acc": float(((logits > 0).float() == target).float().mean()),
            }
            if cfg.log_every and (it % cfg.log_every == 0 or it == cfg.iters - 1):
                hist.append(rec)
            if callback:
                callback(rec)
    y = y.detach()
    if cfg.lattice:
        y = lattice_descent(objective, y, cfg.lattice)
        if cfg.iters in keep:
            snaps[cfg.iters] = y.clone()
    return EditResult(y, hist, snaps)


class Eq1:
    """Eq. 1 for one cover and message, as a function of y: ``(loss, parts, logits) = objective(y, mode)``
    with ``mode`` the rounding of :meth:`ScaleHyperprior.rate_and_recon` (noise, ste or round)."""

    def __init__(self, codec: ScaleHyperprior, decoder: nn.Module, cover: Tensor, target: Tensor, cfg: EditConfig,
                 lam1: float, discriminator: nn.Module | None = None):
        self.codec, self.decoder, self.cover, self.target, self.cfg = codec, decoder, cover, target, cfg
        self.lam1, self.discriminator = lam1, discriminator

    def __call__(self, y: Tensor, mode: str) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        cfg, cover, disc = self.cfg, self.cover, self.discriminator
        h, w = cover.shape[-2:]
        x_pad, y_bits, z_bits = self.codec.rate_and_recon(y, mode)
        x_hat = x_pad[..., :h, :w]
        x_q = read_uint8(x_hat) if cfg.clamp_grad else ste_uint8(x_hat)
        rate = (y_bits + z_bits) / (h * w)
        mse = F.mse_loss(x_hat, cover)
        perc = perceptual_loss(cover, x_hat) if cfg.lambda2 else x_hat.new_zeros(())
        adv = -torch.log(disc(x_q).sigmoid().clamp_min(1e-6)).mean() if disc else x_hat.new_zeros(())
        tv = tv_loss(x_hat, cfg.tv_beta) if cfg.lambda4 else x_hat.new_zeros(())
        logits = self.decoder(x_q)
        acc_loss = F.binary_cross_entropy_with_logits(logits, self.target, reduction=cfg.ce_reduction)
        loss = (rate + self.lam1 * mse + cfg.lambda2 * perc + cfg.lambda3 * adv + cfg.lambda4 * tv
                + cfg.lambda5 * acc_loss)
        return loss, {"rate": rate, "mse": mse, "perc": perc, "tv": tv, "acc_loss": acc_loss}, logits


#: the share of y's values the first round of :func:`lattice_descent` moves (doubled after a kept move, up to
#: 8 times this; halved after a rejected one)
LATTICE_START_SHARE = 1 / 64


def lattice_descent(objective: Eq1, y: Tensor, rounds: int, share: float = LATTICE_START_SHARE,
                    toward: bool = True, adaptive: bool = True) -> Tensor:
    """Greedy descent of eq. 1 on the integer lattice the coder sends (ours, after the paper's editing).

    The paper edits a continuous y and rounds it once at the end; on our codecs the rounding costs 3-4 points
    of bit accuracy (docs/results/latent-m320-probe.md). This pass starts from round(y). Each round takes the
    gradient of eq. 1 at the rounded point (rounding straight-through) and, among the values whose step
    against the gradient goes to y's other rounding neighbour (so the point stays within one step of the
    edited y in every coordinate), moves the ``share`` with the largest gradient. It keeps the move only if
    the exact loss at the new lattice point (real rounding: what the receiver decodes) is lower, then doubles
    the share (at most 8 times the start); a rejected move halves it, and the pass ends when it reaches zero
    or after ``rounds``. Every kept point is a lattice point, so the result codes exactly. Only for codecs that
    round y itself (the scale hyperprior; the mean-scale ELIC codes round(y - mu) + mu, off this lattice).
    ``toward`` False allows moves in any direction, ``adaptive`` False keeps the share after a kept move (the
    ablations of docs/scripts/lattice_sweep.py). Measured: docs/results/latent-lattice.md."""
    if not isinstance(objective.codec, ScaleHyperprior):
        raise ValueError("lattice descent needs a codec that codes round(y) (the scale hyperprior)")
    y = y.detach()
    yq = torch.round(y)
    with torch.no_grad():
        best = float(objective(yq, "round")[0])
    k = max(1, int(share * yq.numel()))
    k_max = 8 * k
    for _ in range(int(rounds)):
        if k < 1:
            break
        v = yq.clone().requires_grad_(True)
        loss, _, _ = objective(v, "ste")
        (g,) = torch.autograd.grad(loss, [v])
        step = -torch.sign(g)
        score = g.abs()
        if toward:
            score = torch.where((yq + step - y).abs() < 1.0, score, torch.zeros_like(score))
        score = score.flatten()
        top = score.topk(min(k, score.numel())).indices
        top = top[score[top] > 0]
        if top.numel() == 0:
            break
        move = torch.zeros_like(score)
        move[top] = step.flatten()[top]
        cand = yq + move.view_as(yq)
        with torch.no_grad():
            new = float(objective(cand, "round")[0])
        if new < best:
            yq, best = cand, new
            k = min(k_max, 2 * k) if adaptive else k
        else:
            k //= 2
    return yq
