"""HiDDeN (Zhu et al. 2018), as in its common PyTorch re-implementation (ANCHORS.md), the network paper 000
trains with real codecs (paper 000 §4: 30 bits in 128 x 128 colour images).

* Encoder: 4 ConvBNReLU (64 ch) on the image; the message is broadcast to L x H x W and concatenated with
  those features and the image -> ConvBNReLU -> 1x1 convolution to 3 channels = the encoded image.
* Decoder: 7 ConvBNReLU (64) -> ConvBNReLU(64 -> L) -> global average pool -> Linear(L, L) = bit logits.
* Discriminator: 3 ConvBNReLU (64) -> global average pool -> Linear(64, 1) = logit "is marked".

All three are fully convolutional, so :class:`~robusthide.nets.image_model.FullResolutionModel` runs them on
images of any size at their own resolution (``size`` is only the training resolution).

Differences from the re-implementation, deliberately: images enter as [0, 1] and are mapped to [-1, 1] inside
(as its data loader does); the message enters centred as +-1 rather than {0, 1}; the decoder output is read as
a logit (positive = bit 1), i.e. the re-implementation's raw output minus 1/2 (its decoded bit is output >
1/2): the trainer's ``msg_loss: mse-raw`` is its loss, MSE of that raw output against the {0, 1} bits (the
recipes use ``mse``, sigmoid-MSE: mse-raw stalled at chance here); the last 1x1 convolution runs in float32
under autocast. Its known bugs are not network bugs and are absent from this project: noise layers come from
the training config (nothing is silently added to the noise list, crops are drawn correctly), its triangular
JPEG-Mask is ``jpegmask-hidden``, and inference calls ``model.eval()`` so BatchNorm uses its running
statistics (BatchNorm left in training mode at test time gives ~50% bit errors).

Learning pace (docs/results/hidden-learns.md): this network learns the message slowly even with no noise at
all, in the re-implementation's own training logs as here; its 30 bits must be written as content-dependent
patterns (the message enters as constant maps) and read through a global average pool. Budget tens of
thousands of steps, not thousands.
"""

from __future__ import annotations

import torch
from torch import nn

from robusthide.nets.blocks import ArchitectureError, ConvBNReLU, conv_stack, run_fp32
from robusthide.nets.image_model import FullResolutionModel
from robusthide.nets.registry import register_model


class HiddenEncoder(nn.Module):
    """(cover N x 3 x H x W in [0, 1], bits N x L in {0, 1}) -> encoded image N x 3 x H x W (about [0, 1])."""

    fixed_size = False

    def __init__(self, n_bits: int = 30, size: int = 128, ch: int = 64, blocks: int = 4):
        super().__init__()
        self.n_bits, self.size = n_bits, size
        self.features = conv_stack(3, ch, blocks)
        self.after_concat = ConvBNReLU(ch + 3 + n_bits, ch)
        self.final = nn.Conv2d(ch, 3, 1)

    def forward(self, cover: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        n, _, h, w = cover.shape
        x = cover * 2 - 1
        f = self.features(x)
        m = (bits.to(f.dtype) * 2 - 1)[:, :, None, None].expand(n, self.n_bits, h, w)
        g = self.after_concat(torch.cat([m, f, x.to(f.dtype)], 1))
        return (run_fp32(self.final, g) + 1) / 2


class HiddenDecoder(nn.Module):
    """image N x 3 x H x W in [0, 1] (any H, W) -> bit logits N x L."""

    fixed_size = False

    def __init__(self, n_bits: int = 30, size: int = 128, ch: int = 64, blocks: int = 7):
        super().__init__()
        self.n_bits, self.size = n_bits, size
        self.features = nn.Sequential(conv_stack(3, ch, blocks), ConvBNReLU(ch, n_bits), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(n_bits, n_bits)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(img * 2 - 1).flatten(1))


class HiddenDiscriminator(nn.Module):
    """image N x 3 x H x W in [0, 1] -> logit N x 1; positive = "a cover" (the labels of
    :func:`robusthide.training.adversary.adversarial_losses`: cover 1, marked 0, as in HiDDeN's code)."""

    def __init__(self, ch: int = 64, blocks: int = 3):
        super().__init__()
        self.features = nn.Sequential(conv_stack(3, ch, blocks), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(ch, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(img * 2 - 1).flatten(1))


@register_model("hidden")
def hidden(n_bits: int = 30, size: int = 128, ch: int = 64, enc_blocks: int = 4, dec_blocks: int = 7,
           disc_blocks: int = 3, discriminator: bool = True, amplitude: float | None = None) -> nn.Module:
    """HiDDeN as a :class:`~robusthide.nets.image_model.FullResolutionModel`.

    ``discriminator=False`` leaves the adversary out (e.g. for exported inference weights).
    ``amplitude`` is accepted and ignored (the training defaults carry it for the residual models; HiDDeN's
    encoder outputs the image itself; scale the watermark with ``embed(..., strength=)``).
    """
    del amplitude
    if n_bits < 1 or enc_blocks < 1 or dec_blocks < 1 or disc_blocks < 1 or ch < 1:
        raise ArchitectureError(f"hidden: n_bits, ch and block counts must be >= 1 (n_bits={n_bits}, ch={ch})")
    return FullResolutionModel(
        HiddenEncoder(n_bits, size, ch, enc_blocks),
        HiddenDecoder(n_bits, size, ch, dec_blocks),
        HiddenDiscriminator(ch, disc_blocks) if discriminator else None,
    )
