"""Does our table order the methods as the paper's does? One sentence per claim (``robusthide reproduce``).

A claim is a list of pairs of cells ``(lower, higher)``: the paper says the first value is below the second
(BER, or PSNR / SSIM). For every pair we read the paper's relation and ours:

* paper: ``<``, ``>`` or ``=`` (printed numbers), or missing (cell not reported / ``"lost"``);
* ours: ``<`` / ``>``, or ``≈`` when the difference is within twice its standard error (our BERs are means
  over a few dozen images: differences below that are noise, not an ordering). Given per-image values of
  equal length for both cells (the same images in every column), the standard error is that of the paired
  per-image differences; given standard errors, it is their root sum of squares.

A pair agrees when the relations are the same (``≈`` agrees with the paper's ``=``). The verdict:
``agrees`` (every checked pair), ``disagrees`` (none), else ``partly agrees``; ``cannot check`` when the
paper has no number for any pair (ours is still reported).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robusthide.evaluation.reproduce_specs import Cell, Claim

Ours = dict[Cell, tuple[float, Any]]   # cell -> (value, standard error or per-image values)
Paper = dict[str, dict[str, float | str]]  # row -> column -> value


def paper_value(paper: Paper, cell: Cell) -> float | None:
    """The paper's number of ``cell`` (None if absent or lost); ``"≈50"`` (stated in the prose) reads as 50."""
    col, row = cell
    v = paper.get(row, {}).get(col)
    if v is None:
        return None
    if isinstance(v, str):
        s = v.strip().lstrip("≈~").rstrip("%")
        try:
            return float(s)
        except ValueError:
            return None
    return float(v)


def relation(a: float | None, b: float | None, se: float = 0.0) -> str | None:
    """``'<'``, ``'>'``, ``'='`` (exactly equal), ``'≈'`` (|a - b| <= 2 se, se > 0), or None if unknown."""
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return None
    if se > 0 and abs(a - b) <= 2 * se:
        return "≈"
    if a == b:
        return "="
    return "<" if a < b else ">"


def _se(v: Any) -> float:
    """A standard error as given (a number), or that of the mean of per-image values."""
    if isinstance(v, (int, float)):
        return float(v)
    x = np.asarray(v, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0


def diff_se(a: Any, b: Any) -> float:
    """Standard error of ``mean(a) - mean(b)``: paired if both are per-image sequences of one length."""
    if not isinstance(a, (int, float)) and not isinstance(b, (int, float)) and len(a) == len(b):
        return _se(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return math.hypot(_se(a), _se(b))


def classify(p: str, o: str) -> str:
    """``ok`` (same ordering), ``noise`` (ours within noise, paper ordered) or ``bad`` (reversed)."""
    if o in ("≈", "="):
        return "ok" if p == "=" else "noise"
    if p == "=":  # the paper's tie (e.g. 0.00 and 0.00) accepts our strict "<" of the claimed direction
        return "ok" if o == "<" else "bad"
    return "ok" if p == o else "bad"


def verdict(kinds: list[str]) -> str:
    """The verdict from the pairs' classes (see :func:`classify`)."""
    ok, noise, bad = kinds.count("ok"), kinds.count("noise"), kinds.count("bad")
    if not kinds:
        return "cannot check"
    if bad == 0:
        return "agrees" if noise == 0 else ("within noise" if ok == 0 else "agrees where resolved")
    return "disagrees" if ok == 0 else "partly agrees"


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0:
        return "0"
    if abs(v) >= 10:
        return f"{v:.2f}"
    return f"{v:.3g}" if abs(v) >= 0.01 else f"{v:.2g}"


def _name(cell: Cell, multi_row: bool) -> str:
    col, row = cell
    return f"{col} @ {row}" if multi_row else col


def _where(r: dict[str, Any], multi_row: bool) -> str:
    (ca, ra), (cb, rb) = r["lo"], r["hi"]
    if ca == cb:
        return f"{ra} vs {rb}"
    if ra == rb:
        return ra if multi_row else f"{ca} vs {cb}"
    return f"{ca} @ {ra} vs {cb} @ {rb}"


def judge(claim: Claim, paper: Paper, ours: Ours) -> dict[str, Any]:
    """Per-pair relations and the verdict of ``claim`` (see the module docstring)."""
    rows = []
    for lo, hi in claim.pairs:
        pa, pb = paper_value(paper, lo), paper_value(paper, hi)
        oa, ob = ours.get(lo), ours.get(hi)
        se = diff_se(oa[1], ob[1]) if oa and ob else 0.0
        rows.append({"lo": lo, "hi": hi, "paper": (pa, pb), "ours": (oa[0] if oa else None, ob[0] if ob else None),
                     "paper_rel": relation(pa, pb), "ours_rel": relation(oa[0] if oa else None,
                                                                         ob[0] if ob else None, se)})
    checked = [r for r in rows if r["paper_rel"] and r["ours_rel"]]
    kinds = [classify(r["paper_rel"], r["ours_rel"]) for r in checked]
    v = verdict(kinds)
    if not checked:
        v = "cannot check (no paper number)" if any(r["ours_rel"] for r in rows) else "not measured"
    n_ok = kinds.count("ok")
    return {"claim": claim.text, "pairs": rows, "checked": len(checked), "agree": n_ok, "verdict": v}


def sentence(claim: Claim, paper: Paper, ours: Ours) -> str:
    """One line: ``paper: A 12.6 < B 15.9; ours: A 3.1 < B 4.2 — agrees`` (counts for multi-pair claims)."""
    j = judge(claim, paper, ours)
    rows = j["pairs"]
    multi_row = len({r["lo"][1] for r in rows} | {r["hi"][1] for r in rows}) > 1
    if len(rows) == 1:
        r = rows[0]
        a, b = _name(r["lo"], multi_row), _name(r["hi"], multi_row)
        ptxt = (f"{a} {_fmt(r['paper'][0])} {r['paper_rel']} {b} {_fmt(r['paper'][1])}" if r["paper_rel"]
                else "no number")
        otxt = (f"{a} {_fmt(r['ours'][0])} {r['ours_rel']} {b} {_fmt(r['ours'][1])}" if r["ours_rel"]
                else "not measured")
        return f"{claim.text}. Paper: {ptxt}; ours: {otxt} — {j['verdict']}."
    n = len(rows)
    p_hold = sum(r["paper_rel"] == "<" for r in rows)
    p_known = sum(r["paper_rel"] is not None for r in rows)
    o = [r["ours_rel"] for r in rows]
    ptxt = f"holds in {p_hold}/{p_known}" if p_known else "no numbers"
    if p_known and p_known - p_hold:
        ptxt += f" ({sum(r['paper_rel'] == '=' for r in rows)} equal)"
    otxt = f"holds in {o.count('<')}/{n}"
    if o.count("="):
        otxt += f", equal in {o.count('=')}"
    if o.count("≈"):
        otxt += f", within noise in {o.count('≈')}"
    rev = [r for r in rows if r["ours_rel"] == ">"]
    if rev:
        otxt += f", reversed in {len(rev)} ({', '.join(_where(r, multi_row) for r in rev)})"
    return f"{claim.text}. Paper: {ptxt}; ours: {otxt} — {j['verdict']}."
