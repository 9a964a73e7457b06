"""``robusthide bench TARGET``: speed measurements written to docs/results/ (never timed unit tests).

Each target's measurement lives in ``robusthide/bench/<target>.py`` (a ``run`` function that writes the
results and returns them, no printing); its arguments and output are here, in :data:`TARGETS`. Targets of
:data:`BENCH_MODULES` without an entry in :data:`TARGETS` still bring their own ``register(bench_subparsers)``
(to be moved here). To add a target, write the module, add its parser to :data:`TARGETS` and its name to
:data:`BENCH_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable
from pathlib import Path

#: bench targets, in help order: (module under robusthide.bench, required)
BENCH_MODULES: list[tuple[str, bool]] = [
    ("codecs", True),   # robusthide bench codecs
    ("train", False),   # robusthide bench train
    ("api", False),     # robusthide bench api
    ("simulators", False),  # robusthide bench simulators (robusthide/attacks/report.py)
    ("onnx", False),    # robusthide bench onnx
    ("onnx_install", False),  # robusthide bench onnx-install (robusthide/bench/onnx_install.py)
    ("batch", False),   # robusthide bench batch
    ("scale", False),   # robusthide bench scale
    ("serve", False),   # robusthide bench serve
    ("threads", False),  # robusthide bench threads (robusthide/bench/threads.py)
    ("memory", False),  # robusthide bench memory (robusthide/bench/memory.py)
    ("search", False),  # robusthide bench search (robusthide/bench/search.py)
]


def _int_list(text: str, flag: str) -> list[int]:
    """The integers of a comma-separated option value, or a one-line error naming ``flag``."""
    from robusthide import RobustHideError

    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RobustHideError(f"{flag} must be integers separated by commas, got {text!r}") from None


def _codecs(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide.bench.codecs import run

        sizes = _int_list(a.sizes, "--sizes")
        res = run(a.out, sizes, a.codecs, a.batch, a.repeats, a.note,
                  progress=None if a.quiet else (lambda line: print(line, flush=True)), gil_seconds=a.gil_seconds)
        print(f"wrote {a.out}.json and {a.out}.md ({res['seconds']} s)")
        return 0

    b = bench_sub.add_parser("codecs", help="ms per image of every codec at each size, 1 worker vs all cores")
    b.add_argument("--out", default="docs/results/bench-codecs",
                   help="output prefix: writes OUT.json and OUT.md (default docs/results/bench-codecs)")
    b.add_argument("--sizes", default="128,512", help="image sides, comma-separated (default 128,512)")
    b.add_argument("--codecs", nargs="+", metavar="SPEC", default=None,
                   help="codec specs (space-separated; default: every codec at a typical setting)")
    b.add_argument("--batch", type=int, default=16, help="images per call (default 16)")
    b.add_argument("--repeats", type=int, default=3, help="timed calls; the median is reported (default 3)")
    b.add_argument("--note", default="", help="a note written into the results (e.g. what else was running)")
    b.add_argument("--gil-seconds", type=float, default=1.0,
                   help="seconds of GIL probe per codec at the largest size (0: no probe; default 1)")
    b.add_argument("--quiet", action="store_true", help="no per-row progress")
    b.set_defaults(func=go)


def _train(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide.bench.train import run

        print(json.dumps(run(a.out, a.archs.split(","), a.size, a.batch)["rows"]))
        return 0

    b = bench_sub.add_parser("train", help="images/s of a training step per architecture")
    b.add_argument("--out", default="docs/results/bench-train")
    b.add_argument("--size", type=int, default=128)
    b.add_argument("--batch", type=int, default=16)
    b.add_argument("--archs", default="lean")
    b.set_defaults(func=go)


def _api(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide.bench.api import run

        print(json.dumps(run(a.out, a.model, a.repeats)["rows"]))
        return 0

    b = bench_sub.add_parser("api", help="embed/extract time for 512px, 1080p and 12 MP images")
    b.add_argument("--out", default="docs/results/bench-api")
    b.add_argument("--model", default="default")
    b.add_argument("--repeats", type=int, default=7)
    b.set_defaults(func=go)


def _search(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide.bench.search import run

        print(json.dumps(run(a.out, a.model, a.repeats, a.threads)["rows"]))
        return 0

    b = bench_sub.add_parser("search",
                             help="extract time at 1080p for each search (mirror, reframe, rotate, crop, corner)")
    b.add_argument("--out", default="docs/results/bench-search")
    b.add_argument("--model", default="default")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    b.set_defaults(func=go)


def _simulators(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide.attacks.report import measure, to_markdown

        md = to_markdown(measure(a.quality, a.size), a.size)
        print(md)
        if a.write:
            Path(a.write).write_text(md, encoding="utf-8")
        return 0

    b = bench_sub.add_parser("simulators", help="PSNR of each JPEG simulator against real JPEG (robusthide.attacks"
                                                ".report; docs/results/attacks.md)")
    b.add_argument("--quality", type=int, nargs="+", default=[50, 10, 25, 75, 90])
    b.add_argument("--size", type=int, default=256)
    b.add_argument("--write", metavar="PATH", help="write the markdown table to PATH")
    b.set_defaults(func=go)


def _serve(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide.bench.serve import run

        sizes = [s.strip() for s in a.sizes.split(",") if s.strip()] if a.sizes else None
        res = run(a.out, a.model, a.clients, a.requests, sizes, a.refine, a.note)
        for r in res["rows"]:
            print(f"{r['size']} {r['endpoint']}: {r['rps']} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms "
                  f"({r['ok']}/{r['requests']} ok)")
        print(f"wrote {a.out}.json and {a.out}.md")
        return 0

    b = bench_sub.add_parser("serve", help="robusthide serve under load on loopback: requests/s, p50/p99 latency")
    b.add_argument("--out", default="docs/results/bench-serve")
    b.add_argument("--model", default="default")
    b.add_argument("--clients", type=int, default=4, help="concurrent clients (and the server's --max-jobs)")
    b.add_argument("--requests", type=int, default=16, help="timed requests per endpoint and size")
    b.add_argument("--sizes", default=None, help="512x512,1920x1080 (default: both)")
    b.add_argument("--refine", type=int, default=None, help="embed refinement steps (default: the model's)")
    b.add_argument("--note", default="", help="a note written into the results (e.g. what else was running)")
    b.set_defaults(func=go)


def _onnx(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide.bench.onnx import run

        print(json.dumps(run(a.out, a.model, a.repeats, a.torch_free_python)["rows"]))
        return 0

    b = bench_sub.add_parser("onnx", help="install size and embed/extract speed: onnxruntime against torch")
    b.add_argument("--out", default="docs/results/onnx")
    b.add_argument("--model", default="default")
    b.add_argument("--repeats", type=int, default=7)
    b.add_argument("--torch-free-python", metavar="PYTHON",
                   help="also run the runtime in this interpreter (a venv with only onnxruntime, numpy, pillow, "
                        "bchlib) and report its size")
    b.set_defaults(func=go)


def _onnx_install(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide.bench.onnx_install import run

        res = run(a.python, a.out, a.repeats)
        print(json.dumps({k: {x: v[x] for x in ("du_mb", "torch_found", "embed_s", "extract_s", "message")}
                          for k, v in res["envs"].items()}))
        return 0

    b = bench_sub.add_parser("onnx-install", help="a fresh pip install 'robusthide[onnx]' (no torch) against the "
                                                  "full install: size on disk and CLI embed/extract seconds")
    b.add_argument("--python", required=True, metavar="PYTHON",
                   help="the interpreter of a venv where pip install 'robusthide[onnx]' ran")
    b.add_argument("--out", default="docs/results/onnx-install")
    b.add_argument("--repeats", type=int, default=3)
    b.set_defaults(func=go)


def _batch(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide.bench.batch import run

        res = run(a.out, a.model, a.n, a.repeats, a.batch_size, cli=not a.no_cli)
        print(json.dumps(res["rows"] + res["cli"]))
        return 0

    b = bench_sub.add_parser("batch", help="embed_batch/extract_batch against one call per image")
    b.add_argument("--out", default="docs/results/bench-batch")
    b.add_argument("--model", default="default")
    b.add_argument("--n", type=int, default=16, help="images per set")
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--batch-size", type=int, default=64)
    b.add_argument("--no-cli", action="store_true", help="leave out the command-line comparison (--list FILE)")
    b.set_defaults(func=go)


def _scale(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide.bench.scale import run

        workers = _int_list(a.workers, "--workers")
        print(json.dumps(run(a.out, a.n, workers, a.cpus, a.refine, a.batch_size, a.model)["rows"]))
        return 0

    b = bench_sub.add_parser("scale", help="Ray Data throughput (robusthide scale) against the number of workers")
    b.add_argument("--out", default="docs/results/scale")
    b.add_argument("--n", type=int, default=24, help="photos to mark and verify")
    b.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    b.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    b.add_argument("--refine", type=int, default=None, help="refinement steps (default: the model's)")
    b.add_argument("--batch-size", type=int, default=4)
    b.add_argument("--model", default="default")
    b.set_defaults(func=go)


#: the parsers of the bench targets (target -> function adding its sub-subcommand)
def _threads(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide import RobustHideError
        from robusthide.bench.threads import run

        th, bz = _int_list(a.threads, "--threads"), _int_list(a.busy, "--busy")
        bad_busy = any(b < 0 or (a.cores and b > a.cores) for b in bz)
        if a.cores < 0 or a.repeats < 1 or any(t < 0 for t in th) or bad_busy:
            raise RobustHideError("--cores >= 0, --repeats >= 1, --threads >= 0, 0 <= --busy <= --cores")
        for r in run(a.out, a.cores, th, bz, a.repeats, a.note)["rows"]:
            print(f"{r['cores']} cores, {r['threads']} threads, {r['busy_cores']} busy: embed {r['embed_ms']} ms, "
                  f"extract {r['extract_ms']} ms")
        print(f"wrote {Path(a.out).with_suffix('.md')}")
        return 0

    p = bench_sub.add_parser("threads", help="fast embed/extract at 1080p vs torch threads, with a busy core")
    p.add_argument("--out", default="docs/results/bench-threads")
    p.add_argument("--cores", type=int, default=2, help="CPUs the measuring process may use (0: all)")
    p.add_argument("--threads", default="1,2,0", help="torch intra-op threads to try (0: torch's default)")
    p.add_argument("--busy", default="0,1", help="numbers of busy cores to try")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--note", default="", help="a note written into the results (e.g. what else was running)")
    p.set_defaults(func=go)


def _memory(bench_sub: argparse._SubParsersAction) -> None:
    def go(a: argparse.Namespace) -> int:
        from robusthide import RobustHideError
        from robusthide.bench.memory import run

        if not a.megapixels or any(not 0 < m <= 1000 for m in a.megapixels):
            raise RobustHideError("--megapixels takes sizes in (0, 1000]")
        run(a.out, a.megapixels, a.refine, a.note, progress=lambda r: print(json.dumps(r), flush=True))
        print(f"wrote {Path(a.out).with_suffix('.json')}, {Path(a.out).with_suffix('.md')}")
        return 0

    p = bench_sub.add_parser("memory", help="peak memory of robusthide embed against image size (the pixel limit)")
    p.add_argument("--out", default="docs/results/io-memory")
    p.add_argument("--megapixels", type=float, nargs="+", default=[1, 4, 16, 50])
    p.add_argument("--refine", type=int, default=None, help="pass --refine STEPS to embed (default: the model's)")
    p.add_argument("--note", default="", help="a note written into the results (e.g. what else was running)")
    p.set_defaults(func=go)


TARGETS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "codecs": _codecs, "train": _train, "api": _api, "simulators": _simulators, "serve": _serve,
    "onnx": _onnx, "onnx_install": _onnx_install, "batch": _batch, "scale": _scale, "threads": _threads,
    "memory": _memory, "search": _search}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks (codecs, ...) written to docs/results/")
    bench_sub = p.add_subparsers(dest="bench_target", metavar="TARGET")
    p.set_defaults(func=lambda a: p.print_help() or 1)
    for name, required in BENCH_MODULES:
        if name in TARGETS:
            TARGETS[name](bench_sub)
            continue
        try:
            mod = importlib.import_module(f"robusthide.bench.{name}")
        except ModuleNotFoundError as e:
            if not required and e.name == f"robusthide.bench.{name}":
                continue
            raise
        mod.register(bench_sub)
