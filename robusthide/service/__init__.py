"""``robusthide serve``: an HTTP service (FastAPI on uvicorn) and a web page over :class:`robusthide.Watermarker`.

* :mod:`.settings`: the limits (upload bytes, pixels, concurrent jobs, timeout) and the model to serve.
* :mod:`.uploads`: the request body, read into memory under the byte limit (multipart or JSON + base64).
* :mod:`.images`: uploads decoded in memory, marked images encoded, the residual view for the page.
* :mod:`.jobs`: the concurrent-jobs slots and the per-request timeout.
* :mod:`.app`: :func:`create_app`, the endpoints and the page (``static/``).

Nothing is written to disk: uploads, marked images and residuals live in memory for one request.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package does not import FastAPI or torch.
    if name == "create_app":
        from robusthide.service.app import create_app

        return create_app
    if name == "Settings":
        from robusthide.service.settings import Settings

        return Settings
    raise AttributeError(f"module 'robusthide.service' has no attribute {name!r}")
