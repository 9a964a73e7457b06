"""The one registry of shipped models, every family (watermark, imagehide, latent), and the watermark loader.

:data:`PRETRAINED` maps a public name to its family, its safetensors file under ``robusthide/zoo/weights/``
and its card under ``robusthide/zoo/cards/`` (one format: :data:`CARD_ROWS`). Every family's
``from_pretrained`` (``Watermarker.from_pretrained``, :meth:`robusthide.imagehiding.ImageHider.from_pretrained`,
:func:`robusthide.latent.api.from_pretrained`) is :func:`load` with its family: names resolve through
:func:`resolve`, and each family's builder makes its architecture from the file (never pickle):
:func:`load_model` here for watermarks.

Every shipped model is one weights format, ``robusthide/2`` (:mod:`robusthide.zoo.weights`): a safetensors
file whose metadata holds ``format``, ``family``, ``name``, ``arch``, ``config`` (JSON of the architecture's
keyword arguments), ``card`` and ``step``; the families' older metadata (``robusthide/1``,
``robusthide-imagehide/1``, ``robusthide-latent-codec``, ``robusthide-latent-stegdecoder``) is still read.
:func:`load` is the one loader of every family; :func:`describe` reads any file's metadata. Anything else (a
foreign safetensors file, a pickle, a truncated file) is refused with a one-line error.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robusthide import RobustHideError
from robusthide.zoo.weights import FORMAT as WEIGHTS_FORMAT
from robusthide.zoo.weights import read_meta

if TYPE_CHECKING:  # torch loads with a model, not with the registry (a torch-free install reads names and ONNX)
    import torch

FORMAT = WEIGHTS_FORMAT

#: the model families and what each name is for
FAMILIES = ("watermark", "imagehide", "latent")

#: rows every card's first table has (``| family | watermark |``); the card's first line is
#: ``# Model card: `NAME` ...``
CARD_ROWS = ("family", "weights", "data", "training")

#: name -> family, weights file, card, headline figures (from the card's measured results); latent models
#: also say their ``role`` (``codec`` or ``decoder``) and the family default of each role. ``onnx``: the
#: folder (under weights/) of the model's networks as ONNX, for the torch-free runtime (:func:`onnx_path`).
PRETRAINED: dict[str, dict[str, Any]] = {
    "default": {"family": "watermark", "file": "default-lean64.safetensors", "card": "default-lean64.md",
                "onnx": "default-lean64-onnx",
                "summary": "64 bits; 42.3 dB; BER 0 % after JPEG Q50 and WebP Q50, 0.1 % H.264 CRF 28 at 512 px"},
    "lean128": {"family": "watermark", "file": "lean128.safetensors", "card": "lean128.md",
                "summary": "128 bits: 10 ASCII characters with --schema large; see its card"},
    "lean128-r6": {"family": "watermark", "file": "lean128-r6.safetensors", "card": "lean128-r6.md",
                   "onnx": "lean128-r6-onnx",
                   "summary": "release-6 candidate: 76 data bits in 128, staged geometry search, hard + soft-decision "
                              "test; 41.9 dB; message exact on 29 of 29 photos after JPEG 30-50 and WebP 50, 28 "
                              "after H.264 CRF 28, flips, rotations and a centred crop (512 px)"},
    "geo256": {"family": "watermark", "file": "geo256.safetensors", "card": "geo256.md",
               "summary": "preview of release 6: 72 data bits in 256, read after crops anywhere, flips, small "
                          "rotations and reframing by its geometry search; weaker on codecs than default"},
    "imagehide-hinet": {"family": "imagehide", "file": "imagehide-hinet.safetensors", "card": "imagehide-hinet.md",
                        "n_secrets": 1,
                        "summary": "1 secret image, invertible network; container 44.0 dB, revealed 33.4 dB "
                                   "(128 px); not robust: save as PNG"},
    "imagehide-hinet2": {"family": "imagehide", "file": "imagehide-hinet2.safetensors", "card": "imagehide-hinet2.md",
                         "n_secrets": 2,
                         "summary": "2 secret images, invertible network; container 40.3 dB, revealed 31.2 / 31.5 dB "
                                    "(128 px); not robust"},
    "imagehide-hinet3": {"family": "imagehide", "file": "imagehide-hinet3.safetensors", "card": "imagehide-hinet3.md",
                         "n_secrets": 3,
                         "summary": "3 secret images, invertible network; container 37.9 dB, revealed 29.7-30.2 dB "
                                    "(128 px); not robust"},
    "imagehide-003": {"family": "imagehide", "file": "imagehide-003.safetensors", "card": "imagehide-003.md",
                      "summary": "1 secret image in a cover; container 24.5 dB, revealed 18.4 dB (64 px)"},
    "latent-hp-q6": {"family": "latent", "role": "codec", "file": "latent-hp-q6.safetensors",
                     "card": "latent-hp-q6.md",
                     "summary": "scale-hyperprior codec, quality 6; 35.27 dB at 1.125 bpp, 29 % fewer bits than "
                                "JPEG (256 px)"},
    "latent-hp-q5": {"family": "latent", "role": "codec", "file": "latent-hp-q5.safetensors",
                     "card": "latent-hp-q5.md",
                     "summary": "scale-hyperprior codec, quality 5; 33.32 dB at 0.862 bpp, 26 % fewer bits than "
                                "JPEG (256 px)"},
    "latent-hp-q3": {"family": "latent", "role": "codec", "file": "latent-hp-q3.safetensors",
                     "card": "latent-hp-q3.md",
                     "summary": "scale-hyperprior codec, quality 3; 29.61 dB at 0.395 bpp, 36 % fewer bits than "
                                "JPEG (256 px)"},
    "latent-elic-q6": {"family": "latent", "role": "codec", "file": "latent-elic-q6.safetensors",
                       "card": "latent-elic-q6.md",
                       "summary": "ELIC-style codec (uneven groups, space-channel context), quality 6; 34.04 dB at "
                                  "0.970 bpp, 26 % fewer bits than JPEG (256 px)"},
    "latent-hyperprior": {"family": "latent", "role": "codec", "file": "latent-hyperprior.safetensors",
                          "card": "latent-hyperprior.md",
                          "summary": "the first quality-6 codec (session 8), kept so that its .rhl files still "
                                     "decode; 26.05 dB at 1.21 bpp"},
    "latent-fnns-decoder": {"family": "latent", "role": "decoder", "file": "latent-fnns-decoder.safetensors",
                            "card": "latent-fnns-decoder.md",
                            "summary": "FNNS steganography decoder (depth 1) for code editing; 84.3 % bits with "
                                       "latent-hp-q6 (1500 iterations, 128 px)"},
    "latent-hp-q6-decoder": {"family": "latent", "role": "decoder", "file": "latent-hp-q6-decoder.safetensors",
                             "card": "latent-hp-q6-decoder.md",
                             "summary": "steganography decoder trained through latent-hp-q6 (depth 1); hyperbase_6 "
                                        "reads 92.32 % of the bits at 2.80 bpp, 23.2 dB (paper 004 Table 2, 256 px)"},
}

#: each family's default model (per role for latent)
DEFAULTS = {"watermark": "default", "imagehide": "imagehide-hinet", "latent-codec": "latent-hp-q6",
            "latent-decoder": "latent-hp-q6-decoder"}


def _package_file(sub: str, name: str) -> Path:
    return Path(str(resources.files("robusthide.zoo") / sub / name))


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def names(family: str | None = None) -> list[str]:
    """The registered names, of one family or of all, in registry order."""
    return [n for n, e in PRETRAINED.items() if family is None or e["family"] == family]


def weights_path(name: str) -> Path:
    """The weights file of a registered model (whether installed or not)."""
    return _package_file("weights", PRETRAINED[name]["file"])


def onnx_path(name: str) -> Path | None:
    """The folder of a registered watermark model's networks as ONNX (written by ``robusthide export-onnx`` from
    its weights file and shipped beside it, for :mod:`robusthide.onnxrt`), or None when it ships none."""
    entry = PRETRAINED.get(name, {})
    return _package_file("weights", entry["onnx"]) if "onnx" in entry else None


def resolve(name_or_path: str | Path, family: str | None = None, role: str | None = None) -> Path:
    """A registered name (of ``family`` and, for latent models, ``role``, when given) -> its installed weights
    file; anything else must be an existing file. One-line errors name the known models."""
    s = str(name_or_path)
    if s in PRETRAINED:
        fam = PRETRAINED[s]["family"]
        if family is not None and fam != family:
            raise RobustHideError(f"'{s}' is {_a(fam)} model, not {_a(family)} model "
                                  f"(known {family} models: {', '.join(names(family))})")
        if role is not None and PRETRAINED[s].get("role") != role:
            raise RobustHideError(f"'{s}' is {_a(fam)} {PRETRAINED[s].get('role', 'model')}, not {_a(role)}")
        p = weights_path(s)
        if not p.exists():
            raise RobustHideError(f"pretrained model '{s}' is not installed ({p} missing)")
        return p
    p = Path(s)
    if not p.exists():
        raise RobustHideError(f"no model named '{s}' (known: {', '.join(names(family))}) and no such file")
    return p


#: bounds of the constructor arguments a weights file may set (dotted for nested ones): a file cannot ask
#: for 10^9 refinement steps or a model of terabytes. Other numbers are bounded by :data:`MAX_NUMBER`.
KWARG_BOUNDS: dict[str, tuple[float, float]] = {
    "n_bits": (1, 4096), "size": (16, 1024), "ch": (1, 512), "enc_blocks": (0, 32), "dec_blocks": (0, 32),
    "stem_stride": (1, 16), "amplitude": (0, 1), "mask.floor": (0, 1), "mask.cap": (0, 10),
    "mask.cap_lum_max": (0, 255), "refine.steps": (0, 1000), "refine.boost": (0, 16),
    "refine.boost_factor": (1, 4), "refine.quality": (1, 100), "refine.lr": (0, 10), "refine.margin": (0, 100),
    "refine.weight": (0, 1000)}
MAX_NUMBER, MAX_ITEMS, MAX_TEXT, MAX_DEPTH, MAX_META_BYTES = 1e6, 64, 256, 4, 1 << 20


def _check_value(path: Path, key: str, v: Any, depth: int = 0) -> None:
    bad = f"{path}: metadata value {key}"
    if depth > MAX_DEPTH:
        raise RobustHideError(f"{bad} is nested too deeply")
    if isinstance(v, dict):
        if len(v) > MAX_ITEMS:
            raise RobustHideError(f"{bad} has {len(v)} entries (at most {MAX_ITEMS})")
        for k, x in v.items():
            _check_value(path, f"{key}.{k}" if key else str(k), x, depth + 1)
    elif isinstance(v, list):
        if len(v) > MAX_ITEMS:
            raise RobustHideError(f"{bad} has {len(v)} items (at most {MAX_ITEMS})")
        for i, x in enumerate(v):
            _check_value(path, f"{key}[{i}]", x, depth + 1)
    elif isinstance(v, str):
        if len(v) > MAX_TEXT:
            raise RobustHideError(f"{bad} is a text of {len(v)} characters (at most {MAX_TEXT})")
    elif isinstance(v, bool) or v is None:
        pass
    elif isinstance(v, (int, float)):
        lo, hi = KWARG_BOUNDS.get(key, (-MAX_NUMBER, MAX_NUMBER))
        if not (v == v and lo <= v <= hi):  # v == v: not NaN
            raise RobustHideError(f"{bad} = {v!r} is out of range [{lo:g}, {hi:g}]")
    else:  # pragma: no cover - json gives no other types
        raise RobustHideError(f"{bad} has an unsupported type {type(v).__name__}")


def check_meta(path: Path, meta: dict[str, str]) -> dict[str, Any]:
    """Bound every metadata value of a watermark weights file before any is used; return the constructor
    keyword arguments (the JSON of ``config``; ``kwargs`` in robusthide/1 files). One-line
    :class:`RobustHideError` otherwise."""
    size = sum(len(k) + len(v) for k, v in meta.items())
    if size > MAX_META_BYTES:
        raise RobustHideError(f"{path}: metadata of {size} bytes (at most {MAX_META_BYTES})")
    arch = meta.get("arch")
    if not isinstance(arch, str) or not arch or len(arch) > 64:
        raise RobustHideError(f"{path}: metadata 'arch' missing or invalid")
    for key, lo, hi in (("strength", 0.0, 4.0), ("step", 0.0, 1e9), ("soft_share", 0.0, 0.999)):
        if key in meta:
            try:
                v = float(meta[key])
            except ValueError:
                raise RobustHideError(f"{path}: metadata {key} = {meta[key][:40]!r} is not a number") from None
            if not (lo <= v <= hi):
                raise RobustHideError(f"{path}: metadata {key} = {v:g} is out of range [{lo:g}, {hi:g}]")
    key = "config" if meta.get("format") == FORMAT else "kwargs"
    try:
        kwargs = json.loads(meta.get(key, "{}"), parse_constant=lambda c: float("nan"))
    except (ValueError, RecursionError):
        raise RobustHideError(f"{path}: metadata '{key}' is not valid JSON") from None
    if not isinstance(kwargs, dict):
        raise RobustHideError(f"{path}: metadata '{key}' must be a JSON object, got {type(kwargs).__name__}")
    _check_value(path, "", kwargs)
    return kwargs


def load_model(name_or_path: str | Path = "default", device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a watermark model by zoo name or from a local robusthide safetensors file; eval mode. Every
    metadata value is bounded (:func:`check_meta`) before the model is built."""
    from robusthide.nets.registry import create_model
    from robusthide.zoo.weights import read_weights

    path = resolve(name_or_path, "watermark")
    _, meta, tensors = read_weights(path, "watermark")
    kwargs = check_meta(path, meta)
    try:
        model = create_model(meta["arch"], **kwargs)
        model.load_state_dict(tensors, strict=True)
    except RobustHideError:
        raise
    except Exception as e:
        first = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise RobustHideError(f"{path}: weights do not match architecture {meta.get('arch')!r} ({first})") from None
    if hasattr(model, "refine_cfg"):  # the embed-time refinement's settings: checked, defaults filled in
        from robusthide.watermark.refine import RefineConfig

        try:
            cfg = RefineConfig.from_dict(model.refine_cfg)
            cfg.real_codecs()  # a malformed or unavailable codec spec fails now, not at the first embed
        except RobustHideError as e:
            raise RobustHideError(f"{path}: {e}") from None
        model.refine_cfg = cfg.to_dict()
    model.eval().to(device)
    model.meta = meta  # type: ignore[attr-defined]
    return model


def describe(name: str) -> dict[str, Any]:
    """A zoo model's (or a weights file's) facts from its metadata (no tensors are loaded): family, file size, card,
    summary, training steps; for watermarks also payload bits, working size, strength baked in, the
    embed-time refinement settings, the stored payload schema (None: by payload size) and the soft test's
    share of the detection budget; for the others the working size and their own settings."""
    path = resolve(name)
    wm = read_meta(path)  # metadata only: no torch needed
    entry = PRETRAINED.get(name) or {"family": wm.family, **({"role": wm.role} if wm.role else {})}
    card = entry.get("card") or wm.card or None
    out: dict[str, Any] = {"name": name, "family": wm.family, "arch": wm.arch, "n_bits": None,
                           "size": None, "strength": None, "steps": wm.step,
                           "megabytes": round(path.stat().st_size / 2**20, 2), "file": str(path),
                           "card": f"robusthide/zoo/cards/{card}" if card else None,
                           "summary": entry.get("summary", ""), "format": wm.source_format}
    kw = wm.config
    if wm.family == "watermark":
        out.update(n_bits=kw.get("n_bits"), size=kw.get("size"), strength=float(wm.extra.get("strength", 1)),
                   refine=kw.get("refine", {}), schema=wm.extra.get("schema"),
                   soft_share=float(wm.extra.get("soft_share", 0)))
    elif wm.family == "imagehide":
        out.update(size=kw.get("size"), n_secrets=kw.get("n_secrets"))
    else:
        size = wm.extra.get("size")
        out.update(role=entry.get("role", wm.role), size=int(size) if size else None)
    return out


def load(name_or_path: str | Path, family: str | None = None, device: str | torch.device = "cpu",
         role: str | None = None) -> Any:
    """The one loader of every family: a zoo name or a weights file -> the model, built by its family's
    builder: a watermark ``WatermarkModel`` (:func:`load_model`), an image-hiding network
    (:func:`robusthide.imagehiding.checkpoint.load_model`), a latent codec (``role`` ``codec``,
    :func:`robusthide.latent.models.load_codec`) or steganography decoder (``decoder``,
    :func:`robusthide.latent.stegnet.load_decoder`). Models but the decoder carry their file's metadata as
    ``meta``.

    Without ``family`` the family and role are read from the file (any format :mod:`robusthide.zoo.weights`
    reads). With ``family`` (and ``role``) a name is checked against the registry and a file is handed to
    that builder as it is, which reads its family's files only and says why not in one line (so a latent
    codec may also be a CompressAI state dict, a latent decoder a ``fnns-r:SEED`` spec). Each family's
    ``from_pretrained`` is this with its family."""
    s = str(name_or_path)
    path = resolve(s, family, role) if family is None or s in PRETRAINED else Path(s)
    if family is None or (family == "latent" and role is None and path.is_file()):
        wm = read_meta(path, family)
        family, role = wm.family, wm.role
    if family == "watermark":
        return load_model(path, device)
    if family == "imagehide":
        from robusthide.imagehiding.checkpoint import load_model as load_hiding

        net, meta = load_hiding(path)
        net.meta = meta
        return net.to(device)
    if family != "latent":
        raise RobustHideError(f"unknown model family '{family}' (known: {', '.join(FAMILIES)})")
    if role == "decoder":
        from robusthide.latent.stegnet import load_decoder

        return load_decoder(path if s in PRETRAINED else s).to(device)
    if role not in (None, "codec"):
        raise RobustHideError(f"unknown latent model role '{role}' (known: codec, decoder)")
    from robusthide.latent.models import load_codec

    return load_codec(path).to(device)


def list_models(family: str | None = None) -> list[dict[str, Any]]:
    """:func:`describe` of every model of :data:`PRETRAINED` (of one family, when given), in registry order."""
    if family is not None and family not in FAMILIES:
        raise RobustHideError(f"unknown model family '{family}' (known: {', '.join(FAMILIES)})")
    return [describe(n) for n in names(family)]


def model_card(name: str) -> str:
    if name not in PRETRAINED:
        raise RobustHideError(f"no model named '{name}' (known: {', '.join(PRETRAINED)})")
    return _package_file("cards", PRETRAINED[name]["card"]).read_text()


def card_problems(name: str) -> list[str]:
    """What a model's card lacks of the one card format (empty when it conforms)."""
    text = model_card(name)
    lines = text.splitlines()
    problems = [] if lines and lines[0].startswith(f"# Model card: `{name}`") else [
        f"first line must start with '# Model card: `{name}`'"]
    table = text.split("\n\n| |", 1)[1].split("\n\n", 1)[0] if "\n\n| |" in text else ""
    rows = {ln.split("|")[1].strip() for ln in table.splitlines() if ln.startswith("| ")}
    problems += [f"no '{r}' row in the first table" for r in CARD_ROWS if r not in rows]
    fam = next((ln for ln in lines if ln.startswith("| family |")), "")
    if PRETRAINED[name]["family"] not in fam:
        problems.append(f"family row must say {PRETRAINED[name]['family']}")
    return problems
