"""Training of the two pretrained parts paper 004 takes as given (none can be downloaded here).

* :func:`train_codec` -- the scale hyperprior with CompressAI's rate-distortion loss
  ``lmbda * 255^2 * MSE + bpp`` (Adam) and the auxiliary quantile loss (its own Adam), on random crops of
  the photo folder's train split (``robusthide.training.data``: split by file-name hash).
* :func:`train_decoder` -- the FNNS decoder (SteganoGAN ``BasicDecoder``) trained jointly with a residual
  encoder on BCE(message) + w * MSE(stego, cover), stego rounded to 8 bits (straight-through); only the
  decoder is kept (frozen afterwards, as FNNS does with SteganoGAN's).

Both write safetensors with their settings in the metadata and a JSON log beside.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robusthide import RobustHideError
from robusthide.latent.editing import ste_uint8
from robusthide.latent.models import ScaleHyperprior, save_codec
from robusthide.latent.stegnet import BasicDecoder, ResidualEncoder, save_decoder
from robusthide.metrics import psnr_from_mse
from robusthide.training.data import ImageBank, step_generator


def _log(path: Path, rec: dict, echo: Callable[[dict], None] | None) -> None:
    """Append ``rec`` to the log file; ``echo`` (e.g. the CLI's printer) also gets it."""
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")
    if echo:
        echo(rec)


def codec_step(model: torch.nn.Module, opt: torch.optim.Optimizer, aux: torch.optim.Optimizer, main: list,
               x: torch.Tensor, lmbda: float) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One rate-distortion step on the batch ``x``: the main parameters ``main`` by ``opt`` on
    lmbda * 255^2 * MSE + bpp (gradient norm clipped to 1), then the quantiles by ``aux`` on the aux loss.
    Returns (model output, MSE, R-D loss, aux loss)."""
    o = model(x)
    mse = F.mse_loss(o["x_hat"], x)
    loss = lmbda * 255.0**2 * mse + o["bpp"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(main, 1.0)
    opt.step()
    a = model.entropy_bottleneck.aux_loss()
    aux.zero_grad(set_to_none=True)
    a.backward()
    aux.step()
    return o, mse, loss, a


def train_codec(
    data: str | Path, out: str | Path, steps: int = 20000, lmbda: float = 0.0130, N: int = 64, M: int = 96,
    size: int = 64, batch: int = 8, lr: float = 1e-4, aux_lr: float = 1e-2, seed: int = 0,
    max_side: int = 512, log_every: int = 100, quality: str = "", echo: Callable[[dict], None] | None = None,
    bank: ImageBank | None = None, arch: str = "hyperprior", checkpoint_every: int = 0, resume: bool = False,
    init_from: str | Path | None = None,
) -> ScaleHyperprior:
    """Train a scale hyperprior (``arch="elic"``: the ELIC-style codec of elic.py); writes
    ``out/codec.safetensors`` and ``out/log.jsonl``.

    ``checkpoint_every`` K > 0 writes ``out/latest.safetensors`` + ``latest.json`` (model, both Adam states,
    the next step; :mod:`robusthide.training.checkpoint`) every K steps and at the end. ``resume`` continues
    from that checkpoint up to ``steps``, appending to the log: the crops of step s depend only on (seed, s),
    and the checkpoint keeps torch's RNG state (the rounding noise), so a run cut into stretches ends with
    the same weights as one run. On resume ``lr`` replaces the saved learning rate. ``init_from`` starts a
    new run (step 0, fresh optimisers) from the weights of a codec file or a run folder's checkpoint, e.g. to
    go on at a larger crop."""
    if resume and init_from is not None:
        raise RobustHideError("give --resume or --init-from, not both")
    if arch not in ("hyperprior", "elic"):
        raise RobustHideError(f"unknown codec architecture {arch!r} (hyperprior or elic)")
    if size % 64:
        raise RobustHideError(f"codec crops must be a multiple of 64 px (the latent stride), got {size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bank = bank or ImageBank(data, split="train", max_side=max_side, min_side=size)
    torch.manual_seed(seed)
    if arch == "elic":
        from robusthide.latent.elic import ElicLite

        model = ElicLite(N, M).train()
    else:
        model = ScaleHyperprior(N, M).train()
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(main, lr=lr)
    aux = torch.optim.Adam([model.entropy_bottleneck.quantiles], lr=aux_lr)
    if init_from is not None:
        from robusthide.training.checkpoint import load_model_weights

        load_model_weights(init_from, model)
    log = out / "log.jsonl"
    settings = {"arch": arch, "N": N, "M": M, "lmbda": lmbda, "size": size, "batch": batch, "seed": seed}
    start = 0
    if resume:
        from robusthide.training.checkpoint import load_checkpoint

        try:
            had = json.loads((out / "latest.json").read_text()).get("settings")
        except (OSError, ValueError, AttributeError):
            had = settings  # missing or corrupt: load_checkpoint gives the one-line error
        if had != settings:
            raise RobustHideError(f"the checkpoint in {out} was trained with {had}, not {settings}")
        doc = load_checkpoint(out, model, opt, extra={"aux": aux})
        for group in opt.param_groups:  # the given --lr replaces the saved one (a lower rate for a last stretch)
            group["lr"] = lr
        start = int(doc["step"])
        torch.set_rng_state(torch.tensor(doc["rng"], dtype=torch.uint8))
        if start >= steps:
            raise RobustHideError(f"the checkpoint in {out} is at step {start}: raise --steps above it to resume")
    else:
        log.write_text("")
    t0 = time.time()
    for step in range(start, steps):
        x = bank.sample(batch, size, step_generator(seed, step))
        o, mse, loss, a = codec_step(model, opt, aux, main, x, lmbda)
        if log_every and (step % log_every == 0 or step == steps - 1):
            psnr = float(psnr_from_mse(mse.detach().clamp_min(1e-10), peak=1.0))
            _log(log, {"step": step, "loss": loss.item(), "bpp": o["bpp"].item(), "psnr": psnr,
                       "aux": a.item(), "sec": round(time.time() - t0, 1)}, echo)
        if checkpoint_every and ((step + 1) % checkpoint_every == 0 or step == steps - 1):
            from robusthide.training.checkpoint import save_checkpoint

            save_checkpoint(out, model, opt, {"step": step + 1, "settings": settings,
                                              "rng": torch.get_rng_state().tolist()}, extra={"aux": aux})
    model.eval()
    model.update()
    model.meta = {"lmbda": str(lmbda), "steps": str(steps), "size": str(size), "quality": quality or str(lmbda)}
    save_codec(model, out / "codec.safetensors")
    return model


def train_decoder(
    data: str | Path, out: str | Path, steps: int = 3000, data_depth: int = 1, hidden: int = 32,
    size: int = 64, batch: int = 8, lr: float = 1e-3, mse_weight: float = 10.0, seed: int = 0,
    max_side: int = 512, log_every: int = 100, echo: Callable[[dict], None] | None = None,
    bank: ImageBank | None = None,
) -> BasicDecoder:
    """Train encoder + decoder; writes ``out/decoder.safetensors`` (decoder only) and ``out/log.jsonl``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bank = bank or ImageBank(data, split="train", max_side=max_side, min_side=size)
    torch.manual_seed(seed)
    enc, dec = ResidualEncoder(data_depth, hidden).train(), BasicDecoder(data_depth, hidden).train()
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    log = out / "log.jsonl"
    log.write_text("")
    t0 = time.time()
    for step in range(steps):
        g = step_generator(seed, step)
        x = bank.sample(batch, size, g)
        bits = (torch.rand(batch, data_depth, size, size, generator=g) > 0.5).float()
        stego = ste_uint8(enc(x, bits))
        logits = dec(stego)
        bce = F.binary_cross_entropy_with_logits(logits, bits)
        mse = F.mse_loss(stego, x)
        loss = bce + mse_weight * mse
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log_every and (step % log_every == 0 or step == steps - 1):
            acc = float(((logits > 0).float() == bits).float().mean())
            psnr = float(psnr_from_mse(np.float64(max(mse.item(), 1e-10)), peak=1.0))
            _log(log, {"step": step, "bce": bce.item(), "acc": acc, "psnr": psnr,
                       "sec": round(time.time() - t0, 1)}, echo)
    dec.eval()
    save_decoder(dec, out / "decoder.safetensors", steps=steps, size=size, seed=seed)
    return dec
