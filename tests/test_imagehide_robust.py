"""The robust operating point of the invertible hiding network (issue 22): ``model.downscale`` runs the network on
the area-averaged cover and secrets and upsamples its residual and the revealed secrets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robusthide import RobustHideError
from robusthide.imagehiding import ImageHider, load_model, save_model
from robusthide.imagehiding.invertible import InvertibleHidingNetwork
from robusthide.imagehiding.train import same_weights_layout

TINY = {"arch": "hinet", "size": 32, "blocks": 2, "hidden": 8}


def rand(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def pair(downscale: int) -> tuple[InvertibleHidingNetwork, InvertibleHidingNetwork]:
    """A perturbed full-scale network and the same weights at ``downscale``."""
    full = InvertibleHidingNetwork(**TINY)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in full.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    small = InvertibleHidingNetwork(**dict(TINY, downscale=downscale))
    small.load_state_dict(full.state_dict())
    return full, small


def up(x: torch.Tensor, d: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=d, mode="bicubic", align_corners=False)


@pytest.mark.parametrize("d", [2, 4])
def test_downscale_hides_and_reveals_through_the_area_averaged_images(d):
    full, net = pair(d)
    cover, secret = rand(2), rand(2, seed=2)
    c_s, s_s = F.avg_pool2d(cover, d), F.avg_pool2d(secret, d)
    m, r = net.hide(cover, [secret])
    m_s, r_s = full.hide(c_s, [s_s])
    assert m.shape == cover.shape
    assert torch.allclose(r, up(r_s, d), atol=1e-5)
    assert torch.allclose(m, cover + r, atol=1e-6)
    x = rand(2, seed=5)
    (rev,), _, _ = net.reveal(x)
    (rev_s,), _, _ = full.reveal(F.avg_pool2d(x, d))
    assert rev.shape == x.shape
    assert torch.allclose(rev, up(rev_s, d), atol=1e-5)


def test_downscale_keeps_the_residual_out_of_the_finest_band():
    full, net = pair(2)
    cover, secret = rand(1, 64), rand(1, 64, seed=2)
    hh = [full.dwt(r)[:, 3::4].pow(2).mean() / full.dwt(r).pow(2).mean()
          for r in (full.hide(cover, [secret])[1], net.hide(cover, [secret])[1])]
    assert hh[0] > 0.1  # the full-scale residual of random images is spread over every band
    assert hh[1] < 0.02 * hh[0]  # the upsampled one has almost nothing in the finest diagonal band


def test_downscale_config_metadata_and_weights_layout(tmp_path):
    with pytest.raises(RobustHideError, match=r"^model.downscale must be 1, 2 or 4, got 3$"):
        InvertibleHidingNetwork(**dict(TINY, downscale=3))
    with pytest.raises(RobustHideError, match="downscale must be an integer"):
        InvertibleHidingNetwork(**dict(TINY, downscale=True))
    assert "downscale" not in InvertibleHidingNetwork(**dict(TINY, downscale=1)).arch  # old models unchanged
    full, net = pair(2)
    assert same_weights_layout(full.arch, net.arch) and same_weights_layout(net.arch, full.arch)
    assert not same_weights_layout(full.arch, dict(net.arch, hidden=9))
    with pytest.raises(RobustHideError, match="multiples of 4"):
        net.hide(rand(1, 30), [rand(1, 30)])
    path = tmp_path / "robust.safetensors"
    save_model(net, path, name="robust-test")
    back, _ = load_model(path)
    assert back.arch["downscale"] == 2 and back.multiple == 4
    cover, secret = rand(1), rand(1, seed=2)
    assert torch.equal(back.hide(cover, [secret])[0], net.hide(cover, [secret])[0])


def test_api_pads_odd_sizes_for_a_downscaled_network():
    _, net = pair(2)
    h = ImageHider(net)
    rng = np.random.default_rng(0)
    cover = rng.integers(0, 256, (37, 42, 3), dtype=np.uint8)
    secret = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    container = h.hide(cover, [secret])
    assert container.shape == cover.shape and container.dtype == np.uint8
    (revealed,) = h.reveal(container)
    assert revealed.shape == cover.shape


def test_refinement_against_several_attacks_keeps_the_budget_and_lowers_the_loss():
    from robusthide.imagehiding.refine import HideRefineConfig, _quantize, _reveal_loss, refine_container

    _, net = pair(2)
    for p in net.parameters():
        p.requires_grad_(False)
    cover = rand(2)
    # a secret this tiny network can reveal: what it reveals from a container 30 dB away from the cover
    target = (cover + 0.03 * F.interpolate(rand(2, 8, seed=4) * 2 - 1, size=32, mode="bicubic")).clamp(0, 1)
    with torch.no_grad():
        secret = net.reveal(target)[0][0]
    cfg = HideRefineConfig(steps=30, lr=0.005, target_psnr=30.0, attack=["real(jpeg:q=50)", "blur(1)"])
    assert cfg.attacks == ("real(jpeg:q=50)", "blur(1)")
    from robusthide.attacks import build_attack

    layers = [build_attack(s) for s in cfg.attacks]

    def eot(m: torch.Tensor) -> float:
        x = _quantize(m)
        with torch.no_grad():
            return float(sum(_reveal_loss(net, a(x, cover).clamp(0, 1), [secret]) for a in layers)
                         + _reveal_loss(net, x, [secret])) / 3

    m0 = cover.clone()
    m = refine_container(net, cover, [secret], m0, cfg)
    mse = (m - cover).pow(2).mean(dim=(1, 2, 3))
    assert float(mse.max()) <= 10 ** (-30 / 10) * (1 + 1e-4)  # every image inside the PSNR budget
    assert float(m.min()) >= 0 and float(m.max()) <= 1
    assert eot(m) < 0.8 * eot(m0)  # (JPEG Q50 of 32 x 32 images keeps the floor high)


def test_refine_settings_and_the_repeatable_cli_flag():
    import argparse

    from robusthide.cli.command import command_line
    from robusthide.imagehiding.refine import HideRefineConfig

    assert HideRefineConfig(attack="blur(1)").attacks == ("blur(1)",) and HideRefineConfig().attacks == ()
    with pytest.raises(RobustHideError, match="^refine attack must be an attack spec or a list of them"):
        HideRefineConfig(attack=[1])
    a = argparse.Namespace(refine=25, refine_attack=["real(jpeg:q=50)", "blur(1)"], refine_lr=0.0005)
    line = command_line(["imagehide", "evaluate", "m"], a, (("refine", "--refine", 0),
                        ("refine_attack", "--refine-attack", None), ("refine_lr", "--refine-lr", 0.002)))
    assert line == ("robusthide imagehide evaluate m --refine 25 --refine-attack 'real(jpeg:q=50)' "
                    "--refine-attack 'blur(1)' --refine-lr 0.0005")


def test_evaluate_cli_refines_against_several_attacks(tmp_path, photo_dir):
    import json

    from robusthide.cli.main import main

    _, net = pair(2)
    model = tmp_path / "robust.safetensors"
    save_model(net, model, name="robust-test")
    out = tmp_path / "rep"
    assert main(["imagehide", "evaluate", str(model), "--data", str(photo_dir), "--n", "2", "--split", "all",
                 "--attacks", "none,blur:1", "--refine", "3", "--refine-attack", "real(jpeg:q=50)",
                 "--refine-attack", "blur(1)", "--refine-lr", "0.001", "--out", str(out), "--json"]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["refine"]["attack"] == ["real(jpeg:q=50)", "blur(1)"] and doc["refine"]["lr"] == 0.001
    assert "--refine-attack 'real(jpeg:q=50)' --refine-attack 'blur(1)'" in doc["command"]
    assert doc["container"]["psnr"] >= 34.0 - 0.2
