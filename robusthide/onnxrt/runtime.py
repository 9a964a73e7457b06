"""Mark (fast path) and read images with onnxruntime, numpy and Pillow only: no PyTorch.

>>> wm = OnnxWatermarker.from_pretrained()       # the default model's ONNX networks, shipped in the zoo
>>> wm = OnnxWatermarker("model-onnx/")          # or a folder written by ``robusthide export-onnx``
>>> marked = wm.embed(image, 1234)               # uint8 numpy (H x W, H x W x 3/4) or PIL in, same out
>>> wm.extract(marked).message                   # 1234

The same computation as :meth:`robusthide.watermark.watermarker.Watermarker.embed` with ``refine=0`` (and
as its ``extract`` without search), for 8-bit images:

1. ``small``: Pillow's antialiased bilinear resize of the image to S x S (grayscale replicated to RGB);
2. ``encoder.onnx`` gives the masked residual ``r`` and its per-pixel cap; ``r`` is clamped to
   ``+-cap / strength`` (the embed path's :func:`robusthide.watermark.refine.at_strength`);
3. ``r`` is upsampled to H x W with bilinear interpolation, half-pixel centres, no antialiasing
   (:func:`upsample_bilinear`, the same as torch's ``F.interpolate(..., align_corners=False)``), times
   ``255 * strength``, added to every channel, rounded and clipped to 0..255; alpha is kept untouched;
4. extraction: ``decoder.onnx`` on ``small`` and on its mirror image (left-right), then
   :func:`robusthide.payload.decode_hypotheses` with :func:`robusthide.payload.mirror_weights`: the image as
   it is, or mirrored, whichever carries the mark, the p-value paying for both.

Images of any size share one network batch (everything runs at S x S), so :meth:`OnnxWatermarker.embed_batch`
and :meth:`OnnxWatermarker.extract_batch` make one encoder / decoder call per batch.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from robusthide import RobustHideError

MANIFEST = "robusthide-onnx.json"
FORMAT = "robusthide-onnx/1"
MIN_SIDE = 16
#: what a torch-free install adds to do what the runtime does not (one-line errors end with it)
TORCH_HINT = "pip install 'robusthide[torch]'"


@dataclass
class OnnxExtractResult:
    """What :meth:`OnnxWatermarker.extract` found (the fields of the torch API's ``ExtractResult``)."""

    detected: bool
    message: Any = None
    kind: str | None = None
    p_value: float = 1.0
    confidence: float = 0.0
    corrected_errors: int | None = None
    schema: int | None = None
    bits: list[int] = field(default_factory=list)
    soft: list[float] = field(default_factory=list)
    crop_side: float | None = None  # as the torch API's fields: the runtime reads the whole image (no search)
    geometry: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(self.message, bytes):
            d["message"] = self.message.hex()
        return d


def _weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and weight of i1 for bilinear resampling of ``n_in`` samples to ``n_out``,
    half-pixel centres (align_corners=False), as torch's upsample_bilinear2d computes them in float32."""
    scale = np.float32(n_in / n_out)
    src = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    src = np.maximum(src, np.float32(0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0.astype(np.float32)).astype(np.float32)


def upsample_bilinear(r: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resample the 2-D float32 map ``r`` to ``h`` x ``w`` (bilinear, half-pixel centres, no antialiasing)."""
    y0, y1, ly = _weights(r.shape[0], h)
    x0, x1, lx = _weights(r.shape[1], w)
    rows = r[y0] * (1 - ly)[:, None] + r[y1] * ly[:, None]
    return rows[:, x0] * (1 - lx)[None, :] + rows[:, x1] * lx[None, :]


def _uint8_view(image: Any) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(RGB or gray uint8 array, alpha or None, was PIL) of an 8-bit image; a one-line error otherwise."""
    pil = isinstance(image, Image.Image)
    if pil:
        if image.mode not in ("RGB", "L", "RGBA", "LA"):
            image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
        image = np.asarray(image)
    if not isinstance(image, np.ndarray):
        raise RobustHideError(f"unsupported image type {type(image).__name__} (uint8 numpy or PIL)")
    if image.dtype != np.uint8:
        raise RobustHideError(f"the ONNX runtime marks 8-bit images only, got dtype {image.dtype}")
    if image.ndim == 2:
        rgb, alpha = image, None
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        rgb, alpha = image[..., :3], (image[..., 3:] if image.shape[2] == 4 else None)
    elif image.ndim == 3 and image.shape[2] == 2:
        rgb, alpha = image[..., 0], image[..., 1:]
    else:
        raise RobustHideError(f"unsupported image array shape {image.shape} (expected H x W or H x W x 2..4)")
    h, w = rgb.shape[:2]
    if h == 0 or w == 0:
        raise RobustHideError(f"empty image ({w}x{h})")
    if min(h, w) < MIN_SIDE:
        raise RobustHideError(f"image too small ({w}x{h}); the smallest side must be at least {MIN_SIDE} px")
    return np.ascontiguousarray(rgb), alpha, pil


def _images(images: Any) -> list[Any]:
    """A list of images, or the N images of an N x H x W (x C) array."""
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise RobustHideError(f"a batch array must be N x H x W or N x H x W x C, got shape {images.shape}")
        return list(images)
    if isinstance(images, (list, tuple)):
        return list(images)
    raise RobustHideError(f"a batch is a list of images or an N x H x W x C array, got {type(images).__name__}")


class OnnxWatermarker:
    """Embed (fast path) and extract with the networks exported by ``robusthide export-onnx``."""

    def __init__(self, folder: str | Path, providers: list[str] | None = None, threads: int | None = None,
                 schema: int | str | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RobustHideError("onnxruntime is not installed: pip install 'robusthide[onnx]'") from None
        d = Path(folder)
        try:
            manifest = json.loads((d / MANIFEST).read_text())
        except (OSError, ValueError) as e:
            raise RobustHideError(f"{d}: not a robusthide ONNX folder ({MANIFEST}: {type(e).__name__})") from None
        if manifest.get("format") != FORMAT:
            raise RobustHideError(f"{d}: {MANIFEST} has format {manifest.get('format')!r}, expected {FORMAT!r}")
        self.manifest = manifest
        self.n_bits, self.size = int(manifest["n_bits"]), int(manifest["size"])
        self.name = manifest.get("model", "custom")
        self.schema = manifest.get("schema") if schema is None else schema  # None: the payload's default
        soft = manifest.get("soft_share", 0.0)  # the soft-decision test's share, as in torch
        if isinstance(soft, bool) or not isinstance(soft, (int, float)) or not 0 <= soft < 1:
            raise RobustHideError(f"{d}: {MANIFEST} has soft_share {soft!r}, expected a number in [0, 1)")
        self.soft_share = float(soft)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        prov = providers or ["CPUExecutionProvider"]
        try:
            self.encoder = ort.InferenceSession(str(d / manifest["encoder"]), opts, providers=prov)
            self.decoder = ort.InferenceSession(str(d / manifest["decoder"]), opts, providers=prov)
        except Exception as e:  # onnxruntime raises its own exception types for unreadable graphs
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise RobustHideError(f"{d}: cannot load the ONNX networks ({first})") from None

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "default", providers: list[str] | None = None,
                        threads: int | None = None, schema: int | str | None = None) -> OnnxWatermarker:
        """A zoo model's ONNX networks shipped in the package (``default``), or a folder written by
        ``robusthide export-onnx``. A zoo model without shipped networks, or a weights file, is refused with
        the command that exports it (which needs PyTorch)."""
        from robusthide.zoo.registry import PRETRAINED, names, onnx_path

        s = str(name_or_path)
        if s in PRETRAINED:
            folder = onnx_path(s)
            if PRETRAINED[s]["family"] != "watermark":
                raise RobustHideError(f"'{s}' is not a watermark model (known: {', '.join(names('watermark'))})")
            if folder is None:
                raise RobustHideError(f"model '{s}' ships no ONNX networks: export them with `robusthide export-onnx "
                                      f"{s} -o DIR` (needs PyTorch: {TORCH_HINT}) and pass DIR as the model")
            if not (folder / MANIFEST).is_file():
                raise RobustHideError(f"the ONNX networks of '{s}' are not installed ({folder} missing)")
            return cls(folder, providers, threads, schema)
        p = Path(s)
        if p.is_dir():
            return cls(p, providers, threads, schema)
        if p.is_file():
            raise RobustHideError(f"{p}: the ONNX runtime reads a folder written by `robusthide export-onnx "
                                  f"{p} -o DIR` (needs PyTorch: {TORCH_HINT}), not a weights file")
        raise RobustHideError(f"no model named '{s}' (known: {', '.join(names('watermark'))}) and no such folder")

    # -- raw bits ----------------------------------------------------------------------------------------
    def _small(self, rgb: np.ndarray) -> np.ndarray:
        """3 x S x S float32 in [0, 1]: Pillow's antialiased bilinear resize (as the torch API's)."""
        s = self.size
        small = np.asarray(Image.fromarray(rgb, "L" if rgb.ndim == 2 else "RGB").resize((s, s), Image.BILINEAR))
        if small.ndim == 2:
            small = np.repeat(small[..., None], 3, axis=2)
        return small.transpose(2, 0, 1).astype(np.float32) / np.float32(255)

    def _bits(self, bits: Any) -> np.ndarray:
        b = np.asarray(bits, dtype=np.float32).reshape(-1)
        if b.size != self.n_bits:
            raise RobustHideError(f"this model carries {self.n_bits} raw bits, got {b.size}")
        if not np.isin(b, (0, 1)).all():
            raise RobustHideError("raw bits must be 0 or 1")
        return b

    def embed_bits_batch(self, images: Any, bits: Any, strength: float = 1.0, refine: int | None = None) -> list[Any]:
        """Mark each image with its row of raw bits (N x L, or one row for all) in one encoder call. ``refine``
        is there for the torch API's signature: None or 0 (the fast path) only."""
        _fast_path_only(refine)
        if not (0 < strength <= 4):
            raise RobustHideError(f"strength must be in (0, 4], got {strength}")
        imgs = _images(images)
        if not imgs:
            return []
        rows = np.asarray(bits, dtype=np.float32)
        rows = np.stack([self._bits(b) for b in (rows if rows.ndim == 2 else [rows] * len(imgs))])
        if len(rows) != len(imgs):
            raise RobustHideError(f"{len(imgs)} images but {len(rows)} rows of bits")
        views = [_uint8_view(im) for im in imgs]
        small = np.stack([self._small(v[0]) for v in views])
        res, cap = self.encoder.run(None, {"small": small, "bits": rows})
        c = cap / np.float32(max(float(strength), 1e-6))
        res = np.maximum(np.minimum(res, c), -c)
        out = []
        for (rgb, alpha, pil), r in zip(views, res):
            h, w = rgb.shape[:2]
            up = upsample_bilinear(r[0], h, w) * np.float32(255 * strength)
            x = rgb.astype(np.float32) + (up[..., None] if rgb.ndim == 3 else up)
            m = np.clip(np.rint(x), 0, 255).astype(np.uint8)
            if alpha is not None:
                m = np.concatenate([m if m.ndim == 3 else m[..., None], alpha], axis=2)
            out.append(Image.fromarray(m) if pil else m)
        return out

    def embed_bits(self, image: Any, bits: Any, strength: float = 1.0, refine: int | None = None) -> Any:
        """Mark ``image`` with exactly these raw bits (fast path, no error correction, no header)."""
        _fast_path_only(refine)
        return self.embed_bits_batch([image], self._bits(bits)[None], strength)[0]

    def hypothesis_logits(self, images: Any) -> np.ndarray:
        """Bit logits (N x 2 x L float32) of a batch, in one decoder call: each image as it is (row 0) and its
        mirror image (row 1), as the torch API's ``extract`` reads them."""
        imgs = _images(images)
        if not imgs:
            return np.zeros((0, 2, self.n_bits), np.float32)
        small = np.stack([self._small(_uint8_view(im)[0]) for im in imgs])
        (logits,) = self.decoder.run(None, {"small": np.concatenate([small, small[..., ::-1]])})
        return np.ascontiguousarray(logits.astype(np.float32).reshape(2, len(imgs), -1).transpose(1, 0, 2))

    def decode_bits_batch(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """(hard bits N x L uint8, soft P(bit=1) N x L float) of a batch, in one decoder call: each image's
        more confident reading, as it is or mirrored."""
        lg = self.hypothesis_logits(images)
        rows = lg[np.arange(len(lg)), np.abs(lg).mean(axis=2).argmax(axis=1)] if len(lg) else lg[:, 0]
        p = 1 / (1 + np.exp(-rows.astype(np.float64)))
        return (p > 0.5).astype(np.uint8), p.astype(np.float32)

    def decode_bits(self, image: Any) -> tuple[np.ndarray, np.ndarray]:
        """(hard bits uint8, soft P(bit=1) float) read from ``image``."""
        hard, soft = self.decode_bits_batch([image])
        return hard[0], soft[0]

    # -- messages ----------------------------------------------------------------------------------------
    def encode_message(self, message: Any, kind: str | None = None, schema: int | str | None = None) -> np.ndarray:
        from robusthide.payload import default_schema, encode_message

        schema = self.schema if schema is None else schema
        return encode_message(message, self.n_bits, schema=default_schema(self.n_bits) if schema is None else schema,
                              kind=kind)

    def capacity(self, schema: int | str | None = None) -> dict[str, Any]:
        from robusthide.payload import capacity, default_schema

        schema = self.schema if schema is None else schema
        return capacity(self.n_bits, default_schema(self.n_bits) if schema is None else schema)

    def embed(self, image: Any, message: Any, strength: float = 1.0, kind: str | None = None,
              schema: int | str | None = None, refine: int | None = None) -> Any:
        """Mark ``image`` with ``message`` (text, bytes, hex with kind='hex', or int), error-corrected."""
        return self.embed_bits(image, self.encode_message(message, kind, schema), strength, refine)

    def embed_batch(self, images: Any, messages: Any, strength: float = 1.0, kind: str | None = None,
                    schema: int | str | None = None) -> list[Any]:
        """Mark each image with its message (a list of N messages, or one message for all)."""
        imgs = _images(images)
        msgs = list(messages) if isinstance(messages, (list, tuple)) else [messages] * len(imgs)
        if len(msgs) != len(imgs):
            raise RobustHideError(f"{len(imgs)} images but {len(msgs)} messages")
        bits = np.stack([self.encode_message(m, kind, schema) for m in msgs]) if msgs else np.zeros((0, self.n_bits))
        return self.embed_bits_batch(imgs, bits, strength)

    def _result(self, logits: np.ndarray) -> OnnxExtractResult:
        """The result of one image's two readings (2 x L logits: as it is, mirrored)."""
        from robusthide.payload import decode_hypotheses, mirror_weights

        r, i = decode_hypotheses(logits, self.n_bits, weights=mirror_weights([False, True]),
                                 soft_share=self.soft_share)
        soft = (1 / (1 + np.exp(-logits[i].astype(np.float64)))).astype(np.float32)
        det = bool(r.detected)
        return OnnxExtractResult(detected=det, message=r.message if det else None, kind=r.kind if det else None,
                                 p_value=float(r.p_value), confidence=float(r.confidence),
                                 corrected_errors=r.corrected_errors if det else None,
                                 schema=r.schema if det else None, bits=[int(v > 0.5) for v in soft],
                                 soft=[round(float(v), 4) for v in soft],
                                 geometry={"flip": True} if det and i == 1 else None)

    def extract(self, image: Any, search: str | None = None) -> OnnxExtractResult:
        """Decode the payload and test for presence (calibrated p-value, :mod:`robusthide.payload.detection`).
        ``search`` is there for the torch API's signature: None or ``none`` only (the whole image is read)."""
        if search not in (None, "none"):
            raise RobustHideError(f"search={search!r} needs PyTorch: {TORCH_HINT} (the ONNX runtime reads the "
                                  "whole image, search='none')")
        return self._result(self.hypothesis_logits([image])[0])

    def extract_batch(self, images: Any) -> list[OnnxExtractResult]:
        """:meth:`extract` of every image, with one decoder call."""
        return [self._result(lg) for lg in self.hypothesis_logits(images)]

    def detect(self, image: Any) -> bool:
        """True when a watermark of this model is present (p-value <= 1e-6 by design)."""
        return self.extract(image).detected


def _fast_path_only(refine: int | None) -> None:
    """The runtime marks on the fast path: the embed-time refinement optimises through the decoder with
    gradients, which needs torch."""
    if refine not in (None, 0) or isinstance(refine, bool):
        raise RobustHideError(f"refine={refine!r}: the embed-time refinement needs PyTorch: {TORCH_HINT} (the ONNX "
                              "runtime marks on the fast path, refine=0)")


def tensors_sha256(path: str | Path) -> str:
    """SHA-256 of the tensors of a safetensors file (each name, dtype, shape and bytes, in name order), not of its
    metadata: what the exported networks depend on, whatever the weights file's metadata format. Read from the
    file's own header (8-byte length, JSON), so neither torch nor a dtype of numpy's is needed."""
    p = Path(path)
    with p.open("rb") as f:
        try:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 << 20:
                raise ValueError("header too large")
            header = json.loads(f.read(n))
        except (struct.error, ValueError) as e:
            raise RobustHideError(f"{p}: not a safetensors file ({e})") from None
        h = hashlib.sha256()
        for name in sorted(k for k in header if k != "__metadata__"):
            t = header[name]
            a, b = t["data_offsets"]
            f.seek(8 + n + a)
            h.update(json.dumps([name, t["dtype"], t["shape"]]).encode())
            h.update(f.read(b - a))
    return h.hexdigest()
