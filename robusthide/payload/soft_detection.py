"""Soft-decision detection: a p-value from the reliabilities of the bits a decode corrected.

The hard test (:mod:`robusthide.payload.detection`) counts corrected errors, and every corrected bit costs the
same. A decoder's logits say more: on a marked image the errors sit in the least reliable bits, on an unmarked
one they do not prefer them. This test keeps the hard test's null hypothesis, conditioned on the reliabilities.

H0 (unmarked image): given the reliabilities ``m_i = |LLR_i|``, the N signs are i.i.d. uniform (the hard test's
model, which whitening keeps plausible). For a fixed codeword c, the set S of bits where the hard decision
disagrees with c is then uniform over all 2^N subsets, so its soft distance ``D(c) = sum_{i in S} m_i`` obeys

    P(D(c) <= tau) = N_r(tau) / 2^N,      N_r(tau) = #{S : |S| <= r, sum_{i in S} m_i <= tau}

when the decoder returns codewords only within Hamming radius r. A schema j accepting ``A_j = 2^(2 + D_j)``
codewords within its decode radius ``r_j`` (:func:`robusthide.payload.detection.decode_radius`) gives, by the
union bound over its codewords,

    q_j(tau) = A_j N_{r_j}(tau) / 2^N,

a valid p-value whatever algorithm found the codeword (it bounds the chance that *any* accepted codeword lies
within soft distance tau). :func:`soft_p_value` gives the schema s the decode landed in its own
``q_s(tau) = A_s N_{r_s}(tau) / 2^N``; the decoder tried every schema of N, and each schema j's own value is a
p-value too, so the chance that *some* schema gives evidence as strong is at most ``q_s`` times the number of
schemas that can reach it at all (``A_j / 2^N <= q_s``). With equal reliabilities ``q_s`` is the hard test's
false-accept probability, and the p-value at most 4 times the hard one (which orders the schemas' radii
exactly, :mod:`robusthide.payload.detection`). :func:`soft_ball_counts` counts
``N_r(tau)`` by dynamic programming over the bits, their weights floored to a grid of ``tau / BINS``: a subset
within tau stays within the grid's budget, so the count can only grow and the p-value stays valid.

:func:`combined_p_value` decides with both tests at once, ``min(p_hard / (1 - share), p_soft / share)``: a
weighted Bonferroni, so the false-positive bound holds for any ``share`` in (0, 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robusthide.payload.detection import decode_radius
from robusthide.payload.schemas import Schema, get_schema, list_schemas

#: grid steps of the soft distance (``tau / BINS`` each) in :func:`soft_ball_counts`: at most 1/BINS of tau lost
#: per bit of a subset
BINS = 1024


def _floored_weights(reliability: Any, tau: float, bins: int) -> np.ndarray:
    m = np.asarray(reliability, dtype=np.float64).reshape(-1)
    if m.size == 0 or not np.isfinite(m).all() or (m < 0).any():
        raise ValueError("reliabilities must be finite and non-negative")
    w = np.floor(m * (bins / tau)).astype(np.int64)
    return w[w <= bins]  # a bit heavier than tau is in no counted subset


def soft_ball_counts(reliability: Any, tau: float, radii: tuple[int, ...], bins: int = BINS) -> list[float]:
    """For each radius r of ``radii``: an upper bound on ``N_r(tau)``, the number of subsets S of the bits with
    ``|S| <= r`` and ``sum_{i in S} reliability_i <= tau`` (module docstring), exact up to the flooring of the
    weights to the grid ``tau / bins``."""
    m = np.asarray(reliability, dtype=np.float64).reshape(-1)
    if tau < 0:
        return [0.0 for _ in radii]
    if tau == 0:  # only bits of zero reliability can be flipped for free
        _floored_weights(m, 1.0, bins)  # validates
        z = int((m == 0).sum())
        return [float(sum(math.comb(z, i) for i in range(min(r, z) + 1))) for r in radii]
    w = _floored_weights(m, float(tau), bins)
    out: dict[int, float] = {}
    small = sorted({min(int(r), w.size) for r in radii if int(r) < w.size})
    if small:  # counts by (subset size, weight): one table up to the largest small radius
        top = small[-1]
        table = np.zeros((top + 1, bins + 1))
        table[0, 0] = 1.0
        for wi in w.tolist():
            table[1:, wi:] += table[:-1, : bins + 1 - wi].copy()
        sizes = table.sum(axis=1).cumsum()
        out.update({r: float(sizes[r]) for r in small})
    if any(int(r) >= w.size for r in radii):  # every size: counts by weight only
        counts = np.zeros(bins + 1)
        counts[0] = 1.0
        for wi in w.tolist():
            counts[wi:] += counts[: bins + 1 - wi].copy()
        out[w.size] = float(counts.sum())
    return [out[min(int(r), w.size)] for r in radii]


def soft_p_value(n_bits: int, schema: int | str | Schema, reliability: Any, disagree: Any,
                 extra_radius: int = 0, all_schemas: bool = True) -> float:
    """p-value of "decoding succeeded under ``schema``, the hard decision disagreeing with the codeword at the
    bits ``disagree`` (N booleans)", from the bits' ``reliability`` (N values ``|LLR|``) (module docstring).
    ``all_schemas`` and ``extra_radius`` as in :func:`robusthide.payload.detection.p_value`."""
    s = get_schema(n_bits, schema)
    m = np.asarray(reliability, dtype=np.float64).reshape(-1)
    d = np.asarray(disagree, dtype=bool).reshape(-1)
    if m.shape != (n_bits,) or d.shape != (n_bits,):
        raise ValueError(f"expected {n_bits} reliabilities and {n_bits} disagreement flags")
    (count,) = soft_ball_counts(m, float(m[d].sum()), (decode_radius(s, extra_radius),))
    q = math.ldexp(count, s.free_bits - n_bits)
    if not all_schemas:
        return min(1.0, q)
    # every schema that could have produced evidence this strong (its codewords' own chance >= 2^(2+D-N))
    return min(1.0, q * sum(1 for sj in list_schemas(n_bits) if math.ldexp(1.0, sj.free_bits - n_bits) <= q))


def combined_p_value(p_hard: float, p_soft: float, share: float) -> float:
    """The p-value of deciding by both tests: ``min(p_hard / (1 - share), p_soft / share)`` (weighted
    Bonferroni); ``share`` 0 is the hard test alone."""
    if not 0 <= share < 1:
        raise ValueError(f"soft share must be in [0, 1), got {share}")
    if share == 0:
        return p_hard
    return min(1.0, p_hard / (1 - share), p_soft / share)
