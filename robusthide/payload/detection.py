"""Is a watermark present? Calibrated p-values from the code parameters.

Null hypothesis H0 (unmarked image): the N bits a decoder reads are i.i.d. uniform. Whitening
(:func:`robusthide.payload.schemas.whitening_key`) keeps this plausible for real decoders, but it is a
*model*: the empirical false-positive rate on clean photos is measured in the evaluation, not here.

Decoded-payload test (unknown message). A schema with code length N accepts ``A = 2^(2 + D)`` codewords
(kind + data bits; the 2 schema-id bits and the r reserved bits are *checked* after BCH decoding, so they
do not count). Hamming balls of radius e <= t around distinct codewords are disjoint, hence for a uniform
random word y::

    P_fa(schema, e) = P(d(y, nearest accepted codeword) <= e) = A * sum_{i<=e} C(N, i) / 2^N

exactly for e <= t (a union bound, still valid, for e > t, reached by Chase soft decoding and, on the
:func:`soft_decodable` schemas, by ordered-statistics decoding, :mod:`robusthide.payload.osd`). The bound
holds whatever algorithm found the codeword: it is the chance that *any* accepted codeword lies that close.
The decoder tries all four schemas of N, so the reported p-value accounts for that search (union bound)::

    p(s, e) = sum_j max{ P_fa(j, e') : e' <= r_j, P_fa(j, e') <= P_fa(s, e) }

with r_j the decode radius of schema j (:func:`decode_radius`: t_j plus the Chase bits, or N under OSD),
i.e. the probability that *some* schema accepts a random word with evidence at least as strong. It is a
valid p-value: P_H0(p <= alpha) <= alpha for every alpha. ``detected = ok and p <= threshold`` (default
1e-6), so the false-positive rate under H0 is <= 1e-6 by construction; for the weaker schemas this caps
the number of corrected errors at which presence is still declared (:func:`max_detectable_errors`).

Known-message test (``verify``): with the expected codeword c, the number of matching bits X of a random
word is Binomial(N, 1/2); p = P(X >= x) = sum_{i <= N-x} C(N, i) / 2^N (times the number of schemas
tried, Bonferroni, when the schema is not given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from robusthide.payload.schemas import PayloadError, Schema, get_schema, list_schemas

#: design target: false-positive rate of ``detected`` on unmarked images
DEFAULT_FPR = 1e-6


@lru_cache(maxsize=4096)
def ball_volume(n: int, e: int) -> int:
    """Number of n-bit words within Hamming distance e of a given word: sum_{i<=e} C(n, i)."""
    if e < 0:
        return 0
    return sum(math.comb(n, i) for i in range(min(e, n) + 1))


def false_accept_probability(schema: Schema, errors: int) -> float:
    """P_fa(schema, e) = 2^(2+D) * sum_{i<=e} C(N, i) / 2^N: chance that a uniform random word lies within
    distance ``errors`` of one of the schema's accepted codewords (exact for e <= t)."""
    if errors < 0:
        return 0.0
    return min(1.0, math.ldexp(float(ball_volume(schema.n_bits, errors)), schema.free_bits - schema.n_bits))


#: Chase-2 flips at most this many of the least reliable bits (:func:`robusthide.payload.decode_bits`).
MAX_CHASE_BITS = 8


@lru_cache(maxsize=64)
def soft_decodable(schema: Schema) -> bool:
    """Is ``schema`` also decoded by ordered-statistics decoding (:mod:`robusthide.payload.osd`), which may
    return a codeword at any distance? Yes when a decode could still be declared present at the default
    false-positive rate beyond the BCH radius t plus the Chase bits: the long codes with few data bits (of the
    frozen table, the 256-bit ``robust`` and ``balanced`` schemas). Elsewhere the p-value caps the corrected
    errors below t and OSD could add nothing. A property of the schema, not of a call's threshold, so the
    p-value below is one fixed function."""
    hard_radius = schema.t + MAX_CHASE_BITS
    return hard_radius < schema.n_bits and false_accept_probability(schema, hard_radius + 1) <= DEFAULT_FPR


def decode_radius(schema: Schema, extra_radius: int = 0) -> int:
    """The largest distance at which the decoder may return a codeword of ``schema``: the BCH radius t plus
    the Chase bits, or N for a :func:`soft_decodable` schema."""
    return schema.n_bits if soft_decodable(schema) else schema.t + extra_radius


@lru_cache(maxsize=4096)
def _p_value(n_bits: int, schema_id: int, errors: int, extra_radius: int, single: bool) -> float:
    schemas = list_schemas(n_bits)
    s = schemas[schema_id]
    p_obs = false_accept_probability(s, errors)
    if single:
        return p_obs
    total = 0.0
    for sj in schemas:
        best = 0.0
        for e in range(decode_radius(sj, extra_radius) + 1):
            q = false_accept_probability(sj, e)
            if q > p_obs * (1 + 1e-12):
                break
            best = q
        total += best
    return min(1.0, total)


def p_value(n_bits: int, schema: int | str | Schema, corrected_errors: int, extra_radius: int = 0,
            all_schemas: bool = True) -> float:
    """p-value of "decoding succeeded under ``schema`` with ``corrected_errors`` errors" (module docstring).

    ``all_schemas``: the decoder searched every schema of N (the default, auto-detection); False when it
    was told the schema. ``extra_radius``: Chase bits the soft decoder may flip beyond t.
    """
    s = get_schema(n_bits, schema)
    return _p_value(n_bits, s.id, int(corrected_errors), int(extra_radius), not all_schemas)


def max_detectable_errors(n_bits: int, schema: int | str | Schema | None = None,
                          threshold: float = DEFAULT_FPR, extra_radius: int = 0) -> int:
    """Largest number of corrected errors at which a decode under ``schema`` is still declared present
    (p-value <= threshold); -1 if never (a decode-only schema at that threshold)."""
    s = get_schema(n_bits, schema)
    cap = -1
    for e in range(decode_radius(s, extra_radius) + 1):
        if p_value(n_bits, s, e, extra_radius) <= threshold:
            cap = e
        else:
            break
    return cap


def confidence_from_p(p: float, threshold: float = DEFAULT_FPR) -> float:
    """Map a p-value to [0, 1] on a log scale: log(p) / log(threshold^2), clipped.

    0 for p = 1 (no evidence), 0.5 exactly at the detection threshold, 1 at p <= threshold^2 (1e-12 by
    default). Monotone in p; it is a display scale, not a probability.
    """
    if not p < 1.0:
        return 0.0
    if p <= 0.0:
        return 1.0
    return float(min(1.0, max(0.0, math.log(p) / (2.0 * math.log(threshold)))))


@dataclass
class Detection:
    """Outcome of :func:`detect`."""

    detected: bool
    p_value: float
    confidence: float
    threshold: float
    result: Any  # the DecodeResult


def detect(bits: Any, n_bits: int | None = None, threshold: float = DEFAULT_FPR, chase_bits: int = 4,
           logits: bool = False) -> Detection:
    """Decode ``bits`` (hard bits or P(bit=1)) and decide presence: ``detected = ok and p <= threshold``."""
    from robusthide.payload.codec import decode_bits

    r = decode_bits(bits, n_bits, threshold=threshold, chase_bits=chase_bits, logits=logits)
    return Detection(bool(r.detected), float(r.p_value), float(r.confidence), threshold, r)


def binomial_tail_p_value(matching_bits: int, n_bits: int) -> float:
    """P(X >= matching_bits) for X ~ Binomial(n_bits, 1/2) = sum_{i <= n-x} C(n, i) / 2^n."""
    x = int(matching_bits)
    if x <= 0:
        return 1.0
    return min(1.0, math.ldexp(float(ball_volume(n_bits, n_bits - x)), -n_bits))


@dataclass
class Verification:
    """Outcome of :func:`verify_bits` (known-message test)."""

    matched: bool           # p_value <= threshold
    p_value: float          # Binomial tail, Bonferroni over schemas tried
    confidence: float
    matching_bits: int      # agreeing raw bits with the expected codeword (best schema)
    n_bits: int
    schema: int             # schema of the best match
    threshold: float


def verify_bits(bits: Any, expected: Any, n_bits: int | None = None,
                schema: int | str | Schema | None = None, kind: str | None = None,
                threshold: float = DEFAULT_FPR, logits: bool = False) -> Verification:
    """Known-message test: does ``bits`` carry ``expected``? (Binomial tail of matching raw bits.)

    The expected message is encoded as it would have been embedded (same kind rules as
    :func:`robusthide.payload.encode_message`). ``schema=None`` tries every schema the message fits in and
    multiplies the smallest p-value by their number (Bonferroni).
    """
    from robusthide.payload.codec import _as_word, encode_message

    hard, _ = _as_word(bits, n_bits, logits)
    n = hard.size
    candidates = [get_schema(n, schema)] if schema is not None else list(list_schemas(n))
    best: tuple[float, int, int] | None = None
    tried = 0
    last_err: PayloadError | None = None
    for s in candidates:
        try:
            cw = encode_message(expected, n, schema=s, kind=kind)
        except PayloadError as e:
            last_err = e
            continue
        tried += 1
        x = int(np.count_nonzero(cw == hard))
        p = binomial_tail_p_value(x, n)
        if best is None or p < best[0]:
            best = (p, x, s.id)
    if best is None:
        assert last_err is not None
        raise last_err
    p = min(1.0, best[0] * tried)
    return Verification(p <= threshold, p, confidence_from_p(p, threshold), best[1], n, best[2], threshold)


#: The share of the false-positive budget the mirror-image hypotheses of a whole-image model get (weighted
#: Bonferroni): the image as it is keeps 7/8, so its p-value is multiplied by 8/7 only, and the number of
#: errors at which each 64- and 128-bit schema still declares presence without a crop search is what it was
#: without the mirror (:func:`mirror_weights`); a mirror image's p-value is multiplied by 8.
MIRROR_SHARE = 1 / 8
#: Hypotheses decoded at most when a search has more than 1024 (the most confident first).
MANY_HYPOTHESES_TRIES = 64


def mirror_weights(mirrored: Any) -> np.ndarray:
    """Weighted-Bonferroni weights (summing to 1) of hypotheses of which ``mirrored`` (a bool per hypothesis)
    read the mirror image: :data:`MIRROR_SHARE` shared evenly by the mirrored ones, the rest by the others."""
    m = np.asarray(mirrored, dtype=bool).reshape(-1)
    n_m, n_u = int(m.sum()), int((~m).sum())
    if n_m == 0 or n_u == 0:
        return np.full(m.size, 1.0 / max(m.size, 1))
    return np.where(m, MIRROR_SHARE / n_m, (1 - MIRROR_SHARE) / n_u)


def decode_hypotheses(logits: Any, n_bits: int | None = None, weights: Any = None,
                      threshold: float = DEFAULT_FPR, max_tries: int | None = None,
                      scores: Any = None, soft_share: float = 0.0) -> tuple[Any, int]:
    """Decode the payload of the best of H hypotheses (bit logits H x L: readings of one image under a search)
    and return it with its index. Hypotheses are decoded from the highest ``scores`` (H values; None: the
    most confident, the largest mean absolute logit) on, at most ``max_tries`` of them (None: all up to 1024
    hypotheses, else :data:`MANY_HYPOTHESES_TRIES`), until one is detected. The test pays for every
    hypothesis, tried or not, by (weighted) Bonferroni: hypothesis i is declared at p_i / w_i <=
    ``threshold``, with ``weights`` w summing to at most 1 (None: 1 / H each, the plain p x H), so the
    false-positive rate of the whole search stays within ``threshold``, whatever the order. The
    :class:`~robusthide.payload.DecodeResult` carries the corrected p-value, detection and confidence.
    ``soft_share`` > 0 also weighs the corrected bits' reliabilities (:mod:`robusthide.payload.soft_detection`)."""
    from robusthide.payload.codec import decode_bits

    lg = np.asarray(logits, dtype=np.float32)
    if lg.ndim != 2 or lg.shape[0] == 0:
        raise ValueError(f"expected H x L logits with H >= 1, got shape {lg.shape}")
    h = lg.shape[0]
    if weights is None:
        factors = np.full(h, float(h))
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (h,) or not (w > 0).all() or w.sum() > 1 + 1e-9:
            raise ValueError(f"weights must be {h} positive values summing to at most 1")
        factors = 1.0 / w
    tries = max_tries if max_tries is not None else (h if h <= 1024 else MANY_HYPOTHESES_TRIES)
    if scores is None:
        rank = np.abs(lg).mean(axis=1)
    else:
        rank = np.asarray(scores, dtype=np.float64).reshape(-1)
        if rank.shape != (h,) or not np.isfinite(rank).all():
            raise ValueError(f"scores must be {h} finite values")
    order = np.argsort(-rank, kind="stable")[:tries]
    best = None
    for i in order.tolist():
        with np.errstate(over="ignore"):
            soft = 1 / (1 + np.exp(-lg[i]))
        r = decode_bits(soft, n_bits, threshold=threshold / factors[i], soft_share=soft_share)
        p = min(1.0, r.p_value * factors[i])
        if best is None or p < best[0]:
            best = (p, r, i)
        if r.ok and p <= threshold:
            break
    p, r, i = best
    r.p_value, r.detected, r.confidence = p, bool(r.ok and p <= threshold), confidence_from_p(p, threshold)
    return r, i
