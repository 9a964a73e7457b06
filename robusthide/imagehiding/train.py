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
the step. The run itself (cadences, logs, checkpoints, SIGTERM / Ctrl-C stop) is the one training loop,
:mod:`robusthide.training.loop`. Checkpoints: :mod:`robusthide.imagehiding.checkpoint` (safetensors + JSON,
atomic). Metrics:
``<out>/<name>/metrics.jsonl`` (one JSON object per logged step and per validation). CUDA when available
(else CPU); ``train.amp`` runs the networks under bf16 autocast (CUDA, or CPUs with bf16 support).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from robusthide import RobustHideError
from robusthide.attacks import build_attack
from robusthide.attacks.base import straight_through
from robusthide.imagehiding.checkpoint import (
    generator_weights,
    read_training_checkpoint,
    restore_training_checkpoint,
    training_tensors,
)
from robusthide.imagehiding.losses import DEFAULT_WEIGHTS, check_weights, generator_losses, lsgan_d
from robusthide.imagehiding.nets import Discriminators, check_model_kwargs, create_hiding_network, model_keys
from robusthide.metrics import psnr_from_mse
from robusthide.training.config import Schema, load_with_schema
from robusthide.training.data import step_generator
from robusthide.training.loop import Family, LoopSettings, TrainLoop, cosine, image_banks, setup_runtime

DEFAULTS: dict[str, Any] = {
    "name": "imagehide",
    "seed": 0,
    # arch unet (paper 003, robusthide.imagehiding.nets.ARCH_KEYS; its other keys default as in
    # check_model_kwargs: channels [16, 32, 64, 64], batch norm, elu, multi_branch, progressive, amplify 10)
    # or arch hinet (robusthide.imagehiding.invertible.INVERTIBLE_KEYS)
    "model": {"arch": "unet", "n_secrets": 1, "size": 64},
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
        "grad_clip": 0.0,     # clip the generator's gradient to this global norm (0 = off)
        "quantize": True,     # container clamped and rounded to 8 bits (identity gradient)
        "init_from": None,    # optional: start from the hiding network of a run folder or an exported model
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
    types={"model.channels": "list[int]", "model.amplify": "number", "model.norm": "str", "model.act": "str",
           "model.multi_branch": "bool", "model.progressive": "bool", "model.blocks": "int", "model.hidden": "int",
           "model.clamp": "number", "model.restore": "bool", "data.val": "str?",
           "train.target_psnr": "number?", "train.init_from": "str?", "val.codecs": "list[str]",
           **{f"loss.{k}": "str" if k == "distance" else "number" for k in DEFAULT_WEIGHTS}},
    ranges={"seed": (0, None), "disc.channels": (1, None), "disc.layers": (1, None), "data.max_side": (1, None),
            "attack.warmup_steps": (0, None), "train.steps": (1, None), "train.batch": (1, None),
            "train.lr": (0, None), "train.lr_d": (0, None), "train.lr_final": (0, None), "train.grad_clip": (0, None),
            "train.target_psnr": (0, None), "train.target_lr": (0, None), "train.threads": (0, None),
            "train.log_every": (0, None), "val.every": (0, None), "val.n": (1, None), "ckpt.every": (1, None)},
    open={"model": lambda cfg: model_keys((cfg.get("model") or {}).get("arch")),
          "loss": lambda cfg: tuple(DEFAULT_WEIGHTS)},
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



def same_weights_layout(a: Any, b: dict[str, Any]) -> bool:
    """Whether a checkpoint of architecture ``a`` can continue as ``b``. The invertible network is fully
    convolutional, so its working ``size`` may change on resume (train on small crops, finish at the
    measured size), and its ``downscale`` (the scale it runs at) may change too (a robust run at ``downscale: 2``
    starts from a network trained at full scale); every other keyword must match."""
    if not isinstance(a, dict):
        return False
    if a.get("arch") == b.get("arch") == "hinet":
        return {**a, "size": 0, "downscale": 0} == {**b, "size": 0, "downscale": 0}
    return a == b


def quantize_ste(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to 8-bit levels in the forward pass; identity gradient."""
    return straight_through(x, (x.detach().clamp(0, 1) * 255).round() / 255)


def _psnr(mse: float) -> float:
    return psnr_from_mse(max(mse, 1e-12), peak=1.0)


class ImageHideTrainer(Family):
    """The image-hiding family on the one loop (:class:`robusthide.training.loop.TrainLoop`): the hiding
    network + :class:`Discriminators`, seeded, exactly resumable."""

    def __init__(self, cfg: dict[str, Any], resume: bool = False, device: str | None = None,
                 progress: bool = True):
        self.cfg = cfg
        t = cfg["train"]
        rt = setup_runtime(device, threads=t.get("threads"), amp=t.get("amp", False),
                           deterministic=t.get("deterministic", True))
        self.device, self.amp = rt.device, rt.amp
        self.run_dir = Path(cfg["out"]) / cfg["name"]
        self.progress = progress
        self.loss_w = cfg["loss"]
        torch.manual_seed(cfg["seed"])
        self.gen_net = create_hiding_network(**cfg["model"]).to(self.device)
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
        self.loop = TrainLoop(self, LoopSettings(
            self.run_dir, t["steps"], log_every=max(1, int(t.get("log_every", 10))),
            val_every=int(cfg["val"].get("every") or 0), ckpt_every=cfg["ckpt"]["every"], batch=t["batch"],
            config=cfg, name=cfg["name"], progress=progress), rt)
        if resume:
            self.loop.resume(read_training_checkpoint(self.run_dir))
        else:
            self.loop.check_fresh()
            if t.get("init_from"):
                arch, weights = generator_weights(t["init_from"])
                if not same_weights_layout(arch, self.gen_net.arch):
                    raise RobustHideError(f"train.init_from {t['init_from']}: its model {arch} differs from the "
                                          f"config's {self.gen_net.arch}")
                self.gen_net.load_state_dict(weights)
        self.bank, self.val_bank = image_banks(cfg["data"], bool(cfg["val"].get("every")), max_side=384,
                                               min_side=cfg["model"]["size"])

    # -- schedules -------------------------------------------------------------------------------------
    def lr_factor(self, step: int) -> float:
        """Cosine decay from 1 to ``train.lr_final`` over ``train.steps``."""
        t = self.cfg["train"]
        return cosine(step, t["steps"], 1.0, t["lr_final"])

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
        """Run the next step (:meth:`train_step` of ``state["step"]``) and count it."""
        return self.loop.advance()

    def train_step(self, step: int) -> dict[str, Any]:
        t = self.cfg["train"]
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
        grad_norm = None
        if t.get("grad_clip"):
            grad_norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), float(t["grad_clip"])))
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
        row: dict[str, Any] = {"step": step + 1, "loss_g": float(loss_g.detach()), "loss_d": loss_d,
                               "psnr_container": psnr_c, "psnr_secret": _psnr(mse_s), "lr": t["lr"] * f}
        row.update({f"l_{k}": v for k, v in terms.items()})
        if grad_norm is not None:
            row["grad_norm"] = grad_norm
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

    # -- checkpoints and the run ---------------------------------------------------------------------------
    def checkpoint(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, doc = training_tensors(self.gen_net, self.disc, self.opt_g, self.opt_d)
        return tensors, {"config": self.cfg, "arch": self.gen_net.arch, **doc}

    def restore(self, tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
        restore_training_checkpoint(self.run_dir, tensors, doc, self.gen_net, self.disc, self.opt_g, self.opt_d)
        if not same_weights_layout(doc.get("arch"), self.gen_net.arch):
            raise RobustHideError(f"{self.run_dir}: the checkpoint's model {doc.get('arch')} differs from "
                                  f"the config's {self.gen_net.arch}")

    def start(self) -> None:
        self.gen_net.train()
        self.disc.train()

    def postfix(self, row: dict[str, Any]) -> dict[str, str]:
        return {"c": f"{row['psnr_container']:.1f}", "s": f"{row['psnr_secret']:.1f}"}

    def save(self) -> None:
        """Write the run's checkpoint now."""
        self.loop.save()

    def run(self, max_steps: int | None = None) -> dict[str, Any]:
        """Train to ``train.steps`` (or ``max_steps``); a checkpoint every ``ckpt.every`` steps and at the end
        (also on SIGTERM / Ctrl-C); returns the last step's metrics."""
        return self.loop.run(max_steps)


def train(config: str | Path | dict[str, Any], overrides: list[str] | None = None, resume: bool = False,
          max_steps: int | None = None, device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Load a config, train, return the last metrics row."""
    cfg = load_config(config, overrides)
    if resume:
        ck = Path(cfg["out"]) / cfg["name"] / "latest.json"
        if not ck.exists():
            raise RobustHideError(f"resume: no checkpoint at {ck}")
    return ImageHideTrainer(cfg, resume=resume, device=device, progress=progress).run(max_steps)
