"""What :func:`robusthide.service.create_app` serves and its limits; the errors that carry an HTTP status."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from robusthide import RobustHideError
from robusthide.io.safe import MAX_PIXELS


class ServiceError(RobustHideError):
    """A one-line error with its HTTP status (plain :class:`RobustHideError` is bad input: 400)."""

    status = 400


class TooLarge(ServiceError):
    """More bytes or pixels than the limits allow."""

    status = 413


class Busy(ServiceError):
    """Every job slot is taken."""

    status = 503


class TimedOut(ServiceError):
    """A job ran past the per-request timeout."""

    status = 504


@dataclass(frozen=True)
class Settings:
    """The model served and the limits of one service.

    ``max_bytes``: the largest image upload (bytes of the file, before decoding); ``max_pixels``: the
    largest image (width x height, checked from the header before decoding); ``max_jobs``: requests that
    mark or read at the same time (one more gets 503); ``timeout_s``: a request that takes longer gets
    504 (its job still finishes in the background and holds its slot until then).
    """

    model: str = "default"
    schema: int | str | None = None
    device: str = "cpu"
    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = MAX_PIXELS
    max_jobs: int = 2
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_jobs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise RobustHideError(f"{name} must be an integer >= 1, got {v!r}")
        if not self.timeout_s > 0:
            raise RobustHideError(f"timeout_s must be > 0, got {self.timeout_s!r}")

    def limits(self) -> dict[str, Any]:
        """The limits, as /health reports them."""
        d = asdict(self)
        return {k: d[k] for k in ("max_bytes", "max_pixels", "max_jobs", "timeout_s")}
