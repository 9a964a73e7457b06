"""LISO and LISO-JPEG, the second baseline family of paper 004 (Chen et al., "Learning Iterative Neural
Optimizers for Image Steganography", ICLR 2023), scaled to a CPU.

LISO replaces FNNS's hand-made optimiser (L-BFGS on the pixels) by a *learned* one. Starting from the cover,
a recurrent update network takes, at every step t, the perturbation x_t - x, the gradient of the message
loss with respect to x_t (through the decoder), and features of the cover (its context). A convolutional
GRU turns these into the next update: x_{t+1} = clamp(x_t + s * tanh(head(h_t)), 0, 1). The update network
and the steganography decoder (SteganoGAN's ``BasicDecoder``, as for FNNS) are trained together, on the loss
summed over the unrolled steps with weights gamma^(T-1-t) (later steps count more)::

    sum_t gamma^(T-1-t) * [BCE(D(channel(x_{t+1})), M) + w_mse * MSE(x_{t+1}, x)]

The channel rounds to 8 bits (straight-through) as a PNG would. **LISO-JPEG** puts a JPEG layer in that
channel: the forward pass is real Pillow JPEG at quality Q and the backward pass is the analytic gradient
of a differentiable JPEG (``robusthide.attacks.DiffJPEG``), the "approximate JPEG layer" paper 004 describes.
The message gradient fed to the update network goes through the same channel. The input gradient is
detached (no second-order terms) and normalised to unit RMS per image, so the network sees its direction.

What differs from the published LISO (docs/latent.md): no critic (adversarial) loss, hidden width 32
instead of 64, and a few hundred training steps on 64 px crops of our photos, not DIV2K/CelebA/COCO. The
decoder starts from a given one (the shipped FNNS decoder when present) and is trained further with the
update network. LISO's optional L-BFGS refinement after the learned steps is not run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robusthide import RobustHideError
from robusthide.latent.editing import ste_uint8
from robusthide.latent.models import read_safetensors, state_hash
from robusthide.latent.stegnet import BasicDecoder

LISO_FORMAT = "robusthide-latent-liso"


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class ConvGRU(nn.Module):
    """A convolutional GRU cell (3 x 3 gates), as in RAFT's update block, which LISO follows."""

    def __init__(self, hidden: int, inp: int):
        super().__init__()
        self.convz = _conv(hidden + inp, hidden)
        self.convr = _conv(hidden + inp, hidden)
        self.convq = _conv(hidden + inp, hidden)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz(hx))
        r = torch.sigmoid(self.convr(hx))
        q = torch.tanh(self.convq(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q


def real_jpeg(x: Tensor, quality: int) -> Tensor:
    """Real Pillow JPEG (4:2:0) of a batch in [0, 1]; no gradient."""
    from robusthide.codecs import get_codec

    with torch.no_grad():
        return get_codec(f"jpeg:q={int(quality)}")(x.detach().clamp(0, 1)).images.to(x.dtype)


class JpegLayer(nn.Module):
    """LISO-JPEG's approximate JPEG layer: forward real JPEG at ``quality``, backward DiffJPEG's gradient."""

    def __init__(self, quality: int):
        super().__init__()
        from robusthide.attacks import DiffJPEG

        self.quality = int(quality)
        self.diff = DiffJPEG(self.quality)

    def forward(self, x: Tensor) -> Tensor:
        d = self.diff(x.clamp(0, 1))
        return d + (real_jpeg(x, self.quality) - d).detach()


class Liso(nn.Module):
    """The learned optimiser (update network) and its decoder; ``jpeg`` set: LISO-JPEG."""

    def __init__(self, hidden: int = 32, data_depth: int = 1, iters: int = 6, step: float = 0.05,
                 jpeg: int | None = None, decoder_hidden: int = 32):
        super().__init__()
        h = self.hidden = int(hidden)
        self.data_depth, self.iters, self.step = int(data_depth), int(iters), float(step)
        self.jpeg = None if jpeg is None else int(jpeg)
        self.context = nn.Sequential(_conv(3, h), nn.LeakyReLU(0.2, inplace=True), _conv(h, 2 * h))
        self.inp = nn.Sequential(_conv(6, h), nn.LeakyReLU(0.2, inplace=True), _conv(h, h),
                                 nn.LeakyReLU(0.2, inplace=True))
        self.gru = ConvGRU(h, 2 * h)
        self.head = nn.Sequential(_conv(h, h), nn.LeakyReLU(0.2, inplace=True), _conv(h, 3))
        self.decoder = BasicDecoder(data_depth, decoder_hidden)
        self.channel_layer: nn.Module | None = JpegLayer(self.jpeg) if self.jpeg is not None else None

    def channel(self, x: Tensor) -> Tensor:
        """What the receiver sees: 8-bit rounding (PNG) or, for LISO-JPEG, the JPEG layer."""
        return ste_uint8(x) if self.channel_layer is None else self.channel_layer(x)

    def message_grad(self, x: Tensor, target: Tensor) -> Tensor:
        """d BCE / d x through the channel and the decoder, detached, unit RMS per image."""
        with torch.enable_grad():
            xi = x.detach().requires_grad_(True)
            loss = F.binary_cross_entropy_with_logits(self.decoder(self.channel(xi)), target, reduction="sum")
            (g,) = torch.autograd.grad(loss, xi)
        return g / (g.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt() + 1e-12)

    def unroll(self, cover: Tensor, target: Tensor, iters: int | None = None) -> list[Tensor]:
        """The iterates x_1 .. x_T of the learned optimiser for covers (N x 3 x H x W) and bits (N x D x H x W)."""
        hid, ctx = torch.split(self.context(cover), [self.hidden, self.hidden], dim=1)
        h, ctx = torch.tanh(hid), torch.relu(ctx)
        x, out = cover, []
        for _ in range(self.iters if iters is None else int(iters)):
            g = self.message_grad(x, target)
            h = self.gru(h, torch.cat([self.inp(torch.cat([x - cover, g], dim=1)), ctx], dim=1))
            x = (x + self.step * torch.tanh(self.head(h))).clamp(0, 1)
            out.append(x)
        return out

    @torch.no_grad()
    def embed(self, cover: Tensor, target: Tensor, iters: int | None = None) -> Tensor:
        """The LISO stego image (float, before saving) for one or more covers."""
        self.eval()
        return self.unroll(cover, target, iters)[-1].detach()

    def model_id(self) -> str:
        return state_hash(self.state_dict())


def save_liso(model: Liso, path: str | Path, **meta: object) -> None:
    from safetensors.torch import save_file

    info = {k: str(v) for k, v in meta.items()}
    info.update(format=LISO_FORMAT, hidden=str(model.hidden), data_depth=str(model.data_depth),
                iters=str(model.iters), step=str(model.step), jpeg="" if model.jpeg is None else str(model.jpeg),
                decoder_hidden=str(model.decoder.hidden))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(path), metadata=info)


def load_liso(path: str | Path) -> Liso:
    """A LISO / LISO-JPEG model (eval mode) from our safetensors file."""
    p = Path(path)
    if not p.is_file():
        raise RobustHideError(f"LISO weights not found: {p} (train them with 'robusthide latent train-liso')")
    meta, sd = read_safetensors(p, "LISO weights")
    if meta.get("format") != LISO_FORMAT:
        raise RobustHideError(f"{p} is not a robusthide LISO file")
    m = Liso(int(meta["hidden"]), int(meta["data_depth"]), int(meta["iters"]), float(meta["step"]),
             int(meta["jpeg"]) if meta.get("jpeg") else None, int(meta["decoder_hidden"]))
    m.load_state_dict(sd)
    m.meta = dict(meta)  # type: ignore[attr-defined]
    return m.eval()


@dataclass
class LisoTrainConfig:
    steps: int = 400
    size: int = 64
    batch: int = 8
    lr: float = 1e-3
    gamma: float = 0.8
    mse_weight: float = 10.0
    seed: int = 0
    max_side: int = 512
    log_every: int = 50


def train_liso(
    data: str | Path, out: str | Path, model: Liso, cfg: LisoTrainConfig | None = None,
    init_decoder: BasicDecoder | None = None, echo: Callable[[dict], None] | None = None, bank=None,
) -> Liso:
    """Train the update network and the decoder together; writes ``out/liso.safetensors`` and ``out/log.jsonl``
    (on the one training loop: :func:`robusthide.latent.train.train_liso`)."""
    from robusthide.latent import train

    return train.train_liso(data, out, model, cfg or LisoTrainConfig(), init_decoder=init_decoder, echo=echo,
                            bank=bank)
