"""Training strategies (MBRS §4 / paper 000 §3): what sits between encoder and decoder, and when.

* ``identity`` — no distortion (uint8 rounding only).
* ``pseudo``   — paper 000: the configured noise pool, real codecs forward, identity backward.
* ``oeds``     — one stage, simulated JPEG only (``noise.simulated``).
* ``tsr``      — two stages: stage 1 without noise, stage 2 decoder only with the real codec.
* ``tsr-s``    — as ``tsr`` but stage 1 with simulated JPEG.
* ``mbrs``     — per mini-batch, one of real JPEG / simulated JPEG / identity (MBRS eq. / §3.4).

``at(step)`` returns ``(attack, trainable)`` with ``trainable`` in {"all", "decoder"}.
"""

from __future__ import annotations

from typing import Any

from robusthide import RobustHideError
from robusthide.training.noise_pool import NoisePool


class Strategy:
    def __init__(self, stages: list[tuple[int, Any, str]]):
        # (until_step, attack, trainable); the last stage runs to the end.
        self.stages = stages

    def at(self, step: int):
        stage = next((st for st in self.stages if step < st[0]), self.stages[-1])
        attack, trainable = stage[1], stage[2]
        return (attack.for_step(step) if hasattr(attack, "for_step") else attack), trainable


def _pool(entries: list[dict[str, Any]], slices: int) -> NoisePool:
    return NoisePool(entries, slices=slices)


def build_strategy(cfg: dict[str, Any]) -> Strategy:
    name = cfg["train"]["strategy"]
    n = cfg["noise"]
    slices = n.get("slices", 4)
    ident = _pool([{"name": "identity"}], 1)
    real = [{"name": "jpeg", "q_lo": n.get("q", 50), "q_hi": n.get("q", 50)}]
    sim = n.get("simulated", [{"name": "jpegmask"}])
    steps = cfg["train"]["steps"]
    stage1 = int(cfg["train"].get("stage1_steps", steps // 2))
    if name == "identity":
        return Strategy([(steps, ident, "all")])
    if name == "pseudo":
        return Strategy([(steps, _pool(n["pool"], slices), "all")])
    if name == "oeds":
        return Strategy([(steps, _pool(sim, 1), "all")])
    if name == "tsr":
        return Strategy([(stage1, ident, "all"), (steps, _pool(real, 1), "decoder")])
    if name == "tsr-s":
        return Strategy([(stage1, _pool(sim, 1), "all"), (steps, _pool(real, 1), "decoder")])
    if name == "mbrs":
        entries = [dict(real[0], p=1.0), *[dict(s, p=1.0) for s in sim], {"name": "identity", "p": 1.0}]
        return Strategy([(steps, _pool(entries, 1), "all")])
    raise RobustHideError(f"unknown strategy '{name}' (identity, pseudo, oeds, tsr, tsr-s, mbrs)")
