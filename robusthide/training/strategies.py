"""Training strategies (MBRS §4 / paper 000 §3): what sits between encoder and decoder, and when.

* ``identity`` — no distortion (uint8 rounding only).
* ``pseudo``   — paper 000: the configured noise pool, real codecs forward, identity backward.
* ``oeds``     — one stage, simulated JPEG only (``noise.simulated``).
* ``tsr``      — two stages: stage 1 without noise, stage 2 decoder only with the real codec.
* ``tsr-s``    — as ``tsr`` but stage 1 with simulated JPEG.
* ``mbrs``     — per mini-batch, one of real JPEG / simulated JPEG / identity (MBRS eq. / §3.4): a
  :class:`robusthide.attacks.PerBatchChoice`.

Every stage's attack is a layer of :mod:`robusthide.attacks` in a
:class:`~robusthide.training.noise_pool.TrainingAttack` (``pseudo``: the config's ``noise.attack``, or its
old form ``noise.pool``).

``noise.real_grad`` (``mbrs`` only) says what the real-JPEG mini-batches pass back to the encoder:

* ``identity`` (default) — the pseudo-differentiable form of paper 000 §3.3 (forward real, backward
  identity), so the decoding loss of a real-JPEG batch also trains the encoder;
* ``zero`` — MBRS's own form (paper 002 §3.2, "Real JPEG Compression in Encoder-Decoder Structure": the
  quantisation is non-differentiable, so dL_D/dtheta_E = 0): the real JPEG output carries no gradient,
  the decoder still learns from the batch, and the encoder only from the image (and adversarial) loss;
  MBRS relies on Adam's momentum from the neighbouring JPEG-Mask / Identity batches instead.

``at(step)`` returns ``(attack, trainable)`` with ``trainable`` in {"all", "decoder"}.

``train.decoder_warmup_steps`` puts a stage before every strategy in which only the decoder trains, under the
first stage's attack: a model started from another's weights with fresh message layers
(``train.init_partial``) would otherwise learn to silence its residual (a random reading makes any signal cost
message loss) before its decoder learns to read the new code.
"""

from __future__ import annotations

from typing import Any

from robusthide import RobustHideError
from robusthide.training.noise_pool import TrainingAttack, legacy_item, noise_attack, training_attack


class Strategy:
    def __init__(self, stages: list[tuple[int, Any, str]]):
        # (until_step, attack, trainable); the last stage runs to the end.
        self.stages = stages

    def at(self, step: int):
        stage = next((st for st in self.stages if step < st[0]), self.stages[-1])
        attack, trainable = stage[1], stage[2]
        return (attack.for_step(step) if hasattr(attack, "for_step") else attack), trainable


def _one_of(items: list[Any], what: str) -> TrainingAttack:
    """The attack of one item, or a uniform per-batch choice among several."""
    return training_attack(items[0] if len(items) == 1 else {"choice": items}, what)


def _stage1_steps(cfg: dict[str, Any]) -> int:
    """Where a two-stage strategy (``tsr``, ``tsr-s``) switches: ``train.stage1_steps``, else half the run."""
    return int(cfg["train"].get("stage1_steps", cfg["train"]["steps"] // 2))


#: what the first stage of each strategy puts between encoder and decoder (every parameter trains in it)
_FIRST_STAGE = {"identity": "uint8", "pseudo": "noise", "oeds": "simulated", "tsr": "uint8",
                "tsr-s": "simulated", "mbrs": "mbrs"}


def first_stage(cfg: dict[str, Any]) -> tuple[int, str]:
    """The first stage of ``cfg``'s strategy: (steps it lasts, what it applies). Two runs whose configs differ
    only in ``train.strategy`` train identically (same seed, same batches, same draws) for as long as both first
    stages last when they apply the same thing: a ``tsr-s`` run is an ``oeds`` run up to its stage 1, a ``tsr``
    run an ``identity`` run (MBRS §4.3.4: TSR-S "replace[s] the noise-free layer with JPEG-Mask in TSR at stage
    one")."""
    name = cfg["train"]["strategy"]
    if name not in _FIRST_STAGE:
        raise RobustHideError(f"unknown strategy '{name}' (identity, pseudo, oeds, tsr, tsr-s, mbrs)")
    return (_stage1_steps(cfg) if name in ("tsr", "tsr-s") else int(cfg["train"]["steps"])), _FIRST_STAGE[name]


def build_strategy(cfg: dict[str, Any]) -> Strategy:
    """The strategy ``cfg["train"]["strategy"]`` names, after ``train.decoder_warmup_steps`` of the decoder
    alone (none by default)."""
    strategy = _named_strategy(cfg)
    warm = int(cfg["train"].get("decoder_warmup_steps") or 0)
    if warm > 0:
        strategy.stages.insert(0, (warm, strategy.stages[0][1], "decoder"))
    return strategy


def _named_strategy(cfg: dict[str, Any]) -> Strategy:
    name = cfg["train"]["strategy"]
    n = cfg["noise"]
    q = int(n.get("q", 50))
    ident = training_attack("uint8")
    sim = [legacy_item(e) for e in n.get("simulated", [{"name": "jpegmask"}])]
    steps = cfg["train"]["steps"]
    stage1 = _stage1_steps(cfg)
    if name == "identity":
        return Strategy([(steps, ident, "all")])
    if name == "pseudo":
        return Strategy([(steps, noise_attack(n), "all")])
    real = _one_of([f"real(jpeg:q={q}..{q})"], "noise.q")
    if name == "oeds":
        return Strategy([(steps, _one_of(sim, "noise.simulated"), "all")])
    if name == "tsr":
        return Strategy([(stage1, ident, "all"), (steps, real, "decoder")])
    if name == "tsr-s":
        return Strategy([(stage1, _one_of(sim, "noise.simulated"), "all"), (steps, real, "decoder")])
    if name == "mbrs":  # MBRS: PerBatchChoice of real JPEG, the simulators and 8-bit rounding, uniformly
        grad = n.get("real_grad") or "identity"
        items = [f"real(jpeg:q={q}..{q};grad={grad})", *sim, "uint8"]
        return Strategy([(steps, training_attack({"choice": items}, "noise"), "all")])
    raise RobustHideError(f"unknown strategy '{name}' (identity, pseudo, oeds, tsr, tsr-s, mbrs)")
