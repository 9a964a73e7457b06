"""A corpus of bad inputs, made here in tmp_path: every one is refused with exit 2, exactly one stderr line
(``robusthide: error: ...``), no traceback, and no change to any existing file (nothing new either).

Classes (docs/robustness-of-io.md lists them with the behaviour): damaged image files of every format,
non-regular files (FIFO, device, folder, broken link), decompression bombs (from the header), multi-frame
images (also --in-place), out-of-range options, unwritable outputs (a file as folder, an existing folder,
the input itself, a full disk), bad weights files (metadata out of bounds, wrong tensors), bad videos
(tiny, damaged, a FIFO, a crop search), bad latent codec and .rhl files, out-of-range pixel values.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robusthide.cli.main import main

ROOT = "corpus"


# -- the corpus ------------------------------------------------------------------------------------------

def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels, with one tiny IDAT (Pillow opens it lazily)."""
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def _bmp_header(w: int, h: int) -> bytes:
    head = struct.pack("<2sIHHI", b"BM", 54 + 16, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 16, 2835, 2835, 0, 0)
    return head + info + b"\x00" * 16


def _gif_header(w: int, h: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0)
            + b"\x02\x02\x44\x01\x00\x3b")


def _tiff_header(w: int, h: int) -> bytes:
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, w * h)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def _video(path: Path, w: int, h: int, n: int = 4) -> None:
    import av

    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=10)
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    rng = np.random.default_rng(0)
    for i in range(n):
        f = av.VideoFrame.from_ndarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), format="rgb24")
        f.pts, f.time_base = i, Fraction(1, 10)
        for p in v.encode(f):
            out.mux(p)
    for p in v.encode():
        out.mux(p)
    out.close()


def _weights(path: Path, meta_change: dict | None = None, kwargs_change: dict | None = None,
             drop_tensor: bool = False, raw_kwargs: str | None = None) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from robusthide.zoo.registry import resolve

    src = resolve("default")
    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    key = "config" if meta.get("format") == "robusthide/2" else "kwargs"  # robusthide/1 wrote 'kwargs'
    kw = json.loads(meta[key])
    for k, v in (kwargs_change or {}).items():
        d = kw
        *parents, last = k.split(".")
        for q in parents:
            d = d.setdefault(q, {})
        d[last] = v
    meta[key] = raw_kwargs if raw_kwargs is not None else json.dumps(kw)
    meta.update(meta_change or {})
    if drop_tensor:
        tensors.pop(sorted(tensors)[0])
    save_file(tensors, str(path), metadata={k: v for k, v in meta.items() if v is not None})


def _multi(path: Path, fmt: str, n: int = 5) -> None:
    frames = [Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)) for i in range(n)]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, photos):
    """(folder, cases): every case is (id, argv) in that folder; made once for the module."""
    d = tmp_path_factory.mktemp(ROOT)
    good = d / "good.png"
    Image.fromarray(photos["astronaut"][:256, :256]).save(good)
    data = good.read_bytes()
    cases: list[tuple[str, list[str]]] = []

    def add(cid: str, *argv) -> None:
        cases.append((cid, [str(a) for a in argv]))

    # 1. damaged image files of every format (6 formats x 5 kinds = 30)
    arr = photos["coffee"][:96, :128]
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("TIFF", "tif"), ("BMP", "bmp"),
                     ("GIF", "gif")):
        ok = d / f"ok.{ext}"
        Image.fromarray(arr).save(ok, format=fmt)
        raw = ok.read_bytes()
        ok.unlink()
        variants = {"empty": b"", "text": b"this is not an image at all\n", "random": os.urandom(4096),
                    "truncated": raw[: max(len(raw) // 3, 40)], "head": raw[:24]}
        for kind, content in variants.items():
            p = d / f"{kind}.{ext}"
            p.write_bytes(content)
            if ext == "gif":  # GIF is read-only for embed's folder walk; refuse it for extract too
                add(f"damaged-{kind}-{ext}-extract", "extract", p)
            else:
                add(f"damaged-{kind}-{ext}", "embed", p, "-o", d / f"out-{kind}-{ext}.png", "-m", "H")
    # a PNG body named .jpg (wrong extension, truncated)
    (d / "png-as.jpg").write_bytes(data[: len(data) // 2])
    add("wrong-extension-truncated", "embed", d / "png-as.jpg", "-o", d / "o.png", "-m", "H")

    # 2. non-regular files (9)
    fifo = d / "fifo.png"
    os.mkfifo(fifo)
    add("fifo-embed", "embed", fifo, "-o", d / "o.png", "-m", "H")
    add("fifo-extract", "extract", fifo)
    add("fifo-detect", "detect", fifo)
    vfifo = d / "fifo.mp4"
    os.mkfifo(vfifo)
    add("fifo-video", "embed", vfifo, "-o", d / "o.mp4", "-m", "H")
    wfifo = d / "fifo.safetensors"
    os.mkfifo(wfifo)
    add("fifo-weights", "extract", good, "--model", wfifo)
    (d / "dev.png").symlink_to("/dev/zero")
    add("device", "extract", d / "dev.png")
    (d / "broken.png").symlink_to(d / "nowhere.png")
    add("broken-link", "extract", d / "broken.png")
    add("missing", "extract", d / "missing.png")
    (d / "folder.png").mkdir()
    add("folder-no-recursive", "embed", d / "folder.png", "-o", d / "o.png", "-m", "H")
    fifo_dir = d / "only-fifo"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "f.png")
    add("folder-only-fifo", "embed", fifo_dir, "-o", d / "o-dir", "-m", "H", "--recursive")

    # 3. decompression bombs, refused from the header (8)
    for fmt, make in (("png", _png_header), ("bmp", _bmp_header), ("gif", _gif_header), ("tif", _tiff_header)):
        p = d / f"bomb.{fmt}"
        p.write_bytes(make(14000, 14000))  # 196 MP, a few bytes
        add(f"bomb-{fmt}-extract", "extract", p)
    add("bomb-png-embed", "embed", d / "bomb.png", "-o", d / "o.png", "-m", "H")
    (d / "bomb-huge.png").write_bytes(_png_header(60000, 60000))
    add("bomb-3600mp", "extract", d / "bomb-huge.png")
    add("max-pixels-small", "embed", good, "-o", d / "o.png", "-m", "H", "--max-pixels", 1000)
    add("max-pixels-extract", "extract", good, "--max-pixels", 1000)

    # 4. multi-frame files (8)
    for fmt, ext in (("GIF", "gif"), ("PNG", "png"), ("TIFF", "tif"), ("WEBP", "webp")):
        p = d / f"frames5.{ext}"
        _multi(p, fmt)
        out_ext = "png" if ext == "gif" else ext
        add(f"multiframe-{ext}", "embed", p, "-o", d / f"o-frames.{out_ext}", "-m", "H")
        if ext != "gif":
            add(f"multiframe-{ext}-in-place", "embed", p, "--in-place", "-m", "H")
    add("multiframe-extract", "extract", d / "frames5.tif")

    # 5. out-of-range options (24)
    for opt, vals in (("--quality", [0, 101, -5, 500]), ("--crf", [-1, 52, 999]),
                      ("--strength", [0, -1, 5, "nan", "inf"]), ("--refine", [-1, 1001, 1000000000]),
                      ("--workers", [0, -1, 65]), ("--max-pixels", [0, -5]), ("--threads", [-1, 257])):
        for v in vals:
            add(f"option{opt}={v}", "embed", good, "-o", d / "o.png", "-m", "H", opt, v)
    add("video-codec-unknown", "embed", good, "-o", d / "o.png", "-m", "H", "--video-codec", "divx")
    add("refine-precision-unknown", "embed", good, "-o", d / "o.png", "-m", "H", "--refine-precision", "fp16")
    add("extract-workers-0", "extract", good, "--workers", 0)
    add("format-unknown", "embed", good, "-o", d / "o.png", "-m", "H", "--format", "xyz")

    # 6. outputs that cannot be written (9)
    add("output-under-a-file", "embed", good, "-o", d / "good.png" / "x.png", "-m", "H")
    add("output-is-folder", "embed", good, "-o", d / "folder.png", "-m", "H")
    add("output-unknown-ext", "embed", good, "-o", d / "o.xyz", "-m", "H")
    add("output-is-input", "embed", good, "-o", good, "-m", "H")
    (d / "link-to-good.png").symlink_to(good)
    add("output-is-input-via-link", "embed", good, "-o", d / "link-to-good.png", "-m", "H")
    add("in-place-and-output", "embed", good, "--in-place", "-o", d / "o.png", "-m", "H")
    add("no-output", "embed", good, "-m", "H")
    add("jpeg-with-alpha", "embed", d / "alpha.png", "-o", d / "o.jpg", "-m", "H")
    Image.fromarray(np.dstack([photos["coffee"][:64, :64], np.full((64, 64), 128, np.uint8)])).save(d / "alpha.png")
    add("quality-too-low-for-mark", "embed", good, "-o", d / "o.jpg", "-m", "H", "--quality", 1)

    # 7. weights files (13)
    w = d / "weights"
    w.mkdir()
    (w / "garbage.safetensors").write_bytes(b"garbage")
    add("weights-garbage", "extract", good, "--model", w / "garbage.safetensors")
    (w / "text.safetensors").write_text("{}")
    add("weights-text", "extract", good, "--model", w / "text.safetensors")
    add("weights-missing", "extract", good, "--model", w / "none.safetensors")
    bad_meta = {
        "refine-steps-1e9": dict(kwargs_change={"refine.steps": 10**9}),
        "n-bits-1e9": dict(kwargs_change={"n_bits": 10**9}),
        "size-huge": dict(kwargs_change={"size": 1 << 20}),
        "amplitude-nan": dict(raw_kwargs='{"n_bits": 64, "size": 128, "amplitude": NaN}'),
        "kwargs-not-json": dict(raw_kwargs="{not json"),
        "kwargs-a-list": dict(raw_kwargs="[1, 2, 3]"),
        "kwargs-deep": dict(raw_kwargs='{"mask": {"a": {"b": {"c": {"d": {"e": 1}}}}}}'),
        "strength-huge": dict(meta_change={"strength": "1e9"}),
        "strength-text": dict(meta_change={"strength": "strong"}),
        "format-foreign": dict(meta_change={"format": "other/1"}),
        "tensor-missing": dict(drop_tensor=True),
        "unknown-kwarg": dict(kwargs_change={"no_such_argument": 3}),
    }
    for name, kw in bad_meta.items():
        p = w / f"{name}.safetensors"
        _weights(p, **kw)
        add(f"weights-{name}", "embed", good, "-o", d / "o.png", "-m", "H", "--model", p)

    # 8. videos (6)
    _video(d / "tiny.mp4", 14, 14)
    add("video-tiny-embed", "embed", d / "tiny.mp4", "-o", d / "o.mp4", "-m", "H")
    add("video-tiny-extract", "extract", d / "tiny.mp4")
    _video(d / "clip.mp4", 64, 48)
    add("video-search-crop", "extract", d / "clip.mp4", "--search", "crop")
    add("video-crf-out-of-range", "embed", d / "clip.mp4", "-o", d / "o.mp4", "-m", "H", "--crf", 70)
    (d / "bad.mp4").write_bytes(b"not a video")
    add("video-damaged", "embed", d / "bad.mp4", "-o", d / "o.mp4", "-m", "H")
    (d / "empty.mp4").write_bytes(b"")
    add("video-empty", "extract", d / "empty.mp4")

    # 9. pixel values and sizes, also through `attack` (read_image_rgb) (8)
    Image.fromarray(np.linspace(-5, 1000, 64 * 64, dtype=np.float32).reshape(64, 64), "F").save(d / "float.tif")
    add("float-tiff-out-of-range", "embed", d / "float.tif", "-o", d / "o.tif", "-m", "H")
    add("float-tiff-attack", "attack", d / "float.tif", "-o", d / "o.png", "--codec", "jpeg:q=50")
    add("fifo-attack", "attack", fifo, "-o", d / "o.png", "--codec", "jpeg:q=50")
    add("multiframe-attack", "attack", d / "frames5.tif", "-o", d / "o.png", "--codec", "jpeg:q=50")
    Image.fromarray(np.full((64, 64), np.nan, np.float32), "F").save(d / "nan.tif")
    add("float-tiff-nan", "embed", d / "nan.tif", "-o", d / "o.tif", "-m", "H")
    Image.fromarray(photos["coffee"][:10, :300]).save(d / "thin.png")
    add("thin-embed", "embed", d / "thin.png", "-o", d / "o.png", "-m", "H")
    add("thin-extract", "extract", d / "thin.png")
    Image.fromarray(photos["coffee"][:12, :12]).save(d / "tiny.png")
    add("tiny-detect", "detect", d / "tiny.png")

    # 10. messages (3)
    add("message-too-long", "embed", good, "-o", d / "o.png", "-m", "a much too long message for 64 bits")
    add("message-not-int", "embed", good, "-o", d / "o.png", "-m", "x12", "--kind", "int")
    add("message-missing", "embed", good, "-o", d / "o.png")

    # 11. latent codec, decoder and .rhl files (8)
    (d / "garbage.rhl").write_bytes(b"RHLATENT" + os.urandom(64))
    add("rhl-garbage", "latent", "decode", d / "garbage.rhl", "-o", d / "o.png")
    from robusthide.latent.container import _HEAD, MAGIC

    body = _HEAD.pack(MAGIC, 1, 0, 2**32 - 1, 2**32 - 1, 1000, 1000, b"\0" * 8, b"\0" * 8, 10, 0, 0)
    (d / "forged.rhl").write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    add("rhl-forged-size", "latent", "decode", d / "forged.rhl", "-o", d / "o.png")
    import torch
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(d / "codec-huge.safetensors"),
              metadata={"format": "robusthide-latent-codec", "arch": "hyperprior", "N": "1000000000", "M": "8"})
    add("codec-metadata-huge", "latent", "decode", d / "forged.rhl", "-o", d / "o.png",
        "--codec", d / "codec-huge.safetensors")
    save_file({"x": torch.zeros(2)}, str(d / "codec-tensors.safetensors"),
              metadata={"format": "robusthide-latent-codec", "arch": "hyperprior", "N": "8", "M": "8"})
    add("codec-wrong-tensors", "latent", "decode", d / "forged.rhl", "-o", d / "o.png",
        "--codec", d / "codec-tensors.safetensors")
    from robusthide.latent.stegnet import DECODER_FORMAT

    save_file({"x": torch.zeros(2)}, str(d / "decoder-huge.safetensors"),
              metadata={"format": DECODER_FORMAT, "data_depth": "1000000", "hidden": "8"})
    add("decoder-metadata-huge", "latent", "extract", d / "forged.rhl", "--decoder", d / "decoder-huge.safetensors")
    save_file({"x": torch.zeros(2)}, str(d / "decoder-tensors.safetensors"),
              metadata={"format": DECODER_FORMAT, "data_depth": "1", "hidden": "8"})
    add("decoder-wrong-tensors", "latent", "extract", d / "forged.rhl", "--decoder",
        d / "decoder-tensors.safetensors")
    add("decoder-spec-huge", "latent", "extract", d / "forged.rhl", "--decoder", "fnns-r:0:100000")
    (d / "codec.safetensors").write_bytes(b"garbage")
    add("codec-garbage", "latent", "decode", d / "forged.rhl", "-o", d / "o.png", "--codec", d / "codec.safetensors")
    return d, cases


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: kind, and for regular files size, mtime and SHA-256."""
    snap: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink() or not p.is_file():
                snap[str(p)] = (st.st_mode,)
            else:
                snap[str(p)] = (st.st_mode, st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return snap


@pytest.fixture(scope="module")
def cached_models():
    """Load each weights file once for the module (the CLI would load it per call)."""
    from robusthide.cli import cmd_watermark

    cache: dict = {}
    original = cmd_watermark.load_watermarker

    def wm(a):
        key = (str(a.model), a.schema)
        if key not in cache:
            cache[key] = original(a)
        return cache[key]

    cmd_watermark.load_watermarker = wm
    yield
    cmd_watermark.load_watermarker = original


def test_corpus_is_large_enough(corpus):
    _, cases = corpus
    assert len(cases) >= 100, len(cases)
    assert len({c for c, _ in cases}) == len(cases)


def test_every_bad_input_is_one_clean_line(corpus, cached_models, capsys):
    """All cases in one test (the corpus is built once): collect every failure, report them together."""
    d, cases = corpus
    problems = []
    for cid, argv in cases:
        before = _snapshot(d)
        try:
            rc = main(argv)
        except BaseException as e:  # a traceback would have reached the user
            problems.append(f"{cid}: raised {type(e).__name__}: {e}")
            continue
        out = capsys.readouterr()
        lines = out.err.splitlines()
        if rc != 2:
            problems.append(f"{cid}: exit {rc}, stderr {out.err!r}")
        elif len(lines) != 1 or not lines[0].startswith("robusthide: error: "):
            problems.append(f"{cid}: stderr is not one error line: {out.err!r}")
        elif "Traceback" in out.err:
            problems.append(f"{cid}: traceback")
        after = _snapshot(d)
        if after != before:
            changed = sorted(set(after) ^ set(before)) + [k for k in after if k in before and after[k] != before[k]]
            problems.append(f"{cid}: files changed: {changed[:4]}")
    assert not problems, "\n".join(problems)


def test_messages_say_why(corpus, cached_models, capsys):
    """A few messages checked for their content (the class of the problem, and the path)."""
    d, _ = corpus
    expect = {
        ("extract", str(d / "fifo.png")): "FIFO",
        ("extract", str(d / "bomb.png")): "MP limit",
        ("embed", str(d / "frames5.gif"), "-o", str(d / "x.png"), "-m", "H"): "5 frames",
        ("embed", str(d / "good.png"), "-o", str(d / "x.png"), "-m", "H", "--quality", "0"): "--quality",
        ("embed", str(d / "good.png"), "-o", str(d / "x.jpg"), "-m", "H", "--quality", "1"): "quality 1 is too low",
        ("extract", str(d / "clip.mp4"), "--search", "crop"): "images only",
        ("extract", str(d / "tiny.mp4")): "too small",
        ("embed", str(d / "float.tif"), "-o", str(d / "x.tif"), "-m", "H"): "expected 0..1 or 0..255",
        ("embed", str(d / "good.png"), "-o", str(d / "x.png"), "-m", "H", "--model",
         str(d / "weights" / "refine-steps-1e9.safetensors")): "refine.steps",
        # a message too long says which schema or model holds it: the default's next schema that does, ...
        ("embed", str(d / "good.png"), "-o", str(d / "x.png"), "-m", "987654"): "it fits with schema balanced (25",
        # ... only the 256-bit model at its second schema (103 bits), ...
        ("embed", str(d / "good.png"), "-o", str(d / "x.png"), "-m", "9" * 31):
            "it fits with model geo256 at schema balanced\n",
        # ... or none (60 characters)
        ("embed", str(d / "good.png"), "-o", str(d / "x.png"), "-m", "x" * 60): "no model here holds it",
    }
    for argv, needle in expect.items():
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert needle in err, (argv, err)


def test_full_disk_leaves_the_existing_output(tmp_path, photos, cached_models, capsys, monkeypatch):
    """ENOSPC while the output is written: one line naming the path; the old output and nothing else remain."""
    import errno

    import robusthide.io.safe as safe

    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(photos["astronaut"][:128, :128]).save(src)
    dst.write_bytes(b"previous output")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safe.os, "fsync", full)
    rc = main(["embed", str(src), "-o", str(dst), "-m", "H"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and str(dst) in err and "space" in err
    assert dst.read_bytes() == b"previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]


def test_permission_error_is_one_line(tmp_path, capsys, monkeypatch):
    """An OSError that escapes a command (here PermissionError) is printed as one line naming the path."""
    from robusthide.cli import cmd_watermark

    def denied(a):
        raise PermissionError(13, "Permission denied", str(tmp_path / "locked" / "x.png"))

    monkeypatch.setattr(cmd_watermark, "_capacity", denied)  # the parser is built per call: it takes this one
    rc = main(["capacity"])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"robusthide: error: {tmp_path / 'locked' / 'x.png'}: Permission denied\n"


def test_folder_mode_skips_its_own_output(tmp_path, photos, cached_models, capsys):
    """embed DIR -o DIR/marked --recursive, twice: the second run does not mark DIR/marked again."""
    src = tmp_path / "dir"
    src.mkdir()
    Image.fromarray(photos["coffee"][:128, :160]).save(src / "a.png")
    for _ in range(2):
        assert main(["embed", str(src), "-o", str(src / "marked"), "-m", "H", "--recursive", "--workers", "1"]) == 0
    capsys.readouterr()
    assert sorted(str(p.relative_to(src)) for p in src.rglob("*.png")) == ["a.png", "marked/a.png"]


def test_in_place_multiframe_keeps_every_page(tmp_path, capsys):
    p = tmp_path / "pages.tif"
    _multi(p, "TIFF")
    before = p.read_bytes()
    assert main(["embed", str(p), "--in-place", "-m", "H"]) == 2
    assert p.read_bytes() == before
    with Image.open(p) as im:
        assert im.n_frames == 5


def test_ctrl_c_stops_and_leaves_no_temporary(tmp_path):
    """SIGINT during a video embed: the process ends (exit 130) with its temporary file removed and no output;
    an existing output is left as it was."""
    import signal
    import subprocess
    import sys
    import time

    src, dst = tmp_path / "long.mp4", tmp_path / "out.mp4"
    _video(src, 320, 240, n=600)
    dst.write_bytes(b"previous")
    # SIGINT's default disposition in the child: a test run started in the background (nohup, `&` in a script)
    # inherits SIGINT ignored, and Python installs its KeyboardInterrupt handler only when it is not ignored
    proc = subprocess.Popen([sys.executable, "-m", "robusthide", "embed", str(src), "-o", str(dst), "-m", "7"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not list(tmp_path.glob(".out.mp4.*")):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)  # at once: the temporary output exists, the frame loop has begun
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4", "out.mp4"]
    assert dst.read_bytes() == b"previous"


def test_float_inputs_outside_unit_range(photos):
    from robusthide import RobustHideError
    from robusthide.watermark.watermarker import Watermarker

    wm = Watermarker.from_pretrained("default")
    img = photos["coffee"][:128, :128]
    with pytest.raises(RobustHideError, match=r"must lie in \[0, 1\], got .*\.\.255 \(divide"):
        wm.embed(img.astype(np.float64) * 255 / img.max(), 5)
    with pytest.raises(RobustHideError, match="empty image"):
        wm.extract(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(RobustHideError, match="too small"):
        wm.extract(np.zeros((15, 300, 3), np.uint8))
    with pytest.raises(RobustHideError, match="too small"):
        wm.extract(np.zeros((15, 300, 3), np.float32))


def test_embed_reports_saved_psnr(tmp_path, photos, cached_models, capsys):
    """The PSNR printed is that of the JPEG as saved (re-read), not of the image before encoding."""
    from robusthide.metrics import psnr

    src, dst = tmp_path / "in.png", tmp_path / "out.jpg"
    cover = photos["astronaut"][:256, :256]
    Image.fromarray(cover).save(src)
    assert main(["embed", str(src), "-o", str(dst), "-m", "5", "--quality", "70", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    saved = np.asarray(Image.open(dst).convert("RGB"))
    assert row["verified"] is True and row["psnr"] == pytest.approx(psnr(cover, saved), abs=0.01)


def test_force_writes_what_does_not_read_back_with_a_warning(tmp_path, photos, cached_models, capsys):
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(photos["astronaut"][100:116, 200:216]).save(src)
    assert main(["embed", str(src), "-o", str(dst), "-m", "5", "--refine", "0"]) == 2
    assert "too small" in capsys.readouterr().err and not dst.exists()
    assert main(["embed", str(src), "-o", str(dst), "-m", "5", "--refine", "0", "--force"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "does not read back" in err and dst.exists()


def test_video_crf_too_high_is_refused_unless_forced(tmp_path, photos, cached_models, capsys):
    """The encoded video is re-read: at CRF 51 the mark does not read back, so nothing is written (exit 2, one
    line naming the CRF); --force writes it with a warning and reports the PSNR of the encoded file."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_video_watermark import _make_video

    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    _make_video(src, photos, n=8, audio=False)
    assert main(["embed", str(src), "-o", str(dst), "-m", "7", "--crf", "51"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--crf 51 is too high" in err and not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    assert main(["embed", str(src), "-o", str(dst), "-m", "7", "--crf", "51", "--force", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["verified"] is False and dst.exists() and 10 < row["psnr"] < 99


def test_latent_file_over_the_size_cap_is_refused(tmp_path, monkeypatch, capsys):
    from robusthide.cli import cmd_latent
    from robusthide.cli.main import main

    monkeypatch.setattr(cmd_latent, "MAX_RHL_BYTES", 1024)
    big = tmp_path / "big.rhl"
    big.write_bytes(b"\0" * 2048)
    assert main(["latent", "decode", str(big), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "larger than 0 MiB, not a robusthide latent file" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.rhl"]
