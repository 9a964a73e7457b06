"""The command line as a person uses it: digit messages are integers, ``-`` for stdin/stdout, a light
``--help``/``--version`` (no torch), a clean exit on a closed pipe, folder lines above the progress bar."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest
from PIL import Image

from robusthide.cli.main import main
from robusthide.payload.codec import message_value

ROBUSTHIDE = [sys.executable, "-m", "robusthide"]


@pytest.fixture()
def small_png(photos) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photos["astronaut"]).resize((192, 192)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("text,kind,expect", [
    ("1234", None, 1234), ("0", None, 0), ("007", None, 7),   # digits without --kind: an integer
    ("1234", "text", "1234"),                                  # --kind text keeps them text
    ("0x1f", "int", 31), ("12a", None, "12a"), ("-5", None, "-5"), ("1 2", None, "1 2"),
    ("\u0663", None, "\u0663"),                                # a non-ASCII digit stays text
])
def test_message_value(text, kind, expect):
    v = message_value(text, kind)
    assert v == expect and type(v) is type(expect)


def test_digits_round_trip_as_the_same_integer(tmp_path, photos, capsys):
    src, out = tmp_path / "photo.png", tmp_path / "marked.png"
    Image.fromarray(photos["astronaut"]).resize((192, 192)).save(src)
    assert main(["embed", str(src), "-o", str(out), "-m", "1234", "--refine", "0"]) == 0
    capsys.readouterr()
    assert main(["extract", str(out)]) == 0
    assert re.search(r"marked\.png: 1234  \(p=", capsys.readouterr().out)
    assert main(["extract", str(out), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["message"] == 1234 and row["kind"] == "int" and row["detected"]
    assert main(["embed", str(src), "-o", str(out), "-m", "7", "--kind", "text", "--refine", "0"]) == 0
    capsys.readouterr()
    assert main(["extract", str(out), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["message"] == "7" and row["kind"] == "text"


def _stdio(monkeypatch, data: bytes) -> io.BytesIO:
    """Point stdin at ``data`` and stdout at a fresh buffer (returned)."""
    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, write_through=True))
    return out


def test_stdin_to_stdout_png_then_extract_from_stdin(monkeypatch, small_png, capsys):
    out = _stdio(monkeypatch, small_png)
    assert main(["embed", "-", "-o", "-", "-m", "7", "--refine", "0"]) == 0
    png = out.getvalue()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")                # the image only: nothing else on stdout
    assert re.fullmatch(r"-: PSNR \d+\.\d\d dB\n", capsys.readouterr().err)  # the human line on stderr
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (192, 192)
    out = _stdio(monkeypatch, png)
    assert main(["extract", "-", "--json"]) == 0
    row = json.loads(out.getvalue())
    assert row["input"] == "-" and row["message"] == 7 and row["detected"]
    _stdio(monkeypatch, png)
    assert main(["detect", "-"]) == 0


def test_stdout_format_option_and_json_go_to_stderr(monkeypatch, small_png, capsys):
    out = _stdio(monkeypatch, small_png)
    assert main(["embed", "-", "-o", "-", "-m", "5", "--format", "jpeg", "--refine", "0", "--json"]) == 0
    assert out.getvalue()[:3] == b"\xff\xd8\xff"              # JPEG
    assert json.loads(capsys.readouterr().err)["output"] == "-"


def test_stdin_to_file_and_file_to_stdout(monkeypatch, tmp_path, small_png, capsys):
    dst = tmp_path / "m.webp"
    _stdio(monkeypatch, small_png)
    assert main(["embed", "-", "-o", str(dst), "-m", "9", "--refine", "0"]) == 0
    with Image.open(dst) as im:
        assert im.format == "WEBP"
    src = tmp_path / "p.png"
    src.write_bytes(small_png)
    out = _stdio(monkeypatch, b"")
    assert main(["embed", str(src), "-o", "-", "-m", "9", "--refine", "0"]) == 0
    assert out.getvalue().startswith(b"\x89PNG")


@pytest.mark.parametrize("argv,stdin,expect", [
    (["extract", "-"], b"", "-: no image on stdin"),
    (["extract", "-"], b"not an image", "-: "),  # the file reader's own message, naming -
    (["embed", "-", "--in-place", "-m", "1"], b"x", "--in-place needs a file, not - (stdin)"),
])
def test_stdio_bad_input_one_line(monkeypatch, capsys, argv, stdin, expect):
    out = _stdio(monkeypatch, stdin)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robusthide: error: {expect}") and err.count("\n") == 1 and out.getvalue() == b""


def test_stdout_takes_one_image_not_a_folder(tmp_path, photos, capsys):
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("a", "b"):
        Image.fromarray(photos["coffee"][:64, :64]).save(d / f"{name}.png")
    assert main(["embed", str(d), "-o", "-", "-m", "1", "--recursive"]) == 2
    assert "-o - (stdout) takes one image" in capsys.readouterr().err


def test_help_and_version_do_not_import_torch():
    """``robusthide --help``/``--version`` stay quick: no command module imports torch at start-up."""
    code = (
        "import sys\n"
        "from robusthide.cli.main import main\n"
        "for argv in (['--version'], ['--help'], ['embed', '--help'], ['bench', '--help'], ['models', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (argv, e.code)\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'cv2', 'av', 'skimage', 'onnxruntime', 'ray')\n"
        "               if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "robusthide 0.1" in p.stdout and "HEAVY []" in p.stdout


def test_version_subprocess_lists_no_torch_import():
    p = subprocess.run([*ROBUSTHIDE[:1], "-X", "importtime", *ROBUSTHIDE[1:], "--version"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("robusthide ")
    assert not re.search(r"\|\s+torch$", p.stderr, re.M)  # -X importtime lists every module imported


@pytest.mark.parametrize("argv", [["models", "--card", "default"], ["models"], ["--help"]])
def test_closed_pipe_exits_without_traceback(argv):
    """``robusthide models --card default | head -1``: the reader is gone before robusthide writes."""
    r, w = os.pipe()
    os.close(r)  # the reader went away: every write to w fails with EPIPE
    try:
        p = subprocess.run([*ROBUSTHIDE, *argv], stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert p.stderr == ""                       # no BrokenPipeError traceback, no "Exception ignored"
    assert p.returncode in (0, 141)             # 141 = 128 + SIGPIPE, like any Unix tool; --help: argparse's 0


def test_closed_pipe_while_writing_an_image(tmp_path, small_png):
    src = tmp_path / "p.png"
    src.write_bytes(small_png)
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([*ROBUSTHIDE, "embed", str(src), "-o", "-", "-m", "7", "--refine", "0"], stdout=w,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert (p.returncode, p.stderr) == (141, "")


def test_closed_pipe_in_a_shell_pipeline(tmp_path):
    script = (f"set -o pipefail; {' '.join(ROBUSTHIDE)} models --card default | head -1; "
              "echo status=${PIPESTATUS[0]}")
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.stdout.splitlines()[0].startswith("# Model card")
    assert re.search(r"status=(0|141)$", p.stdout.strip()) and "Traceback" not in p.stderr and "Error" not in p.stderr


def test_folder_lines_are_whole_lines_above_the_bar(tmp_path, photos, capsys):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    names = ["a.png", "b.png", "sub/c.png"]
    for name in names:
        Image.fromarray(photos["chelsea"][:96, :96]).save(d / name)
    assert main(["embed", str(d), "-o", str(tmp_path / "out"), "-m", "3", "--recursive", "--refine", "0"]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert {ln.split(": PSNR")[0] for ln in lines} == {str(tmp_path / "out" / n) for n in names}
    assert all(re.fullmatch(r".+\.png: PSNR \d+\.\d\d dB", ln) for ln in lines) and len(lines) == 3
    assert "embed" in cap.err  # the bar, on stderr
