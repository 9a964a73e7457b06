"""Learning curves of a reproduction's columns (issue 23, item 6): read from each column's training log
(``RUN/metrics.jsonl``, written by the one training loop), kept in the results JSON so that the plot can be
redrawn after ``runs/`` is gone, and drawn as ``OUT/NAME.png``."""

from __future__ import annotations

import json
from pathlib import Path

#: at most this many points per curve in the results JSON (evenly spaced, the last step always kept)
MAX_POINTS = 120
#: the training log's fields drawn, with their axis labels
FIELDS = {"ber": "training BER % (under the column's noise pool)", "psnr": "training PSNR (dB, marked vs cover)"}


def column_curve(run_dir: str | Path) -> dict[str, list[float]]:
    """``{"step": [...], "ber": [...], "psnr": [...]}`` from ``run_dir/metrics.jsonl`` (BER in %); empty
    when the run has no log (a column trained elsewhere, or before logs were kept)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return {}
    rows = []
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:  # a line cut off by a killed run
            continue
        if isinstance(r, dict) and "step" in r and all(k in r for k in FIELDS):
            rows.append(r)
    if not rows:
        return {}
    stride = max(1, -(-len(rows) // MAX_POINTS))
    kept = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
    return {"step": [int(r["step"]) for r in kept], "ber": [round(100.0 * float(r["ber"]), 3) for r in kept],
            "psnr": [round(float(r["psnr"]), 2) for r in kept]}


def plot_curves(curves: dict[str, dict[str, list[float]]], title: str, path: str | Path) -> str | None:
    """Training BER and PSNR against step, one line per column, side by side; None when no column has a
    curve."""
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(FIELDS), figsize=(6.2 * len(FIELDS), 4.2))
    for ax, (field, label) in zip(axes, FIELDS.items()):
        for name, c in curves.items():
            ax.plot(c["step"], c[field], label=name, lw=1.2)
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
