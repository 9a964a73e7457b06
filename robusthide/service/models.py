"""The parameters of the endpoints (pydantic, types only: values are checked by the library, so a bad
value gets the message the CLI gives) and the OpenAPI description of their bodies and answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from robusthide.service.settings import ServiceError


class BadParams(ServiceError):
    """A parameter of the wrong type or an unknown one."""

    status = 422


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EmbedParams(_Params):
    message: int | str | None = Field(None, description="the message: digits alone are an integer (unless "
                                      "kind says otherwise), anything else text")
    kind: str | None = Field(None, description="text, hex, bytes or int (default: from the message)")
    schema_: int | str | None = Field(None, alias="schema", description="payload schema, id or name")
    strength: float = Field(1.0, description="residual strength factor, in (0, 4]")
    refine: int | None = Field(None, description="embed-time refinement steps (default: the model's; 0: fast)")
    format: str = Field("png", description="output format: png, jpeg, webp, tiff")
    quality: int = Field(95, description="JPEG/WebP quality, 1-100")
    response: str = Field("json", description="json (the image base64, with the residual view) or image "
                                              "(the marked file itself)")


class ExtractParams(_Params):
    search: str | None = Field(None, description="the model's own when omitted (staged for whole-image models: as "
                                                 "it is, then inset, reframe, slide, rotate, crop, corner, turn and "
                                                 "anywhere); "
                                                 "none, staged, crop, rotate, reframe, slide, corner, inset, turn, "
                                                 "anywhere, geometry")
    bits: bool = Field(False, description="also return the raw and soft bits")


class DetectParams(_Params):
    search: str | None = Field(None, description="as for /extract: the model's own when omitted")


def parse_params(model: type[_Params], fields: dict[str, Any]) -> Any:
    """``model`` from the request's fields; :class:`BadParams` names the first bad field in one line."""
    try:
        return model.model_validate(fields)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "body"
        raise BadParams(f"{where}: {err['msg']}") from None


def request_body(model: type[_Params]) -> dict[str, Any]:
    """The OpenAPI requestBody of an endpoint taking an image and ``model``'s fields: a multipart form, or
    JSON with the image base64."""
    props = model.model_json_schema(by_alias=True)["properties"]
    form = {"type": "object", "required": ["image"],
            "properties": {"image": {"type": "string", "format": "binary"}, **props}}
    js = {"type": "object", "required": ["image"],
          "properties": {"image": {"type": "string", "contentEncoding": "base64", "description": "the file, base64"},
                         "filename": {"type": "string", "description": "its name, for messages"}, **props}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form},
                                                          "application/json": {"schema": js}}}}


class ErrorOut(BaseModel):
    error: str = Field(description="one line, as the CLI prints it after 'robusthide: error: '")


class EmbedOut(BaseModel):
    input: str
    filename: str = Field(description="a name for the marked file")
    media_type: str
    bytes: int
    size: list[int] = Field(description="[width, height]")
    psnr: float | None = Field(description="dB (null when the image did not change)")
    message: int | str
    image: str = Field(description="the marked file, base64")
    residual: str = Field(description="PNG, base64: |marked - cover| amplified (where the mark is)")
    residual_gain: float


class ExtractOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # and what else ExtractResult.to_dict() gives

    input: str
    detected: bool
    message: Any = None
    kind: str | None = None
    p_value: float
    confidence: float
    corrected_errors: int | None = None
    schema_: int | None = Field(None, alias="schema")
    crop_side: float | None = None
    bits: list[int] | None = None
    soft: list[float] | None = None


class DetectOut(BaseModel):
    input: str
    detected: bool
    p_value: float
    confidence: float
