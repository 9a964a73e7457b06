"""The CPU budget of issue 23's long reproductions, from the measured seconds per step
(docs/results/reproduce-plan-speed.json, written by docs/scripts/train_speed.py).

For each table: columns (from the registry, or the two MBRS Table 2 configs), seeds, steps per column (10x
today's budget), the shared warm start (the budget's, scaled by the same factor, once per seed), and the CPU
hours at 64 and 128 px: ``steps x CPU seconds per step``, evaluation not counted (minutes per column).

Run: ``.venv/bin/python docs/scripts/reproduce_plan.py`` (prints the markdown table of
docs/results/reproduce-plan.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from robusthide.evaluation.reproduce_specs import REPRODUCTIONS

SPEED = Path("docs/results/reproduce-plan-speed.json")
FACTOR = 10


def main() -> None:
    rows = json.loads(SPEED.read_text())["rows"]
    cpu = {(r["config"].split("/")[-1].split(".")[0], r["size"]): r["cpu_s_per_step"] for r in rows}
    net_cfg = {"hidden": "hidden-30bit", "mbrs": "mbrs-64bit"}
    plan = [("p000-table1", "hidden", 2), ("mbrs-table5", "mbrs", 1), ("mbrs-table6", "mbrs", 2)]
    print("| table | net | columns | seeds | steps per column | warm start per seed | steps in all | "
          "CPU h at 64 px | CPU h at 128 px |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    total = {64: 0.0, 128: 0.0}
    for name, net, seeds in plan:
        rep = REPRODUCTIONS[name]
        steps, warm = FACTOR * rep.budget.steps, FACTOR * rep.budget.warm_steps
        n = seeds * (warm + len(rep.columns) * steps)
        h = {s: n * cpu[(net_cfg[net], s)] / 3600 if (net_cfg[net], s) in cpu else None for s in (64, 128)}
        for s in total:
            total[s] += h[s] or 0.0
        print(f"| `{name}` | {net} | {len(rep.columns)} | {seeds} | {steps} | {warm} | {n} | "
              + " | ".join("-" if h[s] is None else f"{h[s]:.1f}" for s in (64, 128)) + " |")
    for cfg in ("mbrs-table2-64px", "mbrs-table2-diffusion-64px"):
        steps = 4500
        c64 = cpu.get((cfg, 64))
        h64 = None if c64 is None else steps * c64 / 3600
        total[64] += h64 or 0.0
        print(f"| `configs/{cfg}.yaml` | mbrs | 1 | 1 | {steps} | 0 | {steps} | "
              f"{'-' if h64 is None else f'{h64:.1f}'} | - |")
    print(f"| all | | | | | | | {total[64]:.1f} | |")


if __name__ == "__main__":
    main()
