"""Issue 24: the codec alone on the command line (latent compress / decode) and StegExpose's primary sets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

pytest.importorskip("constriction")

from robusthide import RobustHideError  # noqa: E402
from robusthide.latent import steganalysis as sa  # noqa: E402


@pytest.fixture(scope="module")
def codec_file(train_tiny_codec):
    return train_tiny_codec("codec", steps=30, batch=4, quality="7")


def test_compress_decode_round_trip_equals_codec_reconstruction(to_tensor, codec_file, photos, tmp_path, capsys):
    """decode(compress(x)) is the codec's own reconstruction, bit for bit; bpp = file bits / pixels."""
    from PIL import Image

    from robusthide.cli.main import main
    from robusthide.latent.api import compress_bytes, decode_bytes, to_8bit
    from robusthide.latent.models import load_codec

    crop = np.ascontiguousarray(photos["astronaut"][100:180, 150:250])  # 80 x 100: padded to 128 x 128
    img, rhl, out = tmp_path / "cover.png", tmp_path / "c.rhl", tmp_path / "decoded.png"
    Image.fromarray(crop).save(img)
    assert main(["latent", "compress", str(img), "-o", str(rhl), "--codec", str(codec_file)]) == 0
    printed = capsys.readouterr().out
    n_bytes = rhl.stat().st_size
    assert f"{n_bytes} bytes, {8 * n_bytes / (80 * 100):.4f} bpp (80x100" in printed
    assert main(["latent", "decode", str(rhl), "-o", str(out), "--codec", str(codec_file)]) == 0
    decoded = np.asarray(Image.open(out))

    codec = load_codec(codec_file)
    x = to_tensor(crop)
    want = to_8bit(codec.synthesize(codec.compress(x).y_hat, (80, 100)))
    want_u8 = (want[0].permute(1, 2, 0) * 255).round().byte().numpy()
    assert decoded.shape == (80, 100, 3) and np.array_equal(decoded, want_u8)
    data, info = compress_bytes(codec, x)
    assert data == rhl.read_bytes() and info.file_bytes == n_bytes
    assert info.bpp == pytest.approx(8 * n_bytes / 8000) and info.payload_bpp < info.bpp
    assert torch.equal(decode_bytes(codec, data), want)


def test_compress_refuses_bad_input(to_tensor, codec_file, photos, tmp_path, capsys):
    from PIL import Image

    from robusthide.cli.main import main
    from robusthide.latent.api import compress_bytes, extract
    from robusthide.latent.models import load_codec
    from robusthide.latent.stegnet import random_decoder

    img = tmp_path / "cover.png"
    Image.fromarray(np.ascontiguousarray(photos["coffee"][:64, :64])).save(img)
    assert main(["latent", "compress", str(img), "-o", str(tmp_path / "x.png"), "--codec", str(codec_file)]) == 2
    assert "must be a .rhl file" in capsys.readouterr().err
    assert main(["latent", "compress", str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.rhl"),
                 "--codec", str(codec_file)]) == 2
    assert capsys.readouterr().err.startswith("robusthide: error:")
    assert main(["latent", "compress", str(img), "-o", str(tmp_path / "x.rhl"), "--codec", "q99"]) == 2
    err = capsys.readouterr().err
    assert "no shipped codec of quality 99" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.rhl").exists()
    codec = load_codec(codec_file)
    data, _ = compress_bytes(codec, to_tensor(photos["coffee"][:64, :64]))
    with pytest.raises(RobustHideError, match="carries no message"):
        extract(codec, random_decoder(0), data)


def _stdin(monkeypatch, data: bytes) -> None:
    """Make ``data`` the bytes of stdin (``sys.stdin.buffer``)."""
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_compress_and_decode_through_stdin_and_stdout(to_tensor, codec_file, photos, monkeypatch, capsysbinary):
    """``-`` reads the image (or .rhl) from stdin and writes the .rhl (or a PNG) to stdout, with the bytes of the
    file route; the human line goes to stderr."""
    import io

    from PIL import Image

    from robusthide.cli.main import main
    from robusthide.latent.api import compress_bytes, to_8bit
    from robusthide.latent.models import load_codec

    crop = np.ascontiguousarray(photos["coffee"][40:120, 60:160])
    png = io.BytesIO()
    Image.fromarray(crop).save(png, format="PNG")
    codec = load_codec(codec_file)
    want_rhl, _ = compress_bytes(codec, to_tensor(crop))

    _stdin(monkeypatch, png.getvalue())
    assert main(["latent", "compress", "-", "-o", "-", "--codec", str(codec_file)]) == 0
    out, err = capsysbinary.readouterr()
    assert out == want_rhl and err.decode().startswith(f"wrote .rhl to stdout: {len(want_rhl)} bytes")

    _stdin(monkeypatch, want_rhl)
    assert main(["latent", "decode", "-", "-o", "-", "--codec", str(codec_file)]) == 0
    out, err = capsysbinary.readouterr()
    assert out[:8] == b"\x89PNG\r\n\x1a\n" and b"wrote PNG to stdout (80x100)" in err
    want = to_8bit(codec.synthesize(codec.compress(to_tensor(crop)).y_hat, (80, 100)))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out))),
                          (want[0].permute(1, 2, 0) * 255).round().byte().numpy())

    # 16-bit gray on stdin reads as the file reader reads it: 8-bit gray in all three channels
    g16 = io.BytesIO()
    Image.fromarray(crop[..., 1].astype(np.uint16) * 257).save(g16, format="PNG")
    _stdin(monkeypatch, g16.getvalue())
    assert main(["latent", "compress", "-", "-o", "-", "--codec", str(codec_file)]) == 0
    gray = np.repeat(crop[..., 1:2], 3, axis=2)
    assert capsysbinary.readouterr().out == compress_bytes(codec, to_tensor(gray))[0]


@pytest.mark.parametrize("case, message", [
    ("empty", "-: no .rhl data on stdin"),
    ("text", "not a robusthide latent (.rhl) file: bad magic bytes"),
    ("truncated", "corrupt .rhl file: truncated header"),
    ("cut", "corrupt .rhl file: length does not match its header"),
    ("version", "unsupported .rhl version 9 (this robusthide reads version 1)"),
    ("flipped", "corrupt .rhl file: checksum mismatch"),
])
def test_decode_refuses_bad_files_in_one_line(case, message, to_tensor, codec_file, photos, monkeypatch,
                                              capsysbinary):
    from robusthide.cli.main import main
    from robusthide.latent.api import compress_bytes
    from robusthide.latent.models import load_codec

    good, _ = compress_bytes(load_codec(codec_file), to_tensor(photos["astronaut"][:64, :64]))
    data = {"empty": b"", "text": b"hello, world\n", "truncated": good[:40], "cut": good[:-3],
            "version": good[:8] + b"\x09" + good[9:],
            "flipped": good[:-10] + bytes([good[-10] ^ 1]) + good[-9:]}[case]
    _stdin(monkeypatch, data)
    assert main(["latent", "decode", "-", "-o", "-", "--codec", str(codec_file)]) == 2
    out, err = capsysbinary.readouterr()
    assert out == b"" and err.decode() == f"robusthide: error: {message}\n"


def test_compress_refuses_bad_stdin_and_unknown_codecs(codec_file, photos, tmp_path, monkeypatch, capsysbinary):
    from PIL import Image

    from robusthide.cli.main import main

    _stdin(monkeypatch, b"")
    assert main(["latent", "compress", "-", "-o", "-", "--codec", str(codec_file)]) == 2
    assert capsysbinary.readouterr() == (b"", b"robusthide: error: -: no image on stdin\n")
    _stdin(monkeypatch, b"not an image at all")
    assert main(["latent", "compress", "-", "-o", "-", "--codec", str(codec_file)]) == 2
    out, err = capsysbinary.readouterr()
    assert out == b"" and err.decode().startswith("robusthide: error: -: not a readable image")
    img = tmp_path / "c.png"
    Image.fromarray(np.ascontiguousarray(photos["chelsea"][:64, :64])).save(img)
    for codec, message in (("nosuch.safetensors", "codec weights not found: nosuch.safetensors"),
                           ("q99", "no shipped codec of quality 99")):
        assert main(["latent", "compress", str(img), "-o", "-", "--codec", codec]) == 2
        out, err = capsysbinary.readouterr()
        assert out == b"" and err.decode().startswith(f"robusthide: error: {message}")
        assert len(err.decode().splitlines()) == 1


def test_compress_with_shipped_quality(photos, tmp_path, capsys):
    """``--codec 6`` picks the shipped quality-6 codec; the file decodes with the default codec."""
    from PIL import Image

    from robusthide.cli.main import main
    from robusthide.latent.api import resolve_codec

    shipped = resolve_codec(None)
    q = shipped.meta.get("quality")
    img, rhl, out = tmp_path / "cover.png", tmp_path / "c.rhl", tmp_path / "d.png"
    Image.fromarray(np.ascontiguousarray(photos["chelsea"][:64, :128])).save(img)
    assert main(["latent", "compress", str(img), "-o", str(rhl), "--codec", f"q{q}"]) == 0
    assert "PSNR" in capsys.readouterr().out
    assert main(["latent", "decode", str(rhl), "-o", str(out)]) == 0
    assert np.asarray(Image.open(out)).shape == (64, 128, 3)


def test_decode_finds_the_shipped_codec_that_wrote_the_file(codec_file, photos, tmp_path, capsys):
    """Without --codec, decode picks the shipped codec whose id is in the file's header; a file of a codec
    that is not shipped is refused in one line, naming its id."""
    from PIL import Image

    from robusthide.cli.main import main
    from robusthide.latent.api import codec_for_file, shipped_codecs
    from robusthide.latent.models import load_codec

    img = tmp_path / "cover.png"
    Image.fromarray(np.ascontiguousarray(photos["chelsea"][:64, :64])).save(img)
    for name, model in shipped_codecs().items():
        rhl = tmp_path / f"{name}.rhl"
        assert main(["latent", "compress", str(img), "-o", str(rhl), "--codec", name]) == 0
        assert codec_for_file(rhl.read_bytes()).model_id() == model.model_id()
        assert main(["latent", "decode", str(rhl), "-o", str(tmp_path / f"{name}.png")]) == 0
    capsys.readouterr()
    rhl = tmp_path / "own.rhl"
    assert main(["latent", "compress", str(img), "-o", str(rhl), "--codec", str(codec_file)]) == 0
    capsys.readouterr()
    assert main(["latent", "decode", str(rhl), "-o", str(tmp_path / "own.png")]) == 2
    want = load_codec(codec_file).model_id()
    assert capsys.readouterr().err == (f"robusthide: error: this .rhl file was made with codec {want}, which is not"
                                       " a shipped one: pass its weights with --codec\n")
    assert not (tmp_path / "own.png").exists()


def test_primary_sets_estimates_the_embedded_fraction(photos):
    """Primary sets (StegExpose, Dumitrescu-Wu-Memon): ~1 on full LSB replacement, ~0.5 at half, ~0 clean."""
    for name in ("astronaut", "coffee"):
        clean = photos[name]
        full = sa.primary_sets(sa.lsb_embed(clean, rate=1.0, seed=3))
        half = sa.primary_sets(sa.lsb_embed(clean, rate=0.5, seed=3))
        zero = sa.primary_sets(clean)
        assert full == pytest.approx(1.0, abs=0.1), (name, full)
        assert half == pytest.approx(0.5, abs=0.06), (name, half)
        assert zero < 0.06, (name, zero)
        r = sa.analyse(sa.lsb_embed(clean, rate=1.0, seed=3))
        assert r["fused"] == pytest.approx(np.mean([r[k] for k in sa.FUSED]))
        assert sa.flags(r)["primary_sets"] and not sa.flags(sa.analyse(clean))["primary_sets"]
    # a flat image: no pair in W or Z-free sets can be formed; the estimate stays defined
    assert sa.primary_sets(np.full((16, 16, 3), 128, np.uint8)) == 0.0


def test_primary_set_counts_follow_the_paper(photos):
    """The sets of Dumitrescu, Wu & Memon (2002) on hand-made pairs, and the figures of docs/latent.md."""
    u = np.array([2, 3, 4, 5, 6, 7, 8, 1])
    v = np.array([3, 2, 6, 7, 4, 5, 8, 4])
    # (2,3) (3,2): Y and W; (4,6) (7,5) (1,4): X; (5,7) (6,4): Y, not W, so V; (8,8): Z
    c = sa.primary_set_counts(u, v)
    assert c == {"P": 8, "X": 3, "Y": 4, "Z": 1, "W": 2, "V": 2}
    # the lower root of (W + Z)/2 p^2 + (2X - P) p + Y - X = 0: 1.5 p^2 - 2 p + 1 has no real root: the vertex
    assert sa.primary_sets_estimate(c) == pytest.approx(2 / 3)
    assert sa.primary_sets_estimate({"P": 10, "X": 4, "Y": 4, "Z": 2, "W": 0, "V": 4}) == 0.0  # X = Y: clean
    clean = photos["astronaut"]
    c = sa.primary_set_counts(clean[:, 0::2, 0], clean[:, 1::2, 0])
    assert c["X"] + c["Y"] + c["Z"] == c["P"] == 512 * 256 and c["W"] + c["V"] == c["Y"]
    est = [sa.primary_sets(sa.lsb_embed(clean, rate=r, seed=3) if r else clean) for r in (0, 0.5, 1.0)]
    assert np.round(est, 3).tolist() == [0.032, 0.516, 0.925]


def test_rd_interpolation_and_bd_rate():
    """One-point comparisons on a known curve, and BD-rate of a set that needs exactly half the bits."""
    from robusthide.latent.rd import bd_rate, compare

    curve = [{"bpp": b, "psnr": 30 + 10 * np.log2(b)} for b in (0.25, 0.5, 1.0, 2.0, 4.0)]
    c = compare({"bpp": 1.0, "psnr": 32.0}, curve)
    assert c["psnr_at_bpp"] == pytest.approx(30.0) and c["psnr_gain"] == pytest.approx(2.0)
    assert c["bpp_at_psnr"] == pytest.approx(2 ** 0.2, rel=1e-6) and c["rate_diff_pct"] < 0
    assert compare({"bpp": 9.0, "psnr": 60.0}, curve)["psnr_at_bpp"] is None
    half = [{"bpp": d["bpp"] / 2, "psnr": d["psnr"]} for d in curve[1:4]]
    assert bd_rate(half, curve) == pytest.approx(-50.0, abs=0.5)
    assert bd_rate(half[:1], curve) is None
    assert bd_rate([{"bpp": 0.4, "psnr": 29.0}, {"bpp": 1.2, "psnr": 26.5}], curve) is None  # not a curve


def test_rd_command_writes_table_and_plot(codec_file, photos, tmp_path, capsys):
    import json

    from PIL import Image

    from robusthide.cli.main import main
    from robusthide.training.data import split_of

    data = tmp_path / "photos"
    data.mkdir()
    names = [f"p{i}.png" for i in range(200) if split_of(f"p{i}.png") == "val"][:2]
    for name, key in zip(names, ("astronaut", "coffee")):
        Image.fromarray(np.ascontiguousarray(photos[key][:160, :160])).save(data / name)
    out = tmp_path / "rd"
    argv = ["latent", "rd", "--out", str(out), "--codec", f"tiny={codec_file}", "--data", str(data), "--n", "2",
            "--size", "64", "--max-side", "160"]
    assert main(argv) == 0
    r = json.loads(out.with_suffix(".json").read_text())
    p = r["codecs"][0]
    assert p["codec"] == "tiny" and p["bpp"] > p["payload_bpp"] > 0 and len(r["jpeg"]) == 19
    assert out.with_suffix(".png").stat().st_size > 1000 and "| tiny | hyperprior, 16 / 192 |" in out.with_suffix(
        ".md").read_text()
    assert main(["latent", "rd", "--out", str(out), "--data", str(data)]) == 2
    assert "at least one codec" in capsys.readouterr().err


def test_edit_latent_snapshots_are_the_shorter_runs(to_tensor, codec_file, photos):
    """The y kept after k iterations is the y of a run of k iterations; 0 is the unedited latent."""
    from robusthide.latent.editing import EditConfig, edit_latent
    from robusthide.latent.models import load_codec, pad
    from robusthide.latent.stegnet import random_decoder

    codec, dec = load_codec(codec_file), random_decoder(0)
    x = to_tensor(photos["coffee"][:64, :64])
    t = (torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    full = edit_latent(codec, dec, x, t, EditConfig(iters=4, lr=1e-2), keep=(0, 2, 4))
    assert sorted(full.snapshots) == [0, 2, 4] and torch.equal(full.snapshots[4], full.y)
    assert torch.equal(full.snapshots[2], edit_latent(codec, dec, x, t, EditConfig(iters=2, lr=1e-2)).y)
    with torch.no_grad():
        assert torch.equal(full.snapshots[0], codec.g_a(pad(x)))
    with pytest.raises(ValueError, match="within 0..4"):
        edit_latent(codec, dec, x, t, EditConfig(iters=4), keep=(5,))


def test_bench_reports_accuracy_against_iterations(codec_file, photos, tmp_path, capsys):
    """``latent bench --curve``: hyperbase read at several iteration counts of one editing run; the last point
    is the hyperbase row and the first (0 iterations) the codec alone."""
    import json

    from PIL import Image

    from robusthide.cli.main import main
    from robusthide.training.data import split_of

    data = tmp_path / "photos"
    data.mkdir()
    name = next(f"p{i}.png" for i in range(200) if split_of(f"p{i}.png") == "val")
    Image.fromarray(np.ascontiguousarray(photos["astronaut"][:160, :160])).save(data / name)
    args = ["latent", "bench", "--out", str(tmp_path / "b"), "--codec", f"7={codec_file}", "--decoder", "fnns-r:0",
            "--data", str(data), "--n", "1", "--size", "64", "--fnns-steps", "1", "--max-side", "160",
            "--iters", "4", "--lr", "1e-2"]
    assert main([*args, "--curve", "5"]) == 2
    assert "--curve: iteration counts must be within 0..4 (--iters), got [5]" in capsys.readouterr().err
    assert main([*args, "--curve", "two"]) == 2
    assert "--curve takes iteration counts separated by commas" in capsys.readouterr().err
    assert main([*args, "--curve", "4,0,2"]) == 0
    r = json.loads((tmp_path / "b.json").read_text())
    pts = r["accuracy_vs_iters"]
    rows = {row["method"]: row for row in r["rows"]}
    assert [(p["codec"], p["iters"]) for p in pts] == [("7", 0), ("7", 2), ("7", 4)]
    for p, row in ((pts[0], rows["hyper_7 (no message)"]), (pts[-1], rows["hyperbase_7"])):
        assert (p["accuracy"], p["bpp"]) == (row["accuracy"], row["bpp"])
        assert p["psnr"] == pytest.approx(row["psnr"])
    assert "| 7 | 2 |" in (tmp_path / "b.md").read_text()


@pytest.mark.parametrize("mode", ["I;16", "LA", "RGBA", "L"])
def test_stdin_image_converts_as_the_file_reader(mode, photos, tmp_path):
    """``ImageFile.rgb8`` (stdin's path) gives the pixels ``read_image_rgb`` gives for the same file."""
    from PIL import Image

    from robusthide.io.images import read_image_rgb
    from robusthide.watermark.files import read_image_file

    rgb = np.ascontiguousarray(photos["chelsea"][:40, :48])
    if mode == "I;16":
        im = Image.fromarray((rgb[..., 1].astype(np.uint16) * 257 + 100).astype(np.uint16))
    else:
        im = Image.fromarray(rgb).convert(mode)
    path = tmp_path / "x.png"
    im.save(path)
    got = read_image_file(path, data=path.read_bytes()).rgb8()
    want = read_image_rgb(path)
    assert got.dtype == np.uint8 and got.shape == (40, 48, 3) and got.flags.writeable
    assert np.array_equal(got, want)


def test_lattice_descent_lowers_the_exact_loss_and_codes_exactly(to_tensor, codec_file, photos):
    """``EditConfig.lattice``: after the iterations, greedy rounds on the integer lattice. The result is a
    lattice point (it codes to itself), its exact eq. 1 loss (real rounding) is at most that of round(y), and
    it reads at least as many bits; the snapshot at the last count is the same point; bad settings fail."""
    from robusthide.latent.editing import EditConfig, Eq1, codec_lambda1, edit_latent, lattice_descent
    from robusthide.latent.elic import ElicLite
    from robusthide.latent.iters import parse_series
    from robusthide.latent.models import load_codec
    from robusthide.latent.stegnet import random_decoder

    torch.set_num_threads(1)
    codec, dec = load_codec(codec_file), random_decoder(0)
    x = to_tensor(photos["coffee"][:64, :64])
    t = (torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    cfg = EditConfig(iters=6, lr=1e-1, lambda5=0.05)
    plain = edit_latent(codec, dec, x, t, cfg).y
    lat = edit_latent(codec, dec, x, t, replace(cfg, lattice=8), keep=(6,))
    assert torch.equal(lat.y, torch.round(lat.y)) and torch.equal(lat.snapshots[6], lat.y)
    assert torch.equal(codec.compress_latent(lat.y).y_hat, lat.y)
    objective = Eq1(codec, dec, x, t, cfg, codec_lambda1(codec))
    with torch.no_grad():
        before, _, logits0 = objective(torch.round(plain), "round")
        after, _, logits1 = objective(lat.y, "round")
    assert float(after) < float(before)
    assert ((logits1 > 0).float() == t).float().mean() >= ((logits0 > 0).float() == t).float().mean()
    assert torch.equal(lattice_descent(objective, plain, 0), torch.round(plain))
    with pytest.raises(RobustHideError, match="lattice must be a number of rounds >= 0"):
        edit_latent(codec, dec, x, t, replace(cfg, lattice=-1))
    with pytest.raises(RobustHideError, match="on ElicLite"):
        edit_latent(ElicLite(16, 160), dec, x, t, replace(cfg, lattice=2))
    assert parse_series("l:lattice=30", EditConfig())[1].lattice == 30
    with pytest.raises(RobustHideError, match="lattice takes a number of rounds"):
        parse_series("l:lattice=1.5", EditConfig())
