"""Metrics on uint8 round-tripped images and decoded messages (issue 7): BER, word accuracy, PSNR (RGB and
BT.601 Y), SSIM, CIEDE2000, APD (paper 000), bpp, RSBPP and RSBPP rate (paper 004)."""

from robusthide.metrics.bits import (
    MetricError,
    ber,
    ber_per_image,
    hard_bits,
    message_accuracy,
    word_accuracy,
)
from robusthide.metrics.image import (
    apd,
    as_uint8_images,
    ciede2000,
    delta_e2000_lab,
    delta_e_map,
    edge_trace,
    luma,
    psnr,
    psnr_from_mse,
    psnr_y,
    quality_report,
    ssim,
)
from robusthide.metrics.rate import bpp, hidden_bpp, rsbpp, rsbpp_rate

__all__ = [
    "MetricError", "apd", "as_uint8_images", "ber", "ber_per_image", "bpp", "ciede2000", "delta_e2000_lab",
    "delta_e_map", "edge_trace", "hard_bits", "hidden_bpp", "luma", "message_accuracy", "psnr", "psnr_from_mse",
    "psnr_y", "quality_report", "rsbpp", "rsbpp_rate", "ssim", "word_accuracy",
]
