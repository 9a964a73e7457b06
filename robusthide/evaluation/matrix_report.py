"""Writing a robustness matrix and a strength sweep (:mod:`robusthide.evaluation.matrix`): Markdown tables,
JSON, CSV and plots, and the comparison of several methods' matrices.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robusthide.io.results import jsonable


def _fmt(x: Any, digits: int = 2, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if pct:
        return f"{100.0 * x:.{digits}f}"
    return f"{x:.{digits}f}"


OUT_EXTS = (".md", ".json", ".csv", ".png")


def out_paths(out_prefix: str | Path, exts: Sequence[str] = OUT_EXTS) -> dict[str, Path]:
    """``{'md': PREFIX.md, ...}`` (a prefix given with one of these extensions loses it; ``a-0.5`` stays)."""
    p = Path(out_prefix)
    if p.suffix in OUT_EXTS:
        p = p.with_suffix("")
    return {e.lstrip("."): p.with_name(p.name + e) for e in exts}


def _prefix(out_prefix: str | Path) -> Path:
    p = Path(out_prefix)
    if p.suffix in OUT_EXTS:
        p = p.with_suffix("")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def matrix_markdown(result: dict[str, Any]) -> str:
    """The matrix as a markdown table (BER and word accuracy in percent)."""
    q = result["quality"]
    pay = bool(result.get("payload"))
    sizes = ", ".join(f"{k} ({v})" for k, v in result["image_sizes"].items())
    lines = [
        f"# Robustness matrix: {result['method']}",
        "",
        f"{result['n_images']} images ({sizes}), {result['n_bits']} bits, seed {result['seed']}, "
        f"strength {result['strength']:g}, robusthide {result.get('robusthide', '?')}"
        + (f", decoded with the {result['search']} search" if result.get("search", "none") != "none" else "") + ".",
        "",
        *([f"Command: `{result['command']}`", ""] if result.get("command") else []),
        f"Marked vs cover (after uint8 rounding): PSNR RGB {_fmt(q['psnr_rgb'])} dB, "
        f"PSNR Y {_fmt(q['psnr_y'])} dB, SSIM {_fmt(q['ssim'], 4)}, "
        f"CIEDE2000 mean {_fmt(q['ciede2000_mean'], 3)} / p99 {_fmt(q['ciede2000_p99'], 3)}, "
        f"APD {_fmt(q.get('apd'), 3)}/255.",
        "",
        "| attack | BER % | word acc. % |" + (" msg exact % |" if pay else "")
        + " PSNR attacked vs marked (dB) | SSIM attacked vs marked | bpp |",
        "|---|---:|---:|" + ("---:|" if pay else "") + "---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| `{r['attack']}` | {_fmt(r['ber'], 2, True)} | {_fmt(r['word_acc'], 1, True)} | "
                     + (f"{_fmt(r.get('msg_exact'), 1, True)} | " if pay else "")
                     + f"{_fmt(r['psnr_attacked'])} | {_fmt(r['ssim_attacked'], 4)} | {_fmt(r['bpp'], 3)} |")
    return "\n".join(lines) + "\n"


CSV_FIELDS = ["attack", "family", "param", "value", "ber", "ber_std", "ber_max", "word_acc", "msg_exact",
              "psnr_attacked",
              "ssim_attacked", "bpp", "n",
              "psnr_rgb", "psnr_y", "ssim", "ciede2000_mean", "ciede2000_p99", "apd"]


def write_matrix(result: dict[str, Any], out_prefix: str | Path, plot: bool = True) -> dict[str, str]:
    """Write ``PREFIX.md``, ``PREFIX.json``, ``PREFIX.csv`` and ``PREFIX.png`` (BER against quality)."""
    _prefix(out_prefix)
    paths = out_paths(out_prefix, (".md", ".json", ".csv"))
    paths["md"].write_text(matrix_markdown(result))
    paths["json"].write_text(json.dumps(jsonable(result), indent=1) + "\n")
    with paths["csv"].open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in result["rows"]:
            row = {k: r.get(k) for k in CSV_FIELDS}
            row.update(result["quality"])
            w.writerow({k: ("" if v is None else v) for k, v in jsonable(row).items()})
    if plot:
        paths["png"] = out_paths(out_prefix, (".png",))["png"]
        plot_matrix(result, paths["png"])
    return {k: str(v) for k, v in paths.items()}


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_matrix(results: dict[str, Any] | list[dict[str, Any]], path: str | Path) -> str:
    """BER (%) against the swept parameter, one panel per codec family, one line per method.

    Attacks without a numeric parameter (``identity``) are drawn as dashed horizontal lines in every
    panel. JPEG/WebP quality, JPEG 2000 rate (x1000) and the resize factor grow with image quality;
    H.264/H.265 CRF shrinks with it, so CRF axes are inverted.
    """
    plt = pyplot()
    results = [results] if isinstance(results, dict) else list(results)
    panels: dict[tuple[str, str], None] = {}
    for res in results:
        for r in res["rows"]:
            if r["value"] is not None and r["param"]:
                panels.setdefault((r["family"], r["param"]), None)
    keys = list(panels) or [("identity", "")]
    cols = min(3, len(keys))
    rows_n = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.4 * rows_n), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (family, param) in enumerate(keys):
        ax = axes[k // cols][k % cols]
        for m, res in enumerate(results):
            c = colors[m % len(colors)]
            groups: dict[str, list[dict[str, Any]]] = {}
            for r in res["rows"]:
                if (r["family"], r["param"]) == (family, param) and r["value"] is not None:
                    groups.setdefault(r["group"], []).append(r)
            for g, rs in groups.items():
                rs = sorted(rs, key=lambda r: r["value"])
                label = res["method"] if len(groups) == 1 else f"{res['method']} {g}"
                ax.plot([r["value"] for r in rs], [100 * r["ber"] for r in rs], "o-", color=c, label=label)
            for r in res["rows"]:
                if r["value"] is None:
                    ax.axhline(100 * r["ber"], color=c, ls="--", lw=0.8,
                               label=f"{res['method']} {r['attack']}")
        ax.set_title(family)
        ax.set_xlabel(param)
        ax.set_ylabel("BER (%)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if param == "crf":
            ax.invert_xaxis()
        ax.legend(fontsize=7)
    for k in range(len(keys), rows_n * cols):
        axes[k // cols][k % cols].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def compare_markdown(results: list[dict[str, Any]]) -> str:
    """BER (%) per attack (rows) and method (columns), with each method's marked-vs-cover PSNR."""
    attacks: list[str] = []
    for res in results:
        attacks += [a for a in res["attacks"] if a not in attacks]
    head = "| attack | " + " | ".join(f"{r['method']} ({r['n_bits']} bits)" for r in results) + " |"
    lines = ["# BER (%) by method", "", head, "|---|" + "---:|" * len(results)]
    for a in attacks:
        cells = []
        for res in results:
            r = next((x for x in res["rows"] if x["attack"] == a), None)
            cells.append(_fmt(r["ber"], 2, True) if r else "-")
        lines.append(f"| `{a}` | " + " | ".join(cells) + " |")
    psnrs = " | ".join(_fmt(r["quality"]["psnr_rgb"]) for r in results)
    ssims = " | ".join(_fmt(r["quality"]["ssim"], 4) for r in results)
    lines.append(f"| PSNR marked vs cover (dB) | {psnrs} |")
    lines.append(f"| SSIM marked vs cover | {ssims} |")
    for key, label in (("ciede2000_mean", "CIEDE2000 mean"), ("ciede2000_p99", "CIEDE2000 p99")):
        lines.append(f"| {label} | " + " | ".join(_fmt(r["quality"][key], 3) for r in results) + " |")
    if results and results[0].get("command"):
        lines += ["", f"Command: `{results[0]['command']}`"]
    return "\n".join(lines) + "\n"


def write_comparison(results: list[dict[str, Any]], out_prefix: str | Path) -> dict[str, str]:
    """``PREFIX-compare.md`` / ``.png``: several methods (a model and its peers) side by side."""
    p = _prefix(out_prefix)
    md = p.with_name(p.name + "-compare.md")
    png = p.with_name(p.name + "-compare.png")
    md.write_text(compare_markdown(results))
    plot_matrix(results, png)
    return {"md": str(md), "png": str(png)}


def sweep_markdown(result: dict[str, Any]) -> str:
    """The sweep as MBRS Table 3: strengths as columns, BER per attack, PSNR and SSIM as rows."""
    rows = result["rows"]
    lines = [f"# Strength sweep: {result['method']}", "",
             f"{result['n_images']} images, {result['n_bits']} bits, seed {result['seed']}.", "",
             *([f"Command: `{result['command']}`", ""] if result.get("command") else []),
             "| strength | " + " | ".join(f"{r['strength']:g}" for r in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    for a in result["attacks"]:
        lines.append(f"| BER % `{a}` | " + " | ".join(_fmt(r["ber"][a], 3, True) for r in rows) + " |")
    lines.append("| PSNR RGB (dB) | " + " | ".join(_fmt(r["psnr_rgb"]) for r in rows) + " |")
    lines.append("| PSNR Y (dB) | " + " | ".join(_fmt(r["psnr_y"]) for r in rows) + " |")
    lines.append("| SSIM | " + " | ".join(_fmt(r["ssim"], 4) for r in rows) + " |")
    lines.append("| CIEDE2000 mean | " + " | ".join(_fmt(r["ciede2000_mean"], 3) for r in rows) + " |")
    return "\n".join(lines) + "\n"


def write_sweep(result: dict[str, Any], out_prefix: str | Path, plot: bool = True) -> dict[str, str]:
    """Write ``PREFIX.md`` (Table 3 layout), ``.json``, ``.csv`` (a row per strength and attack), ``.png``."""
    _prefix(out_prefix)
    paths = out_paths(out_prefix, (".md", ".json", ".csv"))
    paths["md"].write_text(sweep_markdown(result))
    paths["json"].write_text(json.dumps(jsonable(result), indent=1) + "\n")
    fields = ["strength", "attack", "ber", "word_acc", "psnr_rgb", "psnr_y", "ssim", "ciede2000_mean",
              "ciede2000_p99"]
    with paths["csv"].open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in result["rows"]:
            for a in result["attacks"]:
                row = {k: r.get(k) for k in fields}
                row.update(attack=a, ber=r["ber"][a], word_acc=r["word_acc"][a])
                w.writerow({k: ("" if v is None else v) for k, v in jsonable(row).items()})
    if plot:
        paths["png"] = out_paths(out_prefix, (".png",))["png"]
        plot_sweep(result, paths["png"])
    return {k: str(v) for k, v in paths.items()}


def plot_sweep(result: dict[str, Any], path: str | Path) -> str:
    """PSNR (x) against BER (y), one line per attack, points labelled with the strength factor."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    rows = [r for r in result["rows"] if r["psnr_rgb"] is not None and math.isfinite(r["psnr_rgb"])]
    for a in result["attacks"]:
        xs = [r["psnr_rgb"] for r in rows]
        ys = [100 * r["ber"][a] for r in rows]
        ax.plot(xs, ys, "o-", label=a)
        for r, x, y in zip(rows, xs, ys):
            ax.annotate(f"{r['strength']:g}", (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("PSNR marked vs cover (dB)")
    ax.set_ylabel("BER (%)")
    ax.set_title(f"Strength sweep: {result['method']}")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
