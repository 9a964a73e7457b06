"""Geometry curves: the share of images whose message is read back exactly, against rotation, area kept
and scale (issue 19's curves), each point a robustness matrix with ``payload=True``
(:func:`robusthide.evaluation.matrix.robustness_matrix`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: family -> (axis label, spec template, values): rotation in degrees (black corners), area kept by a crop
#: at a random position or centred (resized back), scale of a resize (and back).
CURVES: dict[str, tuple[str, str, tuple[float, ...]]] = {
    "rotation": ("rotation (degrees, black corners)", "rotate:{v:g}", (0, 0.5, 1, 2, 3, 5, 10, 15, 20, 30, 45)),
    "area": ("area kept by a crop at a random position (%)", "crop:{v:g},pos=random,seed=7",
             (1.0, 0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1)),
    "area-centre": ("area kept by a centred crop (%)", "crop:{v:g}", (1.0, 0.9, 0.8, 0.7, 0.5, 0.3, 0.1)),
    "scale": ("scale (%)", "resize:{v:g}", (0.25, 0.5, 0.75, 1.5, 2.0, 4.0)),
}


def geometry_curves(model: Any, images: Any, families: Sequence[str] = tuple(CURVES), seed: int = 0,
                    progress: bool = True, search: str | None = None) -> dict[str, Any]:
    """Message-exact rate (and BER) of ``model`` on ``images`` for each family of :data:`CURVES`; the
    images are marked once per family (same seed, same messages)."""
    from robusthide import RobustHideError
    from robusthide.evaluation.matrix import robustness_matrix

    unknown = [f for f in families if f not in CURVES]
    if unknown:
        raise RobustHideError(f"unknown curve {unknown[0]!r} (known: {', '.join(CURVES)})")
    out: dict[str, Any] = {"curves": {}}
    for fam in families:
        label, template, values = CURVES[fam]
        specs = [template.format(v=v) for v in values]
        specs = ["identity" if s in ("rotate:0", "crop:1,pos=random,seed=7", "crop:1") else s for s in specs]
        m = robustness_matrix(model, images, specs, seed=seed, progress=progress, search=search, payload=True)
        out["method"], out["n_images"], out["quality"] = m["method"], m["n_images"], m["quality"]
        out["search"] = m["search"]
        out["curves"][fam] = {"label": label, "values": list(values), "specs": specs,
                              "msg_exact": [r["msg_exact"] for r in m["rows"]],
                              "ber": [r["ber"] for r in m["rows"]]}
    return out


def curves_markdown(res: dict[str, Any]) -> str:
    """One table per curve: value, message-exact %, BER %."""
    lines = [f"# Geometry curves: {res['method']}", "",
             f"{res['n_images']} images, decoded with the {res['search']} search; marked at PSNR "
             f"{res['quality']['psnr_rgb']:.2f} dB.", ""]
    if res.get("command"):
        lines += [f"Command: `{res['command']}`", ""]
    for fam, c in res["curves"].items():
        pct = 100 if fam in ("area", "area-centre", "scale") else 1
        lines += [f"## {c['label']}", "", "| value | attack | msg exact % | BER % |", "|---:|---|---:|---:|"]
        for v, s, e, b in zip(c["values"], c["specs"], c["msg_exact"], c["ber"]):
            lines.append(f"| {pct * v:g} | `{s}` | {100 * e:.1f} | {100 * b:.2f} |")
        lines.append("")
    return "\n".join(lines)


def write_curves(res: dict[str, Any], out_prefix: str | Path) -> dict[str, str]:
    """``PREFIX.md``, ``PREFIX.json`` and ``PREFIX.png`` (one panel per curve)."""
    from robusthide.evaluation.matrix_report import pyplot
    from robusthide.io.results import jsonable
    from robusthide.io.safe import atomic_output

    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = {k: prefix.with_name(prefix.name + f".{k}") for k in ("md", "json", "png")}
    with atomic_output(paths["md"]) as tmp:
        Path(tmp).write_text(curves_markdown(res))
    with atomic_output(paths["json"]) as tmp:
        Path(tmp).write_text(json.dumps(jsonable(res), indent=1) + "\n")
    plt = pyplot()
    fams = list(res["curves"])
    fig, axes = plt.subplots(1, len(fams), figsize=(4.2 * len(fams), 3.4), squeeze=False)
    for ax, fam in zip(axes[0], fams):
        c = res["curves"][fam]
        xs = [100 * v for v in c["values"]] if fam in ("area", "area-centre", "scale") else c["values"]
        ax.plot(xs, [100 * e for e in c["msg_exact"]], "o-", label="message exact")
        ax.plot(xs, [100 * b for b in c["ber"]], "s--", label="raw BER")
        ax.set_xlabel(c["label"])
        ax.set_ylabel("%")
        ax.set_ylim(-2, 102)
        if fam == "scale":
            ax.set_xscale("log")
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            ax.minorticks_off()
        if fam in ("area", "area-centre"):
            ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.suptitle(f"{res['method']}: {res['n_images']} images, {res['search']} search")
    fig.tight_layout()
    with atomic_output(paths["png"]) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return {k: str(v) for k, v in paths.items()}


def overlay_curves(results: Sequence[dict[str, Any]], out_prefix: str | Path, command: str = "") -> dict[str, str]:
    """One figure of several :func:`geometry_curves` results (a line per result and search, one panel per
    family; message exact only) and a markdown table of them: ``PREFIX.png`` and ``PREFIX.md``."""
    from robusthide import RobustHideError
    from robusthide.evaluation.matrix_report import pyplot
    from robusthide.io.safe import atomic_output

    if not results:
        raise RobustHideError("no curves to draw")
    fams = list(dict.fromkeys(f for r in results for f in r.get("curves", {})))
    if not fams:
        raise RobustHideError("the results hold no curves")
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = {k: prefix.with_name(prefix.name + f".{k}") for k in ("md", "png")}
    pct = ("area", "area-centre", "scale")
    lines = ["# Geometry curves: " + ", ".join(dict.fromkeys(str(r.get("method")) for r in results)), ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += ["Message exact (%) by extraction search; each column from its own results file:", ""]
    for r in results:
        lines.append(f"- {r.get('search')} search: {r.get('n_images')} images, `{r.get('command', '')}`")
    lines.append("")
    for fam in fams:
        have = [r for r in results if fam in r.get("curves", {})]
        c0 = have[0]["curves"][fam]
        lines += [f"## {c0['label']}", "", "| value | " + " | ".join(f"{r['search']} search" for r in have) + " |",
                  "|---:|" + "---:|" * len(have)]
        for j, v in enumerate(c0["values"]):
            cells = [f"{100 * r['curves'][fam]['msg_exact'][j]:.1f}" if j < len(r["curves"][fam]["msg_exact"])
                     else "-" for r in have]
            lines.append(f"| {(100 if fam in pct else 1) * v:g} | " + " | ".join(cells) + " |")
        lines.append("")
    with atomic_output(paths["md"]) as tmp:
        Path(tmp).write_text("\n".join(lines))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(fams), figsize=(4.2 * len(fams), 3.4), squeeze=False)
    for ax, fam in zip(axes[0], fams):
        for r in results:
            c = r.get("curves", {}).get(fam)
            if c is None:
                continue
            xs = [100 * v for v in c["values"]] if fam in pct else c["values"]
            ax.plot(xs, [100 * e for e in c["msg_exact"]], "o-", label=f"{r['search']} search")
        ax.set_xlabel(res_label(results, fam))
        ax.set_ylabel("message exact %")
        ax.set_ylim(-2, 102)
        if fam == "scale":
            ax.set_xscale("log")
            xs = [100 * v for v in res_values(results, fam)]
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            ax.minorticks_off()
        if fam in ("area", "area-centre"):
            ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left" if fam == "scale" else "best")
    fig.suptitle(", ".join(dict.fromkeys(f"{r.get('method')}: {r.get('n_images')} images" for r in results)))
    fig.tight_layout()
    with atomic_output(paths["png"]) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return {k: str(v) for k, v in paths.items()}


def res_label(results: Sequence[dict[str, Any]], fam: str) -> str:
    """The axis label of family ``fam`` in the first result that has it."""
    return next(r["curves"][fam]["label"] for r in results if fam in r.get("curves", {}))


def res_values(results: Sequence[dict[str, Any]], fam: str) -> list[float]:
    """The x values of family ``fam`` in the first result that has it."""
    return next(r["curves"][fam]["values"] for r in results if fam in r.get("curves", {}))
