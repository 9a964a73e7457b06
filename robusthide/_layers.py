"""The layers of the package and the imports allowed between them (checked by tests/test_layers.py).

A module may import from its own layer and from the layers below it, never from a layer above::

    5  cli, service                      user interfaces: parse arguments, print, know default paths
    4  evaluation, bench, scale          measurements over the families (write docs/results); batch jobs
    3  training, zoo, watermark,         the one training loop and config loader, the one zoo, and the
       imagehiding, latent, data, onnxrt  families' APIs (each family: a model + an API + a zoo entry)
    2  nets                              network architectures (no I/O)
    1  attacks, metrics                  differentiable attacks and simulators; quality and bit metrics
    0  codecs, payload, io               real codecs, message coding, image files

The root package (:mod:`robusthide`: ``RobustHideError``, ``__version__``) is below everything; its lazy
``robusthide.Watermarker`` attribute is the one allowed arrow up (:data:`EXCEPTIONS`). ``robusthide/__main__``
belongs to the CLI.
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, ...], ...] = (
    ("codecs", "payload", "io"),
    ("attacks", "metrics"),
    ("nets",),
    ("training", "zoo", "watermark", "imagehiding", "latent", "data", "onnxrt"),
    ("evaluation", "bench", "scale"),
    ("cli", "service", "__main__"),
)

#: (importing module, imported module) pairs allowed against the order
EXCEPTIONS: frozenset[tuple[str, str]] = frozenset({("robusthide", "robusthide.watermark.watermarker")})


def layer_of(module: str) -> int | None:
    """The layer of a ``robusthide.*`` module (-1 for the root package; None for a package of no layer)."""
    parts = module.split(".")
    if parts[0] != "robusthide":
        raise ValueError(f"not a robusthide module: {module}")
    if len(parts) == 1 or parts[1] in ("_layers",):
        return -1
    for i, layer in enumerate(LAYERS):
        if parts[1] in layer:
            return i
    return None


def allowed(importer: str, imported: str) -> bool:
    """True when module ``importer`` may import module ``imported`` (both ``robusthide.*``)."""
    if (importer, imported) in EXCEPTIONS:
        return True
    a, b = layer_of(importer), layer_of(imported)
    return a is not None and b is not None and b <= a
