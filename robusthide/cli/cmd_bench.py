"""``robusthide bench TARGET``: speed measurements written to docs/results/ (never timed unit tests).

Each target lives in ``robusthide/bench/<target>.py`` and exposes ``register(bench_subparsers)``, adding
its own sub-subcommand that sets ``func``. ``codecs`` is always there; the others in
:data:`BENCH_MODULES` are registered when their module exists. To add a target, write the module and
append its name to :data:`BENCH_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib

#: bench targets, in help order: (module under robusthide.bench, required)
BENCH_MODULES: list[tuple[str, bool]] = [
    ("codecs", True),   # robusthide bench codecs
    ("train", False),   # robusthide bench train
    ("api", False),     # robusthide bench api
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks (codecs, ...) written to docs/results/")
    bench_sub = p.add_subparsers(dest="bench_target", metavar="TARGET")
    p.set_defaults(func=lambda a: p.print_help() or 1)
    for name, required in BENCH_MODULES:
        try:
            mod = importlib.import_module(f"robusthide.bench.{name}")
        except ModuleNotFoundError as e:
            if not required and e.name == f"robusthide.bench.{name}":
                continue
            raise
        mod.register(bench_sub)
