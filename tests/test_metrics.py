"""Metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data

from robusthide import RobustHideError
from robusthide.metrics import (
    MetricError,
    apd,
    ber,
    ber_per_image,
    bpp,
    ciede2000,
    delta_e2000_lab,
    delta_e_map,
    hidden_bpp,
    message_accuracy,
    psnr,
    psnr_y,
    quality_report,
    rsbpp,
    rsbpp_rate,
    ssim,
    word_accuracy,
)


@pytest.fixture(scope="module")
def astro() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[100:164, 180:260])  # 64 x 80 x 3 uint8


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0


# -- bits --------------------------------------------------------------------------------------------------

def test_ber_and_word_accuracy_by_hand():
    target = np.array([0, 1, 0, 0])
    pred = np.array([[0, 1, 1, 0], [1, 0, 1, 1], [0, 1, 0, 0]])
    assert ber_per_image(pred, target).tolist() == [0.25, 1.0, 0.0]
    assert ber(pred, target) == pytest.approx((0.25 + 1.0 + 0.0) / 3)
    assert word_accuracy(pred, target) == pytest.approx(1 / 3)
    probs = np.array([[0.2, 0.9, 0.6, 0.5]])               # p > 0.5 is a 1: -> 0 1 1 0
    assert ber(probs, target) == 0.25
    assert ber(probs, target, threshold=0.7) == 0.0
    logits = torch.tensor([[-2.0, 3.0, 0.1, -0.1]])         # -> 0 1 1 0
    assert ber(logits, target, logits=True) == 0.25
    assert ber(np.array([True, True, False, False]), target) == 0.25
    # per image then averaged: rows of different error counts weigh equally
    assert ber(np.array([[1, 1, 0, 0], [0, 1, 0, 0]]), np.array([[0, 1, 0, 0], [0, 1, 0, 0]])) == 0.125
    with pytest.raises(MetricError):
        ber(np.array([0, 2, 0, 0]), target)
    with pytest.raises(MetricError):
        ber(np.array([0, 1, 0]), target)
    with pytest.raises(MetricError):
        ber(np.array([0.2, 1.5, 0, 0]), target)


def test_message_accuracy():
    assert message_accuracy(["a", None, "b", "a"], "a") == 0.5
    assert message_accuracy([1, 2, b"x"], [1, 3, b"x"]) == pytest.approx(2 / 3)
    assert message_accuracy([1], [True]) == 0.0                  # types must match
    with pytest.raises(MetricError):
        message_accuracy([1, 2], [1])


# -- PSNR ------------------------------------------------------------------------------------------------

def test_psnr_off_by_one_is_48_13_db(astro):
    a = np.minimum(astro, 254)
    b = a + 1
    ref = 10 * math.log10(255**2)                                     # MSE = 1
    assert ref == pytest.approx(48.1308, abs=1e-4)
    assert psnr(a, b) == pytest.approx(ref, abs=1e-9)
    assert psnr_y(a, b) == pytest.approx(ref, abs=1e-9)               # Y moves by 0.299+0.587+0.114 = 1
    studio = ref + 20 * math.log10(255 / 219)                         # studio Y moves by 219/255
    assert psnr_y(a, b, luma_range="studio") == pytest.approx(studio, abs=1e-9)
    assert studio == pytest.approx(49.4527, abs=1e-4)
    # float tensors N x 3 x H x W in [0, 1] are rounded to uint8 first
    ta, tb = _nchw(a[None]), _nchw(b[None])
    assert psnr(ta, tb) == pytest.approx(ref, abs=1e-9)
    assert psnr(ta, ta + 0.4 / 255) == math.inf                        # rounds back to the same image


def test_psnr_per_image_then_mean(astro):
    a = np.minimum(np.stack([astro, astro]), 253)
    b = a + np.array([1, 2], np.uint8)[:, None, None, None]           # MSE 1 and 4
    v = psnr(a, b, reduction="none")
    assert v == pytest.approx([48.1308, 42.1102], abs=1e-4)
    assert psnr(a, b) == pytest.approx(np.mean(v))
    # Y on a single-channel change: dY = 0.587 * 10 on G only
    c = a.copy()
    c[..., 1] = np.clip(a[..., 1].astype(int) + 10, 0, 255)
    mask = a[..., 1] <= 245
    c2 = np.where(mask[..., None], c, a)
    dy2 = (0.587 * 10) ** 2 * mask.reshape(2, -1).mean(axis=1)
    assert psnr_y(a, c2, reduction="none") == pytest.approx(10 * np.log10(255**2 / dy2), abs=1e-9)
    with pytest.raises(MetricError, match="shape"):
        psnr(a, b[:, :10])


# -- SSIM ------------------------------------------------------------------------------------------------

def test_ssim_hand_cases(astro):
    assert ssim(astro, astro) == pytest.approx(1.0)
    # constant images: sigma = 0, so SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), C1 = (0.01 * 255)^2
    a, b = np.full((32, 32, 3), 100, np.uint8), np.full((32, 32, 3), 110, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-12)
    assert ssim(a, b) == pytest.approx(0.995476, abs=1e-6)
    noisy = np.clip(astro.astype(int) + np.random.default_rng(0).integers(-20, 21, astro.shape), 0, 255)
    v = ssim(astro, noisy.astype(np.uint8))
    assert 0.3 < v < 0.95
    assert ssim(_nchw(astro[None]), _nchw(noisy.astype(np.uint8)[None])) == pytest.approx(v)
    with pytest.raises(MetricError, match="11 x 11"):
        ssim(a[:8, :8], b[:8, :8])


# -- CIEDE2000 ---------------------------------------------------------------------------------------------

def test_ciede2000_sharma_pairs_and_identity(astro):
    # Sharma, Wu & Dalal (2005) test data, pairs 1-3
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425),
             ((50, 3.1571, -77.2803), (50, 0, -82.7485), 2.8615),
             ((50, 2.8361, -74.0200), (50, 0, -82.7485), 3.4412)]
    for l1, l2, ref in pairs:
        assert delta_e2000_lab(l1, l2) == pytest.approx(ref, abs=5e-5)
    c = ciede2000(astro, astro)
    assert c["mean"] == 0.0 and c["p99"] == 0.0


def test_ciede2000_mean_and_p99_by_hand():
    from skimage.color import rgb2lab

    a = np.full((10, 10, 3), 128, np.uint8)
    b = a.copy()
    b[:5] = (140, 120, 128)                                     # half of the pixels change colour
    d = float(delta_e2000_lab(rgb2lab(a[:1, :1]), rgb2lab(b[:1, :1]))[0, 0])
    assert d > 1
    c = ciede2000(a, b)
    assert c["mean"] == pytest.approx(d / 2)
    assert c["p99"] == pytest.approx(d)
    assert delta_e_map(a, b).shape == (1, 10, 10)


# -- APD -------------------------------------------------------------------------------------------------

def test_apd_hand_case():
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.array([[[0, 3, 6], [9, 0, 0]], [[255, 0, 0], [0, 0, 3]]], np.uint8)
    assert apd(a, b) == pytest.approx((3 + 6 + 9 + 255 + 3) / 12)  # 23.0, i.e. 23.0/255 in the paper's units
    assert apd(b, a) == apd(a, b)                                   # symmetric, no uint8 wrap-around
    assert apd(np.stack([a, a]), np.stack([a, b]), reduction="none").tolist() == [0.0, 23.0]


# -- rates ----------------------------------------------------------------------------------------------

def test_bpp_and_rsbpp_hand_cases():
    assert bpp(12288, 256, 256) == 1.5
    assert bpp([12288, 24576], 256, 256, reduction="none").tolist() == [1.5, 3.0]
    assert hidden_bpp(64, 256, 256) == 64 / 65536
    # paper 004, Table 1 (CelebA, hyperbase_3): accuracy 66.40 %, bpp 1.386, D = 1 bit -> RSBPP rate 0.237
    r = rsbpp(accuracy=0.6640)
    assert r == pytest.approx(0.328)
    assert rsbpp_rate(r, 1.386) == pytest.approx(0.2367, abs=1e-4)
    # hyperbase_4: 71.93 %, 1.748 bpp -> 0.251
    assert rsbpp_rate(rsbpp(accuracy=0.7193), 1.748) == pytest.approx(0.251, abs=5e-4)
    # FNNS (float32 = 96 bpp, 100 %) -> 0.010
    assert rsbpp_rate(rsbpp(ber=0.0), 96.0) == pytest.approx(0.0104, abs=1e-4)
    assert rsbpp(ber=0.1, bits_per_pixel=hidden_bpp(64, 128, 128)) == pytest.approx(0.8 * 64 / 16384)
    assert rsbpp(ber=0.7) == 0.0
    for bad in (lambda: rsbpp(), lambda: rsbpp(ber=0.1, accuracy=0.9), lambda: rsbpp(ber=1.5),
                lambda: rsbpp_rate(0.3, 0.0), lambda: bpp(10, 0, 5)):
        with pytest.raises(RobustHideError):
            bad()


def test_quality_report_and_input_forms(astro):
    b = np.clip(astro.astype(int) + 3, 0, 255).astype(np.uint8)
    rep = quality_report(astro, b)
    assert set(rep) == {"psnr", "psnr_y", "ssim", "ciede2000_mean", "ciede2000_p99", "apd"}
    assert rep["apd"] == pytest.approx(np.abs(astro.astype(int) - b).mean())
    rep_t = quality_report(_nchw(astro[None]), _nchw(b[None]))
    assert rep_t == pytest.approx(rep)
    with pytest.raises(MetricError):
        psnr(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))
