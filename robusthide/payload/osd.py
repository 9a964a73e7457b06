"""Ordered-statistics decoding (OSD) of a binary linear code from soft bits.

Fossorier & Lin, "Soft-decision decoding of linear block codes based on ordered statistics", IEEE Trans.
Inform. Theory 41(5), 1995. For a received word with per-bit reliabilities (|LLR|):

1. order the positions by decreasing reliability;
2. Gaussian elimination of the generator over GF(2) in that order gives the *most reliable basis* (MRB):
   k independent positions, the most reliable ones that can carry the information;
3. order-0: take the hard decision on the MRB and re-encode it;
4. order-i: also re-encode every pattern of at most i flips of the MRB bits;
5. keep the candidate codeword of least *soft cost*: the sum of the reliabilities of the bits it disagrees
   with the hard decision on (the maximum-likelihood metric on a binary-input symmetric channel).

The bounded-distance BCH decoder corrects at most t errors whatever the reliabilities. Order-2 OSD
corrects most words whose errors sit in the less reliable bits, which is where a watermark decoder's errors
are: on the geometry search's readings of 256-bit marks after crops it decodes far beyond t (docs/payload.md,
"Decoding"). The costs of every order-1 and order-2 candidate come from one k x k matrix product, without
forming the candidates.

The `ldpc` package's BP+OSD decoder (OSD-CS of order 40 after belief propagation on the parity-check
matrix, which a dense BCH code does not suit) was measured on the same readings: it decoded no more words
than this order-2 OSD and took 19 times as long per word (docs/results/osd-compare-geo256-aa3.md, made by
docs/scripts/osd_compare.py).
"""

from __future__ import annotations

import numpy as np


def most_reliable_basis(generator: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian elimination of a k x n generator over GF(2), its columns taken in ``order``: returns the
    reduced generator in that column order (rank x n, the identity on the pivot columns) and the pivots
    (indices into ``order``: the most reliable basis)."""
    a = generator[:, order].astype(np.uint8)
    k, n = a.shape
    pivots: list[int] = []
    row = 0
    for col in range(n):
        if row == k:
            break
        nz = np.flatnonzero(a[row:, col])
        if nz.size == 0:
            continue
        r = row + int(nz[0])
        if r != row:
            a[[row, r]] = a[[r, row]]
        others = a[:, col].astype(bool)
        others[row] = False
        a[others] ^= a[row]
        pivots.append(col)
        row += 1
    return a[:row], np.asarray(pivots, dtype=np.int64)


def ordered_statistics_decode(hard: np.ndarray, reliability: np.ndarray, generator: np.ndarray,
                              order: int = 2) -> np.ndarray:
    """The codeword (n bits, uint8) of the code spanned by the rows of ``generator`` (k x n, 0/1) that OSD of
    order ``order`` (0, 1 or 2) finds for the hard decision ``hard`` (n bits) with per-bit ``reliability``
    (n values >= 0, e.g. |LLR|). The decoder always returns a codeword; whether it is evidence of a mark is
    for the caller's p-value (:mod:`robusthide.payload.detection`) to say."""
    if order not in (0, 1, 2):
        raise ValueError(f"OSD order must be 0, 1 or 2, got {order!r}")
    hard = np.asarray(hard, dtype=np.uint8)
    rel = np.asarray(reliability, dtype=np.float64)
    perm = np.argsort(-rel, kind="stable")
    basis, pivots = most_reliable_basis(np.asarray(generator, dtype=np.uint8), perm)
    y, r = hard[perm], rel[perm]
    bf = basis.astype(np.float64)  # einsum, not BLAS: these products are too small for threads to pay
    base = (np.rint(np.einsum("k,kn->n", y[pivots].astype(np.float64), bf)).astype(np.int64) % 2).astype(np.uint8)
    base ^= y  # order 0 disagrees with y here
    # flipping basis row i toggles its support: the soft cost changes by a_i = sum over the row of r (1 - 2 base)
    w = r * (1.0 - 2.0 * base)
    a = np.einsum("kn,n->k", bf, w)
    cost0, best = float(r @ base), np.zeros(y.size, np.uint8)
    if order >= 1 and a.size and a.min() < 0:
        i = int(np.argmin(a))
        cost0, best = cost0 + float(a[i]), basis[i]
    if order >= 2 and a.size > 1:
        # rows i and j together: a_i + a_j - 2 sum over both supports of r (1 - 2 base) = a_i + a_j - 2 M_ij
        m = np.einsum("in,jn->ij", bf * w, bf)
        pair = a[:, None] + a[None, :] - 2.0 * m
        pair[np.tril_indices(a.size)] = np.inf
        i, j = np.unravel_index(int(np.argmin(pair)), pair.shape)
        if float(r @ base) + float(pair[i, j]) < cost0:
            best = basis[i] ^ basis[j]
    best = base ^ best
    out = np.empty_like(y)
    out[perm] = y ^ best
    return out
