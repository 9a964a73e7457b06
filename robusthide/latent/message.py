"""Messages in the D x H x W bit plane of the steganography decoder.

A message (UTF-8 text or a bit string) of n bits is repeated over the whole capacity C = D*H*W (the copy
i occupies positions i*n .. i*n + n - 1, the last copy may be partial) and XORed with a keystream drawn
from ``key`` (so the hidden bits look like the paper's Bernoulli(1/2) messages, §4.1). Reading sums the
clipped, key-corrected logits of all copies of each bit (soft majority vote). The number of bits n is
stored in the .rhl header; the repetition is the error correction (n <= C; each extra copy helps). Text
messages carry a CRC-16 after their bytes (kind ``text+crc16``), so a message that did not survive is
reported as such rather than printed as garbage.
"""

from __future__ import annotations

import binascii

import numpy as np
import torch
from torch import Tensor

from robusthide import RobustHideError

CHECK_BITS = 16


def text_to_bits(text: str, checksum: bool = False) -> np.ndarray:
    """The UTF-8 bits of ``text``; with ``checksum``, followed by its CRC-16/CCITT (16 bits, big endian)."""
    raw = text.encode("utf-8")
    if checksum:
        raw += binascii.crc_hqx(raw, 0xFFFF).to_bytes(2, "big")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8)).astype(np.uint8)


def bits_to_text(bits: np.ndarray, checksum: bool = False) -> str:
    """Inverse of :func:`text_to_bits`; with ``checksum``, a message whose CRC-16 does not match is refused
    (a one-line error) instead of printed as garbage."""
    bits = np.asarray(bits, dtype=np.uint8)
    if len(bits) % 8 or (checksum and len(bits) < 8 + CHECK_BITS):
        raise RobustHideError("corrupt .rhl file: text message length is not whole bytes")
    raw = np.packbits(bits).tobytes()
    if checksum:
        raw, crc = raw[: -CHECK_BITS // 8], int.from_bytes(raw[-CHECK_BITS // 8:], "big")
        if binascii.crc_hqx(raw, 0xFFFF) != crc:
            raise RobustHideError("the message does not verify (CRC-16 mismatch): wrong --key, or a file "
                                  "written with --force whose message did not read back")
    return raw.decode("utf-8", errors="replace")


def parse_bits(s: str) -> np.ndarray:
    if not s or set(s) - {"0", "1"}:
        raise RobustHideError("a bit message must be a non-empty string of 0 and 1")
    return np.array([int(c) for c in s], dtype=np.uint8)


def keystream(key: int, n: int) -> np.ndarray:
    return np.random.default_rng(int(key) & 0xFFFFFFFF).integers(0, 2, size=n, dtype=np.uint8)


def spread(bits: np.ndarray, shape: tuple[int, int, int], key: int = 0) -> Tensor:
    """The target plane (1 x D x H x W float 0/1) carrying repeated, whitened ``bits``."""
    cap = int(np.prod(shape))
    n = len(bits)
    if n == 0:
        raise RobustHideError("empty message")
    if n > cap:
        raise RobustHideError(f"message too long: {n} bits > capacity {cap} bits (D x H x W = {shape})")
    plane = np.resize(np.asarray(bits, dtype=np.uint8), cap) ^ keystream(key, cap)
    return torch.from_numpy(plane.astype(np.float32)).reshape(1, *shape)


def gather(logits: Tensor, n_bits: int, key: int = 0, clip: float = 4.0) -> np.ndarray:
    """Soft majority vote over the copies: the n_bits message bits from decoder logits (1 x D x H x W)."""
    lg = logits.detach().reshape(-1).double().clamp(-clip, clip).numpy()
    cap = lg.size
    if not 0 < n_bits <= cap:
        raise RobustHideError(f"cannot read {n_bits} bits from a capacity of {cap}")
    sign = 1.0 - 2.0 * keystream(key, cap)
    votes = np.zeros(n_bits)
    np.add.at(votes, np.arange(cap) % n_bits, lg * sign)
    return (votes > 0).astype(np.uint8)
