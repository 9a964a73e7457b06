"""MBRS Table 2's distortions in ``robusthide evaluate``: crop-white, cropout, dropout, blur, gaussian."""

from __future__ import annotations

import numpy as np
import pytest

from robusthide import RobustHideError
from robusthide.evaluation.attacks_grammar import (
    DISTORTIONS,
    attack_runner,
    expand_attacks,
    validate_attacks,
)
from robusthide.evaluation.matrix import robustness_matrix

N, S = 4, 128


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    marked = rng.integers(1, 255, (N, S, S, 3), dtype=np.uint8)
    cover = rng.integers(1, 255, (N, S, S, 3), dtype=np.uint8)
    return marked, cover


def _shares(y: np.ndarray, marked: np.ndarray, cover: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: share of pixels equal to the marked image, to the cover, and white."""
    kept = (y == marked).all(-1).mean((1, 2))
    from_cover = (y == cover).all(-1).mean((1, 2))
    white = (y == 255).all(-1).mean((1, 2))
    return kept, from_cover, white


def _window(mask: np.ndarray) -> tuple[int, int]:
    """(h, w) of the True pixels, asserting they form one full rectangle."""
    rows, cols = np.where(mask.any(1))[0], np.where(mask.any(0))[0]
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert mask.sum() == h * w, "not a rectangle"
    return int(h), int(w)


def test_dropout_keeps_the_share_p_of_marked_pixels_and_takes_the_rest_from_the_cover(pair):
    marked, cover = pair
    y, nbytes = attack_runner("dropout:p=0.3")(marked, cover, seed=0)
    kept, from_cover, _ = _shares(y, marked, cover)
    assert np.all(np.abs(kept - 0.3) < 0.02), kept            # 16384 pixels: 3 sigma = 0.011
    assert np.allclose(kept + from_cover, 1.0)                 # every pixel is one or the other
    assert nbytes == [0] * N
    y7, _ = attack_runner("dropout:0.7")(marked, cover, seed=0)
    assert np.all(np.abs(_shares(y7, marked, cover)[0] - 0.7) < 0.02)


def test_cropout_keeps_one_window_of_area_p_the_rest_is_cover(pair):
    marked, cover = pair
    y, _ = attack_runner("cropout:p=0.3")(marked, cover, seed=1)
    kept, from_cover, _ = _shares(y, marked, cover)
    assert np.allclose(kept + from_cover, 1.0)
    for i in range(N):
        h, w = _window((y[i] == marked[i]).all(-1))
        assert abs(h * w / S**2 - 0.3) < 0.005 and abs(h - w) <= 1   # the image's aspect, area 0.3


def test_crop_white_keeps_a_window_of_area_p_and_pads_with_white(pair):
    marked, cover = pair
    y, _ = attack_runner("crop-white:p=0.035")(marked, cover, seed=2)
    kept, from_cover, white = _shares(y, marked, cover)
    assert np.allclose(kept + white, 1.0) and np.all(from_cover == 0)
    for i in range(N):
        assert _window((y[i] == marked[i]).all(-1)) == (24, 24)   # 576 / 16384 = 0.0352
    assert np.allclose(kept, 576 / S**2)
    # the cover is not needed
    y2, _ = attack_runner("crop-white:p=0.035")(marked, None, seed=2)
    assert np.array_equal(y, y2)


def test_gaussian_noise_has_the_asked_standard_deviation():
    grey = np.full((2, S, S, 3), 128, np.uint8)
    y, _ = attack_runner("gaussian:sigma=0.02")(grey, None, seed=0)
    d = y.astype(np.float64) - 128
    assert abs(d.std() - 0.02 * 255) < 0.1 and abs(d.mean()) < 0.05


def test_blur_keeps_constants_and_smooths():
    rng = np.random.default_rng(3)
    flat = np.full((1, 64, 64, 3), 77, np.uint8)
    assert np.array_equal(attack_runner("blur:sigma=2")(flat)[0], flat)
    noisy = rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    out = attack_runner("blur:sigma=2")(noisy)[0].astype(np.float64)
    assert out.std() < noisy.std() / 5


def test_draws_depend_on_seed_and_image_index_not_on_batching(pair):
    marked, cover = pair
    run = attack_runner("dropout:p=0.3")
    whole, _ = run(marked, cover, seed=5)
    assert np.array_equal(whole, run(marked, cover, seed=5)[0])
    one, _ = run(marked[2:3], cover[2:3], seed=5, index=[2])
    assert np.array_equal(one[0], whole[2])
    assert not np.array_equal(whole, run(marked, cover, seed=6)[0])


def test_distortions_chain_with_codecs(pair):
    marked, cover = pair
    y, nbytes = attack_runner("dropout:p=0.3|jpeg:q=50")(marked, cover, seed=0)
    assert y.shape == marked.shape and all(b > 0 for b in nbytes)


def test_the_one_grammar_sweeps_and_checks_distortions():
    specs = [a.spec for a in expand_attacks("dropout:p=0.1,0.3;cropout:0.3;gaussian:sigma=0.01,0.02;identity")]
    assert specs == ["dropout:p=0.1", "dropout:p=0.3", "cropout:0.3", "gaussian:sigma=0.01", "gaussian:sigma=0.02",
                     "identity"]
    assert expand_attacks("dropout:p=0.1,0.3")[1].value == 0.3
    validate_attacks(expand_attacks("crop-white:p=0.035;blur:2;dropout:p=0.3|jpeg:q=50"))
    assert set(DISTORTIONS) == {"crop-white", "cropout", "dropout", "gaussian", "blur"}


@pytest.mark.parametrize("spec, words", [
    ("dropout:q=0.3", "unknown parameter 'q' (accepted: p)"),
    ("dropout:p=1.5", "p must be a number in (0, 1], got '1.5'"),
    ("cropout:p=0", "p must be a number in (0, 1]"),
    ("gaussian:sigma=x", "sigma must be a number in [0, 1], got 'x'"),
    ("crop-white:p=0.1,fill=1", "takes one parameter, p"),
])
def test_bad_distortion_specs_are_one_line_user_errors(spec, words):
    with pytest.raises(RobustHideError) as e:
        validate_attacks(expand_attacks(spec))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_cover_mixing_distortions_need_the_cover(pair):
    with pytest.raises(RobustHideError, match="needs the cover"):
        attack_runner("cropout:p=0.3")(pair[0], None)


class _Recorder:
    """A uint8 method that adds 8 grey levels and records what its decoder receives."""

    uint8_io = True
    name = "recorder"
    n_bits = 8

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def embed(self, cover: np.ndarray, bits: np.ndarray, strength: float = 1.0) -> np.ndarray:
        return np.clip(cover.astype(np.int16) + 8, 0, 255).astype(np.uint8)

    def decode(self, images: np.ndarray, strength: float = 1.0, search: str = "none") -> np.ndarray:
        self.seen.append(images.copy())
        return np.zeros((len(images), self.n_bits), np.float32)


def test_evaluate_passes_the_cover_to_dropout_and_cropout(pair):
    _, cover = pair
    covers = list(np.clip(cover, 0, 200).astype(np.uint8))
    rec = _Recorder()
    res = robustness_matrix(rec, covers, "identity;dropout:p=0.3;cropout:p=0.3", seed=0, batch=2, progress=False)
    assert [r["attack"] for r in res["rows"]] == ["identity", "dropout:p=0.3", "cropout:p=0.3"]
    cov = np.stack(covers)
    marked = cov + 8
    # decode calls: per batch of 2, identity / dropout / cropout
    dropped = np.concatenate([rec.seen[1], rec.seen[4]])
    kept, from_cover, _ = _shares(dropped, marked, cov)
    assert np.all(np.abs(kept - 0.3) < 0.02) and np.allclose(kept + from_cover, 1.0)
    cropped = np.concatenate([rec.seen[2], rec.seen[5]])
    kept, from_cover, _ = _shares(cropped, marked, cov)
    assert np.all(np.abs(kept - 0.3) < 0.005) and np.allclose(kept + from_cover, 1.0)
    # PSNR attacked vs marked of dropout: 70 % of the pixels are 8 grey levels off
    row = res["rows"][1]
    assert abs(row["psnr_attacked"] - 10 * np.log10(255**2 / (0.7 * 64))) < 0.2
    assert row["bpp"] is None
