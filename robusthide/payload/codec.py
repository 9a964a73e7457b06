"""Messages <-> N raw payload bits: typed message, header, BCH error correction, whitening.

Data field (D bits, see :mod:`robusthide.payload.schemas`), by kind:

* ``int``:   the integer, D bits big-endian (0 .. 2^D - 1);
* ``bytes``: the bytes, then bit padding ``1 0 ... 0`` (so at most floor((D - 1) / 8) bytes);
* ``hex``:   one nibble per hex digit, then bit padding (floor((D - 1) / 4) digits; decoded lower case);
* ``text``:  a flag bit (0: 7-bit ASCII, 1: UTF-8), the characters (7 bits each) or UTF-8 bytes, then bit
  padding. Pure-ASCII text always uses the 7-bit form.

Bit padding (a 1 then zeros, as ISO/IEC 9797-1 method 2) makes lengths self-delimiting at a cost of one bit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from robusthide.payload.detection import DEFAULT_FPR, MAX_CHASE_BITS, confidence_from_p, p_value, soft_decodable
from robusthide.payload.osd import ordered_statistics_decode
from robusthide.payload.schemas import (
    KIND_BITS,
    KINDS,
    SCHEMA_BITS,
    MessageTooLongError,
    PayloadError,
    Schema,
    bch_for,
    get_schema,
    list_schemas,
    whitening_key,
)
from robusthide.payload.soft_detection import combined_p_value, soft_p_value

#: Order of the ordered-statistics decoding of the :func:`~robusthide.payload.detection.soft_decodable` schemas.
OSD_ORDER = 2
_HEX = re.compile(r"^[0-9a-fA-F]*$")


@dataclass
class DecodeResult:
    """What :func:`decode_bits` found. ``message``/``kind``/``schema`` are None unless ``ok``."""

    message: Any
    kind: str | None
    schema: int | None
    corrected_errors: int | None
    ok: bool                     # a valid payload was decoded (BCH + header + format checks)
    p_value: float = 1.0         # H0 (unmarked image) probability of evidence this strong
    detected: bool = False       # ok and p_value <= threshold
    confidence: float = 0.0      # see detection.confidence_from_p
    schema_name: str | None = None
    n_bits: int = 0
    soft_decoded: bool = False   # found by Chase flips of unreliable bits or by OSD (not by the hard decision)
    reason: str = ""             # why not ok


# -- bit helpers ---------------------------------------------------------------------------------------

def _int_bits(value: int, width: int) -> np.ndarray:
    if width == 0:
        return np.zeros(0, np.uint8)
    return np.array([(value >> (width - 1 - i)) & 1 for i in range(width)], dtype=np.uint8)


def _bits_int(bits: np.ndarray) -> int:
    v = 0
    for b in bits:
        v = (v << 1) | int(b)
    return v


def _bytes_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8)) if data else np.zeros(0, np.uint8)


# -- message <-> data field ----------------------------------------------------------------------------

def _infer_kind(message: Any) -> str:
    if isinstance(message, bool):
        raise PayloadError("a message cannot be a bool; use an int (0/1) or text")
    if isinstance(message, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(message, (int, np.integer)):
        return "int"
    if isinstance(message, str):
        return "text"
    raise PayloadError(f"unsupported message type {type(message).__name__}: give text, bytes, "
                       "hex (kind='hex') or an int")


def _too_long(s: Schema, what: str, limit: str, got: str) -> MessageTooLongError:
    return MessageTooLongError(f"message too long for the {s.n_bits}-bit payload, schema {s.id} '{s.name}' "
                               f"({s.data_bits} data bits): {what} holds at most {limit}, got {got}", s)


def _pad(content: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros(width, np.uint8)
    out[: content.size] = content
    out[content.size] = 1
    return out


def _data_field(message: Any, kind: str, s: Schema) -> np.ndarray:
    d = s.data_bits
    if kind == "int":
        if isinstance(message, str):
            try:
                message = int(message.strip(), 0)
            except ValueError:
                raise PayloadError(f"not an integer: {message!r}") from None
        if isinstance(message, bool) or not isinstance(message, (int, np.integer)):
            raise PayloadError(f"kind 'int' needs an integer, got {type(message).__name__}")
        v = int(message)
        if v < 0:
            raise PayloadError(f"integer messages must be >= 0, got {v}")
        if v >= 1 << d:
            raise _too_long(s, "an integer", f"{(1 << d) - 1} (0 .. 2^{d} - 1)", str(v))
        return _int_bits(v, d)
    if kind == "bytes":
        if isinstance(message, str):
            message = message.encode("utf-8")
        if not isinstance(message, (bytes, bytearray, memoryview)):
            raise PayloadError(f"kind 'bytes' needs bytes, got {type(message).__name__}")
        data = bytes(message)
        limit = (d - 1) // 8
        if len(data) > limit:
            raise _too_long(s, "bytes", f"{limit} bytes", f"{len(data)} bytes")
        return _pad(_bytes_bits(data), d)
    if kind == "hex":
        if isinstance(message, (bytes, bytearray, memoryview)):
            message = bytes(message).hex()
        if not isinstance(message, str):
            raise PayloadError(f"kind 'hex' needs a hex string, got {type(message).__name__}")
        h = "".join(message.split())
        if h[:2].lower() == "0x":
            h = h[2:]
        if not _HEX.match(h):
            raise PayloadError(f"not a hex string: {message!r}")
        limit = (d - 1) // 4
        if len(h) > limit:
            raise _too_long(s, "hex", f"{limit} hex digits", f"{len(h)} digits")
        content = np.concatenate([_int_bits(int(c, 16), 4) for c in h]) if h else np.zeros(0, np.uint8)
        return _pad(content, d)
    if kind == "text":
        if not isinstance(message, str):
            raise PayloadError(f"kind 'text' needs a str, got {type(message).__name__}")
        ascii_limit, utf8_limit = max(0, (d - 2) // 7), max(0, (d - 2) // 8)
        if message.isascii():
            if len(message) > ascii_limit:
                raise _too_long(s, "text", f"{ascii_limit} ASCII characters "
                                f"({utf8_limit} UTF-8 bytes otherwise)", f"{len(message)} characters")
            content = [np.zeros(1, np.uint8)] + [_int_bits(ord(c), 7) for c in message]
        else:
            raw = message.encode("utf-8")
            if len(raw) > utf8_limit:
                raise _too_long(s, "non-ASCII text", f"{utf8_limit} UTF-8 bytes "
                                f"({ascii_limit} ASCII characters otherwise)", f"{len(raw)} UTF-8 bytes")
            content = [np.ones(1, np.uint8), _bytes_bits(raw)]
        return _pad(np.concatenate(content), d)
    raise PayloadError(f"unknown message kind {kind!r}; choose one of {', '.join(KINDS)}")


def _unpad(field: np.ndarray) -> np.ndarray | None:
    ones = np.flatnonzero(field)
    if ones.size == 0:
        return None
    return field[: ones[-1]]


def _parse_field(kind: str, field: np.ndarray) -> Any:
    """Data field -> message; None if malformed (cannot come from :func:`encode_message`)."""
    if kind == "int":
        return _bits_int(field)
    content = _unpad(field)
    if content is None:
        return None
    if kind == "bytes":
        if content.size % 8:
            return None
        return np.packbits(content).tobytes() if content.size else b""
    if kind == "hex":
        if content.size % 4:
            return None
        return "".join(f"{_bits_int(content[i:i + 4]):x}" for i in range(0, content.size, 4))
    # text
    if content.size == 0:
        return None
    flag, body = int(content[0]), content[1:]
    if flag == 0:
        if body.size % 7:
            return None
        return "".join(chr(_bits_int(body[i:i + 7])) for i in range(0, body.size, 7))
    if body.size % 8:
        return None
    raw = np.packbits(body).tobytes() if body.size else b""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if text.isascii() else text  # ASCII is always sent 7-bit


# -- BCH -----------------------------------------------------------------------------------------------

def _bch_encode(s: Schema, info: np.ndarray) -> np.ndarray:
    bch = bch_for(s)
    pad = (-s.k) % 8
    data = np.packbits(np.concatenate([np.zeros(pad, np.uint8), info])).tobytes()
    ecc = np.unpackbits(np.frombuffer(bch.encode(data), dtype=np.uint8))[: s.ecc_bits]
    return np.concatenate([info, ecc]).astype(np.uint8)


def _bch_decode(s: Schema, word: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Bounded-distance decode of an (unwhitened) N-bit word: (info bits, corrected errors) or None.

    None when BCH fails, when a "correction" falls in the shortening padding, or when the schema id /
    reserved bits do not match ``s``.
    """
    bch = bch_for(s)
    k, pad = s.k, (-s.k) % 8
    data = bytearray(np.packbits(np.concatenate([np.zeros(pad, np.uint8), word[:k]])).tobytes())
    ecc_pad = bch.ecc_bytes * 8 - s.ecc_bits
    ecc = bytearray(np.packbits(np.concatenate([word[k:], np.zeros(ecc_pad, np.uint8)])).tobytes())
    nerr = bch.decode(data, ecc)
    if nerr < 0:
        return None
    if nerr > 0:
        bch.correct(data, ecc)
    dbits = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))
    ebits = np.unpackbits(np.frombuffer(bytes(ecc), dtype=np.uint8))
    if dbits[:pad].any() or ebits[s.ecc_bits:].any():
        return None
    fixed = np.concatenate([dbits[pad:], ebits[: s.ecc_bits]])
    e = int(np.count_nonzero(fixed != word))
    if e != nerr:
        return None
    info = fixed[:k]
    if _bits_int(info[:SCHEMA_BITS]) != s.id:
        return None
    r0 = SCHEMA_BITS + KIND_BITS
    if info[r0: r0 + s.reserved_bits].any():
        return None
    return info, e


@cache
def _subcode(s: Schema) -> tuple[np.ndarray, np.ndarray]:
    """The codewords of schema ``s`` as an affine code for :func:`ordered_statistics_decode`: the codeword of
    the fixed information bits (schema id, zero reserved bits) and the generator rows of the free ones (kind
    and data), both before whitening. BCH encoding is linear, so every codeword of ``s`` is the offset plus
    a combination of those rows."""
    fixed = np.zeros(s.k, np.uint8)
    fixed[:SCHEMA_BITS] = _int_bits(s.id, SCHEMA_BITS)
    free = [*range(SCHEMA_BITS, SCHEMA_BITS + KIND_BITS), *range(s.k - s.data_bits, s.k)]
    rows = np.zeros((len(free), s.n_bits), np.uint8)
    for r, i in enumerate(free):
        unit = np.zeros(s.k, np.uint8)
        unit[i] = 1
        rows[r] = _bch_encode(s, unit)
    return _bch_encode(s, fixed), rows


def _osd_decode(s: Schema, word: np.ndarray, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ordered-statistics decoding of an (unwhitened) word under schema ``s``: (info bits, codeword)."""
    offset, rows = _subcode(s)
    cw = ordered_statistics_decode(word ^ offset, rel, rows, OSD_ORDER) ^ offset
    return cw[: s.k], cw


# -- public API ----------------------------------------------------------------------------------------

def encode_message(message: Any, n_bits: int, schema: int | str | Schema | None = None,
                   kind: str | None = None) -> np.ndarray:
    """Encode a message into ``n_bits`` raw payload bits (uint8 0/1), ready for the network.

    ``kind``: 'text' | 'bytes' | 'hex' | 'int'; by default inferred from the type (str -> text, bytes ->
    bytes, int -> int). A hex string needs ``kind='hex'``. A message that does not fit raises
    :class:`PayloadError` saying the limit (see :func:`capacity`).
    """
    s = get_schema(n_bits, schema)
    kind = _infer_kind(message) if kind is None else str(kind).lower()
    if kind not in KINDS:
        raise PayloadError(f"unknown message kind {kind!r}; choose one of {', '.join(KINDS)}")
    field = _data_field(message, kind, s)
    info = np.concatenate([_int_bits(s.id, SCHEMA_BITS), _int_bits(KINDS.index(kind), KIND_BITS),
                           np.zeros(s.reserved_bits, np.uint8), field])
    return _bch_encode(s, info) ^ whitening_key(n_bits)


def _as_word(bits: Any, n_bits: int | None, logits: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(hard bits uint8, |LLR| reliabilities or None for hard input) from bits / probabilities / logits."""
    if hasattr(bits, "detach"):
        bits = bits.detach().cpu().numpy()
    a = np.asarray(bits)
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1:
        raise PayloadError(f"expected one word of payload bits (1-D), got shape {a.shape}")
    if n_bits is not None and a.size != n_bits:
        raise PayloadError(f"expected {n_bits} payload bits, got {a.size}")
    list_schemas(a.size)  # validates N
    if a.dtype == bool:
        return a.astype(np.uint8), None
    if np.issubdtype(a.dtype, np.integer):
        if ((a != 0) & (a != 1)).any():
            raise PayloadError("payload bits must be 0 or 1")
        return a.astype(np.uint8), None
    if not np.issubdtype(a.dtype, np.floating):
        raise PayloadError(f"payload bits must be numbers, got {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise PayloadError("payload probabilities must be finite")
    if logits:
        llr = a
        hard = (a > 0).astype(np.uint8)
    else:
        if (a < 0).any() or (a > 1).any():
            raise PayloadError("payload soft bits must be probabilities in [0, 1] (logits: pass logits=True)")
        if np.all((a == 0) | (a == 1)):
            return a.astype(np.uint8), None
        p = np.clip(a, 1e-9, 1 - 1e-9)
        llr = np.log(p) - np.log1p(-p)
        hard = (a > 0.5).astype(np.uint8)
    return hard, np.abs(llr)


def _try_schemas(word: np.ndarray, schemas: tuple[Schema, ...]) -> list[tuple[Schema, np.ndarray, int]]:
    out = []
    for s in schemas:
        r = _bch_decode(s, word)
        if r is not None:
            out.append((s, r[0], r[1]))
    return out


def decode_bits(bits: Any, n_bits: int | None = None, *, schema: int | str | Schema | None = None,
                chase_bits: int = 4, threshold: float = DEFAULT_FPR, logits: bool = False,
                soft_share: float = 0.0) -> DecodeResult:
    """Decode N raw bits (0/1, or soft P(bit = 1), or logits with ``logits=True``) into a message.

    The schema is auto-detected (every schema of N is tried) unless ``schema`` is given. With soft input,
    when the hard decision decodes under no schema, Chase-2 decoding flips every combination of the
    ``chase_bits`` least reliable bits (at most 2^8 trials) and keeps the most significant candidate; if that
    detects nothing either, the :func:`~robusthide.payload.detection.soft_decodable` schemas (the long codes
    with few data bits) are decoded by ordered-statistics decoding of order :data:`OSD_ORDER`
    (:mod:`robusthide.payload.osd`), which reaches far beyond the BCH radius when the errors sit in the less
    reliable bits.
    ``corrected_errors`` is always the Hamming distance between the hard decision and the decoded codeword,
    and ``p_value`` / ``detected`` follow :mod:`robusthide.payload.detection`. ``soft_share`` > 0 (soft input
    only) decides by the hard and the soft-decision test at once, the latter with that share of the
    false-positive budget (:func:`robusthide.payload.soft_detection.combined_p_value`).
    """
    if not 0 <= soft_share < 1:
        raise PayloadError(f"soft share must be in [0, 1), got {soft_share}")
    hard, rel = _as_word(bits, n_bits, logits)
    n = hard.size
    schemas = (get_schema(n, schema),) if schema is not None else list_schemas(n)
    all_schemas = schema is None
    chase = 0 if rel is None else max(0, min(int(chase_bits), MAX_CHASE_BITS, n))
    key = whitening_key(n)
    y = hard ^ key

    def pv(s: Schema, e: int, wrong: np.ndarray) -> float:
        p = p_value(n, s, e, extra_radius=chase, all_schemas=all_schemas)
        if not soft_share or rel is None:
            return p
        # the soft p-value is at least the chance of one codeword, 2^(2+D-N): when even that could not detect,
        # the decision is the hard test's (at its share), and the dynamic programme is skipped
        if math.ldexp(1.0, s.free_bits - n) > threshold * soft_share:
            return combined_p_value(p, 1.0, soft_share)
        return combined_p_value(p, soft_p_value(n, s, rel, wrong, chase, all_schemas), soft_share)

    def best_of(cands: list[tuple[Schema, np.ndarray, int, np.ndarray]]):
        valid = []
        for s, info, _e, cw in cands:
            kind = KINDS[_bits_int(info[SCHEMA_BITS: SCHEMA_BITS + KIND_BITS])]
            msg = _parse_field(kind, info[s.k - s.data_bits:])
            if msg is None:
                continue
            e = int(np.count_nonzero(cw != y))
            soft_cost = float(rel[cw != y].sum()) if rel is not None else float(e)
            valid.append((pv(s, e, cw != y), soft_cost, s.id, s, e, kind, msg))
        return min(valid, key=lambda v: v[:3]) if valid else None

    def codeword(s: Schema, info: np.ndarray) -> np.ndarray:
        return _bch_encode(s, info)

    found = [(s, info, e, codeword(s, info)) for s, info, e in _try_schemas(y, schemas)]
    best = best_of(found)
    soft = False
    if chase > 0 and (best is None or best[0] > threshold):
        # Chase-2: only when the hard decision gives no payload or no detection; cheap (<= 2^8 x 4 decodes)
        order = np.argsort(rel, kind="stable")[:chase]
        cands = []
        for pattern in range(1, 1 << chase):
            z = y.copy()
            for j in range(chase):
                if pattern >> j & 1:
                    z[order[j]] ^= 1
            cands += [(s, info, e, codeword(s, info)) for s, info, e in _try_schemas(z, schemas)]
        alt = best_of(cands)
        if alt is not None and (best is None or alt[:3] < best[:3]):
            best, soft = alt, True
    osd = [s for s in schemas if soft_decodable(s)] if rel is not None else []
    if osd and (best is None or best[0] > threshold):
        # OSD: long codes whose p-value allows decodes far beyond t (detection.soft_decodable)
        cands = []
        for s in osd:
            info, cw = _osd_decode(s, y, rel)
            cands.append((s, info, int(np.count_nonzero(cw != y)), cw))
        alt = best_of(cands)  # OSD always returns a codeword: kept only as a detection
        if alt is not None and alt[0] <= threshold and (best is None or alt[:3] < best[:3]):
            best, soft = alt, True
    if best is None:
        reason = "BCH decoding failed under every schema" if not found else "malformed payload"
        return DecodeResult(None, None, None, None, False, 1.0, False, 0.0, None, n, False, reason)
    p, _, _, s, e, kind, msg = best
    return DecodeResult(msg, kind, s.id, e, True, p, p <= threshold, confidence_from_p(p, threshold),
                        s.name, n, soft, "")


def capacity(n_bits: int, schema: int | str | Schema | None = None,
             threshold: float = DEFAULT_FPR) -> dict[str, Any]:
    """What a schema carries: data bits, largest message per kind, BCH parameters and detection limits."""
    from robusthide.payload.detection import max_detectable_errors

    s = get_schema(n_bits, schema)
    d = s.data_bits
    return {
        "n_bits": n_bits,
        "schema": s.id,
        "schema_name": s.name,
        "data_bits": d,
        "bch": f"BCH(n={n_bits}, k={s.k}, t={s.t}) over GF(2^{s.m})",
        "bch_t": s.t,
        "ecc_bits": s.ecc_bits,
        "header_bits": SCHEMA_BITS + KIND_BITS,
        "reserved_bits": s.reserved_bits,
        "max_int": (1 << d) - 1,
        "max_bytes": (d - 1) // 8,
        "max_hex_digits": (d - 1) // 4,
        "max_text_ascii_chars": max(0, (d - 2) // 7),
        "max_text_utf8_bytes": max(0, (d - 2) // 8),
        "detect_max_errors": max_detectable_errors(n_bits, s, threshold),
        "p_value_at_full_correction": p_value(n_bits, s, s.t),
        "threshold": threshold,
    }


def schema_table(threshold: float = DEFAULT_FPR) -> list[dict[str, Any]]:
    """Every schema of every supported N (for docs and ``robusthide capacity``)."""
    from robusthide.payload.schemas import SUPPORTED_N

    return [capacity(n, s.id, threshold) for n in SUPPORTED_N for s in list_schemas(n)]


def message_value(text: str, kind: str | None = None) -> Any:
    """The message a person means by ``-m TEXT``.

    Without ``--kind``, ASCII digits are an integer (``-m 1234`` hides the number 1234 and ``extract``
    prints 1234); anything else is text. ``--kind int`` also reads ``0x..``/``0o..``/``0b..``; ``--kind
    text`` keeps digits as text; ``hex`` and ``bytes`` are read by the payload codec."""
    if kind is None:
        return int(text) if re.fullmatch(r"[0-9]+", text) else text
    if kind == "int":
        try:
            return int(text, 0)
        except ValueError:
            raise PayloadError(f"not an integer: {text!r}") from None
    return text
