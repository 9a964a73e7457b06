"""The scale-hyperprior learned codec (Ballé et al. 2018; paper 004 Table 6, "Hyper") with a real bitstream.

g_a: 3 x [conv 5x5 s2, GDN] -> conv 5x5 s2 to M;  g_s: the mirror with transposed convs and IGDN;
h_a: conv 3x3 s1 -> ReLU -> conv 5x5 s2 -> ReLU -> conv 5x5 s2 (on |y|);  h_s: deconv, ReLU, deconv, ReLU,
conv 3x3 -> ReLU gives the scales of y. Layer and buffer names follow CompressAI's ``ScaleHyperprior``
(``bmshj2018-hyperprior``), so :func:`load_compressai_state_dict` loads its published checkpoints.

Bitstream: z is coded with the factorized prior around its medians, y (rounded, zero mean) with the
Gaussian table chosen by h_s(z_hat); both through :mod:`.coder`. The decoder recomputes h_s from the
decoded z_hat exactly as the encoder did, so the decoded y_hat equals the encoder's and g_s(y_hat) is
bit-identical on the same machine/threads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robusthide import RobustHideError
from robusthide.latent import coder
from robusthide.latent.entropy import EntropyBottleneck, GaussianConditional, full_precision
from robusthide.latent.gdn import GDN

#: CompressAI's lambdas of bmshj2018-hyperprior qualities 1..8 (MSE on [0, 1] images, loss lmbda*255^2*MSE+bpp)
COMPRESSAI_LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.1800}
#: the latent stride: inputs are padded to a multiple of it
STRIDE = 64
CODEC_FORMAT = "robusthide-latent-codec"


def conv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)


def deconv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=s, output_padding=s - 1, padding=k // 2)


@dataclass
class Compressed:
    """The two strings of one image and the shapes needed to decode them."""

    y_string: bytes
    z_string: bytes
    z_shape: tuple[int, int]
    y_hat: Tensor  # the encoder's quantised latent (1 x M x h x w), for verification


class LatentCodec(nn.Module):
    """What the learned codecs share (the hyperprior and the ELIC-style codec): ``forward`` for training, the
    probability tables, coding of the hyper-latent z, synthesis and the model id. A subclass builds ``N``,
    ``entropy_bottleneck``, ``gaussian_conditional``, ``g_a``, ``g_s``, ``h_s`` and ``_tables`` (None) and
    defines ``rate_and_recon``, ``compress_latent`` and ``decompress_latent``."""

    N: int
    entropy_bottleneck: EntropyBottleneck
    gaussian_conditional: GaussianConditional
    _tables: tuple[list[coder.Table], list[coder.Table]] | None

    def rate_and_recon(self, y: Tensor, mode: str = "noise") -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError

    def compress_latent(self, y: Tensor) -> Compressed:
        raise NotImplementedError

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Training pass: {"x_hat", "bpp"}. Under a bf16 autocast region the transforms run in bf16; their
        outputs are cast back to float32 before noise, rounding and the likelihoods (:mod:`.entropy`), so
        x_hat and bpp are float32."""
        y = full_precision(self.g_a(x))
        x_hat, y_bits, z_bits = self.rate_and_recon(y, "noise" if self.training else "round")
        n_px = x.shape[0] * x.shape[2] * x.shape[3]
        return {"x_hat": x_hat, "bpp": (y_bits + z_bits) / n_px}

    # --- coding ---------------------------------------------------------------------------------------
    def update(self) -> None:
        """(Re)build the probability tables after the weights changed."""
        self._tables = (self.entropy_bottleneck.tables(), self.gaussian_conditional.tables())

    def tables(self) -> tuple[list[coder.Table], list[coder.Table]]:
        if self._tables is None:
            self.update()
        assert self._tables is not None
        return self._tables

    @staticmethod
    def _clamped(y: Tensor) -> Tensor:
        """The latent to code (1 x M x h x w, h and w multiples of 4) as float32 within the coder's range."""
        if y.shape[0] != 1 or y.shape[2] % 4 or y.shape[3] % 4:
            raise ValueError("compress one latent 1 x M x h x w with h, w multiples of 4 (image padded to 64)")
        return y.float().clamp(-coder.MAX_ABS, coder.MAX_ABS)

    def _encode_z(self, z: Tensor) -> tuple[bytes, Tensor]:
        """The z string (factorized prior around the medians) and the decoded z_hat."""
        z_sym = self.entropy_bottleneck.symbols(z).clamp(-coder.MAX_ABS, coder.MAX_ABS)
        z_groups = torch.arange(self.N).view(1, -1, 1, 1).expand_as(z_sym)
        z_string = coder.encode(z_sym.numpy(), z_groups.numpy(), self.tables()[0])
        return z_string, self.entropy_bottleneck.dequantize(z_sym)

    def _decode_z(self, z_string: bytes, z_shape: tuple[int, int]) -> Tensor:
        """z_hat (1 x N x h_z x w_z) from the z string."""
        zh, zw = z_shape
        z_groups = np.broadcast_to(np.arange(self.N).reshape(1, -1, 1, 1), (1, self.N, zh, zw))
        z_sym = torch.from_numpy(coder.decode(z_string, z_groups, self.tables()[0]))
        return self.entropy_bottleneck.dequantize(z_sym)

    @torch.no_grad()
    def synthesize(self, y_hat: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """g_s(y_hat) clamped to [0, 1], cropped to ``size`` (H, W)."""
        x = self.g_s(y_hat).clamp(0, 1)
        return x if size is None else x[..., : size[0], : size[1]]

    @torch.no_grad()
    def compress(self, x: Tensor) -> Compressed:
        """Code one image 1 x 3 x H x W in [0, 1] (padded to a multiple of 64)."""
        return self.compress_latent(self.g_a(pad(x)))

    # --- identity -------------------------------------------------------------------------------------
    def model_id(self) -> str:
        return state_hash(self.state_dict())


class ScaleHyperprior(LatentCodec):
    """Ballé et al. 2018 scale hyperprior; N filters, M latent channels (CompressAI: N=128, M=192 for q1-5)."""

    def __init__(self, N: int = 128, M: int = 192):
        super().__init__()
        self.N, self.M = int(N), int(M)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(
            deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True), deconv(N, 3),
        )
        self.h_a = nn.Sequential(conv(M, N, 3, 1), nn.ReLU(inplace=True), conv(N, N), nn.ReLU(inplace=True), conv(N, N))
        self.h_s = nn.Sequential(
            deconv(N, N), nn.ReLU(inplace=True), deconv(N, N), nn.ReLU(inplace=True),
            conv(N, M, 3, 1), nn.ReLU(inplace=True),
        )
        self.gaussian_conditional = GaussianConditional()
        self.meta: dict[str, str] = {}
        self._tables: tuple[list[coder.Table], list[coder.Table]] | None = None

    # --- training / editing path (noise relaxation) ---------------------------------------------------
    def rate_and_recon(self, y: Tensor, mode: str = "noise") -> tuple[Tensor, Tensor, Tensor]:
        """From a latent y: (x_hat, bits of y, bits of z). ``mode``: "noise" -- additive uniform noise for
        the rounding (AUN, paper 004 §3.3; training); "round" -- real rounding (coding); "ste" -- rounding
        forward, identity backward (an option of code editing)."""
        if mode not in ("noise", "round", "ste"):
            raise ValueError(f"mode must be noise, round or ste, got {mode!r}")
        z = full_precision(self.h_a(torch.abs(y)))
        if mode == "noise":
            z_t = self.entropy_bottleneck.quantize(z, noise=True)
            y_t = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        else:
            z_q = self.entropy_bottleneck.quantize(z, noise=False)
            z_t = z + (z_q - z).detach() if mode == "ste" else z_q
            y_t = y + (torch.round(y) - y).detach() if mode == "ste" else torch.round(y)
        scales = full_precision(self.h_s(z_t))
        y_bits = -torch.log2(self.gaussian_conditional.likelihood(y_t, scales)).sum()
        z_bits = -torch.log2(self.entropy_bottleneck.likelihood(z_t)).sum()
        return full_precision(self.g_s(y_t)), y_bits, z_bits

    # --- coding ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def compress_latent(self, y: Tensor) -> Compressed:
        """Entropy-code one latent y (1 x M x h x w): round, code z then y."""
        y = self._clamped(y)
        z = self.h_a(torch.abs(y))
        z_string, z_hat = self._encode_z(z)
        idx = self.gaussian_conditional.indexes(self.h_s(z_hat))
        y_sym = torch.round(y).long()
        y_string = coder.encode(y_sym.numpy(), idx.numpy(), self.tables()[1])
        return Compressed(y_string, z_string, (int(z.shape[2]), int(z.shape[3])), y_sym.float())

    @torch.no_grad()
    def decompress_latent(self, y_string: bytes, z_string: bytes, z_shape: tuple[int, int]) -> Tensor:
        """The decoded y_hat (1 x M x 4h_z x 4w_z) from the two strings."""
        idx = self.gaussian_conditional.indexes(self.h_s(self._decode_z(z_string, z_shape)))
        return torch.from_numpy(coder.decode(y_string, idx.numpy(), self.tables()[1])).float()


def pad(x: Tensor, stride: int = STRIDE) -> Tensor:
    """Replicate-pad H and W up to a multiple of ``stride``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x


def state_hash(sd: dict[str, Tensor]) -> str:
    """16 hex digits of SHA-256 over the names and float32/int bytes of a state dict (sorted)."""
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode())
        h.update(sd[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# --- files ------------------------------------------------------------------------------------------------
def read_safetensors(p: Path, what: str) -> tuple[dict[str, str], dict[str, Tensor]]:
    """(metadata, tensors) of the safetensors file ``p``, or a one-line error "cannot read ``what`` p: ..."."""
    from safetensors import safe_open

    try:
        with safe_open(str(p), "pt") as f:
            meta = f.metadata() or {}
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise RobustHideError(f"cannot read {what} {p}: {str(e).splitlines()[0] if str(e) else e}") from None
    return meta, sd


def latent_meta(p: Path, meta: dict[str, str], role: str) -> dict[str, str] | None:
    """What a latent loader reads of a file in the one weights format (``robusthide/2``,
    :mod:`robusthide.zoo.weights`): its ``config`` (``N``, ``M`` of a codec; ``data_depth``, ``hidden`` of a
    decoder) and ``arch``, as text; None for a file of another format (this family's older ones are read as
    they are). A robusthide/2 file of another family or role is a one-line error."""
    from robusthide.zoo.weights import FORMAT, normalize

    if meta.get("format") != FORMAT:
        return None
    wm = normalize(p, meta)
    if wm.family != "latent" or wm.role != role:
        raise RobustHideError(f"{p}: not a latent {role} (family {wm.family}, role {wm.role or 'none'})")
    return {**{k: str(v) for k, v in wm.config.items()}, "arch": wm.arch}


def save_codec(model: ScaleHyperprior, path: str | Path, half: bool = False, **meta: object) -> None:
    """Safetensors with metadata (arch, N, M, lmbda, ...); ``half`` stores float tensors as float16 (half the
    size; loading casts back to float32, and the model id is that of the loaded weights)."""
    from safetensors.torch import save_file

    info = {**model.meta, **{k: str(v) for k, v in meta.items()}}
    info.update(format=CODEC_FORMAT, arch=getattr(model, "arch", "hyperprior"), N=str(model.N), M=str(model.M))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if half:
        keep = ("pedestal", "bound", "scale_table", "target")  # tiny buffers whose values fp16 would change
        sd = {k: v.half() if v.is_floating_point() and not k.endswith(keep) else v for k, v in sd.items()}
    save_file(sd, str(path), metadata=info)


def load_codec(path: str | Path) -> ScaleHyperprior:
    """A codec from our safetensors file (the one weights format, or the family's older
    ``robusthide-latent-codec``), or from a CompressAI ``bmshj2018-hyperprior`` state dict saved as
    ``.safetensors`` in CompressAI's layout. Pickled checkpoints (``.pth.tar``) are refused: safetensors only."""
    p = Path(path)
    if not p.is_file():
        raise RobustHideError(f"codec weights not found: {p}")
    if p.suffix == ".safetensors":
        meta, sd = read_safetensors(p, "codec weights")
        own = latent_meta(p, meta, "codec")  # robusthide/2, the one weights format
        if own is not None or meta.get("format") == CODEC_FORMAT:
            values = own or meta
            n, m = _bounded_int(p, values, "N"), _bounded_int(p, values, "M")  # bounded before any model is built
            if values.get("arch", "hyperprior") == "elic":
                from robusthide.latent.elic import ElicLite

                model = ElicLite(n, m)
            else:
                model = ScaleHyperprior(n, m)
            try:
                model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
            except Exception as e:  # missing, unexpected or mis-shaped tensors
                first = (str(e).splitlines() or [type(e).__name__])[0][:160]
                raise RobustHideError(f"{p}: codec tensors do not match its metadata N={n}, M={m} ({first})") from None
            model.meta = dict(meta)
            return model.eval()
        return _from_compressai(sd, p.name)
    raise RobustHideError(f"{p}: codec weights must be a .safetensors file (robusthide never unpickles); convert a "
                          "CompressAI .pth.tar once with safetensors.torch.save_file(state_dict, 'x.safetensors')")


#: bounds of a codec file's channel counts (CompressAI's largest published models use N=192, M=320)
MAX_CHANNELS = 1024


def _bounded_int(p: Path, meta: dict[str, str], key: str, lo: int = 1, hi: int = MAX_CHANNELS) -> int:
    """An integer metadata value within [lo, hi], or a one-line error (checked before any model is built)."""
    try:
        v = int(meta[key])
    except KeyError:
        raise RobustHideError(f"{p}: codec metadata has no {key}") from None
    except ValueError:
        raise RobustHideError(f"{p}: codec metadata {key} = {meta[key][:40]!r} is not an integer") from None
    if not lo <= v <= hi:
        raise RobustHideError(f"{p}: codec metadata {key} = {v} is out of range [{lo}, {hi}]")
    return v


def _from_compressai(sd: dict[str, Tensor], name: str) -> ScaleHyperprior:
    try:
        n = int(sd["g_a.0.weight"].shape[0])
        m = int(sd["g_a.6.weight"].shape[0])
    except (KeyError, IndexError):
        raise RobustHideError(f"{name} is not a scale-hyperprior state dict (no g_a.0/g_a.6 weights)") from None
    if not (1 <= n <= MAX_CHANNELS and 1 <= m <= MAX_CHANNELS):
        raise RobustHideError(f"{name}: channel counts N={n}, M={m} out of range [1, {MAX_CHANNELS}]")
    model = ScaleHyperprior(n, m)
    load_compressai_state_dict(model, sd)
    model.meta = {"source": f"compressai:{name}"}
    return model.eval()


def _rename(key: str) -> str | None:
    if key.startswith("module."):
        key = key[7:]
    for old, new in (("_matrices.", "_matrix"), ("_biases.", "_bias"), ("_factors.", "_factor")):
        pre = f"entropy_bottleneck.{old}"
        if key.startswith(pre):
            return f"entropy_bottleneck.{new}{key[len(pre):]}"
    if key.split(".")[-1] in ("_offset", "_quantized_cdf", "_cdf_length"):
        return None  # CompressAI's own coder tables; ours are rebuilt by update()
    return key


def load_compressai_state_dict(model: ScaleHyperprior, state_dict: dict[str, Tensor]) -> ScaleHyperprior:
    """Load a CompressAI ``ScaleHyperprior`` state dict: maps ``entropy_bottleneck._matrices.i`` (published
    checkpoints) and ``_matrix{i}`` (current CompressAI) to our names, drops CompressAI's quantised CDF
    buffers, keeps its ``scale_table``; strict otherwise (missing or unexpected keys are an error)."""
    mapped: dict[str, Tensor] = {}
    for k, v in state_dict.items():
        nk = _rename(k)
        if nk is not None:
            mapped[nk] = v
    own = model.state_dict()
    missing = sorted(set(own) - set(mapped))
    unexpected = sorted(set(mapped) - set(own))
    if missing or unexpected:
        raise RobustHideError(
            f"state dict does not match the scale hyperprior: missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    for k, v in mapped.items():
        if tuple(v.shape) != tuple(own[k].shape):
            if v.numel() == own[k].numel():
                mapped[k] = v.reshape(own[k].shape)
            else:
                raise RobustHideError(f"shape mismatch for {k}: {tuple(v.shape)} vs {tuple(own[k].shape)}")
    model.load_state_dict(mapped)
    model._tables = None
    return model


def codec_summary(model: ScaleHyperprior) -> str:
    return json.dumps({"N": model.N, "M": model.M, "id": model.model_id(), **model.meta}, sort_keys=True)
