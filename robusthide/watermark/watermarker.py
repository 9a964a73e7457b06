"""The high-level watermarking API.

>>> wm = Watermarker.from_pretrained("default")          # offline, weights inside the package
>>> marked = wm.embed(image, "(c) 2026 Jane Doe")         # PIL / numpy / torch in, same kind out
>>> res = wm.extract(marked)                              # res.message, res.detected, res.p_value

Images of any size: the network runs at its working resolution (128 x 128 for the default model), its
masked residual is upsampled to the full image, and the decoder reads an antialiased resize (see
:mod:`robusthide.nets.watermark_model`). Extreme aspect ratios are handled the same way (the resize
stretches; marks survive because the decoder sees the same stretch).

The Watermarker is the one embed path: the network gives the working-size residual (refined against the
decoder by :mod:`robusthide.watermark.refine` when the model's :class:`~robusthide.watermark.refine.RefineConfig`
asks for it), and the residual is applied at ``strength`` in one place per image kind: 8-bit images by
:meth:`Watermarker._apply_small_residual`, float images and video frames by :meth:`Watermarker.apply_residual`.
The video embedder and the evaluation call these methods. Batches of images are :mod:`robusthide.watermark.batch`,
the frames of one video read together :mod:`robusthide.watermark.frames` (mixins of :class:`Watermarker`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from robusthide import RobustHideError
from robusthide.watermark.batch import BatchMixin
from robusthide.watermark.frames import FramesMixin
from robusthide.watermark.imagedata import from_image_data, to_image_data, uint8_view
from robusthide.watermark.refine import RefineConfig, Refiner, at_strength


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
    geometry: dict[str, Any] | None = None  # search='geometry': the flip and side fractions found; else
    # {'flip': True} when the mark was read from the mirror image (None when read as it is)

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


class Watermarker(BatchMixin, FramesMixin):
    """Embed and extract robust watermarks with a trained model (see :mod:`robusthide.zoo`)."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", schema: int | None = None,
                 max_strength: float = 4.0, mirror: bool = True):
        self.model = model.eval().to(device)
        #: whether extraction also reads the mirror image (whole-image models; the ``geometry`` search of the
        #: periodic models has its own flips): on by default, False only to measure what it costs
        self.mirror = bool(mirror)
        self.max_strength = float(max_strength)  # the evaluation's strength sweeps may go beyond 4
        self.device = torch.device(device)
        self.n_bits: int = model.n_bits
        meta = getattr(model, "meta", {})
        self.schema = getattr(model, "default_schema", None) if schema is None else schema
        #: the share of the false-positive budget the soft-decision test gets (the weights' ``soft_share``;
        #: 0: the hard test alone, :mod:`robusthide.payload.soft_detection`)
        self.soft_share = float(getattr(model, "soft_share", 0.0))
        self.name = meta.get("name", "custom")
        self._refiners: dict[RefineConfig, Refiner] = {}

    @classmethod
    def from_pretrained(cls, name_or_path: str = "default", device: str = "cpu", schema: int | None = None):
        """A watermark model of the one zoo (name or weights file, :func:`robusthide.zoo.registry.load`)."""
        from robusthide.zoo.registry import load

        return cls(load(name_or_path, "watermark", device), device, schema)

    # -- raw bits (research access) ----------------------------------------------------------------------
    def bits_tensor(self, bits: Any) -> torch.Tensor:
        """Raw bits (any array-like of N 0/1 values) as the 1 x N float tensor the networks take, checked."""
        b = torch.as_tensor(np.asarray(bits, dtype=np.float32)).flatten()
        if b.numel() != self.n_bits:
            raise RobustHideError(f"this model carries {self.n_bits} raw bits, got {b.numel()}")
        if not bool(((b == 0) | (b == 1)).all()):
            raise RobustHideError("raw bits must be 0 or 1")
        return b[None].to(self.device)

    def _check_strength(self, strength: float) -> None:
        if not (0 < strength <= self.max_strength):
            raise RobustHideError(f"strength must be in (0, {self.max_strength:g}], got {strength}")

    # -- the refinement and the residual -------------------------------------------------------------------
    def refine_config(self, refine: int | RefineConfig | None = None) -> RefineConfig:
        """The embed-time refinement of a call: the model's settings (``model.refine_cfg``) with ``refine``
        steps (None: the model's; 0: the fast path), or ``refine`` itself when it is a :class:`RefineConfig`."""
        if isinstance(refine, RefineConfig):
            return refine
        return RefineConfig.from_dict(getattr(self.model, "refine_cfg", None)).with_steps(refine)

    def small_residual(self, small: torch.Tensor, bits: torch.Tensor, strength: float = 1.0,
                       refine: int | RefineConfig | None = None, cover: torch.Tensor | None = None) -> torch.Tensor:
        """The working-size residual (N x 1 x S x S, to be applied at ``strength``) for the S x S covers
        ``small``: the network's (fast path) or refined (:class:`robusthide.watermark.refine.Refiner`);
        ``cover``: the full-size covers, which the refinement then optimises through."""
        cfg = self.refine_config(refine)
        if cfg.steps == 0:  # the network's residual, capped here for ``strength``
            return at_strength(self.model.small_residual(small, bits), self.model.cap(small), strength)
        if cfg not in self._refiners:
            self._refiners = {cfg: Refiner(self.model, cfg)}  # one setting at a time (its codecs built once)
        return self._refiners[cfg].small_residual(small, bits, strength, cover)

    @torch.no_grad()
    def embed_bits(self, image: Any, bits: Any, strength: float = 1.0, refine: int | RefineConfig | None = None) -> Any:
        """Mark ``image`` with exactly these raw bits (no error correction, no header). ``refine``: steps of
        the embed-time refinement against the decoder (None: the model's setting, 0: the fast path)."""
        self._check_strength(strength)
        self.refine_config(refine)  # a bad refine is an error before any work
        fast = uint8_view(image) if self._working_size else None
        if fast is not None and self.device.type == "cpu":
            return self._embed_uint8(fast, image, self.bits_tensor(bits), strength, refine)
        d = to_image_data(image)
        cover = d.rgb.to(self.device, torch.float32)
        marked = self.apply_residual(cover, self.frame_residual(cover, self.bits_tensor(bits), strength, refine),
                                     strength)
        return from_image_data(d, marked)

    @torch.no_grad()
    def frame_residual(self, frame: torch.Tensor, bits: torch.Tensor, strength: float = 1.0,
                       refine: int | RefineConfig | None = None) -> torch.Tensor:
        """The full-size luma residual (N x 1 x H x W, before ``strength``) that marks ``frame`` (N x 3 x H x W
        float in [0, 1]) with ``bits`` (:meth:`bits_tensor`): for callers that apply one residual to several
        images, as the video embedder does between key frames, with :meth:`apply_residual`."""
        from robusthide.nets.watermark_model import resize

        frame = frame.to(self.device, torch.float32)
        if not self._working_size:  # a network at full resolution (HiDDeN, MBRS): its residual as it is
            if self.refine_config(refine).steps:
                raise RobustHideError("embed-time refinement needs a model with a working-size residual")
            return self.model.residual(frame, bits)
        small = resize(frame, (self.model.size, self.model.size))
        return resize(self.small_residual(small, bits, strength, refine, frame), tuple(frame.shape[-2:]))

    @staticmethod
    def apply_residual(image: torch.Tensor, residual: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """The marked float image ``clamp(image + strength * residual, 0, 1)`` (not yet rounded): where a
        float image or a video frame gets its full-size residual (:meth:`frame_residual`)."""
        return (image + strength * residual).clamp(0, 1)

    @torch.no_grad()
    def frame_logits(self, frame: torch.Tensor) -> torch.Tensor:
        """Bit logits (L, float32, CPU) the decoder reads from ``frame`` (1 x 3 x H x W float in [0, 1]) as it
        is, without a search: for callers that pool the evidence of several images (a video's frames)."""
        return self.model.decode(frame.to(self.device, torch.float32))[0].float().cpu()

    def _small(self, rgb: np.ndarray) -> torch.Tensor:
        """The S x S antialiased bilinear resize (Pillow's, which torch's antialias mode matches)."""

        s = self.model.size
        mode = "L" if rgb.ndim == 2 else "RGB"
        small = np.asarray(Image.fromarray(rgb, mode).resize((s, s), Image.BILINEAR))
        if small.ndim == 2:
            small = np.repeat(small[..., None], 3, axis=2)
        return torch.from_numpy(small.copy()).permute(2, 0, 1)[None].float().div_(255)

    def _embed_uint8(self, view: tuple[np.ndarray, np.ndarray | None], original: Any, bits: torch.Tensor,
                     strength: float, refine: int | RefineConfig | None = None) -> Any:
        """Fast path for 8-bit images: only the residual is computed in float at full size."""
        rgb = view[0]
        from robusthide.watermark.imagedata import _check_size

        _check_size(*rgb.shape[:2])
        cover = None
        if self.refine_config(refine).steps > 0:  # the refinement optimises through the full-size cover
            x = torch.from_numpy(rgb if rgb.flags.writeable else rgb.copy()).float()
            cover = (x.permute(2, 0, 1) if rgb.ndim == 3 else x[None])[None].div(255)
        r = self.small_residual(self._small(rgb), bits, strength, refine, cover=cover)
        del cover
        return self._apply_small_residual(view, original, r, strength)

    @property
    def default_search(self) -> str:
        """The search extraction runs when none is given: the model's own
        (:attr:`robusthide.nets.watermark_model.WatermarkModel.default_search`; ``geometry`` for the periodic
        ``geo`` models, ``none`` for the others)."""
        return str(getattr(self.model, "default_search", "none"))

    def _search_logits(self, image: Any, search: str | None) -> tuple[torch.Tensor, list[dict]]:
        """Logits (H x L, CPU) of every hypothesis of ``search`` (:mod:`robusthide.watermark.sync`; None: the
        model's default) and the hypotheses. ``none`` reads the image as it is, and its mirror image
        (:attr:`mirror`; hypotheses ``{'flip': False}``, ``{'flip': True}``), as ``crop`` does for each of
        its centred crops."""
        return self._checked_logits(image, *self._checked(image, search))

    def _checked_logits(self, image: Any, mode: str, fast: Any) -> tuple[torch.Tensor, list[dict]]:
        """:meth:`_search_logits` for a mode and uint8 view already given by :meth:`_checked`."""
        from robusthide.watermark.sync import mirror_hypotheses, search_logits

        if mode == "none":
            hyps: list[dict] = mirror_hypotheses([{}]) if self.mirror else [{}]
            if fast is not None and self.device.type == "cpu":
                small = self._small(fast[0])
                return self.model.decoder(self._mirrored(small)).float(), hyps
            x = to_image_data(image).rgb.to(self.device, torch.float32)
            rows = [self.model.decode(v) for v in ((x, x.flip(-1)) if self.mirror else (x,))]
            return torch.cat(rows).float().cpu(), hyps
        logits, hyps = search_logits(self.model.decoder, self._search_input(image, fast), self.model.size, mode,
                                     self.mirror)
        return logits.cpu(), hyps

    def _checked(self, image: Any, search: str | None) -> tuple[str, Any]:
        """The search mode (None: the model's default; an unknown one is a :class:`RobustHideError`) and the
        image's uint8 view, if it has one, after the size checks embedding makes (empty, too small)."""
        from robusthide.watermark.sync import check_search

        try:
            mode = check_search(self.default_search if search is None else search)
        except ValueError as e:
            raise RobustHideError(str(e)) from None
        fast = uint8_view(image)
        if fast is not None:
            from robusthide.watermark.imagedata import _check_size

            _check_size(*fast[0].shape[:2])
        return mode, fast

    def _search_input(self, image: Any, fast: Any) -> torch.Tensor:
        """``image`` as the searches read it: 1 x C x H x W float in [0, 1] on the model's device (C = 1 for
        grayscale; the search expands it). ``fast``: its uint8 view, when it has one."""
        if fast is not None:  # H x W x 3 or H x W
            a = np.atleast_3d(np.array(fast[0], copy=True))
            x = torch.from_numpy(a).permute(2, 0, 1)[None].float().div_(255)
        else:
            x = to_image_data(image).rgb.float()
        return x.to(self.device)

    def _mirrored(self, small: torch.Tensor) -> torch.Tensor:
        """Working-size views (N x C x S x S) and, with :attr:`mirror`, their mirror images after them."""
        from robusthide.watermark.sync import mirror_views

        return mirror_views(small) if self.mirror else small

    @torch.no_grad()
    def decode_bits(self, image: Any, search: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(hard bits uint8, soft P(bit=1) float) read from ``image``, from the most confident hypothesis of
        ``search`` (None: the model's default; ``none``: the image as it is or its mirror image,
        :mod:`robusthide.watermark.sync`); for the staged search of a whole-image model, from the hypothesis
        :meth:`extract` keeps (the first stage that detects, else the smallest p-value)."""
        from robusthide.watermark.sync import decode_stages, most_confident

        mode, fast = self._checked(image, search)
        if mode == "staged" and not hasattr(self.model.decoder, "feature_maps"):  # the hypothesis extract keeps
            stages = self._stages(image, mode, fast)
            p = torch.sigmoid(decode_stages(stages, self.n_bits, soft_share=self.soft_share)[1]).numpy()
            return (p > 0.5).astype(np.uint8), p
        logits, hyps = self._checked_logits(image, mode, fast)
        p = torch.sigmoid(logits[most_confident(logits, hyps)]).numpy()
        return (p > 0.5).astype(np.uint8), p

    @torch.no_grad()
    def frame_hypothesis_logits(self, frame: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
        """Bit logits (H x L, float32, CPU) of ``frame`` (1 x 3 x H x W float in [0, 1]) as it is and, with
        :attr:`mirror`, of its mirror image, and the hypotheses (``{'flip': False}``, ``{'flip': True}``): for
        callers that pool the evidence of several images (a video's frames: sum the logits) and then decide
        with :meth:`decide`."""
        from robusthide.nets.watermark_model import resize
        from robusthide.watermark.sync import mirror_hypotheses

        x = frame.to(self.device, torch.float32)
        hyps = mirror_hypotheses([{}]) if self.mirror else [{}]
        if not self._working_size:
            rows = [self.model.decode(v) for v in ((x, x.flip(-1)) if self.mirror else (x,))]
            return torch.cat(rows).float().cpu(), hyps
        small = resize(x, (self.model.size, self.model.size))
        return self.model.decoder(self._mirrored(small)).float().cpu(), hyps

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
              schema: int | None = None, refine: int | RefineConfig | None = None) -> Any:
        """Mark ``image`` with ``message`` (text, bytes, hex with kind='hex', or int), error-corrected.
        ``refine``: embed-time refinement steps (None: the model's setting; 0: fast, feed-forward only)."""
        return self.embed_bits(image, self.encode_message(message, kind, schema), strength, refine)

    @torch.no_grad()
    def extract(self, image: Any, search: str | None = None) -> ExtractResult:
        """Decode the payload and test for presence (see :mod:`robusthide.payload.detection`).

        ``search`` (None: the model's :attr:`default_search`): ``none`` reads the image as it is and its
        mirror image (a whole-image model; :attr:`mirror`); ``crop`` also reads the image as the centre of
        larger frames (a crop resized back), mirrored too; ``corner`` as a corner of a larger frame of its own
        aspect (a crop that kept one corner); ``anywhere`` as a crop of its own aspect anywhere in a larger frame
        (:mod:`robusthide.watermark.anywhere`; about 2 s); ``inset`` the whole picture and each box a photo may
        fill inside it (padding, a screenshot, a collage); ``turn`` turned back by 5.5 to 45 degrees or a quarter
        turn; ``staged`` (the default of the whole-image models) the plain read, then the inset, reframing, slide,
        rotation, crop, corner, turn and anywhere searches, each only when the ones before detect nothing
        (:data:`robusthide.watermark.sync.STAGED_SHARES`); ``geometry`` (the default of the ``geo`` models)
        tries mirror images and the side fractions a crop anywhere may have kept, in two stages: the whole
        image and its mirror image first, the full search only when they detect nothing
        (:func:`robusthide.watermark.sync.search_stages`). The hypotheses are tried from the most likely on
        (:func:`robusthide.watermark.sync.ranking_scores`), and the p-value of the one kept pays for all of
        them (weighted Bonferroni, :func:`robusthide.watermark.sync.hypothesis_weights`; the mirror images of
        a whole-image model share 1/8 of the false-positive budget), so ``detected`` keeps its false-positive
        bound. ``crop_side`` / ``geometry`` then give the hypothesis found (``geometry`` is
        ``{'flip': True}`` when the mirror image carried the mark)."""
        from robusthide.watermark.sync import decode_stages

        mode, fast = self._checked(image, search)
        if mode == "none":
            return self.decide(*self._checked_logits(image, mode, fast))
        return self._result(*decode_stages(self._stages(image, mode, fast), self.n_bits, soft_share=self.soft_share))

    def _stages(self, image: Any, mode: str, fast: Any,
                first: tuple[torch.Tensor, list[dict]] | None = None) -> Iterator[tuple[torch.Tensor, list[dict]]]:
        """The search stages of one image (CPU logits, hypotheses; :func:`robusthide.watermark.sync.search_stages`).
        The staged search of a whole-image model starts from the plain read as :meth:`extract` makes it with
        ``search='none'`` (``first``, when the caller has it), so that its first stage decides the same."""
        from robusthide.watermark.sync import search_stages, staged_stages

        if mode == "staged" and not hasattr(self.model.decoder, "feature_maps"):
            first = first if first is not None else self._checked_logits(image, "none", fast)
            stages = staged_stages(self.model.decoder, self._search_input(image, fast), self.model.size,
                                   self.mirror, first=first)
        else:
            stages = search_stages(self.model.decoder, self._search_input(image, fast), self.model.size, mode,
                                   self.mirror)
        return ((lg.cpu(), h) for lg, h in stages)

    @torch.no_grad()
    def decide(self, logits: torch.Tensor, hyps: list[dict]) -> ExtractResult:
        """The :class:`ExtractResult` of one image's (or pooled frames') hypotheses: logits H x L and the
        hypotheses, as :meth:`frame_hypothesis_logits` gives them; the p-value pays for all of them."""
        from robusthide.watermark.sync import decode_stages

        return self._result(*decode_stages([(logits, hyps)], self.n_bits, soft_share=self.soft_share))

    def _result(self, r: Any, logits: torch.Tensor, hyp: dict) -> ExtractResult:
        """The :class:`ExtractResult` of a decoded hypothesis (its payload, bit logits L and the hypothesis)."""
        out = ExtractResult.from_decoded(r, torch.sigmoid(logits).numpy())
        if out.detected:
            out.crop_side = hyp.get("side")
            geo = {k: v for k, v in hyp.items() if k not in ("side", "stage", "share")}
            out.geometry = geo if (any(k != "flip" for k in geo) or geo.get("flip")) else None
        return out

    def detect(self, image: Any, search: str | None = None) -> bool:
        """True when a watermark of this model is present (calibrated: p-value <= 1e-6 by design)."""
        return self.extract(image, search).detected

    def _extract_staged(self, image: Any, first: tuple[torch.Tensor, list[dict]]) -> ExtractResult:
        """:meth:`extract` with the staged search, its plain read (``first``) already made."""
        from robusthide.watermark.sync import decode_stages

        mode, fast = self._checked(image, "staged")
        stages = self._stages(image, mode, fast, first=first)
        return self._result(*decode_stages(stages, self.n_bits, soft_share=self.soft_share))
