"""``robusthide scale embed|extract``: mark or verify a folder, a file list or a Parquet table with Ray Data."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from robusthide.cli.args import is_stdio


def _run(a: argparse.Namespace) -> int:
    from robusthide.scale import run_job

    with tempfile.TemporaryDirectory() as tmp:
        source = a.source
        if is_stdio(source):  # a file list on stdin
            source = str(Path(tmp) / "list.txt")
            Path(source).write_text(sys.stdin.read())
        from robusthide.payload.codec import message_value

        message = None if getattr(a, "message", None) is None else message_value(a.message, a.kind)
        s = run_job(a.mode, source, a.results, out_dir=getattr(a, "output", None), message=message, model=a.model,
                    workers=a.workers, batch_size=a.batch_size, threads_per_worker=a.threads_per_worker,
                    kind=getattr(a, "kind", None), strength=getattr(a, "strength", 1.0),
                    refine=getattr(a, "refine", None), fmt=getattr(a, "format", None),
                    quality=getattr(a, "quality", 95), overwrite=getattr(a, "overwrite", False),
                    results_format=a.results_format, address=a.address, progress=a.progress)
    if a.json:
        print(json.dumps(s))
    else:
        print(f"{s['mode']}: {s['processed']} processed ({s['skipped']} already done), {s['detected']} detected, "
              f"{s['errors']} errors in {s['seconds']} s with {s['workers']} workers -> {s['results']}")
    return 2 if s["errors"] else 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a folder, a file list (one path a line; - for stdin) or a Parquet table with a "
                                  "'path' column")
    p.add_argument("--results", required=True, help="results folder (Parquet or CSV files; each run adds its rows; "
                                                    "paths already done there are skipped)")
    p.add_argument("--results-format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--model", default="default", help="zoo name or path to a robusthide .safetensors")
    p.add_argument("--workers", type=int, default=2, help="Ray actors, one model each (default 2)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="CPUs (torch threads) per actor")
    p.add_argument("--batch-size", type=int, default=8, help="images per network call")
    p.add_argument("--address", default=None, help="Ray cluster address (ray://HEAD:10001 or auto); "
                                                   "default: a local Ray")
    p.add_argument("--progress", action="store_true", help="show Ray Data's progress bars")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale", help="mark or verify many images with Ray Data (a local Ray or a cluster)")
    ss = p.add_subparsers(dest="scale_mode", metavar="MODE")
    p.set_defaults(func=lambda a: p.print_help() or 1)
    e = ss.add_parser("embed", help="mark every image; outputs keep their paths under -o")
    _common(e)
    e.add_argument("-o", "--output", required=True, help="output folder")
    e.add_argument("-m", "--message", help="the message for every image (else the table's 'message' column)")
    e.add_argument("--kind", choices=["text", "hex", "bytes", "int"], default=None)
    e.add_argument("--strength", type=float, default=1.0)
    e.add_argument("--refine", type=int, default=None, metavar="STEPS", help="0 = fast path (default: the model's)")
    e.add_argument("--format", help="output format: png, jpeg, webp, tiff (default: by extension)")
    e.add_argument("--quality", type=int, default=95)
    e.add_argument("--overwrite", action="store_true", help="re-mark outputs that already exist")
    e.set_defaults(func=_run, mode="embed")
    x = ss.add_parser("extract", help="read every image: message, detected, p-value")
    _common(x)
    x.set_defaults(func=_run, mode="extract")
