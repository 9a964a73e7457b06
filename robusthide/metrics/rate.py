"""Rate metrics: bits per pixel from real compressed sizes, RSBPP and RSBPP rate (paper 004, section 4.2).

Paper 004 (section 4.2, after Zhang et al. 2019, SteganoGAN): a Reed-Solomon code of rate k/n corrects up to
(n - k)/2 symbol errors; a channel that flips a bit with probability p needs n p <= (n - k)/2 (eq. 7), so
the usable fraction of the hidden bits is k/n <= 1 - 2p ("the RSBPP of the decoding message is less than or
equal to 1 - 2p"; the text of eq. 7 lost its p in conversion and reads n <= (n - k)/2). With D hidden bits
per pixel:

    RSBPP = D (1 - 2p)                       (Reed-Solomon bits per pixel)
    RSBPP rate = RSBPP / bpp                 (eq. 8; bpp = size of the compressed stego image)

The paper's tables use D = 1 ("1bit") and p = 1 - accuracy; e.g. CelebA hyperbase_3: accuracy 66.40 %,
bpp 1.386 -> RSBPP 0.328, RSBPP rate 0.237 (Table 1). For p > 1/2 no rate k/n >= 0 satisfies eq. 7, so
RSBPP is 0 there (we clip; the raw formula would go negative).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from robusthide.metrics.bits import MetricError


def bpp(nbytes: int | Sequence[int], height: int, width: int, reduction: str = "mean") -> Any:
    """Bits per pixel of compressed images from their real sizes: bytes * 8 / (H * W)."""
    if height <= 0 or width <= 0:
        raise MetricError(f"image size must be positive, got {height} x {width}")
    b = np.atleast_1d(np.asarray(nbytes, dtype=np.float64))
    if (b < 0).any():
        raise MetricError("compressed sizes must be >= 0 bytes")
    v = b * 8.0 / (height * width)
    if reduction == "none":
        return v
    if reduction != "mean":
        raise MetricError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return float(v.mean())


def hidden_bpp(n_bits: int, height: int, width: int) -> float:
    """D: hidden message bits per pixel (e.g. 64 bits in 256 x 256 -> 0.000977)."""
    if height <= 0 or width <= 0:
        raise MetricError(f"image size must be positive, got {height} x {width}")
    return n_bits / (height * width)


def rsbpp(ber: float | None = None, accuracy: float | None = None, bits_per_pixel: float = 1.0) -> float:
    """Reed-Solomon bits per pixel, D (1 - 2p), with p the bit error rate (give ``ber`` or ``accuracy`` =
    1 - p) and D = ``bits_per_pixel`` hidden bits per pixel (paper 004 section 4.2, eq. 7; 0 for p > 1/2)."""
    if (ber is None) == (accuracy is None):
        raise MetricError("give exactly one of ber or accuracy")
    p = float(ber) if ber is not None else 1.0 - float(accuracy)
    if not 0.0 <= p <= 1.0:
        raise MetricError(f"bit error rate must be in [0, 1], got {p}")
    if bits_per_pixel < 0:
        raise MetricError(f"bits_per_pixel must be >= 0, got {bits_per_pixel}")
    return float(bits_per_pixel) * max(0.0, 1.0 - 2.0 * p)


def rsbpp_rate(rsbpp_value: float, bpp_value: float) -> float:
    """RSBPP rate = RSBPP / bpp (paper 004 eq. 8): reliable hidden bits per bit of the compressed image."""
    if bpp_value <= 0:
        raise MetricError(f"bpp must be > 0, got {bpp_value}")
    return float(rsbpp_value) / float(bpp_value)
