"""Entry point of the ``robusthide`` command.

Each ``robusthide/cli/cmd_*.py`` module defines ``register(subparsers)`` that adds its subcommands;
each subcommand sets ``func`` (a callable taking the parsed args, returning an exit code or None).
User errors are raised as :class:`robusthide.RobustHideError` and printed as one line, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from robusthide import RobustHideError, __version__

COMMAND_MODULES = [
    "cmd_codecs",    # codecs, attack
    "cmd_bench",     # bench codecs|train|api
    "cmd_data",      # data photos
    "cmd_train",     # train, plot
    "cmd_watermark", # embed, extract, detect, capacity
    "cmd_models",    # models
    "cmd_evaluate",  # evaluate, reproduce
    "cmd_demo",      # demo
    "cmd_imagehide", # hide-image, reveal-image
    "cmd_latent",    # latent embed|extract|decode
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robusthide", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"robusthide {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"robusthide.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"robusthide.cli.{name}":
                continue
            raise
        mod.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        rc = args.func(args)
    except RobustHideError as e:
        print(f"robusthide: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robusthide: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
