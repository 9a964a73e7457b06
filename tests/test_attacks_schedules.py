"""Schedules: MBRS per-batch choice, paper 000 batch slices, composition, paper 003 mix-up / attack layer,
random-quality real codecs."""

from __future__ import annotations

import math

import pytest
import torch

from robusthide.attacks import (
    AttackError,
    BatchSlices,
    BrightnessContrast,
    Dropout,
    GaussianNoise,
    Identity,
    JpegMask,
    JpegMixup,
    Paper003Attack,
    PerBatchChoice,
    PseudoDifferentiable,
    RandomQuality,
    Sequential,
    slice_sizes,
)
from robusthide.attacks.schedules import PAPER003_KINDS
from robusthide.codecs import get_codec


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_per_batch_choice_frequencies_match_probabilities():
    probs = [0.5, 0.3, 0.2]
    layers = [Identity(), BrightnessContrast(0.1), BrightnessContrast(-0.1)]
    choice = PerBatchChoice(layers, probs, generator=gen(7))
    x = torch.full((1, 3, 4, 4), 0.5)
    n = 2000
    counts = [0, 0, 0]
    for _ in range(n):
        y = choice(x)
        i = choice.last_choice
        counts[i] += 1
        assert choice.last_layer is layers[i]
        assert torch.allclose(y, layers[i](x))  # the whole batch went through the chosen layer
    for c, p in zip(counts, probs):
        assert abs(c - n * p) < 3 * math.sqrt(n * p * (1 - p)), counts


def test_per_batch_choice_mbrs_setup_and_determinism():
    x = torch.rand(2, 3, 32, 32, generator=gen())
    def make():
        return PerBatchChoice([PseudoDifferentiable("jpeg:q=50"), JpegMask(), Identity()], [0.4, 0.3, 0.3],
                              generator=gen(3))
    a, b = make(), make()
    seen = set()
    for _ in range(20):
        assert torch.equal(a(x), b(x))
        assert a.last_choice == b.last_choice
        seen.add(a.last_choice)
    assert seen == {0, 1, 2}
    assert PerBatchChoice([Identity(), Identity()]).probs == [0.5, 0.5]


@pytest.mark.parametrize("bad", [[0.5, 0.5], [-0.1, 0.6, 0.5], [float("nan"), 0.5, 0.5], [0, 0, 0]])
def test_choice_bad_probabilities(bad):
    with pytest.raises(AttackError):
        PerBatchChoice([Identity(), Identity(), Identity()], bad)


def test_choice_weights_are_relative():
    c = PerBatchChoice([Identity(), Identity(), Identity()], [1, 4, 3])
    assert c.probs == [0.125, 0.5, 0.375] and c.weights == [1.0, 4.0, 3.0]


def test_schedules_need_modules():
    with pytest.raises(AttackError, match="non-empty"):
        PerBatchChoice([])
    with pytest.raises(AttackError, match="PseudoDifferentiable"):
        BatchSlices([lambda x: x])  # type: ignore[list-item]


def test_slice_sizes():
    assert slice_sizes(10, [0.5, 0.3, 0.2]) == [5, 3, 2]
    assert slice_sizes(16, [1 / 3] * 3) == [6, 5, 5]
    assert slice_sizes(2, [1 / 3] * 3) == [1, 1, 0]
    assert slice_sizes(15, [0.2] * 5) == [3] * 5
    assert slice_sizes(7, [0.25, 0.75]) == [2, 5]
    for n in range(0, 40):
        assert sum(slice_sizes(n, [0.1, 0.2, 0.3, 0.4])) == n


def test_batch_slices_apply_one_layer_per_slice_with_its_cover():
    x = torch.full((10, 3, 8, 8), 0.5)
    cover = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1).expand(10, 3, 8, 8) / 10
    layer = BatchSlices([BrightnessContrast(0.1), Dropout(1.0), Identity()], [0.5, 0.3, 0.2])
    y = layer(x, cover)
    assert layer.last_sizes == [5, 3, 2]
    assert torch.allclose(y[:5], torch.full_like(y[:5], 0.6))
    assert torch.equal(y[5:8], cover[5:8])  # the cover slice of those images
    assert torch.equal(y[8:], x[8:])


def test_batch_slices_paper000_codecs_and_gradient():
    x = torch.rand(5, 3, 32, 32, generator=gen()).requires_grad_(True)
    specs = ["jpeg:q=10", "jpeg:q=25", "jpeg:q=50", "jpeg:q=75", "jpeg:q=90"]
    layer = BatchSlices([PseudoDifferentiable(s) for s in specs])
    y = layer(x)
    for i, s in enumerate(specs):
        assert torch.equal(y[i:i + 1], get_codec(s)(x[i:i + 1].detach()).images)
    g = torch.randn(x.shape, generator=gen(1))
    y.backward(g)
    assert torch.equal(x.grad, g)


def test_sequential_composes_in_order():
    x = torch.rand(2, 3, 16, 16, generator=gen())
    a, b = BrightnessContrast(0.1), BrightnessContrast(0.0, 2.0)
    assert torch.allclose(Sequential(a, b)(x), b(a(x)))
    assert torch.allclose(Sequential([b, a])(x), a(b(x)))
    expect = "seq(brightness-contrast(brightness=0.1),brightness-contrast(contrast=2))"
    assert Sequential(a, b).spec() == expect


def test_mixup_weights_are_convex_and_output_is_the_mixture():
    x = torch.rand(2, 3, 32, 32, generator=gen())
    mix = JpegMixup(quality=(20, 80), generator=gen(4))
    assert mix.kinds == PAPER003_KINDS
    draws = set()
    for _ in range(10):
        y = mix(x)
        w, qs = mix.last_weights, mix.last_qualities
        assert len(w) == 3 and all(v >= 0 for v in w) and abs(sum(w) - 1) < 1e-12
        assert all(20 <= q <= 80 for q in qs)
        draws.add(tuple(round(v, 6) for v in w))
        ref = sum(wk * sim.simulate(x, qk) for wk, qk, sim in zip(w, qs, mix.sims))
        assert torch.allclose(y, ref, atol=1e-6)
    assert len(draws) == 10


def test_mixup_all_kinds_and_gradient():
    x = torch.rand(2, 3, 32, 32, generator=gen()).requires_grad_(True)
    mix = JpegMixup(kinds=["jpegmask", "jpegdrop", "jpegss", "diffjpeg"], generator=gen(1))
    y = mix(x)
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert mix(x, None).shape == x.shape
    with pytest.raises(AttackError, match="kinds"):
        JpegMixup(kinds=["jpeg"])
    with pytest.raises(AttackError, match="quality"):
        JpegMixup(quality=(0, 50))


def test_paper003_jpeg_always_present_others_after_q90():
    x = torch.rand(2, 3, 32, 32, generator=gen())
    layer = Paper003Attack(generator=gen(2))
    seen = set()
    for _ in range(60):
        y = layer(x)
        assert y.shape == x.shape
        seen.add(layer.last_choice)
        qs = layer.mixup.last_qualities
        assert len(qs) == 3  # the JPEG mix-up ran every time
        if layer.last_choice == "jpeg":
            assert all(10 <= q <= 90 for q in qs)
        else:
            assert qs == [90, 90, 90]
    assert seen == set(Paper003Attack.BRANCHES)
    # a branch with probability one: noise on top of the Q90 mix-up
    only_noise = Paper003Attack(probs=[0, 1, 0, 0, 0], noise=0.0, generator=gen(5))
    y = only_noise(x)
    w = only_noise.mixup.last_weights
    ref = sum(wk * sim.simulate(x, 90) for wk, sim in zip(w, only_noise.mixup.sims))
    assert torch.allclose(y, ref.clamp(0, 1), atol=1e-6)


def test_random_quality_real_codec():
    x = torch.rand(2, 3, 32, 32, generator=gen()).requires_grad_(True)
    layer = RandomQuality("jpeg:q=10..90", generator=gen(3))
    qs = []
    for _ in range(5):
        y = layer(x)
        q = layer.last_quality
        qs.append(q)
        assert 10 <= q <= 90 and layer.last_codec == f"jpeg:q={q}"
        assert torch.equal(y, get_codec(f"jpeg:q={q}")(x.detach()).images)
    assert len(set(qs)) > 1
    g = torch.randn(x.shape, generator=gen(1))
    layer(x).backward(g)
    assert torch.equal(x.grad, g)
    assert RandomQuality("jpeg:q=30..40,subsampling=444").spec() == "real(jpeg:q=30..40,subsampling=444)"
    with pytest.raises(AttackError, match="range"):
        RandomQuality("jpeg:q=50")
    with pytest.raises(AttackError, match="range"):
        RandomQuality("jpeg:q=10..20,subsampling=420..444")


def test_noise_in_a_schedule_uses_the_schedule_generator_independently():
    x = torch.full((1, 3, 16, 16), 0.5)
    a = PerBatchChoice([GaussianNoise(0.1, generator=gen(1)), Identity()], generator=gen(2))
    b = PerBatchChoice([GaussianNoise(0.1, generator=gen(1)), Identity()], generator=gen(2))
    for _ in range(5):
        assert torch.equal(a(x), b(x))


def test_choice_slices_draw_per_slice_and_replay():
    from robusthide.attacks import build_attack

    a = build_attack("choice(identity@1, blur(1)@1, uint8@2, slices=4)", seed=3)
    b = build_attack(a.spec(), seed=3)
    x = torch.rand(8, 3, 16, 16, generator=gen(0))
    for _ in range(5):
        assert torch.equal(a(x), b(x)) and a.last_choices == b.last_choices and len(a.last_choices) == 4
    assert a.spec() == "choice(identity@1,blur(sigma=1)@1,uint8@2,slices=4)"


def test_maybe_and_from_step():
    from robusthide.attacks import build_attack
    from robusthide.attacks.schedules import FromStep, Maybe

    m = build_attack("maybe(uint8, p=0.25)", seed=0)
    assert isinstance(m, Maybe) and m.spec() == "maybe(uint8,p=0.25)"
    x = torch.rand(2, 3, 8, 8, generator=gen(1)) * 0.5
    applied = 0
    for _ in range(400):
        y = m(x)
        applied += m.last_applied
        assert torch.equal(y, (x * 255).round() / 255 if m.last_applied else x)
    assert 70 < applied < 130  # about a quarter
    c = build_attack({"choice": ["identity", {"spec": "uint8", "from_step": 5}]})
    assert isinstance(c.layers[1], FromStep) and c.for_step(4).layers[0] is c.layers[0]
    assert len(c.for_step(4).layers) == 1 and c.for_step(5) is c


def test_layers_the_trainer_uses():
    from robusthide.attacks import build_attack

    x = torch.rand(4, 3, 64, 64, generator=gen(2), requires_grad=True)
    zero = build_attack("real(jpeg:q=50..50;grad=zero)", seed=0)
    ident = build_attack("real(jpeg:q=50..50)", seed=0)
    assert torch.equal(zero(x), ident(x)) and not zero(x).requires_grad and ident(x).requires_grad
    r = build_attack("resize(0.5, between=real(jpeg:q=50))")
    assert r(x).shape == x.shape and r.spec() == "resize(between=real(jpeg:q=50))"
    one = build_attack("cropresize(0.5, per_image=false)", seed=1)
    y = one(x)
    assert len(set(one.last_windows)) == 1 and y.shape == x.shape
    geo = build_attack("geometry(area=0.5..1, inplace=true, angle=0)", seed=1)
    assert geo(x).shape == x.shape and bool(geo.last_params.inplace)
