"""Peer watermarking methods from ``invisible-watermark`` (``imwatermark``) behind robusthide's interface.

``dwtDct`` (its default method), ``dwtDctSvd`` and ``rivaGan`` become objects with ``name``, ``n_bits``,
``embed(cover, bits, strength=1.0) -> marked`` and ``decode(images) -> logits`` on **uint8 RGB numpy**
images (N x H x W x 3, or one H x W x 3), so :func:`robusthide.evaluation.matrix.robustness_matrix`
measures them exactly like a robusthide model (same images, messages, codecs and metrics).

Payload: dwtDct / dwtDctSvd carry any number of bits (we use the compared model's ``n_bits``); rivaGan
is fixed at 32 bits. invisible-watermark works on BGR images of at least 256 x 256 pixels (area); we
convert RGB <-> BGR here. ``strength`` scales the DWT-DCT quantisation steps (``scales``, default 36)
and, for rivaGan (a network without a strength input), the residual: ``cover + s * (marked - cover)``
(MBRS's strength factor, paper 002 Sec. 4.3.1). The DWT methods only give hard bits: their logits are
+1 / -1; rivaGan's are ``p - 0.52`` (its decision threshold).

Install with ``pip install 'robusthide[peers]'`` (invisible-watermark needs PyWavelets and, for
rivaGan, onnxruntime; its wheel also declares ``opencv-python``, which the headless OpenCV already
installed satisfies: install it with ``--no-deps`` to avoid two OpenCV copies).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robusthide import RobustHideError

PEERS = ("dwtDct", "dwtDctSvd", "rivaGan")
_INSTALL = "install the peers extra: pip install 'robusthide[peers]'"


def _imwatermark() -> Any:
    try:
        import imwatermark
    except ImportError:
        raise RobustHideError(_INSTALL) from None
    return imwatermark


def _batch(images: Any) -> tuple[list[np.ndarray], bool]:
    if isinstance(images, np.ndarray):
        if images.ndim == 3:
            return [images], True
        if images.ndim == 4:
            return list(images), False
    elif isinstance(images, (list, tuple)):
        return [np.asarray(im) for im in images], False
    raise RobustHideError(f"peers take uint8 RGB numpy images, got {type(images).__name__}")


def _check(im: np.ndarray, name: str) -> np.ndarray:
    if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
        raise RobustHideError(f"{name}: expected uint8 H x W x 3 RGB images, got {im.dtype} {im.shape}")
    if im.shape[0] * im.shape[1] < 256 * 256:
        raise RobustHideError(f"{name}: invisible-watermark needs images of at least 256 x 256 pixels, "
                              f"got {im.shape[1]} x {im.shape[0]}")
    return im


def _out(ims: list[np.ndarray], single: bool) -> np.ndarray:
    return ims[0] if single else np.stack(ims)


class Peer:
    """Base class of the invisible-watermark wrappers (``uint8_io``: images are uint8 numpy arrays)."""

    name = ""
    method = ""
    uint8_io = True

    def __init__(self, n_bits: int = 32):
        self.iw = _imwatermark()
        if n_bits < 1:
            raise RobustHideError(f"n_bits must be positive, got {n_bits}")
        self.n_bits = int(n_bits)

    def _bits(self, bits: Any, n: int) -> np.ndarray:
        b = np.asarray(bits)
        b = b.reshape(1, -1) if b.ndim == 1 else b
        if b.shape != (n, self.n_bits):
            raise RobustHideError(f"{self.name}: expected bits of shape ({n}, {self.n_bits}), got {b.shape}")
        if not np.isin(b, (0, 1)).all():
            raise RobustHideError(f"{self.name}: bits must be 0 or 1")
        return b.astype(np.uint8)

    def _encode_one(self, bgr: np.ndarray, bits: np.ndarray, strength: float) -> np.ndarray:
        raise NotImplementedError

    def _decode_one(self, bgr: np.ndarray, strength: float) -> np.ndarray:
        raise NotImplementedError

    def embed(self, cover: Any, bits: Any, strength: float = 1.0) -> np.ndarray:
        """Marked uint8 RGB images (same shape as ``cover``) carrying ``bits`` (N x n_bits in {0, 1})."""
        ims, single = _batch(cover)
        b = self._bits(bits, len(ims))
        if not strength > 0:
            raise RobustHideError(f"strength must be positive, got {strength}")
        out = []
        for im, bi in zip(ims, b):
            bgr = np.ascontiguousarray(_check(im, self.name)[..., ::-1])
            out.append(np.ascontiguousarray(self._encode_one(bgr, bi, strength)[..., ::-1]))
        return _out(out, single)

    def decode(self, images: Any, strength: float = 1.0) -> np.ndarray:
        """Bit logits (N x n_bits, positive = 1). ``strength``: the one used to embed (the DWT-DCT
        decoders need the quantisation step; rivaGan ignores it)."""
        ims, _ = _batch(images)
        return np.stack([self._decode_one(np.ascontiguousarray(_check(im, self.name)[..., ::-1]), strength)
                         for im in ims])

    def __repr__(self) -> str:
        return f"<peer {self.name} {self.n_bits} bits>"


class _DwtPeer(Peer):
    scales: tuple[int, int, int] = (0, 36, 36)

    def _scales(self, strength: float) -> list[float]:
        return [s * strength for s in self.scales]

    def _encode_one(self, bgr: np.ndarray, bits: np.ndarray, strength: float) -> np.ndarray:
        enc = self.iw.WatermarkEncoder()
        enc.set_watermark("bits", [int(x) for x in bits])
        return enc.encode(bgr, self.method, scales=self._scales(strength))

    def _decode_one(self, bgr: np.ndarray, strength: float) -> np.ndarray:
        dec = self.iw.WatermarkDecoder("bits", self.n_bits)
        bits = np.asarray(dec.decode(bgr, self.method, scales=self._scales(strength)), dtype=np.float32)
        return bits * 2.0 - 1.0


class DwtDct(_DwtPeer):
    """invisible-watermark's default ``dwtDct``: one bit per 4 x 4 block of the Haar-DWT LL band of U."""

    name = method = "dwtDct"
    scales = (0, 36, 36)


class DwtDctSvd(_DwtPeer):
    """invisible-watermark's ``dwtDctSvd``: quantises the largest singular value of each block's DCT."""

    name = method = "dwtDctSvd"
    scales = (0, 36, 0)


class RivaGan(Peer):
    """invisible-watermark's ``rivaGan`` (RivaGAN ONNX encoder/decoder shipped in its wheel), 32 bits."""

    name = method = "rivaGan"
    threshold = 0.52

    def __init__(self, n_bits: int = 32):
        if n_bits != 32:
            raise RobustHideError(f"rivaGan carries exactly 32 bits, not {n_bits}")
        super().__init__(32)
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise RobustHideError(_INSTALL + " (rivaGan needs onnxruntime)") from None
        from imwatermark.rivaGan import RivaWatermark

        self._riva = RivaWatermark
        RivaWatermark.loadModel()

    def _encode_one(self, bgr: np.ndarray, bits: np.ndarray, strength: float) -> np.ndarray:
        enc = self._riva([int(x) for x in bits], 32)
        marked = enc.encode(bgr)
        if strength == 1.0:
            return marked
        res = marked.astype(np.float32) - bgr.astype(np.float32)
        return np.clip(np.rint(bgr + strength * res), 0, 255).astype(np.uint8)

    def _decode_one(self, bgr: np.ndarray, strength: float) -> np.ndarray:
        import torch

        frame = torch.from_numpy(bgr[None].astype(np.float32)) / 127.5 - 1.0
        frame = frame.permute(3, 0, 1, 2).unsqueeze(0).numpy()
        p = self._riva.decoder.run(None, {"frame": frame})[0][0]
        return np.asarray(p, dtype=np.float32) - self.threshold


def get_peer(name: str, n_bits: int = 32) -> Peer:
    """``'dwtDct'`` / ``'dwtDctSvd'`` (``n_bits`` bits) or ``'rivaGan'`` (always 32 bits)."""
    key = {p.lower(): p for p in PEERS}.get(name.strip().lower())
    if key is None:
        raise RobustHideError(f"unknown peer '{name}' (known: {', '.join(PEERS)})")
    if key == "rivaGan":
        return RivaGan(32)
    return {"dwtDct": DwtDct, "dwtDctSvd": DwtDctSvd}[key](n_bits)


def parse_peers(text: str | None) -> list[str]:
    """``'dwtDct,rivaGan'`` -> ``['dwtDct', 'rivaGan']`` (checked names, no duplicates)."""
    if not text:
        return []
    out: list[str] = []
    for t in text.split(","):
        t = t.strip()
        if not t:
            continue
        key = {p.lower(): p for p in PEERS}.get(t.lower())
        if key is None:
            raise RobustHideError(f"unknown peer '{t}' (known: {', '.join(PEERS)})")
        if key not in out:
            out.append(key)
    return out
