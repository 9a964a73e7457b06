"""Batches of images: :meth:`embed_batch`, :meth:`extract_batch` and their bit-level forms. The networks run at the
working size S x S, so 8-bit images of any size share one network call on the fast path; other images (16-bit,
float, torch, or a run with embed-time refinement, whose per-batch early stop would couple the images) are
processed one at a time. Results equal the one-at-a-time calls': the same bits, and the same pixels except where
the batched convolution's last-ulp differences (about 1e-8 of a grey level's float) cross a rounding boundary.
A mixin of :class:`robusthide.watermark.watermarker.Watermarker`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from robusthide import RobustHideError
from robusthide.watermark.imagedata import uint8_view

if TYPE_CHECKING:
    from robusthide.watermark.refine import RefineConfig
    from robusthide.watermark.watermarker import ExtractResult


class BatchMixin:
    """The batch methods of a :class:`~robusthide.watermark.watermarker.Watermarker` (its networks, ``embed_bits``,
    ``extract``, ``decide`` and the fast path's helpers)."""

    BATCH_SIZE = 64

    @staticmethod
    def _batch_list(images: Any) -> list[Any]:
        """A list of images from a list/tuple or an N x H x W (x C) numpy array / N x C x H x W tensor."""
        if isinstance(images, np.ndarray):
            if images.ndim not in (3, 4):
                raise RobustHideError(f"a batch array must be N x H x W or N x H x W x C, got shape {images.shape}")
            return list(images)
        if isinstance(images, torch.Tensor):
            if images.ndim != 4:
                raise RobustHideError(f"a batch tensor must be N x C x H x W, got shape {tuple(images.shape)}")
            return list(images)
        if isinstance(images, (list, tuple)):
            return list(images)
        raise RobustHideError(f"a batch is a list of images or an N x H x W x C array, got {type(images).__name__}")

    def _batchable(self, image: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The uint8 view of ``image`` when it can share a network call (the single-image fast path's test)."""
        return uint8_view(image) if self.device.type == "cpu" and self._working_size else None

    @property
    def _working_size(self) -> bool:
        """Whether the model marks at a working size (a :class:`~robusthide.nets.watermark_model.WatermarkModel`:
        ``small_residual``), which the 8-bit fast path needs; other models mark at full resolution."""
        return hasattr(self.model, "small_residual")

    @torch.no_grad()
    def embed_bits_batch(self, images: Any, bits: Any, strength: float = 1.0, refine: int | RefineConfig | None = None,
                         batch_size: int = BATCH_SIZE) -> list[Any]:
        """:meth:`embed_bits` of every image (a list of any sizes and kinds, or an N x H x W x C array) with
        its row of ``bits`` (N x L, or one row for all); 8-bit images on the fast path share network calls
        of up to ``batch_size`` images. An error names the image: ``image 3: ...``."""
        from robusthide.watermark.imagedata import _check_size

        imgs = self._batch_list(images)
        rows = np.asarray(bits, dtype=np.float32)
        rows = rows if rows.ndim == 2 else np.broadcast_to(rows.reshape(1, -1), (len(imgs), rows.size))
        if len(rows) != len(imgs):
            raise RobustHideError(f"{len(imgs)} images but {len(rows)} rows of bits")
        self._check_strength(strength)
        self.refine_config(refine)  # a bad refine is an error before any work
        out: list[Any] = [None] * len(imgs)
        fast: list[tuple[int, tuple[np.ndarray, np.ndarray | None], torch.Tensor]] = []
        for i, (img, b) in enumerate(zip(imgs, rows)):
            try:
                view = self._batchable(img) if self.refine_config(refine).steps == 0 else None
                if view is None:
                    out[i] = self.embed_bits(img, b, strength, refine)
                else:
                    _check_size(*view[0].shape[:2])
                    fast.append((i, view, self.bits_tensor(b)))
            except RobustHideError as e:
                raise RobustHideError(f"image {i}: {e}") from None
        step = max(1, int(batch_size))
        for k in range(0, len(fast), step):
            chunk = fast[k:k + step]
            small = torch.cat([self._small(v[0]) for _, v, _ in chunk])
            res = self.small_residual(small, torch.cat([b for _, _, b in chunk]), strength, 0)
            for (i, view, _), r in zip(chunk, res):
                out[i] = self._apply_small_residual(view, imgs[i], r[None], strength)
        return out

    def _apply_small_residual(self, view: tuple[np.ndarray, np.ndarray | None], original: Any, r: torch.Tensor,
                              strength: float) -> Any:
        """Where an 8-bit image gets its mark: upsample the working-size residual ``r`` (1 x 1 x S x S), add it
        at ``strength``, round to 8 bits, put alpha back, return the caller's kind (PIL or numpy)."""
        import torch.nn.functional as F

        rgb, alpha = view
        h, w = rgb.shape[:2]
        x = torch.from_numpy(rgb if rgb.flags.writeable else rgb.copy()).float()
        r = F.interpolate(r, size=(h, w), mode="bilinear", align_corners=False)[0, 0].mul_(255 * strength)
        out = (x.add_(r[..., None]) if rgb.ndim == 3 else x.add_(r)).round_().clamp_(0, 255).to(torch.uint8).numpy()
        if alpha is not None:
            out = np.concatenate([out if out.ndim == 3 else out[..., None], alpha], axis=2)
        return Image.fromarray(out) if isinstance(original, Image.Image) else out

    def embed_batch(self, images: Any, messages: Any, strength: float = 1.0, kind: str | None = None,
                    schema: int | None = None, refine: int | RefineConfig | None = None,
                    batch_size: int = BATCH_SIZE) -> list[Any]:
        """:meth:`embed` of every image: ``images`` a list (mixed sizes and kinds) or an N x H x W x C array,
        ``messages`` a list of N messages or one message for all. Returns a list of marked images, each of
        its input's kind. With ``refine=0`` (the fast path) 8-bit images share network calls."""
        imgs = self._batch_list(images)
        msgs = list(messages) if isinstance(messages, (list, tuple)) else [messages] * len(imgs)
        if len(msgs) != len(imgs):
            raise RobustHideError(f"{len(imgs)} images but {len(msgs)} messages")
        if not imgs:
            return []
        bits = np.stack([self.encode_message(m, kind, schema) for m in msgs])
        return self.embed_bits_batch(imgs, bits, strength, refine, batch_size)

    def _batch_search(self, search: str | None) -> bool:
        """True when ``search`` (None: the model's default) is a search: its images are read one at a time."""
        return (self.default_search if search is None else search) != "none"

    @torch.no_grad()
    def _batch_logits(self, images: Any, search: str | None, batch_size: int) -> tuple[list[torch.Tensor], list[dict]]:
        """Per image, the logits (H x L) of every hypothesis of ``search``, and the hypotheses of the ``none``
        search (the same for every image; for other searches each image's are returned by
        :meth:`_search_logits`, so the list is theirs). Without a search, 8-bit images share decoder calls of
        up to ``batch_size`` images (with their mirror images)."""
        from robusthide.watermark.sync import mirror_hypotheses

        imgs = self._batch_list(images)
        out: list[Any] = [None] * len(imgs)
        hyps: list[dict] = []
        fast: list[tuple[int, np.ndarray]] = []
        searching = self._batch_search(search)
        for i, img in enumerate(imgs):
            try:
                view = None if searching else self._batchable(img)
                if view is None:
                    out[i], hyps = self._search_logits(img, search)
                else:
                    from robusthide.watermark.imagedata import _check_size

                    _check_size(*view[0].shape[:2])
                    fast.append((i, view[0]))
            except RobustHideError as e:
                raise RobustHideError(f"image {i}: {e}") from None
        if fast:
            hyps = mirror_hypotheses([{}]) if self.mirror else [{}]
        step = max(1, int(batch_size))
        for k in range(0, len(fast), step):
            chunk = fast[k:k + step]
            logits = self.model.decoder(self._mirrored(torch.cat([self._small(rgb) for _, rgb in chunk]))).float()
            rows = logits.view(len(hyps), len(chunk), -1)  # hypothesis-major: [views..., mirrored views...]
            for j, (i, _) in enumerate(chunk):
                out[i] = rows[:, j]
        return out, hyps

    @torch.no_grad()
    def decode_bits_batch(self, images: Any, search: str | None = None,
                          batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """(hard bits N x L uint8, soft P(bit=1) N x L) of every image, as :meth:`decode_bits` reads them;
        without a search, 8-bit images share decoder calls of up to ``batch_size`` images."""
        from robusthide.watermark.sync import most_confident

        if self._batch_search(search):  # each image's own hypotheses
            rows = [self.decode_bits(img, search) for img in self._batch_list(images)]
            soft = np.stack([p for _, p in rows]) if rows else np.zeros((0, self.n_bits), np.float32)
            return (soft > 0.5).astype(np.uint8), soft.astype(np.float32)
        logits, _ = self._batch_logits(images, search, batch_size)
        soft = np.zeros((len(logits), self.n_bits), np.float32)
        for i, lg in enumerate(logits):
            soft[i] = torch.sigmoid(lg[most_confident(lg)]).numpy()
        return (soft > 0.5).astype(np.uint8), soft

    def extract_batch(self, images: Any, search: str | None = None,
                      batch_size: int = BATCH_SIZE) -> list[ExtractResult]:
        """:meth:`extract` of every image (a list of any sizes and kinds, or an N x H x W x C array); without a
        search (``search='none'``, or None for a model whose default is none) 8-bit images share decoder calls
        of up to ``batch_size`` images; with one, each image is searched on its own."""
        from robusthide.watermark.sync import staged_hypotheses

        mode = self.default_search if search is None else search
        if mode == "staged" and not hasattr(self.model.decoder, "feature_maps"):  # plain reads batched first
            imgs = self._batch_list(images)
            logits, hyps = self._batch_logits(imgs, "none", batch_size)
            first = [(lg, staged_hypotheses(hyps, "none")) for lg in logits]
            out = [self.decide(*f) for f in first]
            return [r if r.detected else self._extract_staged(img, f) for r, img, f in zip(out, imgs, first)]
        if self._batch_search(search):
            return [self.extract(img, search) for img in self._batch_list(images)]
        logits, hyps = self._batch_logits(images, "none", batch_size)
        return [self.decide(lg, hyps) for lg in logits]
