"""Readings of command-line values shared by the subcommands: ``-`` for stdin/stdout. The message of ``-m`` is
:func:`robusthide.payload.codec.message_value` (shared with the service). Kept free of heavy imports
(``robusthide --help`` must not load numpy or torch through it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from robusthide import RobustHideError

if TYPE_CHECKING:  # pragma: no cover
    from robusthide.watermark.files import ImageFile

#: the ``--search`` choices (robusthide.watermark.sync.SEARCH_MODES, without importing torch)
SEARCHES = ["none", "staged", "crop", "geometry", "rotate", "reframe", "corner", "inset", "turn", "slide",
            "anywhere"]
#: the file name that stands for stdin (an input) or stdout (an output)
STDIO = "-"


def is_stdio(name: str | Path | None) -> bool:
    """True when a file argument is ``-`` (stdin for an input, stdout for an output)."""
    return name is not None and str(name) == STDIO


def read_image(path: str | Path, max_pixels: int | None = None) -> ImageFile:
    """:func:`robusthide.watermark.files.read_image_file`, with ``-`` read from stdin's bytes (in memory, with
    every check of the file reader; messages name ``-``)."""
    from robusthide.watermark.files import read_image_file

    if not is_stdio(path):
        return read_image_file(path, max_pixels=max_pixels)
    data = sys.stdin.buffer.read()
    if not data:
        raise RobustHideError("-: no image on stdin")
    return read_image_file(STDIO, max_pixels=max_pixels, data=data)


def write_stdout(data: bytes) -> None:
    """Write an encoded file to stdout (``-o -``); the human messages then go to stderr."""
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
