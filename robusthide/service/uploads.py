"""The request body, read into memory under the byte limit: a multipart form (the image in the field
``image``, the parameters as fields) or a JSON object (the image base64 in ``image``, its name in
``filename``). Nothing is spooled to disk."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from robusthide.service.settings import ServiceError, TooLarge

#: room for the form fields and the multipart framing around the image
FIELDS_BYTES = 64 * 1024


class UnsupportedType(ServiceError):
    """A body that is neither multipart/form-data nor JSON."""

    status = 415


@dataclass
class Upload:
    """An image upload: its bytes (None when none was sent), its name, and the other fields."""

    data: bytes | None
    name: str
    fields: dict[str, Any] = field(default_factory=dict)


def _too_large(n: int | str, max_bytes: int) -> TooLarge:
    return TooLarge(f"upload too large ({n} bytes; the limit is {max_bytes} bytes)")


async def read_body(request: Request, limit: int, max_bytes: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes (from Content-Length, or while reading)."""
    n = request.headers.get("content-length", "")
    if n.isdigit() and int(n) > limit:
        raise _too_large(n, max_bytes)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(f"more than {limit}", max_bytes)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ServiceError("the client closed the connection during the upload") from None
    return b"".join(chunks)


async def read_upload(request: Request, max_bytes: int, need_image: bool = True) -> Upload:
    """The image and the fields of a POST; a 413 past ``max_bytes`` for the image, a 400/415 otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        up = await _multipart(request, await read_body(request, max_bytes + FIELDS_BYTES, max_bytes))
    elif ctype == "application/json":
        up = _json(await read_body(request, (max_bytes + 2) // 3 * 4 + FIELDS_BYTES, max_bytes))
    else:
        raise UnsupportedType(f"send a multipart form (the image in 'image') or JSON (the image base64 in "
                              f"'image'), not {ctype or 'a body without a content type'}")
    if up.data is None and need_image:
        raise ServiceError("no image: send the file in the field 'image'")
    if up.data is not None and len(up.data) > max_bytes:
        raise _too_large(len(up.data), max_bytes)
    return up


async def _multipart(request: Request, body: bytes) -> Upload:
    async def stream():
        yield body

    parser = MultiPartParser(Headers(raw=request.headers.raw), stream(), max_files=1, max_fields=32,
                             max_part_size=FIELDS_BYTES)
    parser.spool_max_size = len(body) + 1  # the file part stays in memory
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise ServiceError(f"bad multipart upload: {e.message}") from None
    data, name, fields = None, "upload", {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key != "image":
                raise ServiceError(f"unexpected file field {key!r}: send the image in 'image'")
            value.file.seek(0)
            data, name = value.file.read(), value.filename or "upload"
            value.file.close()
        else:
            fields[key] = value
    return Upload(data, name, fields)


def _json(body: bytes) -> Upload:
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as e:
        raise ServiceError(f"not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ServiceError("the JSON body must be an object")
    image, name = doc.pop("image", None), doc.pop("filename", None) or "upload"
    if image is None:
        return Upload(None, str(name), doc)
    if not isinstance(image, str):
        raise ServiceError("image: give the file base64-encoded, as a string")
    try:
        data = base64.b64decode(image.split(",", 1)[1] if image.startswith("data:") else image, validate=True)
    except (binascii.Error, ValueError):
        raise ServiceError("image: not valid base64") from None
    return Upload(data, str(name), doc)
