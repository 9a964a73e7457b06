"""The invertible (HiNet-style) hiding network: exact inverse, identity at start, config, trainer, export,
and the edge-trace measure of a visible secret (issue 22)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robusthide import RobustHideError
from robusthide.imagehiding import ImageHider, load_model, save_model
from robusthide.imagehiding.invertible import HaarDWT, InvertibleHidingNetwork
from robusthide.imagehiding.nets import create_hiding_network
from robusthide.imagehiding.train import ImageHideTrainer, load_config
from robusthide.metrics import edge_trace

TINY = {"arch": "hinet", "size": 32, "blocks": 2, "hidden": 8}


def rand(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def perturb(net: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_haar_dwt_is_orthonormal_and_its_own_inverse():
    dwt, x = HaarDWT(), rand(2, 16)
    y = dwt(x)
    assert y.shape == (2, 12, 8, 8)
    assert torch.allclose(dwt.inverse(y), x, atol=1e-6)
    assert torch.allclose((y ** 2).sum(), (x ** 2).sum(), rtol=1e-5)  # energy kept
    # the LL band is twice the 2 x 2 mean of each channel
    assert torch.allclose(y[:, 0::4], 2 * torch.nn.functional.avg_pool2d(x, 2), atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_forward_then_inverse_recovers_cover_and_secrets(n):
    net = InvertibleHidingNetwork(**dict(TINY, n_secrets=n))
    perturb(net)
    cover, secrets = rand(2), [rand(2, seed=i + 1) for i in range(n)]
    y1, y2 = net.forward_bands(cover, secrets)
    for blk in reversed(net.blocks):
        y1, y2 = blk.inverse(y1, y2)
    assert torch.allclose(net.dwt.inverse(y1), cover, atol=1e-4)
    for i, s in enumerate(secrets):
        assert torch.allclose(net.dwt.inverse(y2[:, 12 * i:12 * (i + 1)]), s, atol=1e-4)


def test_starts_as_the_identity_and_reveals_with_z_zero():
    net = InvertibleHidingNetwork(**TINY)
    cover, secret = rand(1), rand(1, seed=3)
    container, residual = net.hide(cover, [secret])
    assert residual.abs().max() < 1e-6
    revealed, r_hat, c_hat = net.reveal(container)
    assert r_hat is None and c_hat is None
    assert revealed[0].abs().max() < 1e-6  # nothing hidden yet: z = 0 comes back
    with pytest.raises(RobustHideError, match="hides 1 secret"):
        net.hide(cover, [secret, secret])
    with pytest.raises(RobustHideError, match="even H and W"):
        net.reveal(rand(1, 31))


def test_config_selects_the_architecture_and_rejects_unknown_keys(tmp_path, photo_dir):
    cfg = load_config({"model": {"arch": "hinet", "size": 32, "blocks": 3}, "data": {"train": str(photo_dir)}})
    assert cfg["model"] == {"arch": "hinet", "n_secrets": 1, "size": 32, "blocks": 3, "hidden": 48,
                            "clamp": 2.0, "restore": False}
    assert isinstance(create_hiding_network(**cfg["model"]), InvertibleHidingNetwork)
    with pytest.raises(RobustHideError, match=r"unknown key 'model.channels'"):
        load_config({"model": {"arch": "hinet", "channels": [4, 8]}})
    with pytest.raises(RobustHideError, match="model.arch must be unet"):
        load_config({"model": {"arch": "hinett"}})
    with pytest.raises(RobustHideError, match="model.blocks must be an integer >= 1"):
        load_config({"model": {"arch": "hinet", "blocks": 0}})
    # paper 003's networks stay the default, with the keywords of the first exports (no "arch" key)
    assert "arch" not in load_config({})["model"]


def tiny_cfg(tmp_path, photo_dir, **model):
    return load_config({"name": "inv", "out": str(tmp_path / "runs"), "seed": 1, "model": dict(TINY, **model),
                        "disc": {"enabled": False},
                        "data": {"train": str(photo_dir), "split": False, "max_side": 128},
                        "attack": {"spec": "real(jpeg:q=50..90)"},
                        "loss": {"distance": "l2", "secret": 5.0, "lowfreq": 1.0, "teacher": 0.0},
                        "train": {"steps": 40, "batch": 4, "lr": 2e-3}, "val": {"every": 0}, "ckpt": {"every": 100}})


def test_training_hides_and_resumes_at_a_new_working_size(tmp_path, photo_dir):
    tr = ImageHideTrainer(tiny_cfg(tmp_path, photo_dir, restore=True), device="cpu", progress=False)
    rows = [tr.step() for _ in range(12)]
    assert "l_lowfreq" in rows[0] and rows[-1]["psnr_secret"] > rows[0]["psnr_secret"] + 1.0
    tr.save()
    # the network is fully convolutional: a run may continue at another working size, not another shape
    tr2 = ImageHideTrainer(tiny_cfg(tmp_path, photo_dir, restore=True, size=48), resume=True, device="cpu",
                           progress=False)
    assert tr2.state["step"] == 12 and tr2.gen_net.size == 48
    assert tr2.step()["step"] == 13
    with pytest.raises(RobustHideError, match="does not match the config"):
        ImageHideTrainer(tiny_cfg(tmp_path, photo_dir, restore=True, hidden=4), resume=True, device="cpu",
                         progress=False)


def test_export_load_and_api_round_trip(tmp_path):
    net = InvertibleHidingNetwork(**dict(TINY, n_secrets=2))
    perturb(net, 4)
    path = save_model(net, tmp_path / "inv.safetensors", name="inv")
    loaded, meta = load_model(path)
    assert isinstance(loaded, InvertibleHidingNetwork) and json.loads(meta["config"])["arch"] == "hinet"
    cover = (rand(1, 32, 7)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    secrets = [(rand(1, 32, 8 + i)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8) for i in range(2)]
    a, b = ImageHider(net), ImageHider(loaded)
    ca, cb = a.hide(cover, secrets), b.hide(cover, secrets)
    assert ca.shape == cover.shape and np.array_equal(ca, cb)
    ra, rb = a.reveal(ca), b.reveal(cb)
    assert len(ra) == 2 and all(np.array_equal(x, y) for x, y in zip(ra, rb))


def test_edge_trace_sees_a_secret_outline_and_not_an_unrelated_image():
    g = np.random.default_rng(0)
    cover = g.integers(60, 200, (4, 64, 64, 3)).astype(np.uint8)
    secret = np.zeros((4, 64, 64, 3), np.uint8)
    secret[:, 16:48, 16:48] = 255                      # a square: its outline is the edge map
    unrelated = np.zeros_like(secret)
    unrelated[:, :, :20] = 255                         # a vertical edge elsewhere
    from skimage.filters import sobel

    edges = np.stack([sobel(s[..., 0] / 255.0) for s in secret])
    container = np.clip(cover.astype(int) + (g.normal(0, 1, cover.shape) + 8 * edges[..., None]).round(), 0, 255)
    container = container.astype(np.uint8)
    assert edge_trace(cover, container, secret) > 0.5
    assert abs(edge_trace(cover, container, unrelated)) < 0.2
    clean = np.clip(cover.astype(int) + g.normal(0, 2, cover.shape).round(), 0, 255).astype(np.uint8)
    assert abs(edge_trace(cover, clean, secret)) < 0.1


def test_init_from_a_run_or_an_export_starts_from_its_weights(tmp_path, photo_dir):
    tr = ImageHideTrainer(tiny_cfg(tmp_path, photo_dir), device="cpu", progress=False)
    for _ in range(3):
        tr.step()
    tr.save()
    exported = save_model(tr.gen_net, tmp_path / "m.safetensors")
    for source in (tmp_path / "runs" / "inv", exported):
        cfg = tiny_cfg(tmp_path, photo_dir)
        cfg["name"], cfg["train"]["init_from"] = f"ft-{source.name}", str(source)
        ft = ImageHideTrainer(cfg, device="cpu", progress=False)
        assert ft.state["step"] == 0
        for k, v in tr.gen_net.state_dict().items():
            assert torch.equal(ft.gen_net.state_dict()[k], v), k
    bad = tiny_cfg(tmp_path, photo_dir, hidden=4)
    bad["name"], bad["train"]["init_from"] = "bad", str(exported)
    with pytest.raises(RobustHideError, match="init_from .* differs from the config"):
        ImageHideTrainer(bad, device="cpu", progress=False)


def test_export_at_another_working_size(tmp_path, photo_dir):
    from robusthide.imagehiding import export_model

    tr = ImageHideTrainer(tiny_cfg(tmp_path, photo_dir), device="cpu", progress=False)
    tr.step()
    tr.save()
    out = export_model(tmp_path / "runs" / "inv", tmp_path / "big.safetensors", size=64)
    net, meta = load_model(out)
    assert net.size == 64 and json.loads(meta["config"])["size"] == 64
    assert ImageHider(net).reveal(np.zeros((40, 50, 3), np.uint8))[0].shape == (40, 50, 3)  # the container's size
    with pytest.raises(RobustHideError, match="multiple of 16"):
        export_model(tmp_path / "runs" / "inv", tmp_path / "bad.safetensors", size=40)


def test_lowfreq_and_ssim_loss_terms():
    from robusthide.imagehiding.losses import check_weights, generator_losses

    w = check_weights({"distance": "l2", "lowfreq": 1.0, "ssim": 1.0})
    cover, secret = rand(2), [rand(2, seed=5)]
    _, same = generator_losses(w, cover, secret, cover, cover * 0, secret, None, None, 1.0)
    assert same["lowfreq"] == 0 and abs(same["ssim"]) < 1e-6 and same["secret"] == 0
    # a checkerboard of +-d leaves every 2 x 2 mean (the LL band) unchanged but lowers SSIM
    d = 0.02 * (torch.arange(32)[:, None] + torch.arange(32)[None, :]).remainder(2).mul(2).sub(1).float()
    _, checker = generator_losses(w, cover, secret, cover + d, d.expand_as(cover), secret, None, None, 1.0)
    assert checker["lowfreq"] < 1e-12 and checker["ssim"] > 1e-3
    _, flat = generator_losses(w, cover, secret, cover + 0.02, cover * 0 + 0.02, secret, None, None, 1.0)
    assert abs(flat["lowfreq"] - 0.02 ** 2) < 1e-6


def test_trace_loss_sees_a_residual_that_draws_the_secret_and_not_noise():
    from robusthide.imagehiding.losses import check_weights, generator_losses, secret_trace

    cover, secret = rand(2), rand(2, seed=5)
    copy = 0.02 * (secret - 0.5)  # a residual that is a faint copy of the secret
    noise = 0.02 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert float(secret_trace(copy, [secret])) > 0.5
    assert float(secret_trace(noise, [secret])) < 0.05
    w = check_weights({"distance": "l2", "trace": 1.0})
    _, terms = generator_losses(w, cover, [secret], cover + copy, copy, [secret], None, None, 1.0)
    assert terms["trace"] == pytest.approx(float(secret_trace(copy, [secret])))
    grad = copy.clone().requires_grad_(True)
    secret_trace(grad, [secret]).backward()
    assert torch.isfinite(grad.grad).all() and grad.grad.abs().sum() > 0


def test_cli_picks_the_shipped_model_for_the_number_of_secrets():
    from robusthide.imagehiding.api import default_model

    assert [default_model(n) for n in (1, 2, 3)] == ["imagehide-hinet", "imagehide-hinet2", "imagehide-hinet3"]
    with pytest.raises(RobustHideError, match="no shipped image-hiding model hides 4 secret images"):
        default_model(4)
