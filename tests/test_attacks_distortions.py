"""Classic distortions: each one's defining property, validation, gradients, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from robusthide import RobustHideError
from robusthide.attacks import (
    AttackError,
    BrightnessContrast,
    Crop,
    Cropout,
    CropResize,
    Dropout,
    GaussianBlur,
    GaussianNoise,
    Identity,
    MedianFilter,
    Resize,
)
from robusthide.attacks.distortions import window_size


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand_batch(n: int = 2, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=gen(seed))


LAYERS = {
    "identity": lambda: Identity(),
    "noise": lambda: GaussianNoise(0.05, generator=gen()),
    "blur": lambda: GaussianBlur(1.5),
    "median": lambda: MedianFilter(3),
    "resize": lambda: Resize(0.5),
    "resize-bicubic": lambda: Resize((0.4, 0.8), "bicubic", generator=gen()),
    "crop": lambda: Crop(0.5, generator=gen()),
    "cropresize": lambda: CropResize(0.6, generator=gen()),
    "cropout": lambda: Cropout(0.5, generator=gen()),
    "dropout": lambda: Dropout(0.3, generator=gen()),
    "brightness-contrast": lambda: BrightnessContrast(0.1, 1.3),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_shape_and_nonzero_finite_gradient(name):
    x = rand_batch().requires_grad_(True)
    cover = rand_batch(seed=1)
    y = LAYERS[name]()(x, cover)
    assert y.shape == x.shape
    (y * torch.randn(y.shape, generator=gen(2))).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", [n for n in LAYERS if n not in ("identity", "blur", "median", "resize",
                                                                   "brightness-contrast")])
def test_seeded_layers_are_deterministic(name):
    x, cover = rand_batch(), rand_batch(seed=1)
    assert torch.equal(LAYERS[name]()(x, cover), LAYERS[name]()(x, cover))


def test_identity_returns_input():
    x = rand_batch()
    assert Identity()(x) is x


def test_dropout_p0_is_x_p1_is_cover_and_rate():
    x, cover = rand_batch(), rand_batch(seed=1)
    assert torch.equal(Dropout(0.0)(x, cover), x)
    assert torch.equal(Dropout(1.0)(x, cover), cover)
    x = torch.zeros(4, 3, 64, 64)
    cover = torch.ones(4, 3, 64, 64)
    y = Dropout(0.3, generator=gen())(x, cover)
    # whole pixels (all three channels) come from the cover
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 0], y[:, 2])
    n = 4 * 64 * 64
    assert abs(y[:, 0].mean().item() - 0.3) < 3 * math.sqrt(0.3 * 0.7 / n)


def test_cover_required():
    x = rand_batch()
    for layer in (Dropout(0.3), Cropout(0.3)):
        with pytest.raises(AttackError, match="cover"):
            layer(x)
        with pytest.raises(AttackError, match="shape"):
            layer(x, rand_batch(h=16))


def test_crop_keeps_exactly_the_stated_area():
    x = rand_batch(3, 64, 64) * 0.5 + 0.25
    layer = Crop(0.25, fill="white", generator=gen())
    y = layer(x)
    for i, (t, left, h, w) in enumerate(layer.last_windows):
        assert (h, w) == (32, 32)
        assert torch.equal(y[i, :, t:t + h, left:left + w], x[i, :, t:t + h, left:left + w])
        outside = torch.ones(64, 64, dtype=torch.bool)
        outside[t:t + h, left:left + w] = False
        assert bool((y[i][:, outside] == 1.0).all())
        assert int((y[i, 0] != 1.0).sum()) == 32 * 32
    # windows differ between images (independent placement) and black fill works
    assert len({w[:2] for w in layer.last_windows}) > 1
    y = Crop(0.25, fill=0.0, generator=gen())(x)
    assert int((y[:, 0] != 0).sum()) == 3 * 32 * 32


@pytest.mark.parametrize("ratio", [0.035, 0.1, 0.3, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("hw", [(128, 128), (96, 160), (37, 53)])
def test_window_area_is_the_closest_integer_window(ratio, hw):
    h, w = hw
    hh, ww = window_size(h, w, ratio)
    assert 1 <= hh <= h and 1 <= ww <= w
    # for the chosen height, no width is closer to the target area
    assert abs(hh * ww - ratio * h * w) <= hh / 2 + 1e-9


def test_crop_random_aspect_windows_stay_inside():
    x = rand_batch(8, 48, 80)
    layer = Crop(0.3, aspect=(0.5, 2.0), generator=gen())
    shapes = set()
    for _ in range(10):
        layer(x)
        for t, left, h, w in layer.last_windows:
            assert 0 <= t and t + h <= 48 and 0 <= left and left + w <= 80
            assert abs(h * w - 0.3 * 48 * 80) <= max(h, w)
            shapes.add((h, w))
    assert len(shapes) > 3  # not HiDDeN's bug of always the minimum width


def test_cropout_area():
    x = torch.full((3, 3, 64, 64), 0.25)
    cover = torch.full((3, 3, 64, 64), 0.75)
    layer = Cropout(0.3, generator=gen())
    y = layer(x, cover)
    hh, ww = window_size(64, 64, 0.3)
    for i, (t, left, h, w) in enumerate(layer.last_windows):
        assert (h, w) == (hh, ww)
        assert int((y[i, 0] == 0.25).sum()) == h * w
        assert int((y[i, 0] == 0.75).sum()) == 64 * 64 - h * w
        assert bool((y[i, :, t:t + h, left:left + w] == 0.25).all())


def test_cropresize_is_a_real_crop_resized_back():
    x = rand_batch(2, 40, 40)
    assert torch.allclose(CropResize(1.0)(x), x, atol=1e-6)
    layer = CropResize(0.25, interpolation="nearest", generator=gen())
    y = layer(x)
    assert y.shape == x.shape
    t, left, h, w = layer.last_windows[0]
    assert (h, w) == (20, 20)
    # nearest x2 upscaling: every 2x2 output block is one pixel of the window
    assert torch.equal(y[0, :, ::2, ::2], x[0, :, t:t + 20, left:left + 20])
    assert torch.equal(y[0, :, 1::2, 1::2], x[0, :, t:t + 20, left:left + 20])


def test_noise_std_and_mean():
    x = torch.full((1, 3, 256, 256), 0.5)
    y = GaussianNoise(0.05, generator=gen())(x)
    d = y - x
    assert abs(d.std().item() - 0.05) < 0.05 * 0.02
    assert abs(d.mean().item()) < 0.001
    assert torch.equal(GaussianNoise(0.0)(x), x)
    # ranges are drawn once per forward, within the range
    layer = GaussianNoise((0.01, 0.03), generator=gen())
    stds = [(layer(x) - x).std().item() for _ in range(5)]
    assert all(0.0098 < s < 0.0305 for s in stds) and max(stds) - min(stds) > 1e-3
    assert float(GaussianNoise(0.5, generator=gen())(x).max()) <= 1.0
    assert float(GaussianNoise(0.5, clip=False, generator=gen())(x).max()) > 1.0


def test_blur_preserves_constant_images_and_smooths():
    c = torch.full((2, 3, 24, 24), 0.3)
    for layer in (GaussianBlur(2.0), GaussianBlur(0.8, kernel=5), GaussianBlur(3.0, kernel=31)):
        assert torch.allclose(layer(c), c, atol=1e-6)
    x = rand_batch()
    assert GaussianBlur(2.0)(x).std() < 0.5 * x.std()


def test_median_removes_salt_noise():
    x = torch.full((1, 3, 32, 32), 0.5)
    noisy = x.clone()
    noisy[..., 1::4, 2::4] = 1.0  # isolated salt pixels: at most one per 3x3 window
    noisy[..., 0, 0] = 1.0
    assert torch.equal(MedianFilter(3)(noisy), x)
    assert not torch.equal(GaussianBlur(1.0)(noisy), x)
    # a 5x5 window holds at most 4 of them: still removed
    y = MedianFilter(5)(noisy)
    assert torch.equal(y, x)


def test_resize_keep_size_and_content():
    x = rand_batch(2, 30, 50)
    for mode in ("nearest", "bilinear", "bicubic", "area"):
        assert Resize(0.5, mode)(x).shape == x.shape
    small = Resize(0.5, keep_size=False)(x)
    assert small.shape == (2, 3, 15, 25)
    c = torch.full((1, 3, 32, 32), 0.7)
    assert torch.allclose(Resize(0.37, "bicubic")(c), c, atol=1e-5)
    # a one-pixel checkerboard does not survive a x0.5 round trip
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None]) % 2).float().expand(1, 3, 32, 32)
    assert (Resize(0.5)(checker) - 0.5).abs().max() < 0.05


def test_brightness_contrast_formula():
    x = rand_batch()
    for b, c in ((0.0, 1.0), (0.1, 1.0), (-0.2, 1.5), (0.05, 0.5)):
        y = BrightnessContrast(b, c)(x)
        assert torch.allclose(y, ((x - 0.5) * c + 0.5 + b).clamp(0, 1), atol=1e-6)
    assert torch.equal(BrightnessContrast()(x), x)


@pytest.mark.parametrize("make,match", [
    (lambda: GaussianNoise(-0.1), "sigma"),
    (lambda: GaussianNoise((0.2, 0.1)), "sigma"),
    (lambda: GaussianBlur(0.0), "sigma"),
    (lambda: GaussianBlur(1.0, kernel=4), "kernel"),
    (lambda: MedianFilter(2), "kernel"),
    (lambda: Resize(0.0), "scale"),
    (lambda: Resize(0.5, "lanczos"), "interpolation"),
    (lambda: Crop(0.0), "ratio"),
    (lambda: Crop(1.5), "ratio"),
    (lambda: Crop(0.5, fill="red"), "fill"),
    (lambda: Crop(0.5, aspect=10), "aspect"),
    (lambda: Cropout(-1), "ratio"),
    (lambda: Dropout(1.2), "p"),
    (lambda: Dropout("x"), "p"),
    (lambda: BrightnessContrast(2.0), "brightness"),
    (lambda: BrightnessContrast(0.0, -1.0), "contrast"),
    (lambda: GaussianNoise(0.1, generator=42), "generator"),
])
def test_parameter_validation(make, match):
    with pytest.raises(AttackError, match=match) as e:
        make()
    assert isinstance(e.value, ValueError) and isinstance(e.value, RobustHideError)
    assert "\n" not in str(e.value)


def test_bad_input_batch():
    with pytest.raises(AttackError, match="N x 3 x H x W"):
        GaussianNoise(0.1)(torch.rand(3, 8, 8))
    with pytest.raises(AttackError, match="float"):
        Identity()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
