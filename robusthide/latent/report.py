"""Writing the results of the latent measurements (bench, bench-liso, rd, probe) to docs/results/."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(result: dict, out: str | Path) -> Path:
    """Write ``result`` to ``out``.json (creating the folder); returns ``out`` as a Path for the other files."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return out


def write_results(result: dict, out: str | Path, markdown: str) -> Path:
    """Write ``result`` to ``out``.json and the page ``markdown`` to ``out``.md, keeping the hand-written
    "## Reading" section of an existing page (:func:`robusthide.io.results.write_keeping_reading`); returns
    ``out`` as a Path."""
    from robusthide.io.results import write_keeping_reading

    out = write_json(result, out)
    write_keeping_reading(out.with_suffix(".md"), markdown)
    return out


def md_head(title: str, *paragraphs: str, command: str = "") -> list[str]:
    """The first lines of a results page: the title, the intro paragraphs and, when given, the command."""
    lines = [f"# {title}", ""]
    for p in paragraphs:
        lines += [p, ""]
    if command:
        lines += ["Command:", "", f"    {command}", ""]
    return lines
