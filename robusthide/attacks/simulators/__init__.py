"""Differentiable JPEG simulators (JPEG-Mask, JPEG-Drop, JPEG-SS, DiffJPEG) and their DCT building blocks."""

from robusthide.attacks.simulators.jpeg import (
    DiffJPEG,
    JpegDrop,
    JpegMask,
    JpegSimulator,
    JpegSS,
    JpegSSMbrs,
    jpeg_drop_keep_prob,
)

__all__ = ["DiffJPEG", "JpegDrop", "JpegMask", "JpegSS", "JpegSSMbrs", "JpegSimulator", "jpeg_drop_keep_prob"]
