"""Python API: :class:`ImageHider` -- hide 1-3 secret images in a cover image, reveal them again.

```python
from robusthide.imagehiding import ImageHider
h = ImageHider.from_file("imagehide-003.safetensors")
container = h.hide(cover, [secret])        # uint8 H x W x 3, the cover's size
secrets = h.reveal(container)              # list of uint8 S x S x 3 (S = h.size)
```

Sizes. The networks work at one square size ``S`` (``h.size``, the training size).

* Secrets of any size are resized (area-averaged / bicubic) to ``S x S``; the revealed secrets are
  ``S x S``.
* The cover keeps its own size: it is resized to ``S x S``, the embedder computes the residual ``R`` there,
  ``R`` is upsampled bilinearly to the cover's size and added to the full-size cover (the approach of
  TrustMark / VideoSeal, ANCHORS.md), then clamped and rounded to 8 bits. For a cover of exactly
  ``S x S`` this is exactly ``round(clamp(C + R))``. Aspect ratios other than square are squeezed into
  ``S x S`` and back, so very elongated covers spread the residual unevenly.
* :meth:`ImageHider.reveal` resizes the container of any size to ``S x S`` (area averaging) first: the
  downscaled container is the downscaled cover plus (approximately) ``R``, which is what the networks were
  trained on (paper 003 trains against rescaling too).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from robusthide import RobustHideError
from robusthide.imagehiding.nets import HidingNetwork
from robusthide.imagehiding.refine import HideRefineConfig, refine_container
from robusthide.zoo.registry import DEFAULTS as ZOO_DEFAULTS
from robusthide.zoo.registry import PRETRAINED, names
from robusthide.zoo.registry import load as zoo_load

ImageLike = Any  # uint8 H x W x 3 numpy array, or a path to an image file


def _as_image(x: ImageLike, what: str) -> np.ndarray:
    if isinstance(x, (str, os.PathLike)):
        from robusthide.io.images import read_image_rgb

        return read_image_rgb(x)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise RobustHideError(f"{what} must be a uint8 H x W x 3 array or an image path, got {type(x).__name__}")
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    if x.ndim != 3 or x.shape[2] not in (3, 4):
        raise RobustHideError(f"{what} must be an H x W x 3 RGB image, got shape {x.shape}")
    if x.dtype != np.uint8:
        raise RobustHideError(f"{what} must have uint8 pixels, got {x.dtype}")
    if min(x.shape[:2]) < 8:
        raise RobustHideError(f"{what} is too small ({x.shape[1]} x {x.shape[0]} pixels; at least 8 x 8)")
    return np.ascontiguousarray(x[..., :3])


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).float().unsqueeze(0) / 255.0


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t[0].detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def resize_tensor(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Resize ``N x 3 x H x W``: area averaging when shrinking, bicubic (clamped) when enlarging."""
    if tuple(x.shape[-2:]) == (h, w):
        return x
    if h <= x.shape[-2] and w <= x.shape[-1]:
        return F.interpolate(x, size=(h, w), mode="area")
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


#: image-hiding models of the one zoo (:data:`robusthide.zoo.registry.PRETRAINED`, family ``imagehide``)
SHIPPED = {n: PRETRAINED[n]["file"] for n in names("imagehide")}
DEFAULT_MODEL = ZOO_DEFAULTS["imagehide"]


def default_model(n_secrets: int = 1) -> str:
    """The shipped model that ``hide-image`` / ``reveal-image`` use for ``n_secrets`` secret images: the family
    default when it hides that many, else the first shipped model that does (zoo entries say ``n_secrets``)."""
    candidates = [DEFAULT_MODEL, *SHIPPED]
    for name in candidates:
        if PRETRAINED.get(name, {}).get("n_secrets", 1) == n_secrets:
            return name
    raise RobustHideError(f"no shipped image-hiding model hides {n_secrets} secret images: train one "
                          f"(configs/imagehide-hinet{n_secrets}.yaml) and pass it as the model")


def _even(x: torch.Tensor, k: int = 2) -> torch.Tensor:
    """``x`` padded (edge replicated) to a height and width that are multiples of ``k`` (2: even, as the Haar
    transform needs; 4 or 8 for a network with ``downscale`` 2 or 4)."""
    h, w = x.shape[-2:]
    ph, pw = -h % k, -w % k
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


class ImageHider:
    """Hide and reveal images with a trained :class:`~robusthide.imagehiding.nets.HidingNetwork`."""

    def __init__(self, net: HidingNetwork, meta: dict[str, str] | None = None, device: str | None = None):
        self.device = torch.device(device or "cpu")
        self.net = net.to(self.device).eval()
        self.meta = dict(meta or {})

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str | None = None) -> ImageHider:
        """Load an exported model (a ``robusthide/2`` safetensors file of family ``imagehide``, or the older
        ``robusthide-imagehide/1``) or a shipped one by name, through the one zoo loader
        (:func:`robusthide.zoo.registry.load`)."""
        net = zoo_load(path, "imagehide")
        return cls(net, net.meta, device)

    @classmethod
    def from_pretrained(cls, name: str = DEFAULT_MODEL, device: str | None = None) -> ImageHider:
        """Load a model of the zoo (family ``imagehide``, :data:`SHIPPED`), offline."""
        return cls.from_file(name, device)

    @property
    def size(self) -> int:
        """The working size ``S`` (secrets are revealed at ``S x S``)."""
        return self.net.size

    @property
    def n_secrets(self) -> int:
        return self.net.n_secrets

    def _secrets(self, secrets: Sequence[ImageLike] | ImageLike,
                 size: tuple[int, int] | None = None) -> list[torch.Tensor]:
        if isinstance(secrets, np.ndarray) and secrets.ndim == 3 or isinstance(secrets, (str, os.PathLike)):
            secrets = [secrets]
        secrets = list(secrets)
        if len(secrets) != self.n_secrets:
            raise RobustHideError(f"this model hides exactly {self.n_secrets} secret image(s), "
                                  f"got {len(secrets)}")
        H, W = size or (self.size, self.size)
        return [resize_tensor(_to_tensor(_as_image(s, f"secret {i + 1}")), H, W).to(self.device)
                for i, s in enumerate(secrets)]

    @property
    def any_size(self) -> bool:
        """Whether the network runs at the cover's own size (the fully convolutional ``arch: hinet``)."""
        return bool(getattr(self.net, "fully_convolutional", False))

    @torch.no_grad()
    def residual(self, cover: ImageLike, secrets: Sequence[ImageLike] | ImageLike) -> torch.Tensor:
        """The residual ``R`` at the working size (``1 x 3 x S x S`` float tensor)."""
        c = _to_tensor(_as_image(cover, "cover")).to(self.device)
        S = self.size
        _, r = self.net.hide(resize_tensor(c, S, S), self._secrets(secrets))
        return r.float()

    @torch.no_grad()
    def hide(self, cover: ImageLike, secrets: Sequence[ImageLike] | ImageLike,
             refine: HideRefineConfig | None = None) -> np.ndarray:
        """The container: uint8 ``H x W x 3`` at the cover's size (see the module docstring). ``refine``:
        optimise the working-size container against the reveal network first
        (:func:`robusthide.imagehiding.refine.refine_container`)."""
        img = _as_image(cover, "cover")
        c = _to_tensor(img).to(self.device)
        h, w = img.shape[:2]
        if self.any_size:  # at the cover's size (made even for the wavelet transform), secrets resized to it
            ce = _even(c, getattr(self.net, "multiple", 2))
            sec = self._secrets(secrets, tuple(ce.shape[-2:]))
            m, _ = self.net.hide(ce, sec)
            if refine is not None and refine.steps:
                m = refine_container(self.net, ce, sec, m.float(), refine)
            return _to_uint8(m.float()[..., :h, :w])
        S = self.size
        small, sec = resize_tensor(c, S, S), self._secrets(secrets)
        m, r = self.net.hide(small, sec)
        if refine is not None and refine.steps:
            r = refine_container(self.net, small, sec, m.float(), refine) - small
        r = r.float()
        if (h, w) != (S, S):
            r = F.interpolate(r, size=(h, w), mode="bilinear", align_corners=False)
        return _to_uint8(c + r)

    @torch.no_grad()
    def reveal(self, container: ImageLike) -> list[np.ndarray]:
        """The revealed secrets: a list of ``n_secrets`` uint8 images, ``S x S x 3`` (at the container's size
        for an :attr:`any_size` network)."""
        m = _to_tensor(_as_image(container, "container")).to(self.device)
        if self.any_size:
            h, w = m.shape[-2:]
            rev, _, _ = self.net.reveal(_even(m, getattr(self.net, "multiple", 2)))
            return [_to_uint8(s[..., :h, :w]) for s in rev]
        S = self.size
        rev, _, _ = self.net.reveal(resize_tensor(m, S, S))
        return [_to_uint8(s) for s in rev]
