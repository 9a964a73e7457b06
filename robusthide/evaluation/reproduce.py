"""``robusthide reproduce NAME``: a scaled-down, same-budget rerun of a paper's comparison table (issue 7).

The registry (:mod:`robusthide.evaluation.reproduce_specs`) names paper 000's Tables 1-4 and MBRS's Tables 3,
5 and 6. Running one:

1. trains every column with :class:`robusthide.training.trainer.Trainer` under one budget (net, payload,
   image size, batch, steps), in ``RUNS/NAME/<column>``: a finished column is skipped, an interrupted one
   resumed exactly (a run folder holding another config is refused);
2. builds the test set: ``n_test`` crops of the photos' validation split (``split_of``), each a random square
   of side 1-4x the net size from the photo downscaled to ``max_side``, resized to the net size (the training
   crops' distribution);
3. calibrates each column's test-time strength factor to the budget's PSNR (MBRS's protocol for its
   Tables 5 and 6), then measures BER under the rows' real codecs (:func:`robustness_matrix`);
4. writes ``OUT/NAME.md`` and ``.json``: our table, the paper's beside it, the budget with the measured
   training minutes per column, the command, and one sentence per claim of the paper
   (:mod:`robusthide.evaluation.claims`).

``mbrs-table3`` trains nothing: it sweeps the test-time strength factor of the shipped ``default`` model.

Longer runs (issue 23) change the budget from the command line: ``--net hidden|mbrs`` trains the papers'
networks with their papers' losses and weights (:data:`~robusthide.evaluation.reproduce_specs.NET_RECIPES`),
``--size`` the image size, ``--seed`` the training seed (the test images stay the same), ``--tag`` names the
variant (runs in ``RUNS/NAME-TAG``, results in ``OUT/NAME-TAG.md``), and ``--column`` trains one column (and
the shared warm start) without evaluating, so that each column can run alone in the background and resume
after an interruption; a last run without ``--column`` finds every column finished and evaluates them all.
See :func:`variant`.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import math
import re
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from robusthide import RobustHideError, __version__
from robusthide.evaluation.claims import judge, sentence
from robusthide.evaluation.reproduce_curves import column_curve, plot_curves
from robusthide.evaluation.reproduce_specs import (
    NET_RECIPES,
    NETS,
    REPRODUCTIONS,
    WARM_MODES,
    Budget,
    Column,
    Reproduction,
)
from robusthide.io.results import READING_HEADING, write_keeping_reading  # noqa: F401 (READING_HEADING: re-export)

#: wall seconds per step at 128x128, batch 16, on 2 free CPU cores: ``lean`` measured (~1 step/s; video codecs a bit
#: more), the papers' nets from their CPU seconds per step in docs/results/reproduce-plan-speed.json (HiDDeN 7.3,
#: MBRS 16.8 before the bf16 discriminator, about 1.6 cores busy); scaled with the image area
SEC_PER_STEP = {"lean": 1.0, "hidden": 4.5, "mbrs": 7.0}


# -- registry -----------------------------------------------------------------------------------------------


def list_reproductions() -> list[Reproduction]:
    return list(REPRODUCTIONS.values())


def get_reproduction(name: str) -> Reproduction:
    if name not in REPRODUCTIONS:
        raise RobustHideError(f"unknown reproduction '{name}' (known: {', '.join(REPRODUCTIONS)}; "
                              "see robusthide reproduce --list)")
    return REPRODUCTIONS[name]


def estimate_minutes(rep: Reproduction, steps: int | None = None, n_test: int | None = None) -> float:
    """Rough wall-clock minutes on 2 free cores: training (SEC_PER_STEP) plus evaluation."""
    steps = rep.budget.steps if steps is None else steps
    n = rep.budget.n_test if n_test is None else n_test
    b = rep.budget
    per_step = SEC_PER_STEP.get(b.net, 1.0) * (b.size / 128) ** 2
    train = len(rep.columns) * steps * per_step if rep.kind == "train" else 0.0
    evaluate = len(rep.columns) * n * sum(r.attack is not None for r in rep.rows) * 0.02 + 15 * len(rep.columns)
    return (train + evaluate) / 60


def variant(rep: Reproduction, net: str | None = None, size: int | None = None, seed: int | None = None,
            tag: str | None = None, warm_mode: str | None = None) -> Reproduction:
    """``rep`` with another net (with its paper's recipe), image size, training seed or warm-start mode
    (:data:`~robusthide.evaluation.reproduce_specs.WARM_MODES`). ``tag`` (letters, digits, ``.``, ``_``, ``-``)
    renames it ``NAME-TAG``: its runs and results then live apart from the budget's own. A changed budget needs
    a tag, so that runs of two budgets never share a folder."""
    b = rep.budget
    if rep.kind != "train" and (net or size or seed is not None or warm_mode):
        raise RobustHideError(f"{rep.name} trains nothing: --net, --size, --seed and --warm-mode do not apply")
    if warm_mode is not None and warm_mode not in WARM_MODES:
        raise RobustHideError(f"unknown --warm-mode '{warm_mode}' (known: {', '.join(WARM_MODES)})")
    if warm_mode is not None and not b.warm_steps:
        raise RobustHideError(f"{rep.name} has no warm start: --warm-mode does not apply")
    if net is not None and net not in NETS:
        raise RobustHideError(f"unknown net '{net}' (known: {', '.join(NETS)})")
    if size is not None and not 16 <= size <= 1024:
        raise RobustHideError(f"--size must be in 16..1024, got {size}")
    if seed is not None and seed < 0:
        raise RobustHideError(f"--seed must be >= 0, got {seed}")
    if tag is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,60}", tag):
        raise RobustHideError(f"--tag must be letters, digits, '.', '_' or '-' (at most 61), got {tag!r}")
    changed = ((net is not None and net != b.net) or (size is not None and size != b.size) or seed is not None
               or (warm_mode is not None and warm_mode != b.warm_mode))
    if changed and tag is None:
        raise RobustHideError("--net, --size, --seed and --warm-mode change the budget: give a --tag to name the "
                              "variant (its runs and results are kept apart from the budget's own)")
    nb = dataclasses.replace(b, net=net or b.net, size=size or b.size, train_seed=seed,
                             warm_mode=warm_mode or b.warm_mode)
    check_nets(rep, nb)
    return dataclasses.replace(rep, name=f"{rep.name}-{tag}" if tag else rep.name, budget=nb)


def check_nets(rep: Reproduction, b: Budget) -> None:
    """Build every column's net under budget ``b`` (the recipe's model section, then the column's), so that a
    net that cannot carry a column fails before any training: MBRS's message map ties ``n_bits`` and the image
    size, and only the MBRS net has the diffusion block (``mbrs-table2``)."""
    from robusthide.nets.registry import create_model, model_keywords

    for col in rep.columns if rep.kind == "train" else ():
        kw: dict[str, Any] = {"n_bits": b.n_bits, "size": b.size, **NET_RECIPES.get(b.net, {}).get("model", {}),
                              **col.overrides.get("model", {})}
        known = model_keywords(b.net)
        if known is not None and kw.keys() - set(known):
            raise RobustHideError(f"{rep.name}: column '{col.label}' needs the option(s) "
                                  f"{', '.join(sorted(kw.keys() - set(known)))}, which the `{b.net}` net has not")
        try:
            create_model(b.net, **kw)
        except ValueError as e:
            raise RobustHideError(f"{rep.name} with --net {b.net} --size {b.size}, column '{col.label}': "
                                  f"{str(e).splitlines()[0]}") from None


def find_column(rep: Reproduction, key: str) -> Column:
    """The column of ``rep`` whose label or slug (``robusthide reproduce --list``) is ``key``."""
    for c in rep.columns:
        if key in (c.label, c.slug):
            return c
    raise RobustHideError(f"{rep.name} has no column '{key}' (columns: {', '.join(c.slug for c in rep.columns)})")


# -- test images --------------------------------------------------------------------------------------------


def test_images(data: str | Path, n: int, size: int, seed: int = 0, max_side: int = 512) -> list[np.ndarray]:
    """``n`` uint8 ``size`` x ``size`` crops of the validation photos under ``data`` (seeded; see the module
    docstring), cycling over the photos."""
    from PIL import Image

    from robusthide.evaluation.images import crop_square, list_image_files

    if n < 1:
        raise RobustHideError(f"--n-test must be at least 1, got {n}")
    files = list_image_files(data, split="val")
    cache: dict[Path, np.ndarray] = {}
    out = []
    for i in range(n):
        p = files[i % len(files)]
        if p not in cache:
            with Image.open(p) as im:
                im = im.convert("RGB")
                f = max_side / min(im.size)
                if f < 1:
                    im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.BICUBIC)
                cache[p] = np.asarray(im)
        a = cache[p]
        rng = np.random.default_rng([seed, i])
        side = min(a.shape[:2])
        c = int(rng.integers(min(size, side), min(side, 4 * size) + 1))
        crop = crop_square(a, c, rng)
        if c != size:
            crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))
        out.append(np.ascontiguousarray(crop))
    return out


# -- training -----------------------------------------------------------------------------------------------


WARM = Column("warm start", {"train": {"strategy": "identity"}},
              "shared by every column: no attack; the message path alone, or the whole recipe (--warm-mode full)")


def warm_steps(rep: Reproduction, steps: int | None = None, fixed: int | None = None) -> int:
    """Warm-start steps: ``fixed`` (``--warm-steps``) when given, else the budget's, scaled with ``--steps`` (at
    least 1 when the budget has a warm start)."""
    b = rep.budget
    if fixed is not None and b.warm_steps:
        return fixed
    if not b.warm_steps or steps is None or steps == b.steps:
        return b.warm_steps
    return max(1, round(b.warm_steps * steps / b.steps))


def warm_config(rep: Reproduction, data: str | Path, runs: str | Path, steps: int | None = None,
                warm: int | None = None) -> dict[str, Any]:
    """The shared warm start of a reproduction: ``budget.warm_steps`` steps (scaled with ``steps``, or ``warm``
    when given: :func:`warm_steps`) on clean (uint8-rounded) images, of the message path alone
    (``budget.warm_mode`` ``message``) or of the net's whole recipe (``full``: a shared pretraining).

    The lesson of our first default model: from scratch, a network under a JPEG layer and an image loss sits
    at chance for hundreds of steps. Every column therefore starts from one checkpoint whose message path
    has learned on clean images with the image loss off; the columns then differ only in what they train
    afterwards, for the same number of steps. HiDDeN's message path alone levels off near 35 % BER
    (docs/results/hidden-learns.md), so its columns start from ``full``: the paper's losses on identity.
    """
    cfg = column_config(rep, WARM, warm_steps(rep, steps, warm), data, runs, warm=False)
    if rep.budget.warm_mode == "full":
        return cfg
    if cfg["train"].get("img_weight_fixed") is not None:  # a paper recipe: its fixed image weight off too
        cfg["train"]["img_weight_fixed"] = 0.0
        cfg["train"]["adv_weight"] = 0.0
    cfg["train"]["warmup_msg_steps"] = cfg["train"]["steps"]
    return cfg


def column_config(rep: Reproduction, col: Column, steps: int, data: str | Path, runs: str | Path,
                  warm: bool = True) -> dict[str, Any]:
    """The training config of one column: the budget, then the column's overrides. With ``warm`` (and a
    budget with ``warm_steps``) the column starts from the shared warm start and ramps the image loss in
    over its first third. Columns that train identically for their first steps (:func:`shared_prefix`)
    train them once: the earliest such column keeps its checkpoint at that step (``ckpt.keep``), the later
    ones start from it (``ckpt.fork_from``, ``ckpt.fork_step``; :func:`train_column`)."""
    slugs = [c.slug for c in rep.columns]
    if col.slug not in slugs:  # the shared warm start
        return _column_config(rep, col, steps, data, runs, warm)
    bases = [_column_config(rep, c, steps, data, runs, warm) for c in rep.columns]
    i = slugs.index(col.slug)
    cfg = bases[i]
    donors = [_donor(bases, j) for j in range(len(bases))]
    keep = {d[1] for d in donors if d is not None and d[0] == i}
    mine = donors[i]
    if keep:
        cfg["ckpt"]["keep"] = sorted(keep)
    if mine is not None:
        cfg["ckpt"].update(fork_from=str(Path(bases[mine[0]]["out"]) / bases[mine[0]]["name"]), fork_step=mine[1])
    return cfg


def shared_prefix(a: dict[str, Any], b: dict[str, Any]) -> int:
    """How many first steps two column configs train identically: as long as both strategies' first stages
    last when those stages apply the same thing (:func:`robusthide.training.strategies.first_stage`) and the
    configs differ in nothing else but where the runs live; else 0."""
    from robusthide.training.strategies import first_stage

    def rest(c: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in c.items() if k not in _IGNORED}
        out["train"] = {k: v for k, v in c["train"].items() if k != "strategy"}
        return out

    if _differences(rest(a), rest(b)):
        return 0
    (na, wa), (nb, wb) = first_stage(a), first_stage(b)
    return min(na, nb) if wa == wb else 0


def _donor(bases: list[dict[str, Any]], i: int) -> tuple[int, int] | None:
    """(index, step) of the earliest column whose first steps column ``i`` shares, when they are fewer than its
    run; None when it shares none."""
    for j in range(i):
        k = shared_prefix(bases[j], bases[i])
        if 0 < k < bases[i]["train"]["steps"]:
            return j, k
    return None


def _column_config(rep: Reproduction, col: Column, steps: int, data: str | Path, runs: str | Path,
                   warm: bool = True) -> dict[str, Any]:
    from robusthide.training.config import DEFAULTS, SCHEMA, check_config, deep_update

    b: Budget = rep.budget
    cfg = copy.deepcopy(DEFAULTS)
    model: dict[str, Any] = {"arch": b.net, "n_bits": b.n_bits, "size": b.size}
    if b.net == "lean":
        model["amplitude"] = DEFAULTS["model"]["amplitude"]
    cfg["model"] = model
    deep_update(cfg, {
        "name": col.slug, "seed": b.seed if b.train_seed is None else b.train_seed,
        "out": str(Path(runs) / rep.name),
        "data": {"train": str(Path(data).resolve()), "val": None, "split": True, "max_side": b.max_side},
        "train": {"steps": steps, "batch": b.batch, "full_size": [b.size],
                  "warmup_msg_steps": steps // 6, "ramp_steps": max(1, steps // 6),
                  "target_psnr": b.psnr if b.psnr is not None else DEFAULTS["train"]["target_psnr"]},
        "noise": {"slices": 1, "pool": [{"name": "identity", "p": 1.0}]},
        "val": {"every": 0},
        "ckpt": {"every": max(1, min(50, steps))},
    })
    if b.net in NET_RECIPES:
        deep_update(cfg, copy.deepcopy(NET_RECIPES[b.net]))
    if warm and b.warm_steps:
        deep_update(cfg, {"train": {"init_from": str(Path(runs) / rep.name / WARM.slug), "warmup_msg_steps": 0,
                                    "ramp_steps": max(1, steps // 3)}})
    deep_update(cfg, copy.deepcopy(col.overrides))
    return check_config(json.loads(json.dumps(cfg)), SCHEMA)  # plain JSON types, as the checkpoint stores it


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """``key: old there, new now`` for every leaf where config ``a`` (new) differs from ``b`` (stored)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b))
                for d in _differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)]
    return [] if a == b else [f"{path}: {b!r} there, {a!r} now"]


_IGNORED = ("out", "name", "ckpt")  # where the run lives and how often it saves do not change the result


def _with_new_defaults(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored run config with the ``train`` keys added to the schema since it was saved, at their defaults
    (which train as the run did before the key existed): such a key is no difference."""
    from robusthide.training.config import DEFAULTS

    out = copy.deepcopy(stored)
    if isinstance(out.get("train"), dict):
        for k, v in DEFAULTS["train"].items():
            out["train"].setdefault(k, v)
    return out


def train_column(cfg: dict[str, Any], progress: bool = True, device: str | None = None,
                 compile: bool = False) -> dict[str, Any]:
    """Train (or resume, or skip when finished) one column; returns ``status``, ``step``, ``train_seconds``.
    ``device``: ``cpu``, ``cuda`` or None (CUDA when present, else the CPU; the trainer's rule). ``compile``:
    the nets through ``torch.compile`` (:func:`robusthide.training.loop.compile_nets`; the same run either
    way, so a column may resume with or without it)."""
    from robusthide.training.trainer import Trainer

    run_dir = Path(cfg["out"]) / cfg["name"]
    status = "trained"
    latest = run_dir / "latest.json"
    if latest.exists():
        doc = json.loads(latest.read_text())
        diff = _differences({k: v for k, v in cfg.items() if k not in _IGNORED},
                            {k: v for k, v in _with_new_defaults(doc["config"]).items() if k not in _IGNORED})
        if diff:
            more = f" and {len(diff) - 2} more" if len(diff) > 2 else ""
            raise RobustHideError(f"{run_dir} holds a run with another config ({'; '.join(diff[:2])}{more}); "
                                  "delete it or pass --runs DIR")
        if doc["state"]["step"] >= cfg["train"]["steps"]:
            return {"status": "skipped (finished)", "step": doc["state"]["step"],
                    "train_seconds": float(doc["state"].get("train_seconds", 0.0))}
        status = "resumed"
    else:
        if (run_dir / "metrics.jsonl").exists():
            (run_dir / "metrics.jsonl").unlink()  # a run that died before its first checkpoint
        if fork_run(cfg, run_dir):
            status = "forked"
    info = {"forked_from": f"{Path(cfg['ckpt']['fork_from']).name} at step {cfg['ckpt']['fork_step']}"} if (
        status == "forked") else {}
    tr = Trainer(cfg, resume=status != "trained", device=device, progress=progress, compile=compile)
    tr.run()
    if tr.state["step"] < cfg["train"]["steps"]:  # stopped by SIGTERM: saved, not finished
        raise RobustHideError(f"training of {run_dir} stopped at step {tr.state['step']}; run the same command "
                              "again to resume")
    return {"status": status, "step": tr.state["step"], "train_seconds": float(tr.state["train_seconds"]), **info}


def fork_run(cfg: dict[str, Any], run_dir: Path) -> bool:
    """Start the run of ``cfg`` in ``run_dir`` from the checkpoint its donor kept at ``ckpt.fork_step``
    (:func:`column_config`): the donor's weights, optimiser and state at that step, its log up to that step,
    and ``cfg`` as the run's config. False (nothing written) when ``cfg`` has no donor or the donor has not
    reached that step yet: the column then trains from its start, to the same result."""
    from robusthide.training.checkpoint import read_checkpoint, write_checkpoint

    donor, k = cfg["ckpt"].get("fork_from"), cfg["ckpt"].get("fork_step")
    if not donor or not (Path(donor) / f"step-{k}.json").exists():
        return False
    doc, tensors = read_checkpoint(donor, f"step-{k}")
    doc["config"] = cfg
    run_dir.mkdir(parents=True, exist_ok=True)
    log = Path(donor) / "metrics.jsonl"
    rows = [ln for ln in (log.read_text().splitlines() if log.exists() else [])
            if ln.strip() and json.loads(ln).get("step", 0) <= k]
    (run_dir / "metrics.jsonl").write_text("".join(r + "\n" for r in rows))
    write_checkpoint(run_dir, tensors, doc)
    return True


def load_column_model(cfg: dict[str, Any]) -> Any:
    from robusthide.training.checkpoint import load_checkpoint
    from robusthide.training.trainer import model_from_config

    model = model_from_config(cfg)
    load_checkpoint(Path(cfg["out"]) / cfg["name"], model, None)
    return model.eval()


# -- measuring ----------------------------------------------------------------------------------------------


def _finite_mean(v: Any) -> float:
    v = np.asarray(v, dtype=np.float64)
    fin = v[np.isfinite(v)]
    return float(fin.mean()) if fin.size else float("inf")


def calibrate_strength(method: Any, covers: list[np.ndarray], target: float, seed: int = 0,
                       iters: int = 14, tol: float = 0.05) -> float:
    """The strength factor in [1/64, 64] whose marked images have mean PSNR ``target`` (dB), within ``tol``.

    The residual's MSE grows as the square of the factor (up to clamping and uint8 rounding), so the next
    guess is ``s * 10 ** ((PSNR - target) / 20)``, safeguarded by bisection (in log space) of the bracket.
    """
    from robusthide.metrics import psnr

    x = np.stack(covers)
    bits = np.random.default_rng(seed).integers(0, 2, size=(len(x), method.n_bits)).astype(np.uint8)

    def mean_psnr(s: float) -> float:
        vals = [psnr(method.embed(x[k:k + 16], bits[k:k + 16], strength=s), x[k:k + 16], reduction="none")
                for k in range(0, len(x), 16)]
        return min(_finite_mean(np.concatenate(vals)), 120.0)  # unmarked (inf) reads as 120 dB

    lo, hi = 1 / 64, 64.0      # PSNR(lo) > target > PSNR(hi) is assumed, then checked at the ends
    s = 1.0
    for _ in range(iters):
        p = mean_psnr(s)
        if abs(p - target) <= tol:
            return round(s, 4)
        lo, hi = (s, hi) if p > target else (lo, s)
        guess = s * 10 ** ((p - target) / 20)
        s = guess if lo < guess < hi else math.sqrt(lo * hi)
        if hi / lo < 1.0005:
            break
    return round(s, 4)


def _se(values: Any) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def measure(method: Any, images: list[np.ndarray], rep: Reproduction, strength: float,
            seed: int) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """BER (%) per row and PSNR / SSIM of one method: ``{row label: {value, se, per_image}}``, and the
    codecs' own PSNR / bpp per row."""
    from robusthide.evaluation.attacks_grammar import expand_attacks
    from robusthide.evaluation.matrix import robustness_matrix

    specs = {r.label: expand_attacks(r.attack)[0].spec for r in rep.rows if r.attack is not None}
    res = robustness_matrix(method, images, list(dict.fromkeys(specs.values())), seed=seed, strength=strength,
                            batch=16, progress=False)
    by = {r["attack"]: r for r in res["rows"]}
    per = res["per_image"]
    samples = {lab: [100 * v for v in per["ber"][s]] for lab, s in specs.items()}
    samples["PSNR"], samples["SSIM"] = list(per["psnr_rgb"]), list(per["ssim"])
    values = {lab: 100 * by[s]["ber"] for lab, s in specs.items()}
    values["PSNR"], values["SSIM"] = res["quality"]["psnr_rgb"], res["quality"]["ssim"]
    cells = {lab: {"value": values[lab], "se": _se(v), "per_image": v} for lab, v in samples.items()}
    codec = {lab: {"psnr": by[s]["psnr_attacked"], "bpp": by[s]["bpp"]} for lab, s in specs.items()}
    return cells, codec


# -- the run ------------------------------------------------------------------------------------------------


def command_line(name: str, steps: int | None = None, n_test: int | None = None, *, data: str | Path,
                 runs: str | Path, out: str | Path, defaults: Mapping[str, str] | None = None,
                 net: str | None = None, size: int | None = None, seed: int | None = None,
                 tag: str | None = None, columns: list[str] | None = None, warm_steps: int | None = None,
                 warm_mode: str | None = None) -> str:
    """The ``robusthide reproduce`` command of a run; flags whose value equals ``defaults`` (the CLI's:
    ``{"data": ..., "runs": ..., "out": ...}``) are left out."""
    d = defaults or {}
    parts = ["robusthide", "reproduce", name]
    for flag, v, default in (("--net", net, None), ("--size", size, None), ("--seed", seed, None),
                             ("--tag", tag, None), ("--steps", steps, None), ("--warm-steps", warm_steps, None),
                             ("--warm-mode", warm_mode, None),
                             ("--n-test", n_test, None),
                             ("--data", data, d.get("data")), ("--runs", runs, d.get("runs")),
                             ("--out", out, d.get("out"))):
        if v is not None and str(v) != str(default):
            parts += [flag, str(v)]
    for c in columns or []:
        parts += ["--column", c]
    return shlex.join(parts)


def train_columns(rep: Reproduction, keys: list[str], steps: int, data: str | Path, runs: str | Path,
                  progress: bool = True, warm: int | None = None, device: str | None = None,
                  compile: bool = False) -> list[dict[str, Any]]:
    """Train (resume, or skip when finished) the shared warm start and the columns named by ``keys`` (the key
    ``warm-start`` alone: only the warm start), without evaluating; one record per run: ``label``, ``run_dir``,
    ``status``, ``step``, ``train_seconds``. Two processes must never train the same run folder at once: train
    the warm start first, then columns in parallel."""
    cols = [find_column(rep, k) for k in keys if k not in (WARM.slug, WARM.label)]
    out = []
    todo: list[tuple[Column, dict[str, Any]]] = []
    if rep.budget.warm_steps:  # every column starts from it: trained first (``--column warm-start``: alone)
        todo.append((WARM, warm_config(rep, data, runs, steps, warm)))
    todo += [(c, column_config(rep, c, steps, data, runs)) for c in cols]
    for col, cfg in todo:
        info = train_column(cfg, progress, device, compile)
        out.append({"label": col.label, "run_dir": str(Path(cfg["out"]) / cfg["name"]), **info})
    return out


def run_reproduction(name: str, steps: int | None = None, n_test: int | None = None, *, data: str | Path,
                     runs: str | Path, out: str | Path, progress: bool = True,
                     command_defaults: Mapping[str, str] | None = None, net: str | None = None,
                     size: int | None = None, seed: int | None = None, tag: str | None = None,
                     columns: list[str] | None = None, warm_steps_n: int | None = None,
                     device: str | None = None, warm_mode: str | None = None,
                     compile: bool = False) -> dict[str, Any]:
    """Train and evaluate reproduction ``name``; write ``OUT/NAME.md`` / ``.json``; return the JSON document.

    ``net`` / ``size`` / ``seed`` / ``tag`` / ``warm_mode``: a budget variant (:func:`variant`). ``warm_steps_n``:
    the shared warm start's steps (``--warm-steps``), fixed instead of scaled with ``steps``. ``columns``: train
    only the shared warm start and these columns (labels or slugs), evaluate nothing, write nothing to ``out``, and
    return ``{"name", "command", "trained": [...]}`` (:func:`train_columns`). ``device``: where the columns train
    (:func:`train_column`); the test always runs on the CPU. ``compile``: the columns' nets through
    ``torch.compile`` (:func:`train_column`).
    """
    import torch
    from tqdm import tqdm

    from robusthide.evaluation.matrix import ModelMethod

    base = get_reproduction(name)
    rep = variant(base, net, size, seed, tag, warm_mode)
    flags = {"net": net, "size": size, "seed": seed, "tag": tag, "warm_mode": warm_mode}
    if steps is not None and rep.kind != "train":
        raise RobustHideError(f"{name} trains nothing (a test-time sweep of the '{rep.model}' model): "
                              "--steps does not apply")
    if steps is not None and steps < 1:
        raise RobustHideError(f"--steps must be at least 1, got {steps}")
    if warm_steps_n is not None:
        if not (rep.kind == "train" and rep.budget.warm_steps):
            raise RobustHideError(f"{name} has no warm start: --warm-steps does not apply")
        if warm_steps_n < 1:
            raise RobustHideError(f"--warm-steps must be at least 1, got {warm_steps_n}")
    flags["warm_steps"] = warm_steps_n
    b = rep.budget
    steps = b.steps if steps is None else steps
    n = b.n_test if n_test is None else n_test
    if columns:
        if rep.kind != "train":
            raise RobustHideError(f"{name} trains nothing: --column does not apply")
        trained = train_columns(rep, columns, steps, data, runs, progress, warm_steps_n, device, compile)
        return {"name": rep.name, "trained": trained,
                "command": command_line(name, None if steps == b.steps else steps, None, data=data, runs=runs,
                                        out=out, defaults=command_defaults, columns=columns, **flags)}
    t0 = time.time()
    images = test_images(data, n, b.size, seed=b.seed, max_side=b.max_side)
    ours: dict[str, dict[str, dict[str, Any]]] = {}
    codec: dict[str, Any] = {}
    cols: list[dict[str, Any]] = []
    warm_info: dict[str, Any] | None = None
    bar = tqdm(total=len(rep.columns), desc=f"reproduce {name}", unit="column", disable=not progress,
               dynamic_ncols=True)
    try:
        if rep.kind == "sweep":
            from robusthide.zoo import load_model

            method = ModelMethod(load_model(rep.model or "default"), name=rep.model)
            for col, s in zip(rep.columns, rep.strengths):
                ours[col.label], c = measure(method, images, rep, s, b.seed)
                codec = codec or c
                cols.append({"label": col.label, "strength": s})
                bar.update(1)
        else:
            if b.warm_steps:
                bar.set_postfix_str(WARM.label)
                warm_info = train_column(warm_config(rep, data, runs, steps, warm_steps_n), progress, device,
                                         compile)
            for col in rep.columns:
                cfg = column_config(rep, col, steps, data, runs)
                bar.set_postfix_str(col.label[:30])
                info = train_column(cfg, progress, device, compile)
                method = ModelMethod(load_column_model(cfg), name=col.label)
                s = calibrate_strength(method, images, b.psnr, b.seed) if b.psnr is not None else 1.0
                ours[col.label], c = measure(method, images, rep, s, b.seed)
                codec = codec or c
                cols.append({"label": col.label, "note": col.note, "overrides": col.overrides,
                             "n_bits": int(method.n_bits), "run_dir": str(Path(cfg["out"]) / cfg["name"]), **info,
                             "train_minutes": round(info["train_seconds"] / 60, 2), "strength": s})
                bar.update(1)
    finally:
        bar.close()
    # the same images and messages in every column: claims use paired differences (per_image)
    flat = {(c, r): (v["value"], v["per_image"]) for c, rows in ours.items() for r, v in rows.items()}
    claims = [dict(judge(cl, rep.paper, flat), sentence=sentence(cl, rep.paper, flat)) for cl in rep.claims]
    for c in claims:
        c.pop("pairs")
    doc = {
        "name": rep.name, "title": rep.title, "source": rep.source, "kind": rep.kind,
        "command": command_line(name, None if steps == b.steps or rep.kind != "train" else steps,
                                None if n == b.n_test else n, data=data, runs=runs, out=out,
                                defaults=command_defaults, **flags),
        "budget": {"net": b.net if rep.kind == "train" else f"{rep.model} (zoo)", "n_bits": b.n_bits,
                   "size": b.size, "batch": b.batch, "steps": steps if rep.kind == "train" else 0,
                   "psnr_target": b.psnr, "n_test": n, "max_side": b.max_side, "seed": b.seed,
                   "train_seed": b.seed if b.train_seed is None else b.train_seed,
                   "threads": torch.get_num_threads(), "data": str(data),
                   "train_minutes_total": round(sum(c.get("train_minutes", 0) for c in cols), 2),
                   "warm_steps": warm_steps(rep, steps, warm_steps_n) if rep.kind == "train" else 0,
                   "warm_mode": b.warm_mode,
                   "warm_minutes": round(warm_info["train_seconds"] / 60, 2) if warm_info else 0.0},
        "columns": cols,
        "curves": {c["label"]: column_curve(c["run_dir"]) for c in cols if c.get("run_dir")},
        "rows": [{"label": r.label, "attack": r.attack} for r in rep.rows],
        "ours": ours,
        "codec": codec,
        "paper": rep.paper,
        "claims": claims,
        "notes": _variant_notes(rep, base, b),
        "seconds": round(time.time() - t0, 1),
        "robusthide": __version__,
        "date": datetime.date.today().isoformat(),
    }
    write_results(doc, rep, out)
    return doc


def _variant_notes(rep: Reproduction, base: Reproduction, b: Budget) -> list[str]:
    """The results file's notes: a variant (``--net``, ``--size``, ``--seed``) first says what it trains, and
    drops the base's "Network:" note when it trains another net than the base's."""
    if rep.name == base.name:
        return list(rep.notes)
    other_net = b.net != base.budget.net
    head = (f"This variant trains the `{b.net}` net" + (f" (the base trains `{base.budget.net}`)" if other_net else "")
            + f", {b.size}x{b.size}, training seed {b.seed if b.train_seed is None else b.train_seed}"
            + (", with its paper's losses and weights (reproduce_specs.NET_RECIPES)" if b.net in NET_RECIPES else "")
            + ".")
    return [head] + [n for n in rep.notes if not (other_net and n.startswith("Network:"))]


# -- writing ------------------------------------------------------------------------------------------------


def _num(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if v != 0 and abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.{digits}f}"


def _paper_num(v: Any) -> str:
    """A paper's number as printed, without trailing zeros (12.63, 0.00063, 0)."""
    return v if isinstance(v, str) else ("-" if v is None else f"{v:.6g}")


def _table(head: list[str], body: list[list[str]], align: str = "") -> list[str]:
    """A markdown table; ``align``: one of ``l`` / ``r`` per column after the first (default: all ``r``)."""
    align = align or "r" * (len(head) - 1)
    return ["| " + " | ".join(head) + " |", "|---|" + "".join("---:|" if a == "r" else "---|" for a in align),
            *("| " + " | ".join(r) + " |" for r in body)]


def _column_bits(doc: dict[str, Any]) -> list[int]:
    """The payloads of the columns, largest first, when some column's differs from the budget's (``mbrs-table2``:
    64 and 30 bits); else empty."""
    n = {int(c.get("n_bits", doc["budget"]["n_bits"])) for c in doc["columns"]}
    return sorted(n, reverse=True) if n != {int(doc["budget"]["n_bits"])} else []


def render_markdown(doc: dict[str, Any], rep: Reproduction) -> str:
    b = doc["budget"]
    labels = [c["label"] for c in doc["columns"]]
    ber_rows = [r for r in rep.rows if r.attack is not None]
    q_rows = ["PSNR", "SSIM"]
    lines = [f"# Reproduction `{rep.name}`: {rep.title}", "", f"Source: {rep.source}.", "",
             "Command" + (" (resumable: finished columns are skipped):" if rep.kind == "train" else ":"), "",
             "```", doc["command"], "```", ""]
    lines += ["## Budget (the same for every column)", ""]
    if rep.kind == "train":
        payload = "a payload per column (below)" if _column_bits(doc) else f"payload {b['n_bits']} bits"
        lines.append(f"Net `{b['net']}`, {payload}, images {b['size']}x{b['size']}, batch "
                     f"{b['batch']}, **{b['steps']} steps per column** on the train split of `{b['data']}` "
                     f"(photos downscaled to {b['max_side']} px), evaluated on {b['threads']} CPU thread(s). "
                     f"Training time measured by the trainer (`train_seconds`, wall clock of the steps): "
                     f"{b['train_minutes_total']:.1f} min in all.")
        if b.get("warm_steps"):
            then = ("with its paper's fixed loss weights" if b["net"] in NET_RECIPES else
                    "with the image loss ramped in over the first third")
            what = ("of the net's whole recipe, its paper's losses and weights, on identity (a shared "
                    "pretraining: the columns are fine-tunes of it)" if b.get("warm_mode") == "full" else
                    "of the message path alone (no image loss, no attack")
            lines.append(f"Every column starts from one shared warm start: {b['warm_steps']} steps {what}; "
                         f"{b['warm_minutes']:.1f} min), then trains its {b['steps']} steps {then}.")
        lines.append("")
        bits = _column_bits(doc)
        lines += _table(["column", *(["bits"] if bits else []), "training (min)", "status", "strength factor", "note"],
                        [[c["label"], *([str(c["n_bits"])] if bits else []), _num(c["train_minutes"], 1), c["status"],
                          _num(c["strength"], 3), c.get("note", "")] for c in doc["columns"]],
                        ("r" if bits else "") + "rlrl")
        lines.append("")
        lines.append(f"Test: {b['n_test']} crops of the validation photos ({b['size']}x{b['size']}), the same "
                     f"images and messages for every column; each column's test-time strength factor is "
                     f"calibrated to PSNR {b['psnr_target']} dB (marked vs cover) before the codecs are applied.")
    else:
        lines.append(f"No training: model `{rep.model}` from the zoo; {b['n_bits']} bits; test on {b['n_test']} "
                     f"crops of the validation photos ({b['size']}x{b['size']}).")
    res = ", ".join(f"one bit in {b['n_test']} x {n} = {100.0 / (b['n_test'] * n):.3g} %"
                    for n in (_column_bits(doc) or [b["n_bits"]]))
    lines += ["", f"BER resolution: {res}. Our cells are "
              "mean ± standard error over images. The images and messages are the same in every column, so a "
              "claim compares two cells by their per-image differences: a difference within two standard errors "
              "of that paired difference counts as a tie (≈).", ""]
    lines += ["## Ours (BER %)", ""]
    body = []
    for r in ber_rows:
        cells = [f"{_num(doc['ours'][c][r.label]['value'])} ± {_num(doc['ours'][c][r.label]['se'])}" for c in labels]
        cd = doc["codec"].get(r.label, {})
        body.append([f"{r.label} (`{r.attack}`)", *cells, f"{_num(cd.get('psnr'), 1)} / {_num(cd.get('bpp'))}"])
    for q in q_rows:
        body.append([f"{q} marked vs cover", *[_num(doc["ours"][c][q]["value"], 4 if q == "SSIM" else 2)
                                               for c in labels], ""])
    lines += _table(["test", *labels, "codec PSNR (dB) / bpp"], body)
    if any(doc.get("curves", {}).values()):
        lines += ["", f"Learning curves: `{rep.name}.png` (training BER under each column's noise pool, and PSNR, "
                  "against step; from each column's `metrics.jsonl`, kept in the JSON's `curves`)."]
    lines += ["", "## Paper", ""]
    paper_rows = [r.label for r in rep.rows if r.label in rep.paper] + [r for r in rep.paper
                                                                         if r not in {x.label for x in rep.rows}]
    lines += _table(["test", *labels], [[r, *[_paper_num(rep.paper[r].get(c)) for c in labels]] for r in paper_rows])
    lines += ["", "`-`: not reported; `lost`: lost in the text conversion of the paper; `≈`: stated in the prose.",
              "", "## Claims: does our ordering agree with the paper's?", ""]
    lines += [f"- {c['sentence']}" for c in doc["claims"]]
    n_ag = sum(c["verdict"] in ("agrees", "agrees where resolved") for c in doc["claims"])
    lines += ["", f"{n_ag} of {len(doc['claims'])} claims agree (at least where resolved)."]
    lines += ["", "## Notes: substitutions, and why ours may differ", ""]
    lines += [f"- {t}" for t in doc.get("notes", rep.notes)]
    if rep.kind == "train":
        lines.append(f"- Budget: {b['steps']} steps per column is a small fraction of the papers' training "
                     "(tens of thousands of steps on 10k images); orderings that depend on long training "
                     "(e.g. simulators over-fitting) may not have formed yet.")
    lines += ["", f"robusthide {doc['robusthide']}, {doc['date']}, {doc['seconds']:.0f} s in all.", ""]
    return "\n".join(lines)


def write_results(doc: dict[str, Any], rep: Reproduction, out: str | Path) -> dict[str, str]:
    """Write ``OUT/NAME.md``, ``.json`` and, when the columns have training logs, ``NAME.png`` (their learning
    curves). A section headed :data:`READING_HEADING` at the end of an existing ``NAME.md`` (a person's
    interpretation of the numbers) is kept below the regenerated tables."""
    from robusthide.evaluation.matrix import _jsonable

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    md, js = d / f"{rep.name}.md", d / f"{rep.name}.json"
    write_keeping_reading(md, render_markdown(doc, rep))
    js.write_text(json.dumps(_jsonable(doc), indent=1, ensure_ascii=False) + "\n")
    written = {"md": str(md), "json": str(js)}
    png = plot_curves(doc.get("curves", {}), f"{rep.name}: learning curves", d / f"{rep.name}.png")
    if png:
        written["png"] = png
    return written
