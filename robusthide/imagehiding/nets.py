"""Networks of paper 003 ("Hiding images into images with real-world robustness"), §2 and Fig. 1.

* :class:`MultiBranchUNet` -- the paper's multi-branch U-Net (§2.1, Fig. 1(b1-b3)): one or more encoder
  branches that do not share weights, one or more decoder branches; every decoder level concatenates the
  upsampled output of the previous level with the skip features of *all* encoder branches at that level.
* :class:`Embedder` ``E`` (§2.1): one unshared encoder per input (cover and each secret image), one decoder
  producing the residual ``R``; the container (the paper's "marked image") is ``M = C + R``.
  ``multi_branch=False`` gives the "traditional U-Net" of the ablation (Table 2): one encoder on the
  channel-concatenation of cover and secrets.
* :class:`Decoupler` ``D`` (§2.3): one shared encoder on the attacked image, two decoder branches: the
  extracted, amplified residual ``R^ ~ amplify * R`` and the recovered cover ``C^ ~ C``.
* :class:`Revealer` ``R`` (§2.3): one shared encoder on ``R^``, one decoder branch per secret image
  (progressive recovery). With ``progressive=False`` (ablation "without progressive recovery", Table 2)
  it reads the attacked image directly and there is no decoupler.
* :class:`PatchDiscriminator` -- PatchGAN (Isola et al. 2017, the paper's [19]): a grid of real/fake
  scores, one per receptive-field patch; trained with the least-squares GAN loss (§2.4, [26]).
* :class:`HidingNetwork` -- ``E``, ``D`` and ``R`` together (what is exported and used by the CLI).

The figure with the layer details was lost in the text; the paper cites batch normalisation [27], ELU [35]
and dilated convolutions [36], which we use as follows (our choices, all parameters): per level two 3x3
convolutions with normalisation and activation, stride-2 convolution to go down, bilinear upsampling to go
up, a dilated (d=2) 3x3 convolution at the bottleneck, a 1x1 convolution to the 3 output channels (linear:
no squashing). Channel widths are a parameter (``channels``: one width per level; ``len(channels) - 1``
downsamplings) so that a CPU-feasible network (64 x 64 images, widths 16..64) can be trained.
Images enter as N x 3 x H x W floats in [0, 1] (mapped to [-1, 1] inside); H and W must be multiples of
``2 ** (len(channels) - 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robusthide import RobustHideError
from robusthide.imagehiding.invertible import INVERTIBLE_KEYS, InvertibleHidingNetwork, check_invertible_kwargs

NORMS = ("batch", "instance", "group", "none")
ACTS = ("elu", "lrelu", "relu")


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "group":
        return nn.GroupNorm(min(8, ch), ch)
    return nn.Identity()


def _act(kind: str) -> nn.Module:
    if kind == "elu":
        return nn.ELU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    return nn.ReLU(inplace=True)


def conv_block(cin: int, cout: int, norm: str, act: str, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3x3 convolution (optionally strided / dilated) -> normalisation -> activation."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=norm == "none"),
        _norm(norm, cout),
        _act(act),
    )


def check_arch(channels: Sequence[int], norm: str, act: str) -> list[int]:
    """Validate U-Net parameters; raise :class:`RobustHideError` with a one-line message."""
    ch = list(channels) if isinstance(channels, (list, tuple)) else None
    if not ch or len(ch) < 2 or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in ch):
        raise RobustHideError(f"channels must be a list of at least two positive integers, got {channels!r}")
    if norm not in NORMS:
        raise RobustHideError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if act not in ACTS:
        raise RobustHideError(f"act must be one of {', '.join(ACTS)}, got {act!r}")
    return ch


class _Encoder(nn.Module):
    """One encoder branch: level 0 at full resolution, then ``len(channels) - 1`` stride-2 levels."""

    def __init__(self, cin: int, channels: list[int], norm: str, act: str):
        super().__init__()
        self.levels = nn.ModuleList()
        prev = cin
        for i, c in enumerate(channels):
            self.levels.append(nn.Sequential(
                conv_block(prev, c, norm, act, stride=1 if i == 0 else 2),
                conv_block(c, c, norm, act),
            ))
            prev = c
        # bottleneck context: a dilated convolution (the paper cites dilated convolutions [36])
        self.bottleneck = conv_block(prev, prev, norm, act, dilation=2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, level in enumerate(self.levels):
            x = level(x)
            if i == len(self.levels) - 1:
                x = x + self.bottleneck(x)
            feats.append(x)
        return feats


class _Decoder(nn.Module):
    """One decoder branch: from the deepest level up; each level concatenates the upsampled features with
    the skip features of every encoder branch (paper 003 §2.1, "the features from the branches are all
    concatenated with the output of the previous layer")."""

    def __init__(self, n_enc: int, channels: list[int], cout: int, norm: str, act: str, out_gain: float,
                 raw_channels: int = 0):
        super().__init__()
        L = len(channels)
        self.stem = conv_block(n_enc * channels[-1], channels[-1], norm, act)
        self.ups = nn.ModuleList()
        for i in range(L - 2, -1, -1):
            self.ups.append(nn.Sequential(
                conv_block(channels[i + 1] + n_enc * channels[i], channels[i], norm, act),
                conv_block(channels[i], channels[i], norm, act),
            ))
        # the output convolution also sees the raw inputs (as MBRS's encoder does, ANCHORS.md), so maps
        # close to the identity (C^ ~ attacked image) or to a scaled input are easy to learn
        self.head = nn.Conv2d(channels[0] + raw_channels, cout, 1)
        with torch.no_grad():
            self.head.weight.mul_(out_gain)

    def forward(self, feats: list[list[torch.Tensor]], raw: list[torch.Tensor]) -> torch.Tensor:
        L = len(feats[0])
        x = self.stem(torch.cat([f[-1] for f in feats], dim=1))
        for j, up in enumerate(self.ups):
            i = L - 2 - j
            skip = [f[i] for f in feats]
            x = F.interpolate(x, size=skip[0].shape[-2:], mode="bilinear", align_corners=False)
            x = up(torch.cat([x, *skip], dim=1))
        return self.head(torch.cat([x, *raw], dim=1))


class MultiBranchUNet(nn.Module):
    """Multi-branch U-Net (paper 003 §2.1-2.3, Fig. 1(b)).

    Args:
        in_channels: input channels of each encoder branch (one entry per unshared branch).
        n_out: number of decoder branches (each with its own weights and 3-channel output unless
            ``out_channels`` says otherwise).
        channels: widths per level.
        out_gain: factor applied to the initial weights of the output convolutions (small values start the
            embedder near ``R = 0``, i.e. container = cover).
    """

    def __init__(self, in_channels: Sequence[int], n_out: int, channels: Sequence[int] = (16, 32, 64, 64),
                 norm: str = "batch", act: str = "elu", out_channels: int = 3, out_gain: float = 1.0):
        super().__init__()
        ch = check_arch(channels, norm, act)
        self.depth = len(ch) - 1
        self.encoders = nn.ModuleList([_Encoder(c, ch, norm, act) for c in in_channels])
        self.decoders = nn.ModuleList([_Decoder(len(in_channels), ch, out_channels, norm, act, out_gain,
                                                sum(in_channels)) for _ in range(n_out)])

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(inputs) != len(self.encoders):
            raise RobustHideError(f"expected {len(self.encoders)} inputs, got {len(inputs)}")
        h, w = inputs[0].shape[-2:]
        m = 2 ** self.depth
        if h % m or w % m:
            raise RobustHideError(f"image sides must be multiples of {m} for this network, got {h} x {w}")
        raw = [x * 2 - 1 for x in inputs]
        feats = [enc(x) for enc, x in zip(self.encoders, raw)]
        return [dec(feats, raw) for dec in self.decoders]


class Embedder(nn.Module):
    """``E`` (paper 003 §2.1): ``R = E(C, S_1..S_n)``; the container is ``M = C + R`` (:meth:`forward`
    returns ``(M, R)``; ``M - C == R`` up to float rounding, nothing is clamped here)."""

    def __init__(self, n_secrets: int = 1, channels: Sequence[int] = (16, 32, 64, 64), norm: str = "batch",
                 act: str = "elu", multi_branch: bool = True):
        super().__init__()
        self.n_secrets = n_secrets
        ins = [3] * (1 + n_secrets) if multi_branch else [3 * (1 + n_secrets)]
        self.multi_branch = multi_branch
        self.unet = MultiBranchUNet(ins, 1, channels, norm, act, out_gain=0.1)

    def residual(self, cover: torch.Tensor, secrets: Sequence[torch.Tensor]) -> torch.Tensor:
        xs = [cover, *secrets]
        if not self.multi_branch:
            xs = [torch.cat(xs, dim=1)]
        return self.unet(xs)[0]

    def forward(self, cover: torch.Tensor, secrets: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.residual(cover, secrets)
        return cover + r, r


class Decoupler(nn.Module):
    """``D`` (paper 003 §2.3): attacked image -> ``(R^, C^)``, the amplified residual and the cover."""

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 64), norm: str = "batch", act: str = "elu"):
        super().__init__()
        self.unet = MultiBranchUNet([3], 2, channels, norm, act)

    def forward(self, attacked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r_hat, c_hat = self.unet([attacked])
        return r_hat, c_hat


class Revealer(nn.Module):
    """``R`` (paper 003 §2.3): extracted residual (or, without progressive recovery, the attacked image)
    -> one image per secret (one decoder branch each)."""

    def __init__(self, n_secrets: int = 1, channels: Sequence[int] = (16, 32, 64, 64), norm: str = "batch",
                 act: str = "elu"):
        super().__init__()
        self.unet = MultiBranchUNet([3], n_secrets, channels, norm, act)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.unet([x])


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (Isola et al. 2017; paper 003 uses it for ``D_M`` and ``D_S``): stride-2 4x4
    convolutions (``layers`` of them, widths doubling from ``channels``, capped at 8x), then two stride-1
    4x4 convolutions, the last to one channel of raw scores (least-squares GAN: no sigmoid)."""

    def __init__(self, channels: int = 32, layers: int = 3, norm: str = "batch"):
        super().__init__()
        if not isinstance(layers, int) or layers < 1:
            raise RobustHideError(f"discriminator layers must be a positive integer, got {layers!r}")
        if norm not in NORMS:
            raise RobustHideError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        mods: list[nn.Module] = [nn.Conv2d(3, channels, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        c = channels
        for i in range(1, layers):
            c2 = channels * min(2**i, 8)
            mods += [nn.Conv2d(c, c2, 4, 2, 1, bias=norm == "none"), _norm(norm, c2), nn.LeakyReLU(0.2, True)]
            c = c2
        c2 = channels * min(2**layers, 8)
        mods += [nn.Conv2d(c, c2, 4, 1, 1, bias=norm == "none"), _norm(norm, c2), nn.LeakyReLU(0.2, True),
                 nn.Conv2d(c2, 1, 4, 1, 1)]
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


#: The architecture keywords stored in exported models (``arch`` metadata) and accepted by
#: :class:`HidingNetwork`.
ARCH_KEYS = ("n_secrets", "size", "channels", "norm", "act", "multi_branch", "progressive", "amplify")


def model_keys(arch: Any) -> tuple[str, ...]:
    """The valid ``model`` keys of a config for ``arch`` (``unet``: paper 003's; ``hinet``: the invertible
    network of :mod:`robusthide.imagehiding.invertible`)."""
    return INVERTIBLE_KEYS if arch == "hinet" else ("arch", *ARCH_KEYS)


def check_model_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise the architecture keywords (:data:`ARCH_KEYS`, or
    :data:`~robusthide.imagehiding.invertible.INVERTIBLE_KEYS` with ``arch: hinet``). Paper 003's U-Nets are
    ``arch: unet``, the default; their normalised keywords leave ``arch`` out (as in the first exports)."""
    kw = dict(kw)
    arch = kw.pop("arch", "unet")
    if arch == "hinet":
        return check_invertible_kwargs(kw)
    if arch != "unet":
        raise RobustHideError(f"model.arch must be unet (paper 003) or hinet (invertible), got {arch!r}")
    unknown = sorted(set(kw) - set(ARCH_KEYS))
    if unknown:
        raise RobustHideError(f"unknown model keys: {', '.join(unknown)} (known: {', '.join(ARCH_KEYS)})")
    out = dict(n_secrets=1, size=64, channels=[16, 32, 64, 64], norm="batch", act="elu", multi_branch=True,
               progressive=True, amplify=10.0)
    out.update(kw)
    n = out["n_secrets"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 3:
        raise RobustHideError(f"n_secrets must be 1, 2 or 3 (paper 003 hides up to three), got {n!r}")
    out["channels"] = check_arch(out["channels"], out["norm"], out["act"])
    s = out["size"]
    m = 2 ** (len(out["channels"]) - 1)
    if isinstance(s, bool) or not isinstance(s, int) or s < 16 or s % m or s % 16:
        raise RobustHideError(f"size must be an integer >= 16, a multiple of 16 (JPEG MCUs) and of {m} "
                              f"(the U-Net depth), got {s!r}")
    a = out["amplify"]
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not a > 0:
        raise RobustHideError(f"amplify must be a positive number, got {a!r}")
    out["amplify"] = float(a)
    out["multi_branch"] = bool(out["multi_branch"])
    out["progressive"] = bool(out["progressive"])
    return out


class HidingNetwork(nn.Module):
    """The generator side of paper 003's pipeline: embedder ``E``, decoupler ``D`` (when ``progressive``)
    and revealer ``R``. ``size`` is the working size (square) the networks are trained at; ``amplify`` is
    the factor by which ``D`` amplifies the extracted residual (the paper's value was lost in the text;
    ours: 10)."""

    def __init__(self, **kwargs: Any):
        super().__init__()
        kw = check_model_kwargs(kwargs)
        self.arch = kw
        self.n_secrets: int = kw["n_secrets"]
        self.size: int = kw["size"]
        self.amplify: float = kw["amplify"]
        self.progressive: bool = kw["progressive"]
        ch, norm, act = kw["channels"], kw["norm"], kw["act"]
        self.embedder = Embedder(self.n_secrets, ch, norm, act, kw["multi_branch"])
        self.decoupler = Decoupler(ch, norm, act) if self.progressive else None
        self.revealer = Revealer(self.n_secrets, ch, norm, act)

    def hide(self, cover: torch.Tensor, secrets: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(M, R)`` with ``M = C + R`` (not clamped)."""
        if len(secrets) != self.n_secrets:
            raise RobustHideError(f"this model hides {self.n_secrets} secret image(s), got {len(secrets)}")
        return self.embedder(cover, secrets)

    def reveal(self, attacked: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None,
                                                      torch.Tensor | None]:
        """``(secrets^, R^, C^)``; ``R^`` and ``C^`` are None without progressive recovery."""
        if self.decoupler is None:
            return self.revealer(attacked), None, None
        r_hat, c_hat = self.decoupler(attacked)
        return self.revealer(r_hat), r_hat, c_hat


def create_hiding_network(**kwargs: Any) -> HidingNetwork | InvertibleHidingNetwork:
    """The hiding network a config's ``model`` section (or an export's ``arch`` metadata) describes."""
    kw = check_model_kwargs(kwargs)
    return InvertibleHidingNetwork(**kw) if kw.get("arch") == "hinet" else HidingNetwork(**kw)


class Discriminators(nn.Module):
    """``D_M`` (container vs cover) and the unified ``D_S`` (revealed vs secret images), paper 003 §2.4."""

    def __init__(self, channels: int = 32, layers: int = 3, norm: str = "batch"):
        super().__init__()
        self.container = PatchDiscriminator(channels, layers, norm)
        self.secret = PatchDiscriminator(channels, layers, norm)
