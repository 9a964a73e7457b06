"""Soft-decision detection (robusthide/payload/soft_detection.py): counts, validity under H0, power."""

import itertools
import math

import numpy as np
import pytest

from robusthide import RobustHideError
from robusthide.payload import (
    PayloadError,
    ball_volume,
    combined_p_value,
    decode_bits,
    encode_message,
    p_value,
    soft_ball_counts,
    soft_p_value,
    whitening_key,
)


def test_equal_reliabilities_count_the_hamming_ball():
    for e in (0, 1, 3, 7):
        counts = soft_ball_counts(np.ones(64), float(e), (64, 4))
        assert counts == [float(ball_volume(64, e)), float(ball_volume(64, min(e, 4)))]


def test_equal_reliabilities_give_the_hard_p_value():
    for e in (0, 1, 3, 7):
        wrong = np.zeros(64, bool)
        wrong[:e] = True
        soft, hard = soft_p_value(64, 0, np.full(64, 2.5), wrong), p_value(64, 0, e)
        told = soft_p_value(64, 0, np.full(64, 2.5), wrong, all_schemas=False)
        assert told == pytest.approx(p_value(64, 0, e, all_schemas=False), rel=1e-9, abs=0)
        if e <= 1:  # no weaker schema reaches evidence this strong: the hard p-value exactly
            assert soft == pytest.approx(hard, rel=1e-9, abs=0)
        else:  # the union over the 4 schemas is cruder than the hard test's, at most 4 times its own value
            assert hard <= soft <= 4 * told


def test_counts_bound_the_exact_enumeration_from_above_and_stay_close():
    rng = np.random.default_rng(0)
    m = rng.exponential(1.0, 12)
    sums = [(len(s), sum(m[list(s)])) for k in range(13) for s in itertools.combinations(range(12), k)]
    for tau in (0.3, 1.0, 2.5):
        for r in (2, 12):
            exact = sum(1 for k, w in sums if k <= r and w <= tau)
            loose = sum(1 for k, w in sums if k <= r and w <= tau * (1 + 12 / 1024))
            (got,) = soft_ball_counts(m, tau, (r,))
            assert exact <= got <= loose


def test_zero_and_negative_budgets():
    assert soft_ball_counts(np.array([0.0, 0.0, 1.0]), 0.0, (1, 3)) == [3.0, 4.0]
    assert soft_ball_counts(np.ones(5), -1.0, (5,)) == [0.0]
    with pytest.raises(ValueError, match="non-negative"):
        soft_ball_counts(np.array([1.0, -1.0]), 1.0, (2,))


def test_combined_p_value_is_a_weighted_bonferroni():
    assert combined_p_value(1e-7, 1e-3, 0.0) == 1e-7
    assert combined_p_value(1e-7, 1e-12, 0.5) == pytest.approx(2e-12, abs=0)
    assert combined_p_value(1e-7, 1e-3, 0.5) == pytest.approx(2e-7, abs=0)
    with pytest.raises(ValueError, match=r"soft share must be in \[0, 1\)"):
        combined_p_value(0.1, 0.1, 1.0)
    with pytest.raises(PayloadError, match=r"soft share must be in \[0, 1\)"):
        decode_bits(np.full(64, 0.9), soft_share=-0.1)


def test_random_words_stay_within_the_false_positive_bound():
    """H0: random signs with reliabilities of any law; P(p <= alpha) <= alpha for the combined decision."""
    rng = np.random.default_rng(1)
    ps = []
    for _ in range(1500):
        llr = rng.choice([-1, 1], 64) * rng.exponential(2.0, 64)
        ps.append(decode_bits(llr, logits=True, soft_share=0.5).p_value)
    ps = np.array(ps)
    for alpha in (0.01, 0.05, 0.2):
        assert (ps <= alpha).mean() <= alpha * 1.3 + 0.005


def test_errors_in_the_weak_bits_are_detected_by_the_soft_test_only():
    """A 128-bit `large` word with 8 errors (over its cap of 5) in its 8 least reliable bits."""
    rng = np.random.default_rng(2)
    word = encode_message(123456789, 128, schema="large").astype(float)
    llr = (2 * word - 1) * rng.uniform(4.0, 8.0, 128)
    weak = rng.choice(128, 8, replace=False)
    llr[weak] = -(2 * word[weak] - 1) * rng.uniform(0.05, 0.3, 8)  # wrong, and unsure about it
    hard = decode_bits(llr, logits=True)
    soft = decode_bits(llr, logits=True, soft_share=0.5)
    assert hard.message == soft.message == 123456789 and hard.corrected_errors == 8
    assert not hard.detected and hard.p_value > 1e-6
    assert soft.detected and soft.p_value < 1e-7
    # the same errors in confident bits: the soft test adds nothing, the decision stays the hard one's
    llr[weak] = -(2 * word[weak] - 1) * 6.0
    assert not decode_bits(llr, logits=True, soft_share=0.5).detected
    assert whitening_key(128).size == 128 and math.isfinite(soft.p_value)


def test_fpr_of_a_soft_test_model_decides_with_both_tests_and_says_so(tmp_path, photos):
    from PIL import Image

    from robusthide.watermark.fpr import measure_fpr, write_fpr

    for name, im in photos.items():
        Image.fromarray(im).save(tmp_path / f"{name}.png")
    res = measure_fpr("lean128-r6", str(tmp_path), None, n_photo=6, n_synth=2, progress=False, search="none")
    assert res["soft_share"] == 0.5 and res["false_positives"] == 0 and res["clean_images"] == 8
    write_fpr(res, str(tmp_path / "out" / "fpr"))
    assert "soft share 0.5 of the budget" in (tmp_path / "out" / "fpr.md").read_text()
    assert "soft_share" not in measure_fpr("default", str(tmp_path), None, n_photo=2, n_synth=0, progress=False,
                                           search="none")
    # a share given instead of the weights' own (measured before a model ships with it): said, and in the command
    given = measure_fpr("default", str(tmp_path), None, n_photo=2, n_synth=0, progress=False, search="none",
                        soft_share=0.5)
    assert given["soft_share"] == given["soft_share_given"] == 0.5
    write_fpr(given, str(tmp_path / "out" / "given"))
    md = (tmp_path / "out" / "given.md").read_text()
    assert "--soft-share 0.5 --out" in md and "as given by `--soft-share`, not the weights' own" in md
    with pytest.raises(RobustHideError, match="soft share must be in"):
        measure_fpr("default", str(tmp_path), None, n_photo=1, n_synth=0, progress=False, soft_share=1.0)
