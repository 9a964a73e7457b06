"""The training runs of a reproduction (``robusthide reproduce``, :mod:`robusthide.evaluation.reproduce`): the
config of each column and of the shared warm start, runs that share their first steps trained once (forked from
the earliest), and one column trained, resumed or skipped with its stored config checked against today's.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from robusthide import RobustHideError
from robusthide.evaluation.reproduce_specs import NET_RECIPES, Budget, Column, Reproduction

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
