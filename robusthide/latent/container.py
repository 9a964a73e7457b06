"""The ``.rhl`` file: the compressed stego image of paper 004 (its bitstream *is* the transmitted image).

Layout (little endian)::

    magic  b"RHLATENT"  (8 bytes)
    version u8 = 1,  kind u8 (0: bits, 1: UTF-8 text, 2: UTF-8 text + CRC-16)
    height u32, width u32                 original image size (decoded image is cropped to it)
    z_h u16, z_w u16                      hyper-latent size
    codec_id 8 bytes, decoder_id 8 bytes  first 8 bytes of the weights' SHA-256 (models.state_hash)
    n_bits u32                            message length before repetition (message.py)
    len_z u32, len_y u32, z string, y string
    crc32 u32 of everything before it

Anything else (wrong magic, version, truncated, bad CRC) is refused with a one-line error.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from robusthide import RobustHideError

MAGIC = b"RHLATENT"
VERSION = 1
_HEAD = struct.Struct("<8sBBIIHH8s8sIII")


@dataclass
class RhlFile:
    height: int
    width: int
    z_shape: tuple[int, int]
    codec_id: str
    decoder_id: str
    n_bits: int
    kind: int
    z_string: bytes
    y_string: bytes

    def to_bytes(self) -> bytes:
        head = _HEAD.pack(
            MAGIC, VERSION, self.kind, self.height, self.width, self.z_shape[0], self.z_shape[1],
            bytes.fromhex(self.codec_id), bytes.fromhex(self.decoder_id), self.n_bits,
            len(self.z_string), len(self.y_string),
        )
        body = head + self.z_string + self.y_string
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes) -> RhlFile:
        if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
            raise RobustHideError("not a robusthide latent (.rhl) file: bad magic bytes")
        if len(data) < _HEAD.size + 4:
            raise RobustHideError("corrupt .rhl file: truncated header")
        (_, ver, kind, h, w, zh, zw, cid, did, n_bits, lz, ly) = _HEAD.unpack_from(data)
        if ver != VERSION:
            raise RobustHideError(f"unsupported .rhl version {ver} (this robusthide reads version {VERSION})")
        end = _HEAD.size + lz + ly
        if len(data) != end + 4:
            raise RobustHideError("corrupt .rhl file: length does not match its header")
        (crc,) = struct.unpack_from("<I", data, end)
        if crc != zlib.crc32(data[:end]):
            raise RobustHideError("corrupt .rhl file: checksum mismatch")
        z = data[_HEAD.size: _HEAD.size + lz]
        y = data[_HEAD.size + lz: end]
        return cls(h, w, (zh, zw), cid.hex(), did.hex(), n_bits, kind, z, y)

    @property
    def payload_bytes(self) -> int:
        """Bytes of the two entropy-coded strings (the codec's rate, without the container)."""
        return len(self.z_string) + len(self.y_string)
