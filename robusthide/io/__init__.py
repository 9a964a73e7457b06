"""File input/output shared by the command line and the library: safe reads, the one atomic writer,
the one list of image extensions and folder walk (:mod:`robusthide.io.safe`), images (:mod:`robusthide.io.images`)."""

from robusthide.io.images import MAX_PIXELS, read_image_rgb, write_image
from robusthide.io.safe import (
    IMAGE_EXTENSIONS,
    atomic_output,
    check_regular,
    list_images,
    open_image,
    open_regular,
    write_bytes_atomic,
)

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "atomic_output", "check_regular", "list_images", "open_image",
           "open_regular", "read_image_rgb", "write_bytes_atomic", "write_image"]
