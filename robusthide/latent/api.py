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
from robusthide.latent.models import ScaleHyperprior
from robusthide.latent.stegnet import BasicDecoder
from robusthide.zoo.registry import DEFAULTS as ZOO_DEFAULTS
from robusthide.zoo.registry import load as zoo_load
from robusthide.zoo.registry import weights_path

#: the shipped weights live in the one zoo (robusthide/zoo/weights, :mod:`robusthide.zoo.registry`)
DEFAULT_CODEC = weights_path(ZOO_DEFAULTS["latent-codec"])
DEFAULT_DECODER = weights_path(ZOO_DEFAULTS["latent-decoder"])
#: the zoo name of the default decoder (what results files name when no ``--decoder`` is given)
DEFAULT_DECODER_NAME = ZOO_DEFAULTS["latent-decoder"]
WEIGHTS_DIR = DEFAULT_CODEC.parent
KIND_BITS, KIND_TEXT, KIND_TEXT_CRC = 0, 1, 2  # KIND_TEXT: files of robusthide <= 0.1.0 (no CRC)


def resolve_codec(path: str | Path | None = None) -> ScaleHyperprior:
    """A codec from a weights file or a zoo name (family ``latent``, role ``codec``) through the one zoo loader
    (:func:`robusthide.zoo.registry.load`); None: the zoo's default."""
    return zoo_load(ZOO_DEFAULTS["latent-codec"] if path is None else path, "latent", role="codec")


def resolve_decoder(spec: str | Path | None = None) -> BasicDecoder:
    """A steganography decoder from a weights file, a zoo name (role ``decoder``) or ``fnns-r:SEED``, through
    the one zoo loader; None: the zoo's default when installed, else ``fnns-r:0``."""
    if spec is None:
        spec = ZOO_DEFAULTS["latent-decoder"] if DEFAULT_DECODER.is_file() else "fnns-r:0"
    return zoo_load(spec, "latent", role="decoder")


def shipped_codecs() -> dict[str, ScaleHyperprior]:
    """Every installed zoo codec (family ``latent``, role ``codec``), by name, in registry order."""
    from robusthide.zoo.registry import PRETRAINED

    out = {}
    for name, entry in PRETRAINED.items():
        if entry.get("family") == "latent" and entry.get("role") == "codec" and weights_path(name).is_file():
            out[name] = resolve_codec(name)
    return out


def codec_of_quality(label: str) -> ScaleHyperprior:
    """The zoo's codec of quality ``label`` (``"6"`` or ``"q6"``); the family default wins a tie."""
    label = label.lstrip("qQ")
    shipped = shipped_codecs()
    default = shipped.get(ZOO_DEFAULTS["latent-codec"])
    if default is not None and default.meta.get("quality") == label:
        return default
    for model in shipped.values():
        if model.meta.get("quality") == label:
            return model
    have = ", ".join(sorted({m.meta.get("quality", "?") for m in shipped.values()})) or "none"
    raise RobustHideError(f"no shipped codec of quality {label} (shipped qualities: {have}); pass a weights"
                          " file (see 'latent train-codec')")


def codec_for_file(data: bytes) -> ScaleHyperprior:
    """The shipped codec that wrote these .rhl bytes (matched by the codec id in the header), so a receiver
    needs no ``--codec`` for any zoo codec; a file of another codec is refused with its id."""
    want = RhlFile.from_bytes(data).codec_id
    for model in shipped_codecs().values():
        if model.model_id() == want:
            return model
    raise RobustHideError(f"this .rhl file was made with codec {want}, which is not a shipped one: pass its "
                          "weights with --codec")


def from_pretrained(codec: str = ZOO_DEFAULTS["latent-codec"],
                    decoder: str = ZOO_DEFAULTS["latent-decoder"]) -> tuple[ScaleHyperprior, BasicDecoder]:
    """The (codec, steganography decoder) pair of the zoo (names or weights files), offline."""
    return resolve_codec(codec), resolve_decoder(decoder)


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


#: decoder id of a file written by :func:`compress_bytes` (no message, no steganography decoder)
NO_DECODER = "00" * 8


@dataclass
class CompressInfo:
    bpp: float  # 8 * file bytes / (H * W): the whole .rhl file, header and CRC included
    payload_bpp: float  # 8 * (y + z string bytes) / (H * W): the codec's own rate
    file_bytes: int


def compress_bytes(codec: ScaleHyperprior, image: Tensor) -> tuple[bytes, CompressInfo]:
    """The codec alone: .rhl bytes of ``image`` (1 x 3 x H x W in [0, 1]) carrying no message.

    :func:`decode_bytes` of the result equals ``to_8bit(codec.synthesize(codec.compress(image).y_hat))``."""
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise RobustHideError(f"compress expects one RGB image 1 x 3 x H x W, got {tuple(image.shape)}")
    h, w = image.shape[-2:]
    c = codec.compress(image)
    rhl = RhlFile(h, w, c.z_shape, codec.model_id(), NO_DECODER, 0, KIND_BITS, c.z_string, c.y_string)
    data = rhl.to_bytes()
    return data, CompressInfo(8.0 * len(data) / (h * w), 8.0 * rhl.payload_bytes / (h * w), len(data))


def decoder_for_file(data: bytes) -> BasicDecoder:
    """The shipped steganography decoder that these .rhl bytes were written against (matched by the decoder id in
    the header), so that files made with an earlier default (``latent-fnns-decoder`` before session 22) still
    read without ``--decoder``; a file of another decoder is refused with its id."""
    from robusthide.zoo.registry import PRETRAINED

    want = RhlFile.from_bytes(data).decoder_id
    for name, entry in PRETRAINED.items():
        if entry.get("family") == "latent" and entry.get("role") == "decoder" and weights_path(name).is_file():
            dec = resolve_decoder(name)
            if dec.decoder_id() == want:
                return dec
    raise RobustHideError(f"this .rhl file was made with steganography decoder {want}, which is not a shipped one:"
                          " pass its weights with --decoder")


def decode_bytes(codec: ScaleHyperprior, data: bytes) -> Tensor:
    """The decoded 8-bit stego image (1 x 3 x H x W float) of .rhl bytes."""
    rhl = RhlFile.from_bytes(data)
    _check(rhl.codec_id, codec.model_id(), "codec")
    y_hat = codec.decompress_latent(rhl.y_string, rhl.z_string, rhl.z_shape)
    return to_8bit(codec.synthesize(y_hat, (rhl.height, rhl.width)))


def extract(codec: ScaleHyperprior, decoder: BasicDecoder, data: bytes, key: int = 0) -> tuple[np.ndarray, int]:
    """(message bits, kind) read from .rhl bytes."""
    rhl = RhlFile.from_bytes(data)
    if rhl.n_bits == 0:
        raise RobustHideError("this .rhl file carries no message (written by 'latent compress'): decode it instead")
    _check(rhl.decoder_id, decoder.decoder_id(), "steganography decoder")
    image = decode_bytes(codec, data)
    with torch.no_grad():
        logits = decoder(image)
    return msg.gather(logits, rhl.n_bits, key), rhl.kind


def _check(want: str, have: str, what: str) -> None:
    if want != have:
        raise RobustHideError(f"this .rhl file was made with {what} {want}, not the given one ({have})")
