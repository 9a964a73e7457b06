"""Training of the image-hiding pipeline of paper 003 (and of paper 000's codec-mixture variant).

``robusthide imagehide train CONFIG [--resume] [--set key=value] [--max-steps N]`` (robusthide/cli/cmd_imagehide.py)
or :func:`train`. Configs: ``configs/imagehide-003.yaml`` (paper 003: the
Paper003Attack simulator, JPEG always present) and ``configs/imagehide-000.yaml`` (paper 000 §4: real JPEG /
JPEG 2000 / WebP in batch slices, forward-real / backward-identity). :data:`DEFAULTS` lists every key.

One step (paper 003 Fig. 1):

1. ``B`` covers and ``n * B`` secrets: random crops of the training photos, a pure function of
   ``(seed, step)`` (:func:`robusthide.training.data.step_generator`);
2. ``M, R = E(C, S)``, ``M = C + R``; ``M`` is clamped to [0, 1] and rounded to 8 bits with an identity
   gradient (a container is saved as an 8-bit image) -- ``train.quantize``;
3. the attack layer (any :func:`robusthide.attacks.build_attack` spec; its random generators are re-seeded
   from ``(seed, step)`` every step); for ``attack.warmup_steps`` steps no attack (ours, optional);
4. ``R^, C^ = D(attacked)``, ``S^ = R(R^)`` (progressive recovery), generator loss of
   :mod:`robusthide.imagehiding.losses` -> Adam step of ``E, D, R``;
5. LS-GAN step of ``D_M`` (covers vs containers) and ``D_S`` (secrets vs revealed images).

Exact resume: networks, both Adam states, BatchNorm statistics and the trainer state (step, the optional
PSNR controller) are in the checkpoint; the data, the attack draws and the learning rate are functions of
the step. Checkpoints: :mod:`robusthide.imagehiding.checkpoint` (safetensors + JSON, atomic). Metrics:
``<out>/<name>/metrics.jsonl`` (one JSON object per logged step and per validation). CUDA when available
(else CPU); ``train.amp`` runs the networks under bf16 autocast (CUDA, or CPUs with bf16 support).
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from robusthide import RobustHideError
from robusthide.attacks import build_attack
from robusthide.attacks.base import straight_through
from robusthide.imagehiding.checkpoint import load_training_checkpoint, save_training_checkpoint
from robusthide.imagehiding.losses import DEFAULT_WEIGHTS, check_weights, generator_losses, lsgan_d
from robusthide.imagehiding.nets import ARCH_KEYS, Discriminators, HidingNetwork, check_model_kwargs
from robusthide.metrics import psnr_from_mse
from robusthide.training.config import Schema, load_with_schema
from robusthide.training.data import ImageBank, step_generator
from robusthide.training.hardware import cpu_has_bf16

DEFAULTS: dict[str, Any] = {
    "name": "imagehide",
    "seed": 0,
    # HidingNetwork keywords (robusthide.imagehiding.nets.ARCH_KEYS)
    "model": {"n_secrets": 1, "size": 64, "channels": [16, 32, 64, 64], "norm": "batch", "act": "elu",
              "multi_branch": True, "progressive": True, "amplify": 10.0},
    # PatchGAN discriminators; enabled = false is the ablation "without any discriminator"
    "disc": {"enabled": True, "channels": 32, "layers": 3, "norm": "batch"},
    "data": {"train": "data/photos/train", "val": None, "split": True, "max_side": 384},
    "attack": {"spec": "paper003", "warmup_steps": 0},
    "loss": {},  # robusthide.imagehiding.losses.DEFAULT_WEIGHTS
    "train": {
        "steps": 4000,
        "batch": 8,
        "lr": 1e-3,           # generator (E, D, R); paper 003: Adam, default betas, lr lost in the text
        "lr_d": 2e-4,         # discriminators
        "lr_final": 0.1,      # cosine decay to this fraction of lr / lr_d
        "quantize": True,     # container clamped and rounded to 8 bits (identity gradient)
        "target_psnr": None,  # optional: adapt loss.container to hold this container PSNR (dB)
        "target_lr": 0.002,   # its step per dB of (smoothed) shortfall
        "amp": False,         # bf16 autocast for the networks
        "threads": 0,         # torch CPU threads, 0 = torch's default
        "deterministic": True,  # cuDNN deterministic algorithms
        "log_every": 10,
    },
    "val": {"every": 250, "n": 16, "codecs": ["jpeg:q=50"]},
    "ckpt": {"every": 100},
    "out": "runs",
}


#: the image-hiding trainer's config, checked by the one loader (:mod:`robusthide.training.config`); the
#: model and loss sections are then normalised by :func:`check_model_kwargs` and :func:`check_weights`
SCHEMA = Schema(
    DEFAULTS,
    types={"model.channels": "list[int]", "model.amplify": "number", "data.val": "str?",
           "train.target_psnr": "number?", "val.codecs": "list[str]",
           **{f"loss.{k}": "str" if k == "distance" else "number" for k in DEFAULT_WEIGHTS}},
    ranges={"seed": (0, None), "disc.channels": (1, None), "disc.layers": (1, None), "data.max_side": (1, None),
            "attack.warmup_steps": (0, None), "train.steps": (1, None), "train.batch": (1, None),
            "train.lr": (0, None), "train.lr_d": (0, None), "train.lr_final": (0, None),
            "train.target_psnr": (0, None), "train.target_lr": (0, None), "train.threads": (0, None),
            "train.log_every": (0, None), "val.every": (0, None), "val.n": (1, None), "ckpt.every": (1, None)},
    open={"model": lambda cfg: ARCH_KEYS, "loss": lambda cfg: tuple(DEFAULT_WEIGHTS)},
)


def load_config(path: str | Path | dict[str, Any] | None = None,
                overrides: list[str] | None = None) -> dict[str, Any]:
    """:data:`DEFAULTS` updated by a YAML file (or a dict) and ``key.sub=value`` overrides; validated."""
    cfg = load_with_schema(SCHEMA, path, overrides)
    cfg["model"] = check_model_kwargs(cfg["model"])
    cfg["loss"] = check_weights(cfg["loss"])
    return cfg


def attack_generators(module: torch.nn.Module) -> list[torch.Generator]:
    """The distinct ``torch.Generator`` objects of an attack layer tree (in module order)."""
    seen: dict[int, torch.Generator] = {}
    for m in module.modules():
        g = getattr(m, "generator", None)
        if isinstance(g, torch.Generator) and id(g) not in seen:
            seen[id(g)] = g
    return list(seen.values())



def quantize_ste(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to 8-bit levels in the forward pass; identity gradient."""
    return straight_through(x, (x.detach().clamp(0, 1) * 255).round() / 255)


def _psnr(mse: float) -> float:
    return psnr_from_mse(max(mse, 1e-12), peak=1.0)


class ImageHideTrainer:
    """Seeded, exactly resumable trainer of :class:`HidingNetwork` + :class:`Discriminators`."""

    def __init__(self, cfg: dict[str, Any], resume: bool = False, device: str | None = None,
                 progress: bool = True):
        self.cfg = cfg
        t = cfg["train"]
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except RuntimeError as e:
            raise RobustHideError(f"bad device {device!r}: {e}") from None
        if t.get("threads"):
            torch.set_num_threads(int(t["threads"]))
        if self.device.type == "cuda" and t.get("deterministic", True):
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        torch.set_flush_denormal(True)
        self.amp = bool(t.get("amp")) and (self.device.type == "cuda" or cpu_has_bf16())
        self.run_dir = Path(cfg["out"]) / cfg["name"]
        self.progress = progress
        self.loss_w = cfg["loss"]
        torch.manual_seed(cfg["seed"])
        self.gen_net = HidingNetwork(**cfg["model"]).to(self.device)
        d = cfg["disc"]
        self.disc_on = bool(d.get("enabled", True)) and (self.loss_w["adv_container"] > 0
                                                        or self.loss_w["adv_secret"] > 0)
        self.disc = Discriminators(d["channels"], d["layers"], d["norm"]).to(self.device)
        self.opt_g = torch.optim.Adam(self.gen_net.parameters(), lr=t["lr"])
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=t["lr_d"])
        self.attack = build_attack(cfg["attack"]["spec"], seed=cfg["seed"]).to(self.device)
        self.attack_gens = attack_generators(self.attack)
        self.state: dict[str, Any] = {"step": 0, "train_seconds": 0.0, "container_weight": None,
                                      "psnr_ema": None}
        if resume:
            doc = load_training_checkpoint(self.run_dir, self.gen_net, self.disc, self.opt_g, self.opt_d)
            if doc.get("arch") != self.gen_net.arch:
                raise RobustHideError(f"{self.run_dir}: the checkpoint's model {doc.get('arch')} differs from "
                                      f"the config's {self.gen_net.arch}")
            self.state.update(doc["state"])
        elif (self.run_dir / "latest.json").exists():
            raise RobustHideError(f"{self.run_dir} already has a checkpoint: use --resume, or another name")
        dc, size = cfg["data"], cfg["model"]["size"]
        split = "train" if dc.get("split") else None
        self.bank = ImageBank(dc["train"], split, max_side=dc.get("max_side", 384), min_side=size)
        self.val_bank: ImageBank | None = None
        if cfg["val"].get("every"):
            vdir, vsplit = (dc["val"], None) if dc.get("val") else (dc["train"], "val" if dc.get("split") else None)
            self.val_bank = ImageBank(vdir, vsplit, max_side=dc.get("max_side", 384), min_side=size)
        self._stop = False

    # -- schedules -------------------------------------------------------------------------------------
    def lr_factor(self, step: int) -> float:
        """Cosine decay from 1 to ``train.lr_final`` over ``train.steps``."""
        t = self.cfg["train"]
        frac = min(1.0, step / max(1, t["steps"]))
        return t["lr_final"] + 0.5 * (1 - t["lr_final"]) * (1 + math.cos(math.pi * frac))

    def _seed_step(self, step: int) -> torch.Generator:
        seed = self.cfg["seed"]
        torch.manual_seed((seed * 7_368_787 + step) % (2**63 - 1))
        for i, g in enumerate(self.attack_gens):
            g.manual_seed((seed * 1_000_003 + step * 9_176 + 31 * i + 17) % (2**63 - 1))
        return step_generator(seed, step)

    def batch(self, gen: torch.Generator) -> tuple[torch.Tensor, list[torch.Tensor]]:
        B, n, size = self.cfg["train"]["batch"], self.gen_net.n_secrets, self.gen_net.size
        imgs = self.bank.sample(B * (1 + n), size, gen).to(self.device)
        return imgs[:B], [imgs[B * (i + 1):B * (i + 2)] for i in range(n)]

    # -- one step --------------------------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        t, step = self.cfg["train"], self.state["step"]
        gen = self._seed_step(step)
        cover, secrets = self.batch(gen)
        f = self.lr_factor(step)
        for g in self.opt_g.param_groups:
            g["lr"] = t["lr"] * f
        for g in self.opt_d.param_groups:
            g["lr"] = t["lr_d"] * f
        dev, amp = self.device.type, self.amp
        net, disc = self.gen_net, self.disc
        # generator step
        disc.requires_grad_(False)
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
            container, residual = net.hide(cover, secrets)
        container, residual = container.float(), residual.float()
        x = quantize_ste(container) if t.get("quantize", True) else container
        warm = step < self.cfg["attack"].get("warmup_steps", 0)
        attacked = x if warm else self.attack(x, cover)
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
            revealed, r_hat, c_hat = net.reveal(attacked.float())
            dm = disc.container(x) if self.disc_on else None
            ds = disc.secret(torch.cat(revealed)) if self.disc_on else None
            teacher = (net.revealer(net.amplify * residual) if net.progressive and self.loss_w["teacher"] > 0
                       else None)
        revealed = [s.float() for s in revealed]
        cw = self.state.get("container_weight")
        loss_g, terms = generator_losses(self.loss_w, cover, secrets, container, residual, revealed,
                                         None if r_hat is None else r_hat.float(),
                                         None if c_hat is None else c_hat.float(), net.amplify, dm, ds,
                                         container_weight=cw,
                                         revealed_teacher=None if teacher is None else [s.float() for s in teacher])
        if not math.isfinite(float(loss_g.detach())):
            raise RobustHideError(f"the loss became {float(loss_g.detach())} at step {step}: lower train.lr")
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        # discriminator step (LS-GAN)
        loss_d = 0.0
        if self.disc_on:
            disc.requires_grad_(True)
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
                ld = lsgan_d(disc.container(cover), disc.container(x.detach()))
                ld = ld + lsgan_d(disc.secret(torch.cat(secrets)), disc.secret(torch.cat(revealed).detach()))
            self.opt_d.zero_grad(set_to_none=True)
            ld.backward()
            self.opt_d.step()
            loss_d = float(ld.detach())
        # bookkeeping
        with torch.no_grad():
            mse_c = float(((x.detach() - cover) ** 2).mean())
            mse_s = float(torch.stack([((s.clamp(0, 1) - g) ** 2).mean() for s, g in zip(revealed, secrets)]).mean())
        psnr_c = _psnr(mse_c)
        ema = self.state.get("psnr_ema")
        ema = psnr_c if ema is None else 0.95 * ema + 0.05 * psnr_c
        self.state["psnr_ema"] = ema
        if t.get("target_psnr") is not None:
            w = self.loss_w["container"] if cw is None else cw
            w *= math.exp(float(t["target_lr"]) * (float(t["target_psnr"]) - ema))
            self.state["container_weight"] = float(min(max(w, 1e-3), 1e3))
        self.state["step"] = step + 1
        row: dict[str, Any] = {"step": step + 1, "loss_g": float(loss_g.detach()), "loss_d": loss_d,
                               "psnr_container": psnr_c, "psnr_secret": _psnr(mse_s), "lr": t["lr"] * f}
        row.update({f"l_{k}": v for k, v in terms.items()})
        if self.state.get("container_weight") is not None:
            row["container_weight"] = self.state["container_weight"]
        branch = "warmup" if warm else getattr(self.attack, "last_choice", None)
        if branch is not None:
            row["attack"] = branch if isinstance(branch, str) else int(branch)
        return row

    # -- validation with real codecs -------------------------------------------------------------------
    def val_set(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        assert self.val_bank is not None
        n, k = self.cfg["val"]["n"], self.gen_net.n_secrets
        size = self.gen_net.size
        covers = self.val_bank.fixed_set(n, size, seed=1234)
        return covers, [self.val_bank.fixed_set(n, size, seed=2345 + i) for i in range(k)]

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Container PSNR and revealed-secret PSNR with no attack and after each ``val.codecs`` (real codecs
        on the 8-bit container), on a fixed validation set."""
        from robusthide.codecs import get_codec
        from robusthide.metrics import psnr

        covers, secrets = self.val_set()
        net = self.gen_net
        net.eval()
        try:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                m, _ = net.hide(covers.to(self.device), [s.to(self.device) for s in secrets])
            m = (m.float().clamp(0, 1) * 255).round().cpu() / 255
            out = {"val_psnr_container": psnr(covers, m)}
            for spec in [None, *self.cfg["val"].get("codecs", [])]:
                img = m if spec is None else get_codec(spec)(m).images
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    rev, _, _ = net.reveal(img.to(self.device))
                tag = "none" if spec is None else spec
                out[f"val_psnr_secret[{tag}]"] = float(sum(psnr(s, r.float().clamp(0, 1).cpu())
                                                            for s, r in zip(secrets, rev)) / len(rev))
        finally:
            net.train()
        return out

    # -- loop ------------------------------------------------------------------------------------------
    def _log(self, row: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def save(self) -> None:
        save_training_checkpoint(self.run_dir, self.gen_net, self.disc, self.opt_g, self.opt_d,
                                 {"step": self.state["step"], "state": self.state, "config": self.cfg,
                                  "arch": self.gen_net.arch})

    def run(self, max_steps: int | None = None) -> dict[str, Any]:
        """Train to ``train.steps`` (or ``max_steps``); save a checkpoint at the end (also on SIGTERM)."""
        t = self.cfg["train"]
        total = t["steps"] if max_steps is None else min(t["steps"], max_steps)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(self.cfg, indent=1))
        old = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop", True))
        except ValueError:  # not the main thread
            old = None
        self.gen_net.train()
        self.disc.train()
        bar = tqdm(total=total, initial=min(self.state["step"], total), disable=not self.progress,
                   desc=self.cfg["name"], dynamic_ncols=True)
        last: dict[str, Any] = {}
        t0, n0 = time.time(), self.state["step"]
        every = max(1, int(t.get("log_every", 10)))
        try:
            while self.state["step"] < total and not self._stop:
                ts = time.time()
                last = self.step()
                self.state["train_seconds"] += time.time() - ts
                step = self.state["step"]
                if step % every == 0 or step == total:
                    last["img_per_s"] = (step - n0) * t["batch"] / max(1e-9, time.time() - t0)
                    last["train_seconds"] = self.state["train_seconds"]
                    self._log(last)
                    bar.set_postfix(c=f"{last['psnr_container']:.1f}", s=f"{last['psnr_secret']:.1f}")
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
            if old is not None:
                signal.signal(signal.SIGTERM, old)
        return last


def train(config: str | Path | dict[str, Any], overrides: list[str] | None = None, resume: bool = False,
          max_steps: int | None = None, device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Load a config, train, return the last metrics row."""
    cfg = load_config(config, overrides)
    if resume:
        ck = Path(cfg["out"]) / cfg["name"] / "latest.json"
        if not ck.exists():
            raise RobustHideError(f"resume: no checkpoint at {ck}")
    return ImageHideTrainer(cfg, resume=resume, device=device, progress=progress).run(max_steps)
