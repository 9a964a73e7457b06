"""Pseudo-differentiable real codec (paper 000, §3.3 "Pseudo differentiable lossy compression", Fig. 3).

The codec's effect is treated as additive pseudo-noise ``n = codec(x) - x`` that does not depend on ``x`` for
the backward pass: ``y = x + (codec(x) - x).detach()``. Forward: exactly the decoded image of the real codec;
backward: identity. Any black-box codec works (JPEG, JPEG 2000, WebP, video...), since nothing is
differentiated through it. ANCHORS.md ("Pseudo-differentiable codec"): round (never truncate) to uint8,
code in memory, run on any device.

Implemented with a custom autograd function rather than the literal ``x + (d - x).detach()``, because the
float sum ``x + (d - x)`` can differ from ``d`` by one ulp; the function returns ``d`` bit-exactly and passes
the upstream gradient through unchanged, which is the same operator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from robusthide.attacks.base import Attack, AttackError, check_batch, straight_through
from robusthide.codecs import Codec, CodecResult, get_codec
from robusthide.codecs.base import to_uint8_batch

#: how a real codec passes the gradient back (``grad``): ``identity`` (paper 000 §3.3, forward real /
#: backward identity) or ``zero`` (MBRS §3.2: the real JPEG is non-differentiable, dL/dx = 0)
REAL_GRADS = ("identity", "zero")


def check_grad(grad: Any) -> str:
    if grad not in REAL_GRADS:
        raise AttackError(f"grad must be one of {', '.join(REAL_GRADS)}, got {grad!r}")
    return grad


def real_output(x: torch.Tensor, decoded: torch.Tensor, grad: str) -> torch.Tensor:
    """The decoded images as the layer's output: straight-through to ``x`` (``identity``) or detached
    (``zero``), in ``x``'s dtype and on its device."""
    if grad == "zero":
        return decoded.detach().to(dtype=x.dtype, device=x.device)
    return straight_through(x, decoded)


def _call_blackbox(
    fn: Callable[[np.ndarray], Any], arr: np.ndarray, name: str
) -> tuple[np.ndarray, list[int]]:
    out = fn(arr)
    nbytes: list[int] = [0] * len(arr)
    if isinstance(out, CodecResult):
        out, nbytes = out.images, list(out.nbytes)
    elif isinstance(out, tuple) and len(out) == 2:
        out, sizes = out
        nbytes = [int(s) for s in np.broadcast_to(np.asarray(sizes), (len(arr),))]
    if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != arr.shape:
        got = f"{out.shape} {out.dtype}" if isinstance(out, np.ndarray) else type(out).__name__
        raise AttackError(f"{name}: codec must return uint8 {arr.shape} numpy images, got {got}")
    return out, nbytes


class PseudoDifferentiable(Attack):
    """Real codec in the loop, forward-real / backward-identity (paper 000 §3.3, Fig. 3).

    Args:
        codec: a codec spec string (``'jpeg:q=50'``, ``'jpeg2000:x1000=500'``...), a
            :class:`~robusthide.codecs.Codec`, or any black-box callable taking a uint8 ``N x H x W x 3``
            numpy batch and returning the decoded uint8 batch of the same shape (optionally as
            ``(images, nbytes)`` or a :class:`~robusthide.codecs.CodecResult`).
        workers: threads for a codec built from a spec (default: the codec library's default).
        grad: ``identity`` (default, backward identity) or ``zero`` (no gradient: MBRS's real JPEG).

    Forward returns ``uint8_decoded / 255`` in ``x``'s dtype on ``x``'s device (the codec runs on the CPU,
    on ``x`` cast to float32, rounded to uint8); backward passes the upstream gradient unchanged.
    ``last_nbytes`` holds the compressed sizes of the last batch (0 where a callable gave none).
    """

    spec_name = "real"

    def __init__(self, codec: str | Codec | Callable[[np.ndarray], Any], workers: int | None = None,
                 grad: str = "identity"):
        super().__init__(None)
        self.workers = workers
        self.grad = check_grad(grad)
        if isinstance(codec, str):
            self._codec: Any = get_codec(codec, workers)
            self.codec = codec.strip()
        elif isinstance(codec, Codec):
            self._codec = codec
            self.codec = codec.spec
        elif callable(codec):
            self._codec = codec
            self.codec = getattr(codec, "__name__", type(codec).__name__)
        else:
            raise AttackError(
                f"codec must be a spec string, a Codec or a callable, got {type(codec).__name__}"
            )
        self.last_nbytes: list[int] = []

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """The codec's decoded images (float32, CPU, no gradient) for ``x``."""
        xc = x.detach().to(device="cpu", dtype=torch.float32)
        if isinstance(self._codec, Codec):
            res = self._codec(xc)
            self.last_nbytes = list(res.nbytes)
            return res.images
        arr, back = to_uint8_batch(xc)
        if len(arr) == 0:
            self.last_nbytes = []
            return xc.clone()
        out, self.last_nbytes = _call_blackbox(self._codec, arr, f"codec {self.codec!r}")
        return back(out)

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        return real_output(x, self.decode(x), self.grad)

    def spec(self) -> str:
        return f"real({self.codec})" if self.grad == "identity" else f"real({self.codec};grad={self.grad})"
