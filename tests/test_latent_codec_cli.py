"""Issue 24: the codec alone on the command line (latent compress / decode) and StegExpose's primary sets."""

from __future__ import annotations

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


def test_primary_sets_estimates_the_embedded_fraction(photos):
    """Primary sets (StegExpose, Dumitrescu-Wu-Wang): ~1 on full LSB replacement, ~0.5 at half, ~0 clean."""
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
