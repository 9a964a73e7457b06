"""The fixed steganography decoder of paper 004 (the FNNS decoder, Kishore et al. 2021).

:class:`BasicDecoder` has SteganoGAN's ``BasicDecoder`` shape: 3 x [conv 3x3, LeakyReLU, BatchNorm] then a
conv 3x3 to D channels, fully convolutional: one logit per hidden bit, D bits per pixel. It is trained with
:class:`ResidualEncoder` (SteganoGAN's residual encoder) by :mod:`.train`; paper 004 then freezes it.
FNNS-R (:func:`random_decoder`) is the same network with seeded N(0, 1) conv weights and identity
batch-norm, never trained.

Decoder specs (CLI ``--decoder``): a path to our safetensors file, or ``fnns-r:SEED[:D[:HIDDEN]]``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from robusthide import RobustHideError
from robusthide.latent.models import latent_meta, read_safetensors, state_hash

DECODER_FORMAT = "robusthide-latent-stegdecoder"


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class BasicDecoder(nn.Module):
    """Image (N x 3 x H x W in [0, 1]) -> bit logits (N x D x H x W)."""

    def __init__(self, data_depth: int = 1, hidden: int = 32):
        super().__init__()
        self.data_depth, self.hidden = int(data_depth), int(hidden)
        h = self.hidden
        self.layers = nn.Sequential(
            _conv(3, h), nn.LeakyReLU(inplace=True), nn.BatchNorm2d(h),
            _conv(h, h), nn.LeakyReLU(inplace=True), nn.BatchNorm2d(h),
            _conv(h, h), nn.LeakyReLU(inplace=True), nn.BatchNorm2d(h),
            _conv(h, self.data_depth),
        )
        self.spec = f"basic:{data_depth}:{hidden}"

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

    def decoder_id(self) -> str:
        return state_hash(self.state_dict())


class ResidualEncoder(nn.Module):
    """SteganoGAN's residual encoder: x + f([features(x), M]); used only to train the decoder."""

    def __init__(self, data_depth: int = 1, hidden: int = 32):
        super().__init__()
        h = hidden
        self.features = nn.Sequential(_conv(3, h), nn.LeakyReLU(inplace=True), nn.BatchNorm2d(h))
        self.layers = nn.Sequential(
            _conv(h + data_depth, h), nn.LeakyReLU(inplace=True), nn.BatchNorm2d(h),
            _conv(h, h), nn.LeakyReLU(inplace=True), nn.BatchNorm2d(h), _conv(h, 3),
        )

    def forward(self, x: Tensor, bits: Tensor) -> Tensor:
        return x + self.layers(torch.cat([self.features(x), bits], dim=1))


def random_decoder(seed: int = 0, data_depth: int = 1, hidden: int = 32) -> BasicDecoder:
    """FNNS-R: conv weights ~ N(0, 1) from ``seed``, zero biases, batch-norm at identity (eval mode).

    Each conv's weights are multiplied by sqrt(2 / fan_in) (He scaling; the last conv by 10 / sqrt(fan_in)):
    with zero biases the network is positively homogeneous (LeakyReLU), so this only rescales the logits
    (the decoded bits are exactly those of the raw N(0, 1) network) and keeps them near unit scale, where
    the cross-entropy is neither saturated nor flat. Zero biases
    also keep the decision from being a constant set by the biases (with N(0, 1) biases nearly every bit
    reads the same, whatever the image)."""
    d = BasicDecoder(data_depth, hidden)
    g = torch.Generator().manual_seed(int(seed))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for i, m in enumerate(convs):
            fan_in = m.weight[0].numel()
            gain = 10.0 if i == len(convs) - 1 else 2.0**0.5
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * gain / fan_in**0.5)
            m.bias.zero_()
    d.spec = f"fnns-r:{seed}:{data_depth}:{hidden}"
    return d.eval().requires_grad_(False)


def save_decoder(dec: BasicDecoder, path: str | Path, **meta: object) -> None:
    from safetensors.torch import save_file

    info = {k: str(v) for k, v in meta.items()}
    info.update(format=DECODER_FORMAT, data_depth=str(dec.data_depth), hidden=str(dec.hidden))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in dec.state_dict().items()}, str(path), metadata=info)


#: bounds of a decoder's message depth (bits per pixel) and hidden width, from a file or a spec
MAX_DEPTH, MAX_HIDDEN = 64, 1024


def _bounded(what: str, depth: int, hidden: int) -> None:
    if not (1 <= depth <= MAX_DEPTH and 1 <= hidden <= MAX_HIDDEN):
        raise RobustHideError(f"{what}: decoder data_depth={depth}, hidden={hidden} out of range "
                              f"([1, {MAX_DEPTH}], [1, {MAX_HIDDEN}])")


def load_decoder(spec: str | Path) -> BasicDecoder:
    """A frozen decoder (eval mode) from a file path (the one weights format, the family's older
    ``robusthide-latent-stegdecoder``, or a LISO file of ``train-liso``: its decoder) or an
    ``fnns-r:SEED[:D[:HIDDEN]]`` spec."""
    s = str(spec)
    if s.startswith("fnns-r"):
        parts = s.split(":")
        try:
            nums = [int(p) for p in parts[1:]]
        except ValueError:
            raise RobustHideError(f"bad decoder spec {s!r}: expected fnns-r:SEED[:D[:HIDDEN]]") from None
        seed, depth, hidden = (nums + [0, 1, 32][len(nums):])[:3] if nums else (0, 1, 32)
        _bounded(s, depth, hidden)
        return random_decoder(seed, depth, hidden)
    p = Path(s)
    if not p.is_file():
        raise RobustHideError(f"steganography decoder not found: {p} (or use fnns-r:SEED)")
    meta, sd = read_safetensors(p, "decoder weights")
    if meta.get("format") == "robusthide-latent-liso":  # liso.LISO_FORMAT: the decoder trained along with LISO
        meta = {"format": DECODER_FORMAT, "data_depth": meta.get("data_depth", ""),
                "hidden": meta.get("decoder_hidden", "")}
        sd = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
    own = latent_meta(p, meta, "decoder")  # robusthide/2, the one weights format
    if own is None and meta.get("format") != DECODER_FORMAT:
        raise RobustHideError(f"{p} is not a robusthide steganography decoder file")
    values = own or meta
    try:
        depth, hidden = int(values["data_depth"]), int(values["hidden"])
    except (KeyError, ValueError):
        raise RobustHideError(f"{p}: decoder metadata data_depth / hidden missing or not integers") from None
    _bounded(str(p), depth, hidden)  # before any network is built
    d = BasicDecoder(depth, hidden)
    try:
        d.load_state_dict(sd)
    except Exception as e:  # missing, unexpected or mis-shaped tensors
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise RobustHideError(f"{p}: decoder tensors do not match data_depth={depth}, hidden={hidden} ({first})") \
            from None
    d.spec = str(p)
    return d.eval().requires_grad_(False)
