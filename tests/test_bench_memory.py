"""``robusthide bench memory`` measures its child process (the installed command), not itself."""

from __future__ import annotations

import json
import subprocess
import sys

from robusthide.bench import memory


def test_child_peak_reads_the_childs_own_memory_and_exit_code(tmp_path):
    """A child that refuses bad input exits 2 with its one-line error in the stderr file; a command's peak is
    that process's (tens of MB for the Python interpreter and robusthide), not the caller's."""
    err = tmp_path / "err.txt"
    argv = ["embed", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png"), "-m", "1"]
    # called from a fresh interpreter, as `robusthide bench memory` is: Linux records the RSS a process had when
    # it forked in its child's peak at exec, so a large pytest worker would inflate the figure
    script = ("import json, sys; from pathlib import Path; from robusthide.bench import memory; "
              f"print(json.dumps(memory.child_peak({argv!r}, Path({str(err)!r}))))")
    code, kb = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                         check=True).stdout)
    assert code == 2
    assert err.read_text().startswith("robusthide: error:") and len(err.read_text().splitlines()) == 1
    assert 10_000 < kb < 2_000_000
    assert not (tmp_path / "o.png").exists()


def test_run_writes_one_row_per_size(tmp_path):
    doc = memory.run(tmp_path / "mem", [0.01], refine=0)
    row = doc["rows"][0]
    assert row["exit"] == 0 and row["width"] * row["height"] >= 9000 and row["peak_rss_mb"] > 10
    saved = json.loads((tmp_path / "mem.json").read_text())
    assert saved["rows"] == doc["rows"] and "bench memory" in saved["command"]
