"""``robusthide plot RUN``: training curves of any family's run to PNG.

A watermark run (rows with ``msg_loss``) gets its four panels (message loss, BER, PSNR, image-loss weight,
with the validation points); the run of any other family (image hiding, the latent codec, decoder and
LISO, whose log is ``log.jsonl``) one panel per logged metric, its validation metrics as points.

Several runs compared (a reproduction's columns, an ablation's variants): :func:`log_curve` keeps a few of
each run's logged metrics, thinned so that a results JSON can carry them after ``runs/`` is gone, and
:func:`plot_curves` draws them side by side, one line per run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from robusthide import RobustHideError


def plot_run(run: str | Path, output: str | Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    path = next((run / n for n in ("metrics.jsonl", "log.jsonl") if (run / n).exists()), None)
    if path is None:
        raise RobustHideError(f"no metrics.jsonl (or log.jsonl) in {run}")
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except ValueError as e:
        raise RobustHideError(f"{path}: not a JSON-lines log ({e})") from None
    out = Path(output) if output else run / "curves.png"
    if not any("msg_loss" in r for r in rows):
        return _plot_generic(plt, rows, run.name, out)
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_psnr" in r]
    fig, ax = plt.subplots(2, 2, figsize=(11, 7))
    s = [r["step"] for r in train]
    ax[0, 0].plot(s, [r["msg_loss"] for r in train], lw=0.8)
    ax[0, 0].set(title="message loss (train, attacked)", xlabel="step", yscale="log")
    ax[0, 1].plot(s, [r["ber"] for r in train], lw=0.8, label="train (attacked)")
    for key, lab in (("val_ber_identity", "val, no attack"), ("val_ber_codec", "val, real codec")):
        ax[0, 1].plot([r["step"] for r in val], [r[key] for r in val], "o-", label=lab)
    ax[0, 1].set(title="bit error rate", xlabel="step", yscale="symlog", ylim=(0, 0.6))
    ax[0, 1].set_yscale("symlog", linthresh=1e-3)
    ax[0, 1].legend()
    ax[1, 0].plot(s, [r["psnr"] for r in train], lw=0.8, label="train")
    ax[1, 0].plot([r["step"] for r in val], [r["val_psnr"] for r in val], "o-", label="val")
    ax[1, 0].set(title="PSNR (dB)", xlabel="step", ylim=(25, 60))
    ax[1, 0].legend()
    ax[1, 1].plot(s, [r["img_weight"] for r in train], lw=0.8)
    ax[1, 1].set(title="image-loss weight (dual ascent)", xlabel="step", yscale="log")
    fig.suptitle(run.name)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


_NOT_PLOTTED = {"step", "img_per_s", "train_seconds", "sec"}


def _plot_generic(plt, rows: list[dict], title: str, out: Path) -> Path:
    """One panel per numeric metric of the training rows (and the validation rows, drawn as points)."""
    num = (int, float)
    train = [r for r in rows if not any(k.startswith("val_") for k in r)]
    val = [r for r in rows if any(k.startswith("val_") for k in r)]
    keys = [k for k in dict.fromkeys(k for r in train for k in r) if k not in _NOT_PLOTTED
            and all(isinstance(r.get(k), num) and not isinstance(r.get(k), bool) for r in train if k in r)]
    vkeys = [k for k in dict.fromkeys(k for r in val for k in r) if k.startswith("val_")]
    panels = [(k, False) for k in keys] + [(k, True) for k in vkeys]
    if not panels:
        raise RobustHideError(f"{title}: the log has no metrics to plot")
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    fig, ax = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for a, (k, is_val) in zip(ax.flat, panels):
        src = val if is_val else train
        pts = [(r["step"], r[k]) for r in src if isinstance(r.get(k), num) and "step" in r]
        a.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if is_val else "-", lw=0.8)
        a.set(title=k, xlabel="step")
    for a in list(ax.flat)[len(panels):]:
        a.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


#: at most this many points per curve that :func:`log_curve` keeps (evenly spaced, the last step always kept)
MAX_POINTS = 120


def log_curve(run_dir: str | Path, fields: Mapping[str, float]) -> dict[str, list[float]]:
    """``{"step": [...], field: [...], ...}`` from ``run_dir/metrics.jsonl``: the rows that log every field of
    ``fields`` (training steps, not validations), each value times its factor (100 for a rate in %), at most
    :data:`MAX_POINTS` of them; empty when the run has no such log (trained elsewhere, or before logs were kept)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return {}
    rows = []
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:  # a line cut off by a killed run
            continue
        if isinstance(r, dict) and "step" in r and all(isinstance(r.get(k), (int, float)) for k in fields):
            rows.append(r)
    if not rows:
        return {}
    stride = max(1, -(-len(rows) // MAX_POINTS))
    kept = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
    return {"step": [int(r["step"]) for r in kept],
            **{k: [round(f * float(r[k]), 3) for r in kept] for k, f in fields.items()}}


def plot_curves(curves: Mapping[str, Mapping[str, list[float]]], labels: Mapping[str, str], title: str,
                path: str | Path) -> str | None:
    """One panel per field of ``labels`` (field -> axis label) against step, one line per run of ``curves``
    (name -> :func:`log_curve`); None, and no file, when no run has a curve."""
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(labels), figsize=(6.2 * len(labels), 4.2), squeeze=False)
    for ax, (field, label) in zip(axes[0], labels.items()):
        for name, c in curves.items():
            if field in c:
                ax.plot(c["step"], c[field], label=name, lw=1.2)
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
