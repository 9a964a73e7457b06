"""robusthide: hide data in images and video so that it survives real lossy codecs."""

__version__ = "0.1.0"


class RobustHideError(Exception):
    """An error with a one-line message meant for the user (the CLI prints it and exits 2)."""


def __getattr__(name: str):
    # Lazy: `import robusthide` stays light; `from robusthide import Watermarker` loads torch.
    if name == "Watermarker":
        from robusthide.watermark.watermarker import Watermarker

        return Watermarker
    raise AttributeError(f"module 'robusthide' has no attribute {name!r}")
