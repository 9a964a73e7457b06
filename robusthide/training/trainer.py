"""The training loop: seeded, resumable exactly, bf16 autocast, real codecs in the loop, DDP-ready.

Every source of randomness of a step (crops, messages, noise draws) comes from a generator that is a
pure function of (seed, step, rank), and the learning rate and loss weights are functions of the step
and of state saved in the checkpoint; so ``--resume`` continues exactly where a run stopped.

Losses (configurable, after HiDDeN/MBRS): message BCE on logits (or MSE on sigmoid outputs) plus an
image MSE whose weight is adapted by dual ascent to hold ``target_psnr``; the message path is warmed up
first (image loss off for ``warmup_msg_steps``, then ramped in over ``ramp_steps``). ``jnd_weight`` adds
the mean squared ratio of the residual (before the per-pixel cap) to a per-pixel JND
(:meth:`robusthide.nets.masking.PerceptualMask.jnd`), which moves the mark from flat areas into texture.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from robusthide import RobustHideError
from robusthide.metrics import psnr_from_mse
from robusthide.nets.registry import create_model
from robusthide.training.adversary import adversarial_losses, generator_parameters
from robusthide.training.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from robusthide.training.data import ImageBank, step_generator
from robusthide.training.hardware import cpu_has_bf16
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


def bit_errors(logits: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    return ((logits > 0).float() != bits).float().mean()


class Trainer:
    def __init__(self, cfg: dict[str, Any], resume: bool = False, device: str | None = None,
                 progress: bool = True):
        self.cfg = cfg
        t = cfg["train"]
        self.ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.ddp and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
        self.rank = dist.get_rank() if self.ddp else 0
        self.world = dist.get_world_size() if self.ddp else 1
        if device is None:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if t.get("threads"):
            torch.set_num_threads(int(t["threads"]))
        torch.set_flush_denormal(True)  # denormals make CPU training crawl when losses get tiny
        self.amp = bool(t.get("amp", True)) and (self.device.type == "cuda" or cpu_has_bf16())
        self.run_dir = Path(cfg["out"]) / cfg["name"]
        self.progress = progress and self.rank == 0
        torch.manual_seed(cfg["seed"])
        self.model = model_from_config(cfg).to(self.device)
        if t.get("channels_last", True):
            self.model = self.model.to(memory_format=torch.channels_last)
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
        if resume:
            doc = load_checkpoint(self.run_dir, self.model, self.opt, extra={"d_optim": self.d_opt})
            self.state.update(doc["state"])
        elif (self.run_dir / "latest.json").exists():
            raise RobustHideError(f"{self.run_dir} already has a checkpoint: use --resume, or another name")
        elif t.get("init_from"):
            load_model_weights(t["init_from"], self.model)
        self.net = EmbedAttackDecode(self.model)
        if self.ddp:
            self.net = torch.nn.parallel.DistributedDataParallel(self.net, find_unused_parameters=True)
        d = cfg["data"]
        split = "train" if d.get("split") else None
        self.bank = ImageBank(d["train"], split, max_side=d.get("max_side", 1024))
        self.val_bank = None
        if cfg["val"].get("every"):
            vdir, vsplit = (d["val"], None) if d.get("val") else (d["train"], "val" if d.get("split") else None)
            self.val_bank = ImageBank(vdir, vsplit, max_side=d.get("max_side", 1024))
        self._stop = False

    # -- schedules -------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        t = self.cfg["train"]
        frac = min(1.0, step / max(1, t["steps"]))
        return t["lr_final"] + 0.5 * (t["lr"] - t["lr_final"]) * (1 + math.cos(math.pi * frac))

    def img_ramp(self, step: int) -> float:
        t = self.cfg["train"]
        if step < t["warmup_msg_steps"]:
            return 0.0
        return min(1.0, (step - t["warmup_msg_steps"] + 1) / max(1, t["ramp_steps"]))

    # -- one step ----------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        t, step = self.cfg["train"], self.state["step"]
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
        if t["msg_loss"] == "bce":
            msg_loss = F.binary_cross_entropy_with_logits(logits, bits)
        else:
            msg_loss = F.mse_loss(torch.sigmoid(logits), bits)
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
            g_loss, d_loss = adversarial_losses(self.model.discriminator, cover.float(), marked)
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
        loss_v, msg_v, mse_v, ber_v = (float(v) for v in stats)
        psnr = psnr_from_mse(max(mse_v, 1e-12), peak=1.0)
        ema = self.state.get("psnr_ema")
        ema = psnr if ema is None else 0.95 * ema + 0.05 * psnr
        self.state["psnr_ema"] = ema
        if self.img_ramp(step) > 0 and train_all and t.get("img_weight_fixed") is None:  # dual ascent
            w = self.state["img_weight"] * math.exp(t["img_weight_lr"] * (t["target_psnr"] - ema))
            self.state["img_weight"] = float(min(max(w, t.get("img_weight_min", 1e-3)), t.get("img_weight_max", 100.0)))
        self.state["step"] = step + 1
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

    # -- loop ------------------------------------------------------------------------------------------
    def _log(self, row: dict[str, Any]) -> None:
        if self.rank == 0:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

    def save(self) -> None:
        if self.rank == 0:
            save_checkpoint(self.run_dir, self.model, self.opt, {"state": self.state, "config": self.cfg},
                            extra={"d_optim": self.d_opt})

    def run(self, max_steps: int | None = None) -> dict[str, float]:
        t = self.cfg["train"]
        total = t["steps"] if max_steps is None else min(t["steps"], max_steps)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            (self.run_dir / "config.json").write_text(json.dumps(self.cfg, indent=1))
        old = signal.getsignal(signal.SIGTERM)
        if self.rank == 0 and hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop", True))
        self.model.train()
        bar = tqdm(total=total, initial=self.state["step"], disable=not self.progress, desc=self.cfg["name"],
                   dynamic_ncols=True)
        last: dict[str, float] = {}
        t0, n0 = time.time(), self.state["step"]
        try:
            while self.state["step"] < total and not self._stop:
                ts = time.time()
                last = self.step()
                self.state["train_seconds"] += time.time() - ts
                step = self.state["step"]
                if step % 25 == 0 or step == total:
                    last["img_per_s"] = (step - n0) * t["batch"] / max(1e-9, time.time() - t0)
                    last["train_seconds"] = self.state["train_seconds"]
                    self._log(last)
                    bar.set_postfix(psnr=f"{last['psnr']:.1f}", ber=f"{last['ber']:.3f}", w=f"{last['img_weight']:.2g}")
                if self.val_bank is not None and (step % self.cfg["val"]["every"] == 0 or step == total):
                    vrow = dict(step=step, **self.validate())
                    self._log(vrow)
                    last.update(vrow)
                if step % self.cfg["ckpt"]["every"] == 0:
                    self.save()
                bar.update(1)
        finally:
            bar.close()
            self.save()
            if self.rank == 0 and hasattr(signal, "SIGTERM"):
                signal.signal(signal.SIGTERM, old)
        return last

