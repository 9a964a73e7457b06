"""``robusthide embed|extract|detect``: files, folders, JSON, bad input (one-line error, exit 2, nothing written)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from robusthide.cli.main import main


@pytest.fixture()
def img_file(tmp_path, photos):
    p = tmp_path / "in.png"
    Image.fromarray(photos["astronaut"]).save(p)
    return p


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_embed_extract_detect(tmp_path, img_file, capsys):
    out = tmp_path / "out.png"
    rc, so, _ = run(capsys, "embed", img_file, "-o", out, "-m", "H")
    assert rc == 0 and "PSNR" in so and out.exists()
    rc, so, _ = run(capsys, "extract", out, "--json")
    row = json.loads(so)
    assert rc == 0 and row["detected"] and row["message"] == "H"
    rc, so, _ = run(capsys, "detect", out)
    assert rc == 0 and "watermark present" in so
    rc, so, _ = run(capsys, "detect", img_file)
    assert rc == 1 and "no watermark" in so


def test_embed_jpeg_output_keeps_icc_and_survives(tmp_path, photos, capsys):
    src = tmp_path / "icc.jpg"
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(photos["coffee"]).save(src, quality=95, icc_profile=icc)
    out = tmp_path / "m.jpg"
    rc, _, _ = run(capsys, "embed", src, "-o", out, "-m", "i", "--quality", "90")
    assert rc == 0
    with Image.open(out) as im:
        assert im.info.get("icc_profile") == icc
    rc, so, _ = run(capsys, "extract", out, "--json")
    assert json.loads(so)["message"] == "i"


def test_exif_orientation_is_applied(tmp_path, photos, capsys):
    src = tmp_path / "rot.jpg"
    im = Image.fromarray(photos["coffee"])  # 600 x 400
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 on display
    im.save(src, quality=95, exif=exif.tobytes())
    out = tmp_path / "rot_out.png"
    assert run(capsys, "embed", src, "-o", out, "-m", "r")[0] == 0
    with Image.open(out) as o:
        assert o.size == (400, 600)
        assert o.getexif().get(0x0112, 1) == 1


def test_never_overwrites_input(img_file, capsys):
    before = img_file.read_bytes()
    rc, _, err = run(capsys, "embed", img_file, "-o", img_file, "-m", "x")
    assert rc == 2 and "refusing to overwrite" in err and err.count("\n") == 1
    assert img_file.read_bytes() == before


@pytest.mark.parametrize("content,expect", [
    (b"", "not a readable image"),
    (b"this is not an image at all", "not a readable image"),
])
def test_bad_files_give_one_line_error(tmp_path, capsys, content, expect):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    out = tmp_path / "o.png"
    rc, _, err = run(capsys, "embed", bad, "-o", out, "-m", "x")
    assert rc == 2 and expect in err and err.count("\n") == 1
    assert not out.exists()


def test_truncated_image(tmp_path, img_file, capsys):
    data = img_file.read_bytes()
    t = tmp_path / "trunc.png"
    t.write_bytes(data[: len(data) // 2])
    rc, _, err = run(capsys, "extract", t)
    assert rc == 2 and "not a readable image" in err and "Traceback" not in err


def test_message_too_long(tmp_path, img_file, capsys):
    out = tmp_path / "o.png"
    rc, _, err = run(capsys, "embed", img_file, "-o", out, "-m", "x" * 40)
    assert rc == 2 and err.startswith("robusthide: error:") and not out.exists()


def test_corrupt_weights(tmp_path, img_file, capsys):
    w = tmp_path / "w.safetensors"
    w.write_bytes(b"garbage")
    rc, _, err = run(capsys, "extract", img_file, "--model", w)
    assert rc == 2 and "safetensors" in err


def test_folder_recursive_and_resumable(tmp_path, photos, capsys):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(photos["chelsea"]).save(src / "a.png")
    Image.fromarray(photos["coffee"]).save(src / "sub" / "b.png")
    dst = tmp_path / "dst"
    rc, so, _ = run(capsys, "embed", src, "-o", dst, "-m", "b", "--recursive", "--json")
    assert rc == 0 and len(so.strip().splitlines()) == 2
    assert (dst / "a.png").exists() and (dst / "sub" / "b.png").exists()
    rc, so, err = run(capsys, "embed", src, "-o", dst, "-m", "b", "--recursive")
    assert rc == 0 and "skipped 2" in err
    rc, so, _ = run(capsys, "extract", dst, "--recursive", "--json")
    rows = [json.loads(x) for x in so.strip().splitlines()]
    assert [r["message"] for r in rows] == ["b", "b"]


def test_grayscale_file_stays_grayscale(tmp_path, photos, capsys):
    src = tmp_path / "g.png"
    Image.fromarray(photos["astronaut"]).convert("L").save(src)
    out = tmp_path / "g_out.png"
    assert run(capsys, "embed", src, "-o", out, "-m", "g")[0] == 0
    with Image.open(out) as im:
        assert im.mode == "L"


def test_16bit_png_file(tmp_path, photos, capsys):
    import cv2

    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), (photos["astronaut"][..., ::-1].astype(np.uint16) * 257))
    out = tmp_path / "deep_out.png"
    assert run(capsys, "embed", src, "-o", out, "-m", "6")[0] == 0
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    rc, so, _ = run(capsys, "extract", out, "--json")
    assert json.loads(so)["message"] == 6  # digits are an integer (embed -m 6)


def test_demo_default_message_round_trips(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "demo.json").read_text())
    rows = {r["attack"]: r for r in doc}
    assert rows["identity"]["message"] == 1234 and rows["identity"]["detected"]
    assert rows["jpeg:q=75"]["message"] == 1234
    assert rows["crop:0.9|jpeg:q=80"]["message"] == 1234  # read with the crop search
    assert rows["pad:4x5|jpeg:q=80"]["message"] == 1234  # read inside the padding (the inset stage)
    assert rows["filter:vintage|jpeg:q=80"]["message"] == 1234  # everyday edits (robusthide/codecs/edits.py)
    assert rows["hue:90|text:0.1|jpeg:q=80"]["message"] == 1234


def test_models_lists_the_zoo_and_prints_cards(capsys):
    from robusthide.zoo import PRETRAINED, describe

    rc, so, _ = run(capsys, "models", "--json")
    rows = json.loads(so)
    assert rc == 0 and [r["name"] for r in rows] == list(PRETRAINED)
    d = describe("default")
    assert d["n_bits"] == 64 and d["size"] == 128 and d["strength"] == pytest.approx(0.97) and d["steps"] == 5000
    assert d["refine"] == {"steps": 10, "boost": 2, "codecs": ["h264:crf=28"]}
    assert 0.5 < d["megabytes"] < 10
    rc, so, _ = run(capsys, "models", "--card", "default")
    assert rc == 0 and so.startswith("# Model card: `default`")
    rc, _, err = run(capsys, "models", "--card", "nope")
    assert rc == 2 and err.strip() == f"robusthide: error: no model named 'nope' (known: {', '.join(PRETRAINED)})"


def test_schema_by_name_or_id(capsys):
    rc, so, _ = run(capsys, "capacity", "--schema", "large", "--json")
    by_name = json.loads(so)
    rc2, so2, _ = run(capsys, "capacity", "--schema", "2", "--json")
    assert rc == rc2 == 0 and by_name == json.loads(so2) and by_name["schema_name"] == "large"
    rc, _, err = run(capsys, "capacity", "--schema", "bogus")
    assert rc == 2 and "unknown schema 'bogus'" in err and err.count("\n") == 1


def test_contact_sheet_writes_png_and_residual_numbers(capsys, tmp_path, photos):
    """``robusthide contact-sheet`` draws the rows and writes the residual RMS / p99 / max of each crop."""
    data = tmp_path / "photos"
    data.mkdir()
    Image.fromarray(photos["coffee"]).save(data / "coffee.png")
    Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(data / "flat.png")
    out = tmp_path / "sheet.png"
    rc, so, _ = run(capsys, "contact-sheet", "--data", str(data), "--resize", "400", "--out", str(out))
    assert rc == 0 and Image.open(out).size[0] == 3 * 384 + 8
    doc = json.loads(out.with_suffix(".json").read_text())
    rows = {r["label"].split(" ")[0]: r for r in doc["rows"]}
    assert set(rows) == {"coffee.png", "flat.png"} and doc["model"] == "default"
    assert 0 < rows["coffee.png"]["rms"] <= rows["coffee.png"]["p99"] <= rows["coffee.png"]["max"]
    assert rows["flat.png"]["max"] <= 2  # the JND cap on mid-grey: at most 1.5 grey levels, rounded
    assert rows["flat.png"]["rms_texture"] is None and rows["flat.png"]["rms_flat"] == rows["flat.png"]["rms"]
    assert doc["mean"]["rms"] == pytest.approx((rows["coffee.png"]["rms"] + rows["flat.png"]["rms"]) / 2, abs=1e-3)
    assert "residual RMS" in so


def test_residual_stats_split_flat_and_texture():
    """residual_stats: RMS over the cover's flat pixels and over its textured ones, separately."""
    from robusthide.watermark.contact_sheet import residual_stats

    rng = np.random.default_rng(0)
    cover = np.full((40, 80, 3), 100, np.uint8)
    cover[:, 40:] = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    marked = cover.astype(int)
    marked[:, :30] += 1
    marked[:, 38:] = np.clip(marked[:, 38:] + 4, 0, 255)  # every textured pixel (a few clip at 255)
    r = residual_stats(cover, marked.astype(np.uint8))
    assert r["rms_flat"] == pytest.approx(np.sqrt(30 / 38), abs=1e-3)  # columns 0-37 are flat (5x5 window)
    assert 3.9 < r["rms_texture"] <= 4.0 and r["max"] == 4


def test_contact_sheet_refuses_a_bad_out_or_photo_in_one_line(capsys, tmp_path, photos):
    """A wrong --out suffix is refused before any photo is marked; a damaged photo is named, with no traceback."""
    data = tmp_path / "photos"
    data.mkdir()
    Image.fromarray(photos["coffee"]).save(data / "coffee.png")
    rc, _, err = run(capsys, "contact-sheet", "--data", str(data), "--out", str(tmp_path / "sheet.txt"))
    assert rc == 2 and "--out must end in .png, .jpg or .webp" in err and err.count("\n") == 1
    (data / "broken.png").write_bytes((data / "coffee.png").read_bytes()[:500])
    rc, _, err = run(capsys, "contact-sheet", "--data", str(data), "--out", str(tmp_path / "sheet.png"))
    assert rc == 2 and "broken.png" in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "sheet.png").exists()
