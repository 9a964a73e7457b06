"""Network architectures (HiDDeN, MBRS, lean, geo) and the adversarial loss: shapes, the training-system interface,
MBRS's fixed bugs, the strength factor, parameter counts, and that a few Adam steps learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robusthide import RobustHideError
from robusthide.nets.blocks import SEBottleneck, count_parameters
from robusthide.nets.registry import create_model, list_models
from robusthide.training.adversary import adversarial_losses, generator_parameters

S, L = 32, 16
TINY = {
    "lean": dict(n_bits=L, size=S, ch=8, enc_blocks=1, dec_blocks=1),
    "hidden": dict(n_bits=L, size=S, ch=8, enc_blocks=2, dec_blocks=2, disc_blocks=2),
    "mbrs": dict(n_bits=L, size=S, ch=8, blocks=2, disc_blocks=2),
    "geo": dict(n_bits=L, size=S, ch=8, enc_blocks=1, dec_blocks=1, msg_ch=4, feat_ch=4, period=16),
}
VARIANTS = {
    **{k: (k, v) for k, v in TINY.items()},
    # the encoder body at a quarter of the working size
    "lean-stride4": ("lean", dict(n_bits=L, size=S, ch=8, enc_blocks=1, dec_blocks=1, stem_stride=4)),
    # a decoder bit map of 16 channels (the last layer reads 16 values per map cell)
    "lean-map16": ("lean", dict(n_bits=L, size=S, ch=8, enc_blocks=1, dec_blocks=1, map_ch=16)),
    # 10 bits, not a square: only possible through the diffusion layers (64 = 8 x 8 map, k = 2)
    "mbrs-diffusion": ("mbrs", dict(n_bits=10, size=S, ch=8, blocks=2, disc_blocks=2, diffusion=True,
                                    diffusion_length=64)),
}
FULL_RES = ["hidden", "mbrs", "mbrs-diffusion"]


def make(variant: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    arch, kw = VARIANTS[variant]
    return create_model(arch, **kw)


@pytest.fixture(scope="module")
def covers(photos):
    """8 crops (two per photo and scale) of the fixture photos, 32 x 32, in [0, 1]."""
    out = []
    for im in photos.values():
        x = torch.from_numpy(im).permute(2, 0, 1).float().div(255)[None]
        for side in (128, 256):
            out.append(F.interpolate(x[..., 100:100 + side, 100:100 + side], size=(S, S), mode="area"))
        out.append(F.interpolate(x[..., :64, -64:], size=(S, S), mode="area"))
    return torch.cat(out)[:8].contiguous()


def bits_for(model, n: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 2, (n, model.n_bits), generator=torch.Generator().manual_seed(seed)).float()


def test_every_registered_arch_is_covered():
    assert set(list_models()) == set(TINY)


def test_lean_stem_stride_runs_the_body_at_a_quarter():
    m = make("lean-stride4")
    seen = []
    m.encoder.body.register_forward_hook(lambda mod, i, o: seen.append(tuple(o.shape[-2:])))
    m.embed(torch.rand(2, 3, S, S), torch.zeros(2, L))
    assert seen == [(S // 4, S // 4)]
    with pytest.raises(ValueError, match="stem_stride must be 2 or 4"):
        create_model("lean", n_bits=L, size=S, stem_stride=3)


def test_lean_map_ch_widens_the_bit_map_and_the_last_layer():
    m = make("lean-map16")
    x = torch.rand(2, 3, S, S)
    f = m.decoder.bit_map(x)
    assert f.shape == (2, 16, S // m.decoder.stride, S // m.decoder.stride)
    assert m.decoder.fc.in_features == f[0].numel() and torch.equal(m.decoder.read_map(f), m.decoder(x))
    assert make("lean").decoder.bit_map(x).shape[1] == 4  # the shipped models' map


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_interface_and_shapes(variant, covers):
    m = make(variant)
    n_bits = VARIANTS[variant][1]["n_bits"]
    assert m.n_bits == m.encoder.n_bits == m.decoder.n_bits == n_bits
    assert m.size == m.encoder.size == S
    x, b = covers[:3], bits_for(m, 3)
    marked, logits = m(x, b)
    assert marked.shape == x.shape and marked.dtype == torch.float32
    assert logits.shape == (3, n_bits)
    assert float(marked.detach().min()) >= 0 and float(marked.detach().max()) <= 1
    assert m.embed(x, b).shape == x.shape and m.decode(x).shape == (3, n_bits)
    r = m.residual(x, b)
    assert r.shape == ((3, 3, S, S) if variant in FULL_RES else (3, 1, S, S))
    # another (non-square) size: HiDDeN runs natively, MBRS and lean resize in and out
    y = F.interpolate(x, size=(48, 40), mode="bilinear", align_corners=False)
    assert m.embed(y, b).shape == (3, 3, 48, 40) and m.decode(y).shape == (3, n_bits)
    assert m.residual(y, b).shape[-2:] == (48, 40)


@pytest.mark.parametrize("variant", FULL_RES)
def test_residual_is_encoded_minus_cover_at_working_size(variant, covers):
    m = make(variant).eval()
    x, b = covers[:2], bits_for(m, 2)
    with torch.no_grad():
        assert torch.equal(m.residual(x, b), m.encoder(x, b) - x)


@pytest.mark.parametrize("variant", ["mbrs", "mbrs-diffusion"])
def test_mbrs_logits_take_both_signs(variant, covers):
    """MBRS's code ends the decoder in ConvBNReLU (outputs >= 0); ours ends in a plain convolution."""
    m = make(variant)
    with torch.no_grad():
        logits = m.decode(covers)  # training mode: BatchNorm on batch statistics
        assert float(logits.min()) < 0 < float(logits.max())
        m.eval()
        ref = m.decode(covers)
        last = m.decoder.inverse_diffusion if m.decoder.inverse_diffusion is not None else m.decoder.to_bits
        last.weight.neg_()
        last.bias.neg_()
        flipped = m.decode(covers)  # a linear last layer: flipping it flips every logit
    assert float(ref.abs().min()) > 0
    assert torch.allclose(flipped, -ref, atol=1e-6)


@pytest.mark.parametrize("variant", FULL_RES)
def test_strength_factor_scales_the_residual(variant, covers):
    """Paper 002 §3.3: I_en,S = I_co + S (I_en - I_co); exact wherever the result is not clipped to [0, 1]."""
    m = make(variant).eval()
    x, b = covers[:4], bits_for(m, 4)
    with torch.no_grad():
        r = m.residual(x, b)
        assert float(r.abs().mean()) > 1e-3
        assert torch.equal(m.embed(x, b, strength=0.0), x)
        for s in (0.05, 0.3, 1.0):
            d = m.embed(x, b, strength=s) - x
            inside = ((x + s * r) > 0) & ((x + s * r) < 1)
            assert float(inside.float().mean()) > 0.5
            assert torch.allclose(d[inside], s * r[inside], atol=1e-6, rtol=0)


@pytest.mark.parametrize("n_bits", [10, 30, 63])
def test_mbrs_non_square_message_needs_diffusion(n_bits):
    with pytest.raises(ValueError, match="perfect square"):
        create_model("mbrs", n_bits=n_bits, size=32, ch=8)
    with pytest.raises(RobustHideError, match="diffusion=True"):
        create_model("mbrs", n_bits=n_bits, size=32, ch=8)
    m = create_model("mbrs", n_bits=n_bits, size=32, ch=8, blocks=1, diffusion=True, diffusion_length=64)
    assert m.decode(torch.rand(2, 3, 32, 32)).shape == (2, n_bits)


def test_mbrs_size_must_be_a_power_of_two_times_the_message_side():
    for size in (40, 2):  # 40 / 4 = 10; 2 < sqrt(16)
        with pytest.raises(ValueError, match="power of two"):
            create_model("mbrs", n_bits=16, size=size, ch=8)
    with pytest.raises(ValueError, match="diffusion_length"):
        create_model("mbrs", n_bits=16, size=32, ch=8, diffusion=True, diffusion_length=60)
    with pytest.raises(ValueError, match="works at 32x32"):
        create_model("mbrs", n_bits=16, size=32, ch=8).decoder(torch.rand(1, 3, 64, 64))


def test_mbrs_geometry_matches_the_paper():
    """L = 64 at 128 x 128: 8 x 8 message map, 4 transposed convolutions, decoder widths 64 -> 1024."""
    m = create_model("mbrs")
    ups = [mod for mod in m.encoder.modules() if isinstance(mod, torch.nn.ConvTranspose2d)]
    assert len(ups) == 4 and all(u.kernel_size == (2, 2) and u.stride == (2, 2) for u in ups)
    strided = [mod for mod in m.decoder.modules() if isinstance(mod, SEBottleneck) and mod.left[0].stride == (2, 2)]
    assert [s.left[0].out_channels for s in strided] == [128, 256, 512, 1024]
    assert m.encoder.side == m.decoder.side == 8
    d = create_model("mbrs", n_bits=30, diffusion=True)
    assert d.encoder.diffusion.out_features == 256 and d.decoder.inverse_diffusion.in_features == 256
    assert d.encoder.side == 16


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_eval_mode_is_deterministic_and_batch_independent(variant, covers):
    m = make(variant)
    b = bits_for(m, 4)
    with torch.no_grad():
        m(covers[:4], b)  # one training-mode pass moves the BatchNorm running statistics
        m.eval()
        a1, l1 = m(covers[:4], b)
        a2, l2 = m(covers[:4], b)
        one, l_one = m(covers[:1], b[:1])
    assert torch.equal(a1, a2) and torch.equal(l1, l2)
    assert torch.allclose(one, a1[:1], atol=1e-5) and torch.allclose(l_one, l1[:1], atol=1e-4)


# Parameter counts of the paper-sized models (encoder, decoder, discriminator): a change of architecture
# shows up here. MBRS's decoder is large because its stride-2 stages double the width up to 1024 channels.
PARAMS = {
    "hidden": (dict(), (169_347, 242_556, 76_097)),
    "mbrs": (dict(), (561_292, 20_244_097, 113_153)),
    "mbrs-diffusion-30": (dict(n_bits=30, diffusion=True), (552_652, 5_246_495, 113_153)),
}


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_counts(name):
    kw, expected = PARAMS[name]
    m = create_model(name.split("-")[0], **kw)
    got = (count_parameters(m.encoder), count_parameters(m.decoder), count_parameters(m.discriminator))
    print(f"{name}: encoder {got[0]:,} decoder {got[1]:,} discriminator {got[2]:,} total {count_parameters(m):,}")
    assert got == expected
    assert count_parameters(m) == sum(got)


@pytest.mark.parametrize("variant", FULL_RES)
def test_discriminator(variant, covers):
    m = make(variant)
    assert m.discriminator(covers[:3]).shape == (3, 1)
    assert m.discriminator(torch.rand(2, 3, 48, 40)).shape == (2, 1)
    arch, kw = VARIANTS[variant]
    bare = create_model(arch, **{**kw, "discriminator": False}, amplitude=0.02)
    assert bare.discriminator is None
    assert count_parameters(bare) == count_parameters(m) - count_parameters(m.discriminator)


@pytest.mark.parametrize("variant", ["hidden", "mbrs"])
def test_adam_steps_lower_the_message_loss(variant, covers):
    """Identity channel, message MSE on sigmoid(logits) (the trainer's msg_loss: mse)."""
    m = make(variant, seed=2)
    b = bits_for(m, len(covers), seed=5)
    opt = torch.optim.Adam(generator_parameters(m), lr=1e-2)
    losses = []
    for _ in range(25):
        marked, logits = m(covers, b)
        loss = F.mse_loss(torch.sigmoid(logits), b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.5 * first, (first, last)


@pytest.mark.parametrize("variant", ["hidden", "mbrs"])
def test_adversarial_losses(variant, covers):
    m = make(variant)
    x, b = covers[:4], bits_for(m, 4)
    disc = m.discriminator
    g_params, d_params = list(generator_parameters(m)), list(disc.parameters())
    assert {id(p) for p in g_params}.isdisjoint(id(p) for p in d_params)
    assert len(g_params) + len(d_params) == len(list(m.parameters()))
    marked = m.embed(x, b)
    g_loss, d_loss = adversarial_losses(disc, x, marked)
    assert g_loss.shape == () and d_loss.shape == () and 0 < float(g_loss.detach()) and 0 < float(d_loss.detach())
    # d_loss reaches only the discriminator, g_loss reaches the encoder
    d_loss.backward(retain_graph=True)
    assert all(p.grad is None for p in m.encoder.parameters())
    assert all(p.grad is not None for p in d_params)
    g_loss.backward()
    assert sum(float(p.grad.abs().sum()) for p in m.encoder.parameters() if p.grad is not None) > 0
    # a few discriminator steps on fixed pairs lower its loss
    d_opt = torch.optim.Adam(d_params, lr=1e-2)
    marked = marked.detach() + 0.05  # an easy-to-spot "watermark"
    vals = []
    for _ in range(25):
        _, d_loss = adversarial_losses(disc, x, marked.clamp(0, 1))
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        vals.append(float(d_loss.detach()))
    assert vals[-1] < vals[0] - 0.1, vals


@pytest.mark.parametrize("variant", ["hidden", "mbrs"])
def test_bf16_autocast_keeps_a_float32_image(variant, covers):
    m = make(variant).eval()
    x, b = covers[:2], bits_for(m, 2)
    with torch.no_grad():
        ref = m.residual(x, b)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            marked, logits = m(x, b)
            r = m.residual(x, b)
    assert marked.dtype == torch.float32 and r.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert float((r - ref).abs().max()) < 0.1  # bf16 features, float32 output layer


@pytest.mark.parametrize("variant", ["hidden", "mbrs"])
def test_trainer_runs_the_arch(tmp_path, photo_dir, variant):
    from robusthide.training.config import load_config
    from robusthide.training.trainer import Trainer

    arch, kw = VARIANTS[variant]
    model = "{" + ", ".join(f"{k}: {v}" for k, v in {"arch": arch, **kw}.items()) + "}"
    cfg = load_config(None, [
        f"out={tmp_path}", "name=t", f"model={model}", f"data={{train: {photo_dir}, split: false, max_side: 256}}",
        "train.steps=2", "train.batch=4", f"train.full_size=[{S}]", "train.amp=false", "train.strategy=mbrs",
        "val.every=0", "ckpt.every=1000",
    ])
    tr = Trainer(cfg, progress=False)
    rows = [tr.step() for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
