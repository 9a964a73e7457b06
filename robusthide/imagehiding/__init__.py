"""Hiding images in images with real-world robustness (paper 003) and against real JPEG / JPEG 2000 / WebP
(paper 000 §4).

* :mod:`~robusthide.imagehiding.nets` -- multi-branch U-Net embedder, decoupling and reveal networks,
  PatchGAN discriminators;
* :mod:`~robusthide.imagehiding.losses` -- paper 003 §2.4 loss terms (LS-GAN);
* :mod:`~robusthide.imagehiding.train` -- the trainer (``robusthide imagehide train CONFIG``);
* :mod:`~robusthide.imagehiding.checkpoint` -- checkpoints, export to ``robusthide-imagehide/1``;
* :mod:`~robusthide.imagehiding.api` -- :class:`ImageHider` (``from_file``, ``hide``, ``reveal``);
* :mod:`~robusthide.imagehiding.evaluate` -- PSNR / SSIM / APD with and without attacks.

See docs/imagehiding.md.
"""

from robusthide.imagehiding.api import ImageHider
from robusthide.imagehiding.checkpoint import FORMAT, export_model, load_model, save_model
from robusthide.imagehiding.nets import Discriminators, HidingNetwork

__all__ = ["FORMAT", "Discriminators", "HidingNetwork", "ImageHider", "export_model", "load_model", "save_model"]
