"""Training system: strategies lower the loss, resume is exact, pseudo strategy passes gradient, DDP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from robusthide import RobustHideError
from robusthide.training.config import load_config
from robusthide.training.strategies import build_strategy
from robusthide.training.trainer import Trainer


def tiny_cfg(tmp_path, photo_dir, **over):
    cfg = load_config(None, [
        f"out={tmp_path}", "name=t", "seed=3",
        "model={arch: lean, n_bits: 8, size: 32, ch: 8, enc_blocks: 1, dec_blocks: 1, amplitude: 0.05}",
        f"data={{train: {photo_dir}, split: false, max_side: 256}}",
        "train.steps=40", "train.batch=8", "train.full_size=[32]", "train.lr=0.005", "train.lr_final=0.001",
        "train.warmup_msg_steps=20", "train.ramp_steps=20", "train.target_psnr=30",
        "train.amp=false", "train.channels_last=false",
        "val.every=0", "ckpt.every=1000",
    ])
    for k, v in over.items():
        cfg["train" if k in cfg["train"] else "noise"][k] = v
    return cfg


@pytest.mark.parametrize("strategy", ["identity", "pseudo", "oeds", "tsr", "tsr-s", "mbrs"])
def test_every_strategy_lowers_the_message_loss(tmp_path, photo_dir, strategy):
    cfg = tiny_cfg(tmp_path, photo_dir, strategy=strategy, steps=60)
    cfg["noise"]["pool"] = [{"name": "identity"}, {"name": "jpeg", "q_lo": 60, "q_hi": 90}]
    cfg["noise"]["simulated"] = [{"name": "jpegmask"}]
    tr = Trainer(cfg, progress=False)
    losses = [tr.step()["msg_loss"] for _ in range(60)]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 0.02, (strategy, first, last)


def test_resume_is_exact(tmp_path, photo_dir):
    cfg = tiny_cfg(tmp_path / "a", photo_dir, steps=12)
    cfg["noise"]["pool"] = [{"name": "identity"}, {"name": "jpeg", "q_lo": 50, "q_hi": 90}, {"name": "noise"}]
    Trainer(cfg, progress=False).run(max_steps=6)
    tr = Trainer(cfg, resume=True, progress=False)
    assert tr.state["step"] == 6
    tr.run()
    cfg_b = json.loads(json.dumps(cfg))
    cfg_b["out"] = str(tmp_path / "b")
    straight = Trainer(cfg_b, progress=False)
    straight.run()
    for (k, v), (_, w) in zip(tr.model.state_dict().items(), straight.model.state_dict().items()):
        assert torch.equal(v, w), k
    assert tr.state["img_weight"] == straight.state["img_weight"]


def test_init_from_starts_from_another_runs_weights(tmp_path, photo_dir):
    first = Trainer(tiny_cfg(tmp_path / "a", photo_dir, steps=2), progress=False)
    first.run()
    cfg = tiny_cfg(tmp_path / "b", photo_dir, steps=2)
    cfg["train"]["init_from"] = str(tmp_path / "a" / first.cfg["name"])
    warm = Trainer(cfg, progress=False)
    for (k, v), (_, w) in zip(warm.model.state_dict().items(), first.model.state_dict().items()):
        assert torch.equal(v, w), k
    cold = Trainer(tiny_cfg(tmp_path / "c", photo_dir, steps=2), progress=False)
    assert any(not torch.equal(v, w) for v, w in zip(cold.model.state_dict().values(),
                                                     first.model.state_dict().values()))
    cfg["train"]["init_from"] = str(tmp_path / "nowhere")
    with pytest.raises(RobustHideError, match="init_from: no weights at"):
        Trainer(cfg, progress=False)


def test_refuses_to_clobber_a_run(tmp_path, photo_dir):
    cfg = tiny_cfg(tmp_path, photo_dir, steps=2)
    Trainer(cfg, progress=False).run()
    with pytest.raises(RobustHideError, match="already has a checkpoint"):
        Trainer(cfg, progress=False)


def test_pseudo_strategy_gives_encoder_gradient_through_real_codec(tmp_path, photo_dir):
    cfg = tiny_cfg(tmp_path, photo_dir, strategy="pseudo")
    cfg["noise"]["pool"] = [{"name": "jpeg", "q_lo": 50, "q_hi": 50}]
    cfg["noise"]["slices"] = 1
    tr = Trainer(cfg, progress=False)
    from robusthide.training.data import step_generator

    g = step_generator(0, 0)
    cover = tr.bank.sample(4, 32, g)
    bits = torch.randint(0, 2, (4, 8), generator=g).float()
    attack, _ = tr.strategy.at(0)
    marked, logits, _ = tr.net(cover, bits, attack, g, False)
    assert attack.last == ["jpeg"]
    torch.nn.functional.binary_cross_entropy_with_logits(logits, bits).backward()
    grads = [p.grad for p in tr.model.encoder.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_config_errors(tmp_path):
    with pytest.raises(RobustHideError, match="unknown key"):
        load_config(None, ["train.nope=1"])
    with pytest.raises(RobustHideError, match="config not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(RobustHideError, match="bad YAML"):
        load_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# only a comment\n")
    with pytest.raises(RobustHideError, match="is empty"):
        load_config(empty)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


DDP_SCRIPT = r"""
import json, sys, torch
from robusthide.training.config import load_config
from robusthide.training.trainer import Trainer
cfg = json.loads(sys.argv[1])
tr = Trainer(cfg, progress=False)
tr.run()
if tr.rank == 0:
    torch.save({k: v.clone() for k, v in tr.model.state_dict().items()}, sys.argv[2])
"""


def test_ddp_two_processes_match_one_process(tmp_path, photo_dir):
    cfg = tiny_cfg(tmp_path / "one", photo_dir, steps=4)
    one = Trainer(cfg, progress=False)
    one.run()
    cfg2 = json.loads(json.dumps(cfg))
    cfg2["out"] = str(tmp_path / "two")
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "ddp_weights.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(script), json.dumps(cfg2), str(out)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[:3000] + "\n...\n" + r.stderr[-1500:]
    ddp = torch.load(out, weights_only=True)
    for k, v in one.model.state_dict().items():
        assert torch.allclose(v, ddp[k], atol=2e-5, rtol=1e-4), k


def test_adversarial_training_with_hidden_resumes_exactly(tmp_path, photo_dir):
    def cfg_for(out):
        c = tiny_cfg(out, photo_dir, steps=6)
        c["model"] = {"arch": "hidden", "n_bits": 8, "size": 32, "ch": 8, "enc_blocks": 1, "dec_blocks": 2,
                      "disc_blocks": 1}
        c["train"].update(msg_loss="mse", img_weight_fixed=2.8, adv_weight=1e-3)
        return c

    a = Trainer(cfg_for(tmp_path / "a"), progress=False)
    d0 = [p.detach().clone() for p in a.model.discriminator.parameters()]
    a.run(max_steps=3)
    assert any(not torch.equal(p, q) for p, q in zip(a.model.discriminator.parameters(), d0))
    a = Trainer(cfg_for(tmp_path / "a"), resume=True, progress=False)
    a.run()
    b = Trainer(cfg_for(tmp_path / "b"), progress=False)
    b.run()
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v, w), k


def test_adv_weight_needs_a_discriminator(tmp_path, photo_dir):
    cfg = tiny_cfg(tmp_path, photo_dir)
    cfg["train"]["adv_weight"] = 1e-3
    with pytest.raises(RobustHideError, match="no discriminator"):
        Trainer(cfg, progress=False)


def test_export_bakes_the_strength_into_the_amplitude(tmp_path, photo_dir):
    from robusthide.zoo.export import export_run
    from robusthide.zoo.registry import load_model

    cfg = tiny_cfg(tmp_path, photo_dir, steps=2)
    Trainer(cfg, progress=False).run()
    one = load_model(export_run(tmp_path / "t", tmp_path / "one.safetensors"))
    two = load_model(export_run(tmp_path / "t", tmp_path / "two.safetensors", strength=2.0))
    assert two.amplitude == pytest.approx(2 * one.amplitude)
    cover, bits = torch.rand(1, 3, 32, 32), torch.randint(0, 2, (1, 8)).float()
    with torch.no_grad():
        torch.testing.assert_close(two.residual(cover, bits), 2 * one.residual(cover, bits))
    with pytest.raises(RobustHideError, match="strength must be in"):
        export_run(tmp_path / "t", tmp_path / "bad.safetensors", strength=0)


def test_export_sets_the_mask_floor(tmp_path, photo_dir):
    """--mask-floor changes the share of the residual kept in flat areas, and only there."""
    from robusthide.zoo.export import export_run
    from robusthide.zoo.registry import load_model

    cfg = tiny_cfg(tmp_path, photo_dir, steps=1)
    Trainer(cfg, progress=False).run()
    base = load_model(export_run(tmp_path / "t", tmp_path / "base.safetensors"))
    low = load_model(export_run(tmp_path / "t", tmp_path / "low.safetensors", mask_floor=0.1))
    assert base.mask.floor == 0.3 and low.mask.floor == 0.1
    flat = torch.full((1, 3, 32, 32), 0.6)
    with torch.no_grad():
        ratio = low.mask(flat) / base.mask(flat)
    assert 0.32 < float(ratio.min()) <= float(ratio.max()) < 0.36  # (0.1 + ~0) / (0.3 + ~0) in flat areas
    with pytest.raises(RobustHideError, match=r"mask floor must be in \[0, 1\]"):
        export_run(tmp_path / "t", tmp_path / "bad.safetensors", mask_floor=1.5)
    capped = load_model(export_run(tmp_path / "t", tmp_path / "cap.safetensors", jnd_cap=0.5, refine_steps=3))
    assert capped.mask.cap_k == 0.5 and capped.refine_cfg["steps"] == 3 and base.mask.cap(flat) is None
    expected = 0.5 * (3 * (0.6 * 255 - 127) / 128 + 3) / 255  # Chou-Li above mid-grey; sigma ~ 0 when flat
    assert float(capped.mask.cap(flat).max()) == pytest.approx(expected, abs=1e-4)
    with pytest.raises(RobustHideError, match=r"JND cap must be in"):
        export_run(tmp_path / "t", tmp_path / "bad.safetensors", jnd_cap=0)
    dark = torch.full((1, 3, 32, 32), 0.05)  # Chou-Li threshold about 15 grey levels
    limited = load_model(export_run(tmp_path / "t", tmp_path / "lum.safetensors", jnd_cap=0.5, jnd_cap_lum_max=4))
    assert limited.mask.cap_lum_max == 4 and capped.mask.cap_lum_max is None
    assert float(limited.mask.cap(dark).max()) == pytest.approx(0.5 * 4 / 255, abs=1e-4)
    assert float(capped.mask.cap(dark).max()) > 3 * float(limited.mask.cap(dark).max())
    with pytest.raises(RobustHideError, match=r"the model has none \(set jnd_cap too\)"):
        export_run(tmp_path / "t", tmp_path / "bad.safetensors", jnd_cap_lum_max=4)
    with pytest.raises(RobustHideError, match=r"luminance limit must be in \(0, 20\]"):
        export_run(tmp_path / "t", tmp_path / "bad.safetensors", jnd_cap=0.5, jnd_cap_lum_max=0)
    ngd = load_model(export_run(tmp_path / "t", tmp_path / "ngd.safetensors", refine_steps=5,
                                refine_optimizer="ngd", refine_lr=0.01))
    assert ngd.refine_cfg == {**capped.refine_cfg, "steps": 5, "optimizer": "ngd", "lr": 0.01}
    boosted = load_model(export_run(tmp_path / "t", tmp_path / "boost.safetensors", refine_steps=5, refine_boost=2))
    assert boosted.refine_cfg["boost"] == 2 and ngd.refine_cfg["boost"] == 0
    with pytest.raises(RobustHideError, match=r"refine boost must be an integer in \[0, 10\]"):
        export_run(tmp_path / "t", tmp_path / "bad.safetensors", refine_steps=5, refine_boost=11)
    with pytest.raises(RobustHideError, match=r"need refine_steps > 0"):
        export_run(tmp_path / "t", tmp_path / "bad.safetensors", refine_optimizer="ngd")
    with pytest.raises(RobustHideError, match=r"refine optimizer must be adam or ngd"):
        export_run(tmp_path / "t", tmp_path / "bad.safetensors", refine_steps=2, refine_optimizer="sgd")
    aware = load_model(export_run(tmp_path / "t", tmp_path / "codecs.safetensors", refine_steps=5,
                                  refine_codecs="h264:crf=28; webp:q=50"))
    assert aware.refine_cfg["codecs"] == ["h264:crf=28", "webp:q=50"] and boosted.refine_cfg["codecs"] == []
    from robusthide.watermark.refine import RefineConfig

    assert [c.spec for c in RefineConfig.from_dict(aware.refine_cfg).real_codecs()] == ["h264:crf=28", "webp:q=50"]
    with pytest.raises(RobustHideError, match=r"need refine_steps > 0"):
        export_run(tmp_path / "t", tmp_path / "bad.safetensors", refine_codecs="webp:q=50")
    with pytest.raises(RobustHideError, match=r"unknown codec 'h263'"):
        export_run(tmp_path / "t", tmp_path / "bad.safetensors", refine_steps=5, refine_codecs="h263:q=5")
    assert not (tmp_path / "bad.safetensors").exists()


def test_whole_photo_covers_are_the_photo_squeezed(tmp_path, photos):
    """``data.whole_p``: a cover is the whole photo resized to S x S (as at deployment), not a crop."""
    import torch.nn.functional as F
    from PIL import Image

    from robusthide.training.data import ImageBank

    Image.fromarray(photos["coffee"]).save(tmp_path / "coffee.png")
    bank = ImageBank(tmp_path, max_side=400)
    whole = F.interpolate(bank.images[0].float()[None] / 255, size=(64, 64), mode="bilinear", antialias=True,
                          align_corners=False)[0]
    whole = (whole.clamp(0, 1) * 255).round() / 255
    got = bank.sample(6, 64, torch.Generator().manual_seed(0), whole_p=1.0)
    for im in got:
        assert torch.equal(im, whole) or torch.equal(im, whole.flip(-1))
    crops = bank.sample(6, 64, torch.Generator().manual_seed(0), max_zoom=2.0)
    assert all(not torch.equal(im, whole) and not torch.equal(im, whole.flip(-1)) for im in crops)


def test_jnd_weight_moves_the_mark_out_of_flat_areas(tmp_path, photo_dir):
    """``train.jnd_weight`` divides the image error by the per-pixel JND (robusthide/nets/masking.py), so
    the same training puts less of the residual on flat areas relative to texture than without it."""
    ratios = {}
    for w in (0.0, 20.0):
        cfg = tiny_cfg(tmp_path / str(w), photo_dir, steps=60, warmup_msg_steps=0, ramp_steps=1, jnd_weight=w)
        tr = Trainer(cfg, progress=False)
        rows = [tr.step() for _ in range(60)]
        assert ("jnd_mse" in rows[-1]) == (w > 0)
        g = torch.Generator().manual_seed(1)
        cover = torch.full((8, 3, 32, 32), 0.5)
        cover[..., 16:] = torch.rand(8, 3, 32, 16, generator=g)  # right half: texture
        with torch.no_grad():
            d = (tr.model.embed(cover, torch.randint(0, 2, (8, 8), generator=g).float()) - cover).abs()
        ratios[w] = float(d[..., 2:14].mean() / d[..., 18:30].mean())
    assert ratios[20.0] < 0.8 * ratios[0.0], ratios


def test_jnd_is_chou_li_plus_local_sigma():
    """PerceptualMask.jnd: Chou-Li's luminance threshold (20 grey levels at black, 3 at mid-grey, 6 at white)
    plus the local standard deviation; ``lum_max`` limits the luminance term."""
    from robusthide.nets.masking import PerceptualMask

    m = PerceptualMask()
    grey = torch.tensor([0.0, 127 / 255, 1.0]).view(3, 1, 1, 1).expand(3, 3, 8, 8)
    flat = m.jnd(grey)[:, 0, 4, 4] * 255
    assert flat.tolist() == pytest.approx([20.0, 3.0, 6.0], abs=0.03)  # sigma of a flat patch: ~0.03
    assert (m.jnd(grey, lum_max=6)[:, 0, 4, 4] * 255).tolist() == pytest.approx([6.0, 3.0, 6.0], abs=0.03)
    stripes = torch.zeros(1, 3, 8, 8)
    stripes[..., ::2] = 20 / 255
    t_lum = 17 * (1 - (20 / 127) ** 0.5) + 3  # the centre pixel is 20; its 5 x 5 window: 3 columns of 20, 2 of 0
    assert float(m.jnd(stripes)[0, 0, 4, 4] * 255) == pytest.approx(t_lum + 96 ** 0.5, abs=0.05)


def test_geo_model_trains_with_in_place_crops_and_resumes_exactly(tmp_path, photo_dir):
    """The periodic geo model through the geometry entry of the noise pool (crops kept in place, a small
    misalignment, then a real codec): a pure function of (seed, step), so --resume is exact."""

    def cfg_for(out):
        c = tiny_cfg(out, photo_dir, steps=6)
        c["model"] = {"arch": "geo", "n_bits": 16, "size": 32, "ch": 8, "enc_blocks": 1, "dec_blocks": 1,
                      "msg_ch": 4, "feat_ch": 4, "period": 16, "amplitude": 0.05}
        c["noise"]["pool"] = [{"name": "geometry", "inplace": True, "area": [0.3, 1.0], "angle": 2.5,
                               "angle_p": 0.5, "jitter": 0.05, "shift": 0.03, "after_p": 1.0,
                               "after": [{"name": "jpeg", "q_lo": 60, "q_hi": 90}]}]
        return c

    a = Trainer(cfg_for(tmp_path / "a"), progress=False)
    a.run(max_steps=3)
    a = Trainer(cfg_for(tmp_path / "a"), resume=True, progress=False)
    a.run()
    b = Trainer(cfg_for(tmp_path / "b"), progress=False)
    b.run()
    assert b.state["step"] == 6
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v, w), k


def test_init_partial_starts_a_larger_payload_from_a_smaller_model(tmp_path, photo_dir):
    """A 16-bit model from an 8-bit run: every tensor that fits is loaded, the message layers (the encoder's
    message projection, the decoder's last layer) keep their seeded initialisation and are listed beside the run;
    without ``init_partial`` the mismatch is a one-line error that names the option."""
    import json

    first = Trainer(tiny_cfg(tmp_path / "a", photo_dir, steps=2), progress=False)
    first.run()
    cfg = tiny_cfg(tmp_path / "b", photo_dir, steps=2)
    cfg["model"]["n_bits"] = 16
    cfg["train"]["init_from"] = str(tmp_path / "a" / first.cfg["name"])
    with pytest.raises(RobustHideError, match="does not fit this model .*init_partial: true"):
        Trainer(cfg, progress=False)
    cfg["train"]["init_partial"] = True
    warm = Trainer(cfg, progress=False)
    src, own = first.model.state_dict(), warm.model.state_dict()
    fresh = {k for k in own if own[k].shape != src[k].shape}
    assert fresh == {"encoder.msg_fc.weight", "decoder.fc.weight", "decoder.fc.bias"}
    assert all(torch.equal(own[k], src[k]) for k in own if k not in fresh)
    doc = json.loads((warm.run_dir / "init_fresh.json").read_text())
    assert set(doc["fresh"]) == fresh and doc["init_from"] == cfg["train"]["init_from"]
    warm.run()  # and it trains
    from safetensors.torch import save_file

    save_file({"other.weight": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    cfg = tiny_cfg(tmp_path / "c", photo_dir, steps=2)
    cfg["train"]["init_from"], cfg["train"]["init_partial"] = str(tmp_path / "other.safetensors"), True
    with pytest.raises(RobustHideError, match="no tensor of .* fits this model"):
        Trainer(cfg, progress=False)


def test_decoder_warmup_trains_the_decoder_alone_first(tmp_path, photo_dir):
    """``train.decoder_warmup_steps``: for that many steps only the decoder changes (the encoder, the fresh
    message projection included, stays as loaded), then every layer trains; the stage sits before any
    strategy's own stages."""
    cfg = tiny_cfg(tmp_path / "a", photo_dir, steps=4)
    cfg["train"]["decoder_warmup_steps"] = 2
    t = Trainer(cfg, progress=False)
    enc0 = {k: v.clone() for k, v in t.model.encoder.state_dict().items()}
    dec0 = {k: v.clone() for k, v in t.model.decoder.state_dict().items()}
    t.run(max_steps=2)
    assert all(torch.equal(v, enc0[k]) for k, v in t.model.encoder.state_dict().items())
    assert any(not torch.equal(v, dec0[k]) for k, v in t.model.decoder.state_dict().items())
    t.run()
    assert any(not torch.equal(v, enc0[k]) for k, v in t.model.encoder.state_dict().items())
    tsr = load_config({"train": {"strategy": "tsr", "steps": 10, "stage1_steps": 6, "decoder_warmup_steps": 3}})
    assert [build_strategy(tsr).at(s)[1] for s in (0, 2, 3, 5, 6, 9)] == ["decoder"] * 2 + ["all"] * 2 + ["decoder"] * 2
