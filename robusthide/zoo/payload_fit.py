"""Where a message fits: the schemas and zoo watermark models whose payload holds it (the hint of a message that
is too long for the schema it was given; docs/payload.md)."""

from __future__ import annotations

from typing import Any

from robusthide.payload import PayloadError, Schema, encode_message, get_schema, list_schemas
from robusthide.zoo.registry import describe, names


def first_fitting(message: Any, kind: str | None, n_bits: int, first: int = 0) -> Schema | None:
    """The most robust schema of an ``n_bits`` payload, from the id ``first`` on, that holds ``message``."""
    for s in list_schemas(n_bits)[first:]:
        try:
            encode_message(message, n_bits, schema=s.id, kind=kind)
        except PayloadError:
            continue
        return s
    return None


def where_it_fits(message: Any, kind: str | None, schema: Schema) -> list[tuple[str | None, Schema, bool]]:
    """Where a ``message`` too long for ``schema`` fits: ``(None, s, False)`` for the most robust schema of the same
    payload size that holds it, then ``(name, s, default)`` for each zoo watermark model of another payload size,
    ``s`` the most robust of its schemas from its stored default on that holds it and ``default`` whether ``s`` is
    that default (no ``--schema`` needed). Empty: no model here holds it."""
    out: list[tuple[str | None, Schema, bool]] = []
    same = first_fitting(message, kind, schema.n_bits, schema.id + 1)
    if same is not None:
        out.append((None, same, False))
    for name in names("watermark"):
        d = describe(name)
        if d["n_bits"] == schema.n_bits:
            continue
        stored = d.get("schema")  # a stored default schema: its id or name; None: the payload size's default
        default = get_schema(d["n_bits"], int(stored) if str(stored).isdigit() else stored)
        s = first_fitting(message, kind, d["n_bits"], default.id)
        if s is not None:
            out.append((name, s, s.id == default.id))
    return out


def where_it_fits_text(message: Any, kind: str | None, schema: Schema) -> str:
    """:func:`where_it_fits` as one clause for a one-line error, the same from the command line and the service:
    ``it fits with schema balanced (25 data bits, 5 errors corrected); or model lean128; ...`` (``--schema`` and
    ``--model`` on the command line; the request's ``schema`` field, or a service started with ``--model``)."""
    options = []
    for name, s, default in where_it_fits(message, kind, schema):
        if name is None:
            options.append(f"schema {s.name} ({s.data_bits} data bits, {s.t} errors corrected)")
        else:
            options.append(f"model {name}" + ("" if default else f" at schema {s.name}"))
    return "it fits with " + "; or ".join(options) if options else "no model here holds it: shorten it"
