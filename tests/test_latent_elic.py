"""Issue 24: the ELIC-style codec (uneven channel groups, checkerboard + channel context), robusthide/latent/elic.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("constriction")

from robusthide import RobustHideError  # noqa: E402
from robusthide.latent.elic import ElicLite, checkerboard, elic_groups  # noqa: E402
from robusthide.latent.models import load_codec, pad, save_codec  # noqa: E402


@pytest.fixture(scope="module")
def elic_file(train_tiny_codec):
    return train_tiny_codec("elic", steps=20, batch=2, arch="elic", quality="e")


def test_groups_and_checkerboard():
    assert elic_groups(320) == (16, 16, 32, 64, 192) and sum(elic_groups(192)) == 192
    with pytest.raises(RobustHideError):
        elic_groups(96)
    m = checkerboard(4, 4)[0, 0]
    assert m.sum() == 8 and bool(m[0, 0]) and not bool(m[0, 1]) and bool(m[1, 1])


def test_elic_bitstream_round_trip_is_exact(to_tensor, elic_file, photos):
    codec = load_codec(elic_file)
    assert isinstance(codec, ElicLite) and codec.meta["arch"] == "elic"
    x = to_tensor(photos["astronaut"][100:180, 150:250])
    c = codec.compress(x)
    y_dec = codec.decompress_latent(c.y_string, c.z_string, c.z_shape)
    assert torch.equal(y_dec, c.y_hat)
    # the real rate matches the model's estimate of it (rounded latents, same context passes)
    with torch.no_grad():
        _, y_bits, z_bits = codec.rate_and_recon(codec.g_a(pad(x)), "round")
    real = 8 * (len(c.y_string) - 4 * 10 + len(c.z_string))
    assert abs(real - float(y_bits + z_bits)) < 0.05 * float(y_bits + z_bits) + 400
    # latents far outside the tables (escapes) still code exactly
    y = codec.g_a(pad(x)).detach() * 30
    y[0, 0, 0, 0] = 20000.0
    c2 = codec.compress_latent(y)
    assert torch.equal(codec.decompress_latent(c2.y_string, c2.z_string, c2.z_shape), c2.y_hat)
    with pytest.raises(RobustHideError, match="corrupt latent bitstream"):
        codec.decompress_latent(c.y_string[:-5], c.z_string, c.z_shape)
    save_codec(codec, elic_file.parent / "again.safetensors")
    assert load_codec(elic_file.parent / "again.safetensors").model_id() == codec.model_id()


def test_elic_through_cli_and_code_editing(to_tensor, elic_file, photos, tmp_path, capsys):
    from PIL import Image

    from robusthide.cli.main import main
    from robusthide.latent.editing import EditConfig, edit_latent
    from robusthide.latent.stegnet import random_decoder

    img, rhl, out = tmp_path / "c.png", tmp_path / "c.rhl", tmp_path / "d.png"
    Image.fromarray(np.ascontiguousarray(photos["coffee"][100:164, 200:264])).save(img)
    assert main(["latent", "compress", str(img), "-o", str(rhl), "--codec", str(elic_file)]) == 0
    assert main(["latent", "decode", str(rhl), "-o", str(out), "--codec", str(elic_file)]) == 0
    assert np.asarray(Image.open(out)).shape == (64, 64, 3)
    codec = load_codec(elic_file)
    x = to_tensor(photos["coffee"][100:164, 200:264])
    target = (torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    cfg = EditConfig(iters=8, lr=0.1, lambda1=0.0, lambda2=0.0, lambda4=0.0, lambda5=1000.0, ce_reduction="mean",
                     log_every=1)
    h = edit_latent(codec, random_decoder(0), x, target, cfg).history
    assert h[-1]["msg_loss"] < h[0]["msg_loss"]


def test_probe_fits_a_power_law_and_times_steps(photo_dir):
    from robusthide.latent.probe import fit_curve, probe
    from robusthide.training.data import ImageBank

    t = np.arange(1, 301, dtype=np.float64)
    fit = fit_curve(list(0.8 + 3.0 * t ** -0.7))
    assert fit is not None and fit["a"] == pytest.approx(0.8, abs=0.02) and fit["c"] == pytest.approx(0.7, abs=0.05)
    assert fit_curve([1.0, 0.9]) is None
    bank = ImageBank(photo_dir, split=None, max_side=256, min_side=64)
    p = probe("elic", 64, bank, seconds=60, max_steps=3, batch=1, N=16)
    assert p["steps"] == 3 and p["cpu_s_per_step"] > 0 and len(p["log"]) == 3 and p["curve"] is None
    with pytest.raises(RobustHideError, match="unknown codec architecture"):
        probe("vq", 64, bank, max_steps=1)


def test_codec_training_resumes_exactly(photo_dir, tmp_path):
    """Three steps, then three more with --resume, give the weights of six steps in one run."""
    from robusthide.latent.train import train_codec

    kw = dict(N=16, M=192, size=64, batch=1, lr=3e-3, max_side=256, log_every=1, checkpoint_every=3)
    one = train_codec(photo_dir, tmp_path / "one", steps=6, **kw)
    train_codec(photo_dir, tmp_path / "two", steps=3, **kw)
    two = train_codec(photo_dir, tmp_path / "two", steps=6, resume=True, **kw)
    assert two.model_id() == one.model_id()
    assert len((tmp_path / "two" / "log.jsonl").read_text().splitlines()) == 6
    with pytest.raises(RobustHideError, match="raise --steps"):
        train_codec(photo_dir, tmp_path / "two", steps=6, resume=True, **kw)
    with pytest.raises(RobustHideError, match="was trained with"):
        train_codec(photo_dir, tmp_path / "two", steps=9, resume=True, **{**kw, "N": 32})
    with pytest.raises(RobustHideError, match="no checkpoint"):
        train_codec(photo_dir, tmp_path / "none", steps=3, resume=True, **kw)


def test_resume_takes_the_new_learning_rate(photo_dir, tmp_path):
    from robusthide.latent.train import train_codec

    kw = dict(N=16, M=192, size=64, batch=1, max_side=256, log_every=0, checkpoint_every=2)
    train_codec(photo_dir, tmp_path, steps=2, lr=3e-3, **kw)
    a = train_codec(photo_dir, tmp_path, steps=3, lr=3e-3, resume=True, **kw)
    train_codec(photo_dir, tmp_path / "b", steps=2, lr=3e-3, **kw)
    b = train_codec(photo_dir, tmp_path / "b", steps=3, lr=1e-6, resume=True, **kw)
    assert a.model_id() != b.model_id()


def test_init_from_starts_a_new_run_from_trained_weights(photo_dir, tmp_path):
    """A 64 px run continued at 128 px from its weights (no optimiser state); mismatched weights are refused."""
    from robusthide.latent.train import train_codec

    kw = dict(N=16, M=192, batch=1, max_side=256, log_every=0)
    first = train_codec(photo_dir, tmp_path / "a", steps=2, size=64, lr=3e-3, checkpoint_every=2, **kw)
    for src in (tmp_path / "a" / "codec.safetensors", tmp_path / "a"):
        second = train_codec(photo_dir, tmp_path / "b", steps=1, size=128, lr=0.0, init_from=src, **kw)
        assert torch.equal(second.g_a[0].weight, first.g_a[0].weight)
        assert torch.equal(second.g_s[-1].weight, first.g_s[-1].weight)
    with pytest.raises(RobustHideError, match="does not fit"):
        train_codec(photo_dir, tmp_path / "c", steps=1, size=64, init_from=tmp_path / "a", arch="elic", **kw)
    with pytest.raises(RobustHideError, match="not both"):
        train_codec(photo_dir, tmp_path / "a", steps=3, size=64, init_from=tmp_path / "a", resume=True, **kw)
