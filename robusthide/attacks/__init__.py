"""Attack layers ("noise layers"): composable ``torch.nn.Module``\\ s with ``forward(x, cover=None)``.

* :mod:`~robusthide.attacks.pseudo` -- real codecs in the loop, forward-real / backward-identity
  (paper 000 §3.3);
* :mod:`~robusthide.attacks.simulators` -- differentiable JPEG simulators (JPEG-Mask, JPEG-Drop, JPEG-SS,
  DiffJPEG);
* :mod:`~robusthide.attacks.distortions` -- 8-bit rounding, noise, blur, median, resize, crop, cropout, dropout,
  brightness;
* :mod:`~robusthide.attacks.geometric` -- crops anywhere, aspect cuts, rotations (``geometry``);
* :mod:`~robusthide.attacks.schedules` -- MBRS per-batch choice (per slice too: paper 000's mixed training),
  batch slices, composition, maybe, step curriculum (``from_step``), paper 003's JPEG mix-up and attack
  layer, random-quality real codecs;
* :mod:`~robusthide.attacks.config` -- :func:`build_attack` from spec strings / dicts / YAML
  (docs/attacks.md).
"""

from robusthide.attacks.base import Attack, AttackError, set_generator, straight_through
from robusthide.attacks.config import attack_spec, build_attack
from robusthide.attacks.distortions import (
    BrightnessContrast,
    Crop,
    Cropout,
    CropResize,
    Dropout,
    GaussianBlur,
    GaussianNoise,
    Identity,
    MedianFilter,
    Resize,
    Uint8,
)
from robusthide.attacks.geometric import RandomGeometry
from robusthide.attacks.pseudo import PseudoDifferentiable
from robusthide.attacks.schedules import (
    BatchSlices,
    FromStep,
    JpegMixup,
    Maybe,
    Paper003Attack,
    PerBatchChoice,
    RandomQuality,
    Sequential,
    slice_sizes,
)
from robusthide.attacks.simulators import DiffJPEG, JpegDrop, JpegMask, JpegSimulator, JpegSS, JpegSSMbrs

__all__ = [
    "Attack",
    "AttackError",
    "BatchSlices",
    "BrightnessContrast",
    "Crop",
    "CropResize",
    "Cropout",
    "DiffJPEG",
    "Dropout",
    "FromStep",
    "GaussianBlur",
    "GaussianNoise",
    "Identity",
    "JpegDrop",
    "JpegMask",
    "JpegMixup",
    "JpegSS",
    "JpegSSMbrs",
    "JpegSimulator",
    "Maybe",
    "MedianFilter",
    "Paper003Attack",
    "PerBatchChoice",
    "PseudoDifferentiable",
    "RandomGeometry",
    "RandomQuality",
    "Resize",
    "Sequential",
    "Uint8",
    "attack_spec",
    "build_attack",
    "set_generator",
    "slice_sizes",
    "straight_through",
]
