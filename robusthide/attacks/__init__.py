"""Attack layers ("noise layers"): composable ``torch.nn.Module``\\ s with ``forward(x, cover=None)``.

* :mod:`~robusthide.attacks.pseudo` -- real codecs in the loop, forward-real / backward-identity
  (paper 000 §3.3);
* :mod:`~robusthide.attacks.simulators` -- differentiable JPEG simulators (JPEG-Mask, JPEG-Drop, JPEG-SS,
  DiffJPEG);
* :mod:`~robusthide.attacks.distortions` -- noise, blur, median, resize, crop, cropout, dropout, brightness;
* :mod:`~robusthide.attacks.schedules` -- MBRS per-batch choice, paper 000 batch slices, composition,
  paper 003's JPEG mix-up and attack layer, random-quality real codecs;
* :mod:`~robusthide.attacks.config` -- :func:`build_attack` from spec strings / dicts / YAML
  (docs/attacks.md).
"""

from robusthide.attacks.base import Attack, AttackError, straight_through
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
)
from robusthide.attacks.pseudo import PseudoDifferentiable
from robusthide.attacks.schedules import (
    BatchSlices,
    JpegMixup,
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
    "GaussianBlur",
    "GaussianNoise",
    "Identity",
    "JpegDrop",
    "JpegMask",
    "JpegMixup",
    "JpegSS",
    "JpegSSMbrs",
    "JpegSimulator",
    "MedianFilter",
    "Paper003Attack",
    "PerBatchChoice",
    "PseudoDifferentiable",
    "RandomQuality",
    "Resize",
    "Sequential",
    "attack_spec",
    "build_attack",
    "slice_sizes",
    "straight_through",
]
