"""Learning curves of a reproduction's columns (issue 23, item 6): read from each column's training log
(``RUN/metrics.jsonl``, written by the one training loop; :func:`robusthide.training.plot.log_curve`), kept in the
results JSON so that the plot can be redrawn after ``runs/`` is gone, and drawn as ``OUT/NAME.png``."""

from __future__ import annotations

from pathlib import Path

from robusthide.training.plot import MAX_POINTS, log_curve
from robusthide.training.plot import plot_curves as _plot_curves

__all__ = ["FIELDS", "MAX_POINTS", "column_curve", "plot_curves"]

#: the training log's fields drawn, with their axis labels
FIELDS = {"ber": "training BER % (under the column's noise pool)", "psnr": "training PSNR (dB, marked vs cover)"}


def column_curve(run_dir: str | Path) -> dict[str, list[float]]:
    """``{"step": [...], "ber": [...], "psnr": [...]}`` from ``run_dir/metrics.jsonl`` (BER in %); empty
    when the run has no log (a column trained elsewhere, or before logs were kept)."""
    return log_curve(run_dir, {"ber": 100.0, "psnr": 1.0})


def plot_curves(curves: dict[str, dict[str, list[float]]], title: str, path: str | Path) -> str | None:
    """Training BER and PSNR against step, one line per column, side by side; None when no column has a
    curve."""
    return _plot_curves(curves, FIELDS, title, path)
