"""The one weights format of every model family: a safetensors file whose metadata holds the same keys.

``format = robusthide/2`` and:

* ``family`` -- ``watermark``, ``imagehide`` or ``latent`` (:data:`robusthide.zoo.registry.FAMILIES`);
* ``name`` -- the model's name; ``card`` -- its model card under ``robusthide/zoo/cards/`` (may be empty);
* ``arch`` -- the architecture's name (``lean``, ``geo``, ``hiding-network``, ``hyperprior``,
  ``fnns-decoder``...); ``config`` -- JSON of the architecture's keyword arguments;
* ``step`` -- training steps; optional ``training`` (JSON of the training config), ``role`` (latent:
  ``codec`` or ``decoder``) and the family's own values (``strength``, ``attack``, ``lmbda``...).

Tensors are the model's state dict. :func:`read_meta` / :func:`read_weights` also read the metadata each
family wrote before (``robusthide/1``: ``arch`` + ``kwargs``; ``robusthide-imagehide/1``: ``arch`` = the
config JSON; ``robusthide-latent-codec``: ``arch``, ``N``, ``M``; ``robusthide-latent-stegdecoder``:
``data_depth``, ``hidden``) and give it in this form (:class:`WeightsMeta`); :func:`convert` rewrites a
file in it (the tensors unchanged). Anything else is refused with a one-line error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robusthide import RobustHideError

FORMAT = "robusthide/2"
#: the formats the families wrote before robusthide/2 -> family
LEGACY_FORMATS = {"robusthide/1": "watermark", "robusthide-imagehide/1": "imagehide",
                  "robusthide-latent-codec": "latent", "robusthide-latent-stegdecoder": "latent"}
#: the metadata keys every robusthide/2 file has
KEYS = ("format", "family", "name", "arch", "config", "card", "step")


@dataclass
class WeightsMeta:
    """A weights file's metadata in the one form (whatever format the file has)."""

    family: str
    arch: str
    config: dict[str, Any]
    name: str = ""
    card: str = ""
    step: int = 0
    role: str | None = None
    #: the training config, when the file holds one
    training: dict[str, Any] | None = None
    #: the family's own values (strength, attack, lmbda, ...), as text
    extra: dict[str, str] = field(default_factory=dict)
    #: the format the file was written in
    source_format: str = FORMAT

    def to_metadata(self) -> dict[str, str]:
        """The robusthide/2 metadata of these values."""
        meta = {"format": FORMAT, "family": self.family, "name": self.name, "arch": self.arch,
                "config": json.dumps(self.config), "card": self.card, "step": str(int(self.step))}
        if self.role:
            meta["role"] = self.role
        if self.training is not None:
            meta["training"] = json.dumps(self.training)
        meta.update({k: v for k, v in self.extra.items() if k not in meta})
        return meta


def _json(path: Path, meta: dict[str, str], key: str) -> Any:
    try:
        return json.loads(meta[key], parse_constant=lambda c: float("nan"))
    except KeyError:
        raise RobustHideError(f"{path}: metadata '{key}' missing") from None
    except (ValueError, RecursionError):
        raise RobustHideError(f"{path}: metadata '{key}' is not valid JSON") from None


def _int(path: Path, meta: dict[str, str], key: str, default: int | None = None) -> int:
    if key not in meta and default is not None:
        return default
    try:
        return int(meta[key])
    except (KeyError, ValueError):
        raise RobustHideError(f"{path}: metadata '{key}' missing or not an integer") from None


def normalize(path: Path, meta: dict[str, str]) -> WeightsMeta:
    """The metadata of ``path`` (any known format) as a :class:`WeightsMeta`; one-line errors otherwise."""
    fmt = meta.get("format")
    rest = {k: v for k, v in meta.items() if k not in (*KEYS, "kwargs", "role", "training", "steps")}
    if fmt == FORMAT:
        family = meta.get("family", "")
        if family not in set(LEGACY_FORMATS.values()):
            raise RobustHideError(f"{path}: metadata family {family!r} is not one of watermark, imagehide, latent")
        config = _json(path, meta, "config")
        training = _json(path, meta, "training") if "training" in meta else None
        return WeightsMeta(family, meta.get("arch", ""), config, meta.get("name", ""), meta.get("card", ""),
                           _int(path, meta, "step", 0), meta.get("role"), training, rest, fmt)
    if fmt == "robusthide/1":
        training = _json(path, meta, "config") if "config" in meta else None
        return WeightsMeta("watermark", meta.get("arch", ""), _json(path, meta, "kwargs") if "kwargs" in meta else {},
                           meta.get("name", ""), "", _int(path, meta, "step", 0), None, training, rest, fmt)
    if fmt == "robusthide-imagehide/1":
        training = _json(path, meta, "config") if "config" in meta else None
        return WeightsMeta("imagehide", "hiding-network", _json(path, meta, "arch"), meta.get("name", ""), "",
                           _int(path, meta, "step", 0), None, training, rest, fmt)
    if fmt == "robusthide-latent-codec":
        config = {"N": _int(path, meta, "N"), "M": _int(path, meta, "M")}
        rest = {k: v for k, v in rest.items() if k not in ("N", "M")}
        return WeightsMeta("latent", meta.get("arch", "hyperprior"), config, meta.get("name", ""), "",
                           _int(path, meta, "steps", 0), "codec", None, rest, fmt)
    if fmt == "robusthide-latent-stegdecoder":
        config = {"data_depth": _int(path, meta, "data_depth"), "hidden": _int(path, meta, "hidden")}
        rest = {k: v for k, v in rest.items() if k not in ("data_depth", "hidden")}
        return WeightsMeta("latent", "fnns-decoder", config, meta.get("name", ""), "", _int(path, meta, "steps", 0),
                           "decoder", None, rest, fmt)
    raise RobustHideError(f"{path}: not a robusthide weights file (metadata format is {fmt!r}, expected "
                          f"{FORMAT!r})")


def raw_meta(path: str | Path) -> dict[str, str]:
    """The safetensors metadata of ``path`` (the header only: no tensor is read)."""
    from safetensors import safe_open

    from robusthide.io.safe import check_regular

    p = Path(path)
    check_regular(p)  # a FIFO named x.safetensors would block the reader forever
    try:
        with safe_open(str(p), framework="numpy") as f:
            return dict(f.metadata() or {})
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RobustHideError(f"{p}: not a readable safetensors weights file ({first})") from None


def read_meta(path: str | Path, family: str | None = None) -> WeightsMeta:
    """The metadata of a weights file in the one form (of ``family``, when given)."""
    p = Path(path)
    wm = normalize(p, raw_meta(p))
    if family is not None and wm.family != family:
        raise RobustHideError(f"{p}: a {wm.family} model, not a {family} model")
    return wm


def read_weights(path: str | Path, family: str | None = None) -> tuple[WeightsMeta, dict[str, str], dict[str, Any]]:
    """(metadata in the one form, the file's own metadata, tensors) of a weights file (of ``family``)."""
    from safetensors import safe_open

    from robusthide.io.safe import check_regular

    p = Path(path)
    check_regular(p)
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RobustHideError(f"{p}: not a readable safetensors weights file ({first})") from None
    wm = normalize(p, meta)
    if family is not None and wm.family != family:
        raise RobustHideError(f"{p}: a {wm.family} model, not a {family} model")
    return wm, meta, tensors


def write_weights(path: str | Path, tensors: dict[str, Any], meta: WeightsMeta) -> Path:
    """Write ``tensors`` with ``meta`` in the robusthide/2 format (atomically: the one atomic writer)."""
    from safetensors.torch import save_file

    from robusthide.io.safe import atomic_output

    out = Path(path)
    with atomic_output(out) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta.to_metadata())
    return out


def convert(path: str | Path, output: str | Path | None = None, card: str | None = None,
            name: str | None = None) -> Path:
    """Rewrite a weights file of any known format in robusthide/2 (tensors unchanged), to ``output`` (default:
    in place), with its ``card`` and ``name`` when given."""
    wm, _, tensors = read_weights(path)
    if card is not None:
        wm.card = card
    if name is not None:
        wm.name = name
    return write_weights(output or path, tensors, wm)
