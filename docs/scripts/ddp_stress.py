"""Stress the 2-rank DDP test (tests/test_training.py) for gloo's abort at exit (robusthide/training/loop.py,
``TrainLoop._settle_ranks``): run the tiny training under ``torchrun --nproc_per_node=2`` N times and count the
runs that fail. Each run's folder allows core files (``ulimit -c unlimited``): read one with
``gdb -batch -ex "thread apply all bt" .venv/bin/python DIR/core``. Run two at once beside other work to load
the machine, as the test suite does (session 20: 3 aborts in 110 runs before the fix, 0 in 180 after):

    .venv/bin/python docs/scripts/ddp_stress.py --runs 90 --dir /tmp/ddp-a &
    .venv/bin/python docs/scripts/ddp_stress.py --runs 90 --dir /tmp/ddp-b
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from test_training import DDP_SCRIPT, _free_port, tiny_cfg  # noqa: E402


def _cores() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--dir", required=True, help="a scratch folder (photos, scripts, run folders, cores)")
    a = ap.parse_args()
    d = Path(a.dir)
    (d / "photos").mkdir(parents=True, exist_ok=True)
    for name in ("astronaut", "coffee", "chelsea"):  # the test suite's photo_dir
        im = getattr(data, name)()
        Image.fromarray(im).save(d / "photos" / f"{name}.png")
        Image.fromarray(np.ascontiguousarray(im[::2, ::2])).save(d / "photos" / f"{name}_half.png")
    script = d / "ddp.py"
    script.write_text(DDP_SCRIPT)
    fails = 0
    for i in range(a.runs):
        run = d / f"run{i}"
        run.mkdir(exist_ok=True)
        cfg = tiny_cfg(run / "out", d / "photos", steps=4)
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                            f"--master_port={_free_port()}", str(script), json.dumps(cfg), str(run / "w.pt")],
                           env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, cwd=run,
                           preexec_fn=_cores)
        fails += r.returncode != 0
        print(json.dumps({"run": i, "rc": r.returncode, "stderr": r.stderr[-400:] if r.returncode else ""}),
              flush=True)
    print(json.dumps({"runs": a.runs, "failed": fails}))


if __name__ == "__main__":
    main()
