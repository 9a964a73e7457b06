"""The watermark family's step on the one training loop (:mod:`robusthide.training.loop`): real codecs in
the loop, bf16 autocast, DDP.

Every source of randomness of a step (crops, messages, noise draws) comes from a generator that is a
pure function of (seed, step, rank), and the learning rate and loss weights are functions of the step
and of state saved in the checkpoint; so ``--resume`` continues exactly where a run stopped. The loop
owns the run, the logs, the checkpoints (``model.*``, ``optim.*``, ``d_optim.*`` + JSON) and the stop.

Losses (configurable, after HiDDeN/MBRS): message BCE on logits (or an MSE: :func:`message_loss`) plus an
image MSE whose weight is adapted by dual ascent to hold ``target_psnr``; the message path is warmed up
first (image loss off for ``warmup_msg_steps``, then ramped in over ``ramp_steps``). ``jnd_weight`` adds
the mean squared ratio of the residual (before the per-pixel cap) to a per-pixel JND
(:meth:`robusthide.nets.masking.PerceptualMask.jnd`), which moves the mark from flat areas into texture.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from robusthide import RobustHideError
from robusthide.metrics import psnr_from_mse
from robusthide.nets.registry import create_model
from robusthide.training.adversary import adversarial_losses, generator_parameters
from robusthide.training.checkpoint import load_model_weights, pack_checkpoint, unpack_checkpoint
from robusthide.training.data import step_generator
from robusthide.training.loop import (
    Family,
    LoopSettings,
    TrainLoop,
    compile_nets,
    cosine,
    image_banks,
    setup_runtime,
)
from robusthide.training.strategies import build_strategy


def model_from_config(cfg: dict[str, Any]) -> torch.nn.Module:
    m = dict(cfg["model"])
    arch = m.pop("arch")
    return create_model(arch, **m)


class EmbedAttackDecode(torch.nn.Module):
    """One training forward pass: embed, attack (at full resolution), decode. DDP wraps this module."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, cover, bits, attack, gen, amp: bool, jnd: bool = False, jnd_lum_max: float | None = None):
        """(marked, logits, jnd_mse): ``jnd_mse`` (with ``jnd``) is the mean squared ratio of the uncapped
        working-size residual to the per-pixel JND of the small cover (``train.jnd_weight``), else None."""
        dev = cover.device.type
        jnd_mse = None
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
            if jnd:
                marked, unbounded, small = self.model.embed_parts(cover, bits)
                jnd_mse = (unbounded.float() / self.model.mask.jnd(small, jnd_lum_max)).pow(2).mean()
            else:
                marked = self.model.embed(cover, bits)
            marked = marked.float()
        attacked = attack(marked, cover, gen)
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
            logits = self.model.decode(attacked.contiguous(memory_format=torch.channels_last))
        return marked, logits.float(), jnd_mse


def message_loss(logits: torch.Tensor, bits: torch.Tensor, kind: str) -> torch.Tensor:
    """The message loss ``train.msg_loss`` of bit logits (positive = bit 1) against bits in {0, 1}.

    * ``bce`` -- binary cross-entropy on the logits;
    * ``mse`` -- MSE of sigmoid(logits) against the bits;
    * ``mse-raw`` -- HiDDeN's code: MSE of the decoder's raw output y against the {0, 1} bits, read as
      y = 1/2 + logit (its decoded bit is y > 1/2, ours logit > 0: the same bit). Its gradient at logit 0 is
      4 times that of ``mse`` (no sigmoid slope of 1/4), and it does not fade as the logits grow.
    """
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, bits)
    if kind == "mse":
        return F.mse_loss(torch.sigmoid(logits), bits)
    if kind == "mse-raw":
        return F.mse_loss(logits, bits - 0.5)
    raise RobustHideError(f"unknown train.msg_loss '{kind}' (bce, mse, mse-raw)")


def bit_errors(logits: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    return ((logits > 0).float() != bits).float().mean()


class Trainer(Family):
    """The watermark family on the one loop (:class:`robusthide.training.loop.TrainLoop`)."""

    def __init__(self, cfg: dict[str, Any], resume: bool = False, device: str | None = None,
                 progress: bool = True, compile: bool = False):
        """``compile``: the nets run through ``torch.compile`` (:func:`robusthide.training.loop.compile_nets`;
        a setting of the process like ``device``, not of the config, so a run resumes either way)."""
        self.cfg = cfg
        t = cfg["train"]
        rt = setup_runtime(device, threads=t.get("threads"), amp=t.get("amp", True), distributed=True)
        self.device, self.amp, self.ddp, self.rank, self.world = rt.device, rt.amp, rt.ddp, rt.rank, rt.world
        self.run_dir = Path(cfg["out"]) / cfg["name"]
        self.progress = progress and self.rank == 0
        torch.manual_seed(cfg["seed"])
        self.model = model_from_config(cfg).to(self.device)
        if t.get("channels_last", True):
            self.model = self.model.to(memory_format=torch.channels_last)
        if compile:
            compile_nets(self.model)
        self.strategy = build_strategy(cfg)
        self.opt = torch.optim.Adam(list(generator_parameters(self.model)), lr=t["lr"])
        if float(t.get("jnd_weight") or 0.0) > 0 and not hasattr(self.model, "embed_parts"):
            raise RobustHideError(f"train.jnd_weight > 0 but architecture '{cfg['model']['arch']}' has no masked "
                                  "residual (use a WatermarkModel architecture such as 'lean')")
        self.adv_weight = float(t.get("adv_weight") or 0.0)
        self.d_opt = None
        if self.adv_weight > 0:
            if getattr(self.model, "discriminator", None) is None:
                raise RobustHideError(f"train.adv_weight > 0 but architecture '{cfg['model']['arch']}' has no "
                                      "discriminator")
            self.d_opt = torch.optim.Adam(self.model.discriminator.parameters(), lr=t["lr"])
        self.state: dict[str, Any] = {"step": 0, "img_weight": float(t["img_weight_init"]), "train_seconds": 0.0}
        self.loop = TrainLoop(self, LoopSettings(
            self.run_dir, t["steps"], log_every=25, val_every=int(cfg["val"].get("every") or 0),
            ckpt_every=cfg["ckpt"]["every"], keep=tuple(int(k) for k in cfg["ckpt"].get("keep", ())),
            batch=t["batch"], config=cfg, name=cfg["name"], progress=self.progress), rt)
        if resume:
            self.loop.resume()
        else:
            self.loop.check_fresh()
            if t.get("init_from"):
                fresh = load_model_weights(t["init_from"], self.model, partial=bool(t.get("init_partial")))
                if fresh:  # which tensors kept their fresh initialisation, beside the run's config
                    self.run_dir.mkdir(parents=True, exist_ok=True)
                    (self.run_dir / "init_fresh.json").write_text(json.dumps({"init_from": t["init_from"],
                                                                              "fresh": fresh}, indent=1) + "\n")
        self.net = EmbedAttackDecode(self.model)
        if self.ddp:
            self.net = torch.nn.parallel.DistributedDataParallel(self.net, find_unused_parameters=True)
        self.bank, self.val_bank = image_banks(cfg["data"], bool(cfg["val"].get("every")), max_side=1024)

    # -- schedules -------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        t = self.cfg["train"]
        return cosine(step, t["steps"], t["lr"], t["lr_final"])

    def img_ramp(self, step: int) -> float:
        t = self.cfg["train"]
        if step < t["warmup_msg_steps"]:
            return 0.0
        return min(1.0, (step - t["warmup_msg_steps"] + 1) / max(1, t["ramp_steps"]))

    # -- one step ----------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        """Run the next step (:meth:`train_step` of ``state["step"]``) and count it."""
        return self.loop.advance()

    def train_step(self, step: int) -> dict[str, float]:
        t = self.cfg["train"]
        gen = step_generator(self.cfg["seed"], step)
        sizes = t["full_size"] if isinstance(t["full_size"], list) else [t["full_size"]]
        full = sizes[int(torch.randint(len(sizes), (1,), generator=gen))]
        B = t["batch"]
        d = self.cfg["data"]
        cover = self.bank.sample(B, full, gen, max_zoom=float(d.get("max_zoom", 4.0)),
                                 whole_p=float(d.get("whole_p", 0.0)))
        bits = torch.randint(0, 2, (B, self.model.n_bits), generator=gen).float()
        if self.ddp:
            per = B // self.world
            cover, bits = cover[self.rank * per:(self.rank + 1) * per], bits[self.rank * per:(self.rank + 1) * per]
        cover = cover.to(self.device).contiguous(memory_format=torch.channels_last)
        bits = bits.to(self.device)
        attack, trainable = self.strategy.at(step)
        for p in self.model.encoder.parameters():
            p.requires_grad_(trainable == "all")
        noise_gen = step_generator(self.cfg["seed"] + 7919 * (self.rank + 1), step)
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(step)
        train_all = trainable == "all"
        jnd_w = float(t.get("jnd_weight") or 0.0) if train_all else 0.0
        marked, logits, jnd_mse = self.net(cover, bits, attack, noise_gen, self.amp, jnd_w > 0, t.get("jnd_lum_max"))
        msg_loss = message_loss(logits, bits, t["msg_loss"])
        mse = F.mse_loss(marked, cover.float())
        if t.get("img_weight_fixed") is not None:
            img_term = float(t["img_weight_fixed"]) * mse if train_all else 0.0
        else:
            target_mse = 10 ** (-t["target_psnr"] / 10)
            w_img = self.state["img_weight"] * self.img_ramp(step) if train_all else 0.0
            img_term = w_img * mse / target_mse
        loss = float(t.get("msg_weight", 1.0)) * msg_loss + img_term
        if jnd_mse is not None:
            loss = loss + jnd_w * jnd_mse
        d_loss = None
        if self.d_opt is not None and train_all:
            g_loss, d_loss = adversarial_losses(self.model.discriminator, cover.float(), marked,
                                                amp=self.amp and bool(t.get("adv_amp")))
            loss = loss + self.adv_weight * g_loss
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if d_loss is not None:
            self.d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            if self.ddp:
                for p in self.model.discriminator.parameters():
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= self.world
            self.d_opt.step()
        stats = torch.stack([loss.detach(), msg_loss.detach(), mse.detach(), bit_errors(logits.detach(), bits)])
        if self.ddp:
            dist.all_reduce(stats)
            stats /= self.world
            self._ddp_stats = stats  # kept until the next step: gloo frees its work later (TrainLoop._settle_ranks)
        loss_v, msg_v, mse_v, ber_v = (float(v) for v in stats)
        psnr = psnr_from_mse(max(mse_v, 1e-12), peak=1.0)
        ema = self.state.get("psnr_ema")
        ema = psnr if ema is None else 0.95 * ema + 0.05 * psnr
        self.state["psnr_ema"] = ema
        if self.img_ramp(step) > 0 and train_all and t.get("img_weight_fixed") is None:  # dual ascent
            w = self.state["img_weight"] * math.exp(t["img_weight_lr"] * (t["target_psnr"] - ema))
            self.state["img_weight"] = float(min(max(w, t.get("img_weight_min", 1e-3)), t.get("img_weight_max", 100.0)))
        row = {"step": step + 1, "loss": loss_v, "msg_loss": msg_v, "psnr": psnr, "ber": ber_v,
               "img_weight": self.state["img_weight"], "lr": self.lr_at(step)}
        if jnd_mse is not None:
            row["jnd_mse"] = float(jnd_mse.detach())
        return row

    # -- validation with real codecs -----------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        from robusthide.codecs import get_codec

        v = self.cfg["val"]
        covers = self.val_bank.fixed_set(v["n"], v["size"])
        bits = torch.randint(0, 2, (v["n"], self.model.n_bits), generator=torch.Generator().manual_seed(99)).float()
        self.model.eval()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            marked = self.model.embed(covers.to(self.device), bits.to(self.device)).float().cpu()
        marked = (marked * 255).round() / 255
        out = {"val_psnr": float(psnr_from_mse(((marked - covers) ** 2).mean(dim=(1, 2, 3)), peak=1.0).mean())}
        for tag, spec in (("identity", None), ("codec", v["codec"])):
            img = marked if spec is None else get_codec(spec)(marked).images
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.model.decode(img.to(self.device)).float().cpu()
            out[f"val_ber_{tag}"] = float(bit_errors(logits, bits))
        self.model.train()
        return out

    # -- checkpoints and the run -----------------------------------------------------------------------------
    def checkpoint(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return pack_checkpoint(self.model, self.opt, {"config": self.cfg}, extra={"d_optim": self.d_opt})

    def restore(self, tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
        unpack_checkpoint(self.run_dir, tensors, doc, self.model, self.opt, extra={"d_optim": self.d_opt})

    def start(self) -> None:
        self.model.train()

    def postfix(self, row: dict[str, Any]) -> dict[str, str]:
        return {"psnr": f"{row['psnr']:.1f}", "ber": f"{row['ber']:.3f}", "w": f"{row['img_weight']:.2g}"}

    def save(self) -> None:
        """Write the run's checkpoint now (rank 0)."""
        self.loop.save()

    def run(self, max_steps: int | None = None) -> dict[str, float]:
        """Train to ``train.steps`` (or ``max_steps``); the last step's metrics."""
        return self.loop.run(max_steps)
