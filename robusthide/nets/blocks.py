"""Building blocks of the HiDDeN and MBRS networks (paper 002 §3.1, MBRS's public code per ANCHORS.md).

* :class:`ConvBNReLU` — 3x3 convolution (padding 1), BatchNorm, ReLU: the basic layer of HiDDeN and MBRS.
* :class:`SEBottleneck` — MBRS's "SE block": a bottleneck residual block (1x1, 3x3, 1x1 convolutions
  with BatchNorm) whose output is re-weighted per channel by squeeze-and-excitation (global average pool,
  1x1 conv to ``c / r``, ReLU, 1x1 conv back, sigmoid; r = 8), plus the shortcut (a 1x1 convolution +
  BatchNorm when the shape changes), then ReLU. MBRS applies the stride in the first 1x1 convolution.
* :class:`UpBNReLU` — MBRS's message expansion step: ConvTranspose2d(kernel 2, stride 2), BatchNorm,
  ReLU; it doubles height and width.

All take and return N x C x H x W float tensors. They contain BatchNorm: call ``model.eval()`` before
inference (HiDDeN users who left BatchNorm in training mode at test time saw ~50% bit errors).
"""

from __future__ import annotations

import torch
from torch import nn

from robusthide import RobustHideError


class ArchitectureError(RobustHideError, ValueError):
    """An impossible architecture setting (e.g. an MBRS message length that is not a square)."""


class ConvBNReLU(nn.Sequential):
    """3x3 convolution (stride ``stride``, padding 1) -> BatchNorm -> ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def conv_stack(cin: int, cout: int, n: int) -> nn.Sequential:
    """``n`` ConvBNReLU layers, the first ``cin -> cout``, the rest ``cout -> cout`` (empty if n = 0)."""
    return nn.Sequential(*[ConvBNReLU(cin if i == 0 else cout, cout) for i in range(n)])


class SEBottleneck(nn.Module):
    """MBRS's SE bottleneck block (paper 002 §3.1 "Encoder"; Hu et al., squeeze-and-excitation, r = 8).

    ``y = relu(se(left(x)) * left(x) + shortcut(x))`` with ``left`` = 1x1 (stride) -> BN -> ReLU -> 3x3 -> BN
    -> ReLU -> 1x1 -> BN and ``shortcut`` = identity, or 1x1 conv (stride) + BN when the shape changes.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, r: int = 8):
        super().__init__()
        self.left = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout),
        )
        mid = max(1, cout // r)
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(cout, mid, 1, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.Sigmoid(),
        )
        self.shortcut: nn.Module = nn.Identity()
        if cin != cout or stride != 1:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.left(x)
        return torch.relu(y * self.se(y) + self.shortcut(x))


def se_stack(cin: int, cout: int, n: int, r: int = 8) -> nn.Sequential:
    """``n`` shape-keeping SE blocks, the first ``cin -> cout`` (MBRS's ``SENet``; empty if n = 0)."""
    return nn.Sequential(*[SEBottleneck(cin if i == 0 else cout, cout, 1, r) for i in range(n)])


class UpBNReLU(nn.Sequential):
    """ConvTranspose2d(kernel 2, stride 2) -> BatchNorm -> ReLU: doubles H and W (MBRS's message expansion)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.ConvTranspose2d(cin, cout, 2, 2, 0), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def up_stack(cin: int, cout: int, n: int) -> nn.Sequential:
    """``n`` :class:`UpBNReLU` layers (H and W times 2**n; empty if n = 0)."""
    return nn.Sequential(*[UpBNReLU(cin if i == 0 else cout, cout) for i in range(n)])


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (frozen ones included)."""
    return sum(p.numel() for p in module.parameters())


def run_fp32(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``layer`` in float32 even under autocast. Used for the encoders' last 1x1 convolution: they output
    the whole image, and bfloat16 (8 significant bits) would put quantisation noise of up to 1/256 on it."""
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())
