"""Run a ``robusthide`` command with the anywhere search's refinement on (issue 19, session 32).

The refinement (:func:`robusthide.watermark.anywhere.anywhere_refined`) was off in the shipped searches until its
false-positive runs covered the staged search's 10 140 clean images (:data:`ANYWHERE_REFINE`, on since session 33).
This runs any ``robusthide`` command (``evaluate``, ``extract``, ``fpr``) with it on, as session 32 measured it
before; the ``Command:`` line of the results files under ``--out`` then names this script (the results of session
32 were made with it, and it reruns them as they were)::

    .venv/bin/python docs/scripts/anywhere_refined.py evaluate default --data data/photos/train --split val \\
        --size 512 --attacks 'crop:0.7,x=0.3,y=0.7|jpeg:q=75' --search anywhere --payload \\
        --out docs/results/anywhere-refined-default
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    from robusthide.cli.main import main
    from robusthide.watermark import anywhere

    anywhere.ANYWHERE_REFINE = True
    rc = main(sys.argv[1:])
    out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv[:-1] else None
    for f in [Path(out).with_suffix(s) for s in (".md", ".json")] if out else []:
        if f.exists():
            f.write_text(f.read_text().replace(f"robusthide {sys.argv[1]} ",
                                               f".venv/bin/python docs/scripts/anywhere_refined.py {sys.argv[1]} "))
    sys.exit(rc)
