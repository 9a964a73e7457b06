"""Issue 24 item 3: ``latent iters``, hyperbase's accuracy against editing iterations (coded and float y)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("constriction")

from robusthide import RobustHideError  # noqa: E402
from robusthide.latent.editing import EditConfig  # noqa: E402


def test_parse_series_changes_only_the_named_fields():
    from robusthide.latent.iters import parse_series

    base = EditConfig(lr=1e-3)
    assert parse_series("paper", base) == ("paper", base)
    label, cfg = parse_series("fast:lr=0.1,rounding=ste,lambda5=0.5,clamp_grad=false", base)
    assert (label, cfg.lr, cfg.rounding, cfg.lambda5, cfg.lambda2) == ("fast", 0.1, "ste", 0.5, 16.0)
    assert cfg.clamp_grad is False
    for bad, msg in (("x:clamp_grad=maybe", "clamp_grad takes true or false"),
                     ("x:lr=fast", "lr takes a number"), ("x:iters=5", "bad item 'iters=5'"),
                     ("x:rounding=floor", "rounding is noise|ste"), (":lr=1", "expected LABEL")):
        with pytest.raises(RobustHideError, match=msg):
            parse_series(bad, base)


def test_read_uint8_passes_no_gradient_beyond_the_clamp():
    """The decoder's input during editing: 8-bit levels of the clamped image forward; backward the clamp's own
    gradient (0 for pixels out of [0, 1]) and identity for the rounding. ste_uint8 passes 1 everywhere."""
    from robusthide.latent.editing import read_uint8, ste_uint8

    x = torch.tensor([-0.2, 0.0012, 0.5, 0.9987, 1.3], requires_grad=True)
    y = read_uint8(x)
    assert torch.equal(y.detach(), torch.round(x.detach().clamp(0, 1) * 255) / 255)
    assert torch.equal(y.detach(), ste_uint8(x).detach())
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    x.grad = None
    ste_uint8(x).sum().backward()
    assert x.grad.tolist() == [1.0] * 5
    assert EditConfig().clamp_grad is True


@pytest.fixture(scope="module")
def codec_file(train_tiny_codec):
    return train_tiny_codec("codec-iters", steps=10, batch=2, quality="7")


def test_iters_reads_the_real_bitstream_of_each_kept_latent(codec_file, photos, to_tensor, tmp_path):
    """Point k is the bitstream of y after k iterations: at 0 it is the codec's own output (plain compress), and
    a run of k iterations ends on the same numbers; the float reading skips the rounding of y."""
    from robusthide.latent import iters
    from robusthide.latent.api import to_8bit
    from robusthide.latent.editing import edit_latent
    from robusthide.latent.models import load_codec
    from robusthide.latent.stegnet import load_decoder
    from robusthide.metrics import psnr

    torch.set_num_threads(1)
    codec, dec = load_codec(codec_file), load_decoder("fnns-r:0")
    x = to_tensor(photos["coffee"][100:164, 200:264])
    cfg = EditConfig(lr=1e-2)
    r = iters.run(("7", codec), dec, [x], [("a", cfg), ("b", EditConfig(lr=1e-1))], (3, 0), tmp_path / "it",
                  log=lambda s: None)
    pts = r["series"][0]["points"]
    assert [p["iters"] for p in pts] == [0, 3] and r["settings"]["at"] == [0, 3]
    t = (torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    c = codec.compress(x)
    img0 = to_8bit(codec.synthesize(c.y_hat, (64, 64)))
    assert pts[0]["bpp"] == 8 * (len(c.y_string) + len(c.z_string)) / 64**2
    assert pts[0]["psnr"] == pytest.approx(float(psnr(img0, x)))
    assert pts[0]["acc_coded"] == float(((dec(img0) > 0).float() == t).float().mean())
    y3 = edit_latent(codec, dec, x, t, EditConfig(lr=1e-2, iters=3)).y
    y_float = to_8bit(codec.synthesize(y3, (64, 64)))
    assert pts[1]["acc_float"] == float(((dec(y_float) > 0).float() == t).float().mean())
    assert 0.0 <= pts[1]["acc_coded_min"] <= pts[1]["acc_coded"] <= pts[1]["acc_coded_max"] <= 1.0
    assert r["series"][1]["edit"]["lr"] == 0.1 and r["series"][1]["cpu_s_per_iter"] > 0
    md = (tmp_path / "it.md").read_text()
    assert "## a" in md and "## b" in md and "| 3 |" in md
    assert json.loads((tmp_path / "it.json").read_text())["paper_div2k"]["6"]["accuracy"] == 91.75
    assert (tmp_path / "it.png").stat().st_size > 1000


def test_iters_cli_errors_are_one_line(codec_file, photos, tmp_path, capsys):
    from PIL import Image

    from robusthide.cli.main import main
    from robusthide.training.data import split_of

    data = tmp_path / "photos"
    data.mkdir()
    name = next(f"p{i}.png" for i in range(200) if split_of(f"p{i}.png") == "val")
    Image.fromarray(np.ascontiguousarray(photos["astronaut"][:160, :160])).save(data / name)
    args = ["latent", "iters", "--out", str(tmp_path / "c"), "--codec", str(codec_file), "--decoder", "fnns-r:0",
            "--data", str(data), "--n", "1", "--size", "64", "--max-side", "160"]
    assert main([*args, "--at", "two"]) == 2
    assert "--at takes iteration counts separated by commas" in capsys.readouterr().err
    assert main([*args, "--at", "0,2", "--series", "s:lr=big"]) == 2
    assert "lr takes a number, got 'big'" in capsys.readouterr().err
    assert main([*args, "--at", "0,2", "--series", "s:lr=1e-2"]) == 0
    r = json.loads((tmp_path / "c.json").read_text())
    assert [p["iters"] for p in r["series"][0]["points"]] == [0, 2]
