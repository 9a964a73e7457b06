"""Training configuration: YAML files with ``--set key.sub=value`` overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from robusthide import RobustHideError

DEFAULTS: dict[str, Any] = {
    "name": "run",
    "seed": 0,
    "model": {"arch": "lean", "n_bits": 64, "size": 128, "amplitude": 6 / 255},
    "data": {"train": "data/photos", "val": None, "split": True, "max_side": 1024,
             "max_zoom": 4.0,             # crops of side [S, max_zoom * S], resized to the cover size S
             "whole_p": 0.0},             # share of covers that are whole photos squeezed to S x S
    "train": {
        "strategy": "pseudo",
        "steps": 10000,
        "batch": 16,
        "full_size": [256],          # attacks run at this resolution; the nets at model.size
        "lr": 1e-3,
        "lr_final": 1e-4,            # cosine decay to this
        "warmup_msg_steps": 600,     # message path first: image loss off
        "ramp_steps": 1000,          # then image loss ramped in
        "target_psnr": 43.0,         # the image-loss weight is adapted to hold this PSNR (dual ascent)
        "img_weight_init": 0.1,
        "img_weight_lr": 0.002,      # per step, per dB of (smoothed) PSNR shortfall
        "img_weight_min": 0.001,
        "img_weight_max": 100.0,
        "msg_loss": "bce",           # bce on logits | mse of sigmoid(logits) vs {0,1} (HiDDeN/MBRS)
        "msg_weight": 1.0,
        "jnd_weight": 0.0,           # + this x mean((uncapped residual / per-pixel JND)^2): the mark out of flat areas
        "jnd_lum_max": None,         # limit the JND's luminance term to this many grey levels (Chou-Li: 20 at black)
        "img_weight_fixed": None,    # a fixed image-MSE weight (papers' recipes) instead of the PSNR controller
        "adv_weight": 0.0,           # adversarial loss weight (HiDDeN 1e-3, MBRS 1e-4); needs .discriminator
        "amp": True,                 # bf16 autocast (CPU with AVX512-BF16/AMX, or CUDA)
        "channels_last": True,
        "threads": 0,                # 0 = all cores
        "init_from": None,           # start from these weights (a run folder or a weights file), not from scratch
    },
    "noise": {"slices": 4, "pool": [{"name": "identity", "p": 1.0}]},
    "val": {"every": 500, "n": 32, "size": 256, "codec": "jpeg:q=50"},
    "ckpt": {"every": 200},
    "out": "runs",
}


def deep_update(base: dict[str, Any], upd: dict[str, Any]) -> dict[str, Any]:
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_update(base[k], v)
        else:
            base[k] = v
    return base


def set_override(cfg: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to ``cfg``."""
    if "=" not in assignment:
        raise RobustHideError(f"bad override '{assignment}' (expected key=value)")
    key, _, raw = assignment.partition("=")
    node = cfg
    parts = key.strip().split(".")
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            raise RobustHideError(f"bad override '{assignment}': '{p}' is not a section")
        node = node[p]
    if parts[-1] not in node:
        raise RobustHideError(f"bad override '{assignment}': unknown key '{key}'")
    node[parts[-1]] = yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        p = Path(path)
        if not p.exists():
            raise RobustHideError(f"config not found: {p}")
        try:
            doc = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise RobustHideError(f"bad YAML in {p}: {str(e).splitlines()[0]}") from None
        if doc is None:  # an empty file would silently train the defaults
            raise RobustHideError(f"config {p} is empty")
        if not isinstance(doc, dict):
            raise RobustHideError(f"config {p} must be a mapping")
        deep_update(cfg, doc)
    for o in overrides or []:
        set_override(cfg, o)
    return cfg
