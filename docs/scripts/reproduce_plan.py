"""The CPU budget of issue 23's long reproductions, from the measured seconds per step
(docs/results/reproduce-plan-speed.json, written by docs/scripts/train_speed.py).

For each table: columns (from the registry, or the two MBRS Table 2 configs), seeds, steps per column (10x
today's budget), the shared warm start (``--warm-steps``, once per seed), and the CPU hours at 64 px:
``steps x CPU seconds per step`` (the warm start counted at a full step's cost, an upper bound: it trains
without the discriminator and the codec), evaluation not counted (minutes per column). ``before`` is the same
budget at the speeds measured before issue 23's speed-ups, with the warm start scaled 10x (the section
``before`` of the speed file). Then a suggested order in sessions of ``--session-h`` hours on ``--cores``
cores (one column per core; the warm start of a seed before its columns).

Run: ``.venv/bin/python docs/scripts/reproduce_plan.py`` (prints the markdown of docs/results/reproduce-plan.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robusthide.evaluation.reproduce_specs import REPRODUCTIONS

SPEED = Path("docs/results/reproduce-plan-speed.json")
FACTOR = 10
NET_CFG = {"hidden": "hidden-30bit", "mbrs": "mbrs-64bit"}


def _cpu(rows: list[dict]) -> dict[tuple[str, int], float]:
    return {(r["config"].split("/")[-1].split(".")[0], r["size"]): r["cpu_s_per_step"] for r in rows
            if not r.get("overrides")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm-steps", type=int, default=150)
    ap.add_argument("--session-h", type=float, default=2.5)
    ap.add_argument("--cores", type=int, default=2)
    a = ap.parse_args()
    doc = json.loads(SPEED.read_text())
    cpu, before = _cpu(doc["rows"]), _cpu(doc.get("before", {}).get("rows", []))
    jobs = []  # (table, seed, net, columns, steps per column, warm steps, CPU s per step, CPU s before)
    order = (("mbrs-table6", "mbrs", 1), ("p000-table1", "hidden", 1), ("mbrs-table5", "mbrs", 1),
             ("mbrs-table6", "mbrs", 2), ("p000-table1", "hidden", 2))
    for name, net, seed in order:  # the suggested order: each table's first seed, then the second seeds
        rep = REPRODUCTIONS[name]
        jobs.append((name, seed, net, len(rep.columns), FACTOR * rep.budget.steps, a.warm_steps,
                     cpu[(NET_CFG[net], 64)], before.get((NET_CFG[net], 64)), FACTOR * rep.budget.warm_steps))
    for cfg in ("mbrs-table2-64px", "mbrs-table2-diffusion-64px"):
        jobs.append((f"configs/{cfg}.yaml", 1, "mbrs", 1, 4500, 0, cpu[(cfg, 64)], before.get((cfg, 64)), 0))
    print("| table | seed | net | columns | steps per column | warm start | steps in all | CPU s / step | "
          "CPU h | CPU h before |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    tot = tot_before = 0.0
    for name, seed, net, ncol, steps, warm, c, b, warm_before in jobs:
        n = warm + ncol * steps
        h = n * c / 3600
        hb = None if b is None else (warm_before + ncol * steps) * b / 3600
        tot += h
        tot_before += hb or 0.0
        print(f"| `{name}` | {seed} | {net} | {ncol} | {steps} | {warm} | {n} | {c:.2f} | {h:.1f} | "
              f"{'-' if hb is None else f'{hb:.1f}'} |")
    print(f"| all | | | | | | | | {tot:.1f} | {tot_before:.1f} |")
    print()
    print(f"In this order, in sessions of {a.session_h} h on {a.cores} otherwise idle cores (one column per core, "
          "on the core free first; a table's columns after its warm start; a column that does not end in a session "
          "resumes in the next):")
    print()
    free = [0.0] * a.cores  # hours from the start, per core
    print("| # | job | core hours | ends after (h, wall) | ends in session |")
    print("|---:|---|---:|---:|---:|")
    k = 0
    for name, seed, _net, ncol, steps, warm, c, _, _ in jobs:
        start = 0.0
        if warm:  # on the core free first; the table's columns wait for it
            core = free.index(min(free))
            free[core] = min(free) + warm * c / 3600
            start = free[core]
        for _ in range(ncol):
            core = free.index(min(free))
            free[core] = max(free[core], start) + steps * c / 3600
        k += 1
        end = max(free)
        print(f"| {k} | `{name}` seed {seed} | {(warm + ncol * steps) * c / 3600:.1f} | {end:.1f} | "
              f"{int(end // a.session_h) + 1} |")


if __name__ == "__main__":
    main()
