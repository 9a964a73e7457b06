"""Carry the runs of a ``robusthide reproduce`` variant from one session to the next (docs/results/reproduce-plan.md).

runs/ is git-ignored, so a table trained over several sessions is carried in resume/reproduce/ (committed)::

    .venv/bin/python docs/scripts/reproduce_carry.py save mbrs-table6-mbrs64-10x-s1      # runs/ -> resume/
    .venv/bin/python docs/scripts/reproduce_carry.py restore mbrs-table6-mbrs64-10x-s1   # resume/ -> runs/
    .venv/bin/python docs/scripts/reproduce_carry.py save NAME --only warm-start --only oeds  # some runs only

``save`` copies each run folder of ``runs/reproduce/NAME`` (the warm start and the columns) to
``resume/reproduce/NAME``: a run still training as it is (weights, both Adam optimisers' moments, the JSON with
the step, the training state and the config, the log), which is what an exact resume needs; a finished run
(its step at ``train.steps``) without its optimisers, which nothing reads again (``robusthide reproduce`` skips a
finished run and evaluates its weights; the columns read only the warm start's weights). ``restore`` copies them
back, and never replaces a run folder in runs/ that is further on than the copy. Run neither while a training
writes the folder (stop it first: SIGTERM saves a checkpoint). Both print what they did, with sizes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

FILES = ("latest.safetensors", "latest.json", "config.json", "metrics.jsonl")


def _step(run: Path) -> int:
    return int(json.loads((run / "latest.json").read_text())["state"]["step"]) if (run / "latest.json").exists() else -1


def _size(run: Path) -> float:
    return sum(f.stat().st_size for f in run.iterdir() if f.is_file()) / 2**20


def save(src: Path, dst: Path, only: list[str] | None = None) -> None:
    from robusthide.training.checkpoint import read_checkpoint, write_checkpoint

    runs = sorted(p for p in src.iterdir() if (p / "latest.json").exists() and (not only or p.name in only))
    if not runs:
        sys.exit(f"reproduce_carry: no run folder with a checkpoint in {src}" + (f" named {', '.join(only)}" if only
                                                                                   else ""))
    for run in runs:
        out = dst / run.name
        doc, tensors = read_checkpoint(run)
        finished = int(doc["state"]["step"]) >= int(doc["config"]["train"]["steps"])
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        if finished:  # weights only: the optimisers are never read again
            write_checkpoint(out, {k: v for k, v in tensors.items() if k.startswith("model.")},
                             {k: v for k, v in doc.items() if not k.startswith("optimizer")})
            for f in ("config.json", "metrics.jsonl"):
                if (run / f).exists():
                    shutil.copy2(run / f, out / f)
        else:
            for f in FILES:
                if (run / f).exists():
                    shutil.copy2(run / f, out / f)
        print(f"{run.name}: step {doc['state']['step']} of {doc['config']['train']['steps']}, "
              f"{'finished, weights only' if finished else 'in progress, everything'}: {_size(out):.1f} MiB -> {out}")


def restore(src: Path, dst: Path) -> None:
    runs = sorted(p for p in src.iterdir() if (p / "latest.json").exists())
    if not runs:
        sys.exit(f"reproduce_carry: no run folder with a checkpoint in {src}")
    for run in runs:
        out = dst / run.name
        if _step(out) > _step(run):
            print(f"{run.name}: kept {out} (step {_step(out)}, further on than the copy's {_step(run)})")
            continue
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(run, out)
        print(f"{run.name}: step {_step(out)}, {_size(out):.1f} MiB -> {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["save", "restore"])
    ap.add_argument("name", help="the variant's folder name: NAME-TAG (e.g. mbrs-table6-mbrs64-10x-s1)")
    ap.add_argument("--runs", default="runs/reproduce")
    ap.add_argument("--resume", default="resume/reproduce")
    ap.add_argument("--only", action="append", default=None, metavar="RUN",
                    help="save: only this run folder (warm-start or a column's slug; repeatable), e.g. the finished "
                         "columns of a table whose column in progress is too large to carry")
    a = ap.parse_args()
    runs, carried = Path(a.runs) / a.name, Path(a.resume) / a.name
    if a.action == "save":
        save(runs, carried, a.only)
    else:
        restore(carried, runs)


if __name__ == "__main__":
    main()
