"""Issue 24: the LISO / LISO-JPEG baselines of paper 004 (robusthide/latent/liso.py, bench_liso.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robusthide import RobustHideError
from robusthide.latent.liso import JpegLayer, Liso, LisoTrainConfig, load_liso, real_jpeg, save_liso, train_liso


def _tensor(im: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float() / 255.0


def test_jpeg_layer_is_real_jpeg_forward_and_diffjpeg_backward(photos):
    from robusthide.attacks import DiffJPEG
    from robusthide.codecs import get_codec

    x = _tensor(photos["coffee"][:64, :64]).requires_grad_(True)
    layer = JpegLayer(70)
    y = layer(x)
    assert torch.equal(y.detach(), get_codec("jpeg:q=70")(x.detach()).images)
    assert torch.equal(real_jpeg(x, 70), y.detach())
    w = torch.randn_like(y)
    (g,) = torch.autograd.grad((y * w).sum(), x)
    x2 = x.detach().clone().requires_grad_(True)
    (g2,) = torch.autograd.grad((DiffJPEG(70)(x2) * w).sum(), x2)
    assert torch.allclose(g, g2) and g.abs().sum() > 0


def test_liso_trains_and_round_trips(photo_dir, photos, tmp_path):
    """A few training steps from the shipped FNNS decoder: the learned steps carry 1 bit per pixel through
    8-bit rounding far better than chance, and the later iterate reads better than the first."""
    from robusthide.latent.api import resolve_decoder
    from robusthide.latent.editing import ste_uint8

    torch.manual_seed(0)
    model = Liso(hidden=16, iters=3)
    cfg = LisoTrainConfig(steps=8, size=32, batch=4, lr=2e-3, max_side=256, log_every=0)
    train_liso(photo_dir, tmp_path, model, cfg, init_decoder=resolve_decoder("latent-fnns-decoder"), echo=False)
    loaded = load_liso(tmp_path / "liso.safetensors")
    assert loaded.model_id() == model.model_id() and loaded.iters == 3 and loaded.jpeg is None
    x = _tensor(photos["astronaut"][100:164, 150:214])
    bits = (torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    with torch.no_grad():
        xs = loaded.unroll(x, bits)
        accs = [float(((loaded.decoder(ste_uint8(s)) > 0).float() == bits).float().mean()) for s in xs]
    assert accs[-1] > 0.8 and accs[-1] > accs[0], accs
    stego = loaded.embed(x, bits)
    assert torch.equal(stego, xs[-1]) and float((stego - x).abs().max()) <= 3 * 0.05 + 1e-6
    with pytest.raises(RobustHideError, match="not found"):
        load_liso(tmp_path / "missing.safetensors")
    save_liso(Liso(hidden=8, iters=2, jpeg=50), tmp_path / "j.safetensors")
    assert load_liso(tmp_path / "j.safetensors").jpeg == 50


def test_liso_refuses_foreign_file(tmp_path):
    from robusthide.latent.stegnet import random_decoder, save_decoder

    save_decoder(random_decoder(0), tmp_path / "dec.safetensors")
    with pytest.raises(RobustHideError, match="not a robusthide LISO file"):
        load_liso(tmp_path / "dec.safetensors")


def test_bench_liso_rows_on_the_bench_images(photos, tmp_path):
    """bench-liso writes FNNS, LISO and LISO-JPEG rows (float, PNG, JPEG) with real file sizes."""
    import json

    from PIL import Image

    from robusthide.latent import bench_liso
    from robusthide.training.data import split_of

    data = tmp_path / "photos"
    data.mkdir()
    names = [f"p{i}.png" for i in range(200) if split_of(f"p{i}.png") == "val"][:2]
    for name, key in zip(names, ("astronaut", "coffee")):
        Image.fromarray(np.ascontiguousarray(photos[key][:160, :160])).save(data / name)
    save_liso(Liso(hidden=8, iters=2), tmp_path / "l.safetensors")
    save_liso(Liso(hidden=8, iters=2, jpeg=70), tmp_path / "j.safetensors")
    r = bench_liso.run(tmp_path / "l.safetensors", tmp_path / "j.safetensors", "fnns-r:0", data, tmp_path / "out",
                       n=2, size=64, fnns_steps=1, qualities=(50,), max_side=160, log=lambda _: None)
    names = [row["method"] for row in r["rows"]]
    assert names == ["FNNS", "FNNS-png", "FNNS-jpg50", "LISO", "LISO-png", "LISO-jpg50", "FNNS-JPG70_TRAIN",
                     "LISO-JPEG"]
    rows = {row["method"]: row for row in r["rows"]}
    assert rows["LISO"]["bpp"] == 96.0 and 0 < rows["LISO-jpg50"]["bpp"] < rows["LISO-png"]["bpp"] < 24
    assert set(rows["LISO-JPEG"]["detected"]) >= {"primary_sets", "fused"}
    md = (tmp_path / "out.md").read_text()
    assert "| LISO-JPEG |" in md and "15.41 / 4.2 / 99.47 % / 0.236" in md
    assert json.loads((tmp_path / "out.json").read_text())["settings"]["liso_iters"] == 2
