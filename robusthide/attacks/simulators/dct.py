"""JPEG building blocks shared by the JPEG simulators (ITU-T T.81 / JFIF, IJG libjpeg conventions).

* 8x8 block DCT-II, orthonormal (T.81 §A.3.3: ``F(u,v) = 1/4 C(u) C(v) sum f(x,y) cos.. cos..`` with
  ``C(0) = 1/sqrt(2)``, which is exactly the orthonormal 2-D DCT-II), as a matrix product per block;
* RGB <-> YCbCr, ITU-R BT.601 full range with chroma offset 128, as in JFIF (values on the 0..255 scale);
* 4:2:0 chroma subsampling: 2x2 box average (libjpeg's ``h2v2_downsample``) and the decoder's "fancy"
  triangle upsampling (libjpeg's ``h2v2_fancy_upsample``, i.e. bilinear with half-pixel centres);
* the zig-zag order (T.81 Fig. A.6), the standard luminance / chrominance quantisation tables
  (T.81 Annex K, Tables K.1 and K.2) and the IJG quality scaling (libjpeg ``jpeg_quality_scaling``:
  ``S = 5000/Q`` for ``Q < 50`` else ``200 - 2Q``; table ``= clamp(floor((S*T + 50)/100), 1, 255)``);
* :func:`jpeg_pipeline`, the full encode/decode path with a pluggable rounding function, used by
  :class:`~robusthide.attacks.simulators.jpeg.JpegSS` and
  :class:`~robusthide.attacks.simulators.jpeg.DiffJPEG`.

All functions are differentiable torch ops on float tensors, on any device.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

#: T.81 Annex K, Table K.1 (luminance), row-major.
LUMA_QTABLE: tuple[int, ...] = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip

#: T.81 Annex K, Table K.2 (chrominance), row-major.
CHROMA_QTABLE: tuple[int, ...] = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)  # fmt: skip


def check_quality(quality: float) -> float:
    """Validate a JPEG quality factor (1..100)."""
    if isinstance(quality, bool) or not isinstance(quality, (int, float)) or not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be a number in 1..100, got {quality!r}")
    return quality


def ijg_scale(quality: float) -> float:
    """IJG quality scaling factor S (libjpeg ``jpeg_quality_scaling``): 5000/Q below 50, else 200 - 2Q."""
    q = check_quality(quality)
    return 5000.0 / q if q < 50 else 200.0 - 2.0 * q


def quant_table(
    quality: float,
    chroma: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The 8x8 quantisation table libjpeg uses at ``quality`` (baseline: clamped to 1..255)."""
    base = torch.tensor(CHROMA_QTABLE if chroma else LUMA_QTABLE, dtype=torch.float64).view(8, 8)
    t = torch.floor((base * ijg_scale(quality) + 50.0) / 100.0).clamp(1, 255)
    return t.to(device=device, dtype=dtype)


def zigzag_indices() -> list[tuple[int, int]]:
    """(row, col) of the 64 coefficients of an 8x8 block in zig-zag order (T.81 Figure A.6)."""
    order = []
    for s in range(15):
        diag = [(i, s - i) for i in range(8) if 0 <= s - i < 8]
        # Even anti-diagonals run bottom-left -> top-right, odd ones top-right -> bottom-left.
        order.extend(reversed(diag) if s % 2 == 0 else diag)
    return order


def zigzag_mask(keep: int, device: torch.device | str | None = None) -> torch.Tensor:
    """8x8 float mask keeping the first ``keep`` coefficients in zig-zag order."""
    if not 0 <= keep <= 64:
        raise ValueError(f"zig-zag keep count must be in 0..64, got {keep!r}")
    m = torch.zeros(8, 8, device=device)
    for r, c in zigzag_indices()[:keep]:
        m[r, c] = 1.0
    return m


def square_mask(side: int, device: torch.device | str | None = None) -> torch.Tensor:
    """8x8 float mask keeping the top-left ``side x side`` coefficients."""
    if not 0 <= side <= 8:
        raise ValueError(f"square mask side must be in 0..8, got {side!r}")
    m = torch.zeros(8, 8, device=device)
    m[:side, :side] = 1.0
    return m


def dct_matrix(device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Orthonormal 8-point DCT-II matrix ``D`` (``D @ D.T = I``); block DCT is ``D @ B @ D.T``."""
    k = torch.arange(8, dtype=torch.float64)[:, None]
    n = torch.arange(8, dtype=torch.float64)[None, :]
    d = torch.cos((2 * n + 1) * k * math.pi / 16) * math.sqrt(2.0 / 8)
    d[0] /= math.sqrt(2.0)
    return d.to(device=device, dtype=dtype)


def blockify(x: torch.Tensor) -> torch.Tensor:
    """``... x H x W`` (H, W multiples of 8) -> ``... x H/8 x W/8 x 8 x 8``."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // 8, 8, w // 8, 8).transpose(-3, -2)


def unblockify(b: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`blockify`."""
    *lead, bh, bw, _, _ = b.shape
    return b.transpose(-3, -2).reshape(*lead, bh * 8, bw * 8)


def block_dct(x: torch.Tensor) -> torch.Tensor:
    """8x8 block DCT-II (orthonormal) of ``... x H x W`` -> coefficients ``... x H/8 x W/8 x 8 x 8``."""
    d = dct_matrix(x.device, x.dtype)
    return d @ blockify(x) @ d.T


def block_idct(c: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`block_dct`: coefficients ``... x 8 x 8`` blocks -> ``... x H x W``."""
    d = dct_matrix(c.device, c.dtype)
    return unblockify(d.T @ c @ d)


# BT.601 luma weights; the chroma rows follow as Cb = (B - Y) / 1.772, Cr = (R - Y) / 1.402 (JFIF), written
# from these so that the two conversions below are exact inverses of each other.
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB
_CB_S, _CR_S = 2.0 * (1.0 - _KB), 2.0 * (1.0 - _KR)  # 1.772, 1.402


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """JFIF RGB -> YCbCr (BT.601 full range) on the 0..255 scale; channel dim is -3."""
    r, g, b = rgb.unbind(-3)
    y = _KR * r + _KG * g + _KB * b
    cb = (b - y) / _CB_S + 128.0
    cr = (r - y) / _CR_S + 128.0
    return torch.stack((y, cb, cr), dim=-3)


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """JFIF YCbCr -> RGB on the 0..255 scale (``R = Y + 1.402 Cr``, ``B = Y + 1.772 Cb``...); dim -3."""
    y, cb, cr = ycc.unbind(-3)
    cb = cb - 128.0
    cr = cr - 128.0
    r = y + _CR_S * cr
    b = y + _CB_S * cb
    g = (y - _KR * r - _KB * b) / _KG
    return torch.stack((r, g, b), dim=-3)


def pad_to_multiple(x: torch.Tensor, m: int) -> tuple[torch.Tensor, int, int]:
    """Pad ``N x C x H x W`` at bottom/right by edge replication (as libjpeg does) to multiples of ``m``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, h, w


def chroma_downsample(c: torch.Tensor) -> torch.Tensor:
    """4:2:0 subsampling of ``N x C x H x W`` (H, W even): 2x2 box average (libjpeg ``h2v2_downsample``)."""
    return F.avg_pool2d(c, 2)


def chroma_upsample(c: torch.Tensor, mode: str = "fancy") -> torch.Tensor:
    """Upsample chroma ``N x C x h x w`` by 2: ``fancy`` = libjpeg's triangle filter (bilinear, half-pixel
    centres, edges replicated), ``nearest`` = pixel replication."""
    if mode == "nearest":
        return c.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    return F.interpolate(c, scale_factor=2, mode="bilinear", align_corners=False)


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Hard rounding forward, identity backward (straight-through)."""
    return x + (torch.round(x) - x).detach()


def cubic_round(x: torch.Tensor) -> torch.Tensor:
    """Shin & Song's differentiable rounding ``round(x) + (x - round(x))**3`` (ANCHORS.md, MBRS section)."""
    r = torch.round(x)
    return r + (x - r) ** 3


def mbrs_round(x: torch.Tensor) -> torch.Tensor:
    """MBRS's 'JPEG-SS' quantiser, paper 002 eq. (1): ``x**3`` where ``|x| < 0.5`` else ``x``."""
    return torch.where(x.abs() < 0.5, x**3, x)


ROUNDING: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "ste": ste_round,
    "hard": torch.round,
    "shin-song": cubic_round,
    "cubic": cubic_round,
    "mbrs": mbrs_round,
}


def to_ycbcr_planes(x: torch.Tensor, subsampling: bool) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """RGB [0, 1] batch -> (Y ``N x 1 x H' x W'``, CbCr ``N x 2 x h x w``, H, W), level-shifted by -128,
    padded to whole MCUs (16 with 4:2:0, else 8), CbCr 2x2-averaged with 4:2:0."""
    xp, h, w = pad_to_multiple(x, 16 if subsampling else 8)
    ycc = rgb_to_ycbcr(xp * 255.0) - 128.0
    y, c = ycc[:, :1], ycc[:, 1:]
    if subsampling:
        c = chroma_downsample(c)
    return y, c, h, w


def from_ycbcr_planes(
    y: torch.Tensor, c: torch.Tensor, h: int, w: int, subsampling: bool, upsample: str = "fancy"
) -> torch.Tensor:
    """Inverse of :func:`to_ycbcr_planes`: back to RGB on [0, 1] (not clamped), cropped to ``h x w``."""
    if subsampling:
        c = chroma_upsample(c, upsample)
    rgb = ycbcr_to_rgb(torch.cat((y, c), dim=1) + 128.0) / 255.0
    return rgb[..., :h, :w]


def jpeg_pipeline(
    x: torch.Tensor,
    quality: float,
    rounding: Callable[[torch.Tensor], torch.Tensor],
    subsampling: bool = True,
    upsample: str = "fancy",
) -> torch.Tensor:
    """Simulated JPEG encode + decode of an RGB batch ``N x 3 x H x W`` in [0, 1].

    YCbCr (BT.601 full range) -> pad -> 4:2:0 -> 8x8 DCT -> divide by the IJG-scaled Annex K tables ->
    ``rounding`` -> multiply back -> IDCT -> chroma upsampling -> RGB. Output is not clamped or rounded to
    8 bits (callers decide). Computed in float32 (or float64 for float64 input), autocast disabled.
    """
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=x.device.type, enabled=False):
        xf = x.to(dtype)
        y, c, h, w = to_ycbcr_planes(xf, subsampling)
        qy = quant_table(quality, False, x.device, dtype)
        qc = quant_table(quality, True, x.device, dtype)
        y = block_idct(rounding(block_dct(y) / qy) * qy)
        c = block_idct(rounding(block_dct(c) / qc) * qc)
        return from_ycbcr_planes(y, c, h, w, subsampling, upsample)
