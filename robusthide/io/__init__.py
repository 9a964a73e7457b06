"""File input/output shared by the command line and the library (images now; more later)."""

from robusthide.io.images import MAX_PIXELS, read_image_rgb, write_image

__all__ = ["MAX_PIXELS", "read_image_rgb", "write_image"]
