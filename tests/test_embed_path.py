"""One embed path: the Watermarker marks every image (the evaluation and the video embedder call it), the
network returns a residual, the refinement is watermark/refine.py with a RefineConfig."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robusthide import RobustHideError
from robusthide.nets.watermark_model import WatermarkModel
from robusthide.watermark.refine import RefineConfig
from robusthide.watermark.watermarker import Watermarker


@pytest.fixture(scope="module")
def wm() -> Watermarker:
    return Watermarker.from_pretrained("default")


def test_the_network_has_no_refinement_and_returns_a_residual(wm):
    assert not any(hasattr(WatermarkModel, a) for a in ("refine", "reads", "refine_steps", "refine_codecs"))
    small = torch.rand(2, 3, wm.model.size, wm.model.size)
    bits = torch.randint(0, 2, (2, wm.n_bits)).float()
    with torch.no_grad():
        r = wm.model.small_residual(small, bits)
    assert r.shape == (2, 1, wm.model.size, wm.model.size) and float(r.abs().max()) < 0.1
    with pytest.raises(RobustHideError, match=r"moved to robusthide.watermark.refine: .*refine=3\)"):
        wm.model.embed(small, bits, refine=3)


def test_the_embed_path_applies_cap_and_strength(wm, photos):
    """The network has no strength: the Watermarker caps its residual for the strength (at_strength) and
    applies it; strength * the capped residual stays within the per-pixel cap."""
    import inspect

    from robusthide.watermark.refine import at_strength

    assert "strength" not in inspect.signature(WatermarkModel.small_residual).parameters
    assert not hasattr(WatermarkModel, "bound")
    small = wm._small(photos["coffee"][:128, :128])
    bits = torch.randint(0, 2, (1, wm.n_bits), generator=torch.Generator().manual_seed(0)).float()
    with torch.no_grad():
        raw, cap = wm.model.small_residual(small, bits), wm.model.cap(small)
        for s in (0.5, 1.0, 2.0):
            r = wm.small_residual(small, bits, s, refine=0)
            assert torch.equal(r, at_strength(raw, cap, s))
            assert bool((s * r.abs() <= cap * (1 + 1e-6)).all())
        assert bool((raw.abs() > cap).any())  # the cap does bind somewhere at strength 1


def test_the_evaluation_marks_with_the_watermarker(wm, photos):
    from robusthide.evaluation.matrix import ModelMethod

    covers = np.stack([photos["astronaut"][:96, :128], photos["coffee"][:96, :128]])
    bits = np.random.default_rng(0).integers(0, 2, (2, wm.n_bits))
    method = ModelMethod(wm.model)
    marked = method.embed(covers, bits, strength=1.0)
    for i in range(2):
        assert np.array_equal(marked[i], wm.embed_bits(covers[i], bits[i]))  # the model's refinement included


def test_refine_config_per_call(wm, photos):
    img = photos["astronaut"][:128, :128]
    bits = np.random.default_rng(1).integers(0, 2, wm.n_bits)
    cfg = wm.refine_config(3)
    assert isinstance(cfg, RefineConfig) and cfg.steps == 3 and cfg.boost == wm.model.refine_cfg["boost"]
    assert np.array_equal(wm.embed_bits(img, bits, refine=3), wm.embed_bits(img, bits, refine=cfg))
    assert np.array_equal(wm.embed_bits(img, bits, refine=0), wm.embed_bits(img, bits, refine=RefineConfig()))
    with pytest.raises(RobustHideError, match="refine must be a number of steps >= 0"):
        wm.embed_bits(img, bits, refine=-1)


def test_float_images_and_frames_share_apply_residual(wm, photos):
    x = torch.from_numpy(photos["coffee"][:64, :96].copy()).permute(2, 0, 1)[None].float() / 255
    bits = wm.bits_tensor(np.random.default_rng(2).integers(0, 2, wm.n_bits))
    r = wm.frame_residual(x, bits, 1.5, refine=0)
    marked = wm.embed_bits(x[0], bits[0].numpy(), strength=1.5, refine=0)  # a float tensor: the float path
    assert torch.equal(marked, wm.apply_residual(x, r, 1.5)[0])


def test_full_resolution_models_mark_through_the_watermarker():
    from robusthide.nets.registry import create_model

    torch.manual_seed(0)
    model = create_model("hidden", n_bits=8, size=32).eval()
    w = Watermarker(model)
    img = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    bits = np.arange(8) % 2
    out = w.embed_bits(img, bits, strength=0.5)
    with torch.no_grad():
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
        ref = model.embed(x, torch.as_tensor(bits, dtype=torch.float32)[None], strength=0.5)
    assert np.array_equal(out, (ref[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
