"""Message metrics: bit error rate and word accuracy.

Inputs are bit arrays (0/1, bool), probabilities P(bit = 1) (thresholded at ``threshold``, a bit is 1 when
p > threshold) or logits (``logits=True``: 1 when the logit > 0), as numpy arrays, lists or torch tensors,
of shape ``L`` (one message) or ``N x L`` (one row per image). A target of shape ``L`` is compared with
every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from robusthide import RobustHideError


class MetricError(RobustHideError):
    """Bad input to a metric (shape mismatch, wrong value range...)."""


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def hard_bits(x: Any, threshold: float = 0.5, logits: bool = False) -> np.ndarray:
    """0/1 uint8 bits from bits, probabilities (p > threshold) or logits (> 0)."""
    a = _numpy(x)
    if a.dtype == bool:
        return a.astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        if ((a != 0) & (a != 1)).any():
            raise MetricError("bits must be 0 or 1 (pass probabilities or logits as floats)")
        return a.astype(np.uint8)
    if not np.issubdtype(a.dtype, np.floating):
        raise MetricError(f"bits must be numbers, got {a.dtype}")
    if logits:
        return (a > 0).astype(np.uint8)
    if (a < 0).any() or (a > 1).any():
        raise MetricError("soft bits must be probabilities in [0, 1] (for logits pass logits=True)")
    return (a > threshold).astype(np.uint8)


def _rows(pred: Any, target: Any, threshold: float, logits: bool) -> tuple[np.ndarray, np.ndarray]:
    p = hard_bits(pred, threshold, logits)
    t = hard_bits(target, 0.5, False)
    if p.ndim == 1:
        p = p[None]
    if t.ndim == 1:
        t = t[None]
    if p.ndim != 2 or t.ndim != 2 or p.shape[1] != t.shape[1] or t.shape[0] not in (1, p.shape[0]):
        raise MetricError(f"bit arrays must be L or N x L with matching L, got {p.shape} and {t.shape}")
    return p, np.broadcast_to(t, p.shape)


def ber_per_image(pred: Any, target: Any, threshold: float = 0.5, logits: bool = False) -> np.ndarray:
    """Bit error rate of each row (image): share of bits that differ from the target."""
    p, t = _rows(pred, target, threshold, logits)
    return (p != t).mean(axis=1)


def ber(pred: Any, target: Any, threshold: float = 0.5, logits: bool = False) -> float:
    """Bit error rate: per image, then averaged over images (papers 000 Table 1 and 002 report it in %)."""
    return float(ber_per_image(pred, target, threshold, logits).mean())


def word_accuracy(pred: Any, target: Any, threshold: float = 0.5, logits: bool = False) -> float:
    """Share of messages (rows) recovered exactly, every bit right."""
    p, t = _rows(pred, target, threshold, logits)
    return float((p == t).all(axis=1).mean())


def message_accuracy(decoded: Sequence[Any], expected: Sequence[Any] | Any) -> float:
    """Share of decoded messages (str / bytes / int / None for a failed decode) equal to the expected ones.

    ``expected`` is one message (compared with every decoded one) or a sequence of the same length.
    """
    dec = list(decoded)
    if not dec:
        raise MetricError("no decoded messages")
    if isinstance(expected, (list, tuple)):
        exp = list(expected)
        if len(exp) != len(dec):
            raise MetricError(f"{len(dec)} decoded messages but {len(exp)} expected ones")
    else:
        exp = [expected] * len(dec)
    return float(np.mean([d is not None and type(d) is type(e) and d == e for d, e in zip(dec, exp)]))
