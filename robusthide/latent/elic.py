"""A small ELIC-style codec (He et al., CVPR 2022, "ELIC: Efficient Learned Image Compression with Unevenly
Grouped Space-Channel Contextual Adaptive Coding"), paper 004's second codec family, scaled to a CPU.

What makes it ELIC:

* **Uneven channel groups.** y (M channels) is split into groups of growing size, (16, 16, 32, 64, M - 128);
  ELIC uses (16, 16, 32, 64, 192) for M = 320. The first, small groups carry most of the energy and are
  coded first, so later groups get a rich channel context.
* **Space-channel context.** Group k is coded in two checkerboard passes (He et al. 2021). The anchors
  (i + j even) are predicted from the hyperprior and the *channel context* (a conv net on the decoded
  groups 0 .. k-1). The non-anchors add the *spatial context*, a 5 x 5 conv over the decoded anchors of
  group k. A per-group aggregation net (1 x 1 convs) turns [hyper, channel ctx, spatial ctx] into the mean
  and scale of a Gaussian.
* **Mean-scale Gaussian conditional**: the symbols are round(y - mu), coded with the table of the first
  scale >= sigma (the hyperprior's 64 tables), and y_hat = symbol + mu.
* **Residual transforms** without GDN: g_a / g_s are four stride-2 (de)convs with one residual bottleneck
  block after each of the first three (ELIC: three blocks and two attention modules per transform).

Sizes here: N = 64 filters, M = 192 latent channels, groups (16, 16, 32, 64, 64); ELIC uses N = 192,
M = 320. The interface is the hyperprior's (``g_a``, ``rate_and_recon``, ``compress_latent``,
``decompress_latent``, ``synthesize``, ``model_id``), so code editing, the ``.rhl`` file and the bench run
on it unchanged. The y string is the ten pass strings (two per group), each prefixed by its length (u32).
"""

from __future__ import annotations

import struct

import torch
from torch import Tensor, nn

from robusthide import RobustHideError
from robusthide.latent import coder
from robusthide.latent.entropy import EntropyBottleneck, GaussianConditional, full_precision
from robusthide.latent.models import Compressed, LatentCodec, conv, deconv


def elic_groups(M: int) -> tuple[int, ...]:
    """ELIC's uneven split (16, 16, 32, 64, rest) of M >= 160 channels."""
    if M < 160:
        raise RobustHideError(f"the ELIC-style codec needs M >= 160 latent channels, got {M}")
    return (16, 16, 32, 64, M - 128)


class ResBottleneck(nn.Module):
    """ELIC's residual bottleneck block: x + conv1x1(relu(conv3x3(relu(conv1x1(x)))))."""

    def __init__(self, n: int):
        super().__init__()
        h = n // 2
        self.body = nn.Sequential(nn.Conv2d(n, h, 1), nn.ReLU(inplace=True), nn.Conv2d(h, h, 3, padding=1),
                                  nn.ReLU(inplace=True), nn.Conv2d(h, n, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def checkerboard(h: int, w: int) -> Tensor:
    """1 x 1 x h x w bool mask of the anchors (i + j even)."""
    i = torch.arange(h).view(-1, 1)
    j = torch.arange(w).view(1, -1)
    return ((i + j) % 2 == 0).view(1, 1, h, w)


class ElicLite(LatentCodec):
    """ELIC-style codec: residual transforms, hyperprior, uneven groups, checkerboard + channel context."""

    arch = "elic"

    def __init__(self, N: int = 64, M: int = 192):
        super().__init__()
        self.N, self.M = int(N), int(M)
        self.groups = elic_groups(self.M)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.g_a = nn.Sequential(conv(3, N), ResBottleneck(N), conv(N, N), ResBottleneck(N), conv(N, N),
                                 ResBottleneck(N), conv(N, M))
        self.g_s = nn.Sequential(deconv(M, N), ResBottleneck(N), deconv(N, N), ResBottleneck(N), deconv(N, N),
                                 ResBottleneck(N), deconv(N, 3))
        self.h_a = nn.Sequential(conv(M, N, 3, 1), nn.ReLU(inplace=True), conv(N, N), nn.ReLU(inplace=True), conv(N, N))
        self.h_s = nn.Sequential(deconv(N, N), nn.ReLU(inplace=True), deconv(N, N), nn.ReLU(inplace=True),
                                 conv(N, 2 * N, 3, 1))
        hid = 64
        self.channel_ctx = nn.ModuleList(
            [nn.Sequential(conv(sum(self.groups[:k]), hid, 5, 1), nn.ReLU(inplace=True), conv(hid, 2 * c, 5, 1))
             for k, c in enumerate(self.groups) if k > 0])
        self.spatial_ctx = nn.ModuleList([conv(c, 2 * c, 5, 1) for c in self.groups])
        self.aggregate = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(2 * N + (2 * c if k else 0) + 2 * c, 4 * c, 1), nn.ReLU(inplace=True),
                           nn.Conv2d(4 * c, 4 * c, 1), nn.ReLU(inplace=True), nn.Conv2d(4 * c, 2 * c, 1))
             for k, c in enumerate(self.groups)])
        self.gaussian_conditional = GaussianConditional()
        self.meta: dict[str, str] = {}
        self._tables: tuple[list[coder.Table], list[coder.Table]] | None = None

    # --- entropy parameters ---------------------------------------------------------------------------
    def _params(self, k: int, hyper: Tensor, ch: Tensor | None, sp: Tensor) -> tuple[Tensor, Tensor]:
        parts = [hyper] + ([ch] if ch is not None else []) + [sp]
        mu, scale = full_precision(self.aggregate[k](torch.cat(parts, dim=1))).chunk(2, dim=1)
        return mu, scale

    def _ch(self, k: int, done: list[Tensor]) -> Tensor | None:
        return self.channel_ctx[k - 1](torch.cat(done, dim=1)) if k else None

    @staticmethod
    def _quant(y: Tensor, mu: Tensor, mode: str) -> Tensor:
        if mode == "noise":
            return y + torch.empty_like(y).uniform_(-0.5, 0.5)
        r = torch.round(y - mu) + mu
        return y + (r - y).detach() if mode == "ste" else r

    def rate_and_recon(self, y: Tensor, mode: str = "noise") -> tuple[Tensor, Tensor, Tensor]:
        """(x_hat, bits of y, bits of z) from a latent y, as :meth:`ScaleHyperprior.rate_and_recon`."""
        if mode not in ("noise", "round", "ste"):
            raise ValueError(f"mode must be noise, round or ste, got {mode!r}")
        z = full_precision(self.h_a(y))
        if mode == "noise":
            z_t = self.entropy_bottleneck.quantize(z, noise=True)
        else:
            z_q = self.entropy_bottleneck.quantize(z, noise=False)
            z_t = z + (z_q - z).detach() if mode == "ste" else z_q
        hyper = self.h_s(z_t)
        anchor = checkerboard(y.shape[2], y.shape[3]).to(y.device)
        done: list[Tensor] = []
        y_bits = y.new_zeros(())
        for k, y_k in enumerate(y.split(self.groups, dim=1)):
            ch = self._ch(k, done)
            mu_a, s_a = self._params(k, hyper, ch, torch.zeros_like(torch.cat([y_k, y_k], dim=1)))
            ya = torch.where(anchor, self._quant(y_k, mu_a, mode), torch.zeros_like(y_k))
            mu_n, s_n = self._params(k, hyper, ch, self.spatial_ctx[k](ya))
            mu, s = torch.where(anchor, mu_a, mu_n), torch.where(anchor, s_a, s_n)
            yq = torch.where(anchor, ya, self._quant(y_k, mu_n, mode))
            y_bits = y_bits - torch.log2(self.gaussian_conditional.likelihood(yq - mu, s)).sum()
            done.append(yq)
        z_bits = -torch.log2(self.entropy_bottleneck.likelihood(z_t)).sum()
        return full_precision(self.g_s(torch.cat(done, dim=1))), y_bits, z_bits

    # --- coding ---------------------------------------------------------------------------------------
    def _passes(self, hyper: Tensor, shape: tuple[int, int], code) -> Tensor:
        """Run the ten passes; ``code(mu, scale, mask, k, pass)`` returns the decoded y_hat at ``mask``."""
        anchor = checkerboard(*shape)
        done: list[Tensor] = []
        for k, c in enumerate(self.groups):
            ch = self._ch(k, done)
            mu_a, s_a = self._params(k, hyper, ch, hyper.new_zeros(1, 2 * c, *shape))
            ya = torch.where(anchor, code(mu_a, s_a, anchor.expand(1, c, *shape), k, 0), hyper.new_zeros(1, c, *shape))
            mu_n, s_n = self._params(k, hyper, ch, self.spatial_ctx[k](ya))
            done.append(torch.where(anchor, ya, code(mu_n, s_n, (~anchor).expand(1, c, *shape), k, 1)))
        return torch.cat(done, dim=1)

    @torch.no_grad()
    def compress_latent(self, y: Tensor) -> Compressed:
        y = self._clamped(y)
        z = self.h_a(y)
        z_string, z_hat = self._encode_z(z)
        hyper = self.h_s(z_hat)
        y_tables = self.tables()[1]
        parts: list[bytes] = []
        y_groups = y.split(self.groups, dim=1)

        def code(mu: Tensor, scale: Tensor, mask: Tensor, k: int, _pass: int) -> Tensor:
            sym = torch.round(y_groups[k] - mu).clamp(-coder.MAX_ABS, coder.MAX_ABS)
            idx = self.gaussian_conditional.indexes(scale)
            s = coder.encode(sym[mask].long().numpy(), idx[mask].numpy(), y_tables)
            parts.append(struct.pack("<I", len(s)) + s)
            return sym + mu

        y_hat = self._passes(hyper, (y.shape[2], y.shape[3]), code)
        return Compressed(b"".join(parts), z_string, (int(z.shape[2]), int(z.shape[3])), y_hat)

    @torch.no_grad()
    def decompress_latent(self, y_string: bytes, z_string: bytes, z_shape: tuple[int, int]) -> Tensor:
        zh, zw = z_shape
        hyper = self.h_s(self._decode_z(z_string, z_shape))
        y_tables = self.tables()[1]
        pos = [0]

        def code(mu: Tensor, scale: Tensor, mask: Tensor, k: int, _pass: int) -> Tensor:
            if pos[0] + 4 > len(y_string):
                raise RobustHideError("corrupt latent bitstream (ELIC pass string truncated)")
            (n,) = struct.unpack_from("<I", y_string, pos[0])
            s = y_string[pos[0] + 4: pos[0] + 4 + n]
            if len(s) != n:
                raise RobustHideError("corrupt latent bitstream (ELIC pass string truncated)")
            pos[0] += 4 + n
            idx = self.gaussian_conditional.indexes(scale)
            vals = torch.from_numpy(coder.decode(s, idx[mask].numpy(), y_tables)).float()
            sym = torch.zeros_like(mu)
            sym[mask] = vals
            return sym + mu

        y_hat = self._passes(hyper, (4 * zh, 4 * zw), code)
        if pos[0] != len(y_string):
            raise RobustHideError("corrupt latent bitstream (trailing bytes after the ELIC passes)")
        return y_hat
