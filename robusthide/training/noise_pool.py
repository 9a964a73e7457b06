"""The watermark trainer's attack: a layer of :mod:`robusthide.attacks` (the one attack system), run with
the step's generator.

A config gives it as ``noise.attack``: anything :func:`robusthide.attacks.build_attack` takes (spec string,
dict / list, YAML). The shipped default's is paper 000's mixed training with real codecs in the loop --
a ``choice`` drawn per quarter of the batch (``slices: 4``) among real codecs at a random quality
(``real(jpeg:q=35..90)``: forward real, backward identity, paper 000 §3.3) and the distortions platforms
apply, with a step curriculum (``from_step: K`` items join the choice at step K: easy distortions first,
harder codecs once the message path works)::

    noise:
      attack:
        slices: 4
        choice:
          - uint8@1
          - real(jpeg:q=35..90)@4
          - resize(0.5..0.9, between=real(jpeg:q=50..90))@1.5
          - {spec: 'real(webp:q=35..90)', p: 2, from_step: 1200}

:class:`TrainingAttack` makes every random layer draw from the step's generator (one stream, in the order
the layers run), so a run is a pure function of (seed, step) and resumes exactly, and clamps the result
to [0, 1].

The old form, ``noise.pool`` (entries ``{name, p, from_step, ...}``) with ``noise.slices``, is still read
(:func:`pool_to_attack` converts it; resumable runs such as ``resume/geo256`` hold it): the converted
attack draws the same random numbers in the same order as the pool did, so the choices and parameters of
every step are the same (docs/architecture.md, "One attack system").
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robusthide import RobustHideError
from robusthide.attacks import PerBatchChoice, PseudoDifferentiable, RandomQuality, build_attack
from robusthide.attacks.base import apply_layer, layer_spec, set_generator
from robusthide.attacks.schedules import FromStep

#: real codecs of the old pool form: name -> (codec key, low key, high key, default low, default high)
_REAL = {"jpeg": ("q", "q_lo", "q_hi", 50, 50), "webp": ("q", "q_lo", "q_hi", 50, 50),
         "avif": ("q", "q_lo", "q_hi", 50, 50), "jpeg2000": ("x1000", "lo", "hi", 300, 900),
         "h264": ("crf", "lo", "hi", 23, 30)}
_GEOMETRY_KEYS = ("area", "aspect", "angle", "angle_p", "jitter", "shift", "inplace")


def _real(e: dict[str, Any], name: str) -> dict[str, Any]:
    key, lo_k, hi_k, lo, hi = _REAL[name]
    codec = f"{name}:{key}={int(e.get(lo_k, lo))}..{int(e.get(hi_k, hi))}"
    if name == "h264":
        codec += f",preset={e.get('preset', 'ultrafast')},mode=frames"
    item: dict[str, Any] = {"layer": "real", "codec": codec}
    if e.get("grad", "identity") != "identity":
        item["grad"] = e["grad"]
    return item


def _span(e: dict[str, Any], lo: float, hi: float) -> list[float]:
    return [float(e.get("lo", lo)), float(e.get("hi", hi))]


def legacy_item(e: Any) -> Any:
    """One entry of the old pool form as an item of :func:`robusthide.attacks.build_attack` (without its
    weight and step); an item already in the attack form (a spec string, a ``layer:`` or schedule dict) is
    returned as it is."""
    if not isinstance(e, dict) or "name" not in e:
        return e
    name = e["name"]
    if name == "identity":
        return "uint8"
    if name in _REAL:
        return _real(e, name)
    if name == "resize":
        return {"layer": "resize", "scale": _span(e, 0.5, 0.9)}
    if name == "resize_jpeg":
        return {"layer": "resize", "scale": _span(e, 0.5, 0.9),
                "between": _real({"q_lo": e.get("q_lo", 50), "q_hi": e.get("q_hi", 90)}, "jpeg")}
    if name == "blur":
        return {"layer": "blur", "sigma": _span(e, 0.4, 1.2)}
    if name == "noise":
        return {"layer": "noise", "sigma": _span(e, 0.0, 0.02)}
    if name == "cropresize":
        return {"layer": "cropresize", "ratio": _span(e, 0.8, 1.0), "per_image": False}
    if name == "brightness":
        d, c = float(e.get("delta", 0.05)), float(e.get("contrast", 0.1))
        return {"layer": "brightness-contrast", "brightness": [-d, d], "contrast": [1 - c, 1 + c]}
    if name == "geometry":
        geo = {"layer": "geometry", **{k: e[k] for k in _GEOMETRY_KEYS if k in e}}
        after = e.get("after") or []
        if not after:
            return geo
        return {"seq": [geo, {"layer": "maybe", "attack": {"choice": [legacy_item(a) for a in after]},
                              "p": float(e.get("after_p", 0.5))}]}
    return e.get("spec", name)  # any layer of robusthide.attacks: jpegmask, 'jpegss(50)', ...


def pool_to_attack(entries: list[Any], slices: int = 4) -> dict[str, Any]:
    """The old ``noise.pool`` / ``noise.slices`` form as an attack dict (``{choice: [...], slices: N}``):
    each entry an item weighted by its ``p`` (default 1), wrapped in ``from_step`` when it has one."""
    if not isinstance(entries, list) or not entries:
        raise RobustHideError("config: noise.pool must be a non-empty list of entries")
    items = []
    for e in entries:
        item = legacy_item(e)
        if isinstance(e, dict) and "name" in e:
            item = {"spec": item} if isinstance(item, str) else dict(item)
            item["p"] = float(e.get("p", 1.0))
            if "from_step" in e:
                item["from_step"] = int(e["from_step"])
        items.append(item)
    return {"choice": items, "slices": int(slices)}


def real_codec(x: torch.Tensor, spec: str, grad: str = "identity") -> torch.Tensor:
    """The real codec ``spec`` on ``x`` (:class:`robusthide.attacks.PseudoDifferentiable`): forward real;
    backward identity (paper 000 §3.3) or, with ``grad='zero'``, no gradient (MBRS §3.2)."""
    return PseudoDifferentiable(spec, grad=grad)(x)


def _short_name(layer: nn.Module) -> str:
    """A drawn layer's name for logs: a real codec's codec name (``jpeg``), else its spec name."""
    while isinstance(layer, FromStep):
        layer = layer.attack
    if isinstance(layer, (PseudoDifferentiable, RandomQuality)):
        return layer.codec.split(":", 1)[0]
    return getattr(layer, "spec_name", "") or type(layer).__name__


class TrainingAttack(nn.Module):
    """An attack layer called as the trainer calls it, ``attack(x, cover, gen)``: every random layer inside
    draws from ``gen`` (:func:`robusthide.attacks.base.set_generator`), and the output is clamped to
    [0, 1]. :meth:`for_step` gives the attack of a training step (the curriculum of a ``choice`` with
    ``from_step`` items); :attr:`last` names the layers a top-level choice drew last, one per slice."""

    def __init__(self, attack: nn.Module):
        super().__init__()
        self.attack = attack
        self._by_step: dict[int, TrainingAttack] = {}

    def for_step(self, step: int) -> TrainingAttack:
        sub = self.attack.for_step(step) if hasattr(self.attack, "for_step") else self.attack
        if sub is self.attack:
            return self
        if id(sub) not in self._by_step:
            self._by_step[id(sub)] = TrainingAttack(sub)
        return self._by_step[id(sub)]

    def forward(self, x: torch.Tensor, cover: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        set_generator(self.attack, gen)
        return apply_layer(self.attack, x, cover).clamp(0, 1)

    @property
    def last(self) -> list[str]:
        a = self.attack
        if isinstance(a, PerBatchChoice):
            return [_short_name(a.layers[i]) for i in a.last_choices]
        return [_short_name(a)]

    def spec(self) -> str:
        return layer_spec(self.attack)


def training_attack(spec: Any, what: str = "noise.attack") -> TrainingAttack:
    """:class:`TrainingAttack` of an attack spec (see :func:`robusthide.attacks.build_attack`); a bad spec is a
    one-line error naming ``what``."""
    try:
        return TrainingAttack(build_attack(spec))
    except RobustHideError as e:
        raise RobustHideError(f"config: {what}: {e}") from None


def noise_attack(noise: dict[str, Any]) -> TrainingAttack:
    """The attack of a config's ``noise`` section: ``noise.attack``, or the old ``noise.pool`` converted."""
    from robusthide.training.config import DEFAULTS

    pool = noise.get("pool")
    if noise.get("attack") is not None:
        if pool and pool != DEFAULTS["noise"]["pool"]:
            raise RobustHideError("config: give noise.attack or noise.pool (its old form), not both")
        return training_attack(noise["attack"])
    return training_attack(pool_to_attack(pool or DEFAULTS["noise"]["pool"], noise.get("slices", 4)),
                           "noise.pool")
