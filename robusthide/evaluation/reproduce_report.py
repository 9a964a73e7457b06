"""The results file of a reproduction (``robusthide reproduce``, :mod:`robusthide.evaluation.reproduce`):
``NAME.md`` (our table beside the paper's, the budget, the claims' verdicts), ``NAME.json`` and the learning
curves as ``NAME.png``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from robusthide.evaluation.reproduce_curves import plot_curves
from robusthide.evaluation.reproduce_specs import NET_RECIPES, Reproduction
from robusthide.io.results import jsonable, write_keeping_reading


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
    curves). A section headed :data:`robusthide.io.results.READING_HEADING` at the end of an existing ``NAME.md``
    (a person's interpretation of the numbers) is kept below the regenerated tables."""

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    md, js = d / f"{rep.name}.md", d / f"{rep.name}.json"
    write_keeping_reading(md, render_markdown(doc, rep))
    js.write_text(json.dumps(jsonable(doc), indent=1, ensure_ascii=False) + "\n")
    written = {"md": str(md), "json": str(js)}
    png = plot_curves(doc.get("curves", {}), f"{rep.name}: learning curves", d / f"{rep.name}.png")
    if png:
        written["png"] = png
    return written
