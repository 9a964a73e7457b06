"""Several training seeds of one reproduction side by side (``robusthide reproduce NAME --combine A.json B.json``).

Issue 23 asks that each of a paper's orderings be marked *held* or *not held* with its spread over two seeds.
The results files of the seeds (``robusthide reproduce NAME --seed K --tag ...``, each judged on its own by
:mod:`robusthide.evaluation.claims`) are read back; every cell gets its mean and each seed's value, and every
claim is judged again on each seed's table (the claims as the registry holds them today) and across the seeds:

* a pair of cells is ordered across the seeds when every seed orders it the same way, each beyond twice the
  standard error of its paired per-image difference (``<`` or ``>`` in every seed);
* otherwise it is unresolved (``≈``): within noise in some seed, or ordered one way in one seed and the
  other way in another (counted apart as *split*).

The verdict across the seeds is :func:`robusthide.evaluation.claims.verdict` of those pairs: a claim *agrees*
only where every seed agrees, so a single seed's luck does not make a verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robusthide import RobustHideError
from robusthide.evaluation.claims import classify, judge, paper_value, verdict
from robusthide.evaluation.reproduce_specs import Reproduction
from robusthide.io.results import write_keeping_reading

#: budget keys that may differ between the seeds of one comparison (the rest must be equal)
SEED_KEYS = ("seed", "train_seed", "threads", "train_minutes_total", "warm_minutes", "data")


def read_seed_results(paths: list[str | Path]) -> list[dict[str, Any]]:
    """The results documents (``NAME.json`` of ``robusthide reproduce``) at ``paths``; a one-line error for a
    missing file or one that is not such a document."""
    docs = []
    for p in paths:
        path = Path(p)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise RobustHideError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RobustHideError(f"{path}: not a results file of robusthide reproduce ({e})") from None
        if not isinstance(doc, dict) or not {"name", "budget", "columns", "ours"} <= set(doc):
            raise RobustHideError(f"{path}: not a results file of robusthide reproduce (no name, budget, columns "
                                  "and ours)")
        doc["_path"] = str(path)
        docs.append(doc)
    return docs


def _check_same_comparison(docs: list[dict[str, Any]], rep: Reproduction) -> None:
    if len(docs) < 2:
        raise RobustHideError("--combine needs the results of at least two seeds")
    for d in docs:
        if d["name"] != rep.name and not str(d["name"]).startswith(rep.name + "-"):
            raise RobustHideError(f"{d['_path']} holds {d['name']}, not a variant of {rep.name}")
    first = docs[0]
    labels = [c["label"] for c in first["columns"]]
    for d in docs[1:]:
        if [c["label"] for c in d["columns"]] != labels or set(d["ours"]) != set(first["ours"]):
            raise RobustHideError(f"{d['_path']} and {first['_path']} have different columns")
        diff = sorted(k for k in set(d["budget"]) | set(first["budget"])
                      if k not in SEED_KEYS and d["budget"].get(k) != first["budget"].get(k))
        if diff:
            k = diff[0]
            raise RobustHideError(f"{d['_path']} and {first['_path']} differ in their budget's {k} "
                                  f"({first['budget'].get(k)!r} and {d['budget'].get(k)!r}): not seeds of one "
                                  "comparison")
    seeds = [d["budget"].get("train_seed") for d in docs]
    if len(set(seeds)) != len(seeds):
        raise RobustHideError(f"the results are not of distinct training seeds (train_seed {seeds})")


def _flat(doc: dict[str, Any]) -> dict[tuple[str, str], tuple[float, Any]]:
    """A seed's cells as :func:`robusthide.evaluation.claims.judge` reads them: (value, per-image values or se)."""
    return {(c, r): (float(v["value"]), v["per_image"] if v.get("per_image") else float(v.get("se", 0.0)))
            for c, rows in doc["ours"].items() for r, v in rows.items() if v.get("value") is not None}


def across_seeds(relations: list[str | None]) -> str | None:
    """One pair's relation across the seeds: ``<`` or ``>`` when every seed has it, ``≈`` otherwise (noise in
    some seed, or split), None when some seed did not measure it."""
    if any(r is None for r in relations):
        return None
    strict = {r for r in relations if r in ("<", ">")}
    return strict.pop() if len(strict) == 1 and all(r in ("<", ">") for r in relations) else "≈"


def combine_seeds(docs: list[dict[str, Any]], rep: Reproduction) -> dict[str, Any]:
    """The seeds' results of ``rep`` (:func:`read_seed_results`) combined: per cell the mean and each seed's
    value (``cells``), per claim each seed's verdict and the verdict across the seeds (``claims``; see the
    module docstring)."""
    _check_same_comparison(docs, rep)
    docs = sorted(docs, key=lambda d: d["budget"]["train_seed"])
    flats = [_flat(d) for d in docs]
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for col, rows in docs[0]["ours"].items():
        for row in rows:
            vals = [f.get((col, row), (None, None))[0] for f in flats]
            known = [v for v in vals if v is not None]
            cells.setdefault(col, {})[row] = {"mean": sum(known) / len(known) if known else None, "seeds": vals,
                                              "spread": max(known) - min(known) if known else None}
    claims = []
    for cl in rep.claims:
        per_seed = [judge(cl, rep.paper, f) for f in flats]
        pairs, kinds, split = [], [], 0
        for i, (lo, hi) in enumerate(cl.pairs):
            rels = [j["pairs"][i]["ours_rel"] for j in per_seed]
            rel = across_seeds(rels)
            split += int({"<", ">"} <= set(rels))
            p_rel = per_seed[0]["pairs"][i]["paper_rel"]
            pairs.append({"lo": list(lo), "hi": list(hi), "paper_rel": p_rel, "seeds_rel": rels, "ours_rel": rel})
            if p_rel and rel:
                kinds.append(classify(p_rel, rel))
        v = verdict(kinds) if kinds else "cannot check"
        claims.append({"claim": cl.text, "seeds": [j["verdict"] for j in per_seed], "verdict": v,
                       "pairs": pairs, "held": kinds.count("ok"), "reversed": kinds.count("bad"),
                       "unresolved": kinds.count("noise"), "split": split, "checked": len(kinds)})
    return {"name": rep.name, "title": rep.title, "source": rep.source,
            "seeds": [d["budget"]["train_seed"] for d in docs], "results": [d["_path"] for d in docs],
            "commands": [d.get("command", "") for d in docs], "budget": docs[0]["budget"],
            "rows": list(next(iter(docs[0]["ours"].values()), {})),
            "columns": [c["label"] for c in docs[0]["columns"]], "cells": cells,
            "paper": {row: {col: paper_value(rep.paper, (col, row)) for col in cols}
                      for row, cols in rep.paper.items()},
            "claims": claims}


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v == 0 or abs(v) >= 0.01 else f"{v:.2g}"


def seeds_markdown(doc: dict[str, Any], command: str) -> str:
    """The combined results as Markdown: the command, each seed's results file, the table (mean, then each
    seed's value) and the claims (each seed's verdict and the verdict across the seeds)."""
    seeds = doc["seeds"]
    b = doc["budget"]
    lines = [f"# Reproduction `{doc['name']}` over {len(seeds)} training seeds: {doc['title']}", "",
             f"Source: {doc['source']}.", "", "Command:", "", "```", command, "```", "",
             f"Net `{b.get('net')}`, {b.get('size')}x{b.get('size')}, {b.get('steps')} steps per column, "
             f"{b.get('n_test')} test images, the same in every seed; training seeds {', '.join(map(str, seeds))}.",
             "", "The seeds' results (each with its own command, table and learning curves):", ""]
    lines += [f"- seed {s}: {p}" for s, p in zip(seeds, doc["results"])]
    lines += ["", f"## BER (%) and quality: mean over the seeds (seed {' / seed '.join(map(str, seeds))})", ""]
    cols = doc["columns"]
    lines += ["| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for row in doc["rows"]:
        cells = []
        for c in cols:
            x = doc["cells"].get(c, {}).get(row)
            cells.append("-" if x is None else f"{_num(x['mean'])} ({' / '.join(_num(v) for v in x['seeds'])})")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", "## The paper's orderings across the seeds", "",
              "A pair of cells counts as ordered only when every seed orders it the same way beyond twice the "
              "standard error of its paired per-image difference; *split*: ordered one way in one seed and the "
              "other way in another.", "",
              "| claim | " + " | ".join(f"seed {s}" for s in seeds) + " | across the seeds | pairs |",
              "|---|" + "---|" * len(seeds) + "---|---|"]
    for c in doc["claims"]:
        pairs = (f"{c['held']} of {c['checked']} held, {c['reversed']} reversed, {c['unresolved']} unresolved"
                 + (f" ({c['split']} split)" if c["split"] else ""))
        lines.append(f"| {c['claim']} | " + " | ".join(c["seeds"]) + f" | **{c['verdict']}** | {pairs} |")
    return "\n".join(lines) + "\n"


def write_seeds(doc: dict[str, Any], out: str | Path, name: str, command: str) -> dict[str, str]:
    """Write ``OUT/NAME.md`` (keeping a hand-written reading at its end) and ``OUT/NAME.json``. Refuses (one line,
    nothing written) when ``NAME.json`` is one of the seeds' results or another results file than a combination:
    a seed's own table is never overwritten."""
    d = Path(out)
    md, js = d / f"{name}.md", d / f"{name}.json"
    if js.resolve() in {Path(p).resolve() for p in doc["results"]}:
        raise RobustHideError(f"{js} is one of the seeds' results: give another --tag")
    if js.exists():
        try:
            old = json.loads(js.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            old = None
        if not (isinstance(old, dict) and {"cells", "seeds", "results"} <= set(old)):
            raise RobustHideError(f"{js} exists and does not hold combined seeds: give another --tag")
    d.mkdir(parents=True, exist_ok=True)
    write_keeping_reading(md, seeds_markdown(doc, command))
    js.write_text(json.dumps({**doc, "command": command}, indent=1, ensure_ascii=False) + "\n")
    return {"md": str(md), "json": str(js)}
