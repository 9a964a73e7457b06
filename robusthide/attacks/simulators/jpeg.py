"""Differentiable JPEG simulators: JPEG-Mask, JPEG-Drop, JPEG-SS (two roundings) and a full DiffJPEG.

Background: paper 000 §2 and Table 1 compare JPEG-Drop / JPEG-Mask (HiDDeN) and the JPEG simulation of
Shin & Song with the pseudo-differentiable real codec; paper 002 (MBRS) §2 "JPEG simulations" and eq. (1)
define JPEG-Mask (5x5 Y / 3x3 UV) and its JPEG-SS rounding; facts on the reference code in
``shared/reference/ANCHORS.md`` (HiDDeN's zig-zag mask, JPEG-Drop's keep probabilities, MBRS's hard-rounded
"real JPEG" simulation). Building blocks: :mod:`robusthide.attacks.simulators.dct`.

Every simulator takes ``quality`` as an integer 1..100 or an ``(lo, hi)`` range drawn (integer, uniform) once
per forward pass; :meth:`JpegSimulator.simulate` runs it at an explicit quality (used by
:class:`~robusthide.attacks.schedules.JpegMixup`). ``last_quality`` holds the quality of the last forward.

Measured fidelity to real JPEG (Pillow 4:2:0, libjpeg-turbo) at Q50 on 256x256 centre crops of skimage's
astronaut / coffee / chelsea (``robusthide bench simulators``; docs/results/attacks.md):
DiffJPEG (kornia, polynomial rounding) 41.9 / 42.6 / 42.9 dB, DiffJPEG(rounding='ste') 44.1 / 44.5 / 44.9 dB,
JpegSS 43.8 / 44.3 / 44.6 dB, JpegSSMbrs 37.4 / 38.3 / 38.8 dB, against 30.3 / 31.4 / 31.9 dB for the
identity (the uncompressed input).
"""

from __future__ import annotations

import torch

from robusthide.attacks.base import (
    Attack,
    AttackError,
    check_batch,
    check_int,
    format_value,
    rand,
    randint,
    register_attack,
    ste_clamp,
)
from robusthide.attacks.simulators import dct


def _check_quality(quality: object) -> int | tuple[int, int]:
    if isinstance(quality, (tuple, list)):
        if len(quality) != 2:
            raise AttackError(f"quality range must be (lo, hi), got {quality!r}")
        lo = check_int("quality", quality[0], 1, 100)
        hi = check_int("quality", quality[1], 1, 100)
        if lo > hi:
            raise AttackError(f"quality range must have lo <= hi, got {quality!r}")
        return (lo, hi) if lo != hi else lo
    return check_int("quality", quality, 1, 100)


class JpegSimulator(Attack):
    """Base of the JPEG simulators: draws the quality, then calls :meth:`simulate`."""

    def __init__(self, quality: int | tuple[int, int] = 50, generator: torch.Generator | None = None):
        super().__init__(generator)
        self.quality = _check_quality(quality)
        self.last_quality: int | None = None

    def draw_quality(self) -> int:
        q = self.quality
        return randint(self.generator, q[0], q[1]) if isinstance(q, tuple) else q

    def simulate(self, x: torch.Tensor, quality: int) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, cover: torch.Tensor | None = None) -> torch.Tensor:
        check_batch(x)
        q = self.draw_quality()
        self.last_quality = q
        return self.simulate(x, q)


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)


@register_attack("jpegmask", positional="form")
class JpegMask(JpegSimulator):
    """JPEG-Mask: keep the low-frequency DCT coefficients of every 8x8 block, zero the rest, no quantisation.

    ``form='mbrs'`` (paper 002 §2 "JPEG simulations", MBRS's code per ANCHORS.md): the top-left 5x5
    coefficients of Y and 3x3 of Cb/Cr; 4:2:0 chroma by default (the 3x3 chroma blocks then cover 16x16
    pixels, as in real JPEG). ``form='hidden'`` (HiDDeN's code per ANCHORS.md): the first 25 zig-zag
    coefficients of Y and 9 of Cb/Cr (a triangle), no subsampling by default, as in HiDDeN.

    The image is padded (edge replication) to multiples of 8, or 16 with subsampling, and cropped back.
    Subsampled chroma is upsampled by pixel replication, so the 2x2 average of the output chroma has no
    energy outside the kept coefficients. A linear projection: quality-independent, output not clamped
    (it can leave [0, 1] slightly). ``quality`` is accepted (and ignored) so it mixes with the others.
    """


    def __init__(
        self,
        form: str = "mbrs",
        subsampling: bool | None = None,
        quality: int | tuple[int, int] = 50,
        generator: torch.Generator | None = None,
    ):
        super().__init__(quality, generator)
        if form not in ("mbrs", "hidden"):
            raise AttackError(f"JpegMask form must be 'mbrs' or 'hidden', got {form!r}")
        if subsampling is not None and not isinstance(subsampling, bool):
            raise AttackError(f"subsampling must be true, false or none (form default), got {subsampling!r}")
        self.form = form
        self.subsampling = subsampling
        if form == "mbrs":
            my, mc = dct.square_mask(5), dct.square_mask(3)
        else:
            my, mc = dct.zigzag_mask(25), dct.zigzag_mask(9)
        self.register_buffer("mask_y", my, persistent=False)
        self.register_buffer("mask_c", mc, persistent=False)

    def spec(self) -> str:
        if self.form != "hidden":
            return super().spec()
        params = {k: v for k, v in self.spec_params().items() if k != "form"}
        args = ",".join(f"{k}={format_value(v)}" for k, v in params.items())
        return "jpegmask-hidden" + (f"({args})" if args else "")

    @property
    def use_subsampling(self) -> bool:
        return self.subsampling if self.subsampling is not None else self.form == "mbrs"

    def simulate(self, x: torch.Tensor, quality: int) -> torch.Tensor:
        sub = self.use_subsampling
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = _float(x)
            y, c, h, w = dct.to_ycbcr_planes(xf, sub)
            y = dct.block_idct(dct.block_dct(y) * self.mask_y.to(xf))
            c = dct.block_idct(dct.block_dct(c) * self.mask_c.to(xf))
            return dct.from_ycbcr_planes(y, c, h, w, sub, upsample="nearest").to(x.dtype)


def jpeg_drop_keep_prob(quality: float, chroma: bool = False) -> torch.Tensor:
    """JPEG-Drop keep probabilities (8x8) per ANCHORS.md (HiDDeN's JPEG-Drop code):
    ``QM = (S*T + 50)/100``, ``p = clamp((1 - ln(clamp(QM, 1, 128))/7)**2, 0.1, 0.9)``."""
    t = torch.tensor(dct.CHROMA_QTABLE if chroma else dct.LUMA_QTABLE, dtype=torch.float64).view(8, 8)
    qm = (dct.ijg_scale(quality) * t + 50.0) / 100.0
    p = (1.0 - torch.log(qm.clamp(1.0, 128.0)) / 7.0) ** 2
    return p.clamp(0.1, 0.9).float()


@register_attack("jpegmask-hidden", positional="quality")
def jpegmask_hidden(**kw) -> JpegMask:
    """HiDDeN's JPEG-Mask (:class:`JpegMask` with ``form='hidden'``) under its own layer name."""
    return JpegMask(form="hidden", **kw)


@register_attack("jpegdrop", positional="quality")
class JpegDrop(JpegSimulator):
    """JPEG-Drop (HiDDeN; compared in paper 000 Table 1): each DCT coefficient of each 8x8 block is kept with
    the probability :func:`jpeg_drop_keep_prob` gives for its frequency and zeroed otherwise, a new random
    mask per forward pass (per image, block and channel). Y uses the luminance table, Cb/Cr the chrominance
    table; no chroma subsampling by default (as HiDDeN). Linear in ``x`` for a given mask; not clamped.
    """


    def __init__(
        self,
        quality: int | tuple[int, int] = 50,
        subsampling: bool = False,
        generator: torch.Generator | None = None,
    ):
        super().__init__(quality, generator)
        if not isinstance(subsampling, bool):
            raise AttackError(f"subsampling must be true or false, got {subsampling!r}")
        self.subsampling = subsampling

    def simulate(self, x: torch.Tensor, quality: int) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = _float(x)
            y, c, h, w = dct.to_ycbcr_planes(xf, self.subsampling)
            out = []
            for plane, chroma in ((y, False), (c, True)):
                coef = dct.block_dct(plane)
                p = jpeg_drop_keep_prob(quality, chroma).to(coef)
                keep = (rand(coef.shape, self.generator, coef) < p).to(coef.dtype)
                out.append(dct.block_idct(coef * keep))
            return dct.from_ycbcr_planes(out[0], out[1], h, w, self.subsampling).to(x.dtype)


@register_attack("jpegss", positional="quality")
class JpegSS(JpegSimulator):
    """JPEG-SS: the full JPEG pipeline with a differentiable quantiser (paper 002 §2 "JPEG simulations").

    BT.601 YCbCr -> 4:2:0 (2x2 average) -> 8x8 DCT -> divide by the IJG-scaled Annex K tables -> rounding
    -> multiply back -> IDCT -> triangle chroma upsampling -> RGB -> clamp to [0, 1] (straight-through).

    ``rounding='shin-song'``: Shin & Song's own approximation ``round(x) + (x - round(x))**3`` (ANCHORS.md);
    ``rounding='mbrs'``: the MBRS variant, paper 002 eq. (1), ``x**3 if |x| < 0.5 else x`` (no rounding of
    large coefficients) -- also available as :class:`JpegSSMbrs`.
    """

    _roundings = ("shin-song", "mbrs")

    def __init__(
        self,
        quality: int | tuple[int, int] = 50,
        rounding: str = "shin-song",
        subsampling: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__(quality, generator)
        if rounding not in self._roundings:
            raise AttackError(
                f"JpegSS rounding must be one of {', '.join(self._roundings)}, got {rounding!r}"
            )
        if not isinstance(subsampling, bool):
            raise AttackError(f"subsampling must be true or false, got {subsampling!r}")
        self.rounding = rounding
        self.subsampling = subsampling

    def simulate(self, x: torch.Tensor, quality: int) -> torch.Tensor:
        y = dct.jpeg_pipeline(x, quality, dct.ROUNDING[self.rounding], self.subsampling)
        return ste_clamp(y).to(x.dtype)


@register_attack("jpegss-mbrs", positional="quality")
class JpegSSMbrs(JpegSS):
    """JPEG-SS with MBRS's quantiser, paper 002 eq. (1): ``x**3 if |x| < 0.5 else x`` (see JpegSS)."""


    def __init__(
        self,
        quality: int | tuple[int, int] = 50,
        subsampling: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__(quality, "mbrs", subsampling, generator)


@register_attack("diffjpeg", positional="quality")
class DiffJPEG(JpegSimulator):
    """A full differentiable JPEG (4:2:0, IJG tables), the closest simulator to a real codec here.

    ``rounding='cubic'`` (default) with ``backend='kornia'``: ``kornia.enhance.jpeg_codec_differentiable``
    (Reich et al. 2024, polynomial rounding ``round(x) + (x - round(x))**3`` after Shin & Song; also
    differentiable in the quality). ``rounding='ste'``: this package's pipeline
    (:func:`~robusthide.attacks.simulators.dct.jpeg_pipeline`) with hard rounding forward and identity
    backward -- the form of MBRS's training "real JPEG" (a torch simulation with hard rounding, ANCHORS.md),
    and the "MBRS" member of paper 003's simulator set. ``backend='auto'``: kornia for cubic, own for ste;
    ``backend='own'`` with ``rounding='cubic'`` is :class:`JpegSS`'s pipeline. Output clamped to [0, 1]
    (straight-through).

    Measured against real Pillow JPEG Q50 (4:2:0) on 256x256 crops of astronaut / coffee / chelsea:
    kornia-cubic 41.9 / 42.6 / 42.9 dB PSNR, own-ste 44.1 / 44.5 / 44.9 dB (acceptance: >= 35 dB;
    ``robusthide bench simulators``, docs/results/attacks.md).
    """


    def __init__(
        self,
        quality: int | tuple[int, int] = 50,
        rounding: str = "cubic",
        backend: str = "auto",
        generator: torch.Generator | None = None,
    ):
        super().__init__(quality, generator)
        if rounding not in ("cubic", "ste"):
            raise AttackError(f"DiffJPEG rounding must be 'cubic' or 'ste', got {rounding!r}")
        if backend not in ("auto", "kornia", "own"):
            raise AttackError(f"DiffJPEG backend must be 'auto', 'kornia' or 'own', got {backend!r}")
        if backend == "kornia" and rounding != "cubic":
            raise AttackError(
                "DiffJPEG backend 'kornia' only rounds with the cubic polynomial (rounding=cubic)"
            )
        self.rounding = rounding
        self.backend = backend

    @property
    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        return "kornia" if self.rounding == "cubic" else "own"

    def simulate(self, x: torch.Tensor, quality: int) -> torch.Tensor:
        if self.resolved_backend == "kornia":
            from kornia.enhance import jpeg_codec_differentiable

            xf = _float(x)
            q = torch.full((1,), float(quality), device=x.device, dtype=xf.dtype)
            y = jpeg_codec_differentiable(xf, q)
        else:
            y = dct.jpeg_pipeline(x, quality, dct.ROUNDING[self.rounding], True)
        return ste_clamp(y).to(x.dtype)
