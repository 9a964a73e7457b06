"""Registry of pretrained models and the safetensors loader (never pickle).

A robusthide weights file is a safetensors file whose metadata holds ``format = robusthide/1``,
``arch`` and ``kwargs`` (JSON of the architecture's keyword arguments); tensors are the model's
state dict. Anything else (a foreign safetensors file, a pickle, a truncated file) is refused with a
one-line error.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from robusthide import RobustHideError
from robusthide.nets.registry import create_model

FORMAT = "robusthide/1"

#: name -> weights file, card, and headline figures (filled from the card's measured results).
PRETRAINED: dict[str, dict[str, Any]] = {
    "default": {"file": "default-lean64.safetensors", "card": "default-lean64.md",
                "summary": "64 bits; 42.3 dB; BER 0 % after JPEG Q50 and WebP Q50, 0.1 % H.264 CRF 28 at 512 px"},
    "lean128": {"file": "lean128.safetensors", "card": "lean128.md",
                "summary": "128 bits: 10 ASCII characters with --schema large; see its card"},
}


def _package_file(sub: str, name: str) -> Path:
    return Path(str(resources.files("robusthide.zoo") / sub / name))


def resolve(name_or_path: str | Path) -> Path:
    s = str(name_or_path)
    if s in PRETRAINED:
        p = _package_file("weights", PRETRAINED[s]["file"])
        if not p.exists():
            raise RobustHideError(f"pretrained model '{s}' is not installed ({p} missing)")
        return p
    p = Path(s)
    if not p.exists():
        raise RobustHideError(f"no model named '{s}' (known: {', '.join(PRETRAINED)}) and no such file")
    return p


def read_weights(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RobustHideError(f"{path}: not a readable safetensors weights file ({first})") from None
    if meta.get("format") != FORMAT:
        raise RobustHideError(f"{path}: not a robusthide weights file (metadata format is "
                              f"{meta.get('format')!r}, expected {FORMAT!r})")
    return meta, tensors


def load_model(name_or_path: str | Path = "default", device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a pretrained model by zoo name or from a local robusthide safetensors file; eval mode."""
    path = resolve(name_or_path)
    meta, tensors = read_weights(path)
    try:
        kwargs = json.loads(meta.get("kwargs", "{}"))
        model = create_model(meta["arch"], **kwargs)
        model.load_state_dict(tensors, strict=True)
    except RobustHideError:
        raise
    except Exception as e:
        first = str(e).splitlines()[0]
        raise RobustHideError(f"{path}: weights do not match architecture {meta.get('arch')!r} ({first})") from None
    model.eval().to(device)
    model.meta = meta  # type: ignore[attr-defined]
    return model


def describe(name: str) -> dict[str, Any]:
    """A zoo model's facts from its weights metadata (no tensors are loaded): payload bits, working size,
    strength baked in, training steps, embed-time refinement settings, file size, card, summary."""
    path = resolve(name)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        raise RobustHideError(f"{path}: not a readable safetensors weights file ({e})") from None
    kw = json.loads(meta.get("kwargs", "{}"))
    entry = PRETRAINED.get(name, {})
    return {"name": name, "arch": meta.get("arch"), "n_bits": kw.get("n_bits"), "size": kw.get("size"),
            "strength": float(meta.get("strength", 1)), "steps": int(meta.get("step", 0) or 0),
            "refine": kw.get("refine", {}), "megabytes": round(path.stat().st_size / 2**20, 2), "file": str(path),
            "card": f"robusthide/zoo/cards/{entry['card']}" if entry else None, "summary": entry.get("summary", "")}


def list_models() -> list[dict[str, Any]]:
    """:func:`describe` of every model of :data:`PRETRAINED`, in registry order."""
    return [describe(n) for n in PRETRAINED]


def model_card(name: str) -> str:
    if name not in PRETRAINED:
        raise RobustHideError(f"no model named '{name}' (known: {', '.join(PRETRAINED)})")
    return _package_file("cards", PRETRAINED[name]["card"]).read_text()
