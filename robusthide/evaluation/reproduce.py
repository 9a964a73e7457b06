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

The columns' training runs are :mod:`robusthide.evaluation.reproduce_columns`, the results file
:mod:`robusthide.evaluation.reproduce_report`.
"""

from __future__ import annotations

import dataclasses
import datetime
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
from robusthide.evaluation.reproduce_columns import (
    WARM,
    column_config,
    load_column_model,
    train_column,
    warm_config,
    warm_steps,
)
from robusthide.evaluation.reproduce_curves import column_curve
from robusthide.evaluation.reproduce_report import write_results
from robusthide.evaluation.reproduce_specs import (
    NET_RECIPES,
    NETS,
    REPRODUCTIONS,
    WARM_MODES,
    Budget,
    Column,
    Reproduction,
)

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

