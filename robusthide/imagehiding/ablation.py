"""Paper 003 Table 2 at a CPU budget: ``robusthide imagehide ablate CONFIG``.

Paper 003 (§3.2, Table 2) removes one component at a time and reports the revealed secret's PSNR / SSIM
after JPEG: without progressive recovery 13.66 / 0.612, without any discriminator 15.37 / 0.726, with a
traditional U-Net 18.16 / 0.817, without the proposed JPEG simulator 23.95 / 0.839, fully implemented
26.68 / 0.875. Its protocol: "we train the modified pipeline using the same learning rates and optimizers
... until the reconstruction loss of the marked image in each test is close to that of the fully
implemented proposed method". Ours follows it with a fixed budget: every variant trains the same number of
steps from the same seed, and the container-PSNR controller (``train.target_psnr``) holds every variant's
container at the same PSNR, so the revealed images are compared at equal imperceptibility.

Variants (:data:`VARIANTS`), each a change of the base config:

* ``full``: the config as it is;
* ``no-simulator``: paper003's JPEG branch with one simulator (HiDDeN's JPEG-Mask, ``jpegmask-hidden``)
  instead of the mix-up of eq. (1);
* ``unet``: ``model.multi_branch: false``, one encoder on the concatenated inputs;
* ``no-disc``: ``disc.enabled: false``;
* ``no-progressive``: ``model.progressive: false``, no decoupling network, the reveal network reads the
  attacked container.

Every variant's run lives in ``RUNS/<config name>-t2-<variant>`` and resumes when rerun (a finished run is
only evaluated again). Each is exported (``model.safetensors`` in its run folder) and measured by
:func:`robusthide.imagehiding.evaluate.evaluate`. The table goes to ``OUT.md`` / ``OUT.json`` (a
hand-written "Reading" section of an existing ``OUT.md`` is kept) with a bar chart ``OUT.png``.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robusthide import RobustHideError


@dataclass(frozen=True)
class Variant:
    """One row of paper 003 Table 2: its label in the paper, and the paper's revealed PSNR / SSIM."""

    label: str
    paper_psnr: float
    paper_ssim: float


#: Paper 003 Table 2, in the paper's order from the weakest configuration to the full one.
VARIANTS: dict[str, Variant] = {
    "no-progressive": Variant("Without progressive recovery", 13.66, 0.612),
    "no-disc": Variant("Without any discriminator", 15.37, 0.726),
    "unet": Variant("Implementing using traditional U-Net", 18.16, 0.817),
    "no-simulator": Variant("Without the proposed JPEG simulator", 23.95, 0.839),
    "full": Variant("Fully implemented", 26.68, 0.875),
}

#: Single JPEG simulator of the ``no-simulator`` variant (HiDDeN's JPEG-Mask, the simulator of ref. [14]).
SINGLE_SIMULATOR = "jpegmask-hidden"

#: Attacks measured for every variant: the Table 2 column is ``jpeg:q=50`` (the paper's quality was lost).
TABLE_ATTACKS: tuple[str, ...] = ("none", "jpeg:q=90", "jpeg:q=75", "jpeg:q=50", "resize:0.5", "blur:1",
                                  "noise:0.02")
TABLE_COLUMN = "jpeg:q=50"


def variant_config(base: dict[str, Any], variant: str, steps: int, size: int | None = None,
                   target_psnr: float | None = None) -> dict[str, Any]:
    """The validated training config of one variant of ``base`` (a config from ``load_config``)."""
    from robusthide.imagehiding.train import load_config

    if variant not in VARIANTS:
        raise RobustHideError(f"unknown ablation variant {variant!r} (known: {', '.join(VARIANTS)})")
    cfg = copy.deepcopy(base)
    cfg["name"] = f"{base['name']}-t2-{variant}"
    cfg["train"]["steps"] = steps
    if size is not None:
        cfg["model"]["size"] = size
    if target_psnr is not None:
        cfg["train"]["target_psnr"] = float(target_psnr)
    if variant == "unet":
        cfg["model"]["multi_branch"] = False
    elif variant == "no-disc":
        cfg["disc"]["enabled"] = False
    elif variant == "no-progressive":
        cfg["model"]["progressive"] = False
    elif variant == "no-simulator":
        spec = str(cfg["attack"]["spec"]).strip()
        if not spec.startswith("paper003") or "kinds" in spec:
            raise RobustHideError(f"variant no-simulator needs a paper003 attack spec without kinds=, got {spec!r}")
        body = spec[len("paper003"):].strip()
        inner = body[1:-1].strip() if body.startswith("(") else ""
        cfg["attack"]["spec"] = f"paper003(kinds={SINGLE_SIMULATOR}" + (f", {inner})" if inner else ")")
    return load_config(cfg)


#: the training log's fields each variant's learning curve keeps (the results JSON and the plot's second panel):
#: the revealed secrets' and the container's PSNR on the training batches, under the training attacks
CURVE_FIELDS = {"psnr_secret": 1.0, "psnr_container": 1.0}


def run_variant(cfg: dict[str, Any], data: str | Path, n: int, attacks: Sequence[str], seed: int = 0,
                split: str | None = "val", progress: bool = True) -> dict[str, Any]:
    """Train (or resume) one variant's run to ``train.steps``, export it, evaluate it; return the document of
    :func:`~robusthide.imagehiding.evaluate.evaluate` with the run's training time added."""
    from robusthide.imagehiding.checkpoint import export_model
    from robusthide.imagehiding.evaluate import evaluate
    from robusthide.imagehiding.train import ImageHideTrainer
    from robusthide.training.plot import log_curve

    run_dir = Path(cfg["out"]) / cfg["name"]
    trainer = ImageHideTrainer(cfg, resume=(run_dir / "latest.json").exists(), progress=progress)
    trainer.run()
    if trainer.state["step"] < cfg["train"]["steps"]:
        raise RobustHideError(f"{run_dir} stopped at step {trainer.state['step']} of {cfg['train']['steps']} "
                              "(interrupted): rerun the same command to resume")
    model = export_model(run_dir, run_dir / "model.safetensors", name=cfg["name"])
    doc = evaluate(model, data, n=n, split=split, attacks=attacks, seed=seed, progress=progress)
    doc["train_seconds"] = round(float(trainer.state["train_seconds"]), 1)
    doc["steps"] = trainer.state["step"]
    doc["curve"] = log_curve(run_dir, CURVE_FIELDS)
    return doc


def ablate(config: str | Path | dict[str, Any], variants: Sequence[str] = tuple(VARIANTS), steps: int = 1200,
           size: int | None = 32, target_psnr: float | None = 28.0, data: str | Path | None = None,
           n: int = 50, attacks: Sequence[str] = TABLE_ATTACKS, overrides: Sequence[str] = (),
           seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Train and measure each variant of ``config``; return the table document."""
    from robusthide.imagehiding.train import load_config

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise RobustHideError(f"steps must be a positive integer, got {steps!r}")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise RobustHideError(f"unknown ablation variant(s) {', '.join(unknown) or '(none given)'} "
                              f"(known: {', '.join(VARIANTS)})")
    if TABLE_COLUMN not in attacks:
        attacks = [*attacks, TABLE_COLUMN]
    base = load_config(config, list(overrides))
    data = data or base["data"]["train"]
    split = "val" if base["data"].get("split") else None  # the photos the runs never trained on
    t0 = time.time()
    rows: dict[str, Any] = {}
    for v in variants:
        cfg = variant_config(base, v, steps, size, target_psnr)
        rows[v] = run_variant(cfg, data, n, attacks, seed, split, progress)
        rows[v]["attack_spec"] = cfg["attack"]["spec"]
    return {"config": str(config) if not isinstance(config, dict) else base["name"], "base": base["name"],
            "steps": steps, "size": size or base["model"]["size"], "target_psnr": target_psnr,
            "data": str(data), "split": split or "all", "n": n, "seed": seed, "train_seed": base["seed"],
            "column": TABLE_COLUMN, "variants": rows,
            "seconds": round(time.time() - t0, 1)}


def to_markdown(doc: dict[str, Any]) -> str:
    """The Table 2 comparison as Markdown."""
    col = doc["column"]
    lines = [
        f"# Paper 003 Table 2 at a CPU budget: `{doc['base']}`",
        "",
        f"Every variant: {doc['steps']} steps from seed {doc['train_seed']} at "
        f"{doc['size']} x {doc['size']}, container PSNR held near {doc['target_psnr']} dB by the controller "
        f"(`train.target_psnr`); measured on {doc['n']} groups of `{doc['data']}` (split {doc['split']}; 8-bit "
        f"containers, real codecs). The paper's Table 2 column is the revealed secret after JPEG (its quality "
        f"was lost in the text); ours is after `{col}` (Pillow, 4:2:0).",
        "",
        *([f"Command: `{doc['command']}`", ""] if doc.get("command") else []),
        f"| configuration (paper 003 Table 2) | paper PSNR / SSIM | ours: container PSNR | revealed PSNR / SSIM, "
        f"no attack | revealed PSNR / SSIM, `{col}` | CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for v, r in doc["variants"].items():
        p, a0, a1 = VARIANTS[v], r["attacks"]["none"], r["attacks"][col]
        lines.append(f"| {p.label} (`{v}`) | {p.paper_psnr:.2f} / {p.paper_ssim:.3f} | {r['container']['psnr']:.2f} "
                     f"| {a0['psnr']:.2f} / {a0['ssim']:.3f} | {a1['psnr']:.2f} / {a1['ssim']:.3f} | "
                     f"{r['train_seconds']:.0f} |")
    names = [a for a in next(iter(doc["variants"].values()))["attacks"]]
    lines += ["", "Revealed-secret PSNR (dB) after every measured attack:", "",
              "| variant | " + " | ".join(f"`{a}`" for a in names) + " |",
              "|---|" + "---|" * len(names)]
    for v, r in doc["variants"].items():
        lines.append(f"| `{v}` | " + " | ".join(f"{r['attacks'][a]['psnr']:.2f}" for a in names) + " |")
    lines += ["", "Attack layer per variant: " + "; ".join(f"`{v}`: `{r['attack_spec']}`"
                                                          for v, r in doc["variants"].items()), "",
              f"{doc['seconds']:.0f} s in all (training of runs already finished is not counted again).", ""]
    return "\n".join(lines)


def plot(doc: dict[str, Any], path: str | Path) -> Path:
    """Bars of the revealed PSNR after the Table 2 attack, ours beside the paper's; beside them, when the runs'
    logs were read (:data:`CURVE_FIELDS`), each variant's learning curve: does the ordering form, or turn?"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vs = list(doc["variants"])
    ours = [doc["variants"][v]["attacks"][doc["column"]]["psnr"] for v in vs]
    paper = [VARIANTS[v].paper_psnr for v in vs]
    curves = {v: doc["variants"][v].get("curve") or {} for v in vs}
    fig, axes = plt.subplots(1, 2 if any(curves.values()) else 1, figsize=(13 if any(curves.values()) else 7, 3.6),
                             squeeze=False)
    ax = axes[0][0]
    if axes.shape[1] > 1:
        for v, c in curves.items():
            if c:
                axes[0][1].plot(c["step"], c["psnr_secret"], label=v, lw=1.1)
        axes[0][1].set_xlabel("training step")
        axes[0][1].set_ylabel("revealed secret PSNR (dB), training batches")
        axes[0][1].grid(alpha=0.3)
        axes[0][1].legend(fontsize=7)
        axes[0][1].set_title("learning curves (under the training attacks)")
    x = range(len(vs))
    ax.bar([i - 0.2 for i in x], paper, 0.4, label="paper 003 Table 2 (JPEG)")
    ax.bar([i + 0.2 for i in x], ours, 0.4, label=f"ours ({doc['column']}, {doc['steps']} steps, {doc['size']} px)")
    ax.set_xticks(list(x), vs)
    ax.set_ylabel("revealed secret PSNR (dB)")
    ax.legend(fontsize=8)
    ax.set_title("Paper 003 ablations")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_results(doc: dict[str, Any], out: str | Path) -> dict[str, str]:
    """``OUT.md``, ``OUT.json``, ``OUT.png``; a hand-written Reading section of ``OUT.md`` survives."""
    from robusthide.io.results import write_keeping_reading

    base = Path(out)
    base.parent.mkdir(parents=True, exist_ok=True)
    md, js, png = (base.with_name(base.name + s) for s in (".md", ".json", ".png"))
    write_keeping_reading(md, to_markdown(doc))
    js.write_text(json.dumps(doc, indent=1) + "\n")
    plot(doc, png)
    return {"md": str(md), "json": str(js), "png": str(png)}
