"""Real entropy coding of integer latents with ``constriction``'s range coder.

Every latent element belongs to a *group* (a channel of z, or a quantised-scale index of y); each group
has a probability table (float64 pmf over ``offset .. offset + L - 1`` plus one escape entry). Groups are
coded in increasing order, elements of a group in raster order: the decoder knows each element's group
before decoding (from z's shape, or from the scales it computes from the decoded z), so it reads the same
symbols in the same order. A value outside its table is coded as the escape symbol followed by the raw
value (uniform over 2^16, i.e. |value| < 32768). ``constriction``'s ``Categorical(perfect=False)``
quantises each float64 pmf to fixed point deterministically, so encoder and decoder build identical
models from identical tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robusthide import RobustHideError

RAW_BITS = 16
RAW_OFFSET = 1 << (RAW_BITS - 1)
MAX_ABS = RAW_OFFSET - 1


def _constriction():
    try:
        import constriction
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RobustHideError(
            "the latent codec needs the 'constriction' package: pip install 'robusthide[latent]'"
        ) from e
    return constriction


@dataclass(frozen=True)
class Table:
    """pmf (float64, length L + 1: L in-range values then the escape) for values offset .. offset + L - 1."""

    pmf: np.ndarray
    offset: int

    @property
    def length(self) -> int:
        return len(self.pmf) - 1


def encode(values: np.ndarray, groups: np.ndarray, tables: list[Table]) -> bytes:
    """Range-code integer ``values`` (any shape), element i with ``tables[groups[i]]``."""
    c = _constriction()
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    g = np.asarray(groups, dtype=np.int64).reshape(-1)
    if v.shape != g.shape:
        raise ValueError("values and groups differ in size")
    if v.size and np.abs(v).max() > MAX_ABS:
        raise RobustHideError(f"latent value out of the codable range (|v| <= {MAX_ABS})")
    enc = c.stream.queue.RangeEncoder()
    raw_model = c.stream.model.Uniform(1 << RAW_BITS)
    for gi in np.unique(g):
        t = tables[int(gi)]
        sym = v[g == gi] - t.offset
        esc = (sym < 0) | (sym >= t.length)
        sym = np.where(esc, t.length, sym).astype(np.int32)
        enc.encode(sym, c.stream.model.Categorical(t.pmf, perfect=False))
        if esc.any():
            enc.encode((v[g == gi][esc] + RAW_OFFSET).astype(np.int32), raw_model)
    return np.asarray(enc.get_compressed(), dtype=np.uint32).astype("<u4").tobytes()


def decode(data: bytes, groups: np.ndarray, tables: list[Table]) -> np.ndarray:
    """Inverse of :func:`encode` given the same ``groups`` (shape kept) and tables."""
    c = _constriction()
    if len(data) % 4:
        raise RobustHideError("corrupt latent bitstream (length is not a multiple of 4 bytes)")
    g = np.asarray(groups, dtype=np.int64)
    flat = g.reshape(-1)
    out = np.zeros(flat.shape, dtype=np.int64)
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    dec = c.stream.queue.RangeDecoder(words)
    raw_model = c.stream.model.Uniform(1 << RAW_BITS)
    try:
        for gi in np.unique(flat):
            t = tables[int(gi)]
            idx = np.nonzero(flat == gi)[0]
            sym = np.asarray(dec.decode(c.stream.model.Categorical(t.pmf, perfect=False), len(idx)), dtype=np.int64)
            vals = sym + t.offset
            esc = sym == t.length
            if esc.any():
                raw = np.asarray(dec.decode(raw_model, int(esc.sum())), dtype=np.int64)
                vals[esc] = raw - RAW_OFFSET
            out[idx] = vals
    except Exception as e:  # constriction raises on exhausted / invalid data
        raise RobustHideError(f"corrupt latent bitstream ({e})") from None
    return out.reshape(g.shape)
