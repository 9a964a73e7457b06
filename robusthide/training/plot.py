"""``robusthide plot RUN``: training curves (loss, BER, PSNR, image-loss weight, validation) to PNG."""

from __future__ import annotations

import json
from pathlib import Path

from robusthide import RobustHideError


def plot_run(run: str | Path, output: str | Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    path = run / "metrics.jsonl"
    if not path.exists():
        raise RobustHideError(f"no metrics.jsonl in {run}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
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
    out = Path(output) if output else run / "curves.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
