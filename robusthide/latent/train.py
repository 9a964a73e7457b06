"""Training of the latent family (paper 004) on the one loop (:mod:`robusthide.training.loop`).

Three families, each a model and a step:

* :class:`CodecFamily` (:func:`train_codec`) -- the scale hyperprior (or the ELIC-style codec) with
  CompressAI's rate-distortion loss ``lmbda * 255^2 * MSE + bpp`` (Adam) and the auxiliary quantile loss
  (its own Adam), on random crops of the photo folder's train split (``robusthide.training.data``: split by
  file-name hash);
* :class:`DecoderFamily` (:func:`train_decoder`) -- the FNNS decoder (SteganoGAN ``BasicDecoder``) trained
  jointly with a residual encoder on BCE(message) + w * MSE(stego, cover), stego rounded to 8 bits
  (straight-through); only the decoder is kept (frozen afterwards, as FNNS does with SteganoGAN's). With a
  frozen ``codec`` the decoder reads g_s(round(g_a(stego))) instead (rounding straight-through, ours): it
  learns to read what the codec's synthesis can produce, which is all that paper 004's code editing can
  change;
* :class:`LisoFamily` (:func:`train_liso`) -- LISO's learned optimiser and its decoder
  (:mod:`robusthide.latent.liso`).

Their settings are checked by the one config loader (:func:`robusthide.training.config.load_with_schema`
with :data:`CODEC_SCHEMA`, :data:`DECODER_SCHEMA`, :data:`LISO_SCHEMA`). Each run writes its weights as
safetensors with the settings in the metadata and the log rows to ``out/log.jsonl``. ``checkpoint_every``
K > 0 writes ``out/latest.safetensors`` + ``latest.json`` (networks, optimisers, torch's RNG state, the
step; :mod:`robusthide.training.checkpoint`) every K steps and at the end; ``resume`` continues from it:
the crops of step s depend only on (seed, s), so a run cut into stretches ends with the weights of one run.

The codec family trains in bf16 autocast with ``amp`` (granted where :func:`robusthide.training.loop.setup_runtime`
grants it: a CPU with native bf16, or CUDA): the transforms run in bf16, the noise, the likelihoods and the loss
in float32 (:func:`robusthide.latent.entropy.full_precision`). ``amp`` is not among the settings a resume must
match (like ``lr``), but a run resumed with the other precision is no longer the same run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from robusthide import RobustHideError
from robusthide.latent.editing import ste_uint8
from robusthide.latent.models import ScaleHyperprior, save_codec
from robusthide.latent.stegnet import BasicDecoder, ResidualEncoder, save_decoder
from robusthide.metrics import psnr_from_mse
from robusthide.training.checkpoint import load_model_weights, pack_checkpoint, unpack_checkpoint
from robusthide.training.config import Schema, load_with_schema
from robusthide.training.data import ImageBank, step_generator
from robusthide.training.loop import Family, LoopSettings, TrainLoop, setup_runtime

_COMMON: dict[str, Any] = {"steps": 1000, "size": 64, "batch": 8, "lr": 1e-3, "seed": 0, "max_side": 512,
                           "log_every": 100, "checkpoint_every": 0}
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "steps": (1, None), "size": (8, None), "batch": (1, None), "lr": (0, None), "seed": (0, None),
    "max_side": (1, None), "log_every": (0, None), "checkpoint_every": (0, None)}

#: :func:`train_codec`'s settings
CODEC_SCHEMA = Schema(
    {**_COMMON, "steps": 20000, "lr": 1e-4, "arch": "hyperprior", "N": 64, "M": 96, "lmbda": 0.0130,
     "aux_lr": 1e-2, "quality": "", "amp": False},
    ranges={**_RANGES, "size": (64, None), "N": (1, None), "M": (1, None), "lmbda": (0, None), "aux_lr": (0, None)},
    choices={"arch": ("hyperprior", "elic")})
#: :func:`train_decoder`'s settings
DECODER_SCHEMA = Schema({**_COMMON, "steps": 3000, "data_depth": 1, "hidden": 32, "mse_weight": 10.0,
                         "target_psnr": 0.0},
                        ranges={**_RANGES, "data_depth": (1, None), "hidden": (1, None), "mse_weight": (0, None),
                                "target_psnr": (0, 80)})
#: the PSNR controller of :class:`DecoderFamily`: the MSE weight moves by this factor a step, within these bounds
PSNR_STEP, MSE_WEIGHT_BOUNDS = 1.02, (1e-3, 1e5)
#: :func:`train_liso`'s settings (the fields of :class:`robusthide.latent.liso.LisoTrainConfig`)
LISO_SCHEMA = Schema({**_COMMON, "steps": 400, "gamma": 0.8, "mse_weight": 10.0, "log_every": 50},
                     ranges={**_RANGES, "gamma": (0, None), "mse_weight": (0, None)})


def codec_step(model: torch.nn.Module, opt: torch.optim.Optimizer, aux: torch.optim.Optimizer, main: list,
               x: torch.Tensor, lmbda: float,
               amp: bool = False) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One rate-distortion step on the batch ``x``: the main parameters ``main`` by ``opt`` on
    lmbda * 255^2 * MSE + bpp (gradient norm clipped to 1), then the quantiles by ``aux`` on the aux loss.
    ``amp``: the forward pass in bf16 autocast (the model returns float32 x_hat and bpp).
    Returns (model output, MSE, R-D loss, aux loss)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
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


def _psnr(mse: float) -> float:
    return float(psnr_from_mse(np.float64(max(mse, 1e-10)), peak=1.0))


class LatentFamily(Family):
    """What the three latent families share: a network trained by one Adam (``opt``, and optional ``extra``
    optimisers by checkpoint prefix), crops from a bank, and a checkpoint that also keeps torch's RNG state
    and the ``settings`` a resume must match."""

    def __init__(self, cfg: dict[str, Any], out: Path, bank: ImageBank, net: torch.nn.Module,
                 opt: torch.optim.Optimizer, settings: dict[str, Any],
                 extra: dict[str, torch.optim.Optimizer | None] | None = None):
        self.cfg, self.out, self.bank, self.net, self.opt = cfg, out, bank, net, opt
        self.settings, self.extra = settings, extra or {}
        self.state: dict[str, Any] = {"step": 0, "train_seconds": 0.0}
        self.amp = False  # bf16 autocast, as granted by the runtime (:func:`_run`)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Generator]:
        """Step ``step``'s crops and its generator (for the message bits)."""
        g = step_generator(self.cfg["seed"], step)
        return self.bank.sample(self.cfg["batch"], self.cfg["size"], g), g

    def checkpoint(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return pack_checkpoint(self.net, self.opt, {"settings": self.settings, "rng": torch.get_rng_state().tolist()},
                               extra=self.extra)

    def restore(self, tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
        had = doc.get("settings")
        if had != self.settings:
            raise RobustHideError(f"the checkpoint in {self.out} was trained with {had}, not {self.settings}")
        unpack_checkpoint(self.out, tensors, doc, self.net, self.opt, extra=self.extra)
        for group in self.opt.param_groups:  # the given lr replaces the saved one (a lower rate for a last stretch)
            group["lr"] = self.cfg["lr"]
        torch.set_rng_state(torch.tensor(doc["rng"], dtype=torch.uint8))

    def start(self) -> None:
        self.net.train()


class CodecFamily(LatentFamily):
    """The learned codec: :func:`codec_step` on each step's crops."""

    def __init__(self, cfg: dict[str, Any], out: Path, bank: ImageBank):
        torch.manual_seed(cfg["seed"])
        if cfg["arch"] == "elic":
            from robusthide.latent.elic import ElicLite

            model = ElicLite(cfg["N"], cfg["M"]).train()
        else:
            model = ScaleHyperprior(cfg["N"], cfg["M"]).train()
        self.main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
        opt = torch.optim.Adam(self.main, lr=cfg["lr"])
        aux = torch.optim.Adam([model.entropy_bottleneck.quantiles], lr=cfg["aux_lr"])
        settings = {k: cfg[k] for k in ("arch", "N", "M", "lmbda", "size", "batch", "seed")}
        super().__init__(cfg, out, bank, model, opt, settings, extra={"aux": aux})

    def train_step(self, step: int) -> dict[str, Any]:
        x, _ = self.batch(step)
        o, mse, loss, a = codec_step(self.net, self.opt, self.extra["aux"], self.main, x, self.cfg["lmbda"],
                                     amp=self.amp)
        psnr = float(psnr_from_mse(mse.detach().clamp_min(1e-10), peak=1.0))
        return {"step": step, "loss": loss.item(), "bpp": o["bpp"].item(), "psnr": psnr, "aux": a.item(),
                "bf16": self.amp}


class DecoderFamily(LatentFamily):
    """The FNNS decoder, trained with a residual encoder (both in ``net``: ``enc``, ``dec``)."""

    def __init__(self, cfg: dict[str, Any], out: Path, bank: ImageBank, codec: torch.nn.Module | None = None,
                 init_decoder: BasicDecoder | None = None):
        torch.manual_seed(cfg["seed"])
        enc = ResidualEncoder(cfg["data_depth"], cfg["hidden"]).train()
        dec = BasicDecoder(cfg["data_depth"], cfg["hidden"]).train()
        if init_decoder is not None:
            if (init_decoder.data_depth, init_decoder.hidden) != (cfg["data_depth"], cfg["hidden"]):
                raise RobustHideError(f"the decoder to start from has depth {init_decoder.data_depth} and hidden "
                                      f"{init_decoder.hidden}, not {cfg['data_depth']} and {cfg['hidden']}")
            dec.load_state_dict(init_decoder.state_dict())
        opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=cfg["lr"])
        settings = {k: cfg[k] for k in ("data_depth", "hidden", "size", "batch", "seed", "mse_weight")}
        if codec is not None:  # the frozen codec is part of what a resume must match
            codec.eval().requires_grad_(False)
            settings["codec"] = codec.model_id()
        if init_decoder is not None:
            settings["init_decoder"] = init_decoder.decoder_id()
        if cfg["target_psnr"]:
            settings["target_psnr"] = cfg["target_psnr"]
        self.codec = codec
        super().__init__(cfg, out, bank, torch.nn.ModuleDict({"enc": enc, "dec": dec}), opt, settings)
        self.state["mse_weight"] = float(cfg["mse_weight"])

    def checkpoint(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, doc = super().checkpoint()
        return tensors, dict(doc, mse_weight=self.state["mse_weight"])

    def restore(self, tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
        super().restore(tensors, doc)
        self.state["mse_weight"] = float(doc.get("mse_weight", self.cfg["mse_weight"]))

    def steer(self, psnr: float) -> None:
        """With ``target_psnr`` > 0, hold the stego's PSNR there (ours): the MSE weight grows by
        :data:`PSNR_STEP` after a step below the target and shrinks by it after one above. Without it the
        residual encoder either runs away or vanishes (session 21: weight 1 gave 7 dB, weight 30 left the
        decoder at chance), and code editing reaches about 23 dB at the tables' setting."""
        target = self.cfg["target_psnr"]
        if target:
            w = self.state["mse_weight"] * (PSNR_STEP if psnr < target else 1 / PSNR_STEP)
            self.state["mse_weight"] = min(max(w, MSE_WEIGHT_BOUNDS[0]), MSE_WEIGHT_BOUNDS[1])

    def seen(self, stego: torch.Tensor) -> torch.Tensor:
        """What the decoder reads of ``stego`` (8-bit, straight-through): the stego itself, or with the frozen
        codec its reconstruction g_s(round(g_a(stego))), rounded with the identity gradient (mode ``ste``)."""
        if self.codec is None:
            return ste_uint8(stego)
        x_hat, _, _ = self.codec.rate_and_recon(self.codec.g_a(stego), "ste")
        return ste_uint8(x_hat)

    def train_step(self, step: int) -> dict[str, Any]:
        c = self.cfg
        x, g = self.batch(step)
        bits = (torch.rand(c["batch"], c["data_depth"], c["size"], c["size"], generator=g) > 0.5).float()
        stego = ste_uint8(self.net["enc"](x, bits))
        logits = self.net["dec"](self.seen(stego))
        bce = F.binary_cross_entropy_with_logits(logits, bits)
        mse = F.mse_loss(stego, x)
        weight = self.state["mse_weight"]
        loss = bce + weight * mse
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        acc = float(((logits > 0).float() == bits).float().mean())
        psnr = _psnr(mse.item())
        self.steer(psnr)
        return {"step": step, "bce": bce.item(), "acc": acc, "psnr": psnr, "mse_weight": weight}


class LisoFamily(LatentFamily):
    """LISO's update network and decoder, trained on the loss summed over the unrolled steps."""

    def __init__(self, cfg: dict[str, Any], out: Path, bank: ImageBank, model: Any):
        torch.manual_seed(cfg["seed"])
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
        settings = {"model": {"hidden": model.hidden, "data_depth": model.data_depth, "iters": model.iters,
                              "step": model.step, "jpeg": model.jpeg, "decoder_hidden": model.decoder.hidden},
                    **{k: cfg[k] for k in ("size", "batch", "seed", "gamma", "mse_weight")}}
        super().__init__(cfg, out, bank, model, opt, settings)

    def train_step(self, step: int) -> dict[str, Any]:
        c, model = self.cfg, self.net
        x, g = self.batch(step)
        bits = (torch.rand(c["batch"], model.data_depth, c["size"], c["size"], generator=g) > 0.5).float()
        xs = model.unroll(x, bits)
        loss, n = x.new_zeros(()), len(xs)
        for t, xt in enumerate(xs):
            bce = F.binary_cross_entropy_with_logits(model.decoder(model.channel(xt)), bits)
            loss = loss + c["gamma"] ** (n - 1 - t) * (bce + c["mse_weight"] * F.mse_loss(xt, x))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        self.opt.step()
        self._last = (x, bits, xs[-1])
        return {"step": step, "loss": loss.item()}

    @torch.no_grad()
    def log_row(self, row: dict[str, Any]) -> dict[str, Any]:
        x, bits, xt = self._last  # the last step's crops, bits and final iterate
        logits = self.net.decoder(self.net.channel(xt))  # (train mode: its BatchNorm statistics move, as before)
        mse = float(F.mse_loss(ste_uint8(xt), x))
        acc = float(((logits > 0).float() == bits).float().mean())
        return {**row, "acc": acc, "psnr": psnr_from_mse(max(mse, 1e-10), peak=1.0)}


def _run(family: LatentFamily, resume: bool, echo: Callable[[dict], None] | None, progress: bool,
         name: str) -> None:
    """Run a latent family on the loop (resumed from ``out``'s checkpoint with ``resume``)."""
    c = family.cfg
    runtime = setup_runtime("cpu", amp=bool(c.get("amp", False)))
    family.amp = runtime.amp
    loop = TrainLoop(family, LoopSettings(
        family.out, c["steps"], log_every=c["log_every"], log_first=True, ckpt_every=c["checkpoint_every"],
        batch=c["batch"], metrics="log.jsonl", name=name, progress=progress, on_log=echo or None), runtime)
    if resume:
        loop.resume()
        if loop.step >= c["steps"]:
            raise RobustHideError(f"the checkpoint in {family.out} is at step {loop.step}: raise --steps above it "
                                  "to resume")
    loop.run()
    if loop.stopped:
        where = (f"the checkpoint in {family.out} continues it (--resume)" if c["checkpoint_every"]
                 else "no weights written")
        raise RobustHideError(f"training stopped at step {loop.step} of {c['steps']}: {where}")


def _prepare(cfg: dict[str, Any], out: str | Path, data: str | Path,
             bank: ImageBank | None) -> tuple[Path, ImageBank]:
    """The output folder (made) and the photos (the train split of ``data``) of a checked config."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out, bank or ImageBank(data, split="train", max_side=cfg["max_side"], min_side=cfg["size"])


def train_codec(data: str | Path, out: str | Path, *, echo: Callable[[dict], None] | None = None,
                bank: ImageBank | None = None, resume: bool = False, init_from: str | Path | None = None,
                progress: bool = False, **settings: Any) -> ScaleHyperprior:
    """Train a learned codec (``arch``: ``hyperprior``, or ``elic``: the ELIC-style codec of elic.py) on the
    photos of ``data``; writes ``out/codec.safetensors`` and ``out/log.jsonl``. ``settings``: the keys of
    :data:`CODEC_SCHEMA` (steps, lmbda, N, M, size, batch, lr, aux_lr, seed, max_side, log_every, quality,
    arch, checkpoint_every, amp: bf16 autocast where the runtime grants it).

    ``resume`` continues from ``out``'s checkpoint up to ``steps``, appending to the log (the checkpoint keeps
    torch's RNG state, the rounding noise); the given ``lr`` replaces the saved learning rate. ``init_from``
    starts a new run (step 0, fresh optimisers) from the weights of a codec file or a run folder's
    checkpoint, e.g. to go on at a larger crop. ``echo`` gets every log row (the CLI prints them)."""
    if resume and init_from is not None:
        raise RobustHideError("give --resume or --init-from, not both")
    cfg = load_with_schema(CODEC_SCHEMA, settings)
    if cfg["size"] % 64:
        raise RobustHideError(f"codec crops must be a multiple of 64 px (the latent stride), got {cfg['size']}")
    out, bank = _prepare(cfg, out, data, bank)
    family = CodecFamily(cfg, out, bank)
    if init_from is not None:
        load_model_weights(init_from, family.net)
    _run(family, resume, echo, progress, "codec")
    model = family.net.eval()
    model.update()
    model.meta = {"lmbda": str(cfg["lmbda"]), "steps": str(cfg["steps"]), "size": str(cfg["size"]),
                  "quality": cfg["quality"] or str(cfg["lmbda"])}
    save_codec(model, out / "codec.safetensors")
    return model


def train_decoder(data: str | Path, out: str | Path, *, echo: Callable[[dict], None] | None = None,
                  bank: ImageBank | None = None, resume: bool = False, progress: bool = False,
                  codec: torch.nn.Module | None = None, init_decoder: BasicDecoder | None = None,
                  **settings: Any) -> BasicDecoder:
    """Train encoder + decoder; writes ``out/decoder.safetensors`` (decoder only) and ``out/log.jsonl``.
    ``settings``: the keys of :data:`DECODER_SCHEMA` (steps, data_depth, hidden, size, batch, lr, mse_weight,
    seed, max_side, log_every, checkpoint_every, target_psnr: :meth:`DecoderFamily.steer`); ``resume``, ``echo``:
    as :func:`train_codec`. ``codec``: a
    frozen learned codec the decoder reads through (:meth:`DecoderFamily.seen`; crops a multiple of 64 px);
    ``init_decoder``: the decoder's starting weights (same depth and hidden width)."""
    cfg = load_with_schema(DECODER_SCHEMA, settings)
    if codec is not None and cfg["size"] % 64:
        raise RobustHideError(f"crops read through a codec must be a multiple of 64 px, got {cfg['size']}")
    out, bank = _prepare(cfg, out, data, bank)
    family = DecoderFamily(cfg, out, bank, codec=codec, init_decoder=init_decoder)
    _run(family, resume, echo, progress, "decoder")
    dec = family.net["dec"].eval()
    extra = {k: family.settings[k] for k in ("codec", "init_decoder") if k in family.settings}
    save_decoder(dec, out / "decoder.safetensors", steps=cfg["steps"], size=cfg["size"], seed=cfg["seed"], **extra)
    return dec


def train_liso(data: str | Path, out: str | Path, model: Any, cfg: Any = None, init_decoder: BasicDecoder | None = None,
               echo: Callable[[dict], None] | None = None, bank: ImageBank | None = None, resume: bool = False,
               progress: bool = False) -> Any:
    """Train a :class:`robusthide.latent.liso.Liso` model's update network and decoder together (the decoder
    starting from ``init_decoder`` when given); writes ``out/liso.safetensors`` and ``out/log.jsonl``.
    ``cfg``: a :class:`~robusthide.latent.liso.LisoTrainConfig` or a dict of :data:`LISO_SCHEMA` keys."""
    from robusthide.latent.liso import save_liso

    settings = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg or {})
    c = load_with_schema(LISO_SCHEMA, settings)
    out, bank = _prepare(c, out, data, bank)
    if init_decoder is not None:
        if (init_decoder.data_depth, init_decoder.hidden) != (model.data_depth, model.decoder.hidden):
            raise RobustHideError("the initial decoder's depth / width do not match the LISO model's")
        model.decoder.load_state_dict(init_decoder.state_dict())
    family = LisoFamily(c, out, bank, model)
    _run(family, resume, echo, progress, "liso")
    model.eval()
    save_liso(model, out / "liso.safetensors", steps=c["steps"], size=c["size"], batch=c["batch"], lr=c["lr"],
              gamma=c["gamma"], mse_weight=c["mse_weight"], seed=c["seed"],
              init_decoder=getattr(init_decoder, "spec", "") if init_decoder is not None else "")
    return model
