"""Configuration files: YAML with ``--set key.sub=value`` overrides, checked strictly against a schema.

One loader for every family (:func:`load_with_schema`): the watermark trainer's :data:`SCHEMA` here, the
image-hiding trainer's in :mod:`robusthide.imagehiding.train`. A schema is the defaults (a nested dict whose
values give each key's type) plus types for keys whose default is ``None`` or that are optional, value
ranges and choices, and *open* sections whose valid keys depend on the config (the model's keys depend on
its architecture). Every mistake is a one-line :class:`~robusthide.RobustHideError` that names the key:

* an unknown key at any level (``trian:``, ``train.stpes``), with the nearest valid key
  (:func:`difflib.get_close_matches`);
* a wrong type (``train.steps: ten``) or a value out of range (``train.batch: 0``);
* numbers that PyYAML reads as strings (``lr: 1e-3``: YAML 1.1 wants ``1.0e-3``) are numbers.

Type names: ``int``, ``number`` (int or float; numeric strings are converted), ``bool``, ``str``, ``list``,
``list[int]`` / ``list[number]`` / ``list[str]``, ``dict``, ``any``; ``a|b`` is either, a trailing ``?``
allows ``null``.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
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
        "decoder_warmup_steps": 0,   # before that, the decoder alone (encoder frozen): new reading layers first
        "ramp_steps": 1000,          # then image loss ramped in
        "target_psnr": 43.0,         # the image-loss weight is adapted to hold this PSNR (dual ascent)
        "img_weight_init": 0.1,
        "img_weight_lr": 0.002,      # per step, per dB of (smoothed) PSNR shortfall
        "img_weight_min": 0.001,
        "img_weight_max": 100.0,
        "msg_loss": "bce",           # bce on logits | mse of sigmoid(logits) vs {0,1} | mse-raw (HiDDeN's code)
        "msg_weight": 1.0,
        "jnd_weight": 0.0,           # + this x mean((uncapped residual / per-pixel JND)^2): the mark out of flat areas
        "jnd_lum_max": None,         # limit the JND's luminance term to this many grey levels (Chou-Li: 20 at black)
        "img_weight_fixed": None,    # a fixed image-MSE weight (papers' recipes) instead of the PSNR controller
        "adv_weight": 0.0,           # adversarial loss weight (HiDDeN 1e-3, MBRS 1e-4); needs .discriminator
        "adv_amp": False,            # the discriminator's passes under bf16 autocast too (with amp)
        "amp": True,                 # bf16 autocast (CPU with AVX512-BF16/AMX, or CUDA)
        "channels_last": True,
        "threads": 0,                # 0 = all cores
        "init_from": None,           # start from these weights (a run folder or a weights file), not from scratch
        "init_partial": False,       # init_from loads only the tensors that fit (a model with another payload size)
    },
    "noise": {"slices": 4, "pool": [{"name": "identity", "p": 1.0}]},
    "val": {"every": 500, "n": 32, "size": 256, "codec": "jpeg:q=50"},
    "ckpt": {"every": 200},  # optional: keep (steps whose checkpoint is also kept as step-N), fork_from / fork_step
    "out": "runs",
}

Range = tuple[float | None, float | None]


@dataclass(frozen=True)
class Schema:
    """What a config may hold: see the module docstring. Keys are dotted paths (``train.lr``)."""

    defaults: dict[str, Any]
    #: types of keys whose default is None, and of optional keys absent from the defaults
    types: dict[str, str] = field(default_factory=dict)
    #: inclusive (low, high) bounds of numbers (each element of a list of numbers); None: unbounded
    ranges: dict[str, Range] = field(default_factory=dict)
    choices: dict[str, Collection[Any]] = field(default_factory=dict)
    #: sections whose valid keys depend on the config: a function of the whole config returning the keys
    #: (None: any key); their values are then checked by whoever consumes them
    open: dict[str, Callable[[dict[str, Any]], Collection[str] | None]] = field(default_factory=dict)


def _model_keys(cfg: dict[str, Any]) -> Collection[str] | None:
    from robusthide.nets.registry import model_keywords

    arch = cfg.get("model", {}).get("arch", "lean") if isinstance(cfg.get("model"), dict) else "lean"
    keys = model_keywords(arch) if isinstance(arch, str) else None
    return None if keys is None else ["arch", *keys]


#: the watermark trainer's config (:class:`robusthide.training.trainer.Trainer`)
SCHEMA = Schema(
    DEFAULTS,
    types={"model.amplitude": "number?", "data.val": "str?", "train.full_size": "int|list[int]",
           "train.jnd_lum_max": "number?", "train.img_weight_fixed": "number?", "train.init_from": "str?",
           "train.stage1_steps": "int", "noise.q": "int", "noise.simulated": "list", "noise.pool": "list",
           "noise.real_grad": "str", "noise.attack": "any", "ckpt.keep": "list[int]", "ckpt.fork_from": "str?",
           "ckpt.fork_step": "int"},
    ranges={"seed": (0, None), "model.n_bits": (1, None), "model.size": (8, None), "model.amplitude": (0, None),
            "data.max_side": (1, None), "data.max_zoom": (1, None), "data.whole_p": (0, 1),
            "train.steps": (1, None), "train.batch": (1, None), "train.full_size": (8, None),
            "train.lr": (0, None), "train.lr_final": (0, None), "train.warmup_msg_steps": (0, None),
            "train.decoder_warmup_steps": (0, None),
            "train.ramp_steps": (0, None), "train.target_psnr": (0, None), "train.img_weight_init": (0, None),
            "train.img_weight_lr": (0, None), "train.img_weight_min": (0, None), "train.img_weight_max": (0, None),
            "train.msg_weight": (0, None), "train.jnd_weight": (0, None), "train.jnd_lum_max": (0, None),
            "train.img_weight_fixed": (0, None), "train.adv_weight": (0, None), "train.threads": (0, None),
            "train.stage1_steps": (0, None), "noise.slices": (1, None), "noise.q": (1, 100),
            "val.every": (0, None), "val.n": (1, None), "val.size": (8, None), "ckpt.every": (1, None),
            "ckpt.fork_step": (1, None)},
    choices={"train.strategy": ("identity", "pseudo", "oeds", "tsr", "tsr-s", "mbrs"),
             "train.msg_loss": ("bce", "mse", "mse-raw"), "noise.real_grad": ("identity", "zero")},
    open={"model": _model_keys},
)


def deep_update(base: dict[str, Any], upd: dict[str, Any]) -> dict[str, Any]:
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_update(base[k], v)
        else:
            base[k] = v
    return base


def set_override(cfg: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to ``cfg``: the value replaces what was there (a whole
    section when ``a.b`` names one). Missing sections on the way are created; the schema check that follows
    (:func:`check_config`) rejects keys that do not exist."""
    if "=" not in assignment:
        raise RobustHideError(f"bad override '{assignment}' (expected key=value)")
    key, _, raw = assignment.partition("=")
    node = cfg
    parts = key.strip().split(".")
    if not all(parts):
        raise RobustHideError(f"bad override '{assignment}' (empty key)")
    for p in parts[:-1]:
        if p not in node:
            node[p] = {}
        if not isinstance(node[p], dict):
            raise RobustHideError(f"bad override '{assignment}': '{p}' is not a section")
        node = node[p]
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise RobustHideError(f"bad override '{assignment}': {str(e).splitlines()[0]}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file that must hold a non-empty mapping."""
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
    return doc


def load_with_schema(schema: Schema, source: str | Path | dict[str, Any] | None = None,
                     overrides: list[str] | None = None) -> dict[str, Any]:
    """The schema's defaults, updated by a YAML file (or a dict) and ``key.sub=value`` overrides, checked
    (:func:`check_config`). Sections of the file merge into the defaults; an override replaces its node."""
    cfg = copy.deepcopy(schema.defaults)
    if isinstance(source, dict):
        deep_update(cfg, copy.deepcopy(source))
    elif source is not None:
        deep_update(cfg, read_yaml(source))
    for o in overrides or []:
        set_override(cfg, o)
    return check_config(cfg, schema)


def load_config(path: str | Path | dict[str, Any] | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The watermark trainer's config (:data:`SCHEMA`)."""
    return load_with_schema(SCHEMA, path, overrides)


# -- checking -------------------------------------------------------------------------------------------------

def _unknown(key: str, known: Collection[str], prefix: str) -> RobustHideError:
    near = difflib.get_close_matches(key, list(known), n=1)
    hint = f"did you mean '{prefix}{near[0]}'?" if near else f"known: {', '.join(sorted(known))}"
    return RobustHideError(f"config: unknown key '{prefix}{key}' ({hint})")


def _type_of(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "number"
    if isinstance(default, str):
        return "str"
    if isinstance(default, list):
        return "list"
    if isinstance(default, dict):
        return "dict"
    return "any"


def _as_number(v: Any) -> float | int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            f = float(v.strip().replace("_", ""))
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def _coerce(v: Any, t: str) -> tuple[bool, Any]:
    """(ok, value converted to type ``t``)."""
    if t == "any":
        return True, v
    if t == "number":
        n = _as_number(v)
        return n is not None, n
    if t == "int":
        n = _as_number(v)
        if isinstance(n, float) and n.is_integer() and not isinstance(v, float):
            n = int(n)  # "1e4" (a string to PyYAML) is 10000
        return isinstance(n, int), n
    if t == "bool":
        return isinstance(v, bool), v
    if t == "str":
        return isinstance(v, str), v
    if t == "dict":
        return isinstance(v, dict), v
    if t == "list":
        return isinstance(v, list), v
    if t.startswith("list[") and t.endswith("]"):
        if not isinstance(v, list):
            return False, v
        out = [_coerce(x, t[5:-1]) for x in v]
        return all(ok for ok, _ in out), [x for _, x in out]
    raise ValueError(f"unknown schema type {t!r}")


_WORDS = {"int": "an integer", "number": "a number", "bool": "true or false", "str": "a string",
          "list": "a list", "dict": "a mapping", "list[int]": "a list of integers",
          "list[number]": "a list of numbers", "list[str]": "a list of strings"}


def _check_value(key: str, v: Any, spec: str, schema: Schema) -> Any:
    nullable = spec.endswith("?")
    if v is None:
        if nullable or spec == "any":
            return None
        raise RobustHideError(f"config: {key} must be {' or '.join(_WORDS[t] for t in spec.split('|'))}, got null")
    for t in spec.rstrip("?").split("|"):
        ok, out = _coerce(v, t)
        if ok:
            break
    else:
        want = " or ".join(_WORDS.get(t, t) for t in spec.rstrip("?").split("|"))
        raise RobustHideError(f"config: {key} must be {want}{' or null' if nullable else ''}, got {v!r}")
    lo, hi = schema.ranges.get(key, (None, None))
    for x in out if isinstance(out, list) else [out]:
        if isinstance(x, (int, float)) and not isinstance(x, bool) and (
                (lo is not None and x < lo) or (hi is not None and x > hi)):
            bounds = f">= {lo}" if hi is None else f"<= {hi}" if lo is None else f"in [{lo}, {hi}]"
            raise RobustHideError(f"config: {key} must be {bounds}, got {x!r}")
    if key in schema.choices and out not in schema.choices[key]:
        raise RobustHideError(f"config: {key} must be one of {', '.join(map(str, schema.choices[key]))}, "
                              f"got {out!r}")
    return out


def check_config(cfg: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """Check every key of ``cfg`` against ``schema`` (in place: numbers written as strings become numbers);
    returns ``cfg``. Keys of the defaults may be missing (a section replaced by an override)."""
    _check_section(cfg, schema.defaults, "", schema, cfg)
    return cfg


def _check_section(node: dict[str, Any], defaults: dict[str, Any], prefix: str, schema: Schema,
                   root: dict[str, Any]) -> None:
    opener = schema.open.get(prefix[:-1]) if prefix else None
    known: Collection[str] | None
    if opener is not None:
        known = opener(root)
    else:
        extra = [k[len(prefix):] for k in schema.types if k.startswith(prefix) and "." not in k[len(prefix):]]
        known = [*defaults, *extra]
    for k in list(node):
        key = prefix + str(k)
        if known is not None and k not in known:
            raise _unknown(str(k), known, prefix)
        default = defaults.get(k)
        spec = schema.types.get(key) or _type_of(default)
        if spec == "dict":
            v = node[k]
            if not isinstance(v, dict):
                raise RobustHideError(f"config: {key} must be a mapping (a section), got {v!r}")
            _check_section(v, default if isinstance(default, dict) else {}, key + ".", schema, root)
        else:
            node[k] = _check_value(key, node[k], spec, schema)
