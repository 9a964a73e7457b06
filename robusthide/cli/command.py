"""The command line that reproduces a report, rebuilt from parsed arguments (not from ``sys.argv``, which
is the caller's when ``robusthide.cli.main.main`` is called from Python)."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence

#: (attribute, flag, default): an option equal to its default is left out of the command
Flag = tuple[str, str, object]


def command_line(words: Sequence[str], a: argparse.Namespace, flags: Sequence[Flag],
                 always: Sequence[str] = ()) -> str:
    """``robusthide WORDS... --flag value ...`` for the options of ``a`` that differ from their defaults
    (those named in ``always`` are written whenever set, so a report names what it measured). Options that
    do not change the result (``--json``, ``--no-progress``, ``--device``) are not in ``flags``."""
    parts = ["robusthide", *words]
    for key, flag, default in flags:
        v = getattr(a, key, None)
        if v is None or (v == default and key not in always):
            continue
        if isinstance(v, bool):  # a store_true flag
            parts += [flag] if v else []
            continue
        if isinstance(v, (list, tuple)):  # a repeatable flag
            for x in v:
                parts += [flag, str(x)]
            continue
        parts += [flag, f"{v:g}" if isinstance(v, float) else str(v)]
    return shlex.join(parts)
