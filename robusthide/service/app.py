"""The FastAPI application: :func:`create_app` loads the model once and serves the endpoints and the page.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``): ``POST /embed``, ``POST /extract``,
``POST /detect`` (an image as a multipart form or as JSON with base64), ``GET /capacity``, ``GET /health``,
and the page at ``/``. Errors are ``{"error": "<one line>"}`` with a 4xx status (the message the CLI
prints), 503 when every job slot is taken and 504 past the timeout.
"""

from __future__ import annotations

import base64
import logging
import math
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from robusthide import RobustHideError, __version__
from robusthide.payload import MessageTooLongError
from robusthide.payload.codec import message_value
from robusthide.service import images
from robusthide.service.jobs import Jobs
from robusthide.service.models import (
    DetectOut,
    DetectParams,
    EmbedOut,
    EmbedParams,
    ErrorOut,
    ExtractOut,
    ExtractParams,
    parse_params,
    request_body,
)
from robusthide.service.settings import Busy, ServiceError, Settings
from robusthide.service.uploads import Upload, read_upload
from robusthide.watermark.files import encode_image, output_format
from robusthide.zoo.payload_fit import where_it_fits_text

STATIC = Path(__file__).parent / "static"
MEDIA = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp"),
         "TIFF": ("image/tiff", "tif"), "BMP": ("image/bmp", "bmp")}
ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": ErrorOut} for c in (400, 413, 415, 422, 503, 504)}
log = logging.getLogger("robusthide.service")


def _message(message: int | str | None, kind: str | None) -> int | str:
    """The message as ``robusthide embed -m`` reads it (digits alone are an integer unless ``kind`` says
    otherwise); a JSON number is an integer."""
    if message is None or message == "":
        raise RobustHideError("give the message in the field 'message'")
    return message if isinstance(message, int) else message_value(message, kind)


def _encode(wm: Any, message: Any, kind: str | None, schema: int | str | None) -> Any:
    """The payload bits of a request's message; one too long says where it fits, in the command line's words (the
    request's ``schema`` field, or a service started with ``--model``; :mod:`robusthide.zoo.payload_fit`)."""
    try:
        return wm.encode_message(message, kind=kind, schema=schema)
    except MessageTooLongError as e:
        raise RobustHideError(f"{e}; {where_it_fits_text(message, kind, e.schema)}") from None


def _schema(s: int | str | None) -> int | str | None:
    return int(s) if isinstance(s, str) and s.strip().isdigit() else s


def _marked_name(name: str, ext: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "image"
    return f"{stem}-marked.{ext}"


def _fastapi(**kw: Any) -> FastAPI:
    """FastAPI, with /docs (Swagger UI) and /redoc served from the package ``fastapi-offline`` when it is
    installed (the ``serve`` extra), so that the docs work without reaching a CDN."""
    try:
        from fastapi_offline import FastAPIOffline
    except ModuleNotFoundError:
        return FastAPI(**kw)
    return FastAPIOffline(**kw)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service for ``settings`` (default :class:`Settings`); the model is loaded here, once."""
    from robusthide.watermark.watermarker import Watermarker

    s = settings or Settings()
    wm = Watermarker.from_pretrained(s.model, device=s.device, schema=_schema(s.schema))
    wm.capacity()  # a bad schema fails here, not on the first request
    jobs = Jobs(s.max_jobs, s.timeout_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        jobs.shutdown()

    app = _fastapi(title="robusthide", version=__version__, lifespan=lifespan,
                   description="Mark images with a robust watermark, read it back, test for its presence.")
    app.state.settings, app.state.watermarker, app.state.jobs = s, wm, jobs
    page = (STATIC / "index.html").read_text()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RobustHideError)
    async def _error(_req: Request, e: RobustHideError) -> JSONResponse:
        status = e.status if isinstance(e, ServiceError) else 400
        headers = {"Retry-After": "1"} if isinstance(e, Busy) else None
        return JSONResponse({"error": str(e)}, status_code=status, headers=headers)

    @app.exception_handler(Exception)
    async def _crash(_req: Request, e: Exception) -> JSONResponse:
        log.error("robusthide service: unexpected %s", type(e).__name__, exc_info=e)
        return JSONResponse({"error": f"internal error ({type(e).__name__})"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, e: RequestValidationError) -> JSONResponse:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"][1:]) or "request"
        return JSONResponse({"error": f"{where}: {err['msg']}"}, status_code=422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """The service is up: its version, model, limits and the jobs running now."""
        return {"status": "ok", "version": __version__, "model": wm.name, "n_bits": wm.n_bits,
                "limits": s.limits(), "jobs_running": jobs.running}

    @app.get("/capacity", responses=ERRORS)
    async def capacity(schema: str | None = None) -> dict[str, Any]:
        """Payload capacity of the model, for one schema (id or name) or all."""
        return wm.capacity(_schema(schema))

    def do_embed(up: Upload, p: EmbedParams) -> dict[str, Any] | Response:
        fmt = output_format("", p.format)
        if p.response not in ("json", "image"):
            raise RobustHideError(f"response must be json or image, got {p.response!r}")
        message = _message(p.message, p.kind)
        bits = _encode(wm, message, p.kind, _schema(p.schema_))
        f = images.decode_upload(up.data or b"", up.name, s.max_pixels)
        marked = wm.embed_bits(f.array, bits, strength=p.strength, refine=p.refine)
        data = encode_image(marked, fmt, p.quality, f.icc, f.exif)
        media, ext = MEDIA[fmt]
        name, psnr = _marked_name(up.name, ext), images.psnr(f.array, marked)
        if p.response == "image":
            return Response(data, media_type=media, headers={
                "Content-Disposition": f'attachment; filename="{name}"', "X-PSNR": str(psnr)})
        residual, gain = images.residual_png(f.array, marked)
        return {"input": up.name, "filename": name, "media_type": media, "bytes": len(data),
                "size": [int(f.array.shape[1]), int(f.array.shape[0])],
                "psnr": psnr if math.isfinite(psnr) else None, "message": message,
                "image": base64.b64encode(data).decode(), "residual": base64.b64encode(residual).decode(),
                "residual_gain": gain}

    def do_extract(up: Upload, p: ExtractParams) -> dict[str, Any]:
        f = images.decode_upload(up.data or b"", up.name, s.max_pixels)
        d = wm.extract(f.array, search=p.search).to_dict()
        if not p.bits:
            d.pop("bits"), d.pop("soft")
        return {"input": up.name, **d}

    def do_detect(up: Upload, p: DetectParams) -> dict[str, Any]:
        d = do_extract(up, ExtractParams(search=p.search))
        return {k: d[k] for k in ("input", "detected", "p_value", "confidence")}

    async def handle(request: Request, model: type, work) -> Any:
        jobs.check()  # before reading the upload
        up = await read_upload(request, s.max_bytes)
        return await jobs.run(work, up, parse_params(model, up.fields))

    @app.post("/embed", openapi_extra=request_body(EmbedParams), responses={200: {"model": EmbedOut}, **ERRORS})
    async def embed(request: Request) -> Any:
        """Mark an image with a message: the marked file (base64, or itself with ``response=image``), its
        PSNR, and a view of where the mark is."""
        return await handle(request, EmbedParams, do_embed)

    @app.post("/extract", openapi_extra=request_body(ExtractParams), responses={200: {"model": ExtractOut}, **ERRORS})
    async def extract(request: Request) -> Any:
        """Read the message: the verdict (``detected``), its p-value, and the message when detected."""
        return await handle(request, ExtractParams, do_extract)

    @app.post("/detect", openapi_extra=request_body(DetectParams), responses={200: {"model": DetectOut}, **ERRORS})
    async def detect(request: Request) -> Any:
        """Is a watermark present? The verdict and its p-value."""
        return await handle(request, DetectParams, do_detect)

    log.info("robusthide service: model %s, limits %s", wm.name, s.limits())
    return app
