"""Statistical LSB steganalysis in the spirit of StegExpose (Boehm 2014), used in paper 004 §4.4.

Each detector returns an estimate in [0, 1] of the embedded fraction (message length / capacity) of an
8-bit RGB image (H x W x 3 uint8); an image is flagged when the estimate exceeds the detector's threshold.

* :func:`chi_square` -- Westfeld & Pfitzmann (1999): with LSB replacement the counts of each value pair
  (2k, 2k+1) equalise. The p-value of the chi-square test of "h[2k] = (h[2k] + h[2k+1]) / 2" is computed
  on growing prefixes (1 %, 2 %, ..., 100 %) of the pixel stream; the estimate is the fraction of prefixes
  with p > 0.5 (sequential embedding of length L keeps p near 1 up to L).
* :func:`rs_analysis` -- Fridrich, Goljan & Du (2001): regular/singular groups of 4 pixels under the
  masks [0 1 1 0] and [1 0 0 1], with flipping F1 and F-1, on the image and its LSB-flipped version;
  the message length solves 2(d1 + d0) z^2 + (d-0 - d-1 - d1 - 3 d0) z + d0 - d-0 = 0, p = z / (z - 1/2).
* :func:`sample_pairs` -- Dumitrescu, Wu & Wang (2003): horizontal pixel pairs split into X, Y, Z, W;
  p solves (W + Z)/2 p^2 + (2X - P) p + Y - X = 0 (smaller root).
* :func:`primary_sets` -- StegExpose's ``PrimarySets`` detector: Dumitrescu, Wu & Memon (2002), "On
  steganalysis of random LSB embedding in continuous-tone images" (ICIP 2002). The paper's primary sets
  (:func:`primary_set_counts`) of the sample pairs, counted over *disjoint* horizontal pairs (columns 2i,
  2i + 1) as StegExpose does, and the *lower* root of (W + Z)/2 p^2 + (2X - P) p + Y - X = 0
  (:func:`primary_sets_estimate`, StegExpose's choice; :func:`sample_pairs` takes the root of least magnitude
  over all overlapping pairs, which underestimates full-capacity embedding). W is the paper's set (pairs
  (2k, 2k + 1) and (2k + 1, 2k): same 7 high bits, different LSB); StegExpose's Java tests parity there,
  with a typo (``red2 & 0x0``). StegExpose reads the red channel only; we average R, G and B like RS and SPA.
* :func:`fused` -- StegExpose's fusion: the mean of the four estimates, threshold 0.2.

RS, SPA and primary sets are averaged over the three colour channels. Thresholds are ours (StegExpose's default 0.2 for
the fused score); ``THRESHOLDS`` holds them.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2

THRESHOLDS = {"chi_square": 0.5, "rs": 0.2, "spa": 0.2, "primary_sets": 0.2, "fused": 0.2}


def _u8(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError("steganalysis expects an H x W x 3 uint8 image")
    return a


def _chi_p(h: np.ndarray) -> float:
    even, odd = h[0::2], h[1::2]
    exp = (even + odd) / 2.0
    keep = exp > 4  # the usual validity condition of the chi-square approximation
    if keep.sum() < 2:
        return 0.0
    stat = float((((even - exp) ** 2)[keep] / exp[keep]).sum())
    return float(chi2.sf(stat, int(keep.sum()) - 1))


def chi_square(img: np.ndarray, steps: int = 100) -> float:
    """Fraction of stream prefixes whose chi-square p-value exceeds 0.5 (Westfeld & Pfitzmann)."""
    s = _u8(img).reshape(-1)
    n = s.size
    cuts = [max(1, n * k // steps) for k in range(steps + 1)]
    cuts[0] = 0
    chunks = np.stack([np.bincount(s[a:b], minlength=256) for a, b in zip(cuts[:-1], cuts[1:])])
    hist = np.cumsum(chunks.astype(np.float64), axis=0)
    return float(np.mean([_chi_p(h) > 0.5 for h in hist]))


def _flip(x: np.ndarray, sign: int) -> np.ndarray:
    return x ^ 1 if sign > 0 else ((x + 1) ^ 1) - 1


def _rs_counts(ch: np.ndarray, mask: np.ndarray) -> tuple[float, float, float, float]:
    w = ch.shape[1] // 4 * 4
    g = ch[:, :w].astype(np.int64).reshape(-1, 4)

    def f(a: np.ndarray) -> np.ndarray:
        return np.abs(np.diff(a, axis=1)).sum(axis=1)

    f0 = f(g)
    out = []
    for sign in (1, -1):
        gm = g.copy()
        gm[:, mask == 1] = _flip(gm[:, mask == 1], sign)
        fm = f(gm)
        out += [float(np.mean(fm > f0)), float(np.mean(fm < f0))]
    return out[0], out[1], out[2], out[3]  # R_M, S_M, R_-M, S_-M


def _rs_channel(ch: np.ndarray, mask: np.ndarray) -> float:
    rm, sm, rnm, snm = _rs_counts(ch, mask)
    rm1, sm1, rnm1, snm1 = _rs_counts(ch ^ 1, mask)
    d0, d1, dn0, dn1 = rm - sm, rm1 - sm1, rnm - snm, rnm1 - snm1
    a, b, c = 2 * (d1 + d0), dn0 - dn1 - d1 - 3 * d0, d0 - dn0
    z = _small_root(a, b, c)
    if z is None or abs(z - 0.5) < 1e-12:
        return 0.0
    return float(z / (z - 0.5))


def _small_root(a: float, b: float, c: float) -> float | None:
    if abs(a) < 1e-12:
        return None if abs(b) < 1e-12 else -c / b
    disc = b * b - 4 * a * c
    if disc < 0:
        return None if abs(b) < 1e-12 else -c / b
    r = [(-b + s * np.sqrt(disc)) / (2 * a) for s in (1, -1)]
    return float(min(r, key=abs))


def rs_analysis(img: np.ndarray) -> float:
    """RS estimate of the embedded fraction, mean over channels and the two masks, clipped to [0, 1]."""
    a = _u8(img)
    est = [_rs_channel(a[..., c], m) for c in range(3) for m in (np.array([0, 1, 1, 0]), np.array([1, 0, 0, 1]))]
    return float(np.clip(np.mean(est), 0.0, 1.0))


def _spa_channel(ch: np.ndarray) -> float:
    u = ch[:, :-1].astype(np.int64).reshape(-1)
    v = ch[:, 1:].astype(np.int64).reshape(-1)
    p = float(u.size)
    ve = (v % 2) == 0
    x = float(np.sum((ve & (u < v)) | (~ve & (u > v))))
    y = float(np.sum((ve & (u > v)) | (~ve & (u < v))))
    z = float(np.sum(u == v))
    w = float(np.sum((u // 2 == v // 2) & (u != v)))
    r = _small_root((w + z) / 2.0, 2.0 * x - p, y - x)
    return 0.0 if r is None else float(r)


def sample_pairs(img: np.ndarray) -> float:
    """Sample-pairs estimate of the embedded fraction, mean over channels, clipped to [0, 1]."""
    a = _u8(img)
    return float(np.clip(np.mean([_spa_channel(a[..., c]) for c in range(3)]), 0.0, 1.0))


def primary_set_counts(u: np.ndarray, v: np.ndarray) -> dict[str, int]:
    """The primary sets of Dumitrescu, Wu & Memon (2002) for sample pairs (u, v) (two equal-length integer
    arrays), as counts: P, all pairs; X, v even and u < v, or v odd and u > v; Y, v even and u > v, or v odd
    and u < v; Z, u = v (X, Y and Z partition P); W, the pairs of Y of the form (2k, 2k + 1) or (2k + 1, 2k);
    V = Y minus W."""
    u, v = np.asarray(u, dtype=np.int64).reshape(-1), np.asarray(v, dtype=np.int64).reshape(-1)
    ve = (v % 2) == 0
    x = (ve & (u < v)) | (~ve & (u > v))
    y = (ve & (u > v)) | (~ve & (u < v))
    w = (u // 2 == v // 2) & (u != v)  # always within Y
    return {"P": int(u.size), "X": int(x.sum()), "Y": int(y.sum()), "Z": int((u == v).sum()), "W": int(w.sum()),
            "V": int((y & ~w).sum())}


def primary_sets_estimate(c: dict[str, int]) -> float:
    """The embedded fraction p from primary-set counts: the lower root of (W + Z)/2 p^2 + (2X - P) p + Y - X = 0
    (not clipped); a negative discriminant (rare) gives the vertex, the real part of both roots."""
    a, b, k = (c["W"] + c["Z"]) / 2.0, 2.0 * c["X"] - c["P"], float(c["Y"] - c["X"])
    if abs(a) < 1e-12:
        return 0.0 if abs(b) < 1e-12 else -k / b
    disc = max(b * b - 4.0 * a * k, 0.0)
    return float(min((-b + s * np.sqrt(disc)) / (2.0 * a) for s in (1, -1)))


def _primary_sets_channel(ch: np.ndarray) -> float:
    w = ch.shape[1] // 2 * 2
    return primary_sets_estimate(primary_set_counts(ch[:, 0:w:2], ch[:, 1:w:2]))


def primary_sets(img: np.ndarray) -> float:
    """StegExpose's primary-sets (Dumitrescu, Wu & Memon 2002) estimate of the embedded fraction, mean over R, G, B,
    clipped to [0, 1]."""
    a = _u8(img)
    return float(np.clip(np.mean([_primary_sets_channel(a[..., c]) for c in range(3)]), 0.0, 1.0))


#: the detectors whose mean is the fused score (StegExpose's four)
FUSED = ("chi_square", "rs", "spa", "primary_sets")


def analyse(img: np.ndarray) -> dict[str, float]:
    """All estimates and the fused score (their mean, as StegExpose's ``Fuse.se``)."""
    r = {"chi_square": chi_square(img), "rs": rs_analysis(img), "spa": sample_pairs(img),
         "primary_sets": primary_sets(img)}
    r["fused"] = float(np.mean([r[k] for k in FUSED]))
    return r


def flags(scores: dict[str, float], thresholds: dict[str, float] | None = None) -> dict[str, bool]:
    t = thresholds or THRESHOLDS
    return {k: bool(scores[k] > t[k]) for k in t}


def lsb_embed(img: np.ndarray, rate: float = 1.0, seed: int = 0) -> np.ndarray:
    """Plain LSB replacement of random bits in a random ``rate`` fraction of the samples (for tests)."""
    a = _u8(img).copy()
    rng = np.random.default_rng(seed)
    flat = a.reshape(-1)
    sel = rng.random(flat.size) < rate
    flat[sel] = (flat[sel] & 0xFE) | rng.integers(0, 2, int(sel.sum()), dtype=np.uint8)
    return a
