"""Payload layouts ("schemas"): how N raw bits are split into header, data and BCH parity.

Every N-bit payload word is, before whitening (see :func:`whitening_key`)::

    [ schema id : 2 ][ kind : 2 ][ reserved : r zeros ][ data : D ][ BCH parity : N - k ]
    `------------------------ k information bits ------------------'

protected by one binary BCH code (bchlib, Linux-kernel BCH over GF(2^m), shortened to N bits) with
``m`` the smallest field with ``2^m - 1 >= N``. The schema id and the reserved bits are *checked* after
decoding (a word whose header does not match the schema being tried is rejected), so for detection only
``2 + D`` of the ``k`` information bits are free (see :mod:`robusthide.payload.detection`).

Four schemas per N, auto-detected by trial decoding (like TrustMark's four BCH schemas), trading data bits
for correction strength. ``robust`` (id 0) is the default: it is the only tier designed so that a
decode at *full* correction (``t`` errors) still has a p-value <= 1e-6 on an unmarked image; the other
tiers carry more data, and presence is declared only up to fewer corrected errors (``detect_max_errors``).
The table is frozen: changing a row changes the bit layout of already-marked images. One row changed once,
before any 256-bit model shipped: the 256-bit ``robust`` row was BCH t=25 with 45 data bits (the same
207 parity bits as t=24) and is t=21 with 72 data bits since session 16 of issue 19, so that a 256-bit
default carries 64 data bits or more; its ordered-statistics decoding (:mod:`robusthide.payload.osd`)
reaches far beyond t, where the p-value allows it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import cache

import numpy as np

from robusthide import RobustHideError


class PayloadError(RobustHideError):
    """Bad message, unsupported payload size or schema (one-line message for the user)."""


class MessageTooLongError(PayloadError):
    """A message longer than its schema's data bits hold; ``schema`` is that schema."""

    def __init__(self, message: str, schema: Schema) -> None:
        super().__init__(message)
        self.schema = schema


SCHEMA_BITS = 2
KIND_BITS = 2
HEADER_BITS = SCHEMA_BITS + KIND_BITS

#: kind code (2 header bits) <-> name
KINDS = ("int", "bytes", "text", "hex")

SCHEMA_NAMES = ("robust", "balanced", "large", "max")

#: N -> rows (t, ecc_bits, data_bits) for schema ids 0..3. ecc_bits is what bchlib gives for BCH(t, m)
#: (checked at load); reserved bits r = N - ecc_bits - HEADER_BITS - data_bits.
_TABLE: dict[int, tuple[tuple[int, int, int], ...]] = {
    48: ((4, 24, 7), (3, 18, 26), (2, 12, 32), (1, 6, 38)),
    64: ((7, 49, 11), (5, 35, 25), (4, 28, 32), (3, 21, 39)),
    96: ((10, 63, 29), (7, 49, 43), (5, 35, 57), (4, 28, 64)),
    100: ((10, 63, 32), (7, 49, 47), (5, 35, 61), (4, 28, 68)),
    128: ((12, 92, 32), (9, 68, 56), (6, 48, 76), (4, 32, 92)),
    256: ((21, 180, 72), (17, 144, 108), (12, 108, 144), (8, 72, 180)),
}

SUPPORTED_N: tuple[int, ...] = tuple(sorted(_TABLE))
DEFAULT_SCHEMA_ID = 0


@dataclass(frozen=True)
class Schema:
    """One payload layout for an N-bit word (see the module docstring)."""

    n_bits: int
    id: int
    name: str
    m: int              # BCH field GF(2^m)
    t: int              # BCH correction capability (bits)
    ecc_bits: int       # BCH parity bits
    data_bits: int      # D: message bits
    reserved_bits: int  # r: zero bits, checked (extra detection margin)

    @property
    def k(self) -> int:
        """Information bits (header + reserved + data) of the shortened BCH code."""
        return self.n_bits - self.ecc_bits

    @property
    def free_bits(self) -> int:
        """Information bits NOT checked by the decoder (kind + data): log2 of the accepted codewords."""
        return KIND_BITS + self.data_bits

    def __str__(self) -> str:
        return f"{self.n_bits}-bit schema {self.id} '{self.name}'"


def _field_order(n_bits: int) -> int:
    m = 5
    while (1 << m) - 1 < n_bits:
        m += 1
    return m


@cache
def list_schemas(n_bits: int) -> tuple[Schema, ...]:
    """The four schemas of an N-bit payload, ids 0..3."""
    if n_bits not in _TABLE:
        raise PayloadError(f"unsupported payload size {n_bits} bits; supported: "
                           f"{', '.join(str(n) for n in SUPPORTED_N)}")
    m = _field_order(n_bits)
    out = []
    for sid, (t, ecc, d) in enumerate(_TABLE[n_bits]):
        r = n_bits - ecc - HEADER_BITS - d
        if r < 0:  # pragma: no cover - guarded by tests
            raise AssertionError(f"bad schema table row for N={n_bits}, id {sid}")
        out.append(Schema(n_bits, sid, SCHEMA_NAMES[sid], m, t, ecc, d, r))
    return tuple(out)


def default_schema(n_bits: int) -> int:
    """Id of the default schema ('robust') of an N-bit payload."""
    list_schemas(n_bits)
    return DEFAULT_SCHEMA_ID


def get_schema(n_bits: int, schema: int | str | Schema | None = None) -> Schema:
    """Resolve a schema given by id (0-3), name ('robust', ...), Schema, or None (the default)."""
    schemas = list_schemas(n_bits)
    if schema is None:
        return schemas[DEFAULT_SCHEMA_ID]
    if isinstance(schema, Schema):
        if schema.n_bits != n_bits:
            raise PayloadError(f"{schema} does not apply to a {n_bits}-bit payload")
        return schema
    if isinstance(schema, str):
        key = schema.strip().lower()
        if key.isdigit():
            schema = int(key)
        else:
            for s in schemas:
                if s.name == key:
                    return s
            raise PayloadError(f"unknown schema {schema!r}; choose one of "
                               f"{', '.join(f'{s.id}={s.name}' for s in schemas)}")
    is_int = isinstance(schema, (int, np.integer)) and not isinstance(schema, bool)
    if is_int and 0 <= int(schema) < len(schemas):
        return schemas[int(schema)]
    raise PayloadError(f"unknown schema {schema!r}; choose one of "
                       f"{', '.join(f'{s.id}={s.name}' for s in schemas)}")


_LOCAL = threading.local()


def bch_for(schema: Schema):
    """The bchlib codec of a schema, cached per thread (a bchlib object keeps the state of its last
    ``decode`` for ``correct``, so threads must not share one)."""
    cache = getattr(_LOCAL, "bch", None)
    if cache is None:
        cache = _LOCAL.bch = {}
    key = (schema.t, schema.m)
    b = cache.get(key)
    if b is None:
        import bchlib

        b = bchlib.BCH(schema.t, m=schema.m)
        if b.ecc_bits != schema.ecc_bits:  # pragma: no cover - would change the bit layout
            raise RuntimeError(f"bchlib BCH(t={schema.t}, m={schema.m}) gives {b.ecc_bits} parity bits, "
                               f"expected {schema.ecc_bits}")
        cache[key] = b
    return b


@cache
def _key(n_bits: int) -> bytes:
    out = b""
    counter = 0
    while len(out) * 8 < n_bits:
        out += hashlib.sha256(f"robusthide/payload/whitening/v1/{n_bits}/{counter}".encode()).digest()
        counter += 1
    return out


def whitening_key(n_bits: int) -> np.ndarray:
    """Fixed pseudo-random N-bit key XORed onto every payload word (SHA-256 of a fixed string, so it is
    identical on every platform and numpy version). All-zero messages thus give non-zero words, and the
    bits a decoder reads from an unmarked image look like random words to the BCH decoder."""
    bits = np.unpackbits(np.frombuffer(_key(n_bits), dtype=np.uint8))[:n_bits]
    return bits.astype(np.uint8)
