"""Property-based tests (hypothesis) of image file I/O, the atomic writer, the pixel limit and the payload codec."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageOps

from robusthide import RobustHideError
from robusthide.io.images import read_image_rgb, write_image
from robusthide.io.safe import atomic_output, write_bytes_atomic
from robusthide.payload import capacity, decode_bits, encode_message, list_schemas
from robusthide.watermark.files import encode_image, orient, read_image_file

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

side = st.integers(1, 24)


def images(dtype=np.uint8, channels=(None, 3)):
    """uint8/uint16 images H x W (gray) or H x W x C."""
    return st.tuples(side, side, st.sampled_from(channels)).flatmap(
        lambda t: arrays(dtype, (t[0], t[1]) if t[2] is None else (t[0], t[1], t[2])))


# -- image files -----------------------------------------------------------------------------------------

@SETTINGS
@given(img=images(channels=(3,)), ext=st.sampled_from([".png", ".bmp", ".tif"]))
def test_lossless_write_then_read_is_exact(tmp_path, img, ext):
    p = write_image(tmp_path / f"x{ext}", img)
    assert np.array_equal(read_image_rgb(p), img)
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".")] == []  # no temporary left


@SETTINGS
@given(img=images(channels=(None, 3, 4)), fmt=st.sampled_from(["PNG", "TIFF"]))
def test_encode_then_read_file_is_exact_8bit(img, fmt):
    back = read_image_file("x", data=encode_image(img, fmt)).array
    assert back.dtype == np.uint8 and np.array_equal(back, img)


@SETTINGS
@given(img=images(np.uint16, channels=(None, 3)), fmt=st.sampled_from(["PNG", "TIFF"]))
def test_encode_then_read_file_is_exact_16bit(img, fmt):
    back = read_image_file("x", data=encode_image(img, fmt)).array
    assert back.dtype == np.uint16 and np.array_equal(back, img)


@SETTINGS
@given(img=images(channels=(None, 3)), quality=st.integers(1, 100), fmt=st.sampled_from(["JPEG", "WEBP"]))
def test_lossy_keeps_shape_and_type(img, quality, fmt):
    back = read_image_file("x", data=encode_image(img, fmt, quality)).array
    want = img.shape if fmt == "JPEG" or img.ndim == 3 else img.shape + (3,)  # WebP has no grayscale
    assert back.dtype == np.uint8 and back.shape == want


@SETTINGS
@given(img=images(channels=(3,)), o=st.integers(1, 8))
def test_orientation_matches_pillow_and_tiff_outputs_stay_valid(img, o):
    """The 16-bit path's orientation equals Pillow's; a TIFF with orientation o reads back upright, and its
    re-encoded TIFF (EXIF carried over) opens with tifffile and Pillow at the upright size."""
    import tifffile

    im = Image.fromarray(img)
    ex = im.getexif()
    ex[0x0112] = o
    ex[0x010F] = "Maker"
    buf = io.BytesIO()
    im.save(buf, format="TIFF", exif=ex)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))))
    assert np.array_equal(orient(img, o), upright)
    f = read_image_file("x.tif", data=buf.getvalue())
    assert np.array_equal(f.array, upright)
    out = encode_image(f.array, "TIFF", exif=f.exif)
    assert tifffile.imread(io.BytesIO(out)).shape == upright.shape
    with Image.open(io.BytesIO(out)) as back:
        assert back.size == (upright.shape[1], upright.shape[0])
        exif = back.getexif()
        assert exif.get(0x0112, 1) == 1 and exif.get(0x010F) == "Maker"


def _png_claiming(w: int, h: int) -> bytes:
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 8)) + chunk(b"IEND", b""))


@SETTINGS
@given(w=st.integers(1, 200_000), h=st.integers(1, 200_000), limit=st.integers(1, 10**9))
def test_pixel_limit_is_decided_from_the_header(w, h, limit):
    """Above the limit: refused (whatever the data); at or below: the pixel data is decoded (8 zero bytes:
    a 1 x 1 image reads, larger ones fail as truncated, not for the limit). Pillow's own process-wide guard
    is left as it was."""
    assume(w * h > limit or w * h <= 4096)  # decode only small images
    before = Image.MAX_IMAGE_PIXELS
    try:
        f = read_image_file("x.png", max_pixels=limit, data=_png_claiming(w, h))
        refused = None
    except RobustHideError as e:
        refused = str(e)
    if w * h > limit:
        assert refused is not None and "MP limit" in refused
    elif refused is None:
        assert f.array.shape == (h, w, 3)
    else:
        assert "MP limit" not in refused
    assert Image.MAX_IMAGE_PIXELS == before


# -- the atomic writer -----------------------------------------------------------------------------------

@SETTINGS
@given(old=st.binary(max_size=64), new=st.binary(max_size=4096), fail=st.booleans())
def test_atomic_write_is_all_or_nothing(tmp_path, old, new, fail):
    p = tmp_path / "out.bin"
    p.write_bytes(old)
    if fail:
        with pytest.raises(ZeroDivisionError):
            with atomic_output(p) as tmp:
                tmp.write_bytes(new[: len(new) // 2])
                raise ZeroDivisionError
        assert p.read_bytes() == old
    else:
        write_bytes_atomic(p, new)
        assert p.read_bytes() == new
    assert [q.name for q in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_write_replaces_a_symlink_instead_of_following_it(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "out.png"
    link.symlink_to(target)
    write_bytes_atomic(link, b"new")
    assert target.read_text() == "keep me" and not link.is_symlink() and link.read_bytes() == b"new"


# -- the payload codec -----------------------------------------------------------------------------------

N_SCHEMA = [(n, s.id) for n in (48, 64, 128, 256) for s in list_schemas(n)]


@SETTINGS
@given(ns=st.sampled_from(N_SCHEMA), data=st.data())
def test_int_messages_round_trip(ns, data):
    n, sid = ns
    m = data.draw(st.integers(0, capacity(n, sid)["max_int"]))
    bits = encode_message(m, n, schema=sid)
    assert bits.shape == (n,) and set(np.unique(bits)) <= {0, 1}
    r = decode_bits(bits, n, schema=sid)
    assert r.message == m and r.kind == "int" and r.corrected_errors == 0


@SETTINGS
@given(ns=st.sampled_from(N_SCHEMA), data=st.data())
def test_bytes_and_text_messages_round_trip(ns, data):
    n, sid = ns
    cap = capacity(n, sid)
    b = data.draw(st.binary(max_size=cap["max_bytes"]))
    assert decode_bits(encode_message(b, n, schema=sid), n, schema=sid).message == b
    t = data.draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=cap["max_text_ascii_chars"]))
    assert decode_bits(encode_message(t, n, schema=sid), n, schema=sid).message == t


@SETTINGS
@given(n=st.sampled_from([64, 128, 256]), data=st.data())
def test_up_to_the_correctable_errors_still_detected(n, data):
    """The robust schema (auto-detected) corrects up to ``detect_max_errors`` flipped bits, or up to its BCH
    radius t when that is smaller, and still says detected, with the same message. (Past t, the 256-bit schema
    is decoded only by ordered-statistics decoding, which needs the bits' reliabilities: hard bits carry none.)"""
    cap = capacity(n, 0)
    m = data.draw(st.integers(0, cap["max_int"]))
    bits = encode_message(m, n, schema=0).copy()
    most = min(cap["detect_max_errors"], cap["bch_t"])
    flips = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=most))
    bits[flips] ^= 1
    r = decode_bits(bits, n)
    assert r.detected and r.message == m and r.corrected_errors == len(flips)


@SETTINGS
@given(n=st.sampled_from([64, 128]), extra=st.integers(1, 40))
def test_too_long_messages_are_refused_with_the_limit(n, extra):
    cap = capacity(n, 0)["max_text_ascii_chars"]
    with pytest.raises(RobustHideError, match="at most"):
        encode_message("x" * (cap + extra), n, schema=0)


# -- TIFF outputs for every input kind (through the CLI) -------------------------------------------------

def _tiff_input(kind: str, rgb: np.ndarray, path) -> tuple[int, int]:
    """Write ``rgb`` as a TIFF of ``kind``; return the upright (height, width)."""
    import tifffile

    h, w = rgb.shape[:2]
    gray = rgb.mean(axis=2)
    if kind == "rgb8":
        Image.fromarray(rgb).save(path)
    elif kind == "gray8":
        Image.fromarray(gray.astype(np.uint8)).save(path)
    elif kind == "rgba8":
        Image.fromarray(np.dstack([rgb, np.full((h, w), 200, np.uint8)])).save(path)
    elif kind == "cmyk":
        Image.fromarray(rgb).convert("CMYK").save(path)
    elif kind == "palette":
        Image.fromarray(rgb).convert("P").save(path)
    elif kind == "rgb16":
        tifffile.imwrite(path, rgb.astype(np.uint16) * 257)
    elif kind == "gray16":
        tifffile.imwrite(path, (gray * 257).astype(np.uint16))
    elif kind == "float32":
        Image.fromarray((gray / 255).astype(np.float32), "F").save(path)
    elif kind == "rgb8-orientation6":
        im = Image.fromarray(rgb)
        ex = im.getexif()
        ex[0x0112] = 6
        im.save(path, exif=ex)
        return w, h
    return h, w


@pytest.mark.parametrize("kind", ["rgb8", "gray8", "rgba8", "cmyk", "palette", "rgb16", "gray16", "float32",
                                  "rgb8-orientation6"])
def test_tiff_outputs_are_valid_for_every_input_kind(tmp_path, photos, capsys, kind):
    """embed X.tif -o Y.tif: Y opens with tifffile and Pillow at the upright size, without TIFF structural tags
    copied as EXIF, and the mark reads back."""
    import tifffile

    from robusthide.cli.main import main

    src, dst = tmp_path / "in.tif", tmp_path / "out.tif"
    h, w = _tiff_input(kind, photos["astronaut"][:192, :256], src)
    assert main(["embed", str(src), "-o", str(dst), "-m", "5", "--refine", "0"]) == 0, capsys.readouterr().err
    assert tifffile.imread(dst).shape[:2] == (h, w)
    with Image.open(dst) as im:
        im.load()
        assert im.size == (w, h) and im.getexif().get(0x0112, 1) == 1
    capsys.readouterr()
    assert main(["extract", str(dst), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["message"] == 5


@pytest.mark.parametrize("mode,ext", [("L", "webp"), ("L", "jpg"), ("LA", "webp"), ("RGBA", "webp"),
                                      ("RGB16", "jpg"), ("L16", "webp")])
def test_embed_checks_every_mode_and_format_pair(tmp_path, photos, capsys, mode, ext):
    """The read-back check handles covers whose saved format changes the layout (gray saved as RGB WebP,
    16-bit saved as 8-bit JPEG): exit 0, a finite PSNR, and the mark reads back."""
    import tifffile

    from robusthide.cli.main import main

    rgb = photos["astronaut"][:192, :256]
    gray = rgb.mean(axis=2).astype(np.uint8)
    src = tmp_path / ("in.tif" if mode.endswith("16") else "in.png")
    if mode == "L":
        Image.fromarray(gray).save(src)
    elif mode == "LA":
        Image.fromarray(np.dstack([gray, np.full_like(gray, 200)])).save(src)
    elif mode == "RGBA":
        Image.fromarray(np.dstack([rgb, np.full_like(gray, 200)])).save(src)
    elif mode == "RGB16":
        tifffile.imwrite(src, rgb.astype(np.uint16) * 257)
    else:
        tifffile.imwrite(src, gray.astype(np.uint16) * 257)
    dst = tmp_path / f"out.{ext}"
    assert main(["embed", str(src), "-o", str(dst), "-m", "5", "--refine", "0", "--json"]) == 0, \
        capsys.readouterr().err
    row = json.loads(capsys.readouterr().out)
    assert row["verified"] is True and 25 < row["psnr"] < 99
    assert main(["extract", str(dst), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["message"] == 5
