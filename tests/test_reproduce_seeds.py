"""Several seeds of one reproduction side by side (robusthide/evaluation/reproduce_seeds.py): each claim judged in
every seed and across them, each cell's mean and seed values, and the errors of `reproduce --combine`."""

from __future__ import annotations

import json

import pytest

from robusthide.cli.main import main
from robusthide.evaluation.reproduce import get_reproduction
from robusthide.evaluation.reproduce_seeds import across_seeds, combine_seeds, read_seed_results

ROWS = ["Q=90", "Q=70", "Q=50", "Q=30", "Q=10", "identity"]
JITTER = [-1.0, 0.0, 1.0, 0.5, -0.5, 0.0, 1.0, -1.0]  # mean 0: a cell's value is its level, with a standard error


def seed_doc(seed: int, levels: dict[str, dict[str, float]], net: str = "mbrs") -> dict:
    """A results document of `reproduce mbrs-table6 --seed SEED` whose cells are ``levels`` (BER %)."""
    ours = {col: {row: {"value": v, "per_image": [v + j for j in JITTER]} for row, v in rows.items()}
            for col, rows in levels.items()}
    return {"name": f"mbrs-table6-t-s{seed}", "budget": {"net": net, "size": 64, "steps": 10, "n_test": 8,
                                                          "seed": 0, "train_seed": seed},
            "columns": [{"label": c} for c in levels], "ours": ours, "command": f"robusthide reproduce ... {seed}"}


def levels(mbrs_q10: float) -> dict[str, dict[str, float]]:
    """MBRS below TSR-S below TSR below OEDS at every Q by 10 points, except MBRS at Q=10, set apart."""
    out = {c: {r: base + 2 * i for i, r in enumerate(ROWS)}
           for c, base in (("OEDS", 40.0), ("TSR", 30.0), ("TSR-S", 20.0), ("MBRS", 10.0))}
    out["MBRS"]["Q=10"] = mbrs_q10
    return out


def write(tmp_path, *docs) -> list[str]:
    paths = []
    for d in docs:
        p = tmp_path / f"{d['name']}.json"
        p.write_text(json.dumps(d))
        paths.append(str(p))
    return paths


def test_a_pair_is_ordered_across_seeds_only_when_every_seed_orders_it_alike():
    assert across_seeds(["<", "<"]) == "<" and across_seeds([">", ">", ">"]) == ">"
    assert across_seeds(["<", "≈"]) == "≈"      # within noise in one seed
    assert across_seeds(["<", ">"]) == "≈"      # split
    assert across_seeds(["<", None]) is None    # not measured in one seed


def test_combine_judges_each_claim_in_every_seed_and_across(tmp_path):
    rep = get_reproduction("mbrs-table6")
    # seed 1: MBRS below TSR-S at Q=10 too (18 < 28); seed 2: above it (38 > 28): that pair is split
    docs = read_seed_results(write(tmp_path, seed_doc(2, levels(38.0)), seed_doc(1, levels(18.0))))
    out = combine_seeds(docs, rep)
    assert out["seeds"] == [1, 2]  # sorted by seed
    first = out["claims"][0]
    assert first["claim"] == "MBRS below TSR-S at every Q"
    assert first["seeds"] == ["agrees", "partly agrees"]
    assert (first["held"], first["reversed"], first["unresolved"], first["split"]) == (4, 0, 1, 1)
    assert first["verdict"] == "agrees where resolved"
    assert [c["verdict"] for c in out["claims"][1:]] == ["agrees", "agrees"]
    cell = out["cells"]["MBRS"]["Q=10"]
    assert cell["seeds"] == [18.0, 38.0] and cell["mean"] == pytest.approx(28.0) and cell["spread"] == 20.0


def test_cli_writes_the_table_and_keeps_a_reading(tmp_path, capsys):
    paths = write(tmp_path, seed_doc(1, levels(18.0)), seed_doc(2, levels(19.0)))
    out = tmp_path / "out"
    args = ["reproduce", "mbrs-table6", "--combine", *paths, "--tag", "t-seeds", "--out", str(out)]
    assert main(args) == 0
    assert "MBRS below TSR-S at every Q: agrees across seeds 1, 2" in capsys.readouterr().out
    md = out / "mbrs-table6-t-seeds.md"
    text = md.read_text()
    assert "| Q=10 | 48.00 (48.00 / 48.00) | 38.00 (38.00 / 38.00) | 28.00 (28.00 / 28.00) | 18.50 (18.00 / 19.00) |" \
        in text
    assert "| MBRS below TSR-S at every Q | agrees | agrees | **agrees** | 5 of 5 held, 0 reversed, 0 unresolved |" \
        in text
    doc = json.loads((out / "mbrs-table6-t-seeds.json").read_text())
    assert doc["seeds"] == [1, 2] and doc["command"].startswith("robusthide reproduce mbrs-table6 --combine")
    md.write_text(text + "\n## Reading (hand-written)\n\nmine\n")
    assert main(args) == 0
    assert md.read_text().endswith("## Reading (hand-written)\n\nmine\n")


@pytest.mark.parametrize("case, message", [
    ("same-seed", "not of distinct training seeds"),
    ("other-net", "differ in their budget's net"),
    ("one", "needs the results of at least two seeds"),
    ("missing", "no such file"),
    ("not-json", "not a results file of robusthide reproduce"),
    ("other-table", "not a variant of mbrs-table6"),
    ("column", "trains nothing: --column does not apply"),
    ("onto-a-seed", "is one of the seeds' results: give another --tag"),
    ("onto-results", "exists and does not hold combined seeds"),
])
def test_combine_errors_are_one_line(tmp_path, capsys, case, message):
    a, b = seed_doc(1, levels(18.0)), seed_doc(2, levels(18.0))
    extra: list[str] = []
    if case == "same-seed":
        b["budget"]["train_seed"] = 1
    elif case == "other-net":
        b["budget"]["net"] = "hidden"
    elif case == "other-table":
        b["name"] = "p000-table1-t-s2"
    paths = write(tmp_path, a, b)
    if case == "one":
        paths = paths[:1]
    elif case == "missing":
        paths[1] = str(tmp_path / "nope.json")
    elif case == "not-json":
        (tmp_path / "bad.json").write_text("{not json")
        paths[1] = str(tmp_path / "bad.json")
    elif case == "column":
        extra = ["--column", "oeds"]
    out = tmp_path / "out"
    if case == "onto-a-seed":  # the combination would be written over seed 1's own results
        out, extra = tmp_path, ["--tag", "t-s1"]
    elif case == "onto-results":
        out.mkdir()
        (out / "mbrs-table6-seeds.json").write_text(json.dumps(a))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main(["reproduce", "mbrs-table6", "--combine", *paths, "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing written
