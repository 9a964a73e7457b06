"""GDN / IGDN (Ballé et al. 2016, used by the scale hyperprior of Ballé et al. 2018; paper 004 Table 6).

GDN: y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2); IGDN multiplies by the square root instead.
``beta`` and ``gamma`` are stored reparametrised (non-negative via x = p^2 - pedestal, p >= bound) with the
same parameter and buffer names as CompressAI's ``GDN`` so that its checkpoints load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _LowerBoundFn(torch.autograd.Function):
    """max(x, bound) whose gradient still flows where x < bound if it would push x upwards."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, bound = ctx.saved_tensors
        pass_through = (x >= bound) | (grad < 0)
        return pass_through.type_as(grad) * grad, None


class LowerBound(nn.Module):
    """Lower bound with a buffer named ``bound`` (CompressAI's ``compressai.ops.LowerBound``)."""

    bound: Tensor

    def __init__(self, bound: float):
        super().__init__()
        self.register_buffer("bound", torch.Tensor([float(bound)]))

    def forward(self, x: Tensor) -> Tensor:
        return _LowerBoundFn.apply(x, self.bound.to(x.dtype))


class NonNegativeParametrizer(nn.Module):
    """x = max(p, sqrt(minimum + pedestal))^2 - pedestal (CompressAI names: ``pedestal``, ``lower_bound``)."""

    pedestal: Tensor

    def __init__(self, minimum: float = 0.0, reparam_offset: float = 2**-18):
        super().__init__()
        self.register_buffer("pedestal", torch.Tensor([float(reparam_offset) ** 2]))
        self.lower_bound = LowerBound((float(minimum) + float(reparam_offset) ** 2) ** 0.5)

    def init(self, x: Tensor) -> Tensor:
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x: Tensor) -> Tensor:
        return self.lower_bound(x) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalized divisive normalisation; ``inverse=True`` gives IGDN (the synthesis transform's)."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma_reparam = NonNegativeParametrizer()
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(x * x, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))
