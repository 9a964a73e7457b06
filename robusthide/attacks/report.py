"""How close each JPEG simulator is to real JPEG: PSNR of simulator output vs real Pillow JPEG output.

Fixtures: 256x256 centre crops of skimage's astronaut, coffee and chelsea. Real JPEG:
``get_codec('jpeg:q=Q')`` (Pillow / libjpeg-turbo, 4:2:0). Simulators run on the same uint8-exact input;
their float output is compared without rounding to 8 bits. The identity row (uncompressed input vs real
JPEG) is the baseline a simulator must beat. JPEG-Drop is random (fixed seed 0).

Command (writes the table in docs/results/attacks.md)::

    robusthide bench simulators --write docs/results/attacks.md

Acceptance (issue 3): DiffJPEG at Q50 >= 35 dB PSNR against real JPEG Q50 on every fixture.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence

import numpy as np
import torch

from robusthide.metrics import psnr_from_mse

FIXTURES = ("astronaut", "coffee", "chelsea")


def fixtures(size: int = 256, names: Sequence[str] = FIXTURES) -> torch.Tensor:
    """Centre ``size x size`` crops of skimage test images as a float batch ``N x 3 x size x size``."""
    import skimage.data

    out = []
    for n in names:
        a = getattr(skimage.data, n)()
        h, w = a.shape[:2]
        if min(h, w) < size:
            raise ValueError(f"fixture {n} ({h}x{w}) is smaller than {size}")
        t, left = (h - size) // 2, (w - size) // 2
        out.append(a[t:t + size, left:left + size])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per-image PSNR (dB, peak 1) of two batches."""
    mse = ((a.double() - b.double()) ** 2).flatten(1).mean(1)
    return [float(psnr_from_mse(m, peak=1.0)) if m > 0 else float("inf") for m in mse]


def simulators() -> dict[str, Callable[[int], torch.nn.Module]]:
    """Name -> factory(quality) of every JPEG simulator compared."""
    from robusthide.attacks.distortions import Identity
    from robusthide.attacks.simulators.jpeg import DiffJPEG, JpegDrop, JpegMask, JpegSS, JpegSSMbrs

    return {
        "DiffJPEG (kornia, cubic rounding; default)": lambda q: DiffJPEG(q),
        "DiffJPEG(rounding='ste') (own pipeline)": lambda q: DiffJPEG(q, rounding="ste"),
        "JpegSS (Shin & Song rounding)": lambda q: JpegSS(q),
        "JpegSSMbrs (MBRS eq. 1 rounding)": lambda q: JpegSSMbrs(q),
        "JpegMask (MBRS 5x5 / 3x3)": lambda q: JpegMask("mbrs"),
        "JpegMask (HiDDeN zig-zag 25 / 9)": lambda q: JpegMask("hidden"),
        "JpegDrop": lambda q: JpegDrop(q, generator=torch.Generator().manual_seed(0)),
        "Identity (no simulation)": lambda q: Identity(),
    }


def measure(qualities: Sequence[int] = (50,), size: int = 256) -> dict[int, dict[str, list[float]]]:
    """``{quality: {simulator: [psnr per fixture]}}`` against real JPEG at that quality."""
    from robusthide.codecs import get_codec

    x = fixtures(size)
    out: dict[int, dict[str, list[float]]] = {}
    with torch.no_grad():
        for q in qualities:
            real = get_codec(f"jpeg:q={q}")(x).images
            out[q] = {name: psnr(make(q)(x), real) for name, make in simulators().items()}
    return out


def diffjpeg_psnr(quality: int = 50, size: int = 256, rounding: str = "cubic") -> list[float]:
    """PSNR of DiffJPEG vs real JPEG at ``quality`` on the fixtures (the acceptance figure)."""
    from robusthide.attacks.simulators.jpeg import DiffJPEG
    from robusthide.codecs import get_codec

    x = fixtures(size)
    with torch.no_grad():
        return psnr(DiffJPEG(quality, rounding=rounding)(x), get_codec(f"jpeg:q={quality}")(x).images)


def to_markdown(results: dict[int, dict[str, list[float]]], size: int) -> str:
    import kornia
    import PIL

    lines = [
        "# Attack layers: JPEG simulators vs real JPEG",
        "",
        f"PSNR (dB) of each simulator's output against real JPEG (Pillow {PIL.__version__}, 4:2:0)",
        f"at the same quality, on {size}x{size} centre crops of skimage's {', '.join(FIXTURES)}.",
        "Higher = closer to the real codec; the identity row (the uncompressed input) is the baseline.",
        "Simulator output is compared as float (not rounded to 8 bits). JpegMask ignores the quality.",
        "JpegDrop is random (seed 0).",
        "",
        f"torch {torch.__version__}, kornia {kornia.__version__}, {platform.machine()}.",
        "Command: `robusthide bench simulators --write docs/results/attacks.md`",
        "",
    ]
    for q, rows in results.items():
        lines += [f"## Quality {q}", "", "| simulator | " + " | ".join(FIXTURES) + " | mean |",
                  "|---|" + "---:|" * (len(FIXTURES) + 1)]
        for name, vals in rows.items():
            cells = " | ".join(f"{v:.2f}" for v in vals)
            lines.append(f"| {name} | {cells} | {sum(vals) / len(vals):.2f} |")
        lines.append("")
    d = results.get(50, {}).get("DiffJPEG (kornia, cubic rounding; default)")
    if d is not None:
        ok = "PASS" if min(d) >= 35.0 else "FAIL"
        lines += [f"Acceptance (DiffJPEG Q50 >= 35 dB on every fixture): min {min(d):.2f} dB -> {ok}.", ""]
    lines += [
        "Notes: JpegMask and JpegDrop are not meant to reproduce JPEG's output, only to remove what JPEG",
        "removes (high frequencies); JpegMask sits near the identity baseline. JpegDrop follows the keep",
        "probabilities of HiDDeN's code (ANCHORS.md), which also drop the DC coefficient of a block with",
        "probability 0.64 at Q50, hence its very low PSNR. The real codec in the loop",
        "(PseudoDifferentiable) reproduces real JPEG exactly (infinite PSNR) by construction.",
        "",
    ]
    return "\n".join(lines)
