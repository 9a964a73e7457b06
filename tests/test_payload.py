"""Payload coding: round trips, BCH correction, schema auto-detection, whitening, calibrated p-values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from robusthide import RobustHideError
from robusthide.payload import (
    DEFAULT_FPR,
    KINDS,
    SUPPORTED_N,
    PayloadError,
    ball_volume,
    binomial_tail_p_value,
    capacity,
    confidence_from_p,
    decode_bits,
    default_schema,
    detect,
    encode_message,
    false_accept_probability,
    get_schema,
    list_schemas,
    max_detectable_errors,
    p_value,
    verify_bits,
    whitening_key,
)
from robusthide.payload.codec import _bch_decode
from robusthide.payload.detection import soft_decodable
from robusthide.payload.osd import most_reliable_basis, ordered_statistics_decode
from robusthide.payload.schemas import HEADER_BITS, bch_for


def _max_messages(n: int, sid: int, rng: np.random.Generator) -> list[tuple[object, str, object]]:
    """(message, kind, expected decoded message) at full capacity and a few edge cases."""
    c = capacity(n, sid)
    out: list[tuple[object, str, object]] = [(c["max_int"], "int", c["max_int"]), (0, "int", 0),
                                              (b"", "bytes", b""), ("", "text", ""), ("", "hex", "")]
    nb = c["max_bytes"]
    if nb:
        raw = bytes(rng.integers(0, 256, nb, dtype=np.uint8).tolist()[:-1] + [0])  # ends in a zero byte
        out.append((raw, "bytes", raw))
    nh = c["max_hex_digits"]
    if nh:
        h = "".join(rng.choice(list("0123456789ABCDEF"), nh))
        out += [(h, "hex", h.lower()), ("0x" + h[: max(1, nh - 1)], "hex", h[: max(1, nh - 1)].lower())]
    na = c["max_text_ascii_chars"]
    if na:
        t = "".join(rng.choice(list("Hello, World! ~\x7f"), na))
        out.append((t, "text", t))
    nu = c["max_text_utf8_bytes"]
    if nu >= 2:
        t = "é" * (nu // 2)
        out.append((t, "text", t))
    return out


# -- schemas -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", SUPPORTED_N)
def test_schema_table_is_consistent_and_default_meets_design_fpr(n):
    schemas = list_schemas(n)
    assert [s.id for s in schemas] == [0, 1, 2, 3]
    assert default_schema(n) == 0 and get_schema(n).name == "robust"
    for s in schemas:
        assert (1 << s.m) - 1 >= n > (1 << (s.m - 1)) - 1          # smallest field
        assert bch_for(s).ecc_bits == s.ecc_bits and bch_for(s).t == s.t
        assert s.k + s.ecc_bits == n and HEADER_BITS + s.reserved_bits + s.data_bits == s.k
    ts = [s.t for s in schemas]
    ds = [s.data_bits for s in schemas]
    assert ts == sorted(ts, reverse=True) and ds == sorted(ds)       # data traded for correction
    robust = schemas[0]
    # design target: the default schema's decode at FULL correction is still a <= 1e-6 detection
    assert p_value(n, 0, robust.t) <= DEFAULT_FPR
    for s in schemas:
        cap = max_detectable_errors(n, s)
        # past t only where ordered-statistics decoding may return a codeword at any distance
        assert (cap > s.t) == soft_decodable(s) and -1 <= cap <= s.n_bits
        if cap >= 0:
            assert p_value(n, s, cap) <= DEFAULT_FPR
        if cap < s.t or soft_decodable(s):
            assert p_value(n, s, cap + 1) > DEFAULT_FPR
    assert max_detectable_errors(n, 0) == (42 if n == 256 else robust.t)  # 256: the p-value, not BCH, caps it


def test_p_value_formula_by_hand():
    s = get_schema(64, 0)  # BCH(64, 15, t=7), 2 schema bits checked: 2^13 accepted codewords
    v7 = 1 + 64 + 2016 + 41664 + 635376 + 7624512 + 74974368 + 621216192
    assert ball_volume(64, 7) == v7 == 704494193
    assert false_accept_probability(s, 7) == pytest.approx(2**13 * v7 / 2**64, rel=1e-12)
    assert p_value(64, 0, 7, all_schemas=False) == pytest.approx(3.129e-7, rel=1e-3, abs=0)
    assert p_value(64, 0, 0, all_schemas=False) == 2.0**-51
    # searching 4 schemas: sum over schemas of their chance of evidence at least as strong
    g = p_value(64, 0, 7)
    assert false_accept_probability(s, 7) < g <= 4 * false_accept_probability(s, 7)
    expected = 0.0
    for sj in list_schemas(64):
        qs = [false_accept_probability(sj, e) for e in range(sj.t + 1)]
        expected += max([q for q in qs if q <= false_accept_probability(s, 7)], default=0.0)
    assert g == pytest.approx(expected, rel=1e-12)
    assert binomial_tail_p_value(64, 64) == 2.0**-64
    assert binomial_tail_p_value(63, 64) == 65 * 2.0**-64
    assert binomial_tail_p_value(32, 64) == pytest.approx(stats.binom.sf(31, 64, 0.5), rel=1e-12, abs=0)


def test_confidence_scale():
    assert confidence_from_p(1.0) == 0.0
    assert confidence_from_p(DEFAULT_FPR) == pytest.approx(0.5)
    assert confidence_from_p(1e-12) == pytest.approx(1.0) and confidence_from_p(1e-30) == 1.0
    assert confidence_from_p(1e-3) < confidence_from_p(1e-7)


def test_capacity_dict():
    c = capacity(64)
    json.dumps(c)
    got = (c["schema"], c["schema_name"], c["data_bits"], c["bch_t"], c["ecc_bits"])
    assert got == (0, "robust", 11, 7, 49)
    assert (c["max_int"], c["max_bytes"], c["max_hex_digits"], c["max_text_ascii_chars"]) == (2047, 1, 2, 1)
    c3 = capacity(64, "max")
    assert (c3["data_bits"], c3["bch_t"], c3["max_bytes"], c3["max_text_ascii_chars"]) == (39, 3, 4, 5)
    assert capacity(100, 1)["data_bits"] == 47 and capacity(256, 0)["max_text_ascii_chars"] == 10


# -- round trips -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [64, 100, 256])
@pytest.mark.parametrize("sid", [0, 1, 2, 3])
def test_round_trip_every_kind(n, sid):
    rng = np.random.default_rng(n * 10 + sid)
    msgs = _max_messages(n, sid, rng)
    assert {k for _, k, _ in msgs} == set(KINDS)
    for msg, kind, want in msgs:
        bits = encode_message(msg, n, schema=sid, kind=kind)
        assert bits.dtype == np.uint8 and bits.shape == (n,) and set(np.unique(bits)) <= {0, 1}
        r = decode_bits(bits)  # schema auto-detected
        assert r.ok, (msg, kind, r.reason)
        assert (r.message, r.kind, r.schema, r.corrected_errors) == (want, kind, sid, 0)
        assert type(r.message) is type(want)
        assert r.p_value == p_value(n, sid, 0)
        assert r.detected == (max_detectable_errors(n, sid) >= 0)


@pytest.mark.parametrize("n", [48, 96, 128])
def test_round_trip_other_sizes(n):
    for s in list_schemas(n):
        c = capacity(n, s.id)
        for msg, kind in [(c["max_int"], "int"), ("Z" * c["max_text_ascii_chars"], "text"),
                          ("a" * c["max_hex_digits"], "hex")]:
            r = decode_bits(encode_message(msg, n, schema=s.id, kind=kind))
            assert (r.ok, r.message, r.schema, r.corrected_errors) == (True, msg, s.id, 0)


def test_kind_inference_and_conversions():
    assert decode_bits(encode_message("hi", 64, schema=3)).kind == "text"
    assert decode_bits(encode_message(b"\x00\x01", 64, schema=3)).message == b"\x00\x01"
    assert decode_bits(encode_message(np.int64(7), 64)).message == 7
    assert decode_bits(encode_message("0x1F", 64, schema=3, kind="int")).message == 31  # CLI-style ints
    assert decode_bits(encode_message("ab", 64, schema=3, kind="bytes")).message == b"ab"
    assert decode_bits(encode_message(b"\xab", 64, schema=0, kind="hex")).message == "ab"
    assert decode_bits(encode_message("de ad", 64, schema=3, kind="hex")).message == "dead"


def test_input_forms_of_bits():
    import torch

    bits = encode_message(1234, 100)
    forms = (bits.tolist(), bits.astype(bool), bits[None], torch.from_numpy(bits), bits.astype(np.float32))
    for form in forms:
        r = decode_bits(form, 100)
        assert (r.ok, r.message) == (True, 1234)
    logits = np.where(bits == 1, 3.0, -3.0)
    assert decode_bits(logits, logits=True).message == 1234


# -- errors ----------------------------------------------------------------------------------------------

def test_too_long_message_names_the_limit():
    cases = [("xy", "text", "at most 1 ASCII characters"), (2048, "int", "2047"),
             (b"ab", "bytes", "at most 1 bytes"), ("abc", "hex", "at most 2 hex digits"),
             ("éé", "text", "at most 1 UTF-8 bytes")]
    for msg, kind, limit in cases:
        with pytest.raises(PayloadError) as ei:
            encode_message(msg, 64, kind=kind)
        text = str(ei.value)
        assert limit in text and "\n" not in text and "schema 0 'robust'" in text and "11 data bits" in text
        assert isinstance(ei.value, RobustHideError)
    with pytest.raises(PayloadError, match="at most 5 ASCII characters"):
        encode_message("toolong", 64, schema="max")


def test_bad_inputs_are_one_line_errors():
    bad = [
        (lambda: encode_message(1, 65), "unsupported payload size 65 bits; supported: 48, 64, 96, 100, 128"),
        (lambda: encode_message(-1, 64), ">= 0"),
        (lambda: encode_message("xyz", 64, schema=3, kind="hex"), "not a hex string"),
        (lambda: encode_message(True, 64), "bool"),
        (lambda: encode_message(1.5, 64), "unsupported message type"),
        (lambda: encode_message(1, 64, kind="uuid"), "unknown message kind"),
        (lambda: encode_message(1, 64, schema="huge"), "unknown schema"),
        (lambda: encode_message(1, 64, schema=4), "unknown schema"),
        (lambda: decode_bits(np.zeros(63, np.uint8)), "unsupported payload size 63"),
        (lambda: decode_bits(np.zeros(64, np.uint8), 100), "expected 100 payload bits"),
        (lambda: decode_bits(np.full(64, 2)), "0 or 1"),
        (lambda: decode_bits(np.full(64, 1.5)), "probabilities"),
        (lambda: decode_bits(np.zeros((2, 64))), "1-D"),
    ]
    for fn, text in bad:
        with pytest.raises(PayloadError) as ei:
            fn()
        assert text in str(ei.value) and "\n" not in str(ei.value)


# -- error correction ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [64, 100, 256])
def test_bch_corrects_up_to_t_and_reports_beyond(n):
    rng = np.random.default_rng(n)
    for s in list_schemas(n):
        failures_beyond = 0
        trials = 12
        for i in range(trials):
            msg = int(rng.integers(0, 1 << min(s.data_bits, 62)))
            cw = encode_message(msg, n, schema=s.id)
            e = int(rng.integers(0, s.t + 1)) if i % 2 else s.t
            noisy = cw.copy()
            noisy[rng.choice(n, e, replace=False)] ^= 1
            r = decode_bits(noisy)
            assert (r.ok, r.message, r.schema, r.corrected_errors) == (True, msg, s.id, e)
            assert r.p_value == p_value(n, s.id, e)
            assert r.detected == (e <= max_detectable_errors(n, s.id))
            # t + 1 errors: beyond the bounded-distance decoder, never the right message under this schema
            worse = cw.copy()
            worse[rng.choice(n, s.t + 1, replace=False)] ^= 1
            r2 = decode_bits(worse, schema=s.id)
            assert not (r2.ok and r2.message == msg)
            failures_beyond += not r2.ok
            if not r2.ok:
                assert r2.message is None and r2.corrected_errors is None and r2.reason
        assert failures_beyond >= trials * 2 // 3, (s, failures_beyond)


def test_forced_wrong_schema_fails():
    bits = encode_message(5, 64, schema=0)
    assert not decode_bits(bits, schema=1).ok
    assert decode_bits(bits, schema=0).message == 5
    assert decode_bits(bits, schema=0).p_value == p_value(64, 0, 0, all_schemas=False)


def test_chase_soft_decoding_recovers_beyond_t():
    rng = np.random.default_rng(7)
    for n, extra in [(64, 2), (256, 3)]:
        s = get_schema(n, 0)
        cw = encode_message(17, n)
        wrong = rng.choice(n, s.t + extra, replace=False)
        probs = np.where(cw == 1, 0.97, 0.03)
        probs[wrong] = np.where(cw[wrong] == 1, 0.03, 0.97)        # t confident errors ...
        weak = wrong[: extra]
        probs[weak] = np.where(cw[weak] == 1, 0.45, 0.55)          # ... and `extra` unreliable ones
        hard = (probs > 0.5).astype(np.uint8)
        r_hard = decode_bits(hard)
        assert not (r_hard.ok and r_hard.message == 17 and r_hard.schema == 0)
        r = decode_bits(probs, chase_bits=4)
        assert (r.ok, r.message, r.schema, r.soft_decoded) == (True, 17, 0, True)
        assert r.corrected_errors == s.t + extra                    # distance from the hard decision
        assert r.p_value == p_value(n, 0, s.t + extra, extra_radius=4)
        assert r.detected == (r.p_value <= DEFAULT_FPR)
    assert r.detected  # 256 bits: t + 3 errors is still overwhelming evidence
    assert not decode_bits(probs, chase_bits=0).soft_decoded


def test_ordered_statistics_decoding_reads_far_beyond_t_where_the_errors_are_unreliable():
    rng = np.random.default_rng(3)
    s = get_schema(256, 0)
    m = (1 << 71) + 12345                                  # 72 data bits: the 256-bit default's payload
    cw = encode_message(m, 256)
    sign = cw.astype(np.float64) * 2 - 1
    wrong = rng.choice(256, 34, replace=False)             # 34 errors: BCH corrects 21, Chase 4 more
    logits = sign * rng.uniform(2, 6, 256)
    logits[wrong] = -sign[wrong] * rng.uniform(0.05, 1.5, wrong.size)
    assert not decode_bits((logits > 0).astype(np.uint8)).ok
    r = decode_bits(logits, logits=True)
    assert (r.detected, r.message, r.schema, r.soft_decoded, r.corrected_errors) == (True, m, 0, True, 34)
    assert r.p_value == p_value(256, s, 34, extra_radius=4) and r.p_value < 1e-11
    assert max_detectable_errors(256, s, r.p_value) == 34
    # the 64-bit codes keep their bounded-distance decoding: the p-value caps them below t
    assert not any(soft_decodable(x) for n in (48, 64, 96, 100, 128) for x in list_schemas(n))


def test_ordered_statistics_decoder_finds_the_codeword_and_its_order_matters():
    rng = np.random.default_rng(0)
    gen = rng.integers(0, 2, (12, 40)).astype(np.uint8)
    cw = (rng.integers(0, 2, 12) @ gen % 2).astype(np.uint8)
    rel = rng.uniform(1, 2, 40)
    order = np.argsort(-rel, kind="stable")
    y = cw.copy()
    basis_pos = order[most_reliable_basis(gen, order)[1]]
    y[basis_pos[:2]] ^= 1                                     # two errors among the most reliable basis
    assert (ordered_statistics_decode(y, rel, gen, 2) == cw).all()
    assert not (ordered_statistics_decode(y, rel, gen, 1) == cw).all()
    with pytest.raises(ValueError, match="order must be 0, 1 or 2"):
        ordered_statistics_decode(y, rel, gen, 3)


# -- whitening and detection on random words ---------------------------------------------------------------

def test_whitening_layout_is_frozen_and_hides_zero_messages():
    assert "".join(map(str, whitening_key(64)[:16])) == "0011111111111111"
    assert "".join(map(str, encode_message("A", 64))) == (
        "0001101111100110100010111111110000001000110110110010001100001011")
    for n in SUPPORTED_N:
        for s in list_schemas(n):
            bits = encode_message(0, n, schema=s.id)
            assert 0.2 < bits.mean() < 0.8
        for const in (np.zeros(n, np.uint8), np.ones(n, np.uint8)):
            assert not decode_bits(const).detected


def test_random_soft_words_under_ordered_statistics_decoding_keep_valid_p_values():
    rng = np.random.default_rng(11)
    res = [decode_bits(rng.normal(0, 3, 256), logits=True, threshold=0.05) for _ in range(200)]
    assert not any(r.ok and r.p_value <= DEFAULT_FPR for r in res)
    assert np.mean([r.detected for r in res]) <= 0.05 + 4 * math.sqrt(0.05 * 0.95 / 200)  # P(p <= a) <= a


def test_random_words_false_detection_rate_and_p_value_distribution():
    n, words = 64, 20000
    rng = np.random.default_rng(2026)
    w = rng.integers(0, 2, (words, n), dtype=np.uint8)
    res = [decode_bits(x) for x in w]
    pv = np.array([r.p_value for r in res])
    assert sum(r.detected for r in res) == 0           # design: E[false detections] <= 20000 * 1e-6 = 0.02
    assert np.mean([r.ok for r in res]) < 0.01
    # valid p-values: P(p <= a) <= a (within sampling noise); not concentrated near 0
    for a in (1e-4, 1e-3, 1e-2, 0.05, 0.2):
        assert np.mean(pv <= a) <= a + 4 * math.sqrt(a * (1 - a) / words)
    assert stats.kstest(pv, "uniform", alternative="greater").pvalue > 0.01
    # the exact false-acceptance formula, per schema (BCH + header checks only)
    key = whitening_key(n)
    for s in list_schemas(n)[2:]:
        acc = np.array([r is not None for r in (_bch_decode(s, x ^ key) for x in w)])
        expect = words * false_accept_probability(s, s.t)
        assert abs(acc.sum() - expect) <= 5 * math.sqrt(expect) + 1, (s, acc.sum(), expect)


def test_correct_codewords_have_tiny_p_values():
    for n in SUPPORTED_N:
        t = get_schema(n, 0).t
        cw = encode_message(3, n)
        d = detect(cw)
        assert d.detected and d.p_value <= 2e-12 and d.confidence > 0.97 and d.result.message == 3
        noisy = cw.copy()
        noisy[:t] ^= 1
        d = detect(noisy)
        assert d.detected and d.p_value <= DEFAULT_FPR and d.confidence >= 0.5
        assert d.result.corrected_errors == t


def test_verify_known_message():
    n = 64
    rng = np.random.default_rng(3)
    cw = encode_message("Q", n, schema=3)
    noisy = cw.copy()
    noisy[rng.choice(n, 12, replace=False)] ^= 1                  # 12 errors: no BCH schema decodes it ...
    assert not (decode_bits(noisy).ok and decode_bits(noisy).message == "Q")
    v = verify_bits(noisy, "Q", schema=3)                           # ... but the known-message test does
    assert v.matching_bits == 52 and v.schema == 3
    assert v.p_value == pytest.approx(ball_volume(64, 12) / 2**64, abs=0) and v.matched
    v_all = verify_bits(noisy, "Q")                                 # schema unknown: Bonferroni
    assert v_all.schema == 3 and v_all.p_value == pytest.approx(v.p_value * sum(
        1 for s in list_schemas(n) if capacity(n, s.id)["max_text_ascii_chars"] >= 1))
    assert not verify_bits(noisy, "R", schema=3).matched
    with pytest.raises(PayloadError, match="too long"):
        verify_bits(noisy, "far too long")
    w = rng.integers(0, 2, (2000, n), dtype=np.uint8)
    pv = np.array([verify_bits(x, "Q", schema=3).p_value for x in w])
    assert not (pv <= DEFAULT_FPR).any()
    assert stats.kstest(pv, "uniform", alternative="greater").pvalue > 0.01
    for a in (0.01, 0.1, 0.5):
        assert np.mean(pv <= a) <= a + 4 * math.sqrt(a * (1 - a) / len(pv))


def test_decoding_is_thread_safe():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    jobs = []
    for _ in range(1500):
        m = int(rng.integers(0, 2048))
        cw = encode_message(m, 64)
        cw[rng.choice(64, 7, replace=False)] ^= 1
        jobs.append((m, cw))
    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(lambda j: decode_bits(j[1]).message == j[0], jobs))


def test_message_too_long_names_its_schema_and_where_it_fits():
    """The error carries the schema it missed; ``where_it_fits`` gives the most robust schema that holds the
    message, then the zoo's models of other payload sizes (their own most robust schema that does)."""
    from robusthide.payload import MessageTooLongError
    from robusthide.zoo.payload_fit import first_fitting, where_it_fits

    with pytest.raises(MessageTooLongError, match="11 data bits") as e:
        encode_message(2**20, 64)
    assert e.value.schema == get_schema(64, 0)
    assert first_fitting(2**20, None, 64).name == "balanced"     # 21 bits: 25 holds them, 11 does not
    assert first_fitting(2**39, None, 64) is None               # 40 bits: more than max (39)
    fits = where_it_fits(2**20, None, e.value.schema)
    assert fits[0] == (None, get_schema(64, 1), False)
    assert {name for name, _, _ in fits[1:]} == {"lean128", "lean128-r6", "geo256"}
    assert all(default for _, _, default in fits[1:])          # each model's own default schema holds 21 bits
    assert where_it_fits(2**101, None, get_schema(64, 0)) == [("geo256", get_schema(256, 1), False)]
    assert where_it_fits("x" * 60, None, get_schema(256, 3)) == []
    from robusthide.zoo.payload_fit import where_it_fits_text

    assert where_it_fits_text(2**101, None, get_schema(64, 0)) == "it fits with model geo256 at schema balanced"
    assert where_it_fits_text("x" * 60, None, get_schema(256, 3)) == "no model here holds it: shorten it"
