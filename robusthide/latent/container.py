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


#: kinds a file may declare (api.KIND_BITS, KIND_TEXT, KIND_TEXT_CRC)
KINDS = (0, 1, 2)


def _check_header(kind: int, h: int, w: int, zh: int, zw: int, n_bits: int) -> None:
    """Bound every header value before it is used (a forged header must not ask for a 4-gigapixel image):
    the image within the pixel limit of :mod:`robusthide.io.safe`, the hyper-latent no larger than the latent
    (stride 16) of that image, at most 3 message bits per pixel."""
    from robusthide.io.safe import MAX_PIXELS

    if kind not in KINDS:
        raise RobustHideError(f"corrupt .rhl file: unknown message kind {kind}")
    if h < 1 or w < 1 or h * w > MAX_PIXELS:
        raise RobustHideError(f"corrupt .rhl file: image size {w} x {h} out of range (1 to {MAX_PIXELS / 1e6:g} MP)")
    if not (1 <= zh <= -(-h // 16) and 1 <= zw <= -(-w // 16)):
        raise RobustHideError(f"corrupt .rhl file: hyper-latent {zw} x {zh} does not fit a {w} x {h} image")
    if n_bits > 3 * h * w:
        raise RobustHideError(f"corrupt .rhl file: {n_bits} message bits for a {w} x {h} image")


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
        _check_header(kind, h, w, zh, zw, n_bits)
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
