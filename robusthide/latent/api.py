"""Embed / extract / decode with the latent codec (paper 004 end to end) and the ``.rhl`` container.

Sender: cover -> code editing (editing.py) -> round + range-code y and z (models.py) -> .rhl bytes.
Receiver: .rhl -> decoded y_hat -> g_s -> 8-bit image -> fixed decoder -> soft vote over the copies of the
message (message.py). The receiver needs the same codec and decoder weights (checked by their ids) and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from robusthide import RobustHideError
from robusthide.latent import message as msg
from robusthide.latent.container import RhlFile
from robusthide.latent.editing import EditConfig, edit_latent
from robusthide.latent.models import ScaleHyperprior, load_codec
from robusthide.latent.stegnet import BasicDecoder, load_decoder

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_CODEC = WEIGHTS_DIR / "hyperprior.safetensors"
DEFAULT_DECODER = WEIGHTS_DIR / "fnns-decoder.safetensors"
KIND_BITS, KIND_TEXT, KIND_TEXT_CRC = 0, 1, 2  # KIND_TEXT: files of robusthide <= 0.1.0 (no CRC)


def resolve_codec(path: str | Path | None) -> ScaleHyperprior:
    if path is None:
        if not DEFAULT_CODEC.is_file():
            raise RobustHideError(
                "no codec weights: pass --codec PATH (train one with 'robusthide latent train-codec')"
            )
        path = DEFAULT_CODEC
    return load_codec(path)


def resolve_decoder(spec: str | None) -> BasicDecoder:
    if spec is None:
        spec = str(DEFAULT_DECODER) if DEFAULT_DECODER.is_file() else "fnns-r:0"
    return load_decoder(spec)


def to_8bit(x: Tensor) -> Tensor:
    return torch.round(x.clamp(0, 1) * 255.0) / 255.0


@dataclass
class EmbedInfo:
    raw_accuracy: float  # per-position bit accuracy of the decoded image (before the vote)
    recovered: bool  # the message reads back exactly from the bitstream
    payload_bytes: int
    bpp: float  # 8 * file bytes / (H * W)


def embed(
    codec: ScaleHyperprior, decoder: BasicDecoder, cover: Tensor, bits: np.ndarray, kind: int = KIND_BITS,
    key: int = 0, cfg: EditConfig | None = None,
) -> tuple[bytes, EmbedInfo]:
    """.rhl bytes of ``cover`` (1 x 3 x H x W in [0, 1]) carrying ``bits``; verifies by decoding."""
    h, w = cover.shape[-2:]
    target = msg.spread(bits, (decoder.data_depth, h, w), key)
    res = edit_latent(codec, decoder, cover, target, cfg)
    c = codec.compress_latent(res.y)
    rhl = RhlFile(h, w, c.z_shape, codec.model_id(), decoder.decoder_id(), len(bits), kind, c.z_string, c.y_string)
    data = rhl.to_bytes()
    image = decode_bytes(codec, data)
    with torch.no_grad():
        logits = decoder(image)
    raw = float(((logits > 0).float() == target).float().mean())
    got = msg.gather(logits, len(bits), key)
    return data, EmbedInfo(raw, bool(np.array_equal(got, bits)), rhl.payload_bytes, 8.0 * len(data) / (h * w))


def decode_bytes(codec: ScaleHyperprior, data: bytes) -> Tensor:
    """The decoded 8-bit stego image (1 x 3 x H x W float) of .rhl bytes."""
    rhl = RhlFile.from_bytes(data)
    _check(rhl.codec_id, codec.model_id(), "codec")
    y_hat = codec.decompress_latent(rhl.y_string, rhl.z_string, rhl.z_shape)
    return to_8bit(codec.synthesize(y_hat, (rhl.height, rhl.width)))


def extract(codec: ScaleHyperprior, decoder: BasicDecoder, data: bytes, key: int = 0) -> tuple[np.ndarray, int]:
    """(message bits, kind) read from .rhl bytes."""
    rhl = RhlFile.from_bytes(data)
    _check(rhl.decoder_id, decoder.decoder_id(), "steganography decoder")
    image = decode_bytes(codec, data)
    with torch.no_grad():
        logits = decoder(image)
    return msg.gather(logits, rhl.n_bits, key), rhl.kind


def _check(want: str, have: str, what: str) -> None:
    if want != have:
        raise RobustHideError(f"this .rhl file was made with {what} {want}, not the given one ({have})")
