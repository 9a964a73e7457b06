"""MBRS's real JPEG passes no gradient to the encoder (paper 002 §3.2: dL_D/dtheta_E = 0) with
``noise.real_grad: zero``; the default ``identity`` is paper 000's pseudo-differentiable form."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robusthide.training.config import load_config
from robusthide.training.data import step_generator
from robusthide.training.noise_pool import real_codec
from robusthide.training.trainer import Trainer


def _trainer(tmp_path, photo_dir, real_grad: str) -> Trainer:
    cfg = load_config(None, [
        f"out={tmp_path}", f"name=g-{real_grad}", "seed=3",
        "model={arch: mbrs, n_bits: 16, size: 32, ch: 8, blocks: 1, disc_blocks: 1}",
        f"data={{train: {photo_dir}, split: false, max_side: 256}}",
        "train.strategy=mbrs", "train.steps=10", "train.batch=4", "train.full_size=[32]",
        "train.amp=false", "train.channels_last=false", "val.every=0", "ckpt.every=1000",
        "noise.q=50", "noise.simulated=[{name: jpegmask}]", f"noise.real_grad={real_grad}",
    ])
    return Trainer(cfg, progress=False)


def _message_grads_on_a_real_jpeg_batch(tr: Trainer) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Encoder and decoder gradients of the message loss alone, on the first mini-batch the MBRS pool sends
    through the real JPEG."""
    attack, trainable = tr.strategy.at(0)
    assert trainable == "all"
    for seed in range(200):
        g = step_generator(seed, 0)
        cover = tr.bank.sample(4, 32, g)
        bits = torch.randint(0, 2, (4, 16), generator=g).float()
        tr.model.zero_grad(set_to_none=True)
        _, logits, _ = tr.net(cover, bits, attack, g, False)
        if attack.last != ["jpeg"]:
            continue
        F.mse_loss(torch.sigmoid(logits), bits).backward()
        enc = [p.grad if p.grad is not None else torch.zeros_like(p) for p in tr.model.encoder.parameters()]
        dec = [p.grad if p.grad is not None else torch.zeros_like(p) for p in tr.model.decoder.parameters()]
        return enc, dec
    raise AssertionError("the MBRS pool never drew the real JPEG")


def _total(grads: list[torch.Tensor]) -> float:
    return sum(float(g.abs().sum()) for g in grads)


def test_zero_mode_gives_the_encoder_exactly_no_message_gradient(tmp_path, photo_dir):
    enc, dec = _message_grads_on_a_real_jpeg_batch(_trainer(tmp_path, photo_dir, "zero"))
    assert _total(enc) == 0.0                     # dL_D / dtheta_E = 0, exactly
    assert _total(dec) > 0                        # the decoder still learns from the real JPEG


def test_identity_mode_gives_the_encoder_a_message_gradient(tmp_path, photo_dir):
    enc, dec = _message_grads_on_a_real_jpeg_batch(_trainer(tmp_path, photo_dir, "identity"))
    assert _total(enc) > 0 and _total(dec) > 0


def test_zero_mode_still_trains_the_encoder_from_the_image_loss(tmp_path, photo_dir):
    tr = _trainer(tmp_path, photo_dir, "zero")
    before = [p.detach().clone() for p in tr.model.encoder.parameters()]
    for _ in range(4):
        tr.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, tr.model.encoder.parameters()))


def test_real_codec_forward_is_the_same_in_both_modes():
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    a, b = real_codec(x, "jpeg:q=50", "identity"), real_codec(x, "jpeg:q=50", "zero")
    assert torch.allclose(a, b, atol=1e-6, rtol=0)   # x + (y - x) may differ from y by one ulp
    assert a.requires_grad and not b.requires_grad
    with pytest.raises(ValueError, match="identity, zero"):
        real_codec(x, "jpeg:q=50", "none")


def test_bad_real_grad_is_a_config_error():
    with pytest.raises(Exception, match="noise.real_grad must be one of identity, zero"):
        load_config(None, ["noise.real_grad=half"])
