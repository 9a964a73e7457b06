"""The high-level watermarking API.

>>> wm = Watermarker.from_pretrained("default")          # offline, weights inside the package
>>> marked = wm.embed(image, "(c) 2026 Jane Doe")         # PIL / numpy / torch in, same kind out
>>> res = wm.extract(marked)                              # res.message, res.detected, res.p_value

Images of any size: the network runs at its working resolution (128 x 128 for the default model), its
masked residual is upsampled to the full image, and the decoder reads an antialiased resize (see
:mod:`robusthide.nets.watermark_model`). Extreme aspect ratios are handled the same way (the resize
stretches; marks survive because the decoder sees the same stretch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from robusthide import RobustHideError
from robusthide.watermark.imagedata import from_image_data, to_image_data


def _uint8_view(image: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(RGB or gray uint8 array, alpha or None) for 8-bit numpy/PIL images; None for other kinds."""
    if isinstance(image, Image.Image):
        if image.mode not in ("RGB", "L", "RGBA", "LA"):
            return None
        image = np.asarray(image)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        return np.ascontiguousarray(image), None
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[..., :3]), (image[..., 3:].copy() if image.shape[2] == 4 else None)
    if image.ndim == 3 and image.shape[2] == 2:
        return np.ascontiguousarray(image[..., 0]), image[..., 1:].copy()
    if image.ndim == 3 and image.shape[2] == 1:
        return None
    return None


@dataclass
class ExtractResult:
    """What :meth:`Watermarker.extract` found."""

    detected: bool
    message: Any = None             # str / bytes / int, per the payload's kind; None if not decoded
    kind: str | None = None         # 'text' | 'bytes' | 'hex' | 'int'
    p_value: float = 1.0            # probability that a clean image gives evidence this strong
    confidence: float = 0.0
    corrected_errors: int | None = None
    schema: int | None = None
    bits: list[int] = field(default_factory=list)  # raw decoded bits (hard decisions)
    soft: list[float] = field(default_factory=list)  # P(bit = 1) per raw bit
    crop_side: float | None = None  # with search='crop': side fraction of the centred crop found

    @classmethod
    def from_decoded(cls, r: Any, soft: np.ndarray) -> ExtractResult:
        """From a :class:`robusthide.payload.DecodeResult`; the message is shown only when detected."""
        det = bool(r.detected)
        return cls(detected=det, message=r.message if det else None, kind=r.kind if det else None,
                   p_value=float(r.p_value), confidence=float(r.confidence),
                   corrected_errors=r.corrected_errors if det else None, schema=r.schema if det else None,
                   bits=[int(v > 0.5) for v in soft], soft=[round(float(v), 4) for v in soft])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(self.message, bytes):
            d["message"] = self.message.hex()
        return d


class Watermarker:
    """Embed and extract robust watermarks with a trained model (see :mod:`robusthide.zoo`)."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", schema: int | None = None):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.n_bits: int = model.n_bits
        self.schema = schema
        self.name = getattr(model, "meta", {}).get("name", "custom")

    @classmethod
    def from_pretrained(cls, name_or_path: str = "default", device: str = "cpu", schema: int | None = None):
        from robusthide.zoo import load_model

        return cls(load_model(name_or_path, device), device, schema)

    # -- raw bits (research access) ----------------------------------------------------------------------
    def _bits_tensor(self, bits: Any) -> torch.Tensor:
        b = torch.as_tensor(np.asarray(bits, dtype=np.float32)).flatten()
        if b.numel() != self.n_bits:
            raise RobustHideError(f"this model carries {self.n_bits} raw bits, got {b.numel()}")
        if not bool(((b == 0) | (b == 1)).all()):
            raise RobustHideError("raw bits must be 0 or 1")
        return b[None].to(self.device)

    @torch.no_grad()
    def embed_bits(self, image: Any, bits: Any, strength: float = 1.0, refine: int | None = None) -> Any:
        """Mark ``image`` with exactly these raw bits (no error correction, no header). ``refine``: steps of
        the embed-time refinement against the decoder (None: the model's setting, 0: the fast path)."""
        if not (0 < strength <= 4):
            raise RobustHideError(f"strength must be in (0, 4], got {strength}")
        if refine is not None and (isinstance(refine, bool) or not isinstance(refine, int) or refine < 0):
            raise RobustHideError(f"refine must be a number of steps >= 0, got {refine!r}")
        fast = _uint8_view(image)
        if fast is not None and self.device.type == "cpu":
            return self._embed_uint8(fast, image, self._bits_tensor(bits), strength, refine)
        d = to_image_data(image)
        cover = d.rgb.to(self.device, torch.float32)
        marked = self.model.embed(cover, self._bits_tensor(bits), strength=strength, refine=refine)
        return from_image_data(d, marked)

    def _small(self, rgb: np.ndarray) -> torch.Tensor:
        """The S x S antialiased bilinear resize (Pillow's, which torch's antialias mode matches)."""
        from PIL import Image

        s = self.model.size
        mode = "L" if rgb.ndim == 2 else "RGB"
        small = np.asarray(Image.fromarray(rgb, mode).resize((s, s), Image.BILINEAR))
        if small.ndim == 2:
            small = np.repeat(small[..., None], 3, axis=2)
        return torch.from_numpy(small.copy()).permute(2, 0, 1)[None].float().div_(255)

    def _embed_uint8(self, view: tuple[np.ndarray, np.ndarray | None], original: Any, bits: torch.Tensor,
                     strength: float, refine: int | None = None) -> Any:
        """Fast path for 8-bit images: only the residual is computed in float at full size."""
        import torch.nn.functional as F

        rgb, alpha = view
        h, w = rgb.shape[:2]
        from robusthide.watermark.imagedata import _check_size

        _check_size(h, w)
        x = torch.from_numpy(rgb if rgb.flags.writeable else rgb.copy()).float()
        full = self.model.refine_steps(refine) > 0  # the refinement optimises through the full-size cover
        cover = (x.permute(2, 0, 1) if rgb.ndim == 3 else x[None])[None].div(255) if full else None
        r = self.model.small_residual(self._small(rgb), bits, strength, refine, cover=cover)
        del cover
        r = F.interpolate(r, size=(h, w), mode="bilinear", align_corners=False)[0, 0].mul_(255 * strength)
        out = (x.add_(r[..., None]) if rgb.ndim == 3 else x.add_(r)).round_().clamp_(0, 255).to(torch.uint8).numpy()
        if alpha is not None:
            out = np.concatenate([out if out.ndim == 3 else out[..., None], alpha], axis=2)
        if isinstance(original, Image.Image):
            return Image.fromarray(out)
        return out

    def _search_logits(self, image: Any, search: str | None) -> tuple[torch.Tensor, list[float]] | None:
        """Logits (H x L) of every hypothesis of ``search`` (:mod:`robusthide.watermark.sync`) and their
        crop sides, or None when ``search`` is ``none``."""
        from robusthide.watermark.sync import check_search, crop_search_logits

        try:
            mode = check_search(search)
        except ValueError as e:
            raise RobustHideError(str(e)) from None
        if mode == "none":
            return None
        fast = _uint8_view(image)
        if fast is not None:  # H x W x 3 or H x W (grayscale: one channel, the search expands it)
            a = np.atleast_3d(np.array(fast[0], copy=True))
            x = torch.from_numpy(a).permute(2, 0, 1)[None].float().div_(255)
        else:
            x = to_image_data(image).rgb.float()
        logits, sides = crop_search_logits(self.model.decoder, x.to(self.device), self.model.size)
        return logits.cpu(), sides

    @torch.no_grad()
    def decode_bits(self, image: Any, search: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(hard bits uint8, soft P(bit=1) float) read from ``image``; ``search='crop'``: from the most
        confident centred-crop hypothesis (:mod:`robusthide.watermark.sync`)."""
        from robusthide.watermark.sync import most_confident

        found = self._search_logits(image, search)
        if found is not None:
            p = torch.sigmoid(found[0][most_confident(found[0])]).numpy()
            return (p > 0.5).astype(np.uint8), p
        fast = _uint8_view(image)
        if fast is not None and self.device.type == "cpu":
            logits = self.model.decoder(self._small(fast[0]))[0].float()
            p = torch.sigmoid(logits).numpy()
            return (p > 0.5).astype(np.uint8), p
        d = to_image_data(image)
        logits = self.model.decode(d.rgb.to(self.device, torch.float32))[0].float().cpu()
        p = torch.sigmoid(logits).numpy()
        return (p > 0.5).astype(np.uint8), p

    # -- messages --------------------------------------------------------------------------------------
    def capacity(self, schema: int | None = None) -> dict[str, Any]:
        from robusthide.payload import capacity

        return capacity(self.n_bits, self._schema(schema))

    def _schema(self, schema: int | None) -> Any:
        from robusthide.payload import default_schema

        s = schema if schema is not None else self.schema
        return default_schema(self.n_bits) if s is None else s

    def encode_message(self, message: Any, kind: str | None = None, schema: int | None = None) -> np.ndarray:
        from robusthide.payload import encode_message

        return encode_message(message, self.n_bits, schema=self._schema(schema), kind=kind)

    def embed(self, image: Any, message: Any, strength: float = 1.0, kind: str | None = None,
              schema: int | None = None, refine: int | None = None) -> Any:
        """Mark ``image`` with ``message`` (text, bytes, hex with kind='hex', or int), error-corrected.
        ``refine``: embed-time refinement steps (None: the model's setting; 0: fast, feed-forward only)."""
        return self.embed_bits(image, self.encode_message(message, kind, schema), strength, refine)

    @torch.no_grad()
    def extract(self, image: Any, search: str | None = None) -> ExtractResult:
        """Decode the payload and test for presence (see :mod:`robusthide.payload.detection`).

        ``search='crop'`` also reads the image as the centre of larger frames (a crop resized back,
        :mod:`robusthide.watermark.sync`): the hypotheses are tried from the most confident on, and the
        p-value of the one kept is multiplied by their number (Bonferroni), so ``detected`` keeps its
        false-positive bound. ``crop_side`` then gives the side fraction found."""
        from robusthide.payload import decode_bits

        found = self._search_logits(image, search)
        if found is None:
            hard, soft = self.decode_bits(image)
            return ExtractResult.from_decoded(decode_bits(soft, self.n_bits), soft)
        from robusthide.watermark.sync import decode_search

        logits, sides = found
        r, i = decode_search(logits, self.n_bits)
        out = ExtractResult.from_decoded(r, torch.sigmoid(logits[i]).numpy())
        out.crop_side = sides[i] if out.detected else None
        return out

    def detect(self, image: Any, search: str | None = None) -> bool:
        """True when a watermark of this model is present (calibrated: p-value <= 1e-6 by design)."""
        return self.extract(image, search).detected
