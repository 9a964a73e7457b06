"""Every ``robusthide ...`` line of the README's ```sh blocks runs, on generated fixtures, so that the README
cannot drift from the command line.

* The lines are read from README.md at collection time: a line added to the README is tested without
  touching this file (``\\`` continuations are joined; ``torchrun ... -m robusthide`` and ``make`` lines
  are not ``robusthide`` lines).
* They run in README order, in one temporary folder, as a reader would type them: ``extract marked.jpg``
  reads what ``embed ... -o marked.jpg`` wrote. The README's placeholder inputs (photo.jpg, photos/,
  clip.mp4, zoomed.jpg...) are made from scikit-image's public-domain images by :data:`FIXTURES`.
* A line runs in-process through :func:`robusthide.cli.main.main` (fast); a line with shell syntax
  (``<``, ``>``, ``|``) runs in bash, with ``robusthide`` as ``python -m robusthide``.
* It must exit 0 (``detect``: 0 or 1, both are answers; a piped line: 141 too, a reader that stopped early).
  A comment ``# -> TEXT`` on the line is checked: the first word of TEXT must be in the output.
* Only the lines of :data:`SKIP` are not run, each for the reason given there.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robusthide.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"

#: (first words after ``robusthide``, why the line is not run). Keep it short: a line belongs here only
#: when it needs the photo set, a training run, minutes of CPU, or blocks.
SKIP: list[tuple[tuple[str, ...], str]] = [
    (("data", "photos"), "copies the free photo set from Debian packages into data/photos (minutes)"),
    (("train",), "a training run: minutes to hours of CPU"),
    (("plot",), "needs the folder of a training run (runs/NAME)"),
    (("export",), "needs the folder of a training run (runs/NAME)"),
    (("bench",), "benchmarks: minutes of CPU by design (they write docs/results/)"),
    (("evaluate",), "needs data/photos, minutes of CPU"),
    (("evaluate-sweep",), "needs data/photos, minutes of CPU"),
    (("evaluate-geometry",), "needs data/photos, minutes of CPU"),
    (("fpr",), "10,000 clean images from data/photos, minutes of CPU"),
    (("serve",), "starts the HTTP service and blocks until stopped (the service has its own tests)"),
]

SHELL_TOKENS = {"|", "||", "&&", ";", "&", "<", ">", ">>", "2>", "2>&1"}


def readme_commands(text: str | None = None) -> list[str]:
    """The ``robusthide ...`` lines of the README's ```sh blocks, in order, continuations joined,
    with their comments."""
    text = README.read_text() if text is None else text
    lines, block, joined = [], False, ""
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("```"):
            block, joined = s == "```sh", ""
            continue
        if not block:
            continue
        joined = f"{joined} {s}" if joined else s
        if joined.endswith("\\"):
            joined = joined[:-1].rstrip()
            continue
        if joined.startswith("robusthide ") or joined == "robusthide":
            lines.append(joined)
        joined = ""
    return lines


def split_line(line: str) -> tuple[list[str], str]:
    """(shell words of the command, its comment) of a README line."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    words = list(lex)
    m = re.search(r"\s#\s*(.*)$", line)
    return words, (m.group(1) if m and not _quoted(line, m.start()) else "")


def _quoted(line: str, pos: int) -> bool:
    return line[:pos].count('"') % 2 == 1 or line[:pos].count("'") % 2 == 1


def skip_reason(words: list[str]) -> str | None:
    for prefix, why in SKIP:
        if tuple(words[1:1 + len(prefix)]) == prefix:
            return why
    return None


# --- fixtures: the README's placeholder files -------------------------------------------------------------


def _photo(name: str = "astronaut", side: int = 256) -> np.ndarray:
    from skimage import data

    im = Image.fromarray(getattr(data, name)())
    return np.asarray(im.convert("RGB").resize((side, round(side * im.height / im.width)), Image.LANCZOS))


def _save(arr: np.ndarray, path: Path, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)


def _zoomed(path: Path) -> None:
    """A marked photo (1234), its centre kept (90 % of the area) and resized back: what ``--search crop`` reads."""
    from robusthide.watermark.watermarker import Watermarker

    marked = Watermarker.from_pretrained("default").embed(_photo("astronaut"), 1234)
    h, w = marked.shape[:2]
    c = round(0.95 * h)
    crop = marked[(h - c) // 2:(h - c) // 2 + c, (w - c) // 2:(w - c) // 2 + c]
    _save(np.asarray(Image.fromarray(crop).resize((w, h), Image.BICUBIC)), path, quality=95)


def _cropped(path: Path) -> None:
    """A marked photo (1234) cropped to 0.856 of each side at (0.8, 0.2) of the frame and resized back: what
    the staged search's anywhere stage reads (a crop off the centre and off the corners, the aspect kept)."""
    from robusthide.watermark.watermarker import Watermarker

    marked = Watermarker.from_pretrained("default").embed(_photo("astronaut"), 1234)
    h, w = marked.shape[:2]
    ch, cw = round(0.856 * h), round(0.856 * w)
    y0, x0 = round(0.2 * (h - ch)), round(0.8 * (w - cw))
    crop = marked[y0:y0 + ch, x0:x0 + cw]
    _save(np.asarray(Image.fromarray(crop).resize((w, h), Image.BICUBIC)), path, quality=90)


def _clip(path: Path) -> None:
    """Eight 160 x 120 H.264 frames of a panning photo."""
    import av

    base = _photo("coffee", 320)[:120, :200]
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        for i in range(8):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, 4 * i:4 * i + 160]), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 10)
            out.mux(v.encode(f))
        out.mux(v.encode())


def _photos(path: Path) -> None:
    _save(_photo("coffee", 192), path / "coffee.jpg", quality=92)
    _save(_photo("chelsea", 160), path / "cats" / "chelsea.png")


#: README placeholder -> how it is made (in the folder the lines run in)
FIXTURES: dict[str, Callable[[Path], None]] = {
    "photo.jpg": lambda p: _save(_photo("astronaut"), p, quality=92),
    "some.jpg": lambda p: _save(_photo("coffee"), p, quality=90),   # unmarked: detect answers 1
    "in.png": lambda p: _save(_photo("chelsea"), p),
    "zoomed.jpg": _zoomed,
    "cropped.jpg": _cropped,
    "photos": _photos,
    "clip.mp4": _clip,
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> tuple[Path, set[int]]:
    """The folder the lines run in, with the fixtures, and the indices of the lines already run there."""
    d = tmp_path_factory.mktemp("readme")
    for name, make in FIXTURES.items():
        make(d / name)
    return d, set()


LINES = readme_commands()


def test_readme_has_commands_and_skips_few():
    assert len(LINES) >= 15
    ran = [ln for ln in LINES if skip_reason(split_line(ln)[0]) is None]
    assert len(ran) > len(LINES) - len(ran), "most README lines must run"


def test_parser_reads_continuations_comments_and_quotes():
    text = "x\n```sh\nrobusthide a b \\\n    --c \"d|e\"   # -> 5 (p)\nmake test\n```\nrobusthide out\n"
    assert readme_commands(text) == ['robusthide a b --c "d|e"   # -> 5 (p)']
    assert split_line(readme_commands(text)[0]) == (["robusthide", "a", "b", "--c", "d|e"], "-> 5 (p)")
    assert split_line("robusthide embed - -o - < a.png > b.png")[0][-4:] == ["<", "a.png", ">", "b.png"]


def run_line(line: str, workdir: Path, capsys) -> None:
    """Run one README line in ``workdir``; AssertionError when it fails or its ``# -> TEXT`` is not printed."""
    words, comment = split_line(line)
    if SHELL_TOKENS & set(words):
        shell = f'robusthide() {{ {shlex.quote(sys.executable)} -m robusthide "$@"; }}; set -o pipefail; {line}'
        p = subprocess.run(["bash", "-c", shell], cwd=workdir, capture_output=True, text=True, timeout=300)
        rc, out, err = p.returncode, p.stdout, p.stderr
    else:
        try:
            rc = main(words[1:])
        except SystemExit as e:  # argparse: a bad option (2) or --help (0)
            rc = e.code if isinstance(e.code, int) else 2
        cap = capsys.readouterr()
        out, err = cap.out, cap.err
    ok = {0, 1} if words[1:2] == ["detect"] else {0, 141} if "|" in words else {0}
    assert rc in ok, f"`{line}` exited {rc}:\n{err[-2000:]}"
    assert "Traceback" not in err, err
    m = re.match(r"->\s*(\S+)", comment)
    if m:
        word = rf"(?<![\w.]){re.escape(m.group(1))}(?![\w.])"  # as a whole word: 7 is not the 7 of 4.4e-17
        assert re.search(word, out), f"`{line}`: expected {m.group(1)!r} in the output, got:\n{out[-2000:]}"


@pytest.mark.parametrize("i", range(len(LINES)), ids=[f"{i:02d}-{' '.join(split_line(ln)[0][1:4])}" for i, ln in
                                                       enumerate(LINES)])
def test_readme_line(i, workdir, monkeypatch, capsys):
    folder, done = workdir
    why = skip_reason(split_line(LINES[i])[0])
    if why:
        pytest.skip(why)
    monkeypatch.chdir(folder)
    for j in range(i):  # the lines above, when this one runs alone (-k, or split across workers)
        if j not in done and skip_reason(split_line(LINES[j])[0]) is None:
            run_line(LINES[j], folder, capsys)
            done.add(j)
    run_line(LINES[i], folder, capsys)
    done.add(i)


@pytest.mark.parametrize("line", [
    "robusthide extract missing.png",                    # exit 2
    "robusthide embed photo.jpg -o x.png --no-such-option",  # argparse: exit 2
    "robusthide capacity   # -> 99999",                  # the promised output is not printed
    "robusthide extract - < missing.png",                # the shell fails
])
def test_a_failing_line_fails_the_test(line, tmp_path, monkeypatch, capsys):
    FIXTURES["photo.jpg"](tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError):
        run_line(line, tmp_path, capsys)
