"""``robusthide codecs``, ``robusthide attack``, ``robusthide bench codecs`` and robusthide.io.images."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from PIL import Image
from skimage import data

from robusthide import RobustHideError
from robusthide.cli.main import main
from robusthide.codecs import get_codec, list_codecs
from robusthide.codecs import image as image_codecs
from robusthide.io import images as io_images
from robusthide.io.images import read_image_rgb, write_image


@pytest.fixture
def photo(tmp_path):
    img = np.ascontiguousarray(data.astronaut()[40:136, 160:256])  # 96 x 96
    p = tmp_path / "photo.png"
    Image.fromarray(img).save(p)
    return p, img


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * math.log10(255 ** 2 / mse)


# -- robusthide codecs ---------------------------------------------------------------------------------------

def test_codecs_lists_every_codec(capsys):
    rc, out, _ = run(capsys, "codecs")
    assert rc == 0
    for name in list_codecs():
        assert any(line.startswith(name + " ") for line in out.splitlines()), name
    assert "Pillow" in out and "PyAV" in out


def test_codecs_json_and_unavailable_reason(capsys, monkeypatch):
    monkeypatch.setattr(image_codecs.AVIF, "available", classmethod(lambda cls: (False, "no libavif here")))
    rc, out, _ = run(capsys, "codecs", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rc == 0 and set(rows) == set(list_codecs())
    assert rows["avif"]["available"] is False and rows["avif"]["reason"] == "no libavif here"
    assert rows["jpeg"]["available"] is True and "Pillow" in rows["jpeg"]["library"]
    assert rows["h264"]["kind"] == "video" and rows["crop"]["kind"] == "distortion"
    rc, out, _ = run(capsys, "codecs")
    assert any(line.startswith("avif") and "MISSING" in line and "no libavif here" in line
               for line in out.splitlines())


# -- robusthide attack ---------------------------------------------------------------------------------------

def test_attack_prints_size_bpp_psnr_and_writes_decoded(capsys, photo, tmp_path):
    src, img = photo
    dst = tmp_path / "out" / "dec.png"
    before = src.read_bytes()
    rc, out, err = run(capsys, "attack", str(src), "-o", str(dst), "--codec", "jpeg:q=50")
    assert rc == 0, err
    ref = get_codec("jpeg:q=50")(img)
    n = ref.nbytes[0]
    assert f"{n} bytes" in out and f"{8 * n / (96 * 96):.4f} bpp" in out
    assert f"PSNR {_psnr(img, ref.images):.2f} dB" in out
    assert np.array_equal(np.asarray(Image.open(dst)), ref.images)
    assert src.read_bytes() == before
    assert not [p for p in dst.parent.iterdir() if p.name.endswith(".tmp")]


def test_attack_json(capsys, photo, tmp_path):
    src, img = photo
    rc, out, _ = run(capsys, "attack", str(src), "-o", str(tmp_path / "d.bmp"), "--codec", "webp:q=40",
                     "--json")
    rec = json.loads(out)
    assert rc == 0 and rec["nbytes"] == get_codec("webp:q=40")(img).nbytes[0]
    assert rec["width"] == 96 and rec["bpp"] == pytest.approx(8 * rec["nbytes"] / 96 ** 2)
    assert Image.open(tmp_path / "d.bmp").format == "BMP"
    rc, out, _ = run(capsys, "attack", str(src), "-o", str(tmp_path / "p.png"), "--codec", "png", "--json")
    assert json.loads(out)["psnr"] is None  # lossless: infinite PSNR


def test_attack_into_existing_folder(capsys, photo, tmp_path):
    src, _ = photo
    outdir = tmp_path / "o"
    outdir.mkdir()
    rc, _, _ = run(capsys, "attack", str(src), "-o", str(outdir), "--codec", "resize:0.5|jpeg:q=70")
    assert rc == 0 and (outdir / "photo.png").exists()


@pytest.mark.parametrize("how", ["same", "dotdot", "folder", "symlink"])
def test_attack_never_overwrites_input(capsys, photo, tmp_path, how):
    src, _ = photo
    before = src.read_bytes()
    target = {"same": str(src), "dotdot": str(tmp_path / "x" / ".." / "photo.png"), "folder": str(tmp_path),
              "symlink": str(tmp_path / "link.png")}[how]
    (tmp_path / "x").mkdir(exist_ok=True)
    if how == "symlink":
        os.symlink(src, tmp_path / "link.png")
    rc, _, err = run(capsys, "attack", str(src), "-o", target, "--codec", "jpeg:q=10")
    assert rc == 2 and "refusing to overwrite" in err and err.count("\n") == 1
    assert src.read_bytes() == before


@pytest.mark.parametrize("kind", ["truncated-png", "truncated-jpeg", "text", "empty", "missing"])
def test_attack_bad_input_is_one_line_exit_2(capsys, tmp_path, kind):
    img = data.astronaut()[:64, :64]
    bad = tmp_path / ("bad.jpg" if "jpeg" in kind else "bad.png")
    if kind.startswith("truncated"):
        Image.fromarray(img).save(bad, format="JPEG" if "jpeg" in kind else "PNG")
        raw = bad.read_bytes()
        bad.write_bytes(raw[: len(raw) // 2])
    elif kind == "text":
        bad.write_text("not an image")
    elif kind == "empty":
        bad.write_bytes(b"")
    rc, out, err = run(capsys, "attack", str(bad), "-o", str(tmp_path / "o.png"), "--codec", "jpeg:q=50")
    assert rc == 2 and out == ""
    assert err.startswith("robusthide: error: ") and err.count("\n") == 1 and "Traceback" not in err
    if kind.startswith("truncated"):
        assert "truncated" in err
    assert not (tmp_path / "o.png").exists()


def test_attack_refuses_lossy_output_and_bad_spec(capsys, photo, tmp_path):
    src, _ = photo
    rc, _, err = run(capsys, "attack", str(src), "-o", str(tmp_path / "o.jpg"), "--codec", "jpeg:q=50")
    assert rc == 2 and "lossless" in err and not (tmp_path / "o.jpg").exists()
    rc, _, err = run(capsys, "attack", str(src), "-o", str(tmp_path / "o.png"), "--codec", "jpeg:q=500")
    assert rc == 2 and "'jpeg:q=500'" in err and err.count("\n") == 1
    rc, _, err = run(capsys, "attack", str(tmp_path), "-o", str(tmp_path / "o.png"), "--codec", "jpeg")
    assert rc == 2 and "--recursive" in err


def test_attack_grayscale_and_rgba_are_converted(capsys, tmp_path):
    gray = tmp_path / "g.png"
    Image.fromarray(data.camera()[:64, :64]).save(gray)
    rc, _, err = run(capsys, "attack", str(gray), "-o", str(tmp_path / "g2.png"), "--codec", "jpeg:q=50")
    assert rc == 0 and "is L; converted to 8-bit RGB" in err
    assert np.asarray(Image.open(tmp_path / "g2.png")).shape == (64, 64, 3)
    rgba = tmp_path / "a.png"
    a = np.dstack([data.astronaut()[:64, :64], np.full((64, 64), 128, np.uint8)])
    Image.fromarray(a).save(rgba)
    rc, _, err = run(capsys, "attack", str(rgba), "-o", str(tmp_path / "a2.png"), "--codec", "png")
    assert rc == 0 and "is RGBA" in err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a2.png")), a[..., :3])


def test_attack_recursive_mirrors_names(capsys, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(data.astronaut()[:64, :64]).save(src / "a.png")
    Image.fromarray(data.coffee()[:64, :80]).save(src / "sub" / "b.jpg", quality=95)
    Image.fromarray(data.chelsea()[:48, :48]).save(src / "sub" / "b.png")  # same stem as b.jpg
    (src / "notes.txt").write_text("skip me")
    out = tmp_path / "out"
    rc, stdout, _ = run(capsys, "attack", str(src), "-o", str(out), "--codec", "webp:q=60", "--recursive",
                        "--json")
    recs = json.loads(stdout)
    assert rc == 0 and len(recs) == 3
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "sub/b.jpg.png", "sub/b.png.png"]
    assert np.asarray(Image.open(out / "sub" / "b.jpg.png")).shape == (64, 80, 3)
    # a broken file is reported, the others still done, exit 2
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    rc, stdout, err = run(capsys, "attack", str(src), "-o", str(tmp_path / "out2"), "--codec", "jpeg",
                          "--recursive")
    assert rc == 2 and "broken.png" in err and "3 image(s)" in stdout and "1 failed" in stdout
    rc, _, err = run(capsys, "attack", str(src), "-o", str(src), "--codec", "jpeg", "--recursive")
    assert rc == 2 and "input folder" in err


# -- robusthide.io.images ------------------------------------------------------------------------------------

def test_read_image_applies_exif_orientation(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :10] = 255  # white band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    p = tmp_path / "r.jpg"
    Image.fromarray(img).save(p, exif=exif, quality=95)
    out = read_image_rgb(p)
    assert out.shape == (40, 20, 3)
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # the band is now at the top


def test_read_image_modes_and_guards(tmp_path, monkeypatch):
    p16 = tmp_path / "d.png"
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(p16)
    arr, mode = read_image_rgb(p16, return_mode=True)
    assert mode.startswith("I") and arr.dtype == np.uint8 and arr.shape == (8, 8, 3) and arr.max() == 255
    with pytest.raises(RobustHideError, match="no such file"):
        read_image_rgb(tmp_path / "nope.png")
    with pytest.raises(RobustHideError, match="is a folder"):
        read_image_rgb(tmp_path)
    monkeypatch.setattr(io_images, "MAX_PIXELS", 50)
    with pytest.raises(RobustHideError, match="above the 0 MP limit|MP limit"):
        read_image_rgb(p16)


def test_write_image_atomic_and_guarded(tmp_path):
    img = data.astronaut()[:16, :16]
    p = write_image(tmp_path / "deep" / "x.png", img)
    assert np.array_equal(np.asarray(Image.open(p)), img)
    write_image(p, img[::-1].copy())  # replacing another file is fine
    assert np.array_equal(np.asarray(Image.open(p)), img[::-1])
    with pytest.raises(RobustHideError, match="refusing to overwrite"):
        write_image(p, img, overwrite_guard_src=tmp_path / "deep" / "." / "x.png")
    with pytest.raises(RobustHideError, match="extension"):
        write_image(tmp_path / "x.unknownext", img)
    assert [q.name for q in (tmp_path / "deep").iterdir()] == ["x.png"]


# -- robusthide bench codecs ---------------------------------------------------------------------------------

def test_bench_codecs_writes_json_and_md(capsys, tmp_path):
    out = tmp_path / "bench"
    rc, stdout, _ = run(capsys, "bench", "codecs", "--out", str(out), "--sizes", "16,24", "--batch", "2",
                        "--repeats", "1", "--codecs", "jpeg:q=50", "resize:0.5|png", "--quiet",
                        "--gil-seconds", "0.05")
    assert rc == 0 and "wrote" in stdout
    res = json.loads((tmp_path / "bench.json").read_text())
    assert {(r["spec"], r["size"]) for r in res["rows"]} == {(s, z) for s in ("jpeg:q=50", "resize:0.5|png")
                                                            for z in (16, 24)}
    assert all(r["ms_per_image"] > 0 for r in res["rows"])
    md = (tmp_path / "bench.md").read_text()
    assert res["command"] in md and "usable" in md and "pillow" in md.lower()
    assert "`resize:0.5\\|png`" in md
    rc, _, err = run(capsys, "bench", "codecs", "--out", str(out), "--codecs", "nosuch")
    assert rc == 2 and "unknown codec" in err


# -- robusthide bench train ----------------------------------------------------------------------------------

def test_bench_train_writes_rows_per_arch_and_autocast(tmp_path):
    from robusthide.bench.train import run as bench_train
    from robusthide.training.hardware import cpu_bf16_flags

    res = bench_train(str(tmp_path / "bt"), ["lean", "nosuch"], size=32, batch=2)
    lean = [r for r in res["rows"] if r["arch"] == "lean"]
    assert [r["amp"] for r in lean] == [False, True] and all(r["img_per_s"] > 0 for r in lean)
    assert all("error" in r for r in res["rows"] if r["arch"] == "nosuch")
    assert res["cpu_bf16"] == cpu_bf16_flags()
    md = (tmp_path / "bt.md").read_text()
    assert res["command"] in md and "CPU bf16 instructions" in md
    assert json.loads((tmp_path / "bt.json").read_text())["rows"] == res["rows"]
